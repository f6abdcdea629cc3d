"""Work that keeps the site's state true without anyone opening a page: run once by
``songtao tick`` (cron, the Windows Task Scheduler) and every few minutes by a background thread
in the server (``start``).

``exclusive`` makes such work safe to run concurrently with itself — two ticks started in the
same minute, a tick and the server's thread, several gunicorn workers — by letting one run at a
time: on PostgreSQL a transaction-scoped advisory lock (the second waits, then sees the first's
committed work); on SQLite the transaction begins IMMEDIATE (``pos.core.db``), which holds the
database's one write lock from the first statement, across processes.
"""
from __future__ import annotations

import logging
import threading
import zlib
from typing import Callable, Optional, TypeVar

from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_INTERVAL_SECONDS = 300


def lock_key(name: str) -> int:
    """A stable 32-bit key for PostgreSQL's advisory locks (the same in every process)."""
    return zlib.crc32(f"songtao:{name}".encode("utf-8"))


def exclusive(session: Session, name: str) -> None:
    """Within ``session``'s current transaction, wait until no other transaction holds the lock
    ``name``; held until this transaction ends. On SQLite the IMMEDIATE transaction already holds
    the write lock: nothing more to do."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})


class Ticker:
    """A daemon thread that runs ``job(app)`` every ``interval`` seconds (the first run after one
    interval), logging and surviving any error. ``stop()`` ends it."""

    def __init__(self, app: Flask, job: Callable[[Flask], object], interval: float) -> None:  # ok-float: seconds
        self.app, self.job, self.interval = app, job, interval
        self._stop = threading.Event()
        self.runs = 0
        self.thread = threading.Thread(target=self._loop, name="songtao-ticker", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.app.app_context():
                    self.job(self.app)
                self.runs += 1
            except Exception:  # the next round tries again; the server keeps serving
                log.exception("background refresh failed")

    def start(self) -> "Ticker":
        self.thread.start()
        return self

    def stop(self, timeout: Optional[float] = 5) -> None:  # ok-float: seconds
        self._stop.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)


def start(app: Flask, job: Callable[[Flask], object]) -> Optional[Ticker]:
    """Start the background refresh now, when the configuration asks for it (``TICK_SECONDS`` >
    0, default 300). Kept in ``app.extensions["songtao.ticker"]``; started once per app."""
    seconds = app.config.get("TICK_SECONDS", DEFAULT_INTERVAL_SECONDS)
    if not seconds or seconds <= 0:
        return None
    with _starting:
        ticker = app.extensions.get("songtao.ticker")
        if ticker is None:
            ticker = app.extensions["songtao.ticker"] = Ticker(app, job, float(seconds)).start()  # ok-float: seconds
    return ticker


_starting = threading.Lock()


def start_when_serving(app: Flask, job: Callable[[Flask], object]) -> None:
    """Start the background refresh with the first request the app serves: a server process
    (waitress, each gunicorn worker) runs it, a command that only builds the app does not."""
    @app.before_request
    def _start_ticker():
        if "songtao.ticker" not in app.extensions:
            start(app, job)


__all__ = ["exclusive", "lock_key", "Ticker", "start", "start_when_serving", "DEFAULT_INTERVAL_SECONDS"]
