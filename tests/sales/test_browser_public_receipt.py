"""The public receipt page in a real headless Chromium on a phone-sized viewport: the receipt's QR
payload (pos.sales.links.receipt_url) opens the page without a login, a tampered token is
refused, an invoice request is filed from the phone and shows up in the finance staff's queue,
where a manager marks it issued — and the phone then shows the invoice number.

Screenshots land in screenshots/ for a person to look at.
"""
from __future__ import annotations

import pytest

from pos.models import InvoiceRequest, InvoiceStatus
from pos.sales.links import receipt_url
from tests.conftest import screenshot
from tests.fixtures.stock import engine, s, world  # noqa: F401  (fixtures)
from tests.fixtures.browser import login_by_password, no_horizontal_scroll
from tests.fixtures.sales import VALID_USCC, hall, sold  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


@pytest.fixture
def phone(chromium):
    """A phone held upright (390×844, touch), as a customer scanning the receipt holds it."""
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                   has_touch=True, is_mobile=True, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_qr_payload_opens_the_page_and_an_invoice_request_reaches_finance(app, live_server, phone, page,
                                                                         make_user, sold, s):
    with app.test_request_context(base_url=live_server):
        url = receipt_url(sold.receipt_no)  # what the receipt's QR code carries
    assert url.startswith(live_server + "/r/" + sold.receipt_no + "?t=")

    # the QR payload opens the page, no login
    response = phone.goto(url)
    assert response.status == 200
    assert phone.locator("[data-field=receipt_no]").inner_text() == sold.receipt_no
    trace = phone.locator(".pr-line.certified [data-trace]")
    assert trace.count() == 1
    assert "松桃梵净山翠峰茶业有限公司" in trace.inner_text()
    assert "松桃苗族自治县 · 正大镇 · 清水村" in trace.inner_text()
    assert "黔扶认〔2026〕0001" in trace.inner_text()
    assert phone.locator("[data-field=total]").inner_text() == "¥284.00"
    assert no_horizontal_scroll(phone)
    screenshot(phone, "public_receipt_phone")

    # a tampered token is refused, and the page tells nothing about the receipt
    token = url.rsplit("t=", 1)[1]
    tampered = url[: -len(token)] + ("A" if token[0] != "A" else "B") + token[1:]
    refused = phone.goto(tampered)
    assert refused.status == 404
    assert sold.receipt_no not in phone.content()
    assert phone.locator("form").count() == 0 or phone.locator("input[name=title]").count() == 0
    assert phone.goto(url.split("?")[0]).status == 404

    # a wrong tax ID is answered on the phone, then the request is filed
    phone.goto(url)
    phone.fill("input[name=title]", "东莞市虎门镇某某公司")
    phone.fill("input[name=tax_id]", "91110000600037341A")
    phone.fill("input[name=email]", "finance@example.cn")
    phone.click("button[type=submit]")
    assert phone.locator(".has-error small.error").inner_text() == "纳税人识别号不是有效的统一社会信用代码"
    phone.fill("input[name=tax_id]", VALID_USCC)
    phone.click("button[type=submit]")
    phone.wait_for_selector("[data-invoice-status=requested]")
    assert "发票申请已提交" in phone.locator(".flashes").inner_text()
    assert no_horizontal_scroll(phone)
    screenshot(phone, "public_receipt_invoice_requested")
    s.expire_all()
    (req,) = s.query(InvoiceRequest).all()
    assert (req.title, req.tax_id, req.status) == ("东莞市虎门镇某某公司", VALID_USCC, InvoiceStatus.REQUESTED)
    req_id = req.id
    s.rollback()  # end the transaction: on SQLite it holds the write lock the server needs

    # the finance staff (a manager) see it in the queue and mark it issued
    make_user("finance", "manager")
    login_by_password(page, live_server, "finance")
    page.goto(live_server + "/invoices")
    row = page.locator(f"tr[data-request-id='{req_id}']")
    assert sold.receipt_no in row.inner_text() and "东莞市虎门镇某某公司" in row.inner_text()
    screenshot(page, "invoice_queue")
    row.locator("input[name=invoice_no]").fill("24442000000012345678")
    row.locator("button:has-text('标记已开具')").click()
    page.wait_for_selector(".flash-success")
    assert page.locator(f"tr[data-request-id='{req_id}']").count() == 0

    # the customer's page now shows the invoice as issued
    phone.goto(url)
    status = phone.locator("[data-invoice-status=issued]")
    assert "已开具" in status.inner_text() and "24442000000012345678" in status.inner_text()
