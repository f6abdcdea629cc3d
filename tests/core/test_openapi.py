"""The OpenAPI document at /api/v1/openapi.json: a valid OpenAPI 3.1 document that documents every
JSON endpoint under /api/v1 with its methods, and a registry that other packages (the counters'
API, reports) join with one decorator."""
from __future__ import annotations

import re

import pytest
from flask import Blueprint, jsonify

from pos import create_app
from pos.core.openapi import API_PREFIX, RequestModel, ResponseModel, api_rules, build_document, operation
from pos.core.web import requires

try:
    from openapi_spec_validator import validate as validate_spec
except ImportError:  # pragma: no cover - the dev extra installs it
    validate_spec = None

# The document describes itself too, but its own rule needs no check against the document.
SELF = f"{API_PREFIX}/openapi.json"


def as_openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule)


@pytest.fixture
def document(client, auth, make_user):
    make_user("cash", "cashier")
    auth.login("cash")
    response = client.get(SELF)
    assert response.status_code == 200
    assert response.is_json
    return response.get_json()


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    if validate_spec is None:  # structural checks only
        assert document["info"]["title"] and document["info"]["version"]
        for item in document["paths"].values():
            for op in item.values():
                assert op["responses"]
        return
    validate_spec(document)


def test_every_api_rule_is_documented_with_its_methods(app, document):
    missing = []
    for rule, methods in api_rules(app):
        if rule.rule == SELF:
            continue
        item = document["paths"].get(as_openapi_path(rule.rule), {})
        for method in methods:
            if method.lower() not in item:
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert not missing, "undocumented API endpoints: " + ", ".join(missing)
    assert len(list(api_rules(app))) >= 13


def test_nothing_is_documented_that_does_not_exist(app, document):
    real: dict[str, set[str]] = {}  # a path may have a rule per method (GET and POST /receipt-blocks)
    for rule, methods in api_rules(app):
        real.setdefault(as_openapi_path(rule.rule), set()).update(m.lower() for m in methods)
    for path, item in document["paths"].items():
        assert path in real, path
        assert set(item) <= real[path], path


def test_bodies_errors_and_security_are_described(document):
    sales = document["paths"]["/api/v1/sales"]["post"]
    schema_ref = sales["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    sale_in = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert {"client_sale_id", "till", "lines"} <= set(sale_in["required"])
    assert sale_in["additionalProperties"] is False
    assert {"200", "201", "400", "401", "403", "409", "413", "422"} <= set(sales["responses"])
    assert sales["security"] == [{"session": [], "csrf": []}]
    error = document["components"]["schemas"]["ErrorOut"]
    assert error["required"] == ["error"]
    lookup = document["paths"]["/api/v1/products/lookup"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in lookup["parameters"]] == [
        ("code", "query", True), ("till", "query", False)]   # the till: its stock decides the warning
    report = document["paths"]["/api/v1/shifts/{shift_id}/report"]["get"]
    assert report["parameters"][0] == {"name": "shift_id", "in": "path", "required": True,
                                       "schema": {"type": "integer"}}
    # money is integer fen: never a number that could be a float
    line = document["components"]["schemas"]["LineIn"]["properties"]
    assert line["qty_milli"]["type"] == "integer" and line["line_discount_fen"]["type"] == "integer"


def test_the_document_needs_a_login(client):
    response = client.get(SELF)
    assert response.status_code == 401 and response.is_json


def test_point9_the_document_is_served_to_a_counter_token(app, client):
    from tests.fixtures.counters import seed_counters

    tokens = seed_counters(app)["tokens"]  # K003 is retired
    answer = client.get(SELF, headers={"Authorization": f"Bearer {tokens['K001']}"})
    assert answer.status_code == 200 and answer.get_json()["openapi"].startswith("3.1")
    assert answer.get_json()["paths"][SELF]["get"]["security"] == [{"session": []}, {"bearer": []}]
    for refused in (f"Bearer {tokens['K003']}", "Bearer not-a-token-of-any-counter-0000000000", tokens["K001"]):
        answer = client.get(SELF, headers={"Authorization": refused})
        assert answer.status_code == 401 and answer.get_json()["error"], refused


def test_point9_an_undeclared_method_is_405_json_with_allow(client, auth, make_user):
    make_user("cash", "cashier")
    auth.login("cash")
    for method, path, allowed in (("DELETE", "/api/v1/sales", {"POST"}),
                                  ("PUT", "/api/v1/products/search", {"GET", "HEAD"}),
                                  ("TRACE", "/api/v1/kiosks/K001/planogram", {"GET", "HEAD"})):
        answer = client.open(path, method=method)
        assert answer.status_code == 405, (method, path)
        assert answer.is_json and answer.get_json()["error"]
        assert {m.strip() for m in answer.headers["Allow"].split(",")} - {"OPTIONS"} == allowed
    page = client.delete("/login")  # pages too: the error page, with the header
    assert page.status_code == 405 and "GET" in page.headers["Allow"]


def test_point9_a_post_without_a_session_is_401_as_documented(client):
    # CSRFProtect runs before the login check; without a session the answer is the documented 401
    for path in ("/api/v1/sales", "/api/v1/baskets/price", "/api/v1/tills/H1/drawer"):
        answer = client.post(path, json={})
        assert answer.status_code == 401 and answer.get_json()["error"], path
        answer = client.post(path, json={}, headers={"X-CSRFToken": "forged"})
        assert answer.status_code == 401, path


def test_a_logged_in_post_without_csrf_is_still_400(client, auth, make_user):
    make_user("cash", "cashier")
    auth.login("cash")
    answer = client.post("/api/v1/baskets/price", json={"lines": []})
    assert answer.status_code == 400 and answer.get_json()["error"]


# --- the registry, as another package would use it -------------------------------------------------

class PingIn(RequestModel):
    n: int


class PingOut(ResponseModel):
    n: int


def test_another_blueprint_registers_with_one_decorator(tmp_path):
    bp = Blueprint("elsewhere", __name__, url_prefix=f"{API_PREFIX}/kiosks")

    @bp.post("/<code>/ping")
    @requires("counters")
    @operation("Ping", body=PingIn, responses={200: PingOut}, auth="bearer", tags=("counters",))
    def ping(code):
        return jsonify({"n": 1})

    @bp.get("/undocumented")
    @requires("counters")
    def undocumented():
        return jsonify({})

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
                      "SECRET_KEY": "test"})
    app.register_blueprint(bp)
    document = build_document(app)
    op = document["paths"]["/api/v1/kiosks/{code}/ping"]["post"]
    assert op["security"] == [{"bearer": []}]
    assert op["parameters"] == [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}]
    assert "PingIn" in document["components"]["schemas"] and "PingOut" in document["components"]["schemas"]
    assert "/api/v1/kiosks/undocumented" not in document["paths"]  # and the test above would name it
    if validate_spec is not None:
        validate_spec(document)
    app.extensions["songtao.engine"].dispose()
