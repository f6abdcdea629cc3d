"""What the tick finishes (issue 15): a payment a crash left between pay and query, a reverse the
provider did not answer, and a refund it did not confirm."""
from __future__ import annotations

import time

from sqlalchemy import select

from inventory.localtime import utcnow
from pos.core.db import session_scope
from pos.models import Refund, Till
from pos.payments import credentials
from pos.payments.attempts import AttemptState, PaymentAttempt, mask_code, new_out_trade_no
from pos.reports.upkeep import tick
from tests.fixtures.codepay import code, codes, memory_providers  # noqa: F401  (fixtures)
from tests.fixtures.till import MANAGER_PIN, hall, till  # noqa: F401  (fixtures)

TEA = 16800


def state_of(app, attempt_id):
    with session_scope(app) as s:
        return s.get(PaymentAttempt, attempt_id).state


def crashed_after_pay(app, provider_name: str, tail: str, client_sale_id: str) -> int:
    """What a server killed after the pay call reached the provider leaves: the attempt written
    (pending, committed before the call) and no answer recorded."""
    with session_scope(app) as s:
        till_id = s.scalar(select(Till.id).where(Till.code == "H1"))
        attempt = PaymentAttempt(provider=provider_name, out_trade_no=new_out_trade_no("H1"),
                                 auth_code=mask_code(code(provider_name, tail)), till_id=till_id,
                                 client_sale_id=client_sale_id, amount_fen=TEA, state=AttemptState.PENDING,
                                 created_at=utcnow(), updated_at=utcnow())
        s.add(attempt)
        s.flush()
        attempt_id, out_trade_no = attempt.id, attempt.out_trade_no
    provider = credentials.provider_for(app, provider_name)
    provider.pay(out_trade_no=out_trade_no, auth_code=code(provider_name, tail), amount_fen=TEA, description="t")
    return attempt_id


def test_a_payment_left_between_pay_and_query_is_finished_by_the_tick(codes):
    attempt_id = crashed_after_pay(codes.app, "wechat", "0001", "sale-crash-0001")
    result = tick(codes.app)
    assert result.payments is not None and result.payments.finished == 1
    assert state_of(codes.app, attempt_id) == AttemptState.SUCCESS
    # the till, back, sees it paid and records the sale with it
    polled = codes.till.get(f"/api/v1/payment-codes/{attempt_id}").get_json()
    assert polled["state"] == "success" and polled["transaction_id"]
    sold = codes.sale("sale-crash-0001", [{"method": "wechat", "amount_fen": TEA, "attempt_id": attempt_id}])
    assert sold.status_code == 201 and sold.get_json()["sale"]["payments"][0]["ref"] == polled["transaction_id"]


def test_a_payment_never_completed_is_reversed_by_the_tick_after_the_wait(codes):
    attempt_id = crashed_after_pay(codes.app, "alipay", "0004", "sale-crash-0004")
    tick(codes.app)
    assert state_of(codes.app, attempt_id) in (AttemptState.USERPAYING, AttemptState.REVERSED)
    time.sleep(codes.app.config["PAYMENT_CODE_WAIT_SECONDS"])
    tick(codes.app)
    assert state_of(codes.app, attempt_id) == AttemptState.REVERSED


def test_an_unanswered_reverse_is_retried_until_answered(codes, memory_providers):
    memory_providers["wechat"].reverse_unanswered = 2
    _sale, response = codes.take("wechat", "0004", TEA)
    attempt_id = response.get_json()["attempt_id"]
    time.sleep(codes.app.config["PAYMENT_CODE_WAIT_SECONDS"])
    polled = codes.till.get(f"/api/v1/payment-codes/{attempt_id}").get_json()
    assert polled["state"] == "unknown" and state_of(codes.app, attempt_id) == AttemptState.REVERSING
    polled = codes.till.get(f"/api/v1/payment-codes/{attempt_id}").get_json()  # the next poll asks again
    assert state_of(codes.app, attempt_id) == AttemptState.REVERSING
    tick(codes.app)  # and the tick
    assert state_of(codes.app, attempt_id) == AttemptState.REVERSED
    reverses = [c for c in memory_providers["wechat"].calls if c[0] == "reverse"]
    assert len(reverses) == 3


def test_a_refund_the_provider_did_not_confirm_stays_pending_and_the_tick_sends_it(codes, memory_providers):
    memory_providers["alipay"].refund_unanswered = 1
    client_sale_id, response = codes.take("alipay", "0001", TEA)
    attempt_id = response.get_json()["attempt_id"]
    sale = codes.sale(client_sale_id, [{"method": "alipay", "amount_fen": TEA, "attempt_id": attempt_id}]).get_json()["sale"]
    refund = codes.till.post("/api/v1/refunds", {
        "receipt_no": sale["receipt_no"], "lines": [{"sale_line_id": sale["lines"][0]["id"], "qty_milli": 1000}],
        "reason": "不要了", "approval_pin": MANAGER_PIN, "till": "H1"}).get_json()
    assert refund["provider_state"] == "pending"
    result = tick(codes.app)
    assert result.payments.refunds_done == 1
    with session_scope(codes.app) as s:
        assert s.get(Refund, refund["refund_id"]).provider_state == "success"
    assert [c[0] for c in memory_providers["alipay"].calls if c[0].startswith("refund")] == \
        ["refund", "refund_query", "refund"]
