"""Payment codes through the till's HTTP API (issue 15), against ``songtao fake-gateway`` running as
a separate process: each of its five codes, a split payment, a partial refund back through the
provider, both providers, the checks on a sale's attempt, and the methods without credentials."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from inventory.models import AuditEvent
from pos.core.db import session_scope
from pos.models import Payment, Refund, Sale
from pos.payments.attempts import AttemptState, PaymentAttempt, PaymentAttemptEvent
from tests.fixtures.codepay import codes  # noqa: F401  (fixture)
from tests.fixtures.payments import code, fake_gateway  # noqa: F401  (fixture)
from tests.fixtures.till import MANAGER_PIN, assert_error, hall, till  # noqa: F401  (fixtures)

TEA = 16800
PROVIDERS = ("wechat", "alipay")


def attempt_row(app, attempt_id):
    with session_scope(app) as s:
        attempt = s.get(PaymentAttempt, attempt_id)
        events = [(e.action, e.state) for e in s.scalars(select(PaymentAttemptEvent).where(
            PaymentAttemptEvent.attempt_id == attempt_id).order_by(PaymentAttemptEvent.id))]
        return attempt, events


def sales_of(app, client_sale_id):
    with session_scope(app) as s:
        return s.scalars(select(Sale).where(Sale.client_sale_id == client_sale_id)).all()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_0001_pays_at_once_and_the_sale_carries_the_transaction_id(codes, provider):
    client_sale_id, response = codes.take(provider, "0001", TEA)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["state"] == "success" and body["provider"] == provider and body["transaction_id"]
    sold = codes.sale(client_sale_id, [{"method": provider, "amount_fen": TEA, "attempt_id": body["attempt_id"]}])
    assert sold.status_code == 201, sold.get_data(as_text=True)
    payment = sold.get_json()["sale"]["payments"][0]
    assert payment["ref"] == body["transaction_id"] and payment["attempt_id"] == body["attempt_id"]
    attempt, events = attempt_row(codes.app, body["attempt_id"])
    assert attempt.sale_id == sold.get_json()["sale"]["id"] and attempt.state == AttemptState.SUCCESS
    assert events == [("pay", "success")]
    assert len(attempt.out_trade_no) <= 32 and attempt.out_trade_no.isalnum() and attempt.out_trade_no.startswith("H1")
    assert attempt.auth_code == code(provider, "0001")[:4] + "…0001"
    assert events == [("pay", "success")]
    # the same attempt cannot pay a second sale
    other = codes.sale(client_sale_id + "x", [{"method": provider, "amount_fen": TEA, "attempt_id": body["attempt_id"]}])
    assert_error(other, 422, field="payments[0].attempt_id")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_0002_asks_for_the_password_then_succeeds(codes, provider):
    client_sale_id, response = codes.take(provider, "0002", TEA)
    body = response.get_json()
    assert response.status_code == 201 and body["state"] == "userpaying" and body["message"] == "等待顾客输入密码"
    assert_error(codes.sale(client_sale_id, [{"method": provider, "amount_fen": TEA, "attempt_id": body["attempt_id"]}]),
                 422, "尚未收款成功")
    final, seen = codes.poll_until(body["attempt_id"])
    assert final["state"] == "success" and final["transaction_id"]
    assert "userpaying" in seen
    sold = codes.sale(client_sale_id, [{"method": provider, "amount_fen": TEA, "attempt_id": body["attempt_id"]}])
    assert sold.status_code == 201
    assert sold.get_json()["sale"]["payments"][0]["ref"] == final["transaction_id"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_0003_refused_records_nothing_and_says_why(codes, provider):
    client_sale_id, response = codes.take(provider, "0003", TEA)
    body = response.get_json()
    assert response.status_code == 201 and body["state"] == "failed" and body["message"]
    assert body["transaction_id"] is None
    assert_error(codes.sale(client_sale_id, [{"method": provider, "amount_fen": TEA, "attempt_id": body["attempt_id"]}]),
                 422)
    assert sales_of(codes.app, client_sale_id) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_0004_is_reversed_after_the_wait(codes, provider):
    client_sale_id, response = codes.take(provider, "0004", TEA)
    body = response.get_json()
    assert body["state"] == "userpaying"
    final, seen = codes.poll_until(body["attempt_id"])
    assert final["state"] == "reversed" and "撤销" in final["message"]
    attempt, events = attempt_row(codes.app, body["attempt_id"])
    assert attempt.state == AttemptState.REVERSED and ("reverse", "reversed") in events
    assert sales_of(codes.app, client_sale_id) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_0005_no_answer_to_pay_but_the_query_finds_it_paid(codes, provider):
    client_sale_id, response = codes.take(provider, "0005", TEA)
    body = response.get_json()
    final = body if body["state"] == "success" else codes.poll_until(body["attempt_id"])[0]
    assert final["state"] == "success"
    attempt, events = attempt_row(codes.app, body["attempt_id"])
    assert events[0] == ("pay", "unknown") and ("query", "success") in events
    sold = codes.sale(client_sale_id, [{"method": provider, "amount_fen": TEA, "attempt_id": body["attempt_id"]}])
    assert sold.status_code == 201 and sold.get_json()["sale"]["payments"][0]["ref"] == final["transaction_id"]


def test_the_cashier_cancels_a_code_waiting_for_the_password(codes):
    client_sale_id, response = codes.take("wechat", "0004", TEA)
    attempt_id = response.get_json()["attempt_id"]
    # a second code for the same sale waits for this one
    assert_error(codes.take("wechat", "0001", TEA, client_sale_id)[1], 409, field="client_sale_id")
    cancelled = codes.till.post(f"/api/v1/payment-codes/{attempt_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "reversed"
    assert codes.take("wechat", "0001", TEA, client_sale_id)[1].get_json()["state"] == "success"


def test_split_payment_cash_and_a_code(codes):
    client_sale_id, response = codes.take("alipay", "0001", 10000)
    body = response.get_json()
    sold = codes.sale(client_sale_id, [{"method": "cash", "amount_fen": TEA - 10000, "tendered_fen": 10000},
                                       {"method": "alipay", "amount_fen": 10000, "attempt_id": body["attempt_id"]}])
    assert sold.status_code == 201, sold.get_data(as_text=True)
    assert sold.get_json()["change_fen"] == 10000 - (TEA - 10000)
    with session_scope(codes.app) as s:
        rows = s.execute(select(Payment.method, Payment.amount_fen, Payment.ref)
                         .where(Payment.sale_id == sold.get_json()["sale"]["id"]).order_by(Payment.id)).all()
    assert [(r[0].value, r[1], r[2]) for r in rows] == [("cash", TEA - 10000, None),
                                                       ("alipay", 10000, body["transaction_id"])]


def test_a_sale_checks_its_attempt(codes):
    client_sale_id, response = codes.take("wechat", "0001", TEA)
    attempt_id = response.get_json()["attempt_id"]
    # with credentials a wechat payment must carry its attempt
    assert_error(codes.sale(client_sale_id, [{"method": "wechat", "amount_fen": TEA}]), 422, "付款码",
                 field="payments[0].attempt_id")
    assert_error(codes.sale(client_sale_id, [{"method": "alipay", "amount_fen": TEA, "attempt_id": attempt_id}]), 422,
                 field="payments[0].attempt_id")
    assert_error(codes.sale("another-sale-0001", [{"method": "wechat", "amount_fen": TEA, "attempt_id": attempt_id}]),
                 422, "另一笔销售")
    assert_error(codes.sale(client_sale_id, [{"method": "wechat", "amount_fen": TEA, "attempt_id": 999999}]), 422)
    lines = [{"product_id": codes.hall.tea, "qty_milli": 2000}]
    assert_error(codes.sale(client_sale_id, [{"method": "wechat", "amount_fen": 2 * TEA, "attempt_id": attempt_id}],
                            lines=lines), 422, field="payments[0].amount_fen")
    assert sales_of(codes.app, client_sale_id) == []


def test_bad_codes_and_bodies_are_422(codes):
    for bad in ("6901234567892", "12345", "134567890123450001x", "9934567890123450001"):
        assert_error(codes.till.post("/api/v1/payment-codes", {"till": "H1", "client_sale_id": "sale-00000001",
                                                               "amount_fen": 100, "code": bad}), 422, field="code")
    assert_error(codes.till.post("/api/v1/payment-codes", {"till": "H9", "client_sale_id": "sale-00000001",
                                                           "amount_fen": 100, "code": code("wechat", "0001")}),
                 422, field="till")
    assert_error(codes.till.post("/api/v1/payment-codes", {"till": "H1", "client_sale_id": "sale-00000001",
                                                           "amount_fen": 0, "code": code("wechat", "0001")}), 422)
    assert codes.till.get("/api/v1/payment-codes/424242").status_code == 404


def test_without_credentials_the_methods_stay_manual_tenders(app, till, hall):
    till.post("/api/v1/shifts", {"till": hall.till, "opening_float_fen": 20000})
    assert_error(till.post("/api/v1/payment-codes", {"till": "H1", "client_sale_id": "sale-00000001",
                                                     "amount_fen": 100, "code": code("wechat", "0001")}),
                 422, "未配置微信支付商户", field="code")
    sold = till.post("/api/v1/sales", {"client_sale_id": "sale-00000002", "till": "H1",
                                       "lines": [{"product_id": hall.tea, "qty_milli": 1000}],
                                       "payments": [{"method": "wechat", "amount_fen": TEA, "ref": "小票上的单号"}]})
    assert sold.status_code == 201, sold.get_data(as_text=True)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_partial_refund_goes_back_through_the_provider(codes, provider):
    client_sale_id, response = codes.take(provider, "0001", 2 * TEA)
    attempt_id = response.get_json()["attempt_id"]
    sold = codes.sale(client_sale_id, [{"method": provider, "amount_fen": 2 * TEA, "attempt_id": attempt_id}],
                      lines=[{"product_id": codes.hall.tea, "qty_milli": 2000}])
    sale = sold.get_json()["sale"]
    refund = codes.till.post("/api/v1/refunds", {
        "receipt_no": sale["receipt_no"], "lines": [{"sale_line_id": sale["lines"][0]["id"], "qty_milli": 1000}],
        "reason": "顾客退一盒", "approval_pin": MANAGER_PIN, "till": "H1"})
    assert refund.status_code == 201, refund.get_data(as_text=True)
    out = refund.get_json()
    assert out["total_fen"] == TEA and out["provider_state"] == "success" and out["sale"]["refunds"][0]["method"] == provider
    with session_scope(codes.app) as s:
        row = s.get(Refund, out["refund_id"])
        assert row.attempt_id == attempt_id and row.provider_state == "success" and row.out_refund_no
    _attempt, events = attempt_row(codes.app, attempt_id)
    assert ("refund", "success") in events
    # never paid out of the drawer: the shift's cash is untouched by it
    shift_id = codes.till.get("/api/v1/shifts/current", till="H1").get_json()["shift"]["id"]
    report = codes.till.get(f"/api/v1/shifts/{shift_id}/report").get_json()
    assert report["cash_refunds_fen"] == 0 and report["expected_cash_fen"] == 20000
    assert report["refunds_by_method"] == {provider: TEA}


def test_no_secret_and_no_whole_payment_code_is_kept_or_logged(codes, caplog):
    caplog.set_level(logging.DEBUG)
    scanned = code("wechat", "0001")
    body = {"till": "H1", "client_sale_id": "sale-secret-0001", "amount_fen": TEA, "code": scanned}
    attempt_id = codes.till.post("/api/v1/payment-codes", body).get_json()["attempt_id"]
    sale = codes.sale("sale-secret-0001", [{"method": "wechat", "amount_fen": TEA, "attempt_id": attempt_id}])
    sale = sale.get_json()["sale"]
    codes.till.post("/api/v1/refunds", {
        "receipt_no": sale["receipt_no"], "lines": [{"sale_line_id": sale["lines"][0]["id"], "qty_milli": 1000}],
        "reason": "退", "approval_pin": MANAGER_PIN, "till": "H1"})
    with session_scope(codes.app) as s:
        kept = " ".join(str(v) for row in s.execute(select(PaymentAttemptEvent.raw)) for v in row)
        kept += " ".join(f"{a.before} {a.after}" for a in s.scalars(select(AuditEvent)))
        kept += " ".join(str(v) for row in s.execute(select(PaymentAttempt.__table__)) for v in row)
    # every secret value, and each line of a key's body (so a key cut into lines is found too)
    secrets = {part for values in codes.gateway["credentials"].values() for k, v in values.items()
               if k not in ("mchid", "appid", "app_id") for part in [v.strip(), *v.splitlines()]
               if len(part) > 16 and not part.startswith("-----")}
    assert secrets
    for text in (kept, caplog.text):
        assert scanned not in text
        assert not [k for k in secrets if k in text]
