"""Product barcodes: GS1 check digits (EAN-13, EAN-8, UPC-A), internal codes, and one product per
code."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from inventory import barcodes, catalogue
from inventory.errors import ValidationError
from inventory.models import BarcodeKind

VALID = [
    ("6901234567892", BarcodeKind.EAN13),
    ("4006381333931", BarcodeKind.EAN13),
    ("0012345678905", BarcodeKind.EAN13),
    ("96385074", BarcodeKind.EAN8),
    ("73513537", BarcodeKind.EAN8),
    ("036000291452", BarcodeKind.UPCA),
    ("012345678905", BarcodeKind.UPCA),
]


@pytest.mark.parametrize("code, kind", VALID)
def test_gs1_codes_with_a_correct_check_digit(code, kind):
    assert barcodes.classify(code) == kind
    assert barcodes.validate(code) == (code, kind)


@pytest.mark.parametrize("code", ["6901234567893", "4006381333930", "96385075", "036000291453", "012345678900"])
def test_a_wrong_check_digit_is_refused_in_chinese(code):
    with pytest.raises(ValidationError) as caught:
        barcodes.validate(code)
    assert "条码校验位错误" in str(caught.value)
    assert code in str(caught.value)
    assert caught.value.field == "barcode"


@pytest.mark.parametrize("typed, stored", [
    ("  6901234567892 ", "6901234567892"),
    ("６９０１２３４５６７８９２", "6901234567892"),     # full-width digits from a Chinese input method
    ("6 901234 567892", "6901234567892"),               # as printed under the bars
    ("st-tea-01", "ST-TEA-01"),
])
def test_codes_are_normalised(typed, stored):
    assert barcodes.validate(typed)[0] == stored


@pytest.mark.parametrize("code", ["ST-0001", "HALL42", "A1B", "1234567", "12345678901", "00001", "X" * 32,
                                  "12345678901231"])
def test_internal_codes(code):
    assert barcodes.validate(code) == (code, BarcodeKind.INTERNAL)


@pytest.mark.parametrize("code, fragment", [
    ("", "不能为空"),
    ("AB", "3–32"),
    ("X" * 33, "最多 32"),
    ("茶叶01", "字母、数字和连字符"),
    ("AB 12", "字母、数字和连字符"),
])
def test_unusable_codes(code, fragment):
    with pytest.raises(ValidationError) as caught:
        barcodes.validate(code)
    assert fragment in str(caught.value)


def test_check_digit_helpers():
    assert barcodes.ean13_check_digit("690123456789") == "2"
    assert barcodes.ean13("690123456789") == "6901234567892"
    assert barcodes.gs1_check_digit("9638507") == "4"
    assert barcodes.gs1_check_digit("03600029145") == "2"
    with pytest.raises(ValidationError):
        barcodes.ean13_check_digit("69012345678")
    with pytest.raises(ValidationError):
        barcodes.ean13_check_digit("69012345678X")


@given(st.from_regex(r"[0-9]{12}", fullmatch=True), st.integers(0, 12), st.integers(1, 9))
def test_any_single_wrong_digit_is_caught(body, position, shift):
    code = barcodes.ean13(body)
    assert barcodes.classify(code) == BarcodeKind.EAN13
    wrong = code[:position] + str((int(code[position]) + shift) % 10) + code[position + 1:]
    with pytest.raises(ValidationError):
        barcodes.classify(wrong)


def test_a_code_belongs_to_one_product_only(session):
    tea = catalogue.create_product(session, sku="T1", name="梅江茶", price_fen=3800, barcodes=["6901234567892"])
    with pytest.raises(ValidationError) as caught:
        catalogue.create_product(session, sku="T2", name="翠峰茶", price_fen=4800, barcodes=["6901234567892"])
    assert "已属于商品「梅江茶」" in str(caught.value)
    other = catalogue.create_product(session, sku="T3", name="红茶", price_fen=4800)
    with pytest.raises(ValidationError):
        catalogue.add_barcode(session, other.id, "6901234567892")
    # A UPC-A and the same code as an EAN-13 with a leading 0 are one code.
    catalogue.add_barcode(session, tea.id, "012345678905")
    with pytest.raises(ValidationError) as caught:
        catalogue.add_barcode(session, other.id, "0012345678905")
    assert "梅江茶" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        catalogue.add_barcode(session, tea.id, "6901234567892")
    assert "已有条码" in str(caught.value)


def test_add_and_remove_barcodes_are_audited(session):
    from sqlalchemy import select

    from inventory.models import AuditEvent

    tea = catalogue.create_product(session, sku="T1", name="梅江茶", price_fen=3800)
    barcode = catalogue.add_barcode(session, tea.id, "96385074", actor_id=None)
    assert barcode.kind == BarcodeKind.EAN8 and [b.code for b in tea.barcodes] == ["96385074"]
    catalogue.remove_barcode(session, barcode.id, actor_id=None)
    session.flush()
    assert tea.barcodes == []
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["product.barcode_add", "product.barcode_remove"]
    # the code is free again
    catalogue.create_product(session, sku="T2", name="翠峰茶", price_fen=4800, barcodes=["96385074"])
