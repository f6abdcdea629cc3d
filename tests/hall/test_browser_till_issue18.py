"""The till in a real browser, issue 18's points: refund by scanning the receipt's QR code and
reprint from recent receipts (14), closing with a count and a manager for a big difference (12),
another cashier taking over the shift with a manager's PIN (5), cash rounding only for cash (13),
the warning when only expired stock is on the books (11). The till's hall and what a cashier does
at it are in tests/fixtures/till_browser.py; the first shift from open to close is in
tests/hall/test_browser_till.py.

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from inventory.localtime import local_today
from inventory.models import Location, LocationKind, Setting
from inventory.scale import encode
from pos.core.db import session_scope
from pos.models import Payment, Refund, Sale, Shift, ShiftStatus, Till, User
from tests.conftest import screenshot
from tests.fixtures.till_browser import (  # noqa: F401  (hall is a fixture)
    HONEY_EAN,
    MANAGER_PIN,
    SAUCE_EAN,
    TEA_EAN,
    WEIGHT13,
    expect_text,
    hall,
    lines,
    login_by_pin,
    open_till,
    pay_cash_exactly,
    sale_count,
    scan,
    wait_focus_on_scan,
)

pytestmark = pytest.mark.browser


# --- issue 18 -------------------------------------------------------------------------------------

def test_point14_refund_by_scanning_the_receipt_qr_and_reprint_from_recent_receipts(live_server, page, app, hall):
    """The receipt's QR code (its public URL) scanned into the refund box finds the sale; any of the
    till's recent receipts can be reprinted at any time, not only after a failed print."""
    from pos.sales.links import receipt_url
    from tests.fixtures.printers import FakePrinter

    printer = FakePrinter()
    try:
        with session_scope(app) as s:
            s.scalar(select(Till).where(Till.code == "H1")).printer_uri = f"tcp://127.0.0.1:{printer.port}"
        open_till(page, live_server)
        scan(page, TEA_EAN)
        scan(page, HONEY_EAN)
        expect_text(page, "#t-total", "¥206.00")
        pay_cash_exactly(page)
        receipt = page.locator("#dlg-receipt")
        receipt.locator(".receipt").wait_for()
        receipt_no = receipt.locator(".receipt").get_attribute("data-receipt")
        printer.wait_jobs(1)
        assert page.locator("#print-status button[data-reprint]").count() == 0  # printed: no 重印 here
        page.keyboard.press("Enter")
        receipt.wait_for(state="hidden")
        wait_focus_on_scan(page)

        # F6, then the scanner reads the QR code on the customer's receipt: the URL, then Enter
        with app.test_request_context(base_url=live_server):
            url = receipt_url(receipt_no)
        page.keyboard.press("F6")
        refund = page.locator("#dlg-refund")
        refund.wait_for()
        scan(page, url.replace("t=", "t=A"))  # a mangled code is no receipt
        expect_text(page, "#dlg-refund [data-error]", "找不到小票")
        refund.get_by_label("小票号（扫描小票二维码或输入）").fill("")
        refund.get_by_label("小票号（扫描小票二维码或输入）").focus()
        scan(page, url)
        refund.locator("#refund-lines tbody tr").first.wait_for()
        assert refund.locator("#refund-lines tbody tr").count() == 2
        assert refund.get_by_label("小票号（扫描小票二维码或输入）").input_value() == receipt_no
        assert receipt_no in refund.locator('[data-fill="refund-sale-info"]').inner_text()
        refund.get_by_role("checkbox", name="梵净山蜂蜜 500g").check()
        refund.get_by_label("原因").fill("顾客扫码退货")
        refund.get_by_label("店长 PIN").fill(MANAGER_PIN)
        screenshot(page, "till_15_refund_by_qr")
        refund.get_by_role("button", name="确认退款").click()
        expect_text(page, "#dlg-refund [data-ok]", "退款完成")
        page.keyboard.press("Escape")
        refund.wait_for(state="hidden")
        with session_scope(app) as s:
            (done,) = s.scalars(select(Refund)).all()
            assert done.total_fen == 3800 and done.sale_id == s.scalar(select(Sale.id).where(Sale.receipt_no == receipt_no))

        # later, at any time: 最近小票 (F11) lists the till's receipts, each with 重印
        wait_focus_on_scan(page)
        page.keyboard.press("F11")
        recent = page.locator("#dlg-recent")
        recent.wait_for()
        row = recent.locator(f'tr[data-receipt="{receipt_no}"]')
        row.wait_for()
        assert "¥206.00" in row.inner_text()
        screenshot(page, "till_16_recent_receipts")
        row.get_by_role("button", name="重印").click()
        expect_text(page, f'#dlg-recent tr[data-receipt="{receipt_no}"] .recent-status', "已重印")
        jobs = printer.wait_jobs(3)  # the sale, the refund receipt, the reprint
        assert "重印".encode("gb18030") in jobs[-1] and receipt_no.encode() in jobs[-1]
        with session_scope(app) as s:
            assert s.scalar(select(Sale.reprint_count).where(Sale.receipt_no == receipt_no)) == 1
        page.keyboard.press("Escape")
        recent.wait_for(state="hidden")
        wait_focus_on_scan(page)
    finally:
        printer.close()


def test_point12_closing_needs_a_count_and_a_manager_for_a_big_difference(live_server, page, app, hall):
    open_till(page, live_server)
    scan(page, SAUCE_EAN)
    expect_text(page, "#t-total", "¥15.80")
    pay_cash_exactly(page)
    page.locator("#dlg-receipt .receipt").wait_for()
    page.keyboard.press("Enter")
    wait_focus_on_scan(page)

    closes = []
    page.on("request", lambda r: closes.append(r.url) if r.url.endswith("/close") else None)
    page.keyboard.press("F10")
    closing = page.locator("#dlg-close")
    closing.wait_for()
    expect_text(page, '#dlg-close [data-fill="close-expected"]', "¥15.80")
    labels = closing.locator("#denoms tbody th").all_inner_texts()
    assert labels[-6:] == ["5 角", "2 角", "1 角", "5 分", "2 分", "1 分"]  # 抹零 is off: 角 and 分
    # Enter through every field, blank, and once more on the last: nothing is sent
    for _ in labels:
        page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.type") == "submit"  # on 确认交班, not submitted
    page.keyboard.press("Enter")  # 确认交班 with a blank count: refused here (and by the server)
    expect_text(page, "#dlg-close [data-error]", "请先清点现金")
    assert closes == []
    with session_scope(app) as s:
        assert s.scalar(select(Shift)).status == ShiftStatus.OPEN

    # ¥5.80 counted against ¥15.80: ¥10.00 short is the limit itself … ¥10.01 needs the manager
    inputs = closing.locator("#denoms input")
    inputs.nth(4).fill("1")                 # 5 元
    inputs.nth(len(labels) - 5).fill("3")   # 2 角 × 3 = 0.60 … 5.60
    inputs.nth(len(labels) - 4).fill("1")   # 1 角 … 5.70
    inputs.nth(len(labels) - 3).fill("1")   # 5 分 … 5.75
    inputs.nth(len(labels) - 2).fill("2")   # 2 分 × 2 … 5.79
    expect_text(page, '#dlg-close [data-fill="close-diff"]', "-¥10.01")
    closing.get_by_role("button", name="确认交班").click()
    pin = page.locator("#dlg-pin")
    pin.wait_for()
    assert "需要店长授权" in pin.inner_text() and "-¥10.01" in pin.inner_text()
    screenshot(page, "till_17_close_needs_manager")
    page.keyboard.type(MANAGER_PIN)
    page.keyboard.press("Enter")
    page.locator('#dlg-report .report[data-report="z"]').wait_for()
    with session_scope(app) as s:
        closed = s.scalar(select(Shift))
        assert (closed.status, closed.counted_cash_fen, closed.expected_cash_fen) == (ShiftStatus.CLOSED, 579, 1580)


def test_point5_another_cashier_takes_over_the_shift_with_a_managers_pin(live_server, page, app, hall, make_user):
    open_till(page, live_server)  # 龙小燕 (c01) opens H1's shift
    make_user("c02", "cashier", display_name="杨二妹", pin="8642")
    other = page.context.browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    try:
        page2 = other.new_page()
        page2.set_default_timeout(10_000)
        login_by_pin(page2, live_server, "c02", "8642")
        page2.goto(f"{live_server}/till?till=H1")
        handover = page2.locator("#dlg-handover")
        handover.wait_for()
        assert "龙小燕" in handover.inner_text() and "尚未交班" in handover.inner_text()
        assert page2.locator("#dlg-open").is_visible() is False
        screenshot(page2, "till_18_handover")
        handover.get_by_label("店长 PIN").fill("1111")
        handover.get_by_role("button", name="店长授权接班").click()
        expect_text(page2, "#dlg-handover [data-error]", "店长")
        with session_scope(app) as s:
            assert s.scalar(select(Shift)).cashier_id == s.scalar(select(User.id).where(User.username == "c01"))
        handover.get_by_label("店长 PIN").fill(MANAGER_PIN)
        handover.get_by_role("button", name="店长授权接班").click()
        handover.wait_for(state="hidden")
        expect_text(page2, "#shift-info", "杨二妹")
        with session_scope(app) as s:
            assert s.scalar(select(Shift)).cashier_id == s.scalar(select(User.id).where(User.username == "c02"))
        # the new holder sells on the shift without any approval
        page2.wait_for_function("document.activeElement && document.activeElement.id === 'scan'")
        scan(page2, HONEY_EAN)
        expect_text(page2, "#t-total", "¥38.00")
        pay_cash_exactly(page2)
        page2.locator("#dlg-receipt .receipt").wait_for()
        assert sale_count(app) == 1
    finally:
        other.close()


def test_point13_cash_rounding_shows_and_applies_only_for_cash(live_server, page, app, hall):
    with session_scope(app) as s:
        s.get(Setting, "rounding_to_jiao").value = "true"
    open_till(page, live_server)
    label = encode(WEIGHT13, plu=101, value=523)  # ¥19.87

    # the running total: 应收 to the fen (WeChat, card …), and 现金应收 with 抹零
    scan(page, label)
    expect_text(page, "#t-total", "¥19.87")
    expect_text(page, "#t-cash-total", "¥19.80")
    assert page.locator("#t-cash-row").is_visible()
    assert page.locator("#t-rounding").inner_text() == "-¥0.07"
    screenshot(page, "till_19_cash_rounding")

    # paid by WeChat: ¥19.87, not rounded
    page.keyboard.press("F12")
    pay = page.locator("#dlg-pay")
    pay.wait_for()
    expect_text(page, '#dlg-pay [data-fill="pay-total"]', "¥19.80")  # cash is chosen first
    page.keyboard.press("Alt+2")
    expect_text(page, '#dlg-pay [data-fill="pay-total"]', "¥19.87")
    page.keyboard.press("Enter")
    page.locator('#dlg-pay [data-action="pay-finish"]').wait_for()
    page.keyboard.press("Enter")
    page.locator("#dlg-receipt .receipt").wait_for()
    page.keyboard.press("Enter")
    wait_focus_on_scan(page)

    # paid in cash: ¥19.80
    scan(page, label)
    expect_text(page, "#t-cash-total", "¥19.80")
    pay_cash_exactly(page)
    page.locator("#dlg-receipt .receipt").wait_for()
    with session_scope(app) as s:
        recorded = [(p.method.value, sale.total_fen, sale.rounding_fen) for sale, p in s.execute(
            select(Sale, Payment).join(Payment, Payment.sale_id == Sale.id).order_by(Sale.id))]
    assert recorded == [("wechat", 1987, 0), ("cash", 1980, 7)]
def test_point11_the_cashier_is_warned_when_only_expired_stock_is_on_the_books(live_server, page, app, hall):
    """Issue 18, point 11: scanning a product whose only stock at the hall is an expired lot shows
    the warning (the line is marked ⚠); the sale goes through all the same."""
    from inventory import ledger
    from inventory.models import Lot, MoveReason

    with session_scope(app) as s:
        hall_id = s.scalar(select(Location.id).where(Location.code == "HALL"))
        supplier = Location(code="SUPPLIER", name="供应商", kind=LocationKind.SUPPLIER)
        lot = Lot(product_id=hall.honey, lot_no="OLD-1", expires_on=local_today() - dt.timedelta(days=2))
        s.add_all([supplier, lot])
        s.flush()
        ledger.move(s, product_id=hall.honey, qty_milli=2000, from_location_id=supplier.id, to_location_id=hall_id,
                    reason=MoveReason.RECEIPT, lot_id=lot.id)
    base = live_server
    open_till(page, base)
    scan(page, TEA_EAN)
    expect_text(page, "#scan-msg", "松桃梵净山翠峰茶")
    assert "warn" not in (page.locator("#scan-msg").get_attribute("class") or "")
    scan(page, HONEY_EAN)
    expect_text(page, "#scan-msg", "该商品账面只剩过期批次，请检查货架")
    assert "warn" in page.locator("#scan-msg").get_attribute("class")
    honey_row = page.locator("#lines tbody tr", has_text="梵净山蜂蜜")
    assert honey_row.locator(".line-warning").get_attribute("title") == "该商品账面只剩过期批次，请检查货架"
    before = sale_count(app)
    pay_cash_exactly(page)
    page.locator("#dlg-receipt .receipt").wait_for()              # recorded: the sale went through
    assert sale_count(app) == before + 1
    page.locator('#dlg-receipt [data-action="new-sale"]').click()

    # picked from the search (not scanned): the till asks, and warns all the same
    wait_focus_on_scan(page)
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 0")
    page.keyboard.press("F2")
    page.locator("#dlg-search").wait_for()
    page.keyboard.type("ST0045")
    page.locator('#search-results [data-pick]').first.wait_for()
    page.keyboard.press("Enter")
    expect_text(page, "#scan-msg", "该商品账面只剩过期批次，请检查货架")
    page.locator("#lines tbody tr .line-warning").wait_for()
