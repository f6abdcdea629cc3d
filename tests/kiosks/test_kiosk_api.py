"""The counter API v1 over real HTTP (waitress on a free port, urllib): the contract of DESIGN.md
with the counters' firmware. Every answer is checked against the pydantic models the OpenAPI
document is built from."""
from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from inventory.localtime import utcnow
from inventory.models import Alert, AlertKind, StockLevel, StockMove
from kiosks import registry
from kiosks.api import KioskPlanogramOut, KioskSalesOut
from kiosks.models import Kiosk
from kiosks.registry import kiosk_for_token
from pos.core.db import session_scope
from pos.models import Payment, Sale, SaleLine
from pos.core.openapi import ErrorOut
from tests.fixtures.counters import CERT_NO, NOODLE, SACHET, TEA, sale, seed_counters

CJK = re.compile(r"[\u4e00-\u9fff]")
SALES = "/api/v1/kiosks/{code}/sales"
PLANOGRAM = "/api/v1/kiosks/{code}/planogram"
HEARTBEAT = "/api/v1/kiosks/{code}/heartbeat"


def call(base: str, method: str, path: str, *, token: str | None = None, body=None, raw: bytes | None = None,
         headers: dict | None = None):
    """(status, parsed JSON or None, headers) of one real HTTP request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, payload, got = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, payload, got = error.code, error.read(), error.headers
    parsed = json.loads(payload) if payload else None
    if status >= 400:
        ErrorOut.model_validate(parsed)  # every error is JSON {"error": …}
        assert CJK.search(parsed["error"]), parsed
    return status, parsed, got


@pytest.fixture
def fleet(app):
    return seed_counters(app)


@pytest.fixture
def server(live_server):
    return live_server


@pytest.fixture
def api(server, fleet):
    def post_sales(code: str, sales: list, token: str | None = None):
        status, body, _ = call(server, "POST", SALES.format(code=code), body={"sales": sales},
                               token=token or fleet["tokens"][code])
        if status == 200:
            KioskSalesOut.model_validate(body)
        return status, body
    return post_sales


def count(session, model) -> int:
    session.rollback()
    n = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return n


# --- authentication -------------------------------------------------------------------------------

ENDPOINTS = [("GET", PLANOGRAM, None), ("POST", SALES, {"sales": []}),
             ("POST", HEARTBEAT, {"door_open": False, "temperature_c": 6.5, "error": None})]


@pytest.mark.parametrize("method,path,body", ENDPOINTS, ids=["planogram", "sales", "heartbeat"])
def test_auth(server, fleet, session, method, path, body):
    url = path.format(code="K001")
    for header in ({}, {"Authorization": "Bearer nonsense-token-of-nobody-1234567890"},
                   {"Authorization": f"Basic {fleet['tokens']['K001']}"}, {"Authorization": "Bearer "}):
        status, answer, headers = call(server, method, url, body=body, headers=header)
        assert status == 401, header
        assert headers["WWW-Authenticate"].startswith("Bearer")
    # another counter's token: 403; the counter's own: 200/204
    status, answer, _ = call(server, method, url, body=body, token=fleet["tokens"]["K002"])
    assert status == 403 and "K001" in answer["error"]
    status, _, _ = call(server, method, url, body=body, token=fleet["tokens"]["K001"])
    assert status in (200, 204)
    # a valid token, a counter that does not exist: 404; a retired counter's own token: 403
    status, _, _ = call(server, method, path.format(code="K999"), body=body, token=fleet["tokens"]["K001"])
    assert status == 404
    status, answer, _ = call(server, method, path.format(code="K003"), body=body, token=fleet["tokens"]["K003"])
    assert status == 403 and answer["error"] == "专柜已停用"
    assert count(session, Sale) == 0


def test_a_reissued_token_replaces_the_old_one(app, server, fleet):
    from kiosks.registry import issue_token, revoke_token
    from pos.core.db import session_scope

    with app.app_context(), session_scope(app) as s:
        new = issue_token(s, "K001")
    assert call(server, "GET", PLANOGRAM.format(code="K001"), token=fleet["tokens"]["K001"])[0] == 401
    assert call(server, "GET", PLANOGRAM.format(code="K001"), token=new)[0] == 200
    with app.app_context(), session_scope(app) as s:
        assert revoke_token(s, "K001", actor_id=None) is True
    assert call(server, "GET", PLANOGRAM.format(code="K001"), token=new)[0] == 401


def test_no_csrf_token_and_no_login_are_needed(server, fleet):
    # a machine posts JSON with only its bearer token (no cookie, no CSRF header)
    status, _, headers = call(server, "POST", HEARTBEAT.format(code="K001"), body={}, token=fleet["tokens"]["K001"])
    assert status == 204
    assert "Set-Cookie" not in headers


# --- planogram ------------------------------------------------------------------------------------

def test_planogram(server, fleet):
    status, body, _ = call(server, "GET", PLANOGRAM.format(code="K001"), token=fleet["tokens"]["K001"])
    assert status == 200
    KioskPlanogramOut.model_validate(body)
    assert body == {"kiosk": "K001", "slots": [
        {"slot": "A1", "sku": TEA, "name": "梵净山翠峰茶 100g", "price_fen": 3800, "par": 8, "on_hand": 20,
         "certified": True},
        {"slot": "A2", "sku": NOODLE, "name": "松桃红薯粉 500g", "price_fen": 1280, "par": 10, "on_hand": 10,
         "certified": False},
    ]}


# --- sales ----------------------------------------------------------------------------------------

def test_sales_are_recorded_with_stock_moves_and_certified_snapshot(api, fleet, session):
    status, body = api("K001", [sale("t-1", [{"slot": "A1", "qty": 2, "unit_price_fen": 3800},
                                             {"slot": "A2", "qty": 1, "unit_price_fen": 1280}])])
    assert status == 200 and body == {"accepted": ["t-1"], "duplicates": [], "rejected": []}
    session.rollback()
    row = session.scalars(select(Sale).where(Sale.txn_id == "t-1")).one()
    assert (row.channel.value, row.total_fen, row.kiosk_id) == ("kiosk", 8880, fleet["kiosks"]["K001"])
    lines = {ln.slot: (ln.certified, ln.certificate_no, ln.net_fen)
             for ln in session.scalars(select(SaleLine).where(SaleLine.sale_id == row.id))}
    assert lines == {"A1": (True, CERT_NO, 7600), "A2": (False, None, 1280)}
    payment = session.scalars(select(Payment).where(Payment.sale_id == row.id)).one()
    assert (payment.method.value, payment.amount_fen, payment.ref) == ("wechat", 8880, "WXt-1")
    k1 = fleet["locations"]["K001"]
    moved = dict(session.execute(select(StockMove.product_id, func.sum(StockMove.qty_milli))
                                 .where(StockMove.ref_type == "sale", StockMove.ref_id == row.id,
                                        StockMove.from_location_id == k1)
                                 .group_by(StockMove.product_id)).all())
    assert moved == {fleet["products"][TEA]: 2000, fleet["products"][NOODLE]: 1000}
    levels = dict(session.execute(select(StockLevel.product_id, StockLevel.qty_milli)
                                  .where(StockLevel.location_id == k1)).all())
    session.rollback()
    assert levels[fleet["products"][TEA]] == 18_000 and levels[fleet["products"][NOODLE]] == 9_000


def test_duplicates_and_conflicts(api, session):
    assert api("K001", [sale("t-1")])[1]["accepted"] == ["t-1"]
    status, body = api("K001", [sale("t-1"), sale("t-1", [{"slot": "A2", "qty": 1, "unit_price_fen": 1280}]),
                                sale("t-2")])
    assert status == 200
    assert body["accepted"] == ["t-2"] and body["duplicates"] == ["t-1"]
    assert [r["txn_id"] for r in body["rejected"]] == ["t-1"] and "内容不同" in body["rejected"][0]["error"]
    assert count(session, Sale) == 2


def test_point8_a_batch_resent_byte_for_byte_after_a_planogram_change_is_a_duplicate(api, app, fleet, session):
    """DESIGN: a txn_id seen before with the same content, judged on what the counter sent before
    any slot is resolved through today's planogram, is a duplicate."""
    batch = [sale("p-1"), sale("p-2", [{"slot": "A2", "qty": 2, "unit_price_fen": 1280}])]
    assert api("K001", batch)[1]["accepted"] == ["p-1", "p-2"]
    with app.app_context(), session_scope(app) as s:  # A1 now holds the noodles, at another price
        registry.set_slot(s, "K001", "A1", product_id=fleet["products"][NOODLE], par=10, price_fen=1300,
                          actor_id=None)
    status, body = api("K001", batch)
    assert status == 200 and body == {"accepted": [], "duplicates": ["p-1", "p-2"], "rejected": []}
    with app.app_context(), session_scope(app) as s:  # and after the slot is gone altogether
        registry.remove_slot(s, "K001", "A2", actor_id=None)
    status, body = api("K001", batch)
    assert status == 200 and body == {"accepted": [], "duplicates": ["p-1", "p-2"], "rejected": []}
    # the same txn_id with other content is still a conflict, even when its slot is gone
    status, body = api("K001", [sale("p-2", [{"slot": "A2", "qty": 3, "unit_price_fen": 1280}])])
    assert body["accepted"] == [] and "内容不同" in body["rejected"][0]["error"]
    assert count(session, Sale) == 2


def test_a_partial_batch(api, session):
    status, body = api("K001", [sale("ok-1"), sale("bad-sum", amount=1), sale("bad-slot", [
        {"slot": "Q7", "qty": 1, "unit_price_fen": 100}]), sale("ok-2"), sale("cash", method="cash")])
    assert status == 200
    assert body["accepted"] == ["ok-1", "ok-2"] and body["duplicates"] == []
    assert [r["txn_id"] for r in body["rejected"]] == ["bad-sum", "bad-slot", "cash"]
    assert body["rejected"][0]["error"] == "商品金额合计与支付金额不符"
    assert count(session, Sale) == 2
    assert count(session, Payment) == 2


def test_lines_that_do_not_add_up_to_the_payment_are_rejected(api, session):
    lines = [{"slot": "A1", "qty": 1, "unit_price_fen": 3800}, {"slot": "A2", "qty": 2, "unit_price_fen": 1280}]
    status, body = api("K001", [sale("short", lines, amount=6359), sale("over", lines, amount=6361)])
    assert status == 200 and body["accepted"] == []
    assert {r["error"] for r in body["rejected"]} == {"商品金额合计与支付金额不符"}
    assert count(session, Sale) == 0


def test_a_sale_two_days_late_counts_on_its_own_local_day(api, session):
    two_days_ago = (utcnow() - dt.timedelta(days=2)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    local = two_days_ago.replace(hour=0, minute=30, second=0, microsecond=0)  # just after local midnight
    status, body = api("K001", [sale("late", sold_at=local.isoformat()), sale("now")])
    assert body["accepted"] == ["late", "now"]
    session.rollback()
    days = dict(session.execute(select(Sale.txn_id, Sale.local_date)).all())
    session.rollback()
    assert days["late"] == local.date()  # its own day, though it is 16:30 UTC of the day before
    assert days["now"] == dt.date(2026, 11, 26)


def test_not_in_planogram_and_price_mismatch_raise_one_alert_each(api, fleet, session):
    sachet = [{"sku": SACHET, "qty": 1, "unit_price_fen": 5800}]
    cheap = [{"slot": "A1", "qty": 1, "unit_price_fen": 3300}]
    for batch in (["s-1", "c-1"], ["s-2", "c-2"]):
        status, body = api("K001", [sale(batch[0], sachet), sale(batch[1], cheap)])
        assert body["accepted"] == batch
    session.rollback()
    alerts = session.execute(select(Alert.kind, Alert.product_id, Alert.location_id)
                             .where(Alert.resolved_at.is_(None), Alert.kind.in_(
                                 [AlertKind.NOT_IN_PLANOGRAM, AlertKind.PRICE_MISMATCH]))).all()
    totals = dict(session.execute(select(Sale.txn_id, Sale.total_fen)).all())
    session.rollback()
    k1 = fleet["locations"]["K001"]
    assert sorted(alerts) == sorted([(AlertKind.NOT_IN_PLANOGRAM, fleet["products"][SACHET], k1),
                                     (AlertKind.PRICE_MISMATCH, fleet["products"][TEA], k1)])
    assert totals == {"s-1": 5800, "s-2": 5800, "c-1": 3300, "c-2": 3300}  # the charged price


def test_501_sales_get_422_and_nothing_is_recorded(api, session):
    status, body = api("K001", [sale(f"t-{i}") for i in range(501)])
    assert status == 422 and "500" in body["error"] and body["field"] == "sales"
    assert count(session, Sale) == 0
    status, body = api("K001", [sale(f"t-{i}") for i in range(500)])
    assert status == 200 and len(body["accepted"]) == 500


def test_a_body_over_5_mb_gets_413(server, fleet, session):
    filler = {"sales": [sale("t-1")], "pad": "x" * (5 * 1024 * 1024)}
    status, body, _ = call(server, "POST", SALES.format(code="K001"), body=filler, token=fleet["tokens"]["K001"])
    assert status == 413
    # the same without a Content-Length (chunked transfer encoding)
    parts = urlsplit(server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    chunks = (json.dumps(filler)[i:i + 65536].encode() for i in range(0, 5 * 1024 * 1024 + 2000, 65536))
    conn.request("POST", SALES.format(code="K001"), body=chunks, encode_chunked=True,
                 headers={"Authorization": f"Bearer {fleet['tokens']['K001']}", "Content-Type": "application/json",
                          "Transfer-Encoding": "chunked"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    assert response.status == 413 and CJK.search(answer["error"])
    assert count(session, Sale) == 0


GOOD = sale("t-good")
# The envelope itself is malformed: the batch is refused whole, nothing recorded.
MALFORMED = [
    ("not json", b"{sales: [", 400),
    ("empty body", b"", 400),
    ("bad utf-8", b'{"sales": "\xff\xfe"}', 400),
    ("an array", b"[]", 400),
    ("no sales", {}, 422),
    ("sales not a list", {"sales": {"txn_id": "x"}}, 422),
    ("an unknown field beside sales", {"sales": [], "batch": 1}, 422),
    ("nested absurdly", b'{"sales": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
]

# One sale of the batch is malformed: that sale is rejected by its txn_id, the others recorded.
BAD = "t-bad"
MALFORMED_SALES = [
    ("a sale not an object", "t-1"),
    ("qty as text", {**GOOD, "lines": [{"slot": "A1", "qty": "1", "unit_price_fen": 3800}]}),
    ("qty as fraction", {**GOOD, "lines": [{"slot": "A1", "qty": 1.5, "unit_price_fen": 3800}]}),  # ok-float: refused
    ("qty as bool", {**GOOD, "lines": [{"slot": "A1", "qty": True, "unit_price_fen": 3800}]}),
    ("qty zero", {**GOOD, "lines": [{"slot": "A1", "qty": 0, "unit_price_fen": 3800}]}),
    ("negative price", {**GOOD, "lines": [{"slot": "A1", "qty": 1, "unit_price_fen": -1}]}),
    ("huge price", {**GOOD, "lines": [{"slot": "A1", "qty": 1, "unit_price_fen": 10**12}]}),
    ("no lines", {**GOOD, "lines": []}),
    ("unknown field", {**GOOD, "discount_fen": 100}),
    ("no payment", {k: v for k, v in GOOD.items() if k != "payment"}),
    ("amount as text", {**GOOD, "payment": {"method": "wechat", "amount_fen": "3800"}}),
    ("txn_id too long", {**GOOD, "txn_id": "x" * 65}),
    ("txn_id with spaces", {**GOOD, "txn_id": "a b"}),
    ("txn_id a number", {**GOOD, "txn_id": 12345}),
    ("sold_at a number", {**GOOD, "sold_at": 1764123300}),
    ("slot too long", {**GOOD, "lines": [{"slot": "A" * 9, "qty": 1, "unit_price_fen": 3800}]}),
]


@pytest.mark.parametrize("name,body,status", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_record_nothing(server, fleet, session, name, body, status):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, answer, _ = call(server, "POST", SALES.format(code="K001"), raw=raw, token=fleet["tokens"]["K001"])
    assert got == status, answer
    assert count(session, Sale) == 0


@pytest.mark.parametrize("name,bad", MALFORMED_SALES, ids=[m[0] for m in MALFORMED_SALES])
def test_point8_one_malformed_sale_is_rejected_by_its_txn_id_not_the_batch(api, session, name, bad):
    if isinstance(bad, dict) and bad.get("txn_id") == GOOD["txn_id"]:
        bad = {**bad, "txn_id": BAD}
    status, body = api("K001", [sale("t-before"), bad, sale("t-after")])
    assert status == 200, body
    assert body["accepted"] == ["t-before", "t-after"] and body["duplicates"] == []
    assert len(body["rejected"]) == 1 and CJK.search(body["rejected"][0]["error"])
    given = bad.get("txn_id") if isinstance(bad, dict) else None
    if isinstance(given, str) and given == BAD:
        assert body["rejected"][0]["txn_id"] == BAD  # named by its own txn_id
    assert count(session, Sale) == 2


def test_a_sale_rejected_by_the_domain_is_reported_not_a_500(api, session):
    status, body = api("K001", [sale("no-slot-no-sku", [{"qty": 1, "unit_price_fen": 3800}]),
                                sale("no-offset", sold_at="2026-11-26T10:15:00"),
                                sale("paid-by-card", method="unionpay")])
    assert status == 200 and body["accepted"] == []
    assert [r["txn_id"] for r in body["rejected"]] == ["no-slot-no-sku", "no-offset", "paid-by-card"]
    assert all(CJK.search(r["error"]) for r in body["rejected"])


# --- heartbeat ------------------------------------------------------------------------------------

def test_heartbeat(server, fleet, session):
    url, token = HEARTBEAT.format(code="K001"), fleet["tokens"]["K001"]
    at = utcnow().replace(microsecond=0)
    status, body, _ = call(server, "POST", url, token=token,
                           body={"at": at.isoformat(), "door_open": True, "temperature_c": 6.5, "error": "E3 门锁故障"})
    assert status == 204 and body is None
    call(server, "POST", url, token=token, body={"at": at.isoformat(), "door_open": True, "temperature_c": 7,
                                                       "error": "E3 门锁故障"})
    session.rollback()
    kiosk = session.scalars(select(Kiosk).where(Kiosk.code == "K001")).one()
    assert (kiosk.last_heartbeat_at, kiosk.door_open, kiosk.temperature_c, kiosk.last_error) == (
        at, True, 7.0, "E3 门锁故障")
    alerts = session.scalars(select(Alert.message).where(Alert.kind == AlertKind.KIOSK_ERROR,
                                                         Alert.resolved_at.is_(None))).all()
    session.rollback()
    assert len(alerts) == 1 and "E3 门锁故障" in alerts[0]
    for bad in ({"door_open": "yes"}, {"temperature_c": "6"}, {"at": "noon"}, {"at": "2026-11-26T10:00:00"},
                {"temperature_c": 500}, {"mood": "fine"}):
        assert call(server, "POST", url, token=token, body=bad)[0] == 422, bad


# --- documentation and the command line -----------------------------------------------------------

def test_the_openapi_document_describes_the_counter_api(client, auth, make_user):
    make_user("mgr", "manager")
    auth.login("mgr")
    document = client.get("/api/v1/openapi.json").get_json()
    for path, method in (("/api/v1/kiosks/{code}/planogram", "get"), ("/api/v1/kiosks/{code}/sales", "post"),
                         ("/api/v1/kiosks/{code}/heartbeat", "post")):
        op = document["paths"][path][method]
        assert op["security"] == [{"bearer": []}]
        assert {"401", "403"} <= set(op["responses"])
    sales = document["paths"]["/api/v1/kiosks/{code}/sales"]["post"]
    assert {"200", "413", "422"} <= set(sales["responses"])
    assert "204" in document["paths"]["/api/v1/kiosks/{code}/heartbeat"]["post"]["responses"]


def test_cli_kiosk_token_prints_only_the_token(app, fleet, database_url, session, tmp_path, monkeypatch):
    from pos.cli import main

    monkeypatch.setenv("SONGTAO_INSTANCE", str(tmp_path / "instance"))
    runner = CliRunner()
    result = runner.invoke(main, ["kiosk-token", "K001"], env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    session.rollback()
    assert kiosk_for_token(session, token).code == "K001"
    assert kiosk_for_token(session, fleet["tokens"]["K001"]) is None
    session.rollback()
    for code in ("K999", "nonsense", "K003"):
        result = runner.invoke(main, ["kiosk-token", code], env={"DATABASE_URL": database_url})
        assert result.exit_code == 1 and result.stdout == ""
        assert CJK.search(result.stderr)
