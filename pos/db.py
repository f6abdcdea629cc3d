"""Engines and sessions: one SQLAlchemy session per request, committed or rolled back at its end.

SQLite runs in WAL mode with foreign keys on, and every transaction begins IMMEDIATE: SQLite
upgrades a read lock to a write lock only if nobody else wrote meanwhile, so two tills that read
then write would otherwise fail with "database is locked" instead of waiting their turn. Reports,
which only read, are the exception (``inventory.web.read_only``, ``session_scope(read_only=True)``):
they begin DEFERRED, so that a long report never keeps the tills waiting.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

import inventory.documents  # noqa: F401  (register every table on Base.metadata)
import inventory.models  # noqa: F401
import inventory.stock  # noqa: F401  (registers the hook that keeps posted documents immutable)
import kiosks.models  # noqa: F401
import pos.group_models  # noqa: F401
import pos.models  # noqa: F401
from inventory.base import Base
from inventory.web import READ_ONLY, get_session  # noqa: F401  (one request session for every package)

metadata = Base.metadata


def normalise_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and use psycopg 3 for all of them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_on_connect(dbapi_connection, _record):
            # Let SQLAlchemy's "begin" event below issue BEGIN itself.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A session that only reads (a report: inventory.web.read_only) begins DEFERRED: in WAL
            # mode it then never holds the write lock, so a long report does not keep tills waiting.
            read_only = conn.get_execution_options().get(READ_ONLY)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["songtao.engine"] = engine
    app.extensions["songtao.sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)

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
