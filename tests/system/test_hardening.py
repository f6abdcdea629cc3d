"""Issue 18's security points on secrets and storage, each as an attacker or a broken disk would
find it: manager PINs throttled at the till (1), the login throttle keyed on the account (2),
logins that hash outside any transaction and never starve the tills (3, C), a session cookie that
dies with logout (4), and a database that cannot write answering 503 with what is wrong (10)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, select

from inventory.audit import AuditEvent
from pos.core.db import session_scope
from pos.models import LoginAttempt, Sale
from tests.conftest import USING_PG, AuthActions, csrf_token
from tests.fixtures.till import MANAGER_PIN, hall, login, sale_body, till  # noqa: F401  (fixtures)


def client_from(app, ip: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def audit_count(app, action: str) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


# --- 1. manager approval PINs ---------------------------------------------------------------------

def _sold(till, hall) -> str:
    response = till.post("/api/v1/sales", sale_body(hall))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["receipt_no"]


def test_point1_wrong_approval_pins_lock_the_till_and_are_audited(app, till, hall):
    receipt = _sold(till, hall)
    lock_after = app.config["APPROVAL_LOCK_AFTER"]
    for n in range(lock_after):
        wrong = f"{9000 + n}"
        response = till.post(f"/api/v1/sales/{receipt}/void", {"reason": "扫错了", "approval_pin": wrong})
        assert response.status_code == 403 and response.get_json()["field"] == "approval_pin"
    # locked: even the right PIN is refused now, before any PIN is checked
    response = till.post(f"/api/v1/sales/{receipt}/void", {"reason": "扫错了", "approval_pin": MANAGER_PIN})
    assert response.status_code == 429 and "店长密码错误次数过多" in response.get_json()["error"]
    # the check endpoint the approval dialog uses is locked the same way
    response = till.post("/api/v1/approvals", {"till": hall.till, "approval_pin": MANAGER_PIN, "purpose": "void"})
    assert response.status_code == 429
    assert audit_count(app, "approval.pin_refused") == lock_after
    with session_scope(app) as s:
        assert s.scalar(select(Sale.status).where(Sale.receipt_no == receipt)).value == "completed"


def test_point1_the_lock_follows_the_cashier_to_another_till(app, till, hall, client, make_user):
    lock_after = app.config["APPROVAL_LOCK_AFTER"]
    for n in range(lock_after):
        response = till.post("/api/v1/approvals", {"till": hall.till, "approval_pin": f"{8000 + n}"})
        assert response.status_code == 403
    response = till.post("/api/v1/approvals", {"till": "H9", "approval_pin": MANAGER_PIN})
    assert response.status_code == 429  # locked by the cashier asking, whatever till is named


def test_point1_the_approval_dialog_checks_the_pin_with_the_server(app, till, hall):
    response = till.post("/api/v1/approvals", {"till": hall.till, "approval_pin": MANAGER_PIN, "purpose": "discount"})
    assert response.status_code == 200 and response.get_json()["approver"] == "boss"
    response = till.post("/api/v1/approvals", {"till": hall.till, "approval_pin": "1111"})
    assert response.status_code == 403 and response.get_json()["error"] == "店长密码不正确"
    # (the till's dialog asks this before it says 店长已授权: tests/hall/test_browser_till.py)


# --- 2. the login throttle is keyed on the account -----------------------------------------------

@pytest.mark.parametrize("spelling", ["ann ", " ann", "ANN", "Ann\t"])
def test_point2_padded_or_case_varied_names_count_against_the_same_account(app, make_user, spelling):
    make_user("ann", "manager")
    attacker = AuthActions(client_from(app, "10.1.1.1"))
    lock_after = app.config["LOGIN_LOCK_AFTER"]
    for n in range(lock_after):
        name = spelling if n % 2 else "ann"
        assert attacker.login(name, "wrong-password-1").status_code == 401
    for name in ("ann", spelling, "ANN"):
        response = AuthActions(client_from(app, "10.1.1.2")).login(name)  # the right password
        assert response.status_code == 429, name
    with session_scope(app) as s:
        assert set(s.scalars(select(LoginAttempt.username))) == {"ann"}


# --- 3 and C. logins never hold the database while hashing; they never starve the tills ------------

def test_pointC_a_login_hashes_with_no_transaction_open(app, make_user):
    """The password is checked while no connection of the app's engine is in a transaction."""
    make_user("ann", "manager")
    from pos.accounts import users as accounts

    engine = app.extensions["songtao.engine"]
    open_transactions = []
    seen = []

    @event.listens_for(engine, "begin")
    def _begun(conn):
        open_transactions.append(conn)

    @event.listens_for(engine, "commit")
    def _committed(conn):
        open_transactions.remove(conn) if conn in open_transactions else None

    @event.listens_for(engine, "rollback")
    def _rolled_back(conn):
        open_transactions.remove(conn) if conn in open_transactions else None

    original = accounts.check_password_hash

    def watching(stored, secret):
        seen.append(len(open_transactions))
        return original(stored, secret)

    accounts.check_password_hash = watching
    try:
        client = AuthActions(client_from(app, "10.2.2.2"))
        assert client.login("ann", "wrong-password-1").status_code == 401
        assert client.login("ann").status_code == 302
    finally:
        accounts.check_password_hash = original
    assert seen == [0, 0]


def test_pointC_a_locked_account_is_refused_before_any_hashing(app, make_user):
    make_user("ann", "manager")
    from pos.accounts import users as accounts

    attacker = AuthActions(client_from(app, "10.3.3.3"))
    for _ in range(app.config["LOGIN_LOCK_AFTER"]):
        attacker.login("ann", "wrong-password-1")
    calls = []
    original = accounts.check_password_hash
    accounts.check_password_hash = lambda *a: calls.append(1) or original(*a)
    try:
        assert attacker.login("ann", "wrong-password-1").status_code == 429
    finally:
        accounts.check_password_hash = original
    assert calls == []


def test_pointC_sales_go_through_during_a_failed_login_flood(app, till, hall, make_user):
    """Four addresses hammer the login page with wrong passwords while the till sells: every sale
    is recorded (no 500, no 'database is locked'), whatever the attackers get."""
    make_user("admin", "admin")
    stop = threading.Event()
    attacker_status: list[int] = []

    def flood(ip: str) -> None:
        attacker = AuthActions(client_from(app, ip))
        while not stop.is_set():
            attacker_status.append(attacker.login("admin", "wrong-password-1").status_code)

    threads = [threading.Thread(target=flood, args=(f"10.9.0.{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        statuses = [till.post("/api/v1/sales", sale_body(hall)).status_code for _ in range(15)]
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert statuses == [201] * 15
    assert attacker_status and set(attacker_status) <= {401, 429, 503}
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Sale)) == 15


# --- 4. a session dies with logout ------------------------------------------------------------------

def test_point4_a_replayed_cookie_is_refused_after_logout(app, client, auth, hall):
    assert auth.login("cash").status_code == 302
    cookie = client.get_cookie("session")
    assert cookie is not None and client.get("/till").status_code == 200
    token = csrf_token(client, "/account")
    assert auth.logout().status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", cookie.value)
    assert replay.get("/till").status_code == 302  # to the login page
    response = replay.post("/api/v1/sales", json=sale_body(hall), headers={"X-CSRFToken": token})
    assert response.status_code in (400, 401)
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Sale)) == 0


def test_point4_secure_cookies_when_served_over_https(monkeypatch):
    from pos.core.config import from_environment
    monkeypatch.setenv("SONGTAO_HTTPS", "1")
    config = from_environment(load_secret=False)
    assert config["SESSION_COOKIE_SECURE"] is True and config["PREFERRED_URL_SCHEME"] == "https"
    monkeypatch.delenv("SONGTAO_HTTPS")
    assert from_environment(load_secret=False)["SESSION_COOKIE_SECURE"] is False


# --- 10. a database that cannot write -----------------------------------------------------------------

def _refuse_writes(app, how: str) -> None:
    """Make the real database refuse writes on every new connection of the app's engine."""
    engine = app.extensions["songtao.engine"]
    dialect = engine.dialect.name

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        if dialect == "sqlite" and how == "read_only":
            cursor.execute("PRAGMA query_only=ON")
        elif dialect == "sqlite":  # full: not one more page
            cursor.execute("PRAGMA page_count")
            cursor.execute(f"PRAGMA max_page_count={cursor.fetchone()[0]}")
        else:
            cursor.execute("SET default_transaction_read_only = on")
        cursor.close()
        if dialect != "sqlite":
            dbapi_connection.commit()

    engine.dispose()


# A full disk is made with SQLite's max_page_count; on PostgreSQL a read-only database (its 53100,
# disk_full, maps to the same answer by the same function, pos.db.storage_problem).
STORAGE_CASES = [("read_only", "数据库只读")] + ([] if USING_PG else [("disk_full", "磁盘已满")])


@pytest.mark.parametrize("how,message", STORAGE_CASES)
def test_point10_a_database_that_cannot_write_answers_503_saying_why(app, client, auth, hall, make_user, how, message):
    boss = AuthActions(app.test_client())
    assert boss.login("boss").status_code == 302
    till_api = login(client, auth, "cash")
    if how == "disk_full":  # no free page left in the file: the next sale needs a new one
        with app.extensions["songtao.engine"].connect() as conn:
            conn.connection.driver_connection.execute("VACUUM")
    _refuse_writes(app, how)
    response = till_api.post("/api/v1/sales", sale_body(hall, lines=[
        {"product_id": hall.tea, "qty_milli": 1000}] * 40, payments=[{"method": "cash", "amount_fen": 40 * 16800}]))
    assert response.status_code == 503, response.get_data(as_text=True)
    assert message in response.get_json()["error"] and response.headers["Retry-After"]
    if how == "read_only":  # (a full disk still has room in its pages for a login attempt's row)
        page = AuthActions(app.test_client()).login("cash", "wrong-password-1")
        assert page.status_code == 503 and message in page.get_data(as_text=True)
    dashboard = boss.client.get("/dashboard")
    assert dashboard.status_code == 200 and message in dashboard.get_data(as_text=True)


# --- C. on SQLite, reading never waits for a writer; a writer waits its bounded turn ---------------------

# SQLite's single write lock (on PostgreSQL readers never wait for writers, by design); the suite
# runs on SQLite too, in CI as everywhere.
sqlite_only = pytest.mark.skipif(USING_PG, reason="SQLite's single write lock; PostgreSQL readers never wait")


@pytest.fixture
def sqlite_locked(app):
    """Another process's writer holding SQLite's write lock (a raw connection in BEGIN IMMEDIATE)."""
    import sqlite3

    engine = app.extensions["songtao.engine"]
    app.config["SQLITE_BUSY_SECONDS"] = 1
    engine.dispose()
    from pos.core.db import make_engine
    from sqlalchemy.orm import sessionmaker
    app.extensions["songtao.engine"] = make_engine(str(engine.url), sqlite_busy_seconds=1)
    app.extensions["songtao.sessionmaker"] = sessionmaker(bind=app.extensions["songtao.engine"],
                                                          expire_on_commit=False)
    other = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)

    def hold():
        other.execute("BEGIN IMMEDIATE")

    yield hold
    other.execute("ROLLBACK") if other.in_transaction else None
    other.close()


@sqlite_only
def test_pointC_reading_pages_do_not_wait_for_a_writer(app, client, auth, hall, sqlite_locked):
    assert auth.login("cash").status_code == 302
    sqlite_locked()
    for path in ("/till", "/api/v1/products/search?q=tea", "/api/v1/shifts/current?till=H1"):
        assert client.get(path).status_code == 200, path  # before: BEGIN IMMEDIATE, "database is locked"


@sqlite_only
def test_pointC_a_writer_that_waited_its_bounded_time_gets_a_503_that_says_so(app, client, auth, hall, sqlite_locked):
    till_api = login(client, auth, "cash")
    sqlite_locked()
    response = till_api.post("/api/v1/sales", sale_body(hall))
    assert response.status_code == 503 and "数据库繁忙" in response.get_json()["error"]
    assert response.headers["Retry-After"]
