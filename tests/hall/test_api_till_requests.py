"""The till's JSON API over HTTP, what it refuses: malformed sale bodies, a body too large, a
missing CSRF token, a wrong method or an unknown path, each answering JSON 4xx without changing
anything; and who may call it (the till roles, never a restocker, never anonymously).

The hall and the ``Api`` client are in tests/fixtures/till.py; what the API does with good
requests is in tests/hall/test_api_till.py.
"""
from __future__ import annotations

import pytest

from pos.hall.api import base as till_api_base
from pos.models import Sale
from tests.conftest import csrf_token
from tests.fixtures.till import (  # noqa: F401  (hall, till: fixtures)
    TEA_EAN,
    Api,
    assert_error,
    count,
    hall,
    login,
    sale_body,
    till,
)


# --- bad requests change nothing --------------------------------------------------------------------

def _line(**kw):
    return [{"product_id": 1, "qty_milli": 1000, **kw}]


BAD_BODIES = [
    # (what, raw body or dict, status, field)
    ("not JSON", "{'lines': ", 400, None),
    ("empty body", "", 400, None),
    ("a JSON array", "[1, 2]", 400, None),
    ("a JSON string", '"sale"', 400, None),
    ("bad UTF-8", b"\xff\xfe{", 400, None),
    ("deep nesting", "[" * 100_000 + "]" * 100_000, 400, None),
    ("fraction for fen", {"payments": [{"method": "cash", "amount_fen": 188.5}]}, 422, "payments[0].amount_fen"),
    ("string for fen", {"order_discount_fen": "100"}, 422, "order_discount_fen"),
    ("float for qty", {"lines": _line(qty_milli=1.5)}, 422, "lines[0].qty_milli"),
    ("bool for qty", {"lines": _line(qty_milli=True)}, 422, "lines[0].qty_milli"),
    ("zero qty", {"lines": _line(qty_milli=0)}, 422, "lines[0].qty_milli"),
    ("negative discount", {"lines": _line(line_discount_fen=-1)}, 422, "lines[0].line_discount_fen"),
    ("huge id", {"lines": _line(product_id=2 ** 40)}, 422, "lines[0].product_id"),
    ("no lines", {"lines": []}, 422, "lines"),
    ("too many lines", {"lines": _line() * 201}, 422, "lines"),
    ("too many payments", {"payments": [{"method": "cash", "amount_fen": 1}] * 11}, 422, "payments"),
    ("unknown method", {"payments": [{"method": "bitcoin", "amount_fen": 1}]}, 422, "payments[0].method"),
    ("unknown field", {"total_fen": 1}, 422, "total_fen"),
    ("client price", {"lines": _line(unit_price_fen=1)}, 422, "lines[0].unit_price_fen"),
    ("missing till", {"till": None}, 422, "till"),
    ("short client id", {"client_sale_id": "x"}, 422, "client_sale_id"),
    ("control character", {"payments": [{"method": "wechat", "amount_fen": 1, "ref": "a\x00b"}]}, 422,
     "payments[0].ref"),
    ("lone surrogate", {"payments": [{"method": "wechat", "amount_fen": 1, "ref": "\ud800"}]}, 422,
     "payments[0].ref"),
]


@pytest.mark.parametrize("what,body,status,field", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_malformed_sale_bodies_answer_json_and_record_nothing(app, till, hall, what, body, status, field):
    if isinstance(body, dict):
        full = sale_body(hall)
        full.update(body)
        if body.get("till", "") is None:
            del full["till"]
        response = till.post("/api/v1/sales", full)
    else:
        response = till.post("/api/v1/sales", raw=body)
    error = assert_error(response, status, field=field)
    if field:
        assert field in error["error"]  # the message names the field
    assert count(app, Sale) == 0


def test_a_body_too_large_is_413_json(app, till, hall):
    body = sale_body(hall, padding="x" * (till_api_base.MAX_BODY_BYTES + 1))
    assert_error(till.post("/api/v1/sales", body), 413)
    assert count(app, Sale) == 0


def test_a_missing_csrf_token_is_400_json(app, till, hall):
    assert_error(till.post("/api/v1/sales", sale_body(hall), csrf=False), 400, "安全校验")
    till.token = "forged"
    assert_error(till.post("/api/v1/sales", sale_body(hall)), 400)
    assert count(app, Sale) == 0


def test_wrong_method_and_unknown_path_answer_json(till, hall):
    assert_error(till.client.delete("/api/v1/sales"), 405)
    assert_error(till.get("/api/v1/nothing-here"), 404)


# --- who may call -----------------------------------------------------------------------------------

CALLS = [
    ("GET", "/api/v1/products/quick", None),
    ("GET", f"/api/v1/products/lookup?code={TEA_EAN}", None),
    ("POST", "/api/v1/baskets/price", {"lines": []}),
    ("GET", "/api/v1/shifts/current?till=H1", None),
]
ROLE_STATUS = {"cashier": 200, "manager": 200, "admin": 200, "restocker": 403, "auditor": 403}


@pytest.mark.parametrize("role,status", ROLE_STATUS.items())
def test_only_till_roles_may_call(client, auth, make_user, hall, role, status):
    make_user(f"{role}1", role)
    caller = login(client, auth, f"{role}1")
    for method, path, body in CALLS:
        response = caller.get(path) if method == "GET" else caller.post(path, body)
        if status == 200:
            assert response.status_code == 200, (path, response.get_json())
        else:
            assert_error(response, 403, "无权")


def test_a_restocker_cannot_record_a_sale(app, client, auth, make_user, hall):
    make_user("rest", "restocker")
    caller = login(client, auth, "rest")
    assert_error(caller.post("/api/v1/sales", sale_body(hall)), 403)
    assert count(app, Sale) == 0


@pytest.mark.parametrize("method,path,body", CALLS, ids=[f"{m} {p.split('?')[0]}" for m, p, _ in CALLS])
def test_anonymous_calls_are_401_json(client, hall, method, path, body):
    anonymous = Api(client)
    anonymous.token = csrf_token(client, "/login")
    response = anonymous.get(path) if method == "GET" else anonymous.post(path, body)
    assert_error(response, 401, "请先登录")
