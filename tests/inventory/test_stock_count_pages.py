"""The manager's stock pages over HTTP, part two: counts, expiry and write-offs, reorder points
and alerts on the dashboard, and odd URLs and forms that never give a 500. Every mistake a person
can make gets a Chinese message, status 400, and changes nothing. Access, levels, receiving and
transfers are in tests/inventory/test_stock_pages.py; the world (``shop``, ``manager``) is in
tests/fixtures/shop.py."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from inventory.documents import StockCount
from inventory.ledger import move
from inventory.models import (
    Alert,
    AlertKind,
    AuditEvent,
    Lot,
    LotLevel,
    MoveReason,
    ReorderPoint,
)
from pos.core.db import session_scope
from tests.fixtures.shop import (  # noqa: F401  (manager, shop: fixtures)
    HONEY,
    RICE,
    TEA,
    TEA_BARCODE,
    assert_refused,
    counts,
    create_transfer,
    flashes,
    html,
    level,
    manager,
    post,
    read,
    receive,
    shop,
    stock_up,
)


# --- counts --------------------------------------------------------------------------------------

def start_count(client, shop, code: str = "BASE", scope: str = "货架 A") -> int:
    response = post(client, "/stock/counts", {"location_id": str(shop[code]), "scope": scope})
    assert response.status_code == 302, flashes(response)
    return int(urlsplit(response.headers["Location"]).path.split("/")[-1])


def test_count_with_variance_is_posted_to_count_adjustment(app, client, manager):
    stock_up(app, client, manager)
    count_id = start_count(client, manager)
    path = f"/stock/counts/{count_id}"
    assert post(client, path, {"product": TEA_BARCODE, "counted": "7"}).status_code == 302
    assert post(client, path, {"product": RICE, "counted": "5.3"}).status_code == 302
    assert post(client, path, {"product": HONEY, "counted": "0"}).status_code == 302  # counted nothing: fine

    page = html(client.get(path))  # a reload shows what was counted (it is in the database)
    assert "货架 A" in page
    row = re.search(r'<tr data-sku="%s".*?</tr>' % TEA, page, re.S).group(0)
    assert re.search(r"data-book>\s*10\s*<", row) and re.search(r"data-counted>\s*7\s*<", row)
    assert re.search(r"data-variance>\s*-3\s*<", row)
    rice = re.search(r'<tr data-sku="%s".*?</tr>' % RICE, page, re.S).group(0)
    assert re.search(r"data-variance>\s*\+0.050\s*<", rice)

    # a re-count replaces the line
    assert post(client, path, {"product": TEA, "counted": "8"}).status_code == 302
    assert re.search(r"data-variance>\s*-2\s*<", re.search(r'<tr data-sku="%s".*?</tr>' % TEA, html(client.get(path)), re.S).group(0))

    assert_refused(post(client, f"{path}/post", {"reason": ""}, form_path=path), "请填写调整原因")
    response = post(client, f"{path}/post", {"reason": "月末盘点"}, form_path=path)
    assert response.status_code == 302, flashes(response)
    assert level(app, "BASE", TEA) == 8_000
    assert level(app, "BASE", RICE) == 5_300
    assert level(app, "COUNT-ADJ", TEA) == 2_000 and level(app, "COUNT-ADJ", RICE) == -50
    assert read(app, lambda s: s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "stock.count_post"))) == 1
    done = html(client.get(path))
    assert "已过账" in done and "月末盘点" in done
    before = counts(app)
    assert_refused(post(client, path, {"product": TEA, "counted": "1"}), "已结束")
    assert counts(app) == before


@pytest.mark.parametrize("data, message", [
    ({"product": TEA, "counted": "abc"}, "数量格式不正确"),
    ({"product": TEA, "counted": "-1"}, "数量不能为负数"),
    ({"product": TEA, "counted": "2.5"}, "按件销售的商品数量必须是整数"),
    ({"product": TEA, "counted": ""}, "请输入数量"),
    ({"product": "不存在", "counted": "1"}, "找不到商品：不存在"),
    ({"product": "", "counted": "1"}, "请输入商品编码、条码或名称"),
])
def test_bad_count_entries_are_refused(app, client, manager, data, message):
    stock_up(app, client, manager)
    count_id = start_count(client, manager)
    before = counts(app)
    assert_refused(post(client, f"/stock/counts/{count_id}", data), message)
    assert counts(app) == before


def test_bad_count_start_is_refused(app, client, manager):
    before = counts(app)
    assert_refused(post(client, "/stock/counts", {"location_id": "", "scope": ""}), "请选择盘点位置")
    assert_refused(post(client, "/stock/counts", {"location_id": str(manager["LOSS"]), "scope": ""}), "请选择盘点位置")
    assert_refused(post(client, "/stock/counts", {"location_id": "1 OR 1=1", "scope": ""}), "请选择盘点位置")
    assert counts(app) == before


def test_a_cancelled_count_changes_no_level(app, client, manager):
    stock_up(app, client, manager)
    count_id = start_count(client, manager)
    assert post(client, f"/stock/counts/{count_id}", {"product": TEA, "counted": "1"}).status_code == 302
    response = post(client, f"/stock/counts/{count_id}/cancel", {}, form_path=f"/stock/counts/{count_id}")
    assert response.status_code == 302
    assert level(app, "BASE", TEA) == 10_000
    assert "已取消" in html(client.get(f"/stock/counts/{count_id}"))


# --- expiry and write-off ----------------------------------------------------------------------

def test_expiry_page_lists_lots_within_n_days_and_writes_off(app, client, manager):
    stock_up(app, client, manager)
    page = html(client.get("/stock/expiry"))  # 30 days by default
    assert "T-EARLY" in page and "T-LATE" not in page
    assert "T-LATE" in html(client.get("/stock/expiry?days=365"))
    assert "T-EARLY" not in html(client.get(f"/stock/expiry?location={manager['HALL']}"))

    lot_id = read(app, lambda s: s.scalar(select(Lot.id).where(Lot.lot_no == "T-EARLY")))
    data = {"location_id": str(manager["BASE"]), "product": TEA, "lot_id": str(lot_id), "qty": "2",
            "reason": "damage", "note": "包装破损", "days": "30"}
    response = post(client, "/stock/write-off", data, form_path="/stock/expiry")
    assert response.status_code == 302, flashes(response)
    assert level(app, "BASE", TEA) == 8_000 and level(app, "LOSS", TEA) == 2_000
    lot_level = read(app, lambda s: s.scalar(select(LotLevel.qty_milli).where(LotLevel.lot_id == lot_id,
                                                                             LotLevel.location_id == manager["BASE"])))
    assert lot_level == 4_000
    assert read(app, lambda s: s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "stock.write_off"))) == 1


@pytest.mark.parametrize("change, message", [
    ({"qty": "abc"}, "数量格式不正确"),
    ({"qty": "-2"}, "数量必须大于零"),
    ({"qty": "7"}, "库存不足"),
    ({"reason": "stolen"}, "请选择报损原因"),
    ({"product": "不存在"}, "找不到商品：不存在"),
    ({"location_id": "99999"}, "请选择报损的位置"),
    ({"location_id": "LOSS"}, "请选择报损的位置"),
    ({"lot_id": "abc"}, "批次不存在"),
])
def test_bad_write_offs_are_refused(app, client, manager, change, message):
    stock_up(app, client, manager)
    lot_id = read(app, lambda s: s.scalar(select(Lot.id).where(Lot.lot_no == "T-EARLY")))
    data = {"location_id": str(manager["BASE"]), "product": TEA, "lot_id": str(lot_id), "qty": "2",
            "reason": "expiry", "note": ""}
    for key, value in change.items():
        data[key] = str(manager[value]) if value in manager else value
    before = counts(app)
    assert_refused(post(client, "/stock/write-off", data, form_path="/stock/expiry"), message)
    assert counts(app) == before


@pytest.mark.parametrize("query", ["days=abc", "days=-5", "days=99999999", "days=²", "days=3.5", "location=abc",
                                   "location=99999"])
def test_bad_expiry_filters_get_a_message(app, client, manager, query):
    response = client.get(f"/stock/expiry?{query}")
    assert_refused(response)


# --- reorder points and alerts on the dashboard -------------------------------------------------

def test_reorder_point_raises_an_alert_on_the_dashboard_that_can_be_resolved(app, client, manager):
    stock_up(app, client, manager)
    response = post(client, "/stock/reorder-points", {"location_id": str(manager["BASE"]), "product": TEA, "min_qty": "12"})
    assert response.status_code == 302, flashes(response)
    assert read(app, lambda s: s.get(ReorderPoint, (manager["BASE"], manager["tea"])).min_qty_milli) == 12_000
    assert "低于补货点" in html(client.get("/stock/reorder-points"))

    response = post(client, "/stock/alerts/refresh", {"next": "/dashboard"}, form_path="/dashboard")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/dashboard"
    dashboard = html(client.get("/dashboard"))
    assert "低于补货点" in dashboard and "松桃绿茶 250g" in dashboard
    assert "T-EARLY" in dashboard  # the lot expiring in 20 days
    alert_id = read(app, lambda s: s.scalar(select(Alert.id).where(Alert.kind == AlertKind.BELOW_REORDER,
                                                                   Alert.resolved_at.is_(None))))
    response = post(client, f"/stock/alerts/{alert_id}/resolve", {"next": "/dashboard"}, form_path="/dashboard")
    assert response.status_code == 302
    assert read(app, lambda s: s.get(Alert, alert_id).resolved_at) is not None
    assert post(client, "/stock/alerts/99999/resolve", {}, form_path="/dashboard").status_code == 404
    # an off-site "next" is not followed
    response = post(client, "/stock/alerts/refresh", {"next": "https://evil.example/"}, form_path="/dashboard")
    assert urlsplit(response.headers["Location"]).netloc in ("", "localhost")


def test_dashboard_shows_a_negative_level_from_a_sale(app, client, manager):
    with session_scope(app) as s:
        move(s, product_id=manager["honey"], qty_milli=2000, from_location_id=manager["HALL"],
             to_location_id=manager["CUSTOMER"], reason=MoveReason.SALE, allow_negative_source=True)
    dashboard = html(client.get("/dashboard"))
    assert "账面为负" in dashboard and "寨英土蜂蜜 500g" in dashboard
    assert "入库调拨盘点" not in dashboard


@pytest.mark.parametrize("data, message", [
    ({"min_qty": "abc"}, "数量格式不正确"),
    ({"min_qty": "-1"}, "数量不能为负数"),
    ({"product": "不存在"}, "找不到商品：不存在"),
    ({"location_id": "99999"}, "请选择位置"),
])
def test_bad_reorder_points_are_refused(app, client, manager, data, message):
    form = {"location_id": str(manager["BASE"]), "product": TEA, "min_qty": "5"}
    form.update(data)
    before = counts(app)
    assert_refused(post(client, "/stock/reorder-points", form), message)
    assert counts(app) == before


def test_product_lookup_for_line_hints(app, client, manager):
    data = client.get(f"/stock/lookup?q={TEA_BARCODE}").get_json()
    assert data["sku"] == TEA and data["name"] == "松桃绿茶 250g"
    assert client.get("/stock/lookup?q=不存在").status_code == 404
    assert "找不到商品" in client.get("/stock/lookup?q=不存在").get_json()["error"]


def test_a_write_off_without_a_lot_takes_the_earliest_lots_first(app, client, manager):
    stock_up(app, client, manager)
    data = {"location_id": str(manager["BASE"]), "product": "松桃绿茶", "lot_id": "", "qty": "7",
            "reason": "damage", "note": "货架倒塌"}
    response = post(client, "/stock/write-off", data, form_path="/stock/expiry")
    assert response.status_code == 302, flashes(response)
    assert level(app, "BASE", TEA) == 3_000 and level(app, "LOSS", TEA) == 7_000

    def lots(s):
        return dict(s.execute(select(Lot.lot_no, LotLevel.qty_milli).join(LotLevel, LotLevel.lot_id == Lot.id)
                              .where(LotLevel.location_id == manager["BASE"], Lot.product_id == manager["tea"])).all())
    assert read(app, lots) == {"T-EARLY": 0, "T-LATE": 3_000}
    # "other" needs a word of explanation
    before = counts(app)
    data.update(reason="other", note="", qty="1")
    assert_refused(post(client, "/stock/write-off", data, form_path="/stock/expiry"), "请填写说明")
    assert counts(app) == before


# --- nothing a person (or a mistyped URL) sends gives a 500 ------------------------------------

HUGE = "9" * 25


@pytest.mark.parametrize("path", [
    "/stock/receipts?page=" + HUGE, "/stock/transfers?page=" + HUGE, "/stock/locations/1?page=" + HUGE,
    "/stock/products/1/ledger?page=" + HUGE, "/stock/products/1/ledger?location=" + HUGE,
    "/stock/locations/1?q=%25%25_%5C", "/stock/lookup?q=%00", "/stock/expiry?days=%00",
    "/stock/counts?location=abc", "/stock/reorder-points?location=xyz&product=" + "x" * 500,
    "/stock/transfers/new?from=" + "x" * 100, "/stock/receipts/" + HUGE, "/stock/counts/" + HUGE,
])
def test_odd_urls_never_give_a_500(client, manager, path):
    assert client.get(path).status_code in (200, 400, 404), path


@pytest.mark.parametrize("path, data", [
    ("/stock/receipts/new", {"supplier_id": HUGE, "location_id": HUGE, "lines-0-product": TEA,
                             "lines-0-qty": HUGE, "lines-0-cost": HUGE}),
    ("/stock/receipts/new", {"lines-0-product": TEA, "lines-0-qty": "99999999", "lines-0-cost": "999999999"}),
    ("/stock/transfers/new", {"from_location_id": HUGE, "to_location_id": "1", "lines-0-product": "x" * 5000,
                              "lines-0-qty": HUGE}),
    ("/stock/counts", {"location_id": "1", "scope": "x" * 5000}),
    ("/stock/write-off", {"location_id": HUGE, "product": TEA, "lot_id": HUGE, "qty": HUGE, "reason": "expiry"}),
    ("/stock/reorder-points", {"location_id": "3", "product": TEA, "min_qty": "99999999"}),
    ("/stock/alerts/" + HUGE + "/resolve", {}),
    ("/stock/receipts/" + HUGE + "/post", {}),
])
def test_odd_posts_never_give_a_500_and_write_nothing(app, client, manager, path, data):
    before = counts(app)
    response = post(client, path, data, form_path="/stock/expiry")
    assert response.status_code in (400, 404), (path, response.status_code)
    assert counts(app) == before


def test_drafts_can_be_voided_and_nothing_moves(app, client, manager):
    stock_up(app, client, manager)
    receipt_id = receive(client, manager, [{"product": HONEY, "qty": "1", "cost": "60"}], post_it=False)
    transfer_id = create_transfer(client, manager, [{"product": TEA, "qty": "1"}])
    levels = counts(app)["levels"]
    assert post(client, f"/stock/receipts/{receipt_id}/cancel", {}, form_path="/stock/").status_code == 302
    assert post(client, f"/stock/transfers/{transfer_id}/cancel", {}, form_path="/stock/").status_code == 302
    assert counts(app)["levels"] == levels
    assert "已取消" in html(client.get(f"/stock/transfers/{transfer_id}"))
    before = counts(app)
    response = post(client, f"/stock/receipts/{receipt_id}/post", {}, form_path="/stock/")
    assert_refused(response, "作废")
    assert post(client, f"/stock/transfers/{transfer_id}/post", {}, form_path="/stock/").status_code == 400
    assert counts(app) == before


@pytest.mark.parametrize("path", ["/stock/lookup?q=%00", "/stock/locations/1?q=a%00b", "/stock/transfers/new?from=B%00"])
def test_a_nul_byte_in_a_query_gives_no_500(client, manager, path):
    assert client.get(path).status_code == 400, path  # refused, in Chinese (issue 18.10a)


def test_a_nul_byte_in_a_form_is_refused(app, client, manager):
    stock_up(app, client, manager)
    before = counts(app)
    response = post(client, "/stock/counts", {"location_id": str(manager["BASE"]), "scope": "货架\x00A"})
    assert response.status_code == 400 and "控制字符" in response.get_data(as_text=True)
    assert read(app, lambda s: s.scalar(select(StockCount.scope))) is None
    assert counts(app) == before
