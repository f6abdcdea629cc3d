"""Issue 14's browser test: the till keeps selling when the network drops, in a real Chromium with
its service worker (``context.set_offline(True)`` cuts the page and the worker alike).

The cashier opens the till online (the catalogue and the receipt numbers are fetched), the network
drops, she sells three sales — a barcode with cash and change, a pinyin search with an order
discount, a weighed scale label — reloads the page still offline (it comes from the service
worker and still holds the three sales: 待上传 3 笔), and the network returns: each sale is
recorded exactly once, at the moment it was paid (not when it arrived), under the receipt number
reserved for it, with its stock moves and certified flags. The hall is tests/fixtures/till_browser.py's.
"""
from __future__ import annotations

import datetime as dt
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import func, select

from inventory.localtime import utcnow
from inventory.models import Location, StockMove
from inventory.scale import encode
from pos.core.db import session_scope
from pos.models import Payment, Sale, SaleLine
from tests.conftest import screenshot
from tests.fixtures.till_browser import (  # noqa: F401  (hall is a fixture)
    SAUCE_EAN,
    TEA_EAN,
    WEIGHT13,
    expect_text,
    hall,
    open_till,
    sale_count,
    scan,
    wait_focus_on_scan,
)

pytestmark = pytest.mark.browser

PENDING = "JSON.parse(localStorage.getItem('songtao.till.pending') || '[]')"


@pytest.fixture
def till_context(chromium):
    """The till PC's browser, service workers allowed (Playwright's default, said out loud)."""
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", service_workers="allow")
    yield context
    context.close()


def pay_cash(page, tendered: str | None = None) -> None:
    page.keyboard.press("F12")
    page.locator("#dlg-pay").wait_for()
    if tendered is not None:
        page.locator('#dlg-pay input[name="amount"]').fill(tendered)
    page.keyboard.press("Enter")
    page.locator('#dlg-pay [data-action="pay-finish"]').wait_for()
    page.keyboard.press("Enter")
    page.locator("#dlg-receipt .offline-receipt").wait_for()


def next_sale(page) -> None:
    page.keyboard.press("Enter")
    page.locator("#dlg-receipt").wait_for(state="hidden")
    wait_focus_on_scan(page)


def test_three_sales_offline_a_reload_and_back_online(live_server, till_context, app, hall):
    base = live_server
    page = till_context.new_page()
    page.set_default_timeout(15_000)
    open_till(page, base)
    # online: the catalogue is in the browser, the service worker controls the page
    page.wait_for_function("self.SongtaoOffline.catalogue.byId.size === 4")
    # installing the worker caches the page and its assets first: slow on a loaded 2-core machine
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=45_000)
    expect_text(page, "#catalogue-info", "商品资料")
    blocks = page.evaluate("self.SongtaoOffline.numbersLeft('H1', self.SongtaoPricing.localDate(new Date()))")

    till_context.set_offline(True)
    offline_from = utcnow()

    # sale 1: a barcode, paid in cash with change
    scan(page, TEA_EAN)
    expect_text(page, "#offline-badge", "离线")
    page.wait_for_function("!document.querySelector('#offline-badge').hidden")
    expect_text(page, "#t-total", "¥168.00")
    pay_cash(page, "200")
    receipt = page.locator("#dlg-receipt").inner_text()
    assert "找零 ¥32.00" in receipt and "松桃梵净山翠峰茶 250g" in receipt
    screenshot(page, "till_offline_01_receipt")
    next_sale(page)

    # sale 2: found by its pinyin initials, ¥1.50 off the order (within the 10 % limit)
    page.keyboard.press("F2")
    page.locator("#dlg-search").wait_for()
    page.keyboard.type("mjlj")
    page.locator("#search-results [data-pick]").first.wait_for()
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 1")
    page.keyboard.press("F4")
    discount = page.locator("#dlg-discount")
    discount.wait_for()
    discount.get_by_label("整单").check()
    discount.get_by_label("优惠金额（元），或输入折扣如 9折、8.5折").fill("1.5")
    discount.get_by_label("优惠金额（元），或输入折扣如 9折、8.5折").press("Enter")
    expect_text(page, "#t-total", "¥14.30")
    expect_text(page, "#t-discount", "-¥1.50")
    pay_cash(page)
    next_sale(page)

    # sale 3: a weighed scale label, 523 g of ¥38.00/kg pork = ¥19.87, ¥20 handed over
    scan(page, encode(WEIGHT13, plu=101, value=523))
    expect_text(page, "#t-total", "¥19.87")
    pay_cash(page, "20")
    assert "找零 ¥0.13" in page.locator("#dlg-receipt").inner_text()
    next_sale(page)
    paid_by = utcnow()

    # what needs the server says so
    page.keyboard.press("F9")
    page.get_by_text("X 报表需要联网，当前离线").first.wait_for()

    pending = page.evaluate(PENDING)
    assert len(pending) == 3 and all(p["offline"] for p in pending)
    assert sale_count(app) == 0  # nothing reached the server
    expect_text(page, "#queue-info", "待上传 3 笔")

    # a reload while still offline: the page comes from the service worker, the sales are kept
    response = page.reload()
    assert response is not None and response.from_service_worker
    page.wait_for_function("self.SongtaoOffline && self.SongtaoOffline.catalogue.byId.size === 4")
    expect_text(page, "#queue-info", "待上传 3 笔")
    page.wait_for_function("!document.querySelector('#offline-badge').hidden")
    expect_text(page, "#shift-info", "班次 #")
    assert page.evaluate(PENDING) == pending
    screenshot(page, "till_offline_02_after_reload")
    # closing the shift is refused while sales wait (offline, and so is anything needing the server)
    page.keyboard.press("F10")
    page.get_by_text("交班需要联网，当前离线").first.wait_for()

    # the clock moves on before the network returns: the sales keep the moments they were paid
    time.sleep(3)
    back_at = utcnow()
    till_context.set_offline(False)
    try:
        page.wait_for_function(f"{PENDING}.length === 0", timeout=30_000)
    except PlaywrightTimeout:
        raise AssertionError(f"still waiting: {page.evaluate(PENDING)}") from None
    page.wait_for_function("document.querySelector('#offline-badge').hidden")
    assert page.locator("#queue-info").is_hidden()
    page.wait_for_function("!document.querySelector('#scan-msg').textContent.includes('需要联网')")
    screenshot(page, "till_offline_03_back_online")

    ids = [p["sale"]["client_sale_id"] for p in pending]
    with session_scope(app) as s:
        for p in pending:  # each recorded exactly once, under its own id
            assert s.scalar(select(func.count()).select_from(Sale)
                            .where(Sale.client_sale_id == p["sale"]["client_sale_id"])) == 1
        assert s.scalar(select(func.count()).select_from(Sale)) == 3
        sales = [s.scalar(select(Sale).where(Sale.client_sale_id == i)) for i in ids]
        # the moment each was paid, in the order paid, well before it arrived
        for sale in sales:
            assert offline_from - dt.timedelta(seconds=1) <= sale.sold_at <= paid_by
            assert sale.recorded_at >= back_at > sale.sold_at + dt.timedelta(seconds=2)
        assert sales[0].sold_at < sales[1].sold_at < sales[2].sold_at
        # the numbers reserved for this till and day, as printed on the offline receipts
        for sale, p in zip(sales, pending):
            if blocks:
                assert p["sale"]["receipt_no"] and sale.receipt_no == p["sale"]["receipt_no"]
                assert sale.receipt_no.startswith("H1-" + sale.local_date.strftime("%Y%m%d") + "-")
        assert [sale.total_fen for sale in sales] == [16800, 1430, 1987]
        assert sales[1].discount_fen == 150
        cash = s.scalar(select(Payment).where(Payment.sale_id == sales[0].id))
        assert cash.method == "cash" and cash.amount_fen == 16800 and cash.tendered_fen == 20000
        # certified flags: the tea is covered by its certificate on the sale's day, the others are not
        lines = {ln.product_id: ln for ln in s.scalars(select(SaleLine).where(SaleLine.sale_id.in_([x.id for x in sales])))}
        assert lines[hall.tea].certified and lines[hall.tea].certificate_no == "黔扶认〔2025〕520628-0031"
        assert not lines[hall.sauce].certified and not lines[hall.pork].certified
        assert lines[hall.pork].qty_milli == 523 and lines[hall.pork].net_fen == 1987
        # the ledger: each sold quantity left the hall floor for the customer, once
        hall_id = s.scalar(select(Location.id).where(Location.code == "HALL"))
        customer_id = s.scalar(select(Location.id).where(Location.code == "CUSTOMER"))
        moves = s.execute(select(StockMove.product_id, StockMove.qty_milli, StockMove.from_location_id,
                                 StockMove.to_location_id).where(StockMove.ref_type == "sale")).all()
        assert sorted((m[0], m[1]) for m in moves) == sorted([(hall.tea, 1000), (hall.sauce, 1000), (hall.pork, 523)])
        assert all(m[2] == hall_id and m[3] == customer_id for m in moves)

    # sent again (a stale tab, a retry): nothing new is recorded
    for p in pending:
        answer = page.evaluate(
            """async (sale) => {
                const r = await fetch('/api/v1/sales', {method: 'POST', credentials: 'same-origin',
                  headers: {'Content-Type': 'application/json',
                            'X-CSRFToken': document.querySelector('meta[name=csrf-token]').content},
                  body: JSON.stringify(sale)});
                return r.status;
            }""", p["sale"])
        assert answer == 200
    assert sale_count(app) == 3


def test_closing_the_shift_is_refused_while_sales_wait(live_server, page, app, hall):
    open_till(page, live_server)
    # a sale made offline that the server refused (its price was out of bounds, say): it waits for the manager
    page.evaluate("""() => localStorage.setItem('songtao.till.pending', JSON.stringify([{offline: true,
        error: '销售未被接受', sale: {client_sale_id: 'c1f1e2d3-0000-4000-8000-000000000001', till: 'H1', lines: [],
        payments: [], sold_at: '2026-12-05T10:00:00+08:00'}}]))""")
    page.reload()
    expect_text(page, "#queue-info", "待上传 1 笔 · 1 笔未被接受，请联系店长")
    wait_focus_on_scan(page)
    page.keyboard.press("F10")
    page.get_by_text("还有 1 笔销售未上传，联网上传后才能交班").first.wait_for()
    assert page.locator("#dlg-close").is_hidden()
