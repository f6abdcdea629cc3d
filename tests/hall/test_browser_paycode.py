"""Payment codes (付款码) at the till in a real headless Chromium at 1366×768, against the fake
gateway running as a separate process (tests/fixtures/payments.py): the cashier scans goods, presses
F12 and scans the customer's code with the same scanner — it is taken as a payment code, never as a
product. A …0002 code asks for the password (等待顾客输入密码) and then pays: the receipt, and a sale
recorded with the provider's transaction id. A refused code says why and the cashier scans again
for part of the amount and takes the rest in cash. Without credentials the scan says so.

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from pos.core.db import session_scope
from pos.models import Payment, Sale
from pos.payments.attempts import PaymentAttempt
from tests.conftest import screenshot
from tests.fixtures.paycode import ALIPAY_CODE, WECHAT_CODE, paycode_app  # noqa: F401  (a fixture)
from tests.fixtures.payments import fake_gateway  # noqa: F401  (a fixture)
from tests.fixtures.till_browser import (  # noqa: F401  (hall is a fixture)
    HONEY_EAN,
    SAUCE_EAN,
    TEA_EAN,
    expect_text,
    hall,
    lines,
    open_till,
    sale_count,
    scan,
)

pytestmark = pytest.mark.browser

STATUS = "#dlg-pay [data-paycode-status]"


def payments_of(app, sale_id: int) -> list[Payment]:
    with session_scope(app) as s:
        rows = s.scalars(select(Payment).where(Payment.sale_id == sale_id).order_by(Payment.id)).all()
        s.expunge_all()
        return rows


def attempts(app) -> list[PaymentAttempt]:
    with session_scope(app) as s:
        rows = s.scalars(select(PaymentAttempt).order_by(PaymentAttempt.id)).all()
        s.expunge_all()
        return rows


def test_the_cashier_scans_a_code_the_customer_types_the_password_and_the_sale_is_recorded(
        live_server, page, paycode_app, hall):
    app = paycode_app
    open_till(page, live_server)
    scan(page, TEA_EAN)
    scan(page, HONEY_EAN)
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 2")
    assert "松桃梵净山翠峰茶" in " ".join(lines(page))

    page.keyboard.press("F12")
    dialog = page.locator("#dlg-pay")
    dialog.wait_for()
    assert dialog.locator(".paycode-hint").is_visible()  # the hall's credentials are set: scan the code
    scan(page, WECHAT_CODE.format(2))
    expect_text(page, STATUS, "等待顾客输入密码")
    assert dialog.locator("[data-paycode-cancel]").is_visible()
    assert sale_count(app) == 0  # nothing recorded while the customer has not paid
    assert page.locator("#lines tbody tr").count() == 2  # the code was no product
    path = screenshot(page, "paycode_waiting")
    assert path.stat().st_size > 0

    # the customer confirms on the phone: the till's poll finds the money and records the sale
    receipt = page.locator("#dlg-receipt")
    receipt.wait_for(timeout=30_000)
    expect_text(page, "#receipt-body", "微信支付")
    screenshot(page, "paycode_receipt")

    with session_scope(app) as s:
        sale = s.scalars(select(Sale)).one()
        sale_id, total = sale.id, sale.total_fen
    assert total == 16800 + 3800
    [attempt] = attempts(app)
    [payment] = payments_of(app, sale_id)
    assert payment.method.value == "wechat" and payment.amount_fen == total
    assert attempt.state.value == "success" and attempt.transaction_id
    assert payment.ref == attempt.transaction_id  # the provider's transaction id on the payment row
    assert attempt.sale_id == sale_id and attempt.amount_fen == total
    assert attempt.auth_code != WECHAT_CODE.format(2)  # stored masked, never whole


def test_a_refused_code_says_why_then_part_by_code_and_the_rest_in_cash(live_server, page, paycode_app, hall):
    app = paycode_app
    open_till(page, live_server)
    scan(page, SAUCE_EAN)
    scan(page, HONEY_EAN)
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 2")
    page.keyboard.press("F12")
    page.locator("#dlg-pay").wait_for()

    scan(page, ALIPAY_CODE.format(3))  # insufficient balance
    expect_text(page, STATUS, "收款失败")
    assert "余额不足" in page.locator(STATUS).inner_text()  # the provider's reason
    assert sale_count(app) == 0

    # the customer pays ¥10.00 by code and the rest in cash: type the amount, scan, then cash
    page.locator('#dlg-pay input[name="amount"]').fill("10.00")
    scan(page, ALIPAY_CODE.format(1))
    expect_text(page, "#pay-parts", "交易号尾号")
    assert "支付宝 ¥10.00" in page.locator("#pay-parts").inner_text()
    assert page.locator("#pay-parts [data-remove-part]").count() == 0  # money taken: not removable
    page.keyboard.press("Escape")  # cannot walk away from money taken
    expect_text(page, "#dlg-pay [data-error]", "不能取消")
    page.keyboard.press("Enter")  # the rest, in cash (the dialog switched back to cash)
    page.locator('#dlg-pay [data-action="pay-finish"]').wait_for()
    page.keyboard.press("Enter")
    page.locator("#dlg-receipt").wait_for()

    with session_scope(app) as s:
        sale = s.scalars(select(Sale)).one()
        sale_id, total = sale.id, sale.total_fen
    by_method = {p.method.value: p for p in payments_of(app, sale_id)}
    assert set(by_method) == {"alipay", "cash"}
    assert by_method["alipay"].amount_fen == 1000 and by_method["cash"].amount_fen == total - 1000
    refused, paid = attempts(app)
    assert refused.state.value == "failed" and refused.sale_id is None
    assert paid.state.value == "success" and paid.sale_id == sale_id
    assert by_method["alipay"].ref == paid.transaction_id


def test_without_credentials_the_scan_says_so_and_nothing_is_charged(live_server, page, app, hall):
    open_till(page, live_server)
    scan(page, SAUCE_EAN)
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 1")
    page.keyboard.press("F12")
    page.locator("#dlg-pay").wait_for()
    assert page.locator("#dlg-pay .paycode-hint").count() == 0
    scan(page, WECHAT_CODE.format(1))
    expect_text(page, "#dlg-pay [data-error]", "未配置微信支付收款，请用其他方式")
    assert attempts(app) == [] and sale_count(app) == 0
    assert page.locator("#lines tbody tr").count() == 1


def test_esc_while_the_customer_types_the_password_reverses_the_order(live_server, page, paycode_app, hall):
    app = paycode_app
    open_till(page, live_server)
    scan(page, SAUCE_EAN)
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 1")
    page.keyboard.press("F12")
    page.locator("#dlg-pay").wait_for()
    scan(page, WECHAT_CODE.format(4))  # never completes by itself
    expect_text(page, STATUS, "等待顾客输入密码")
    page.keyboard.press("Escape")  # the cashier gives up: the order is reversed, the dialog stays
    expect_text(page, STATUS, "已撤销收款")
    assert page.locator("#dlg-pay").is_visible()
    [attempt] = attempts(app)
    assert attempt.state.value == "reversed" and attempt.sale_id is None
    page.keyboard.press("Escape")  # nothing taken: the dialog closes as before, the basket kept
    page.wait_for_function("!document.querySelector('#dlg-pay').open")
    assert sale_count(app) == 0 and page.locator("#lines tbody tr").count() == 1
