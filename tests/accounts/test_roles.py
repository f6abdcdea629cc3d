"""Who may open which page: an explicit table, written down here independently of pos.accounts.roles."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from pos.models import Role
from pos.accounts.roles import AREAS, LANDING

ROLES = ("admin", "manager", "cashier", "restocker", "auditor")
PAGES = ("/dashboard", "/till", "/counters", "/reports", "/admin/users", "/account", "/group")

# The rule, as the hall states it: 200 = may use the page, 403 = refused.
EXPECTED = {
    #             /dashboard /till /counters /reports /admin/users /account /group
    "admin":     (200,       200,  200,      200,     200,         200,     200),
    "manager":   (200,       200,  200,      200,     403,         200,     200),
    "cashier":   (403,       200,  403,      403,     403,         200,     403),
    "restocker": (403,       403,  200,      403,     403,         200,     403),
    "auditor":   (403,       403,  403,      200,     403,         200,     403),
}

# The area each page belongs to (only used to check that pos.accounts.roles agrees with the table).
PAGE_AREA = {
    "/dashboard": "dashboard",
    "/till": "till",
    "/counters": "counters",
    "/reports": "reports",
    "/admin/users": "users",
    "/account": "account",
    "/group": "dashboard",   # group purchases (团购): the manager's, like the finance queue
}

CASES = [(role, page, EXPECTED[role][i]) for role in ROLES for i, page in enumerate(PAGES)]

LANDINGS = {
    "cashier": "/till",
    "restocker": "/counters",
    "manager": "/dashboard",
    "auditor": "/reports",
    "admin": "/dashboard",
}

# Endpoints anybody may reach without logging in. Every other view must be wrapped by `requires`.
PUBLIC_ENDPOINTS = {
    "auth.login", "static", "shell.index",
    # The receipt's QR code opens these on a customer's phone: no login, but the URL must carry
    # the receipt's HMAC token (pos.sales.links), else 404.
    "public.receipt", "public.request_invoice",
    # The till's service worker script: the browser re-checks it in the background, when the
    # cashier's session may have ended, and a worker script may not be redirected to the login. It
    # holds the version and the asset list, no data.
    "till.service_worker",
}


def test_table_covers_every_role():
    assert set(EXPECTED) == {r.value for r in Role}
    assert all(len(row) == len(PAGES) for row in EXPECTED.values())


@pytest.mark.parametrize("role,page,status", CASES, ids=[f"{r}-{p}" for r, p, _ in CASES])
def test_role_page_access(client, auth, make_user, role, page, status):
    make_user(f"{role}1", role)
    assert auth.login(f"{role}1").status_code == 302
    response = client.get(page)
    assert response.status_code == status
    body = response.get_data(as_text=True)
    if status == 403:
        assert "无权访问" in body
        assert 'lang="zh-CN"' in body


@pytest.mark.parametrize("role,page,status", CASES, ids=[f"{r}-{p}" for r, p, _ in CASES])
def test_pos_roles_agrees_with_the_table(role, page, status):
    assert (Role(role) in AREAS[PAGE_AREA[page]]) == (status == 200)


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_is_sent_to_login_with_next(client, page):
    response = client.get(page)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [page]


def test_anonymous_next_keeps_the_query_string(client):
    response = client.get("/reports?month=2026-11")
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/reports?month=2026-11"]


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_json_request_gets_401_json(client, page):
    response = client.get(page, headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.is_json
    assert response.get_json()["error"] == "请先登录"


def test_wrong_role_json_request_gets_403_json(client, auth, make_user):
    make_user("cash", "cashier")
    auth.login("cash")
    response = client.get("/admin/users", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.is_json
    assert set(response.get_json()) == {"error"}
    assert "无权" in response.get_json()["error"]


def test_browser_accept_header_gets_html_not_json(client, auth, make_user):
    make_user("cash", "cashier")
    auth.login("cash")
    response = client.get("/admin/users", headers={
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    })
    assert response.status_code == 403
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("role", ROLES)
def test_landing_after_login(client, auth, make_user, role):
    make_user(f"{role}1", role)
    response = auth.login(f"{role}1")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == LANDINGS[role]
    # the landing page is one the role may use
    assert client.get(LANDINGS[role]).status_code == 200
    # and the root sends a logged-in user there too
    assert urlsplit(client.get("/").headers["Location"]).path == LANDINGS[role]


def test_landing_table_agrees_with_pos_roles(app):
    with app.test_request_context():
        from flask import url_for

        assert {r.value: url_for(LANDING[r]) for r in Role} == LANDINGS


def machine_views(app) -> dict:
    """Views called by machines (the counters) with a bearer token instead of a login: marked
    ``machine_api`` by kiosks.api.machine_api, which checks the token. The only exemption from
    ``requires`` besides PUBLIC_ENDPOINTS; each of them must refuse a request without a valid token
    (test_every_machine_view_refuses_a_request_without_a_valid_token)."""
    return {rule.rule: (rule, sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
            for rule in app.url_map.iter_rules()
            if getattr(app.view_functions[rule.endpoint], "machine_api", False)}


def test_every_view_is_protected_by_requires(app):
    unprotected = []
    machine = {rule.endpoint for rule, _methods in machine_views(app).values()}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint in machine:
            continue
        view = app.view_functions[rule.endpoint]
        area = getattr(view, "required_area", None)
        if area is None:
            unprotected.append(f"{rule.endpoint} ({rule.rule})")
        else:
            assert area in AREAS, f"{rule.endpoint} requires unknown area {area!r}"
    assert not unprotected, "views without @requires: " + ", ".join(unprotected)


def test_machine_views_are_exactly_the_counter_api(app):
    rules = machine_views(app)
    assert rules, "the counter API registers machine views"
    assert all(path.startswith("/api/v1/kiosks/<code>/") for path in rules), sorted(rules)
    for rule, _methods in rules.values():
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "required_area", None) is None, f"{rule.endpoint}: machine view behind requires"


def test_every_machine_view_refuses_a_request_without_a_valid_token(client, auth, make_user):
    # even a logged-in admin's session cookie is no counter token
    make_user("root", "admin")
    auth.login("root")
    app = client.application
    for path, (rule, methods) in machine_views(app).items():
        url = path.replace("<code>", "K001")
        for method in methods:
            for headers in ({}, {"Authorization": "Bearer not-a-token-of-any-counter-0000000000"},
                            {"Authorization": "Basic cm9vdDpwdw=="}):
                response = client.open(url, method=method, json={} if method != "GET" else None, headers=headers)
                assert response.status_code == 401, (method, url, headers, response.status_code)
                assert response.is_json and response.get_json()["error"]


def test_public_endpoints_exist(app):
    # a renamed public endpoint should not silently shrink the allow-list's meaning
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert PUBLIC_ENDPOINTS <= endpoints


def test_requires_refuses_an_unknown_area():
    from pos.core.web import requires

    with pytest.raises(KeyError):
        requires("no-such-area")
