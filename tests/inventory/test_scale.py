"""Scale-label barcodes: rules in the style of a nomenclature, decoded with their leading zeros,
and the one function the till uses for every scan (resolve_scan)."""
from __future__ import annotations

import pytest
from hypothesis import assume, given, strategies as st
from sqlalchemy import func, select

from inventory import catalogue, scale
from inventory.catalogue import ScanResult, resolve_scan
from inventory.errors import InventoryError, ValidationError
from inventory.models import AuditEvent

WEIGHT = "2{PPPPP}{WWWWW}C"        # 12 digits (UPC-A, number system 2)
PRICE = "2{PPPPP}{$$$$$}C"
WEIGHT13 = "22{PPPPP}{WWWWW}C"     # 13 digits (EAN-13, in-store prefix 22)
PRICE13 = "23{PPPPP}{$$$$$}C"
SHORT = "2{PPP}{WWW}C"             # 8 digits (EAN-8)


# --- rules ---------------------------------------------------------------------------------------

def test_parse_rule_positions():
    rule = scale.parse_rule(WEIGHT13)
    assert (rule.prefix, rule.plu, rule.value, rule.value_kind, rule.length) == ("22", (2, 7), (7, 12), "weight", 13)
    rule = scale.parse_rule(" 2{$$$$$}{PPPPP}C ")
    assert (rule.prefix, rule.plu, rule.value, rule.value_kind, rule.length) == ("2", (6, 11), (1, 6), "price", 12)


@pytest.mark.parametrize("pattern, fragment", [
    ("2{PPPPP}{WWWWW}", "必须以校验位 C 结尾"),
    ("", "必须以校验位 C 结尾"),
    ("2{PPPPP}X{WWWWW}C", "只能有数字、字段"),
    ("2{PPPPP}1{WWWWW}C", "字段之间不能夹数字"),
    ("2{PPPPP}{PPPPP}C", "只能有一个商品码字段"),
    ("2{WWWWW}{$$$$$}{PPP}C", "只能有一个重量或金额字段"),
    ("2{PPPPP}{WWWWW}1C", "校验位 C 之前不能再有数字"),
    ("2{PPPPP}C", "需要一个商品码字段"),
    ("{PPPPPP}{WWWWW}C", "数字前缀"),
    ("2{PPPP}{WWWWW}C", "8、12 或 13 位"),
    ("2{PPWW}{WWWWW}C", "只能有数字、字段"),
    ("２{PPPPP}{WWWWW}C", "只能有数字、字段"),
    ("²{PPPPP}{WWWWW}C", "只能有数字、字段"),
])
def test_bad_patterns_are_refused_in_chinese(pattern, fragment):
    with pytest.raises(scale.RuleError) as caught:
        scale.parse_rule(pattern)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValidationError) and isinstance(caught.value, InventoryError)
    assert caught.value.field == "pattern"


# --- decoding, leading zeros included --------------------------------------------------------------

@pytest.mark.parametrize("code, plu, grams", [
    ("200101005236", 101, 523),        # the module's own example
    ("200001000010", 1, 1),            # every leading zero
    ("299999999994", 99999, 99999),
    ("200101100009", 101, 10000),       # trailing zeros are significant
])
def test_weight_labels_with_leading_zeros(code, plu, grams):
    assert scale.encode(WEIGHT, plu=plu, value=grams) == code
    label = scale.decode(code, [WEIGHT])
    assert (label.plu, label.weight_grams, label.price_fen) == (plu, grams, None)


def test_price_labels_with_leading_zeros():
    code = scale.encode(PRICE13, plu=7, value=1987)
    assert code == "2300007019875"
    label = scale.decode(code, [PRICE13])
    assert (label.plu, label.price_fen, label.weight_grams) == (7, 1987, None)


def test_the_first_matching_rule_decodes():
    weight_code = scale.encode(WEIGHT13, plu=12, value=450)
    price_code = scale.encode(PRICE13, plu=12, value=450)
    rules = [WEIGHT13, PRICE13]
    assert scale.decode(weight_code, rules).weight_grams == 450
    assert scale.decode(price_code, rules).price_fen == 450
    assert scale.decode("6901234567892", rules) is None   # a product barcode: no rule's prefix
    assert scale.decode("ST0001", rules) is None


def test_a_bad_check_digit_is_a_misread_not_a_label():
    code = scale.encode(WEIGHT, plu=101, value=523)
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    assert scale.decode(wrong, [WEIGHT]) is None


def test_encode_refuses_values_wider_than_the_field():
    with pytest.raises(scale.RuleError):
        scale.encode(WEIGHT, plu=100000, value=1)
    with pytest.raises(scale.RuleError):
        scale.encode(SHORT, plu=1, value=1000)
    with pytest.raises(scale.RuleError):
        scale.encode(WEIGHT, plu=-1, value=1)


RULES = st.sampled_from([WEIGHT, PRICE, WEIGHT13, PRICE13, SHORT, "02{PPPP}{WWWWWW}C", "2{$$$$$}{PPPPP}C"])


@st.composite
def rule_and_values(draw):
    pattern = draw(RULES)
    rule = scale.parse_rule(pattern)
    plu = draw(st.integers(0, 10 ** (rule.plu[1] - rule.plu[0]) - 1))
    value = draw(st.integers(0, 10 ** (rule.value[1] - rule.value[0]) - 1))
    return pattern, rule, plu, value


@given(rule_and_values())
def test_encode_then_decode_gives_the_same_label(case):
    pattern, rule, plu, value = case
    code = scale.encode(pattern, plu=plu, value=value)
    assert len(code) == rule.length and code.isdigit()
    label = scale.decode(code, [pattern])
    assert label.plu == plu
    assert (label.weight_grams if rule.value_kind == "weight" else label.price_fen) == value


@given(rule_and_values(), st.data())
def test_a_flipped_digit_never_decodes_to_a_different_label(case, data):
    pattern, rule, plu, value = case
    code = scale.encode(pattern, plu=plu, value=value)
    position = data.draw(st.integers(0, len(code) - 1))
    digit = data.draw(st.sampled_from("0123456789"))
    assume(digit != code[position])
    flipped = code[:position] + digit + code[position + 1:]
    assert scale.decode(flipped, [WEIGHT, PRICE, WEIGHT13, PRICE13, SHORT, pattern]) is None


# --- rules kept in the database and the till's scan --------------------------------------------------

@pytest.fixture
def shop(session):
    tea = catalogue.create_product(session, sku="ST0001", name="梅江茶 250g", price_fen=16800,
                                   barcodes=["6901234567892", "012345678905"])
    rice = catalogue.create_product(session, sku="ST0023", name="散装松桃红米", price_fen=1680, unit="kg",
                                    sold_by_weight=True, scale_plu=101)
    pork = catalogue.create_product(session, sku="ST0032", name="苗家腊肉（散称）", price_fen=9800, unit="kg",
                                    sold_by_weight=True, scale_plu=7)
    catalogue.add_barcode_rule(session, name="称重秤签", pattern=WEIGHT13, priority=10)
    catalogue.add_barcode_rule(session, name="计价秤签", pattern=PRICE13, priority=5)
    return {"tea": tea.id, "rice": rice.id, "pork": pork.id}


def test_resolve_a_barcode_and_a_sku(session, shop):
    assert resolve_scan(session, "6901234567892") == ScanResult(shop["tea"], None, None, "barcode")
    assert resolve_scan(session, " 6901234567892\n") == ScanResult(shop["tea"], None, None, "barcode")
    # a UPC-A sent by the scanner as 13 digits
    assert resolve_scan(session, "0012345678905") == ScanResult(shop["tea"], None, None, "barcode")
    assert resolve_scan(session, "ST0001") == ScanResult(shop["tea"], None, None, "sku")
    assert resolve_scan(session, "st0001") == ScanResult(shop["tea"], None, None, "sku")


def test_resolve_a_weight_label(session, shop):
    code = scale.encode(WEIGHT13, plu=101, value=523)
    assert code == "2200101005234"
    assert resolve_scan(session, code) == ScanResult(shop["rice"], 523, None, "scale_weight")


def test_resolve_a_price_label(session, shop):
    # ¥19.87 of pork at ¥98.00/kg: 1987 / 9800 kg = 202.755… g → 203 g (half up)
    code = scale.encode(PRICE13, plu=7, value=1987)
    assert resolve_scan(session, code) == ScanResult(shop["pork"], 203, 1987, "scale_price")
    # exactly half a gram rounds up: ¥0.49 at ¥98.00/kg = 5.0 g; ¥0.01 at ¥20.00/kg = 0.5 g → 1 g
    assert resolve_scan(session, scale.encode(PRICE13, plu=7, value=49)).qty_milli == 5
    catalogue.update_product(session, shop["pork"], price_fen=2000)
    assert resolve_scan(session, scale.encode(PRICE13, plu=7, value=1)).qty_milli == 1


@pytest.mark.parametrize("code", [
    "6901234567893",      # bad check digit
    "2200999005236",      # a label for a PLU nobody has
    "9999999999994",
    "NOPE-1",
    "",
    "   ",
    "梅江茶",
    "x" * 500,
])
def test_unknown_codes_resolve_to_nothing(session, shop, code):
    assert resolve_scan(session, code) is None


def test_a_misread_label_is_unknown(session, shop):
    code = scale.encode(WEIGHT13, plu=101, value=523)
    assert resolve_scan(session, code[:-1] + "0") is None


def test_inactive_rules_are_not_used(session, shop):
    rule = catalogue.list_barcode_rules(session)[0]
    assert rule.pattern == WEIGHT13  # highest priority first
    catalogue.set_barcode_rule_active(session, rule.id, False)
    assert resolve_scan(session, scale.encode(WEIGHT13, plu=101, value=523)) is None
    catalogue.set_barcode_rule_active(session, rule.id, True)
    assert resolve_scan(session, scale.encode(WEIGHT13, plu=101, value=523)).qty_milli == 523
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.entity == "barcode_rule")
                              .order_by(AuditEvent.id)).all()
    assert actions == ["barcode_rule.create", "barcode_rule.create", "barcode_rule.deactivate",
                       "barcode_rule.activate"]


def test_a_product_barcode_wins_over_a_rule(session, shop):
    code = scale.encode(WEIGHT13, plu=101, value=523)
    catalogue.add_barcode(session, shop["tea"], code)
    assert resolve_scan(session, code).source == "barcode"


@pytest.mark.parametrize("pattern, fragment", [
    ("22{PPPPP}{WWWWW}", "校验位 C"),
    (WEIGHT13, "已有相同的规则"),
    ("22{PPPPP}{$$$$$}C", "前缀和位数相同"),
])
def test_bad_rules_are_refused_and_nothing_is_added(session, shop, pattern, fragment):
    before = len(catalogue.list_barcode_rules(session))
    with pytest.raises(ValidationError) as caught:
        catalogue.add_barcode_rule(session, name="新规则", pattern=pattern, priority=0)
    assert fragment in str(caught.value)
    assert len(catalogue.list_barcode_rules(session)) == before


def test_rule_name_and_priority_are_checked(session):
    with pytest.raises(ValidationError):
        catalogue.add_barcode_rule(session, name="", pattern=WEIGHT, priority=0)
    with pytest.raises(ValidationError):
        catalogue.add_barcode_rule(session, name="x", pattern=WEIGHT, priority="high")
    assert session.scalar(select(func.count()).select_from(catalogue.BarcodeRule)) == 0


def test_a_label_for_a_product_not_sold_by_weight_is_refused(session, shop):
    from inventory.models import Product

    session.get(Product, shop["rice"]).sold_by_weight = False  # as if edited behind the catalogue's back
    with pytest.raises(ValidationError) as caught:
        resolve_scan(session, scale.encode(WEIGHT13, plu=101, value=523))
    assert "不是称重销售" in str(caught.value)


# --- issue 18, point 16: scale labels work out of the box ------------------------------------------

def _weighed_rice(session):
    return catalogue.create_product(session, sku="ST0023", name="散装松桃红米", price_fen=1680, unit="kg",
                                    sold_by_weight=True, scale_plu=101)


def test_point16_a_fresh_database_decodes_the_common_weight_label(session):
    rice = _weighed_rice(session)
    assert catalogue.list_barcode_rules(session) == []          # nobody has configured anything
    label = scale.encode(scale.DEFAULT_RULE, plu=101, value=523)
    assert scale.DEFAULT_RULE == "2{PPPPP}{WWWWW}C" and label == "200101005236"
    assert resolve_scan(session, label) == ScanResult(rice.id, 523, None, "scale_weight")
    assert resolve_scan(session, "0" + label) == ScanResult(rice.id, 523, None, "scale_weight")  # as EAN-13
    assert resolve_scan(session, label[:-1] + "0") is None        # a misread stays unknown


def test_point16_configured_rules_replace_the_default(session):
    rice = _weighed_rice(session)
    catalogue.add_barcode_rule(session, name="称重秤签", pattern=WEIGHT13)
    assert resolve_scan(session, scale.encode(scale.DEFAULT_RULE, plu=101, value=523)) is None
    assert resolve_scan(session, scale.encode(WEIGHT13, plu=101, value=523)).product_id == rice.id


def test_point16_the_default_rule_is_recorded_once_and_a_switched_off_rule_stays_off(session):
    rice = _weighed_rice(session)
    rule = catalogue.ensure_default_barcode_rule(session)
    assert (rule.pattern, rule.active) == (scale.DEFAULT_RULE, True)
    assert catalogue.ensure_default_barcode_rule(session) is None
    catalogue.set_barcode_rule_active(session, rule.id, False)
    assert catalogue.ensure_default_barcode_rule(session) is None
    assert resolve_scan(session, scale.encode(scale.DEFAULT_RULE, plu=101, value=523)) is None
    catalogue.set_barcode_rule_active(session, rule.id, True)
    assert resolve_scan(session, scale.encode(scale.DEFAULT_RULE, plu=101, value=523)).product_id == rice.id


def test_point16_init_db_records_the_default_rule(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from inventory.documents import BarcodeRule
    from pos.cli import main

    monkeypatch.setenv("SONGTAO_INSTANCE", str(tmp_path / "instance"))
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    runner = CliRunner()
    first = runner.invoke(main, ["init-db"], env={"DATABASE_URL": url})
    assert first.exit_code == 0 and "2{PPPPP}{WWWWW}C" in first.output, first.output
    again = runner.invoke(main, ["init-db"], env={"DATABASE_URL": url})
    assert again.exit_code == 0 and "秤签" not in again.output
    engine = create_engine(url)
    with Session(engine) as s:
        assert s.execute(select(BarcodeRule.pattern, BarcodeRule.active)).all() == [(scale.DEFAULT_RULE, True)]
    engine.dispose()
