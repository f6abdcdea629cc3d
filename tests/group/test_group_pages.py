"""The manager's group-purchase pages (团购) over HTTP, on a real database: buyers and their agreed
prices, entering an order (by hand and from a spreadsheet), the order's whole life through its
forms (confirm → pick → partial delivery → the rest → payment, and cancel and return), the
printable order confirmation and delivery note with the certified mark, and the open balances.

Every step is checked against the database (stock levels, sales, payments), not only the page;
every refused form answers 422 with a Chinese message and writes nothing. Who may open the pages
is in tests/accounts/test_roles.py."""
from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from inventory import ledger
from inventory.localtime import local_today
from inventory.models import (
    AuditEvent, Barcode, BarcodeKind, Certificate, Location, Lot, MoveReason, Product, StockLevel, StockMove,
    Supplier, Unit,
)
from pos.core.db import session_scope
from pos.demo.build import LOCATIONS
from pos.group.models import Buyer, BuyerPrice, GroupOrder, GroupOrderLine, GroupOrderStatus, GroupPayment
from pos.models import Refund, Sale
from tests.conftest import csrf_token

TEA, RICE, HONEY = "ST-TEA-001", "ST-RICE-KG", "ST-HONEY-01"
TEA_BARCODE = "6901234567892"
TEA_PRICE, RICE_PRICE, HONEY_PRICE = 6800, 1280, 8800      # tea is certified, rice and honey are not
GOOD_USCC = "91441900MA4W123409"
BAD_USCC = "91441900MA4W123408"                          # wrong check digit


def read(app, fn):
    with session_scope(app) as s:
        return fn(s)


def html(response) -> str:
    return response.get_data(as_text=True)


def flashes(response, category: str = "error") -> list[str]:
    return [re.sub(r"<[^>]+>", "", m) for m in
            re.findall(rf'<p class="flash flash-{category}"[^>]*>(.*?)</p>', html(response), re.S)]


def assert_refused(response, *needles: str):
    """422, a Chinese message at the top, and each needle somewhere on the page."""
    assert response.status_code == 422, html(response)[:3000]
    messages = flashes(response)
    assert messages and all(re.search(r"[\u4e00-\u9fff]", m) for m in messages), messages
    for needle in needles:
        assert needle in html(response), (needle, messages)


def post(client, path: str, data: dict, *, form_path: str = "/group"):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, form_path)})


def location_of(response) -> str:
    assert response.status_code == 302, flashes(response) or html(response)[:3000]
    return urlsplit(response.headers["Location"]).path


@pytest.fixture
def hall(app):
    """The demo's locations; a certified tea (two lots at the base), rice by weight and honey
    (neither certified), all at the logistics base; a canteen as buyer."""
    today = local_today()
    with session_scope(app) as s:
        locs = {}
        for code, name, kind in LOCATIONS:
            loc = Location(code=code, name=name, kind=kind, active=True)
            s.add(loc)
            s.flush()
            locs[code] = loc.id
        supplier = Supplier(name="松桃梵净山翠峰茶业有限公司", origin_county="松桃苗族自治县", origin_county_code="520628")
        s.add(supplier)
        s.flush()
        tea = Product(sku=TEA, name="松桃绿茶 250g", pinyin_initials="stlc", unit=Unit.PIECE, price_fen=TEA_PRICE,
                      shelf_life_days=365, supplier_id=supplier.id)
        rice = Product(sku=RICE, name="孟溪红米（散装）", pinyin_initials="mxhm", unit=Unit.KG, sold_by_weight=True,
                       price_fen=RICE_PRICE, shelf_life_days=180, supplier_id=supplier.id)
        honey = Product(sku=HONEY, name="寨英土蜂蜜 500g", pinyin_initials="zytfm", unit=Unit.PIECE,
                        price_fen=HONEY_PRICE, shelf_life_days=720, supplier_id=supplier.id)
        s.add_all([tea, rice, honey])
        s.flush()
        s.add(Barcode(product_id=tea.id, code=TEA_BARCODE, kind=BarcodeKind.EAN13))
        s.add(Certificate(number="黔扶认〔2026〕0042", issuer="贵州省扶贫开发办公室", supplier_id=supplier.id,
                          valid_from=today - dt.timedelta(days=100), valid_to=today + dt.timedelta(days=300),
                          products=[tea]))
        early = Lot(product_id=tea.id, lot_no="T-EARLY", expires_on=today + dt.timedelta(days=40))
        late = Lot(product_id=tea.id, lot_no="T-LATE", expires_on=today + dt.timedelta(days=200))
        s.add_all([early, late])
        s.flush()
        for product, lot, qty in ((tea, early, 4000), (tea, late, 20000), (rice, None, 30000), (honey, None, 10000)):
            ledger.move(s, product_id=product.id, qty_milli=qty, from_location_id=locs["SUPPLIER"],
                        to_location_id=locs["BASE"], reason=MoveReason.RECEIPT, lot_id=lot.id if lot else None)
        canteen = Buyer(name="虎门镇政府机关饭堂", buyer_type="canteen", town="虎门镇", address="虎门镇银龙路 1 号",
                        contact_name="陈师傅", contact_phone="0769-85000000", invoice_title="东莞市虎门镇人民政府",
                        tax_id="11441900MB2C12345X", active=True)
        s.add(canteen)
        s.flush()
        return SimpleNamespace(loc=locs, tea=tea.id, rice=rice.id, honey=honey.id, canteen=canteen.id,
                               early=early.id, late=late.id)


@pytest.fixture
def manager(client, auth, make_user, hall):
    make_user("wumei", "manager", display_name="吴梅")
    assert auth.login("wumei").status_code == 302
    return hall


def level(app, location: str | int, product_id: int) -> tuple[int, int]:
    """(on hand, reserved) of a product at a location (a code, or an id)."""
    def fn(s):
        loc = location if isinstance(location, int) else s.scalar(select(Location.id).where(Location.code == location))
        row = s.execute(select(StockLevel.qty_milli, StockLevel.reserved_milli)
                        .where(StockLevel.location_id == loc, StockLevel.product_id == product_id)).first()
        return tuple(row) if row else (ledger.level(s, loc, product_id), 0)  # virtual: the sum of its moves
    return read(app, fn)


def dispatch_id(app) -> int:
    return read(app, lambda s: s.scalar(select(Location.id).where(Location.code == "DISPATCH")))


def count(app, model, *where) -> int:
    return read(app, lambda s: s.scalar(select(func.count()).select_from(model).where(*where)))


def writes(app) -> dict:
    """What the group pages can write: nothing of it may change on a refused request."""
    def fn(s):
        out = {m.__tablename__: s.scalar(select(func.count()).select_from(m))
               for m in (Buyer, BuyerPrice, GroupOrder, GroupOrderLine, GroupPayment, Sale, Refund, StockMove, AuditEvent)}
        out["levels"] = tuple(s.execute(select(StockLevel.location_id, StockLevel.product_id, StockLevel.qty_milli,
                                               StockLevel.reserved_milli).order_by(StockLevel.location_id,
                                                                                   StockLevel.product_id)).all())
        out["statuses"] = tuple(s.scalars(select(GroupOrder.status).order_by(GroupOrder.id)))
        return out
    return read(app, fn)


def client_order_id(client, path: str = "/group/new") -> str:
    match = re.search(r'name="client_order_id"[^>]*value="([^"]+)"', html(client.get(path)))
    assert match, "the new-order form carries a client order id"
    return match.group(1)


def order_data(buyer_id: int, lines, *, client_id: str | None = None, **head) -> dict:
    data = {"buyer_id": str(buyer_id), "delivery_date": (local_today() + dt.timedelta(days=1)).isoformat(),
            "delivery_address": "", "contact": "", "note": ""}
    if client_id:
        data["client_order_id"] = client_id
    data.update(head)
    for i, (product, qty, *price) in enumerate(lines):
        data[f"lines-{i}-product"] = product
        data[f"lines-{i}-qty"] = qty
        data[f"lines-{i}-price"] = price[0] if price else ""
    return data


def new_order(client, hall, lines, **head) -> int:
    cid = client_order_id(client)
    path = location_of(post(client, "/group/new", order_data(hall.canteen, lines, client_id=cid, **head)))
    return int(path.rsplit("/", 1)[1])


def act(client, order_id: int, action: str, data: dict | None = None):
    return post(client, f"/group/{order_id}/{action}", data or {}, form_path=f"/group/{order_id}")


def done(response, order_id: int) -> None:
    assert location_of(response) == f"/group/{order_id}"


def order_status(app, order_id: int) -> str:
    return read(app, lambda s: s.get(GroupOrder, order_id).status.value)


def row_html(page: str, sku: str) -> str:
    match = re.search(rf'<tr data-sku="{re.escape(sku)}"[^>]*>(.*?)</tr>', page, re.S)
    assert match, f"no row for {sku}"
    return match.group(1)


def deliver_inputs(page: str) -> dict[str, str]:
    """The deliver form's per-line inputs with their default values."""
    form = re.search(r'<form[^>]*id="deliver-form".*?</form>', page, re.S).group(0)
    return dict(re.findall(r'name="(qty-\d+)" value="([^"]*)"', form))


def line_ids(app, order_id: int) -> dict[int, int]:
    return read(app, lambda s: dict(s.execute(select(GroupOrderLine.product_id, GroupOrderLine.id)
                                              .where(GroupOrderLine.order_id == order_id)).all()))


# --- the pages render ----------------------------------------------------------------------------


def test_every_page_renders_for_a_manager(client, manager):
    for path in ("/group", "/group/buyers", "/group/buyers/new", f"/group/buyers/{manager.canteen}",
                 f"/group/buyers/{manager.canteen}/edit", "/group/new", f"/group/new?buyer={manager.canteen}",
                 "/group/import", "/group/balances", "/group?status=draft&q=TG&buyer=1", "/group?page=99999999",
                 "/group?due=1", "/group?due=yes"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert 'href="/group" aria-current="page">团购<' in html(response), path  # the nav marks the section


def test_the_dashboard_links_to_what_group_purchases_need_today(client, manager):
    page = html(client.get("/dashboard"))
    assert 'href="/group?due=1" data-fact="group_due">团购待送货 0 单<' in page
    assert 'data-fact="group_drafts">团购草稿 0 单<' in page and 'data-fact="group_balance">团购应收 ¥0.00<' in page


def test_unknown_things_are_404_and_odd_urls_no_500(client, manager):
    for path in ("/group/424242", "/group/424242/confirmation", "/group/deliveries/424242", "/group/buyers/424242",
                 "/group/buyers/424242/edit", "/group/99999999999", "/group/424242/edit"):
        assert client.get(path).status_code == 404, path
    for path in ("/group?status=nonsense", "/group?buyer=abc", "/group?buyer=99999999999",
                 "/group/buyers?type=bogus&q=%E8%99%8E"):
        assert client.get(path).status_code == 200, path
    assert client.get("/group?q=%00x").status_code == 400  # a control character is refused (issue 18.10a)
    assert act(client, 424242, "confirm").status_code == 404


def test_a_new_order_form_defaults_to_tomorrow_and_the_buyers_address(client, manager):
    page = html(client.get(f"/group/new?buyer={manager.canteen}"))
    tomorrow = (local_today() + dt.timedelta(days=1)).isoformat()
    assert re.search(rf'name="delivery_date"[^>]*value="{tomorrow}"', page)
    assert 'value="虎门镇银龙路 1 号"' in page
    assert re.search(r'name="client_order_id"[^>]*value="[0-9a-f]{32}"', page)
    # each rendering of the form is a new order
    assert client_order_id(client) != client_order_id(client)


# --- buyers ----------------------------------------------------------------------------------------


def buyer_data(**fields) -> dict:
    data = {"name": "东莞市虎门医院工会", "buyer_type": "union", "uscc": GOOD_USCC, "town": "虎门镇",
            "address": "虎门镇解放路 8 号", "contact_name": "李主席", "contact_phone": "13800138000",
            "invoice_title": "东莞市虎门医院工会委员会", "tax_id": GOOD_USCC, "note": "每年中秋、春节两次福利", "active": "y"}
    data.update(fields)
    return data


def test_creating_a_buyer(app, client, manager):
    path = location_of(post(client, "/group/buyers/new", buyer_data()))
    buyer = read(app, lambda s: s.scalars(select(Buyer).where(Buyer.name == "东莞市虎门医院工会")).one())
    assert path == f"/group/buyers/{buyer.id}"
    assert (buyer.buyer_type.value, buyer.uscc, buyer.town, buyer.contact_phone, buyer.invoice_title, buyer.active) == \
        ("union", GOOD_USCC, "虎门镇", "13800138000", "东莞市虎门医院工会委员会", True)
    page = html(client.get(path))
    assert "东莞市虎门医院工会委员会" in page and "工会福利" in page
    assert "东莞市虎门医院工会" in html(client.get("/group/buyers?type=union"))
    assert "东莞市虎门医院工会" not in html(client.get("/group/buyers?type=canteen"))


def test_a_bad_credit_code_is_refused_and_nothing_is_created(app, client, manager):
    before = writes(app)
    response = post(client, "/group/buyers/new", buyer_data(uscc=BAD_USCC))
    assert_refused(response, "统一社会信用代码不正确", BAD_USCC, "东莞市虎门医院工会")  # what was typed stays
    assert re.search(r'<label class="field cat-field[^"]*has-error[^"]*">\s*<span>统一社会信用代码', html(response))
    assert writes(app) == before


@pytest.mark.parametrize("fields,message", [
    ({"name": ""}, "请填写单位名称"),
    ({"buyer_type": ""}, "请选择单位类型"),
    ({"buyer_type": "bank"}, "请选择单位类型"),
    ({"name": "虎门镇政府机关饭堂"}, "已有同名的买方单位"),
])
def test_bad_buyers_are_refused(app, client, manager, fields, message):
    before = writes(app)
    assert_refused(post(client, "/group/buyers/new", buyer_data(**fields)), message)
    assert writes(app) == before


def test_editing_a_buyer_and_making_it_inactive(app, client, manager):
    data = buyer_data(name="虎门镇政府机关饭堂（新）", buyer_type="canteen", uscc="", tax_id="", active="")
    done_path = location_of(post(client, f"/group/buyers/{manager.canteen}/edit", data))
    assert done_path == f"/group/buyers/{manager.canteen}"
    buyer = read(app, lambda s: s.get(Buyer, manager.canteen))
    assert buyer.name == "虎门镇政府机关饭堂（新）" and buyer.uscc is None and not buyer.active
    # an inactive buyer is not offered for new orders
    assert f'value="{manager.canteen}"' not in html(client.get("/group/new"))


def test_agreed_prices_are_added_changed_and_removed(app, client, manager):
    path = f"/group/buyers/{manager.canteen}/prices"
    form = f"/group/buyers/{manager.canteen}"
    assert location_of(post(client, path, {"product": TEA_BARCODE, "price": "60"}, form_path=form)) == form
    prices = lambda: read(app, lambda s: dict(s.execute(select(BuyerPrice.product_id, BuyerPrice.unit_price_fen)
                                                         .where(BuyerPrice.buyer_id == manager.canteen)).all()))
    assert prices() == {manager.tea: 6000}
    page = html(client.get(form))
    assert 'value="60.00"' in page and "¥68.00" in page  # agreed and list price side by side
    post(client, path, {"product_id": str(manager.tea), "price": "58.5"}, form_path=form)
    assert prices() == {manager.tea: 5850}
    post(client, path, {"product_id": str(manager.tea), "remove": "1"}, form_path=form)
    assert prices() == {}

    before = writes(app)
    assert_refused(post(client, path, {"product": "NO-SUCH", "price": "1"}, form_path=form), "找不到商品")
    assert_refused(post(client, path, {"product": RICE, "price": "12.345"}, form_path=form), "金额最多两位小数")
    assert_refused(post(client, path, {"product": RICE, "price": ""}, form_path=form), "请输入协议价格")
    assert writes(app) == before


def test_an_agreed_price_is_used_by_a_new_order(app, client, manager):
    post(client, f"/group/buyers/{manager.canteen}/prices", {"product": TEA, "price": "60"},
         form_path=f"/group/buyers/{manager.canteen}")
    order_id = new_order(client, manager, [(TEA, "2"), (HONEY, "1", "80")])
    lines = read(app, lambda s: s.execute(select(GroupOrderLine.product_id, GroupOrderLine.unit_price_fen,
                                                 GroupOrderLine.price_source)
                                          .where(GroupOrderLine.order_id == order_id).order_by(GroupOrderLine.line_no)).all())
    assert lines == [(manager.tea, 6000, "agreed"), (manager.honey, 8000, "manual")]


# --- entering orders -------------------------------------------------------------------------------


def test_creating_an_order(app, client, manager):
    order_id = new_order(client, manager, [(TEA_BARCODE, "3"), ("孟溪红米", "2.5")], note="中午 11 点前送到")
    order = read(app, lambda s: s.get(GroupOrder, order_id))
    assert order.status == GroupOrderStatus.DRAFT and order.buyer_id == manager.canteen
    assert order.buyer_type.value == "canteen" and order.source == "manual"
    assert order.delivery_date == local_today() + dt.timedelta(days=1)
    assert order.delivery_address == "虎门镇银龙路 1 号"   # the buyer's, as the form's default
    lines = read(app, lambda s: s.execute(select(GroupOrderLine.product_id, GroupOrderLine.qty_milli,
                                                 GroupOrderLine.unit_price_fen)
                                          .where(GroupOrderLine.order_id == order_id).order_by(GroupOrderLine.line_no)).all())
    assert lines == [(manager.tea, 3000, TEA_PRICE), (manager.rice, 2500, RICE_PRICE)]
    page = html(client.get(f"/group/{order_id}"))
    assert order.order_no in page and "草稿" in page
    assert "¥236.00" in page          # 3 × 68.00 + 2.5 × 12.80
    assert "2.500" in page            # the weighed line in kg with three decimals
    assert level(app, "BASE", manager.tea) == (24000, 0)   # a draft holds nothing
    listing = html(client.get("/group"))
    assert order.order_no in listing and "虎门镇政府机关饭堂" in listing and "机关饭堂" in listing


@pytest.mark.parametrize("lines,head,message", [
    ([(TEA, "1.5")], {}, "按件销售的商品数量必须是整数"),
    ([(TEA, "abc")], {}, "数量格式不正确"),
    ([(TEA, "0")], {}, "数量必须大于零"),
    ([(RICE, "1.2345")], {}, "数量最多三位小数"),
    ([(TEA, "")], {}, "请输入数量"),
    ([("NO-SUCH-SKU", "1")], {}, "找不到商品"),
    ([(TEA, "1", "-3")], {}, "金额不能为负数"),
    ([(TEA, "1"), (TEA_BARCODE, "2")], {}, "请合并为一行"),
    ([], {}, "请至少填写一行商品"),
    ([(TEA, "1")], {"buyer_id": ""}, "请选择买方单位"),
    ([(TEA, "1")], {"buyer_id": "424242"}, "请选择买方单位"),
    ([(TEA, "1")], {"delivery_date": "明天"}, "日期格式应为 YYYY-MM-DD"),
    ([(TEA, "1")], {"delivery_date": ""}, "请填写送货日期"),
    ([(TEA, "1")], {"delivery_date": (local_today() + dt.timedelta(days=800)).isoformat()}, "送货日期不能超过一年以后"),
])
def test_a_bad_order_is_refused_with_422_and_no_order(app, client, manager, lines, head, message):
    before = writes(app)
    cid = client_order_id(client)
    data = order_data(manager.canteen, lines, client_id=cid)
    data.update(head)
    response = post(client, "/group/new", data)
    assert_refused(response, message)
    assert f'value="{cid}"' in html(response)   # the same form again: sending it once more is still one order
    assert writes(app) == before


def test_a_bad_quantity_is_shown_on_its_line(client, manager):
    response = post(client, "/group/new", order_data(manager.canteen, [(HONEY, "2"), (TEA, "1.5")],
                                                     client_id=client_order_id(client)))
    assert_refused(response)
    page = html(response)
    # the second line's quantity field is marked, with the message beside it; the typed values stay
    cell = re.search(r'<div class="field stk-cell has-error">\s*<label for="lines-1-qty".*?</div>', page, re.S)
    assert cell and "按件销售的商品数量必须是整数" in cell.group(0) and 'value="1.5"' in cell.group(0)
    assert 'value="ST-HONEY-01"' in page


def test_the_same_new_order_form_sent_twice_makes_one_order(app, client, manager):
    cid = client_order_id(client)
    data = order_data(manager.canteen, [(TEA, "2")], client_id=cid)
    first = location_of(post(client, "/group/new", data))
    second = location_of(post(client, "/group/new", data))
    assert first == second
    assert count(app, GroupOrder) == 1 and count(app, GroupOrderLine) == 1


def test_a_draft_can_be_edited_and_only_a_draft(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "2"), (HONEY, "1", "80")])
    page = html(client.get(f"/group/{order_id}/edit"))
    assert 'value="ST-TEA-001"' in page and 'value="80.00"' in page   # a hand-typed price is shown
    data = order_data(manager.canteen, [(TEA, "5"), (RICE, "1.25")], contact="陈师傅 13900000000")
    done(post(client, f"/group/{order_id}/edit", data, form_path=f"/group/{order_id}/edit"), order_id)
    lines = read(app, lambda s: s.execute(select(GroupOrderLine.product_id, GroupOrderLine.qty_milli)
                                          .where(GroupOrderLine.order_id == order_id).order_by(GroupOrderLine.line_no)).all())
    assert lines == [(manager.tea, 5000), (manager.rice, 1250)]
    assert read(app, lambda s: s.get(GroupOrder, order_id).contact) == "陈师傅 13900000000"

    before = writes(app)
    assert_refused(post(client, f"/group/{order_id}/edit", order_data(manager.canteen, [(TEA, "x")]),
                        form_path=f"/group/{order_id}/edit"), "数量格式不正确")
    assert writes(app) == before

    done(act(client, order_id, "confirm"), order_id)
    response = client.get(f"/group/{order_id}/edit")
    assert location_of(response) == f"/group/{order_id}"
    assert "修改订单" not in html(client.get(f"/group/{order_id}"))


# --- the whole life through the forms ---------------------------------------------------------------


def test_an_order_from_draft_to_paid_through_the_forms(app, client, manager):
    tea, rice = manager.tea, manager.rice
    order_id = new_order(client, manager, [(TEA, "6"), (RICE, "2.5")])
    total = 6 * TEA_PRICE + 3200                            # 2.5 kg × ¥12.80 = ¥32.00
    assert read(app, lambda s: s.get(GroupOrder, order_id).order_no)
    page = html(client.get(f"/group/{order_id}"))
    assert 'id="confirm-form"' in page and 'id="pay-form"' not in page and 'id="deliver-form"' not in page

    # confirm: the base holds the goods, nothing moves
    done(act(client, order_id, "confirm"), order_id)
    assert order_status(app, order_id) == "confirmed"
    assert level(app, "BASE", tea) == (24000, 6000) and level(app, "BASE", rice) == (30000, 2500)
    assert count(app, StockMove, StockMove.ref_type == "group_order") == 0

    # pick: base → dispatch, the earliest lot first
    done(act(client, order_id, "pick"), order_id)
    assert order_status(app, order_id) == "picked"
    dispatch = dispatch_id(app)
    assert level(app, "BASE", tea) == (18000, 0) and level(app, dispatch, tea) == (6000, 0)
    assert level(app, "BASE", rice) == (27500, 0) and level(app, dispatch, rice) == (2500, 0)
    picked = read(app, lambda s: s.execute(select(StockMove.lot_id, StockMove.qty_milli).where(
        StockMove.ref_type == "group_order", StockMove.product_id == tea).order_by(StockMove.id)).all())
    assert picked == [(manager.early, 4000), (manager.late, 2000)]

    # the deliver form offers everything picked; deliver part of it
    page = html(client.get(f"/group/{order_id}"))
    ids = line_ids(app, order_id)
    assert deliver_inputs(page) == {f"qty-{ids[tea]}": "6", f"qty-{ids[rice]}": "2.500"}
    response = act(client, order_id, "deliver", {f"qty-{ids[tea]}": "4", f"qty-{ids[rice]}": "1", "received_by": "陈师傅",
                                                 "client_id": "delivery-1-of-test"})
    done(response, order_id)
    assert "已送货" in " ".join(flashes(client.get(f"/group/{order_id}"), "success"))
    sales = read(app, lambda s: s.execute(select(Sale.id, Sale.receipt_no, Sale.total_fen, Sale.channel, Sale.buyer_type)
                                          .where(Sale.group_order_id == order_id).order_by(Sale.id)).all())
    assert len(sales) == 1
    first_sale = sales[0]
    assert first_sale.receipt_no.startswith("G-") and first_sale.total_fen == 4 * TEA_PRICE + 1280
    assert (first_sale.channel.value, first_sale.buyer_type.value) == ("group", "canteen")
    assert level(app, dispatch, tea) == (2000, 0) and level(app, "CUSTOMER", tea)[0] == 4000
    assert level(app, dispatch, rice) == (1500, 0)
    assert order_status(app, order_id) == "picked"
    page = html(client.get(f"/group/{order_id}"))
    assert first_sale.receipt_no in page and f'href="/group/deliveries/{first_sale.id}"' in page
    assert "data-received-by>陈师傅<" in html(client.get(f"/group/deliveries/{first_sale.id}"))  # who signed
    assert deliver_inputs(page) == {f"qty-{ids[tea]}": "2", f"qty-{ids[rice]}": "1.500"}
    assert 'id="close-form"' in page and 'id="cancel-form"' not in page   # delivered once: close, not cancel

    # the same delivery form sent again records nothing new
    act(client, order_id, "deliver", {f"qty-{ids[tea]}": "4", f"qty-{ids[rice]}": "1", "client_id": "delivery-1-of-test"})
    assert count(app, Sale, Sale.group_order_id == order_id) == 1

    # the rest, with the form's defaults
    response = act(client, order_id, "deliver", {**deliver_inputs(page), "client_id": "delivery-2-of-test"})
    done(response, order_id)
    assert order_status(app, order_id) == "delivered"
    assert count(app, Sale, Sale.group_order_id == order_id) == 2
    assert read(app, lambda s: s.scalar(select(func.sum(Sale.total_fen)).where(Sale.group_order_id == order_id))) == total
    assert level(app, dispatch, tea) == (0, 0) and level(app, dispatch, rice) == (0, 0)
    assert level(app, "BASE", tea) == (18000, 0) and level(app, "CUSTOMER", tea)[0] == 6000
    assert level(app, "CUSTOMER", rice)[0] == 2500

    # the page now offers payment, defaulting to the balance
    page = html(client.get(f"/group/{order_id}"))
    assert re.search(r'data-money="balance">¥440\.00<', page)
    assert re.search(r'name="amount" value="440.00"', page)

    # a payment without its bank reference is refused, nothing written
    before = writes(app)
    assert_refused(act(client, order_id, "pay", {"amount": "100", "ref": "", "received_on": local_today().isoformat()}),
                   "请填写银行转账流水号")
    assert_refused(act(client, order_id, "pay", {"amount": "500", "ref": "B-1", "received_on": local_today().isoformat()}),
                   "超过应收余额")
    assert_refused(act(client, order_id, "pay", {"amount": "1.001", "ref": "B-1", "received_on": local_today().isoformat()}),
                   "金额最多两位小数")
    assert writes(app) == before

    # part, then the rest: paid
    pay = {"ref": "ICBC-20261126-0001", "received_on": local_today().isoformat(), "client_id": "payment-1-of-test"}
    done(act(client, order_id, "pay", {**pay, "amount": "136"}), order_id)
    assert order_status(app, order_id) == "delivered"
    done(act(client, order_id, "pay", {**pay, "amount": "136"}), order_id)   # sent twice: one payment
    assert read(app, lambda s: s.scalar(select(func.sum(GroupPayment.amount_fen))
                                        .where(GroupPayment.order_id == order_id))) == 13600
    done(act(client, order_id, "pay", {**pay, "amount": "304", "client_id": "payment-2-of-test"}), order_id)
    payments = read(app, lambda s: s.execute(select(GroupPayment.amount_fen, GroupPayment.ref, GroupPayment.method)
                                             .where(GroupPayment.order_id == order_id).order_by(GroupPayment.id)).all())
    assert [(p.amount_fen, p.ref, p.method.value) for p in payments] == \
        [(13600, "ICBC-20261126-0001", "bank_transfer"), (30400, "ICBC-20261126-0001", "bank_transfer")]
    assert order_status(app, order_id) == "paid"
    page = html(client.get(f"/group/{order_id}"))
    assert re.search(r'data-money="balance">¥0\.00<', page) and 'id="pay-form"' not in page
    assert "已结清" in page
    # the stock moved exactly once: what left the base is what the customer holds
    assert level(app, "BASE", tea)[0] + level(app, "CUSTOMER", tea)[0] == 24000


def test_a_confirmation_the_base_cannot_hold_names_the_product(app, client, manager):
    order_id = new_order(client, manager, [(HONEY, "11")])
    before = writes(app)
    response = act(client, order_id, "confirm")
    assert_refused(response, "寨英土蜂蜜")
    assert writes(app) == before and order_status(app, order_id) == "draft"


def test_cancelling_a_confirmed_order_releases_its_reservation(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "3")])
    done(act(client, order_id, "confirm"), order_id)
    assert level(app, "BASE", manager.tea) == (24000, 3000)
    before = writes(app)
    assert_refused(act(client, order_id, "cancel", {"reason": ""}), "请填写取消原因")
    assert writes(app) == before
    assert 'data-confirm="' in re.search(r'<form[^>]*id="cancel-form"[^>]*>', html(client.get(f"/group/{order_id}"))).group(0)
    done(act(client, order_id, "cancel", {"reason": "饭堂改期"}), order_id)
    assert order_status(app, order_id) == "cancelled"
    assert level(app, "BASE", manager.tea) == (24000, 0)
    assert "饭堂改期" in html(client.get(f"/group/{order_id}"))


def test_a_return_through_the_form_credits_the_order_and_restocks_the_base(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "3"), (HONEY, "2")])
    for action in ("confirm", "pick", "deliver"):
        data = deliver_inputs(html(client.get(f"/group/{order_id}"))) if action == "deliver" else {}
        done(act(client, order_id, action, data), order_id)
    sale = read(app, lambda s: s.scalars(select(Sale).where(Sale.group_order_id == order_id)).one())
    sale_lines = {ln.product_id: ln.id for ln in read(app, lambda s: s.get(Sale, sale.id).lines)}
    page = html(client.get(f"/group/{order_id}"))
    assert f'id="return-form-{sale.receipt_no}"' in page

    before = writes(app)
    assert_refused(act(client, order_id, "return", {"receipt_no": sale.receipt_no, "reason": "破损",
                                                   f"qty-{sale_lines[manager.tea]}": "4"}), "松桃绿茶")
    assert_refused(act(client, order_id, "return", {"receipt_no": sale.receipt_no, "reason": "破损"}), "请至少填写")
    assert writes(app) == before

    data = {"receipt_no": sale.receipt_no, "reason": "一盒包装破损", f"qty-{sale_lines[manager.tea]}": "1",
            f"restock-{sale_lines[manager.tea]}": "1", f"qty-{sale_lines[manager.honey]}": "0"}
    done(act(client, order_id, "return", data), order_id)
    refund = read(app, lambda s: s.scalars(select(Refund).where(Refund.sale_id == sale.id)).one())
    assert refund.total_fen == TEA_PRICE
    assert level(app, "BASE", manager.tea) == (24000 - 3000 + 1000, 0)
    page = html(client.get(f"/group/{order_id}"))
    balance = 3 * TEA_PRICE + 2 * HONEY_PRICE - TEA_PRICE
    assert re.search(rf'data-money="balance">¥{balance // 100}\.00<', page)
    assert re.search(rf'data-money="returned">¥68\.00<', page)


def test_closing_the_remainder_takes_undelivered_goods_back_to_the_base(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "5")])
    done(act(client, order_id, "confirm"), order_id)
    done(act(client, order_id, "pick"), order_id)
    ids = line_ids(app, order_id)
    done(act(client, order_id, "deliver", {f"qty-{ids[manager.tea]}": "2"}), order_id)
    assert_refused(act(client, order_id, "close", {"reason": ""}), "请填写结束原因")
    done(act(client, order_id, "close", {"reason": "饭堂只要两盒"}), order_id)
    assert order_status(app, order_id) == "delivered"
    assert level(app, "BASE", manager.tea) == (24000 - 2000, 0) and level(app, dispatch_id(app), manager.tea) == (0, 0)


def test_a_delivery_quantity_the_rules_refuse_changes_nothing(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "2"), (RICE, "1.5")])
    done(act(client, order_id, "confirm"), order_id)
    done(act(client, order_id, "pick"), order_id)
    ids = line_ids(app, order_id)
    before = writes(app)
    for data, message in (({f"qty-{ids[manager.tea]}": "3"}, "最多还能送"),
                          ({f"qty-{ids[manager.tea]}": "0.5"}, "按件销售的商品数量必须是整数"),
                          ({f"qty-{ids[manager.rice]}": "abc"}, "数量格式不正确"),
                          ({f"qty-{ids[manager.tea]}": "0", f"qty-{ids[manager.rice]}": ""}, "请填写送货数量"),
                          ({f"qty-{ids[manager.tea]}": "1", "delivered_at": "昨天"}, "送货时间格式")):
        response = act(client, order_id, "deliver", data)
        assert_refused(response, message)
        # the typed quantities are still in the form
        for name, value in data.items():
            if name.startswith("qty-") and value:
                assert f'name="{name}" value="{value}"' in html(response)
    assert writes(app) == before


# --- printable pages -------------------------------------------------------------------------------


def test_the_printable_pages_mark_certified_lines_with_a_star(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "2"), (HONEY, "1")])
    confirmation = html(client.get(f"/group/{order_id}/confirmation"))
    assert "订单确认单" in confirmation
    assert "★" in row_html(confirmation, TEA) and "★" not in row_html(confirmation, HONEY)
    assert "★ 认定的扶贫产品" in confirmation
    assert "东莞市虎门镇人民政府" in confirmation and "11441900MB2C12345X" in confirmation   # invoice title, tax id
    assert re.search(r'data-total="ordered">¥224\.00<', confirmation)
    assert re.search(r'data-total="certified">¥136\.00<', confirmation)   # 其中扶贫产品: the tea only

    for action in ("confirm", "pick", "deliver"):
        data = deliver_inputs(html(client.get(f"/group/{order_id}"))) if action == "deliver" else {}
        done(act(client, order_id, action, data), order_id)
    sale = read(app, lambda s: s.scalars(select(Sale).where(Sale.group_order_id == order_id)).one())
    note = html(client.get(f"/group/deliveries/{sale.id}"))
    assert "送货单" in note and sale.receipt_no in note
    assert read(app, lambda s: s.get(GroupOrder, order_id).order_no) in note
    assert "★" in row_html(note, TEA) and "★" not in row_html(note, HONEY)
    assert "T-EARLY" in row_html(note, TEA) and "T-LATE" not in row_html(note, TEA)   # the lot handed over
    assert (local_today() + dt.timedelta(days=40)).isoformat() in row_html(note, TEA)  # and its expiry
    assert re.search(r'data-total="delivered">¥224\.00<', note) and re.search(r'data-total="certified">¥136\.00<', note)
    assert "送货人" in note and "收货人" in note and "虎门镇银龙路 1 号" in note


def test_a_delivery_note_is_only_for_a_group_delivery(app, client, manager):
    from pos.models import Till
    from pos.sales.pricing import LineIn
    from pos.sales.service import PaymentIn, SaleIn, record_sale

    def hall_sale(s):
        till = Till(code="H1", name="1号收银台", location_id=manager.loc["HALL"])
        s.add(till)
        s.flush()
        return record_sale(s, SaleIn(channel="hall", location_id=None, till_id=till.id,
                                     lines=[LineIn(product_id=manager.honey, qty_milli=1000)],
                                     payments=[PaymentIn(method="cash", amount_fen=HONEY_PRICE, tendered_fen=HONEY_PRICE)])).sale_id
    sale_id = read(app, hall_sale)
    assert client.get(f"/group/deliveries/{sale_id}").status_code == 404


# --- balances ----------------------------------------------------------------------------------------


def test_the_balances_page_shows_what_each_buyer_owes(app, client, manager):
    assert "没有未收清的货款" in html(client.get("/group/balances"))
    order_id = new_order(client, manager, [(TEA, "2"), (HONEY, "1")])
    for action in ("confirm", "pick", "deliver"):
        data = deliver_inputs(html(client.get(f"/group/{order_id}"))) if action == "deliver" else {}
        done(act(client, order_id, action, data), order_id)
    done(act(client, order_id, "pay", {"amount": "24", "ref": "B-7", "received_on": local_today().isoformat()}), order_id)
    page = html(client.get("/group/balances"))
    row = re.search(rf'<tr data-buyer="{manager.canteen}">(.*?)</tr>', page, re.S).group(1)
    assert "虎门镇政府机关饭堂" in row and "机关饭堂" in row
    assert 'data-balance="20000"' in row and "¥200.00" in row      # ¥224.00 delivered − ¥24.00 paid
    assert "¥224.00" in row and "¥24.00" in row and local_today().isoformat() in row
    assert re.search(r'data-total="balance">¥200\.00<', page)


# --- importing the buyer's spreadsheet --------------------------------------------------------------


def upload(client, buyer_id, content: bytes, filename: str = "订货单.csv"):
    import io

    return client.post("/group/import", data={"buyer_id": str(buyer_id), "csrf_token": csrf_token(client, "/group/import"),
                                              "file": (io.BytesIO(content), filename)},
                       content_type="multipart/form-data")


def confirm_fields(page: str) -> dict[str, str]:
    form = re.search(r'<form[^>]*id="import-confirm".*?</form>', page, re.S).group(0)
    return {name: value for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form)}


def test_importing_a_sheet_previews_then_makes_a_draft(app, client, manager):
    sheet = "虎门镇政府机关饭堂订货单\n商品编码,品名,数量,单价(元)\nST-TEA-001,松桃绿茶,3,\nST-RICE-KG,红米,2.5,12\n合计,,,\n"
    response = upload(client, manager.canteen, sheet.encode("utf-8"))
    assert response.status_code == 200, flashes(response)
    page = html(response)
    assert "松桃绿茶 250g" in page and "孟溪红米（散装）" in page
    assert count(app, GroupOrder) == 0    # a preview writes nothing
    fields = confirm_fields(page)
    assert fields["delivery_address"] == "虎门镇银龙路 1 号"
    path = location_of(client.post("/group/import/confirm", data=fields))
    order = read(app, lambda s: s.scalars(select(GroupOrder)).one())
    assert path == f"/group/{order.id}" and order.source == "import" and order.status == GroupOrderStatus.DRAFT
    lines = read(app, lambda s: s.execute(select(GroupOrderLine.product_id, GroupOrderLine.qty_milli,
                                                 GroupOrderLine.unit_price_fen, GroupOrderLine.price_source)
                                          .where(GroupOrderLine.order_id == order.id).order_by(GroupOrderLine.line_no)).all())
    assert lines == [(manager.tea, 3000, TEA_PRICE, "list"), (manager.rice, 2500, 1200, "manual")]
    # confirming the same preview again makes no second order
    assert location_of(client.post("/group/import/confirm", data=fields)) == path
    assert count(app, GroupOrder) == 1


def test_a_sheet_with_errors_shows_them_and_offers_no_confirm(app, client, manager):
    sheet = "商品编码,品名,数量\nST-TEA-001,松桃绿茶,1.5\nNO-SUCH,不知道,2\n"
    response = upload(client, manager.canteen, sheet.encode("utf-8"))
    assert_refused(response, "第 2 行", "第 3 行")
    assert 'id="import-confirm"' not in html(response)
    assert count(app, GroupOrder) == 0


def test_an_import_without_a_buyer_or_file_is_refused(app, client, manager):
    assert_refused(upload(client, "", b"a,b\n"), "请选择买方单位")
    response = client.post("/group/import", data={"buyer_id": str(manager.canteen),
                                                  "csrf_token": csrf_token(client, "/group/import")})
    assert_refused(response, "请选择要上传的订货表文件")
    assert count(app, GroupOrder) == 0


def test_a_tampered_import_confirmation_is_refused(app, client, manager):
    token = csrf_token(client, "/group/import")
    data = {"csrf_token": token, "buyer_id": str(manager.canteen), "client_order_id": "x" * 32,
            "delivery_date": (local_today() + dt.timedelta(days=1)).isoformat(),
            "lines-0-product_id": str(manager.tea), "lines-0-qty_milli": "-5", "lines-0-unit_price_fen": ""}
    response = client.post("/group/import/confirm", data=data)
    assert location_of(response) == "/group/import"
    data["lines-0-qty_milli"] = "1500"   # half a piece: the order's own rules refuse it
    assert_refused(client.post("/group/import/confirm", data=data), "整数")
    assert count(app, GroupOrder) == 0


def test_posts_without_the_csrf_token_are_refused(app, client, manager):
    order_id = new_order(client, manager, [(TEA, "1")])
    before = writes(app)
    for path in (f"/group/{order_id}/confirm", "/group/new", "/group/buyers/new", f"/group/buyers/{manager.canteen}/prices"):
        response = client.post(path, data={"reason": "x"})
        assert response.status_code == 400 and "安全校验" in html(response), path
    assert writes(app) == before
