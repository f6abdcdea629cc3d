"""The API and its OpenAPI document agree (issue 18, point 9), checked by schemathesis against the
app served for real (waitress on a loopback port, a fresh database with a till, products, an open
shift and a counter with its token).

Every operation of /api/v1/openapi.json is exercised with schemathesis's standard checks: no 5xx,
only documented status codes, JSON where JSON is documented, bodies that match their schemas,
schema-valid requests accepted and schema-violating ones refused, 405 with an Allow header for
undeclared methods, and 401 when the credentials are left out. Till operations authenticate as a
logged-in cashier (session cookie + X-CSRFToken), counter operations with the counter's bearer
token. Deterministic: a fixed seed, derandomized generation, no example database, no shrinking.

SCHEMATHESIS_MAX_EXAMPLES changes the examples per operation (default below) for a longer run.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from schemathesis.config import SchemathesisConfig

from inventory import catalogue, suppliers
from inventory.barcodes import ean13
from inventory.localtime import local_today
from inventory.models import Location, LocationKind, Unit
from pos.sales import pricing, service
from pos.hall import shifts
from pos.core.db import session_scope
from pos.models import Till, User
from tests.conftest import CSRF_META, TEST_PASSWORD
from tests.fixtures.counters import seed_counters

SEED = 18
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "120"))
DOCUMENT = "/api/v1/openapi.json"
TILL = "H1"
KIOSK = "K001"


def _seed_hall(app) -> dict:
    """A till with its floor, a few products (one weighed, one with a barcode), an open shift and a
    cash sale on it; returns the shift's id and the sale's receipt number."""
    with session_scope(app) as s:
        for code, kind in (("HALL", LocationKind.HALL_FLOOR), ("LOSS", LocationKind.LOSS)):  # and seed_counters's
            s.add(Location(code=code, name=code, kind=kind))
        s.flush()
        hall = s.query(Location).filter_by(code="HALL").one()
        till = Till(code=TILL, name="一号收银台", location_id=hall.id, printer_uri="none", paper_columns=48)
        s.add(till)
        supplier = suppliers.create_supplier(s, name="松桃县苗绣合作社", origin_county="松桃苗族自治县",
                                             origin_county_code="520628")
        tea = catalogue.create_product(s, sku="TEA250", name="梵净山翠峰茶 250g", price_fen=16800,
                                       supplier_id=supplier.id, barcodes=[ean13("690123456789")])
        catalogue.create_product(s, sku="HONEY", name="松桃土蜂蜜 500g", price_fen=3800)
        catalogue.create_product(s, sku="PORK", name="松桃黑猪腊肉", price_fen=3800, unit=Unit.KG,
                                 sold_by_weight=True, scale_plu=101)
        today = local_today()
        suppliers.create_certificate(s, number="GZ-520628-2026-001", issuer="松桃苗族自治县农业农村局",
                                     valid_from=today - dt.timedelta(days=30),
                                     valid_to=today + dt.timedelta(days=300),
                                     supplier_id=supplier.id, product_ids=[tea.id])
        s.flush()
        cashier = s.query(User).filter_by(username="cash").one()
        shift = shifts.open_shift(s, till_id=till.id, cashier_id=cashier.id, opening_float_fen=20000)
        sold = service.record_sale(s, service.SaleIn(
            channel="hall", location_id=hall.id, till_id=till.id, cashier_id=cashier.id,
            client_sale_id="schemathesis-0001", lines=[pricing.LineIn(product_id=tea.id, qty_milli=1000)],
            payments=[service.PaymentIn(method="cash", amount_fen=16800, tendered_fen=20000)]))
        return {"shift_id": shift.id, "receipt_no": sold.receipt_no}


def _login(base: str, username: str) -> tuple[str, str]:
    """(session cookie, CSRF token) of a user logged in through the real login form."""
    http = requests.Session()
    page = http.get(f"{base}/login", timeout=30)
    token = CSRF_META.search(page.text).group(1)
    answer = http.post(f"{base}/login", data={"pw-username": username, "pw-password": TEST_PASSWORD,
                                              "pw-csrf_token": token}, allow_redirects=False, timeout=30)
    assert answer.status_code in (302, 303), answer.text[:300]
    page = http.get(f"{base}/account", timeout=30)
    token = CSRF_META.search(page.text).group(1)
    return http.cookies["session"], token


# Who calls an operation, by the area its view requires: the till's operations a cashier, the
# reports an auditor, the managers' own (a test print) a manager.
USERS = {"till": ("cash", "cashier"), "account": ("cash", "cashier"), "reports": ("audit", "auditor"),
         "dashboard": ("boss", "manager")}


@pytest.fixture
def served(app, live_server, make_user):
    for username, role in set(USERS.values()):
        make_user(username, role)
    fleet = seed_counters(app)
    hall = _seed_hall(app)
    logins = {username: _login(live_server, username) for username, _role in set(USERS.values())}
    return {"base": live_server, "logins": logins, "bearer": fleet["tokens"][KIOSK], **hall}


def _built() -> tuple[dict, dict]:
    """The document as the app builds it (the served one must be the same, see the first test) and
    each operation's declaration: (METHOD, path) -> (pos.core.openapi.Operation, the area its view requires)."""
    import tempfile

    from pos import create_app
    from pos.core.openapi import api_rules, build_document

    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{folder}/unused.sqlite3",
                          "SECRET_KEY": "schemathesis"})
        document = build_document(app)
        declared = {}
        for rule, methods in api_rules(app):
            view = app.view_functions[rule.endpoint]
            ops = getattr(view, "openapi_operations", {})
            path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
            for method in methods:
                if ops.get(method) or ops.get("*"):
                    declared[(method, path)] = (ops.get(method) or ops.get("*"), getattr(view, "required_area", None))
        app.extensions["songtao.engine"].dispose()
    return document, declared


DOCUMENT_BUILT, DECLARED = _built()
KIOSK_SALES = ("POST", "/api/v1/kiosks/{code}/sales")

def schema_of(path: str) -> schemathesis.schemas.BaseSchema:
    """schemathesis's view of one path of the document (its own test, its own served app)."""
    pinned = {"code": KIOSK} if path.startswith("/api/v1/kiosks/") else {"code": TILL} if "/tills/" in path else {}
    return schemathesis.openapi.from_dict({**DOCUMENT_BUILT, "paths": {path: DOCUMENT_BUILT["paths"][path]}},
                                          config=SchemathesisConfig.from_dict({
        "seed": SEED,
        "request-timeout": 30,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "no-shrink": True, "database": "none",
                       # the credentials are the real ones (below), sent with every case; the ignored_auth
                       # check leaves them out to see the documented 401
                       "with-security-parameters": False},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            # 422 is also how the API refuses a well-formed request that a rule of the hall refuses (an
            # unknown till, 1.5 pieces of tea, payments that do not add up): allowed here only when
            # the request model itself accepted the request, which the test checks below. 429: wrong
            # manager PINs lock approvals at the till after a few tries (issue 18, point 1), as
            # documented, whatever else the request says.
            "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]},
        },
        # the counter and the till whose credentials are sent (a path parameter, not generated)
        **({"parameters": pinned} if pinned else {}),
    }))


def _credentials(area, served) -> dict:
    """The headers that authenticate a call: the counter's token on the counters' API (no area), a
    logged-in user's session cookie and CSRF token everywhere else."""
    if area is None:
        return {"Authorization": f"Bearer {served['bearer']}"}
    cookie, csrf = served["logins"][USERS[area][0]]
    return {"Cookie": f"session={cookie}", "X-CSRFToken": csrf}


def _validator(name: str) -> Draft202012Validator:
    """A validator of one of the document's schemas, formats included."""
    root = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT_BUILT["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _assert_the_models_accept(case, declared) -> None:
    """A schema-valid request answered 422 must have got past the request models (the 422 is a rule
    of the hall's, not a disagreement between the document and the parser)."""
    if declared.body is not None and isinstance(case.body, dict):
        try:
            declared.body.model_validate(case.body)
        except ValidationError as refused:
            # A date-time the document allows but UTC cannot hold (0001-01-01T00:00:00+01:00) is refused
            # by the models on purpose (pinned below): the one disagreement allowed.
            if not all(_outside_utc(e.get("input")) for e in refused.errors()):
                raise
    if declared.query is not None:
        declared.query.model_validate({k: v if isinstance(v, str) else json.dumps(v)
                                       for k, v in (case.query or {}).items()})


def _outside_utc(value) -> bool:
    try:
        dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return isinstance(value, str)
    return False


def _assert_invalid_counter_sales_rejected(case, answer: dict) -> None:
    """A counter batch answers 200 listing each sale as accepted, duplicate or rejected (DESIGN: one
    malformed sale is rejected by its txn_id, the rest of the batch still counts). So a batch with
    a sale the document refuses may answer 200, as long as that sale is not recorded; anything
    wrong outside the sales list must refuse the batch."""
    batch = _validator("KioskSalesIn")
    assert isinstance(case.body, dict) and isinstance(case.body.get("sales"), list), case.body
    assert batch.is_valid({**case.body, "sales": []}), f"a malformed batch was answered 200: {case.body}"
    item = _validator("KioskSaleIn")
    recorded = set(answer["accepted"]) | set(answer["duplicates"])
    for sale in case.body["sales"]:
        if not item.is_valid(sale):
            assert not (isinstance(sale, dict) and sale.get("txn_id") in recorded), \
                f"a sale that violates the document was recorded: {sale}"


def test_point9_the_served_document_is_the_one_tested(served):
    answer = requests.get(served["base"] + DOCUMENT, headers=_credentials("account", served), timeout=30)
    assert answer.status_code == 200
    assert answer.json() == DOCUMENT_BUILT


def api_agrees_with_its_openapi_document(case, served):
    """One case of one operation: schemathesis's checks, and the two judgements it cannot make alone."""
    key = (case.operation.method.upper(), case.operation.path)
    declared, area = DECLARED[key]
    counter_batch = key == KIOSK_SALES
    mode = case.meta.generation.mode if case.meta is not None else None
    if mode is not None and mode.is_positive:
        # a well-formed request for the recorded sale and the open shift, not only for ones that
        # do not exist, so that real answers are checked against their schemas too
        for name in ("receipt_no", "shift_id"):
            if name in (case.path_parameters or {}):
                case.path_parameters[name] = served[name]
    response = case.call_and_validate(
        base_url=served["base"], headers=_credentials(area, served),
        # a counter batch refuses a malformed sale inside it by its txn_id: checked below instead
        excluded_checks=[schemathesis.checks.negative_data_rejection] if counter_batch else [])
    if response.request.method != case.operation.method.upper():
        return  # an undeclared method (405) or OPTIONS: judged by the unsupported_method check
    if mode is not None and mode.is_positive and response.status_code == 422:
        _assert_the_models_accept(case, declared)
    if counter_batch and mode is not None and mode.is_negative and response.status_code == 200:
        _assert_invalid_counter_sales_rejected(case, response.json())


def _test_name(methods: list[str], path: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", path[len("/api/v1/"):].replace("{", "").replace("}", "").lower())
    return f"test_point9_{'_'.join(m.lower() for m in methods)}_{words.strip('_')}_agrees_with_the_document"


# One test per path, named after its methods and it (test_point9_post_sales_…, and
# test_point9_get_post_receipt_blocks_… for a path with two): stable, unique node ids for pytest-xdist
# and for reading a failure; each is served its own fresh database. A path's methods are tested
# together, so that the check of undeclared methods (405) knows every declared one.
for _path in sorted(DOCUMENT_BUILT["paths"]):
    _methods = sorted(method.upper() for method in DOCUMENT_BUILT["paths"][_path])
    _test = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])(
        schema_of(_path).parametrize()(lambda case, served: api_agrees_with_its_openapi_document(case, served)))
    _test.__name__ = _test.__qualname__ = _test_name(_methods, _path)
    globals()[_test.__name__] = _test


# --- what the schemathesis run found, pinned ---------------------------------------------------------

def test_point9_a_counter_moment_before_the_first_utc_moment_is_rejected_not_500(served):
    # 0001-01-01T00:00:00+00:01 parses, but is a minute before the first moment Python can hold in UTC
    body = {"sales": [{"txn_id": "t-year-one", "sold_at": "0001-01-01T00:00:00+00:01",
                       "lines": [{"slot": "A1", "qty": 1, "unit_price_fen": 3800}],
                       "payment": {"method": "wechat", "amount_fen": 3800}}]}
    headers = _credentials(None, served)
    answer = requests.post(f"{served['base']}/api/v1/kiosks/{KIOSK}/sales", json=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert [r["txn_id"] for r in answer.json()["rejected"]] == ["t-year-one"]
    answer = requests.post(f"{served['base']}/api/v1/kiosks/{KIOSK}/heartbeat", headers=headers, timeout=30,
                           json={"at": "0001-01-01T00:00:00+00:01"})
    assert answer.status_code == 422 and answer.json()["field"] == "at", answer.text
