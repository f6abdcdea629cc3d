"""The manager's stock pages in a real headless Chromium: receive goods with lots at the
logistics base, transfer them to the hall floor with a printed pick list, and count a shelf with a
variance on the 10-inch tablet. The levels afterwards are exactly what was entered.

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from inventory.localtime import local_today
from inventory.models import Lot
from tests.conftest import screenshot
from tests.fixtures.browser import login_by_password, no_horizontal_scroll
from tests.fixtures.shop import RICE, TEA, TEA_BARCODE, level, read, shop  # noqa: F401  (shop is a fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def manager_page(live_server, page, make_user, shop):  # noqa: F811
    make_user("wumei", "manager", display_name="吴梅")
    login_by_password(page, live_server, "wumei")
    page.on("dialog", lambda dialog: dialog.accept())  # "确定过账？"
    return page


def fill_line(page, index: int, **values) -> None:
    for key, value in values.items():
        field = page.locator(f'input[name="lines-{index}-{key}"]')
        field.fill(value)
        if key == "product":
            field.dispatch_event("change")


def test_receive_transfer_print_and_count(app, live_server, manager_page, tablet_page, shop):  # noqa: F811
    page = manager_page
    today = local_today()
    early, late = today + dt.timedelta(days=20), today + dt.timedelta(days=200)

    # --- receiving at the base, two lots of tea and a weighed product -----------------------
    page.goto(f"{live_server}/stock/")
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-index-empty")
    page.get_by_role("link", name="新建入库单").first.click()
    page.wait_for_url(re.compile(r"/stock/receipts/new$"))
    page.get_by_label("供应商", exact=True).select_option(label="松桃苗族自治县孟溪镇红米种植农民专业合作社")
    page.get_by_label("收货位置", exact=True).select_option(label="黔货出山大湾区物流基地")
    page.get_by_label("供应商送货单号", exact=True).fill("SD-0088")
    fill_line(page, 0, product=TEA_BARCODE, qty="6", cost="40", lot_no="T-EARLY")
    page.locator('input[name="lines-0-expires_on"]').fill(early.isoformat())
    fill_line(page, 1, product=TEA, qty="4", cost="41.5", lot_no="T-LATE")
    page.locator('input[name="lines-1-expires_on"]').fill(late.isoformat())
    fill_line(page, 2, product="孟溪红米", qty="5.25", cost="8.50", lot_no="R-1")
    page.locator('input[name="lines-2-produced_on"]').fill(today.isoformat())
    # the hint under a line says which product the typed text found
    # (filled by a lookup request: wait for it rather than read it once)
    expect(page.locator("tr[data-line]").nth(2).locator(".stk-hint")).not_to_be_empty(timeout=10_000)
    page.wait_for_function("document.querySelectorAll('.stk-hint')[0].textContent.includes('松桃绿茶')")
    # a typo shows on its line, in Chinese, and nothing is saved
    fill_line(page, 3, product="不存在的商品", qty="abc", cost="1")
    with page.expect_navigation():
        page.get_by_role("button", name="保存草稿").click()
    assert "找不到商品：不存在的商品" in page.locator('tr[data-line]').nth(3).inner_text()
    assert page.locator(".flash-error").count() >= 1
    assert page.locator('input[name="lines-0-expires_on"]').input_value() == early.isoformat()
    screenshot(page, "stock-receipt-error")
    fill_line(page, 3, product="", qty="", cost="")
    rows_before = page.locator("tr[data-line]").count()
    page.get_by_role("button", name="加一行").click()
    assert page.locator("tr[data-line]").count() == rows_before + 1
    assert page.locator(f'input[name="lines-{rows_before}-product"]').evaluate("e => e === document.activeElement")
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-receipt-new")
    with page.expect_navigation():
        page.get_by_role("button", name="保存草稿").click()
    assert "已保存为草稿" in page.locator(".flash").first.inner_text()
    assert level(app, "BASE", TEA) == 0  # a draft moves nothing
    screenshot(page, "stock-receipt-draft")
    with page.expect_navigation():
        page.get_by_role("button", name="过账入库").click()
    assert "已过账" in page.locator("main h1").inner_text()
    assert page.locator("#receipt-lines").get_by_text("5.250").is_visible()
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-receipt-posted")

    # --- transfer to the hall floor; FEFO lots; the printable pick list -----------------------
    page.goto(f"{live_server}/stock/transfers/new")
    page.get_by_label("调出位置", exact=True).select_option(label="黔货出山大湾区物流基地")
    page.get_by_label("调入位置", exact=True).select_option(label="梵净山珍·松桃馆 卖场")
    fill_line(page, 0, product="松桃绿茶", qty="8")
    fill_line(page, 1, product=RICE, qty="1.2")
    page.wait_for_function("document.querySelectorAll('.stk-hint')[0].textContent.includes('调出位置现有')")
    with page.expect_navigation():
        page.get_by_role("button", name="生成调拨单").click()
    lines = page.locator("#transfer-lines tbody tr")
    assert lines.count() == 3  # tea split over the two lots, earliest expiry first, and the rice
    text = page.locator("#transfer-lines").inner_text()
    assert text.index("T-EARLY") < text.index("T-LATE")
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-transfer-draft")

    page.get_by_role("link", name="打印拣货单").click()
    page.wait_for_url(re.compile(r"/pick-list$"))
    sheet = page.locator("#pick-list")
    assert "调拨拣货单" in sheet.inner_text() and "梵净山珍·松桃馆 卖场" in sheet.inner_text()
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-pick-list")
    page.emulate_media(media="print")
    assert not page.locator("header.topbar").is_visible()
    assert not page.get_by_role("button", name="打印").is_visible()
    # A4 portrait at 96 dpi is 794 px wide; the sheet fits inside the 12 mm margins
    page.set_viewport_size({"width": 794 - 2 * 45, "height": 1123})
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-pick-list-print")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1366, "height": 768})
    page.get_by_role("link", name="返回调拨单").click()
    with page.expect_navigation():
        page.get_by_role("button", name="过账调拨").click()
    assert "已过账" in page.locator("main h1").inner_text()

    assert level(app, "BASE", TEA) == 2_000 and level(app, "HALL", TEA) == 8_000
    assert level(app, "BASE", RICE) == 4_050 and level(app, "HALL", RICE) == 1_200

    # --- counting a shelf of the hall floor on the tablet --------------------------------------
    tablet = tablet_page
    tablet.on("dialog", lambda dialog: dialog.accept())
    login_by_password(tablet, live_server, "wumei")
    tablet.goto(f"{live_server}/stock/counts?location={shop['HALL']}")
    assert tablet.get_by_label("盘点位置", exact=True).input_value() == str(shop["HALL"])
    tablet.get_by_label("盘点范围（如：货架 A、茶叶区）", exact=True).fill("货架 A")
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="开始盘点").click()
    scan = tablet.get_by_label("扫码或输入商品", exact=True)
    assert scan.evaluate("e => e === document.activeElement")
    # an unknown code: a Chinese message, what was typed kept, nothing recorded
    scan.press_sequentially("6900000000000", delay=10)
    scan.press("Enter")
    tablet.get_by_label("实盘数量", exact=True).fill("3")
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="记录").tap()
    assert "找不到商品：6900000000000" in tablet.locator(".flash-error").inner_text()
    assert tablet.get_by_label("扫码或输入商品", exact=True).input_value() == "6900000000000"
    assert tablet.locator("#count-lines tbody tr[data-sku]").count() == 0
    screenshot(tablet, "stock-count-error")
    scan = tablet.get_by_label("扫码或输入商品", exact=True)
    scan.fill("")
    # a scanner types the code and Enter: the cursor moves on to the quantity
    scan.press_sequentially(TEA_BARCODE, delay=10)
    scan.press("Enter")
    counted = tablet.get_by_label("实盘数量", exact=True)
    assert counted.evaluate("e => e === document.activeElement")
    counted.fill("7")
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="记录").tap()
    scan = tablet.get_by_label("扫码或输入商品", exact=True)
    scan.fill(RICE)
    tablet.get_by_label("实盘数量", exact=True).fill("1.2")
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="记录").tap()
    row = tablet.locator(f'tr[data-sku="{TEA}"]')
    assert row.locator("[data-book]").inner_text().strip() == "8"
    assert row.locator("[data-counted]").inner_text().strip() == "7"
    assert row.locator("[data-variance]").inner_text().strip() == "-1"
    assert tablet.locator(f'tr[data-sku="{RICE}"] [data-variance]').inner_text().strip() == "0.000"
    # big touch targets
    for name in ("记录", "过账差异"):
        box = tablet.get_by_role("button", name=name).bounding_box()
        assert box["height"] >= 48, name
    assert no_horizontal_scroll(tablet)
    screenshot(tablet, "stock-count-tablet")

    tablet.reload()  # the count in progress is in the database
    assert tablet.locator(f'tr[data-sku="{TEA}"] [data-variance]').inner_text().strip() == "-1"
    tablet.get_by_label("调整原因", exact=True).fill("货架 A 周盘")
    with tablet.expect_navigation():
        tablet.get_by_role("button", name="过账差异").tap()
    assert "已过账" in tablet.locator("main h1").inner_text()
    screenshot(tablet, "stock-count-posted")

    assert level(app, "HALL", TEA) == 7_000 and level(app, "COUNT-ADJ", TEA) == 1_000
    assert level(app, "HALL", RICE) == 1_200
    assert level(app, "BASE", TEA) == 2_000 and level(app, "SUPPLIER", TEA) == -10_000
    lots = read(app, lambda s: {lot.lot_no: lot.expires_on for lot in s.scalars(select(Lot))})
    assert lots["T-EARLY"] == early and lots["R-1"] == today + dt.timedelta(days=180)

    # --- the stock home, the ledger and the dashboard's alerts --------------------------------
    page.goto(f"{live_server}/stock/")
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-index")
    page.goto(f"{live_server}/stock/locations/{shop['HALL']}")
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-location-hall")
    page.goto(f"{live_server}/stock/products/{shop['tea']}/ledger")
    assert page.locator("#ledger tbody tr").count() >= 5
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-ledger")
    page.goto(f"{live_server}/stock/expiry")
    assert "T-EARLY" in page.locator("#expiring").inner_text()
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-expiry")
    for path, name in (("/stock/receipts", "stock-receipts"), ("/stock/transfers", "stock-transfers")):
        page.goto(f"{live_server}{path}")
        assert no_horizontal_scroll(page)
        screenshot(page, name)
    # a reorder point for the hall floor, above what is there now
    page.goto(f"{live_server}/stock/reorder-points")
    page.get_by_label("位置", exact=True).select_option(label="梵净山珍·松桃馆 卖场")
    page.get_by_label("商品", exact=True).fill("松桃绿茶")
    page.get_by_label("最低库存（补货点）", exact=True).fill("12")
    with page.expect_navigation():
        page.get_by_role("button", name="保存").click()
    assert "低于补货点" in page.locator("#reorder-points").inner_text()
    assert no_horizontal_scroll(page)
    screenshot(page, "stock-reorder")
    page.goto(f"{live_server}/dashboard")
    with page.expect_navigation():
        page.get_by_role("button", name="刷新提醒").click()
    assert "低于补货点" in page.locator("#alert-list").inner_text()
    assert "临期批次" in page.locator("#alert-list").inner_text()
    assert no_horizontal_scroll(page)
    screenshot(page, "dashboard-alerts")
    # the tablet shows the count pages without sideways scrolling too
    tablet.goto(f"{live_server}/stock/counts")
    assert no_horizontal_scroll(tablet)
    screenshot(tablet, "stock-counts-tablet")
