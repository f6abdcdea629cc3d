"""Suppliers (credit-code check character) and poverty-alleviation certificates: audited edits that
never touch a sale line's snapshot, the expiring-within-30-days list, scans."""
from __future__ import annotations

import datetime as dt
import io
import json
import random

import pytest
from PIL import Image
from sqlalchemy import func, select

from inventory import catalogue, credit_codes, suppliers
from inventory.certification import certification_on
from inventory.errors import NotFound, ValidationError
from inventory.localtime import utcnow
from inventory.models import AuditEvent, Certificate, Location, LocationKind, Supplier
from pos.models import Channel, Sale, SaleLine

D = dt.date
RNG = random.Random(7)
CODE_A = credit_codes.example_credit_code(RNG, cooperative=True, county_code="520628")
CODE_B = credit_codes.example_credit_code(RNG, cooperative=False, county_code="520621")


def _wrong_check(code: str) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return code[:-1] + next(c for c in alphabet if c != code[-1])


# --- credit codes ----------------------------------------------------------------------------------

def test_example_credit_codes_are_valid():
    assert len(CODE_A) == 18 and CODE_A.startswith("93520628")
    assert credit_codes.normalise_credit_code(CODE_A) == CODE_A
    assert credit_codes.normalise_credit_code(f" {CODE_B.lower()} ") == CODE_B
    assert credit_codes.normalise_credit_code("") is None
    assert credit_codes.normalise_credit_code("91110000600037341L") == "91110000600037341L"


@pytest.mark.parametrize("code, fragment", [
    (_wrong_check(CODE_A), "统一社会信用代码校验位错误"),
    (_wrong_check("91110000600037341L"), "统一社会信用代码校验位错误"),
    (CODE_A[:-1], "18 位"),
    ("9152062812345678I1", "格式不正确"),   # I is not in the alphabet
    ("ABCDEFGH1234567890", "格式不正确"),
])
def test_bad_credit_codes(code, fragment):
    with pytest.raises(ValidationError) as caught:
        credit_codes.normalise_credit_code(code)
    assert fragment in str(caught.value)
    assert caught.value.field == "credit_code"


# --- suppliers -----------------------------------------------------------------------------------

def make_supplier(session, **kw):
    values = dict(name="松桃苗族自治县孟溪镇红米种植农民专业合作社", credit_code=CODE_A, province="贵州省",
                  origin_county="松桃苗族自治县", origin_county_code="520628", origin_township="孟溪镇",
                  origin_village="新场村", contact_name="吴国平", contact_phone="13912345678", actor_id=None)
    values.update(kw)
    return suppliers.create_supplier(session, **values)


def test_create_update_and_list_suppliers(session):
    supplier = make_supplier(session)
    assert supplier.credit_code == CODE_A and supplier.active
    other = make_supplier(session, name="江口县梵净山生态农业发展有限公司", credit_code=None, origin_county="江口县",
                          origin_county_code="520621")
    assert [s.name for s in suppliers.list_suppliers(session)] == sorted([supplier.name, other.name])
    suppliers.update_supplier(session, other.id, credit_code=CODE_B, contact_phone="0856-6621234")
    assert other.credit_code == CODE_B
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "supplier.update")).one()
    assert json.loads(event.before) == {"credit_code": None, "contact_phone": "13912345678"}
    suppliers.update_supplier(session, other.id, active=False)
    assert [s.name for s in suppliers.list_suppliers(session, active_only=True)] == [supplier.name]


@pytest.mark.parametrize("changes, fragment", [
    ({"credit_code": _wrong_check(CODE_A)}, "校验位错误"),
    ({"name": ""}, "不能为空"),
    ({"origin_county_code": "5206"}, "6 位数字"),
    ({"contact_phone": "call me"}, "联系电话"),
])
def test_bad_supplier_values_write_nothing(session, changes, fragment):
    with pytest.raises(ValidationError) as caught:
        make_supplier(session, **changes)
    assert fragment in str(caught.value)
    assert session.scalar(select(func.count()).select_from(Supplier)) == 0


def test_names_and_credit_codes_are_unique(session):
    make_supplier(session)
    with pytest.raises(ValidationError) as caught:
        make_supplier(session, credit_code=None)
    assert "同名" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        make_supplier(session, name="另一家")
    assert "已属于供应商" in str(caught.value)
    with pytest.raises(NotFound):
        suppliers.update_supplier(session, 999, name="x")


# --- certificates --------------------------------------------------------------------------------

@pytest.fixture
def setup(session):
    supplier = make_supplier(session)
    rice = catalogue.create_product(session, sku="ST0013", name="松桃红米 2.5kg", price_fen=6800, supplier_id=supplier.id)
    glutinous = catalogue.create_product(session, sku="ST0016", name="苗家糯米 2.5kg", price_fen=5800,
                                         supplier_id=supplier.id)
    return supplier, rice, glutinous


def make_cert(session, supplier, products, **kw):
    values = dict(number="黔扶认〔2026〕520628-0042", issuer="铜仁市乡村振兴局", supplier_id=supplier.id,
                  valid_from=D(2026, 1, 1), valid_to=D(2027, 12, 31), product_ids=[p.id for p in products],
                  actor_id=None)
    values.update(kw)
    return suppliers.create_certificate(session, **values)


@pytest.fixture
def manager(make_user):
    return make_user("wumei", "manager")  # committed before the test's session starts writing


def test_create_and_update_a_certificate_is_audited(manager, session, setup):
    supplier, rice, glutinous = setup
    cert = make_cert(session, supplier, [rice], actor_id=manager)
    assert [p.sku for p in cert.products] == ["ST0013"]
    suppliers.update_certificate(session, cert.id, actor_id=manager, valid_to=D(2026, 6, 30),
                                 product_ids=[rice.id, glutinous.id])
    suppliers.update_certificate(session, cert.id, actor_id=manager, valid_to=D(2026, 6, 30))  # no change
    events = session.scalars(select(AuditEvent).where(AuditEvent.entity == "certificate").order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["certificate.create", "certificate.update"]
    update = events[1]
    assert update.user_id == manager
    assert json.loads(update.before) == {"valid_to": "2027-12-31", "product_ids": [rice.id]}
    assert json.loads(update.after) == {"valid_to": "2026-06-30", "product_ids": sorted([rice.id, glutinous.id])}
    assert certification_on(session, glutinous.id, D(2026, 6, 30)).certified
    assert not certification_on(session, glutinous.id, D(2026, 7, 1)).certified


@pytest.mark.parametrize("changes, fragment", [
    ({"valid_to": D(2025, 12, 31)}, "失效日期不能早于生效日期"),
    ({"valid_from": "2026-01-01"}, "日期"),
    ({"valid_from": dt.datetime(2026, 1, 1, 8, 0)}, "日期"),
    ({"number": ""}, "不能为空"),
    ({"issuer": " "}, "不能为空"),
    ({"product_ids": [999]}, "商品不存在"),
    ({"supplier_id": 999}, "供应商不存在"),
])
def test_bad_certificates_write_nothing(session, setup, changes, fragment):
    supplier, rice, _ = setup
    with pytest.raises(ValidationError) as caught:
        make_cert(session, supplier, [rice], **changes)
    assert fragment in str(caught.value)
    assert session.scalar(select(func.count()).select_from(Certificate)) == 0


def test_certificate_numbers_are_unique(session, setup):
    supplier, rice, _ = setup
    make_cert(session, supplier, [rice])
    with pytest.raises(ValidationError) as caught:
        make_cert(session, supplier, [rice])
    assert "已存在" in str(caught.value)


def test_editing_a_certificate_never_changes_a_sale_lines_snapshot(session, setup):
    supplier, rice, _ = setup
    cert = make_cert(session, supplier, [rice])
    hall = Location(code="HALL", name="卖场", kind=LocationKind.HALL_FLOOR)
    session.add(hall)
    session.flush()
    sold_on = D(2026, 11, 26)
    snapshot = certification_on(session, rice.id, sold_on)
    sale = Sale(receipt_no="H1-20261126-0001", channel=Channel.HALL, content_hash="x" * 64, location_id=hall.id,
                sold_at=utcnow(), local_date=sold_on, subtotal_fen=6800, total_fen=6800)
    sale.lines = [SaleLine(line_no=1, product_id=rice.id, qty_milli=1000, unit_price_fen=6800, gross_fen=6800,
                           discount_fen=0, net_fen=6800, vat="exempt", certified=snapshot.certified,
                           certificate_no=snapshot.certificate_no, supplier_id=supplier.id,
                           supplier_name=supplier.name, origin_county="松桃苗族自治县", origin_county_code="520628")]
    session.add(sale)
    session.flush()
    line_id = sale.lines[0].id

    suppliers.update_certificate(session, cert.id, number="黔扶认〔2026〕520628-0099", valid_to=D(2026, 3, 31),
                                 product_ids=[])
    session.flush()
    session.expire_all()
    line = session.get(SaleLine, line_id)
    assert (line.certified, line.certificate_no) == (True, "黔扶认〔2026〕520628-0042")
    assert not certification_on(session, rice.id, sold_on).certified


def test_expiring_certificates_within_30_days(session, setup):
    supplier, rice, glutinous = setup
    today = D(2026, 11, 26)
    make_cert(session, supplier, [rice], number="A-lapsed", valid_from=D(2024, 1, 1), valid_to=D(2026, 11, 25))
    make_cert(session, supplier, [rice], number="B-today", valid_from=D(2024, 1, 1), valid_to=today)
    make_cert(session, supplier, [glutinous], number="C-30days", valid_from=D(2024, 1, 1), valid_to=D(2026, 12, 26))
    make_cert(session, supplier, [glutinous], number="D-31days", valid_from=D(2024, 1, 1), valid_to=D(2026, 12, 27))
    make_cert(session, supplier, [rice], number="E-15days", valid_from=D(2024, 1, 1), valid_to=D(2026, 12, 11))
    found = suppliers.expiring_certificates(session, today=today)
    assert [c.number for c in found] == ["B-today", "E-15days", "C-30days"]
    assert [(c.valid_to - today).days for c in found] == [0, 15, 30]
    assert [c.number for c in suppliers.expiring_certificates(session, today=today, within_days=7)] == ["B-today"]
    assert len(suppliers.list_certificates(session)) == 5
    assert len(suppliers.list_certificates(session, supplier_id=supplier.id)) == 5


def test_certificate_scan(session, setup, tmp_path):
    supplier, rice, _ = setup
    cert = make_cert(session, supplier, [rice])
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    path = suppliers.set_certificate_scan(session, cert.id, "证书.pdf", pdf, tmp_path)
    assert path.startswith("uploads/certificates/") and path.endswith(".pdf")
    assert (tmp_path / path).read_bytes() == pdf
    out = io.BytesIO()
    Image.new("L", (10, 10)).save(out, format="JPEG")
    path = suppliers.set_certificate_scan(session, cert.id, "scan.jpg", out.getvalue(), tmp_path)
    assert path.endswith(".jpg") and cert.scan_path == path
    for bad in (b"hello", b"%PDF-1.4 truncated", b"GIF89a"):
        with pytest.raises(ValidationError) as caught:
            suppliers.set_certificate_scan(session, cert.id, "x.pdf", bad, tmp_path)
        assert "PDF" in str(caught.value)
    assert cert.scan_path == path


def test_suppliers_buyers_and_invoice_requests_read_a_credit_code_alike():
    """One normalisation (inventory.credit_codes): full-width characters from a Chinese input
    method, spaces and hyphens, lower case."""
    from pos.group import buyers
    from pos.hall import invoices

    typed = "９１１１-００００ ６０００３７３４１ｌ"
    assert credit_codes.normalise_credit_code(typed) == "91110000600037341L"
    assert invoices.clean_tax_id(typed) == "91110000600037341L"
    assert buyers._clean(buyers.BuyerIn(name="某公司", buyer_type="enterprise", uscc=typed))["uscc"] == \
        "91110000600037341L"
