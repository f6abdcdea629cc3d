"""No secret leaves the credentials store (issue 15): with rehearsal credentials set and the fake
gateway running as a separate process, a code payment and its sale, a partial refund back through
the provider, a refused payment, a payment code the hall cannot take, the merchant credentials page
(viewed, changed, changed wrongly) and the till page — and then the app's log at DEBUG, every page
and JSON answer, every audit row and every row of every table are searched for the private keys'
PEM lines, the API v3 key and the full payment codes: none is found anywhere."""
from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import select

from pos.core.db import session_scope
from pos.payments import fake_gateway as gateway_keys
from pos.schema import metadata
from tests.conftest import AuthActions, csrf_token
from tests.fixtures.paycode import ALIPAY_CODE, WECHAT_CODE, paycode_app  # noqa: F401  (a fixture)
from tests.fixtures.payments import fake_gateway  # noqa: F401  (a fixture)
from tests.fixtures.till import MANAGER_PIN, hall, login, till  # noqa: F401  (fixtures)

TEA = 16800


def secrets_of(*credential_sets: dict) -> list[str]:
    """What must never be shown: every line of the private keys' PEM bodies (and each body whole),
    the API v3 key."""
    found = []
    for creds in credential_sets:
        for pem in (creds["wechat"]["private_key_pem"], creds["alipay"]["app_private_key_pem"]):
            body = [ln.strip() for ln in pem.strip().splitlines() if ln.strip() and not ln.startswith("-----")]
            found += body + ["".join(body)]
        found.append(creds["wechat"]["apiv3_key"])
    return found


class Seen:
    """Everything a person or a log could read: the answers' bodies, kept as the test goes."""

    def __init__(self):
        self.texts: list[str] = []

    def __call__(self, response, *expected: int):
        text = response.get_data(as_text=True)
        self.texts.append(text)
        if expected:
            assert response.status_code in expected, (response.status_code, text[:500])
        return response

    def json(self, response, *expected: int):
        return self(response, *expected).get_json()


def database_text(app) -> str:
    """Every row of every table (the audit rows, the attempts and their events among them)."""
    out = []
    with session_scope(app) as s:
        for table in metadata.sorted_tables:
            for row in s.execute(select(table)):
                out.append(repr(tuple(row)))
    return "\n".join(out)


def change(admin, seen, provider: str, values: dict, *expected: int):
    token = csrf_token(admin, "/settings/payments")
    return seen(admin.post(f"/settings/payments/{provider}", data={**values, "action": "save", "csrf_token": token}),
                *expected)


def credentials_page(admin, seen, other: dict) -> None:
    """Viewed; Alipay's replaced by another merchant's (which the gateway will not accept); a
    replacement whose private key lost its PEM frame refused without echoing it."""
    page = seen(admin.get("/settings/payments"), 200).get_data(as_text=True)
    assert page.count("已配置") >= 2
    change(admin, seen, "alipay", other["alipay"], 302)
    seen(admin.get("/settings/payments"), 200)
    body_only = "\n".join(ln for ln in other["wechat"]["private_key_pem"].splitlines() if not ln.startswith("-----"))
    change(admin, seen, "wechat", {**other["wechat"], "private_key_pem": body_only}, 400)
    seen(admin.get("/settings/payments"), 200)


def remove_wechat(admin, seen) -> None:
    token = csrf_token(admin, "/settings/payments")
    seen(admin.post("/settings/payments/wechat", data={"action": "remove", "csrf_token": token}), 302)
    seen(admin.get("/settings/payments"), 200)


@pytest.fixture
def other_credentials(tmp_path):
    folder = tmp_path / "other-keys"
    gateway_keys.ensure_keys(folder)
    return gateway_keys.rehearsal_credentials(folder)


def test_no_secret_in_any_log_page_audit_row_or_answer(paycode_app, fake_gateway, till, hall, make_user,  # noqa: F811
                                                        caplog, other_credentials):
    app = paycode_app
    caplog.set_level(logging.DEBUG)
    seen = Seen()
    codes = [WECHAT_CODE.format(1), ALIPAY_CODE.format(3), WECHAT_CODE.format(2), ALIPAY_CODE.format(1)]

    seen(till.post("/api/v1/shifts", {"till": hall.till, "opening_float_fen": 20000}), 201)
    seen(till.get("/till"), 200)

    # a code payment, its sale, a partial refund back through the provider
    sale_id = str(uuid.uuid4())
    paid = seen.json(till.post("/api/v1/payment-codes", {"till": hall.till, "client_sale_id": sale_id,
                                                         "amount_fen": 2 * TEA, "code": codes[0]}), 201)
    assert paid["state"] == "success" and paid["transaction_id"]
    seen(till.get(f"/api/v1/payment-codes/{paid['attempt_id']}"), 200)
    sold = seen.json(till.post("/api/v1/sales", {
        "client_sale_id": sale_id, "till": hall.till, "lines": [{"product_id": hall.tea, "qty_milli": 2000}],
        "payments": [{"method": "wechat", "amount_fen": 2 * TEA, "attempt_id": paid["attempt_id"]}]}), 201)
    sale = sold["sale"]
    refund = seen.json(till.post("/api/v1/refunds", {
        "receipt_no": sale["receipt_no"], "lines": [{"sale_line_id": sale["lines"][0]["id"], "qty_milli": 1000}],
        "reason": "顾客退一盒", "approval_pin": MANAGER_PIN, "till": hall.till}), 201)
    assert refund["provider_state"] == "success"
    seen(till.get(f"/till/receipts/{sale['receipt_no']}"), 200)

    # a refused payment, then one the customer cancels while typing the password
    refused = seen.json(till.post("/api/v1/payment-codes", {"till": hall.till, "client_sale_id": str(uuid.uuid4()),
                                                            "amount_fen": TEA, "code": codes[1]}), 201)
    assert refused["state"] == "failed" and refused["message"]
    waiting = seen.json(till.post("/api/v1/payment-codes", {"till": hall.till, "client_sale_id": str(uuid.uuid4()),
                                                            "amount_fen": TEA, "code": codes[2]}), 201)
    assert waiting["state"] == "userpaying"
    seen(till.post(f"/api/v1/payment-codes/{waiting['attempt_id']}/cancel", {}), 200)

    # the merchant credentials page: viewed, changed, changed wrongly (the error names the field only)
    admin = app.test_client()
    make_user("root", "admin")
    assert AuthActions(admin).login("root").status_code == 302
    credentials_page(admin, seen, other_credentials)

    # Alipay now signs with keys the gateway does not know: the payment fails, saying nothing secret
    wrong = seen.json(till.post("/api/v1/payment-codes", {"till": hall.till, "client_sale_id": str(uuid.uuid4()),
                                                          "amount_fen": TEA, "code": codes[3]}), 201)
    assert wrong["state"] != "success"
    seen(till.get(f"/api/v1/payment-codes/{wrong['attempt_id']}"), 200)
    # a provider without credentials: the error says so and nothing else
    remove_wechat(admin, seen)
    seen(till.post("/api/v1/payment-codes", {"till": hall.till, "client_sale_id": str(uuid.uuid4()),
                                             "amount_fen": TEA, "code": codes[0]}), 422)

    log_text = "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "the log was captured"
    haystacks = {"log": log_text, "answers": "\n".join(seen.texts), "database": database_text(app)}
    assert paid["transaction_id"] in haystacks["answers"] + haystacks["database"]  # the search does find things
    for name, text in haystacks.items():
        for secret in secrets_of(fake_gateway["credentials"], other_credentials):
            assert secret not in text, f"a secret in the {name}"
        for code in codes:
            assert code not in text, f"a full payment code in the {name}"
