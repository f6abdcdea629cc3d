"""Issue 13: ``songtao backup`` while counters keep selling, and ``songtao restore``. Every sale
acknowledged before the backup started is in the copy, and the copy's ledger balances (SQLite's
online backup API with an integrity check; PostgreSQL's pg_dump -Fc). A restore refuses a
database that holds data unless forced, and a backup from a newer schema."""
from __future__ import annotations

import os
import threading
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text

from inventory import catalogue, ledger
from inventory.locations import ensure_bookkeeping_locations
from kiosks import registry
from pos import create_app
from pos.cli import main
from pos.core import backup
from pos.core.db import session_scope
from pos.migrate import head_revision
from pos.models import Sale
from tests.conftest import TEST_DATABASE_URL, USING_PG, _with_database

SOLD_AT = "2026-11-26T10:15:00+08:00"


def seed(app) -> str:
    """One counter selling one product; its token."""
    with session_scope(app) as s:
        ensure_bookkeeping_locations(s)
        product = catalogue.create_product(s, sku="TEA", name="梵净山翠峰茶", price_fen=3800)
        registry.create_kiosk(s, code="K001", site_name="虎门镇政府", host_org="虎门镇人民政府", town="虎门镇",
                              address="某路 1 号", site_type="government")
        registry.set_slot(s, "K001", "A1", product_id=product.id, par=8, price_fen=3800, actor_id=None)
        return registry.issue_token(s, "K001")


@pytest.fixture
def other_database(tmp_path):
    """An empty database to restore into."""
    if not USING_PG:
        return f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    name = "songtao_restore" + (f"_{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else "")
    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = _with_database(TEST_DATABASE_URL, name)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def test_a_backup_during_a_burst_of_sales_restores_with_nothing_acknowledged_lost(app, tmp_path, other_database):
    token = seed(app)
    acknowledged: list[tuple[float, str]] = []  # (when the counter heard "accepted", txn_id)
    guard = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []

    def counter(n: int) -> None:
        client = app.test_client()
        i = 0
        while not stop.is_set():
            i += 1
            txn = f"c{n}-{i}"
            response = client.post("/api/v1/kiosks/K001/sales", headers={"Authorization": f"Bearer {token}"}, json={
                "sales": [{"txn_id": txn, "sold_at": SOLD_AT, "lines": [{"slot": "A1", "qty": 1, "unit_price_fen": 3800}],
                           "payment": {"method": "wechat", "amount_fen": 3800, "ref": txn}}]})
            if response.status_code == 200 and response.get_json()["accepted"] == [txn]:
                with guard:
                    acknowledged.append((time.monotonic(), txn))
            elif response.status_code != 503:  # busy is what a counter resends; anything else is wrong
                failures.append(f"{response.status_code} {response.get_data(as_text=True)[:200]}")

    sellers = [threading.Thread(target=counter, args=(n,)) for n in range(3)]
    for t in sellers:
        t.start()
    try:
        while len(acknowledged) < 30:
            time.sleep(0.05)
        started = time.monotonic()
        result = backup.backup(app.config["DATABASE_URL"], tmp_path / "hall-backup")
        finished = time.monotonic()
        time.sleep(0.3)  # the counters go on selling after the copy too
    finally:
        stop.set()
        for t in sellers:
            t.join(60)
    assert not failures, failures[:3]
    before = {txn for at, txn in acknowledged if at < started}
    during = [txn for at, txn in acknowledged if started <= at <= finished]
    assert len(before) >= 30 and len(acknowledged) > len(before)
    assert result.revision == head_revision() and result.bytes > 0

    runner = CliRunner()
    restored = runner.invoke(main, ["restore", result.path], env={"DATABASE_URL": other_database})
    assert restored.exit_code == 0, restored.output
    copy = create_app({"TESTING": True, "DATABASE_URL": other_database, "SECRET_KEY": "x"})
    try:
        with session_scope(copy) as s:
            in_copy = set(s.scalars(select(Sale.txn_id)))
            assert before <= in_copy, sorted(before - in_copy)[:5]
            assert in_copy <= {txn for _at, txn in acknowledged}  # nothing the counters were not told of
            assert ledger.unbalanced(s) == []
            assert s.scalar(select(func.count()).select_from(Sale)) == len(in_copy)
    finally:
        copy.extensions["songtao.engine"].dispose()
    print(f"backup: {result.bytes} bytes in {result.seconds:.2f} s; {len(before)} sales before, "
          f"{len(during)} acknowledged while copying")


def test_restore_refuses_a_database_with_data_unless_forced(app, tmp_path):
    seed(app)
    url = app.config["DATABASE_URL"]
    file = tmp_path / "b"
    backup.backup(url, file)
    runner = CliRunner()
    refused = runner.invoke(main, ["restore", str(file)], env={"DATABASE_URL": url})
    assert refused.exit_code == 1 and "已有数据" in refused.output and "--force" in refused.output
    app.extensions["songtao.engine"].dispose()
    forced = runner.invoke(main, ["restore", str(file), "--force"], env={"DATABASE_URL": url})
    assert forced.exit_code == 0, forced.output
    missing = runner.invoke(main, ["restore", str(tmp_path / "nope")], env={"DATABASE_URL": url})
    assert missing.exit_code == 1 and "找不到备份文件" in missing.output
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a backup at all")
    wrong = runner.invoke(main, ["restore", str(junk), "--force"], env={"DATABASE_URL": url})
    assert wrong.exit_code == 1 and "不是" in wrong.output


def test_restore_refuses_a_backup_from_a_newer_schema(app, tmp_path, other_database):
    """A backup whose schema version this program does not know (made by a newer version) is
    refused before anything is touched."""
    seed(app)
    url = app.config["DATABASE_URL"]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
        file = tmp_path / "future-backup"
        backup.backup(url, file)
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()})
        engine.dispose()
    result = CliRunner().invoke(main, ["restore", str(file)], env={"DATABASE_URL": other_database})
    assert result.exit_code == 1 and "0099_from_the_future" in result.output and "比本程序新" in result.output
    assert not backup.holds_data(other_database)
    if not USING_PG:
        assert not os.path.exists(other_database[len("sqlite:///"):])


def test_the_backup_command_names_its_file(app, tmp_path):
    seed(app)
    out = tmp_path / "nightly" / "hall.bak"
    result = CliRunner().invoke(main, ["backup", "--out", str(out)], env={"DATABASE_URL": app.config["DATABASE_URL"]})
    assert result.exit_code == 0, result.output
    assert out.is_file() and str(out) in result.output and head_revision() in result.output
    assert not list(out.parent.glob("*.partial"))


def test_a_missing_pg_dump_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SONGTAO_PG_BIN", raising=False)
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    monkeypatch.setattr(backup.glob, "glob", lambda pattern: [])
    with pytest.raises(backup.BackupError) as error:
        backup.backup("postgresql+psycopg:///nowhere?host=/var/run/postgresql", "/tmp/never-written.dump")
    assert "找不到 pg_dump" in str(error.value) and "postgresql-client" in str(error.value)
    assert not os.path.exists("/tmp/never-written.dump")


def test_a_backup_from_an_older_schema_is_restored_and_migrated(other_database, tmp_path):
    from pos.migrate import current_revision, upgrade

    upgrade(other_database, "0007")
    file = tmp_path / "old-backup"
    assert backup.backup(other_database, file).revision == "0007"
    if USING_PG:
        engine = create_engine(other_database, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    else:
        os.remove(other_database[len("sqlite:///"):])
    result = CliRunner().invoke(main, ["restore", str(file)], env={"DATABASE_URL": other_database})
    assert result.exit_code == 0, result.output
    assert f"已把数据库结构从 0007 升级到 {head_revision()}" in result.output
    assert current_revision(other_database) == head_revision()
