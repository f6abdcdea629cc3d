"""Issue 13: alerts keep themselves true. ``songtao tick`` refreshes every alert kind, is safe to
run concurrently with itself (no duplicate alert when two run at once, on SQLite and on
PostgreSQL), and the server runs the same refresh in a background thread: an offline counter's
alert appears with nobody opening a page."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from inventory import alerts as inventory_alerts
from inventory import catalogue
from inventory.models import Alert, AlertKind, Location, LocationKind, ReorderPoint
from kiosks import registry
from pos.cli import main
from pos.core.db import session_scope
from pos.reports import upkeep

ROOT = Path(__file__).resolve().parents[2]  # the project (this file is tests/<area>/…)


def seed(app, counters: int = 3) -> None:
    """Counters that never sent a heartbeat (offline) and two products below their reorder point."""
    with session_scope(app) as s:
        hall = Location(code="HALL", name="卖场", kind=LocationKind.HALL_FLOOR, active=True)
        s.add(hall)
        s.flush()
        for n in range(1, counters + 1):
            registry.create_kiosk(s, code=f"K{n:03d}", site_name=f"专柜{n}", host_org="单位", town="虎门镇",
                                  address="某路", site_type="school")
        for sku in ("TEA", "RICE"):
            product = catalogue.create_product(s, sku=sku, name=f"商品{sku}", price_fen=1000)
            s.add(ReorderPoint(location_id=hall.id, product_id=product.id, min_qty_milli=5000))


def open_alerts(app) -> Counter:
    with session_scope(app) as s:
        rows = s.execute(select(Alert.kind, Alert.location_id, Alert.product_id, Alert.ref_id)
                         .where(Alert.resolved_at.is_(None))).all()
    return Counter(tuple(r) for r in rows)


def test_tick_refreshes_every_kind_and_a_second_run_changes_nothing(app):
    seed(app)
    env = {"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "x"}
    first = CliRunner().invoke(main, ["tick"], env=env)
    assert first.exit_code == 0, first.output
    assert "新开 5 条" in first.output
    kinds = Counter(kind for kind, *_ in open_alerts(app).elements())
    assert kinds == {AlertKind.KIOSK_OFFLINE: 3, AlertKind.BELOW_REORDER: 2}
    second = CliRunner().invoke(main, ["tick"], env=env)
    assert "新开 0 条" in second.output and "现有 5 条" in second.output
    assert max(open_alerts(app).values()) == 1


def test_two_ticks_at_once_open_no_duplicate(app, monkeypatch):
    """Both runs work out the same missing alerts at the same moment (the reconciler is slowed
    down between reading and writing); the site-wide lock lets one write and the other then sees
    its alerts. Without it, every alert would be opened twice."""
    seed(app)
    slow = inventory_alerts._below_reorder

    def slowly(session):
        rows = list(slow(session))
        time.sleep(0.4)
        return rows

    monkeypatch.setattr(inventory_alerts, "_below_reorder", slowly)
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def run():
        try:
            start.wait()
            with app.app_context():
                upkeep.tick(app)
        except BaseException as error:  # pragma: no cover - shown by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    opened = open_alerts(app)
    assert sum(opened.values()) == 5
    assert max(opened.values()) == 1, opened


def test_two_tick_processes_at_once_open_no_duplicate(app, tmp_path):
    """As cron would: two `songtao tick` processes started together, on a fleet of 126 counters."""
    seed(app, counters=126)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": app.config["DATABASE_URL"],
           "SECRET_KEY": "x", "SONGTAO_INSTANCE": str(tmp_path)}
    runs = [subprocess.Popen([sys.executable, "-m", "pos.cli", "tick"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    opened = open_alerts(app)
    assert sum(opened.values()) == 128 and max(opened.values()) == 1
    assert sorted("新开 128 条" in out for out, _err in outputs) == [False, True]


def test_the_server_refreshes_alerts_in_the_background(database_url, tmp_path):
    """Nobody opens a page that refreshes alerts: the first request (a login page) starts the
    server's refresh thread, and the offline counter's alert appears by itself."""
    from pos import create_app

    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "x", "TICK_SECONDS": 0.2})
    try:
        seed(app, counters=1)
        assert "songtao.ticker" not in app.extensions  # building the app (a command) starts nothing
        assert app.test_client().get("/login").status_code == 200
        ticker = app.extensions["songtao.ticker"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(k == AlertKind.KIOSK_OFFLINE for k, *_ in open_alerts(app)):
            time.sleep(0.1)
        assert Counter(k for k, *_ in open_alerts(app).elements())[AlertKind.KIOSK_OFFLINE] == 1
        assert ticker.runs >= 1
        time.sleep(0.5)
        assert max(open_alerts(app).values()) == 1  # the rounds after the first open nothing new
        ticker.stop()
        assert not ticker.thread.is_alive()
    finally:
        app.extensions.get("songtao.ticker") and app.extensions["songtao.ticker"].stop()
        app.extensions["songtao.engine"].dispose()


def test_tests_and_commands_start_no_background_thread(app):
    assert app.test_client().get("/login").status_code == 200
    assert "songtao.ticker" not in app.extensions
