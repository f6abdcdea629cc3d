"""Alerts that keep themselves true: one refresh of every kind of alert that has a cause to
check — below the reorder point, negative levels, lots about to expire, certificates about to
lapse (``inventory.alerts.refresh_alerts``) and counters without a heartbeat
(``kiosks.fleet.refresh_kiosk_alerts``). The other kinds (price mismatch, goods outside the
planogram, counter errors, late sales) are opened by the event itself.

Run by ``songtao tick`` and by the server's background thread (``pos.core.ticker``), one at a time
across processes (``pos.core.ticker.exclusive``), so that two runs at once open no duplicate.

The tick also finishes payment codes left in the middle (issue 15, ``pos.payments.service``): an
attempt a crash left pending or unknown is queried and, past the wait, reversed; a reverse or a
refund the provider did not answer is asked again. That step calls the providers, so it runs
after the alerts' transaction, in short transactions of its own and outside the lock (every
provider call it repeats is idempotent on our order / refund number).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Optional

from flask import Flask
from sqlalchemy.orm import Session

from inventory.alerts import refresh_alerts
from inventory.localtime import local_date, utcnow
from kiosks.fleet import refresh_kiosk_alerts
from pos.core.db import run_in_transaction
from pos.core.ticker import exclusive
from pos.payments import credentials
from pos.payments import service as payments

LOCK = "alerts.refresh"


@dataclass(frozen=True)
class TickResult:
    opened: int
    resolved: int
    updated: int
    open: int
    payments: Optional[payments.UpkeepResult] = None

    def describe(self) -> str:
        text = f"提醒已刷新：新开 {self.opened} 条，更新 {self.updated} 条，解除 {self.resolved} 条，现有 {self.open} 条"
        return text + ("；" + self.payments.describe() if self.payments is not None else "")


def refresh_everything(session: Session, *, now: Optional[dt.datetime] = None) -> TickResult:
    """Every alert kind brought in line with the database, in the session's transaction (the
    caller commits), under the site-wide lock."""
    now = now or utcnow()
    exclusive(session, LOCK)
    stock = refresh_alerts(session, today=local_date(now))
    counters = refresh_kiosk_alerts(session, now=now)
    return TickResult(opened=stock.opened + counters.opened, resolved=stock.resolved + counters.resolved,
                      updated=stock.updated, open=stock.open + counters.open)


def finish_payments(app: Flask) -> Optional[payments.UpkeepResult]:
    """Payment codes and refunds left in the middle, finished (None when no provider is set up)."""
    if not any(credentials.configured(app).values()):
        return None
    session = app.extensions["songtao.sessionmaker"]()
    try:
        return payments.finish_unfinished(session, lambda name: credentials.provider_for(app, name),
                                          payments.Timing.from_config(app.config))
    finally:
        session.rollback()
        session.close()


def tick(app: Flask, *, now: Optional[dt.datetime] = None) -> TickResult:
    """One refresh in its own transaction (retried on a deadlock or serialization failure), then
    the payment codes' upkeep."""
    session = app.extensions["songtao.sessionmaker"]()
    try:
        result = run_in_transaction(session, lambda: refresh_everything(session, now=now))
    finally:
        session.close()
    done = finish_payments(app)
    return result if done is None else dataclasses.replace(result, payments=done)


__all__ = ["TickResult", "refresh_everything", "finish_payments", "tick", "LOCK"]
