"""The manager's stock pages over HTTP: who may see them, levels and the ledger, receiving, and
transfers. Every page is for managers (and admins) only; every mistake a person can make gets a
Chinese message, status 400, and changes nothing. Counts, expiry, reorder points and odd input are
in tests/inventory/test_stock_count_pages.py; the world (``shop``, ``manager``) is in
tests/fixtures/shop.py."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from inventory.documents import GoodsReceipt
from inventory.reservations import reserve
from inventory.localtime import local_today
from inventory.models import (
    Lot,
    Product,
)
from pos.core.db import session_scope
from tests.conftest import csrf_token
from tests.fixtures.shop import (  # noqa: F401  (manager, shop: fixtures)
    HONEY,
    RICE,
    TEA,
    assert_refused,
    counts,
    create_transfer,
    flashes,
    html,
    level,
    manager,
    post,
    read,
    receipt_data,
    receive,
    shop,
    stock_up,
)


# --- who may see the pages -------------------------------------------------------------------

GET_PAGES = ["/stock/", "/stock/receipts", "/stock/receipts/new", "/stock/transfers", "/stock/transfers/new",
             "/stock/counts", "/stock/expiry", "/stock/reorder-points"]


def test_every_page_renders_for_a_manager(app, client, manager):
    stock_up(app, client, manager)
    receipt_id = read(app, lambda s: s.scalar(select(GoodsReceipt.id)))
    pages = GET_PAGES + [
        f"/stock/locations/{manager['BASE']}", f"/stock/locations/{manager['BASE']}?q=stlc",
        f"/stock/products/{manager['tea']}/ledger", f"/stock/products/{manager['tea']}/ledger?location={manager['BASE']}",
        f"/stock/receipts/{receipt_id}", "/stock/expiry?days=365", "/dashboard",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        assert '<html lang="zh-CN">' in html(response)
    index = html(client.get("/stock/"))
    for name in ("黔货出山大湾区物流基地", "梵净山珍·松桃馆 仓库", "梵净山珍·松桃馆 卖场"):
        assert name in index
    assert "供应商（虚拟）" not in index  # virtual locations are not places to look at


@pytest.mark.parametrize("role", ["cashier", "restocker", "auditor"])
def test_other_roles_get_403(app, client, auth, make_user, shop, role):
    make_user("someone", role)
    auth.login("someone")
    for path in GET_PAGES + [f"/stock/locations/{shop['BASE']}", f"/stock/products/{shop['tea']}/ledger"]:
        assert client.get(path).status_code == 403, path
    token = csrf_token(client, "/account")
    before = counts(app)
    response = client.post("/stock/receipts/new", data={"csrf_token": token, **receipt_data(shop, [
        {"product": TEA, "qty": "1", "cost": "1"}])})
    assert response.status_code == 403
    assert client.post("/stock/alerts/refresh", data={"csrf_token": token}).status_code == 403
    assert counts(app) == before


def test_anonymous_is_sent_to_login(client, shop):
    response = client.get("/stock/receipts/new")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"


# --- levels and the ledger -----------------------------------------------------------------------

def test_stock_page_shows_levels_with_weights_to_three_decimals_and_searches(app, client, manager):
    stock_up(app, client, manager)
    page = html(client.get(f"/stock/locations/{manager['BASE']}"))
    assert "松桃绿茶 250g" in page and "孟溪红米（散装）" in page
    assert "5.250" in page and ">10<" in page
    found = html(client.get(f"/stock/locations/{manager['BASE']}?q=mxhm"))
    assert "孟溪红米（散装）" in found and "松桃绿茶 250g" not in found
    assert "没有找到匹配的商品" in html(client.get(f"/stock/locations/{manager['BASE']}?q=不存在"))
    assert client.get(f"/stock/locations/{manager['BASE']}?page=abc").status_code == 200
    assert client.get("/stock/locations/99999").status_code == 404


def test_stock_page_shows_what_group_orders_hold_and_what_is_free(app, client, manager):
    stock_up(app, client, manager)
    assert "团购预留" not in html(client.get(f"/stock/locations/{manager['BASE']}"))  # nothing held: no column
    with session_scope(app) as s:
        reserve(s, location_id=manager["BASE"], product_id=manager["tea"], qty_milli=4000)
    page = html(client.get(f"/stock/locations/{manager['BASE']}"))
    assert "团购预留" in page and "可用" in page
    row = page[page.index('data-sku="' + TEA + '"'):]
    row = row[:row.index("</tr>")]
    assert "data-reserved>4<" in row and ">6<" in row  # 10 on hand, 4 held, 6 free


def test_ledger_page_shows_every_move_with_reason_user_and_running_balance(app, client, manager):
    stock_up(app, client, manager)
    transfer_id = create_transfer(client, manager, [{"product": TEA, "qty": "3"}], to="HALL-STORE")
    assert post(client, f"/stock/transfers/{transfer_id}/post", {}, form_path=f"/stock/transfers/{transfer_id}").status_code == 302
    page = html(client.get(f"/stock/products/{manager['tea']}/ledger?location={manager['BASE']}"))
    assert "入库" in page and "调拨" in page
    assert "吴梅" in page
    assert "供应商（虚拟）" in page and "梵净山珍·松桃馆 仓库" in page
    balances = re.findall(r'<td class="num stk-balance">\s*([^<]*?)\s*</td>', page)
    # newest first or oldest first, the base's balance runs 4 → 10 → 7 (two lots received, then 3 out)
    assert sorted(balances) == sorted(["4", "10", "7"]) or set(balances) >= {"10", "7"}, balances
    assert client.get(f"/stock/products/{manager['tea']}/ledger?location=abc").status_code in (200, 400)
    assert client.get("/stock/products/99999/ledger").status_code == 404


# --- receiving ---------------------------------------------------------------------------------

def test_receiving_saves_a_draft_then_posting_changes_the_levels(app, client, manager):
    today = local_today()
    receipt_id = receive(client, manager, [
        {"product": TEA, "qty": "12", "cost": "41.50", "lot_no": "T-1", "produced_on": today.isoformat()},
        {"product": RICE, "qty": "2.5", "cost": "9", "lot_no": "R-9",
         "expires_on": (today + dt.timedelta(days=90)).isoformat()},
    ], post_it=False)
    assert level(app, "BASE", TEA) == 0  # a draft moves nothing
    draft = html(client.get(f"/stock/receipts/{receipt_id}"))
    assert "草稿" in draft and "过账入库" in draft

    response = post(client, f"/stock/receipts/{receipt_id}/post", {}, form_path=f"/stock/receipts/{receipt_id}")
    assert response.status_code == 302
    assert level(app, "BASE", TEA) == 12_000
    assert level(app, "BASE", RICE) == 2_500
    assert level(app, "SUPPLIER", TEA) == -12_000
    lots = read(app, lambda s: {l.lot_no: l.expires_on for l in s.scalars(select(Lot))})
    assert lots == {"T-1": today + dt.timedelta(days=365), "R-9": today + dt.timedelta(days=90)}
    assert read(app, lambda s: s.get(Product, manager["tea"]).cost_fen) == 4150

    shown = html(client.get(f"/stock/receipts/{receipt_id}"))
    assert "已过账" in shown and "冲销" in shown and "¥498.00" in shown  # 12 × 41.50
    assert "2.500" in shown


def test_a_posted_receipt_is_immutable_and_is_reversed_by_a_new_document(app, client, manager):
    receipt_id = stock_up(app, client, manager)
    before = counts(app)
    response = post(client, f"/stock/receipts/{receipt_id}", receipt_data(manager, [{"product": TEA, "qty": "99", "cost": "1"}]))
    assert_refused(response, "冲销")
    assert counts(app) == before
    response = post(client, f"/stock/receipts/{receipt_id}/post", {}, form_path=f"/stock/receipts/{receipt_id}")
    assert response.status_code == 400
    assert counts(app) == before

    response = post(client, f"/stock/receipts/{receipt_id}/reverse", {"note": ""})
    assert_refused(response, "请填写冲销原因")
    assert counts(app) == before

    response = post(client, f"/stock/receipts/{receipt_id}/reverse", {"note": "数量录错"})
    assert response.status_code == 302, flashes(response)
    reversal_id = int(urlsplit(response.headers["Location"]).path.split("/")[-1])
    assert reversal_id != receipt_id
    assert level(app, "BASE", TEA) == 0 and level(app, "BASE", RICE) == 0
    assert "冲销了入库单" in html(client.get(f"/stock/receipts/{reversal_id}"))
    assert "已被冲销" in html(client.get(f"/stock/receipts/{receipt_id}"))


def test_reversal_is_refused_when_the_goods_have_moved_on(app, client, manager):
    receipt_id = stock_up(app, client, manager)
    transfer_id = create_transfer(client, manager, [{"product": TEA, "qty": "8"}], to="HALL-STORE")
    assert post(client, f"/stock/transfers/{transfer_id}/post", {}, form_path=f"/stock/transfers/{transfer_id}").status_code == 302
    before = counts(app)
    response = post(client, f"/stock/receipts/{receipt_id}/reverse", {"note": "退货"})
    assert_refused(response, "松桃绿茶 250g")
    assert counts(app) == before


def test_a_draft_can_be_edited(app, client, manager):
    receipt_id = receive(client, manager, [{"product": TEA, "qty": "1", "cost": "40"}], post_it=False)
    form = html(client.get(f"/stock/receipts/{receipt_id}"))
    assert f'value="{TEA}"' in form
    response = post(client, f"/stock/receipts/{receipt_id}", receipt_data(manager, [
        {"product": TEA, "qty": "3", "cost": "40"}, {"product": HONEY, "qty": "2", "cost": "60"}]))
    assert response.status_code == 302, flashes(response)
    lines = read(app, lambda s: sorted((l.product.sku, l.qty_milli) for l in s.get(GoodsReceipt, receipt_id).lines))
    assert lines == [(HONEY, 2000), (TEA, 3000)]


BAD_RECEIPTS = [
    ({"qty": "abc"}, "数量格式不正确"),
    ({"qty": "-3"}, "数量必须大于零"),
    ({"qty": "0"}, "数量必须大于零"),
    ({"qty": "1.5"}, "按件销售的商品数量必须是整数"),
    ({"qty": ""}, "请输入数量"),
    ({"qty": "1e9"}, "数量格式不正确"),
    ({"qty": "99999999999999999999"}, "数量"),
    ({"product": "不存在的商品"}, "找不到商品：不存在的商品"),
    ({"product": "6901234567899"}, "找不到商品"),
    ({"cost": "十二块"}, "金额格式不正确"),
    ({"cost": "-1"}, "金额不能为负数"),
    ({"cost": "12.345"}, "金额最多两位小数"),
    ({"cost": ""}, "请输入进价"),
    ({"expires_on": "2026-13-45"}, "日期格式应为 YYYY-MM-DD"),
    ({"produced_on": "昨天"}, "日期格式应为 YYYY-MM-DD"),
    ({"produced_on": "2026-11-20", "expires_on": "2026-11-01"}, "到期日期不能早于生产日期"),
    ({"lot_no": "L" * 41}, "批号最多 40 个字"),
    # issue 18, point 11: expired goods are not received
    ({"expires_on": (local_today() - dt.timedelta(days=1)).isoformat()}, "过期商品不能入库"),
]


@pytest.mark.parametrize("change, message", BAD_RECEIPTS)
def test_every_bad_receipt_line_is_refused_in_chinese_and_writes_nothing(app, client, manager, change, message):
    line = {"product": TEA, "qty": "2", "cost": "40", "lot_no": "L1"}
    line.update(change)
    before = counts(app)
    response = post(client, "/stock/receipts/new", receipt_data(manager, [line]))
    assert_refused(response, message)
    assert counts(app) == before


@pytest.mark.parametrize("head, message", [
    ({"supplier_id": ""}, "请选择供应商"),
    ({"supplier_id": "abc"}, "请选择供应商"),
    ({"supplier_id": "99999"}, "请选择供应商"),
    ({"location_id": "99999"}, "请选择收货位置"),
    ({"location_id": "x"}, "请选择收货位置"),
])
def test_bad_receipt_head_is_refused(app, client, manager, head, message):
    before = counts(app)
    response = post(client, "/stock/receipts/new", receipt_data(manager, [{"product": TEA, "qty": "1", "cost": "1"}], **head))
    assert_refused(response, message)
    assert counts(app) == before


def test_receiving_into_a_virtual_or_floor_location_is_refused(app, client, manager):
    before = counts(app)
    for code in ("SUPPLIER", "LOSS", "HALL"):
        response = post(client, "/stock/receipts/new",
                        receipt_data(manager, [{"product": TEA, "qty": "1", "cost": "1"}], location_id=str(manager[code])))
        assert_refused(response, "请选择收货位置")
    assert counts(app) == before


def test_a_receipt_without_lines_is_refused(app, client, manager):
    before = counts(app)
    assert_refused(post(client, "/stock/receipts/new", receipt_data(manager, [])), "请至少填写一行商品")
    assert counts(app) == before


def test_several_problems_are_all_shown_on_their_lines(app, client, manager):
    response = post(client, "/stock/receipts/new", receipt_data(manager, [
        {"product": "不存在", "qty": "1", "cost": "1"},
        {"product": TEA, "qty": "abc", "cost": "1"},
    ]))
    assert_refused(response, "找不到商品：不存在", "数量格式不正确：abc")
    page = html(response)
    assert 'value="不存在"' in page and 'value="abc"' in page  # what was typed is kept


def test_missing_csrf_token_is_refused_in_chinese(app, client, manager):
    before = counts(app)
    response = client.post("/stock/receipts/new", data=receipt_data(manager, [{"product": TEA, "qty": "1", "cost": "1"}]))
    assert response.status_code == 400 and "表单已过期" in html(response)
    assert counts(app) == before


# --- transfers -----------------------------------------------------------------------------------

def test_transfer_takes_the_earliest_lots_prints_a_pick_list_and_posts(app, client, manager):
    stock_up(app, client, manager)
    transfer_id = create_transfer(client, manager, [{"product": "松桃绿茶", "qty": "8"}, {"product": RICE, "qty": "1.2"}],
                                  to="HALL-STORE")
    page = html(client.get(f"/stock/transfers/{transfer_id}"))
    assert "T-EARLY" in page and "T-LATE" in page  # 6 of the early lot, then 2 of the late one
    pick = html(client.get(f"/stock/transfers/{transfer_id}/pick-list"))
    assert "调拨拣货单" in pick and "黔货出山大湾区物流基地" in pick
    assert pick.index("T-EARLY") < pick.index("T-LATE")
    assert "1.200" in pick
    assert level(app, "BASE", TEA) == 10_000  # nothing moves before posting

    response = post(client, f"/stock/transfers/{transfer_id}/post", {}, form_path=f"/stock/transfers/{transfer_id}")
    assert response.status_code == 302
    assert level(app, "BASE", TEA) == 2_000 and level(app, "HALL-STORE", TEA) == 8_000
    assert level(app, "BASE", RICE) == 4_050 and level(app, "HALL-STORE", RICE) == 1_200
    assert "已过账" in html(client.get(f"/stock/transfers/{transfer_id}"))
    # posting twice moves nothing twice
    before = counts(app)
    assert post(client, f"/stock/transfers/{transfer_id}/post", {}, form_path=f"/stock/transfers/{transfer_id}").status_code == 400
    assert counts(app) == before


def test_transfer_that_would_take_the_source_below_zero_is_refused_naming_the_product(app, client, manager):
    stock_up(app, client, manager)
    # Honey was never received: the draft is refused at once or at posting, naming the product.
    data = {"from_location_id": str(manager["BASE"]), "to_location_id": str(manager["HALL"]), "note": "",
            "lines-0-product": TEA, "lines-0-qty": "2", "lines-1-product": HONEY, "lines-1-qty": "1"}
    before = counts(app)
    response = post(client, "/stock/transfers/new", data)
    if response.status_code == 302:
        transfer_id = int(urlsplit(response.headers["Location"]).path.split("/")[-1])
        before = counts(app)
        response = post(client, f"/stock/transfers/{transfer_id}/post", {}, form_path=f"/stock/transfers/{transfer_id}")
    assert_refused(response, "寨英土蜂蜜 500g")
    assert "库存不足" in " ".join(flashes(response))
    assert counts(app) == before
    assert level(app, "BASE", TEA) == 10_000 and level(app, "HALL", TEA) == 0


def test_transfer_of_more_than_is_there_is_refused_and_writes_nothing(app, client, manager):
    stock_up(app, client, manager)
    data = {"from_location_id": str(manager["BASE"]), "to_location_id": str(manager["HALL-STORE"]), "note": "",
            "lines-0-product": TEA, "lines-0-qty": "11"}
    before = counts(app)
    response = post(client, "/stock/transfers/new", data)
    if response.status_code == 302:
        transfer_id = int(urlsplit(response.headers["Location"]).path.split("/")[-1])
        assert "库存不足" in html(client.get(f"/stock/transfers/{transfer_id}"))
        before = counts(app)
        response = post(client, f"/stock/transfers/{transfer_id}/post", {}, form_path=f"/stock/transfers/{transfer_id}")
    assert_refused(response, "松桃绿茶 250g")
    assert counts(app) == before


@pytest.mark.parametrize("change, message", [
    ({"to_location_id": "BASE"}, "调出和调入位置不能相同"),
    ({"to_location_id": "LOSS"}, "请选择调入位置"),
    ({"from_location_id": "SUPPLIER"}, "请选择调出位置"),
    ({"from_location_id": "abc"}, "请选择调出位置"),
    ({"lines-0-qty": "abc"}, "数量格式不正确"),
    ({"lines-0-qty": "-1"}, "数量必须大于零"),
    ({"lines-0-product": "没有这个"}, "找不到商品：没有这个"),
    ({"lines-0-product": ""}, "请输入商品编码、条码或名称"),
])
def test_bad_transfers_are_refused(app, client, manager, change, message):
    stock_up(app, client, manager)
    data = {"from_location_id": str(manager["BASE"]), "to_location_id": str(manager["HALL"]), "note": "",
            "lines-0-product": TEA, "lines-0-qty": "1"}
    for key, value in change.items():
        data[key] = str(manager[value]) if value in manager else value
    before = counts(app)
    assert_refused(post(client, "/stock/transfers/new", data), message)
    assert counts(app) == before
