"""No control characters in text parameters (issue 18, point 10a): a NUL in a query string answered
500 on PostgreSQL (``/labels?q=a%00b``, ``/counters/plan?town=a%00b``). Every query argument, form
field and path argument with a control character is refused before any view runs (pos.core.control_chars),
JSON text fields by the API's models; nothing is changed and nothing answers 5xx."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import url_for
from sqlalchemy import func, select
from werkzeug.routing.converters import NumberConverter

from pos.core.control_chars import first_refused, has_control
from pos.models import User

ROOT = Path(__file__).resolve().parents[2]
NUL = "a\x00b"


def query_argument_names() -> set[str]:
    """Every query argument a view reads (request.args.get("…") and the API's query models)."""
    names = set()
    for path in [*ROOT.joinpath("pos").rglob("*.py"), *ROOT.joinpath("inventory").rglob("*.py"),
                 *ROOT.joinpath("kiosks").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"""args\.(?:get|getlist)\(\s*["'](\w+)["']""", text))
        names.update(re.findall(r"""args\[["'](\w+)["']\]""", text))
    from pos.hall.api.products import LookupQuery, SearchQuery
    from pos.hall.api.shifts import TillQuery
    from pos.reports.api import MonthQuery, PeriodQuery

    for model in (LookupQuery, SearchQuery, TillQuery, MonthQuery, PeriodQuery):
        names.update(field.alias or name for name, field in model.model_fields.items())
    return names


def get_routes(app) -> list[tuple[str, str]]:
    """(endpoint, URL) of every GET route, path arguments filled with plain values."""
    out = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        values = {arg: 1 if isinstance(rule._converters[arg], NumberConverter) else "x1" for arg in rule.arguments}
        with app.test_request_context():
            out.append((rule.endpoint, url_for(rule.endpoint, **values)))
    return out


@pytest.fixture
def admin(client, auth, make_user):
    make_user("root", "admin")
    auth.login("root")
    return client


def test_the_rule():
    assert has_control(NUL) and has_control("a\x7f") and has_control("a\tb")
    assert not has_control("梵净山翠峰茶 250g ¥168")
    assert has_control("a\x1bb", multiline=True) and not has_control("第一行\r\n第二行\t", multiline=True)
    assert first_refused([("q", "茶"), ("town", NUL)]) == "town"
    assert first_refused([("a\x00", "x")]) == "a\x00"


def test_point10a_every_get_route_refuses_a_nul_in_its_query_arguments(app, admin):
    names = query_argument_names()
    assert {"q", "town", "till", "code", "month"} <= names
    routes = get_routes(app)
    assert len(routes) > 60
    failures = []
    for endpoint, url in routes:
        for query in ({name: NUL for name in names}, {"q": "ok", "town": "a\x01b"}):
            answer = admin.get(url, query_string=query)
            if answer.status_code >= 500 or answer.status_code not in (400, 422):
                failures.append(f"{endpoint} {url} {sorted(query)[:3]}…: {answer.status_code}")
    assert not failures, "\n".join(failures)


def test_point10a_the_reported_urls(admin):
    for url in ("/labels?q=a%00b", "/counters/plan?town=a%00b"):
        page = admin.get(url)
        assert page.status_code == 400, url
        assert "控制字符" in page.get_data(as_text=True)
    answer = admin.get("/api/v1/products/search?q=a%00b")
    assert answer.status_code == 422 and answer.get_json()["field"] == "q"
    assert "控制字符" in answer.get_json()["error"]


def test_point10a_a_control_character_in_a_path_argument_names_nothing(app, admin):
    failures = []
    for endpoint, url in get_routes(app):
        if "x1" not in url:
            continue
        answer = admin.get(url.replace("x1", "x%001", 1))
        if answer.status_code != 404:
            failures.append(f"{endpoint} {url}: {answer.status_code}")
    assert not failures, "\n".join(failures)


def test_point10a_a_form_field_with_a_nul_is_refused_and_changes_nothing(app, client, make_user, session):
    from tests.conftest import csrf_token

    make_user("cash", "cashier")
    token = csrf_token(client, "/login")
    page = client.post("/login", data={"pw-username": "cash\x00", "pw-password": "x", "pw-csrf_token": token})
    assert page.status_code == 400 and "控制字符" in page.get_data(as_text=True)
    # a textarea's line breaks and tabs are text: the login form answers as usual
    page = client.post("/login", data={"pw-username": "cash\r\n\t", "pw-password": "x", "pw-csrf_token": token})
    assert page.status_code == 401 and "控制字符" not in page.get_data(as_text=True)  # a wrong password
    assert session.scalar(select(func.count()).select_from(User)) == 1


def test_point10a_json_text_of_a_counter_is_refused(app):
    from tests.fixtures.counters import seed_counters

    token = seed_counters(app)["tokens"]["K001"]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    answer = client.post("/api/v1/kiosks/K001/heartbeat", json={"error": NUL}, headers=headers)
    assert answer.status_code == 422 and answer.get_json()["field"] == "error"  # 500 on PostgreSQL before
    answer = client.post("/api/v1/kiosks/K001/heartbeat", json={"at": "2026-11-26T10:15:00+08:00\x00"},
                         headers=headers)
    assert answer.status_code == 422 and answer.get_json()["field"] == "at"
