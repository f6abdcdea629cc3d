"""The hall cashier screen in a real headless Chromium at the till PC's 1366×768, driven by the
keyboard as a cashier with a barcode scanner drives it: a scanner types the code into whatever
has the focus and presses Enter, so the codes are typed with page.keyboard without clicking the
scan field first — the screen must keep the focus there after every step.

One shift from open to close: log in by PIN, choose the till, open the shift with a float, scan
three barcodes (one twice) and a scale label, an unknown code, a split payment (WeChat, then cash
with change), the receipt; a refund of one line with a manager's PIN; the X report, closing with
the cash counted by denomination, the Z report. The database is checked after each part.

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from inventory.scale import encode
from pos.core.db import session_scope
from pos.models import Payment, Refund, Sale, SaleLine, Shift, ShiftStatus, Till
from tests.conftest import screenshot
from tests.fixtures.browser import heading, no_horizontal_scroll
from tests.fixtures.till_browser import (  # noqa: F401  (hall is a fixture)
    CASHIER_PIN,
    HONEY_EAN,
    MANAGER_PIN,
    SAUCE_EAN,
    TEA_EAN,
    WEIGHT13,
    expect_text,
    focused_id,
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


def test_a_shift_at_the_till_from_open_to_close(live_server, page, app, hall):
    base = live_server
    login_by_pin(page, base, "c01", CASHIER_PIN)
    assert page.url == f"{base}/till"
    assert heading(page) == "收银台"

    # first use of this PC: which till is it?
    chooser = page.locator("#dlg-till")
    chooser.wait_for()
    assert chooser.get_by_role("button").count() == 2
    screenshot(page, "till_01_choose_till")
    chooser.get_by_role("button", name=re.compile("H1")).click()

    # no open shift on H1: open one with a float of ¥200
    opening = page.locator("#dlg-open")
    opening.wait_for()
    assert focused_id(page) != "scan"
    float_field = opening.get_by_label("备用金（元）")
    float_field.fill("200")
    screenshot(page, "till_02_open_shift")
    float_field.press("Enter")
    expect_text(page, "#shift-info", "班次 #")
    wait_focus_on_scan(page)
    assert page.evaluate("localStorage.getItem('songtao.till')") == '"H1"'
    with session_scope(app) as s:
        shift = s.scalar(select(Shift))
        assert shift.status == ShiftStatus.OPEN and shift.opening_float_fen == 20000

    # three barcodes, the tea twice (one line, two pieces), typed as a scanner types them
    for code in (TEA_EAN, HONEY_EAN, SAUCE_EAN, TEA_EAN):
        scan(page, code)
        page.wait_for_function("document.querySelector('#scan').value === ''")
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 3")
    expect_text(page, "#lines tbody tr:first-child", "2")
    expect_text(page, "#t-total", "¥389.80")

    # a code nobody knows: a clear message, the field keeps the focus
    scan(page, "6901234567892")
    expect_text(page, "#scan-msg", "未知条码")
    assert "error" in page.locator("#scan-msg").get_attribute("class")
    wait_focus_on_scan(page)
    screenshot(page, "till_03_unknown_code")

    # a scale label: 523 g of 苗家腊肉 at ¥38.00/kg = ¥19.87
    scan(page, encode(WEIGHT13, plu=101, value=523))
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 4")
    expect_text(page, "#t-total", "¥409.67")
    rows = lines(page)
    assert "松桃梵净山翠峰茶 250g" in rows[0] and "¥336.00" in rows[0]
    assert "苗家腊肉（散称）" in rows[3] and "0.523 kg" in rows[3] and "¥19.87" in rows[3]
    assert page.locator("#t-subtotal").inner_text() == "¥409.67"
    assert page.locator("#t-certified").inner_text() == "¥336.00"  # 其中扶贫产品: the certified tea
    assert no_horizontal_scroll(page)
    assert page.evaluate("document.documentElement.scrollHeight <= window.innerHeight")  # one screen
    wait_focus_on_scan(page)
    screenshot(page, "till_04_basket")

    # payment, split: ¥300 by WeChat, the rest in cash, ¥120 handed over
    page.keyboard.press("F12")
    pay = page.locator("#dlg-pay")
    pay.wait_for()
    expect_text(page, '#dlg-pay [data-fill="pay-total"]', "¥409.67")
    page.keyboard.press("Alt+2")
    assert pay.locator('[data-method="wechat"]').get_attribute("aria-checked") == "true"
    page.keyboard.press("Control+A")
    page.keyboard.type("300")
    page.keyboard.press("Enter")
    expect_text(page, '#dlg-pay [data-fill="pay-rest"]', "¥109.67")
    page.keyboard.press("Alt+1")
    page.keyboard.press("Control+A")
    page.keyboard.type("120")
    page.keyboard.press("Enter")
    expect_text(page, '#dlg-pay [data-fill="pay-change"]', "¥10.33")
    assert pay.get_by_role("button", name=re.compile("完成收款")).is_visible()
    screenshot(page, "till_05_payment")
    page.keyboard.press("Enter")

    receipt = page.locator("#dlg-receipt")
    receipt.locator(".receipt").wait_for()
    receipt_no = receipt.locator(".receipt").get_attribute("data-receipt")
    # the till's first receipt; the numbers it reserved for offline sales (a block of 20) come before it
    assert re.fullmatch(r"H1-\d{8}-\d{4}", receipt_no)
    text = receipt.inner_text()
    assert "找零 ¥10.33" in text and "¥409.67" in text and "微信支付" in text and "其中扶贫产品" in text
    assert page.evaluate("localStorage.getItem('songtao.till.pending')") == "[]"  # nothing waits to be sent
    screenshot(page, "till_06_receipt")

    with session_scope(app) as s:
        sale = s.scalar(select(Sale))
        assert s.scalar(select(func.count()).select_from(Sale)) == 1
        assert sale.receipt_no == receipt_no and sale.total_fen == 40967 and sale.shift_id == shift.id
        payments = {p.method.value: (p.amount_fen, p.tendered_fen, p.change_fen)
                    for p in s.scalars(select(Payment).where(Payment.sale_id == sale.id))}
        assert payments == {"wechat": (30000, None, 0), "cash": (10967, 12000, 1033)}
        sold = {ln.product_id: (ln.qty_milli, ln.net_fen, ln.certified)
                for ln in s.scalars(select(SaleLine).where(SaleLine.sale_id == sale.id))}
        assert sold == {hall.tea: (2000, 33600, True), hall.honey: (1000, 3800, False),
                        hall.sauce: (1000, 1580, False), hall.pork: (523, 1987, False)}

    # the next customer: an empty basket, the scan field ready
    page.keyboard.press("Enter")
    receipt.wait_for(state="hidden")
    wait_focus_on_scan(page)
    assert page.locator("#lines tbody tr").count() == 0
    assert page.locator("#t-total").inner_text() == "¥0.00"

    # a refund of the honey, in cash, with the manager's PIN; the receipt number typed (or scanned)
    page.keyboard.press("F6")
    refund = page.locator("#dlg-refund")
    refund.wait_for()
    scan(page, receipt_no)
    refund.locator("#refund-lines tbody tr").first.wait_for()
    assert refund.locator("#refund-lines tbody tr").count() == 4
    refund.get_by_role("checkbox", name="梵净山蜂蜜 500g").check()
    expect_text(page, '#dlg-refund [data-fill="refund-estimate"]', "¥38.00")
    refund.get_by_label("退款方式").select_option("cash")
    refund.get_by_label("原因").fill("包装破损，顾客退货")
    refund.get_by_label("店长 PIN").fill(MANAGER_PIN)
    screenshot(page, "till_07_refund")
    refund.get_by_role("button", name="确认退款").click()
    expect_text(page, "#dlg-refund [data-ok]", "退款完成")
    assert "¥38.00" in refund.locator("[data-ok]").inner_text()
    page.keyboard.press("Escape")
    refund.wait_for(state="hidden")
    wait_focus_on_scan(page)
    with session_scope(app) as s:
        refunds = s.scalars(select(Refund)).all()
        assert len(refunds) == 1
        assert refunds[0].total_fen == 3800 and refunds[0].method.value == "cash"
        assert refunds[0].shift_id == shift.id

    # the X report so far: float 200 + cash sales 109.67 − cash refund 38.00
    page.keyboard.press("F9")
    report = page.locator("#dlg-report")
    report.locator(".report").wait_for()
    assert "¥271.67" in report.inner_text()
    screenshot(page, "till_08_x_report")
    page.keyboard.press("Escape")
    wait_focus_on_scan(page)

    # close: count the drawer (2×100, 1×50, 2×10, 1×1, one 5-jiao and one 1-jiao coin = ¥271.60)
    page.keyboard.press("F10")
    closing = page.locator("#dlg-close")
    closing.wait_for()
    expect_text(page, '#dlg-close [data-fill="close-expected"]', "¥271.67")
    # 100 50 20 10 5 2 1 元, 5 2 1 角 (then 分, left blank): Enter moves to the next denomination
    counts = ("2", "1", "", "2", "", "", "1", "1", "", "1")
    for i, count in enumerate(counts):
        page.keyboard.type(count)
        if i < len(counts) - 1:
            page.keyboard.press("Enter")
    expect_text(page, '#dlg-close [data-fill="close-counted"]', "¥271.60")
    expect_text(page, '#dlg-close [data-fill="close-diff"]', "-¥0.07")
    screenshot(page, "till_09_close_count")
    closing.get_by_role("button", name="确认交班").click()

    z = page.locator("#dlg-report")
    z.locator('.report[data-report="z"]').wait_for()
    ztext = z.inner_text()
    assert "Z 报表" in ztext and "¥271.67" in ztext and "¥271.60" in ztext and "-¥0.07" in ztext
    screenshot(page, "till_10_z_report")
    with session_scope(app) as s:
        closed = s.get(Shift, shift.id)
        assert closed.status == ShiftStatus.CLOSED
        assert closed.expected_cash_fen == 27167 and closed.counted_cash_fen == 27160

    # after the Z report the till asks for the next shift
    page.keyboard.press("Escape")
    page.locator("#dlg-open").wait_for()


def test_a_flaky_network_neither_loses_nor_doubles_a_sale(live_server, page, app, hall):
    base = live_server
    open_till(page, base)

    # the server records the sale but its answer is lost: the till sends it again, same id, one sale
    answers = []

    def lose_first_answer(route):
        if not answers:
            answers.append(route.fetch().status)  # it reached the server …
            route.abort("connectionreset")       # … and the answer never came back
        else:
            route.continue_()

    page.route("**/api/v1/sales", lose_first_answer)
    scan(page, TEA_EAN)
    expect_text(page, "#t-total", "¥168.00")
    pay_cash_exactly(page)
    expect_text(page, "#net-status", "网络中断，正在重试…")
    screenshot(page, "till_11_network_retry")
    page.locator("#dlg-receipt .receipt").wait_for()
    assert answers == [201]
    assert sale_count(app) == 1
    page.keyboard.press("Enter")
    page.unroute("**/api/v1/sales")

    # the network is down and the page is reloaded: the saved sale goes out when it loads
    page.route("**/api/v1/sales", lambda route: route.abort("internetdisconnected"))
    scan(page, HONEY_EAN)
    expect_text(page, "#t-total", "¥38.00")
    pay_cash_exactly(page)
    expect_text(page, "#net-status", "网络中断")
    pending = page.evaluate("JSON.parse(localStorage.getItem('songtao.till.pending'))")
    assert len(pending) == 1 and pending[0]["sale"]["lines"][0]["product_id"] == hall.honey
    assert sale_count(app) == 1
    page.unroute("**/api/v1/sales")
    page.reload()
    page.locator("#dlg-receipt .receipt").wait_for()
    assert "梵净山蜂蜜 500g" in page.locator("#dlg-receipt").inner_text()
    assert page.evaluate("localStorage.getItem('songtao.till.pending')") == "[]"
    assert page.locator("#lines tbody tr").count() == 0  # not rung up a second time
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Sale)) == 2
        ids = s.scalars(select(Sale.client_sale_id)).all()
        assert pending[0]["sale"]["client_sale_id"] in ids


def test_discount_over_the_limit_park_resume_and_search(live_server, page, app, hall):
    base = live_server
    open_till(page, base)

    # a parked sale waits while the next customer pays
    scan(page, HONEY_EAN)
    expect_text(page, "#t-total", "¥38.00")
    page.keyboard.press("F5")
    page.locator("#dlg-park").wait_for()
    page.keyboard.press("F5")  # park the current sale
    page.locator("#dlg-park").wait_for(state="hidden")
    wait_focus_on_scan(page)
    assert page.locator("#lines tbody tr").count() == 0

    # search by pinyin initials (mjlj… → 苗家辣椒酱), quantity 3 by F3
    page.keyboard.press("F2")
    page.locator("#dlg-search").wait_for()
    page.keyboard.type("mjlj")
    page.locator('#search-results [data-pick]').first.wait_for()
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 1")
    page.keyboard.press("F3")
    page.locator("#dlg-qty").wait_for()
    page.keyboard.type("3")
    page.keyboard.press("Enter")
    expect_text(page, "#t-total", "¥47.40")

    # a weighed quick key without a label: the weight typed in kg
    page.locator("#quick-keys").get_by_role("button", name=re.compile("苗家腊肉")).click()
    page.locator("#dlg-qty").wait_for()
    page.keyboard.type("0.250")
    page.keyboard.press("Enter")
    expect_text(page, "#t-total", "¥56.90")  # 47.40 + 9.50

    # ¥10 off the order is over 10 %: the manager's PIN
    page.keyboard.press("F4")
    discount = page.locator("#dlg-discount")
    discount.wait_for()
    discount.get_by_label("整单").check()
    discount.get_by_label("优惠金额（元），或输入折扣如 9折、8.5折").fill("10")
    discount.get_by_label("优惠金额（元），或输入折扣如 9折、8.5折").press("Enter")
    pin = page.locator("#dlg-pin")
    pin.wait_for()
    assert "需要店长授权" in pin.inner_text()
    # A wrong PIN is checked with the server at once (issue 18, point 1): no 店长已授权, no discount
    page.keyboard.type("1111")
    page.keyboard.press("Enter")
    page.get_by_text("PIN 不正确或不是店长").first.wait_for()
    expect_text(page, "#t-total", "¥56.90")
    assert "店长已授权" not in page.inner_text("body")
    page.keyboard.press("F4")
    discount.wait_for()
    discount.get_by_label("整单").check()
    discount.get_by_label("优惠金额（元），或输入折扣如 9折、8.5折").fill("10")
    discount.get_by_label("优惠金额（元），或输入折扣如 9折、8.5折").press("Enter")
    pin.wait_for()
    page.keyboard.type(MANAGER_PIN)
    page.keyboard.press("Enter")
    expect_text(page, "#t-total", "¥46.90")
    expect_text(page, "#t-discount", "-¥10.00")
    screenshot(page, "till_12_discount")
    pay_cash_exactly(page)
    page.locator("#dlg-receipt .receipt").wait_for()
    page.keyboard.press("Enter")
    with session_scope(app) as s:
        sale = s.scalar(select(Sale))
        assert sale.total_fen == 4690 and sale.discount_fen == 1000

    # the parked sale comes back with key 1
    page.keyboard.press("F5")
    page.locator("#dlg-park").wait_for()
    screenshot(page, "till_13_parked")
    page.keyboard.press("1")
    expect_text(page, "#t-total", "¥38.00")
    assert "梵净山蜂蜜 500g" in lines(page)[0]
    wait_focus_on_scan(page)


def test_a_printer_that_is_off_shows_print_failed_and_the_reprint_works_once_it_is_back(live_server, page, app, hall):
    """The sale is recorded whatever the printer does; the cashier sees 打印失败 and a 重印 button,
    and once the printer is on again the reprint reaches it, marked 重印."""
    from tests.conftest import free_port
    from tests.fixtures.printers import FakePrinter

    port = free_port()  # nothing listens: the printer is off
    with session_scope(app) as s:
        s.scalar(select(Till).where(Till.code == "H1")).printer_uri = f"tcp://127.0.0.1:{port}"
    open_till(page, live_server)
    scan(page, TEA_EAN)
    expect_text(page, "#t-total", "¥168.00")
    pay_cash_exactly(page)
    page.locator("#dlg-receipt .receipt").wait_for()
    expect_text(page, "#print-status", "打印失败")
    assert sale_count(app) == 1
    screenshot(page, "till_14_print_failed")

    printer = FakePrinter(port)  # switched on again
    try:
        page.locator("#print-status button[data-reprint]").click()
        expect_text(page, "#print-status", "已重印")
        (job,) = printer.wait_jobs(1)
    finally:
        printer.close()
    assert "重印".encode("gb18030") in job and "松桃梵净山翠峰茶".encode("gb18030") in job
    with session_scope(app) as s:
        assert s.scalar(select(Sale.reprint_count)) == 1
