"""The manager's group-purchase pages (团购) over HTTP, on a real database: every page renders,
buyers and their agreed prices, entering an order by hand and from the buyer's spreadsheet, and
forms without their CSRF token.

Every refused form answers 422 with a Chinese message and writes nothing. An order's life through
its forms, the printable pages and the balances are in tests/group/test_group_order_pages.py; the
world (``hall``, ``manager``) and the helpers are in tests/fixtures/group.py. Who may open the
pages is in tests/accounts/test_roles.py."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from inventory.localtime import local_today
from pos.group.models import Buyer, BuyerPrice, GroupOrder, GroupOrderLine, GroupOrderStatus
from tests.conftest import csrf_token
from tests.fixtures.group import (  # noqa: F401  (hall, manager: fixtures)
    BAD_USCC,
    GOOD_USCC,
    HONEY,
    RICE,
    RICE_PRICE,
    TEA,
    TEA_BARCODE,
    TEA_PRICE,
    act,
    assert_refused,
    client_order_id,
    count,
    done,
    flashes,
    hall,
    html,
    level,
    location_of,
    manager,
    new_order,
    order_data,
    post,
    read,
    writes,
)


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
