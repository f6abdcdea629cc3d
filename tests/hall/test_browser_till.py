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

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from inventory import catalogue, suppliers
from inventory.barcodes import ean13
from inventory.localtime import local_today
from inventory.models import Location, LocationKind, Setting, Unit
from inventory.scale import encode
from pos.core.db import session_scope
from pos.models import Payment, Refund, Sale, SaleLine, Shift, ShiftStatus, Till, User
from tests.conftest import screenshot
from tests.system.test_browser_shell import heading, no_horizontal_scroll

pytestmark = pytest.mark.browser

WEIGHT13 = "22{PPPPP}{WWWWW}C"
TEA_EAN = ean13("697458704521")
HONEY_EAN = ean13("691382803581")
SAUCE_EAN = ean13("694438803901")
CASHIER_PIN = "1357"
MANAGER_PIN = "2468"


@dataclass
class Hall:
    tea: int
    honey: int
    sauce: int
    pork: int


@pytest.fixture
def hall(app, make_user) -> Hall:
    make_user("c01", "cashier", display_name="龙小燕", pin=CASHIER_PIN)
    make_user("wumei", "manager", display_name="吴梅", pin=MANAGER_PIN)
    with session_scope(app) as s:
        for code, kind in (("HALL", LocationKind.HALL_FLOOR), ("CUSTOMER", LocationKind.CUSTOMER),
                           ("LOSS", LocationKind.LOSS)):
            s.add(Location(code=code, name=code, kind=kind))
        s.flush()
        hall_id = s.scalar(select(Location.id).where(Location.code == "HALL"))
        s.add_all([
            Till(code="H1", name="1号收银台", location_id=hall_id, printer_uri="none", paper_columns=48),
            Till(code="H2", name="2号收银台", location_id=hall_id, printer_uri="none", paper_columns=48),
            Setting(key="discount_limit_percent", value="10"),
            Setting(key="rounding_to_jiao", value="false"),
        ])
        supplier = suppliers.create_supplier(s, name="松桃梵净山翠峰茶业有限公司", origin_county="松桃苗族自治县",
                                             origin_county_code="520628")
        tea = catalogue.create_product(s, sku="ST0001", name="松桃梵净山翠峰茶 250g", price_fen=16800,
                                       supplier_id=supplier.id, barcodes=[TEA_EAN])
        honey = catalogue.create_product(s, sku="ST0045", name="梵净山蜂蜜 500g", price_fen=3800, barcodes=[HONEY_EAN])
        sauce = catalogue.create_product(s, sku="ST0049", name="苗家辣椒酱 280g", price_fen=1580, barcodes=[SAUCE_EAN])
        pork = catalogue.create_product(s, sku="ST0032", name="苗家腊肉（散称）", price_fen=3800, unit=Unit.KG,
                                        sold_by_weight=True, scale_plu=101)
        catalogue.add_barcode_rule(s, name="称重 22", pattern=WEIGHT13)
        today = local_today()
        suppliers.create_certificate(s, number="黔扶认〔2025〕520628-0031", issuer="铜仁市扶贫开发办公室",
                                     valid_from=today - dt.timedelta(days=30), valid_to=today + dt.timedelta(days=300),
                                     supplier_id=supplier.id, product_ids=[tea.id])
        return Hall(tea.id, honey.id, sauce.id, pork.id)


def login_by_pin(page, base: str, username: str, pin: str) -> None:
    page.goto(f"{base}/login?mode=pin")
    page.get_by_label("工号", exact=True).fill(username)
    page.get_by_label("PIN", exact=True).fill(pin)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def scan(page, code: str) -> None:
    """What a USB scanner does: type into the focused element, then Enter."""
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def wait_focus_on_scan(page) -> None:
    page.wait_for_function("document.activeElement && document.activeElement.id === 'scan'")


def lines(page) -> list[str]:
    return [" ".join(t.split()) for t in page.locator("#lines tbody tr").all_inner_texts()]


def expect_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => { const el = document.querySelector(s); return el && el.textContent.includes(t); }",
                           arg=[selector, text])


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
    assert re.fullmatch(r"H1-\d{8}-0001", receipt_no)
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


def open_till(page, base: str) -> None:
    """Log in, take till H1 from the address and open its shift with no float."""
    login_by_pin(page, base, "c01", CASHIER_PIN)
    page.goto(f"{base}/till?till=H1")
    opening = page.locator("#dlg-open")
    opening.wait_for()
    opening.get_by_label("备用金（元）").fill("0")
    opening.get_by_label("备用金（元）").press("Enter")
    expect_text(page, "#shift-info", "班次 #")
    wait_focus_on_scan(page)


def pay_cash_exactly(page) -> None:
    page.keyboard.press("F12")
    page.locator("#dlg-pay").wait_for()
    page.keyboard.press("Enter")  # the amount offered is what is due
    page.locator('#dlg-pay [data-action="pay-finish"]').wait_for()
    page.keyboard.press("Enter")


def sale_count(app) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(Sale))


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
    from tests.hall.test_printing import FakePrinter

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


# --- issue 18 -------------------------------------------------------------------------------------

def test_point14_refund_by_scanning_the_receipt_qr_and_reprint_from_recent_receipts(live_server, page, app, hall):
    """The receipt's QR code (its public URL) scanned into the refund box finds the sale; any of the
    till's recent receipts can be reprinted at any time, not only after a failed print."""
    from pos.sales.links import receipt_url
    from tests.hall.test_printing import FakePrinter

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
