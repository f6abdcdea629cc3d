"""Products: creation and change rules, price history and its audit, retiring, photos, categories,
search (name, pinyin initials, sku, barcode; paged; a constant number of queries on 10,000
products) and the product page's data."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from PIL import Image
from sqlalchemy import event, func, insert, select

from inventory import catalogue
from inventory.errors import NotFound, ValidationError
from inventory.ledger import move
from inventory.models import (
    AuditEvent,
    Barcode,
    BarcodeKind,
    Certificate,
    Location,
    LocationKind,
    MoveReason,
    PriceChange,
    Product,
    Unit,
    VatRate,
)


def make(session, **kw):
    values = dict(sku="ST0001", name="梅江茶 250g", price_fen=16800)
    values.update(kw)
    return catalogue.create_product(session, **values)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# --- pinyin --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, initials", [
    ("梅江茶", "mjc"),
    ("松桃梵净山翠峰茶 250g", "stfjscfc250g"),
    ("苗绣杯垫（4片装）", "mxbd4pz"),
    ("ABC 红茶", "abchc"),
])
def test_pinyin_initials(name, initials):
    assert catalogue.pinyin_initials(name) == initials


# --- create --------------------------------------------------------------------------------------

def test_create_a_product_with_everything(session):
    rice_cat = catalogue.create_category(session, "粮油米面")
    product = catalogue.create_product(
        session, sku="ST0023", name="散装松桃红米", category_id=rice_cat.id, supplier_id=None, unit="kg",
        sold_by_weight=True, price_fen=1680, cost_fen=1100, vat="exempt", vat_exemption_code="01092301",
        tax_code="1010101020000000000", shelf_life_days=365, barcodes=["ST-RICE-1"], scale_plu=101,
        origin_county="松桃苗族自治县", origin_county_code="520628", origin_township="孟溪镇",
        origin_village="新场村", actor_id=None,
    )
    session.flush()
    assert product.unit == Unit.KG and product.sold_by_weight and product.vat == VatRate.EXEMPT
    assert product.pinyin_initials == "szsthm"
    assert [(b.code, b.kind) for b in product.barcodes] == [("ST-RICE-1", BarcodeKind.INTERNAL)]
    assert product.active and product.category.name == "粮油米面"
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "product.create")).one()
    assert json.loads(event.after)["sku"] == "ST0023"


@pytest.mark.parametrize("changes, field, fragment", [
    ({"price_fen": -1}, "price_fen", "不能为负数"),
    ({"price_fen": 12.8}, "price_fen", "必须是整数"),
    ({"price_fen": "1280"}, "price_fen", "必须是整数"),
    ({"price_fen": True}, "price_fen", "必须是整数"),
    ({"price_fen": None}, "price_fen", "不能为空"),
    ({"price_fen": 10 ** 12}, "price_fen", "不能大于"),
    ({"cost_fen": -5}, "cost_fen", "不能为负数"),
    ({"sku": ""}, "sku", "不能为空"),
    ({"sku": "梅江茶"}, "sku", "只能包含"),
    ({"sku": "X" * 33}, "sku", "最多 32"),
    ({"name": "   "}, "name", "不能为空"),
    ({"name": "茶" * 121}, "name", "最多 120"),
    ({"unit": "jin"}, "unit", "件（piece）或千克（kg）"),
    ({"sold_by_weight": True}, "unit", "必须是千克"),
    ({"scale_plu": 101}, "scale_plu", "只有称重销售"),
    ({"vat": "6"}, "vat", "9、13 或 exempt"),
    ({"vat_exemption_code": "01092301"}, "vat_exemption_code", "只有免税商品"),
    ({"tax_code": "10101"}, "tax_code", "19 位数字"),
    ({"shelf_life_days": 0}, "shelf_life_days", "不能小于 1"),
    ({"shelf_life_days": "30"}, "shelf_life_days", "必须是整数"),
    ({"origin_county_code": "52062"}, "origin_county_code", "6 位数字"),
    ({"category_id": 999}, "category_id", "分类不存在"),
    ({"supplier_id": 999}, "supplier_id", "供应商不存在"),
    ({"barcodes": ["6901234567893"]}, "barcodes", "条码校验位错误"),
    ({"barcodes": "6901234567892"}, "barcodes", "一组条码"),
])
def test_bad_values_are_refused_in_chinese_and_nothing_is_written(session, changes, field, fragment):
    with pytest.raises(ValidationError) as caught:
        make(session, **changes)
    assert fragment in str(caught.value)
    assert caught.value.field == field
    assert count(session, Product) == 0 and count(session, AuditEvent) == 0


def test_weighed_goods_must_be_kg(session):
    with pytest.raises(ValidationError):
        make(session, unit="piece", sold_by_weight=True)
    product = make(session, unit="kg", sold_by_weight=True)
    with pytest.raises(ValidationError) as caught:
        catalogue.update_product(session, product.id, unit="piece")
    assert "千克" in str(caught.value)
    catalogue.update_product(session, product.id, unit="piece", sold_by_weight=False)
    assert product.unit == Unit.PIECE


def test_unique_sku_and_scale_plu(session):
    make(session, unit="kg", sold_by_weight=True, scale_plu=5)
    with pytest.raises(ValidationError) as caught:
        make(session, name="另一个")
    assert "ST0001" in str(caught.value) and "梅江茶" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        make(session, sku="ST0002", unit="kg", sold_by_weight=True, scale_plu=5)
    assert "秤码 5" in str(caught.value)


def test_full_width_sku_becomes_ascii_but_names_keep_their_punctuation(session):
    product = make(session, sku="ＳＴ０００９", name="苗绣杯垫（4片装）")
    assert product.sku == "ST0009" and product.name == "苗绣杯垫（4片装）"


def test_unknown_fields_are_a_programming_error(session):
    product = make(session)
    with pytest.raises(TypeError):
        catalogue.update_product(session, product.id, colour="red")


def test_update_of_a_missing_product(session):
    with pytest.raises(NotFound) as caught:
        catalogue.update_product(session, 12345, price_fen=1)
    assert "商品不存在" in str(caught.value)


# --- price history -------------------------------------------------------------------------------

def test_a_price_change_is_kept_and_audited(session, make_user):
    manager = make_user("wumei", "manager")
    product = make(session)
    catalogue.update_product(session, product.id, actor_id=manager, price_fen=15800)
    catalogue.update_product(session, product.id, actor_id=manager, price_fen=15800)  # no change: no row
    catalogue.update_product(session, product.id, actor_id=manager, price_fen=17800, name="梅江茶 礼盒")
    session.flush()
    history = session.scalars(select(PriceChange).order_by(PriceChange.id)).all()
    assert [(h.old_price_fen, h.new_price_fen, h.changed_by_id) for h in history] == [
        (16800, 15800, manager), (15800, 17800, manager)]
    assert all(h.changed_at.tzinfo is not None for h in history)
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "product.price_change")
                             .order_by(AuditEvent.id)).all()
    assert [(json.loads(e.before), json.loads(e.after), e.user_id, e.entity_id) for e in events] == [
        ({"price_fen": 16800}, {"price_fen": 15800}, manager, str(product.id)),
        ({"price_fen": 15800}, {"price_fen": 17800}, manager, str(product.id)),
    ]
    update = session.scalars(select(AuditEvent).where(AuditEvent.action == "product.update")).one()
    assert json.loads(update.before) == {"name": "梅江茶 250g"}
    assert json.loads(update.after) == {"name": "梅江茶 礼盒"}
    assert product.pinyin_initials == "mjclh"
    detail = catalogue.product_detail(session, product.id)
    assert [h.new_price_fen for h in detail["price_history"]] == [17800, 15800]


def test_a_refused_update_changes_nothing(session):
    product = make(session)
    with pytest.raises(ValidationError):
        catalogue.update_product(session, product.id, price_fen=-100, name="新名字")
    assert product.price_fen == 16800 and product.name == "梅江茶 250g"
    assert count(session, PriceChange) == 0


def test_leaving_exempt_drops_the_exemption_code(session):
    product = make(session, vat="exempt", vat_exemption_code="01092301")
    catalogue.update_product(session, product.id, vat="9")
    assert product.vat == VatRate.AGRICULTURAL_9 and product.vat_exemption_code is None


def test_replace_barcodes(session):
    product = make(session, barcodes=["6901234567892", "96385074"])
    catalogue.update_product(session, product.id, barcodes=["96385074", "ST-X1"])
    assert sorted(b.code for b in product.barcodes) == ["96385074", "ST-X1"]
    other = make(session, sku="ST0002", name="翠峰茶")
    catalogue.update_product(session, other.id, barcodes=["6901234567892"])  # freed above
    with pytest.raises(ValidationError):
        catalogue.update_product(session, other.id, barcodes=["ST-X1"])


# --- retire, photo, categories -------------------------------------------------------------------

def test_retire_and_bring_back(session):
    product = make(session)
    catalogue.set_active(session, product.id, False)
    assert not product.active
    assert catalogue.search_products(session, "梅江", active_only=True).total == 0
    assert catalogue.search_products(session, "梅江").total == 1
    assert catalogue.search_products(session, "", active=False).total == 1
    assert catalogue.search_products(session, "", active=True).total == 0
    catalogue.set_active(session, product.id, True)
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["product.retire", "product.reactivate"]
    with pytest.raises(ValidationError):
        catalogue.set_active(session, product.id, "no")


def _png(size=(4, 3)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_photo_is_checked_and_stored_under_instance(session, tmp_path):
    product = make(session)
    path = catalogue.set_photo(session, product.id, "tea.png", _png(), tmp_path)
    assert path.startswith("uploads/products/") and path.endswith(".png")
    assert (tmp_path / path).read_bytes() == _png()
    assert product.photo_path == path
    for bad in (b"not an image at all", _png()[:40], b"", b"%PDF-1.4\n%%EOF"):
        with pytest.raises(ValidationError) as caught:
            catalogue.set_photo(session, product.id, "x.png", bad, tmp_path)
        assert "图片" in str(caught.value) or "空" in str(caught.value)
    assert product.photo_path == path


def test_categories(session):
    tea = catalogue.create_category(session, "茶叶")
    rice = catalogue.create_category(session, "粮油米面")
    assert [c.name for c in catalogue.list_categories(session)] == ["茶叶", "粮油米面"]
    assert rice.sort_order > tea.sort_order
    with pytest.raises(ValidationError) as caught:
        catalogue.create_category(session, "茶叶")
    assert "已存在" in str(caught.value)
    with pytest.raises(ValidationError):
        catalogue.create_category(session, " ")


# --- search --------------------------------------------------------------------------------------

@pytest.fixture
def teas(session):
    catalogue.create_product(session, sku="ST0001", name="梅江茶 250g", price_fen=3800, barcodes=["6901234567892"])
    catalogue.create_product(session, sku="ST0002", name="松桃梵净山翠峰茶", price_fen=16800)
    catalogue.create_product(session, sku="ST0010", name="苗绣杯垫（4片装）", price_fen=4800)
    catalogue.create_product(session, sku="MJC-9", name="红米", price_fen=6800)
    catalogue.create_product(session, sku="AB_1", name="100%蜂蜜", price_fen=6800)


def skus(page) -> list[str]:
    return [p.sku for p in page.items]


def test_search_by_name_pinyin_sku_and_barcode(session, teas):
    assert skus(catalogue.search_products(session, "梅江")) == ["ST0001"]
    assert skus(catalogue.search_products(session, "翠峰")) == ["ST0002"]
    # the sku MJC-9 starts with "mjc" and ranks before the pinyin match 梅江茶
    assert skus(catalogue.search_products(session, "mjc")) == ["MJC-9", "ST0001"]
    assert skus(catalogue.search_products(session, "MJC")) == ["MJC-9", "ST0001"]
    assert skus(catalogue.search_products(session, "cfc")) == ["ST0002"]  # substring of stfjscfc
    assert skus(catalogue.search_products(session, "st000")) == ["ST0001", "ST0002"]
    assert skus(catalogue.search_products(session, "6901234567892")) == ["ST0001"]
    assert skus(catalogue.search_products(session, "（4片")) == ["ST0010"]
    assert skus(catalogue.search_products(session, "100%")) == ["AB_1"]
    assert skus(catalogue.search_products(session, "%")) == ["AB_1"]       # % is not a wildcard
    assert skus(catalogue.search_products(session, "_")) == []             # nor is _
    assert skus(catalogue.search_products(session, "ab_")) == ["AB_1"]
    assert catalogue.search_products(session, "咖啡").total == 0
    assert catalogue.search_products(session, "").total == 5


def test_search_pages(session, teas):
    first = catalogue.search_products(session, "", page=1, per_page=2)
    second = catalogue.search_products(session, "", page=2, per_page=2)
    third = catalogue.search_products(session, "", page=3, per_page=2)
    assert (first.total, first.pages, first.has_next, third.has_next) == (5, 3, True, False)
    assert len(set(skus(first) + skus(second) + skus(third))) == 5
    assert catalogue.search_products(session, "", page=99, per_page=2).items == []


def test_search_by_category(session, teas):
    tea = catalogue.create_category(session, "茶叶")
    product = session.scalar(select(Product).where(Product.sku == "ST0002"))
    catalogue.update_product(session, product.id, category_id=tea.id)
    assert skus(catalogue.search_products(session, "", category_id=tea.id)) == ["ST0002"]
    assert skus(catalogue.search_products(session, "茶", category_id=tea.id)) == ["ST0002"]


SYLLABLES = "梅江茶松桃红米苗家腊肉香菇木耳蜂蜜辣椒酱刺梨天麻竹荪核桃糍粑"


@pytest.fixture
def ten_thousand(session):
    rows, codes = [], []
    for n in range(10_000):
        name = "".join(SYLLABLES[(n // 31 ** k) % len(SYLLABLES)] for k in range(3)) + f" {n}号"
        rows.append({"sku": f"P{n:05d}", "name": name, "pinyin_initials": catalogue.pinyin_initials(name),
                     "price_fen": 100 + n, "unit": Unit.PIECE, "sold_by_weight": False, "vat": VatRate.GENERAL_13,
                     "active": True})
    session.execute(insert(Product), rows)
    ids = dict(session.execute(select(Product.sku, Product.id)).all())
    for n in range(0, 10_000, 7):
        codes.append({"product_id": ids[f"P{n:05d}"], "code": f"69{n:010d}" + "0", "kind": BarcodeKind.INTERNAL})
    session.execute(insert(Barcode), codes)
    session.flush()
    return rows


class QueryCounter:
    def __init__(self, session):
        self.engine = session.get_bind()
        self.count = 0

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args):
        self.count += 1


def test_search_ten_thousand_products_is_correct_and_takes_constant_queries(session, ten_thousand):
    def expected(q: str) -> set[str]:
        return {r["sku"] for r in ten_thousand
                if r["sku"].lower().startswith(q.lower()) or q.lower() in r["name"].lower()
                or (q.isascii() and q.lower() in r["pinyin_initials"])}

    counts = []
    for q, per_page in (("mjc", 50), ("梅江", 20), ("P0999", 50), ("红米苗", 10), ("", 50), ("xyzzy", 50)):
        everything = set()
        page = 1
        while True:
            with QueryCounter(session) as counter:
                result = catalogue.search_products(session, q, page=page, per_page=per_page)
                for product in result.items:          # what a results page shows
                    _ = [b.code for b in product.barcodes], product.category, product.supplier
            counts.append((counter.count, bool(result.items)))
            everything |= {p.sku for p in result.items}
            if not result.has_next or page == 3:
                break
            page += 1
        if q and page == 1:
            assert everything == expected(q), q
        assert result.total == (len(expected(q)) if q else 10_000)
    # the same queries for every page that has products: the count, the page and its barcodes
    assert {n for n, found in counts if found} == {3}, counts
    assert all(n <= 3 for n, _ in counts), counts

    code = "69" + f"{7 * 1234:010d}" + "0"
    assert skus(catalogue.search_products(session, code)) == [f"P{7 * 1234:05d}"]


# --- the product page ----------------------------------------------------------------------------

def test_product_detail(session):
    today = dt.date(2026, 11, 26)
    product = make(session, barcodes=["6901234567892"])
    hall = Location(code="HALL", name="卖场", kind=LocationKind.HALL_FLOOR)
    supplier_loc = Location(code="SUPPLIER", name="供应商", kind=LocationKind.SUPPLIER)
    session.add_all([hall, supplier_loc])
    session.flush()
    move(session, product_id=product.id, from_location_id=supplier_loc.id, to_location_id=hall.id,
         qty_milli=12000, reason=MoveReason.RECEIPT)
    session.add(Certificate(number="黔扶认〔2026〕520628-0001", issuer="铜仁市乡村振兴局",
                            valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2027, 12, 31), products=[product]))
    session.flush()
    detail = catalogue.product_detail(session, product.id, today=today)
    assert detail["product"] is product
    assert [b.code for b in detail["barcodes"]] == ["6901234567892"]
    assert detail["certified_today"] and detail["certification"].certificate_no == "黔扶认〔2026〕520628-0001"
    assert [(row["location"].code, row["qty_milli"]) for row in detail["stock"]] == [("HALL", 12000)]
    assert detail["stock_total_milli"] == 12000
    assert not catalogue.product_detail(session, product.id, today=dt.date(2028, 1, 1))["certified_today"]
    with pytest.raises(NotFound):
        catalogue.product_detail(session, 999)


def test_control_characters_never_reach_the_database(session):
    """A NUL from a misbehaving scanner or a pasted text is not a product and not a 500."""
    from inventory import catalogue

    assert catalogue.resolve_scan(session, "69\x0012345") is None
    assert catalogue.search_products(session, "\x00").total >= 0
