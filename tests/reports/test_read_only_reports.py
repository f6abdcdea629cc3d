"""Reports only read: their sessions must never hold the write lock that tills and counters need
(on SQLite every other transaction begins IMMEDIATE, which takes it). A writer with a short busy
timeout proves it: it fails at once if the report holds the lock."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text

from pos.reports import figures as reports
from pos.reports import monthly as report_monthly
from pos.core.db import session_scope
from tests.conftest import USING_PG
from tests.fixtures.report_pages import auditor, data  # noqa: F401  (fixtures)

FIRST, LAST = dt.date(2026, 10, 1), dt.date(2026, 11, 30)


@pytest.fixture
def impatient_writer(database_url):
    """A connection that gives up after 0.2 s if somebody else holds the write lock."""
    engine = create_engine(database_url, connect_args={} if USING_PG else {"timeout": 0.2})
    yield engine
    engine.dispose()


def _write(engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO document_counters (kind, prefix, day, last_no) VALUES ('sales', 'RO', '2026-11-26', 1)"))


def test_a_report_in_progress_does_not_keep_writers_waiting(app, data, impatient_writer):  # noqa: F811
    with session_scope(app, read_only=True) as report:
        figures = reports.collaboration(report, first=FIRST, last=LAST)  # the report has read the sales
        assert figures["total_fen"] > 0
        _write(impatient_writer)                                          # … and a till writes meanwhile
        report_monthly.monthly_summary(report, month="2026-11")


def test_an_ordinary_session_does_take_the_lock_on_sqlite(app, impatient_writer):
    """The other side of the rule (and proof that the writer above would notice): a session that may
    write holds the lock from its first statement."""
    if USING_PG:
        pytest.skip("PostgreSQL has no database-wide write lock")
    with session_scope(app) as writer:
        writer.execute(text("SELECT 1"))
        with pytest.raises(Exception, match="locked"):
            _write(impatient_writer)


@pytest.mark.parametrize("path", [
    "/reports/collaboration?from=2026-10-01&to=2026-11-30",
    "/reports/collaboration/lines?from=2026-10-01&to=2026-11-30",
    "/reports/monthly?month=2026-11",
    "/api/v1/reports/collaboration?from=2026-10-01&to=2026-11-30",
])
def test_report_pages_answer_while_a_till_is_writing(app, auditor, impatient_writer, path):  # noqa: F811
    """A till's transaction holds the write lock (not yet committed); the report page still
    answers at once, and the till's transaction then commits."""
    with impatient_writer.connect() as till:
        if not USING_PG:
            till.exec_driver_sql("BEGIN IMMEDIATE")
        till.execute(text("INSERT INTO document_counters (kind, prefix, day, last_no) VALUES ('sales', 'H9', '2026-11-26', 1)"))
        response = auditor.get(path)  # without a read-only session it would wait for the lock, then fail
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        till.commit()
