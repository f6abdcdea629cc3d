"""Engines and sessions: one SQLAlchemy session per request, committed or rolled back at its end.

SQLite runs in WAL mode with foreign keys on. A request that may write (POST …) begins its
transactions IMMEDIATE: SQLite upgrades a read lock to a write lock only if nobody else wrote
meanwhile, so two tills that read then write would otherwise fail with "database is locked"
instead of waiting their turn. Requests that only read (GET, HEAD) and reports begin DEFERRED and
never hold the write lock; the rare GET that writes and finds the database changed under it is run
again once, IMMEDIATE (``retry_views``). Writers of one process queue in arrival order
(``WriterQueue``) instead of SQLite's polling, which lets a newcomer overtake a till that has waited
seconds; a writer that has waited SQLITE_BUSY_SECONDS gets a 503 that says so (``storage_problem``).

On PostgreSQL a transaction that fails with a deadlock or serialization failure is rolled back and
run again (``run_in_transaction``, ``retry_views``), under the same idempotency key, so a retry can
never record a sale twice. A full disk or a read-only database answers 503 with what is wrong
(磁盘已满 / 数据库只读), logged once, and the dashboard shows it.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from contextlib import contextmanager
from functools import wraps
from typing import Any, Callable, Iterator, Optional, TypeVar

from flask import Flask, current_app, g, request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from inventory.base import Base
from inventory.localtime import utcnow
from inventory.web import READ_ONLY, get_session  # noqa: F401  (one request session for every package)

log = logging.getLogger(__name__)
T = TypeVar("T")

metadata = Base.metadata  # every table, once pos.schema has been imported


def normalise_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and use psycopg 3 for all of them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


DEFAULT_SQLITE_BUSY_SECONDS = 10
RETRY_ATTEMPTS = 5
# PostgreSQL's deadlock_detected and serialization_failure: the transaction did nothing and may
# simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


class DatabaseBusy(OperationalError):
    """A writer waited its bounded time for SQLite's write lock (answered 503)."""

    def __init__(self, seconds: float) -> None:  # ok-float: seconds
        super().__init__("BEGIN IMMEDIATE", None, Exception(f"waited {seconds:g} s for the write lock"))


class WriterQueue:
    """The writers of one process take SQLite's write lock in the order they asked for it.

    SQLite's own busy handler polls with growing sleeps, so a till that has waited seconds can be
    overtaken by every newcomer; here each writer draws a ticket and waits (at most ``timeout``
    seconds) for its turn. A writer that gives up leaves its ticket behind, and the queue steps
    over it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0
        self._abandoned: set[int] = set()

    def acquire(self, timeout: float) -> bool:  # ok-float: seconds
        deadline = time.monotonic() + timeout
        with self._cond:
            ticket = self._next
            self._next += 1
            while self._serving != ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._abandoned.add(ticket)
                    return False
                self._cond.wait(remaining)
            return True

    def release(self) -> None:
        with self._cond:
            self._serving += 1
            while self._serving in self._abandoned:
                self._abandoned.discard(self._serving)
                self._serving += 1
            self._cond.notify_all()


_HOLDS_QUEUE = "songtao.holds_writer_queue"


def make_engine(url: str, *, sqlite_busy_seconds: float = DEFAULT_SQLITE_BUSY_SECONDS, **kwargs) -> Engine:  # ok-float: seconds
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": sqlite_busy_seconds, "check_same_thread": False},
                               **kwargs)
        queue = WriterQueue()
        busy_ms = int(sqlite_busy_seconds * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_on_connect(dbapi_connection, _record):
            # Let SQLAlchemy's "begin" event below issue BEGIN itself.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A session that only reads (GET requests, reports) begins DEFERRED: in WAL mode it then
            # never holds the write lock, so reading never keeps tills waiting.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
                return
            if not queue.acquire(sqlite_busy_seconds):
                raise DatabaseBusy(sqlite_busy_seconds)
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                queue.release()
                raise
            conn.connection.info[_HOLDS_QUEUE] = True

        def _done(conn):
            if conn.connection.info.pop(_HOLDS_QUEUE, False):
                queue.release()

        event.listen(engine, "commit", _done)
        event.listen(engine, "rollback", _done)

        @event.listens_for(engine.pool, "reset")
        def _returned(_dbapi_connection, record, _reset_state):
            # A connection given back to the pool in a transaction is rolled back by the pool,
            # past the events above: its place in the queue is given up here.
            if record.info.pop(_HOLDS_QUEUE, False):
                queue.release()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def is_retryable(error: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction did nothing and may run again."""
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def _pause(attempt: int) -> None:
    # Outside any transaction: a short random wait, so that two retried transactions do not meet again.
    time.sleep(random.uniform(0.005, 0.02 * 2 ** attempt))


def run_in_transaction(session: Session, work: Callable[[], T], *, attempts: int = RETRY_ATTEMPTS) -> T:
    """``work()`` and a commit; a deadlock or serialization failure rolls back and runs it again
    (at most ``attempts`` times). ``work`` must be safe to run again after a rollback: recording
    under an idempotency key is."""
    for attempt in range(1, attempts + 1):
        try:
            out = work()
            session.commit()
            return out
        except BaseException as error:
            session.rollback()
            if attempt == attempts or not is_retryable(error):
                raise
            log.info("transaction retried after %s (attempt %d)", type(error.orig).__name__, attempt)
        _pause(attempt)
    raise AssertionError("unreachable")


# --- storage problems: a full disk, a read-only database, a writer that waited too long -----------

def storage_problem(error: BaseException) -> Optional[str]:
    """"busy", "disk_full" or "read_only" when the database refused for that reason; else None."""
    if isinstance(error, DatabaseBusy):
        return "busy"
    if not isinstance(error, DBAPIError):
        return None
    orig = error.orig
    state = getattr(orig, "sqlstate", None)
    if state == "53100":          # PostgreSQL disk_full
        return "disk_full"
    if state == "25006":          # PostgreSQL read_only_sql_transaction
        return "read_only"
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = str(orig).lower()
    if name.startswith("SQLITE_FULL") or "database or disk is full" in text:
        return "disk_full"
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return "read_only"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return "busy"
    return None


def note_storage_problem(app: Flask, kind: str) -> None:
    """Remember the problem for the dashboard; log it once, not on every refused request."""
    known = app.extensions.get("songtao.storage_problem")
    if kind == "busy":
        app.logger.warning("a writer waited too long for the database")
        return
    if known is None or known["kind"] != kind:
        app.logger.error("database refuses to write: %s", kind)
        app.extensions["songtao.storage_problem"] = {"kind": kind, "since": utcnow()}


def clear_storage_problem(app: Flask) -> None:
    if app.extensions.pop("songtao.storage_problem", None) is not None:
        app.logger.warning("database writes again")


def retry_views(app: Flask) -> None:
    """Wrap every view: a request that writes is committed here, and run again on a deadlock or
    serialization failure (PostgreSQL); a reading request whose transaction could not become a
    writer (SQLite found the database changed under it) is run once more, beginning IMMEDIATE."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint != "static":
            app.view_functions[endpoint] = _retrying(app, view)


def _retrying(app: Flask, view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                response = app.make_response(view(*args, **kwargs))
                session = g.get("db_session")
                if session is not None and response.status_code < 400:
                    session.commit()
                    if request.method not in ("GET", "HEAD"):
                        clear_storage_problem(app)
                return response
            except DBAPIError as error:
                session = g.get("db_session")
                if session is not None:
                    session.rollback()
                reading = request.method in ("GET", "HEAD")
                if attempt == RETRY_ATTEMPTS:
                    raise
                if is_retryable(error):
                    _pause(attempt)
                    continue
                if reading and attempt == 1 and storage_problem(error) == "busy" and not isinstance(error, DatabaseBusy):
                    # The DEFERRED read could not become a write: once more, in a new transaction,
                    # which begins IMMEDIATE (the read-only option held for the first one only).
                    continue
                raise
        raise AssertionError("unreachable")

    return wrapped


def bind_database(app: Flask, url: str) -> None:
    """Point the app at a database: its engine and its sessions. (The test suite re-points one app
    per worker at each test's fresh database instead of building an app per test.)"""
    app.config["DATABASE_URL"] = url
    engine = make_engine(url, sqlite_busy_seconds=app.config.get("SQLITE_BUSY_SECONDS", DEFAULT_SQLITE_BUSY_SECONDS))
    app.extensions["songtao.engine"] = engine
    app.extensions["songtao.sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions.pop("songtao.storage_problem", None)


def init_app(app: Flask) -> None:
    bind_database(app, app.config["DATABASE_URL"])

    @app.after_request
    def _commit(response):
        session = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(exc):
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def read_connection(session: Session):
    """The connection of the session's transaction, for Core reads on a hot path (a checkout): a
    Core statement run on it skips the ORM's per-statement work. What the caller left pending is
    flushed first, as autoflush would before an ORM query (and not within ``no_autoflush``)."""
    if session.autoflush:
        session.flush()  # returns at once when nothing is pending
    # Kept per transaction: ``Session.connection()`` costs more than a short read on SQLite, and a
    # checkout asks five times. The transaction's connection does not change while it is active.
    transaction = session.get_transaction()
    cached = session.info.get(_READ_CONNECTION)
    if cached is not None and transaction is not None and cached[0] is transaction and transaction.is_active:
        return cached[1]
    connection = session.connection()
    session.info[_READ_CONNECTION] = (session.get_transaction(), connection)
    return connection


_READ_CONNECTION = "pos.read_connection"


def writes_alone(session: Session) -> bool:
    """True when the session's transaction holds SQLite's write lock (``make_engine`` begins a
    writer IMMEDIATE): no other transaction can write before it ends, so a key it found unused is
    still unused when it inserts. PostgreSQL (and any other engine): False."""
    conn = read_connection(session)
    return conn.dialect.name == "sqlite" and bool(conn.connection.info.get(_HOLDS_QUEUE))


def get_engine(app: Flask | None = None) -> Engine:
    return (app or current_app).extensions["songtao.engine"]


@contextmanager
def session_scope(app: Flask | None = None, *, read_only: bool = False) -> Iterator[Session]:
    """A unit of work outside a request (CLI, simulator, tests): commit on success. ``read_only``
    (reports): on SQLite the transaction does not take the write lock."""
    session = (app or current_app).extensions["songtao.sessionmaker"]()
    if read_only:
        session.connection(execution_options={READ_ONLY: True})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
