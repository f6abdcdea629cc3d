"""Fixtures shared by the suite.

The database under test is chosen by one variable, ``TEST_DATABASE_URL`` (as CTFd does): unset
means SQLite. Every test gets a fresh, migrated database: a copy of a migrated SQLite file, or on
PostgreSQL the migrated schema with every table truncated. Under pytest-xdist each worker has its
own PostgreSQL database.

Tests that need PostgreSQL or Chromium skip with a reason when those are absent on a developer's
machine; with ``CI=true`` such a skip is a failure (see ``need``).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

# Before pos is imported: the test users' passwords are hashed cheaply (pos.accounts.users says why);
# subprocesses started by tests (the CLI, the demo, bench servers) inherit it.
os.environ["SONGTAO_TEST_CHEAP_HASHING"] = "1"

import pos.schema  # noqa: F401  (every table, for the fixtures that use an engine without the app)
from pos import create_app
from pos.core.db import bind_database, normalise_url
from pos.migrate import upgrade

# The helpers in tests/fixtures/ assert as the tests do (assert_error, assert_refused, ...): their
# asserts are rewritten too, so that a failure shows its values as it did when they lived in the
# test modules.
pytest.register_assert_rewrite("tests.fixtures")

# The fake payment gateway, a separate process shared by the session (issue 15): any test may ask
# for ``fake_gateway`` (tests/fixtures/payments.py).
from tests.fixtures.payments import fake_gateway  # noqa: E402,F401

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DEFAULT_PG_URL = "postgresql+psycopg:///songtao_test?host=/var/run/postgresql"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--lang=zh-CN",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"]
TEST_PASSWORD = "correct-horse-9"


def need(available: bool, reason: str) -> None:
    """Skip when a real part is missing on a developer's machine; fail on CI."""
    if available:
        return
    if ON_CI:
        pytest.fail(f"CI requires it: {reason}")
    pytest.skip(reason)


def _worker_suffix() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"_{worker}" if worker else ""


def _with_database(url: str, name: str) -> str:
    # postgresql+psycopg:///songtao_test?host=… → …/songtao_test_gw0?host=…
    return re.sub(r"/([^/?]*)(\?|$)", lambda m: f"/{name}{m.group(2)}", url, count=1)


def _ensure_pg_database(url: str) -> str:
    """The worker's own database beside the given one, created when missing."""
    suffix = _worker_suffix()
    if not suffix:
        return url
    base_name = re.search(r"/([^/?]+)(\?|$)", url.split("://", 1)[1]).group(1)
    name = f"{base_name}{suffix}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return _with_database(url, name)


def pg_reachable(url: str) -> bool:
    try:
        engine = create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def reset_pg_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


TEST_DATABASE_URL = normalise_url(os.environ.get("TEST_DATABASE_URL", "")) or None
USING_PG = bool(TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgresql"))


@pytest.fixture(scope="session")
def db_template(tmp_path_factory):
    """A migrated database to copy (SQLite) or to truncate (PostgreSQL)."""
    if USING_PG:
        need(pg_reachable(TEST_DATABASE_URL), f"PostgreSQL not reachable at {TEST_DATABASE_URL}")
        url = _ensure_pg_database(TEST_DATABASE_URL)
        reset_pg_schema(url)
        upgrade(url)
        return {"kind": "pg", "url": url}
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return {"kind": "sqlite", "path": path}


def _fresh_database(template, tmp_path) -> str:
    if template["kind"] == "sqlite":
        target = tmp_path / "test.sqlite3"
        shutil.copyfile(template["path"], target)
        return f"sqlite:///{target}"
    url = template["url"]
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ))]
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def database_url(db_template, tmp_path) -> str:
    return _fresh_database(db_template, tmp_path)


TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-not-for-production",
    "LOGIN_DELAY_UNIT_SECONDS": 0,
    "LOGIN_DELAY_MAX_SECONDS": 0,
    # Fake printers listen on free (ephemeral) ports; file printers write under tmp_path/spool.
    "PRINTER_ALLOWED_PORTS": "9100-9109,1024-65535",
    "PRINTER_STATUS_TIMEOUT": 0.2,
}


@pytest.fixture(scope="session")
def _worker_app(tmp_path_factory):
    """One app per worker, re-pointed at each test's fresh database by ``app``: building an app
    (its URL map and its compiled templates) for every test was a fifth of the suite's time."""
    unused = tmp_path_factory.mktemp("app") / "unused.sqlite3"
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{unused}"})
    app.extensions["songtao.engine"].dispose()
    return app


@pytest.fixture
def app(_worker_app, database_url, tmp_path):
    """The app on this test's fresh database. What a test changes in its configuration is put back
    afterwards; a test that adds routes uses ``fresh_app``."""
    app = _worker_app
    config = dict(app.config)
    app.config["PRINTER_SPOOL_DIR"] = str(tmp_path / "spool")
    bind_database(app, database_url)
    yield app
    app.extensions["songtao.engine"].dispose()
    app.config.clear()
    app.config.update(config)


@pytest.fixture
def fresh_app(database_url, tmp_path):
    """An app of its own, for a test that adds routes to it."""
    app = create_app({**TEST_CONFIG, "DATABASE_URL": database_url, "PRINTER_SPOOL_DIR": str(tmp_path / "spool")})
    yield app
    app.extensions["songtao.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    """A session on the test database, outside any request.

    On SQLite every transaction begins IMMEDIATE (it takes the write lock), so end this session's
    transaction (commit or rollback) before making requests that write, or they wait for it.
    """
    s = app.extensions["songtao.sessionmaker"]()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def make_user(app):
    from pos.accounts import users as accounts
    from pos.core.db import session_scope

    def make(username: str, role: str, *, password: str = TEST_PASSWORD, pin: str | None = None, **kw):
        with session_scope(app) as s:
            user = accounts.create_user(s, username=username, role=role, password=password, pin=pin, **kw)
            return user.id

    return make


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path)
    match = CSRF_META.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


class AuthActions:
    def __init__(self, client):
        self.client = client

    def login(self, username: str, password: str = TEST_PASSWORD, *, follow: bool = False):
        token = csrf_token(self.client, "/login")
        return self.client.post("/login", data={
            "pw-username": username, "pw-password": password, "pw-csrf_token": token,
        }, follow_redirects=follow)

    def login_pin(self, username: str, pin: str):
        token = csrf_token(self.client, "/login?mode=pin")
        return self.client.post("/login?mode=pin", data={
            "pin-username": username, "pin-pin": pin, "pin-csrf_token": token,
        })

    def logout(self):
        token = csrf_token(self.client, "/account")
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


# --- real servers and a real browser -------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app):
    """The app served by waitress on a free loopback port, in a thread."""
    from waitress.server import create_server

    from waitress import wasyncore

    port = free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=4, ident="songtao-test")
    stop = threading.Event()

    def serve():
        # waitress's own loop, stopped and closed from its own thread: closing its sockets from the
        # test's thread races with the select() on them (EBADF in the server thread).
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        for channel in list(server._map.values()):  # the browser's keep-alive connections too
            channel.close()
        server.task_dispatcher.shutdown()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    stop.set()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def chromium():
    need(Path(CHROMIUM).exists(), f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        need(False, "playwright is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"


@pytest.fixture
def page(chromium):
    """A till-sized (1366×768) page whose browser prefers Simplified Chinese."""
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def tablet_page(chromium):
    """A 10-inch tablet (1280×800, touch)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN",
                                   has_touch=True, is_mobile=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
