"""What the tick finishes (issue 15), against ``songtao fake-gateway`` as a separate process: a
payment whose server was killed between the pay call and its answer, a payment nobody polled any
more, a reverse the gateway did not answer, and a refund it did not confirm."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from pos.core.db import session_scope
from pos.models import Refund, Till
from pos.payments.attempts import AttemptState, PaymentAttempt, PaymentAttemptEvent
from pos.reports.upkeep import tick
from tests.fixtures.codepay import WAIT_SECONDS, codes  # noqa: F401  (fixture)
from tests.fixtures.payments import code, fake_gateway  # noqa: F401  (fixture)
from tests.fixtures.till import MANAGER_PIN, hall, till  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
TEA = 16800

# The POS's payment step in a process of its own, on the test's database and credentials: it writes
# the attempt, then waits for the gateway's answer to the pay call (a 0005 code: answered only after
# the gateway's slow delay), and is killed while it waits.
POS_PROCESS = """
import json, sys
from pos import create_app
from pos.payments import credentials, service
config = json.loads(sys.argv[1])
job = config.pop("job")
app = create_app({"TESTING": True, "SECRET_KEY": "pos-process", **config})
with app.app_context():
    session = app.extensions["songtao.sessionmaker"]()
    service.start(session, credentials.provider_for(app, job["provider"]), till_id=job["till_id"], till_code="H1",
                  cashier_id=None, client_sale_id=job["client_sale_id"], amount_fen=job["amount_fen"],
                  code=job["code"])
print("answered")
"""


def attempt_of(app, client_sale_id):
    with session_scope(app) as s:
        return s.scalars(select(PaymentAttempt).where(PaymentAttempt.client_sale_id == client_sale_id)).first()


def events_of(app, attempt_id):
    with session_scope(app) as s:
        return [(e.action, e.state) for e in s.scalars(select(PaymentAttemptEvent).where(
            PaymentAttemptEvent.attempt_id == attempt_id).order_by(PaymentAttemptEvent.id))]


def test_a_server_killed_between_pay_and_its_answer_finishes_the_payment_on_restart(codes):
    app = codes.app
    with session_scope(app) as s:
        till_id = s.scalar(select(Till.id).where(Till.code == "H1"))
    job = {"provider": "wechat", "till_id": till_id, "client_sale_id": "sale-killed-0001", "amount_fen": TEA,
           "code": code("wechat", "0005")}
    config = {k: app.config[k] for k in ("DATABASE_URL", "PAYMENT_CREDENTIALS_DIR", "WECHATPAY_URL", "ALIPAY_URL")}
    config.update(PAYMENT_TIMEOUT_SECONDS=60, job=job)  # it would wait for the slow answer
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    pos = subprocess.Popen([sys.executable, "-c", POS_PROCESS, json.dumps(config)], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while attempt_of(app, "sale-killed-0001") is None:
            assert pos.poll() is None, pos.stdout.read().decode()
            assert time.monotonic() < deadline, "the POS process wrote no attempt"
            time.sleep(0.1)
        time.sleep(1)  # the pay call has reached the gateway, which answers only after its slow delay
        assert pos.poll() is None
        os.killpg(pos.pid, signal.SIGKILL)
        pos.wait(timeout=10)
    finally:
        if pos.poll() is None:
            os.killpg(pos.pid, signal.SIGKILL)
            pos.wait(timeout=10)
        pos.stdout.close()
    left = attempt_of(app, "sale-killed-0001")
    assert left.state == AttemptState.PENDING and events_of(app, left.id) == []

    result = tick(app)  # the server, restarted: its tick finishes the payment
    assert result.payments is not None and result.payments.finished == 1
    assert attempt_of(app, "sale-killed-0001").state == AttemptState.SUCCESS
    assert events_of(app, left.id) == [("query", "success")]
    # the till, back, sees it paid and records the sale with it
    polled = codes.till.get(f"/api/v1/payment-codes/{left.id}").get_json()
    assert polled["state"] == "success" and polled["transaction_id"]
    sold = codes.sale("sale-killed-0001", [{"method": "wechat", "amount_fen": TEA, "attempt_id": left.id}])
    assert sold.status_code == 201 and sold.get_json()["sale"]["payments"][0]["ref"] == polled["transaction_id"]


def test_a_payment_nobody_polls_any_more_is_reversed_by_the_tick_after_the_wait(codes):
    client_sale_id, response = codes.take("alipay", "0004", TEA)
    assert response.get_json()["state"] == "userpaying"
    attempt_id = response.get_json()["attempt_id"]
    tick(codes.app)  # before the wait: asked, still waiting for the password
    assert attempt_of(codes.app, client_sale_id).state == AttemptState.USERPAYING
    time.sleep(WAIT_SECONDS)
    tick(codes.app)
    assert attempt_of(codes.app, client_sale_id).state == AttemptState.REVERSED
    assert events_of(codes.app, attempt_id)[-1] == ("reverse", "reversed")


def test_an_unanswered_reverse_is_retried_until_answered(codes):
    client_sale_id, response = codes.take("wechat", "0004", TEA)
    attempt_id = response.get_json()["attempt_id"]
    time.sleep(WAIT_SECONDS)
    with codes.unreachable():
        polled = codes.till.get(f"/api/v1/payment-codes/{attempt_id}").get_json()
        assert polled["state"] == "unknown"
        assert attempt_of(codes.app, client_sale_id).state == AttemptState.REVERSING
        codes.till.get(f"/api/v1/payment-codes/{attempt_id}")  # the next poll asks again
        assert attempt_of(codes.app, client_sale_id).state == AttemptState.REVERSING
    tick(codes.app)  # and the tick, once the gateway answers
    assert attempt_of(codes.app, client_sale_id).state == AttemptState.REVERSED
    reverses = [state for action, state in events_of(codes.app, attempt_id) if action == "reverse"]
    assert reverses == ["unknown", "unknown", "reversed"]
    assert codes.till.get(f"/api/v1/payment-codes/{attempt_id}").get_json()["state"] == "reversed"


def test_a_refund_the_provider_did_not_confirm_stays_pending_and_the_tick_sends_it(codes):
    client_sale_id, response = codes.take("alipay", "0001", TEA)
    attempt_id = response.get_json()["attempt_id"]
    sale = codes.sale(client_sale_id, [{"method": "alipay", "amount_fen": TEA, "attempt_id": attempt_id}]).get_json()["sale"]
    with codes.unreachable():
        refund = codes.till.post("/api/v1/refunds", {
            "receipt_no": sale["receipt_no"], "lines": [{"sale_line_id": sale["lines"][0]["id"], "qty_milli": 1000}],
            "reason": "不要了", "approval_pin": MANAGER_PIN, "till": "H1"}).get_json()
        assert refund["provider_state"] == "pending"
        assert tick(codes.app).payments.refunds_pending == 1  # still no answer: kept pending
    result = tick(codes.app)
    assert result.payments.refunds_done == 1
    with session_scope(codes.app) as s:
        assert s.get(Refund, refund["refund_id"]).provider_state == "success"
    refunds = [(a, st) for a, st in events_of(codes.app, attempt_id) if a.startswith("refund")]
    assert refunds[-1][1] == "success" and refunds[0] == ("refund", "unknown")
