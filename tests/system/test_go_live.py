"""Issue 13, the first "done means": from an EMPTY database, with commands only (no demo) —
init-db, an admin, locations, a till, 126 counters from a CSV, a catalogue, opening stock — then a
cashier sells at that till through the JSON API, a counter posts a sale through the counter API,
a group order is delivered, and ``songtao report collaboration`` shows all three channels. Run on
SQLite, and on PostgreSQL when TEST_DATABASE_URL names one (in a database of its own, emptied
first).

The commands run as a hall's script would run them: ``python -m pos.cli`` in a subprocess, with
DATABASE_URL in the environment."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from tests.conftest import TEST_DATABASE_URL, USING_PG, _with_database, need, pg_reachable

ROOT = Path(__file__).resolve().parents[2]  # the project (this file is tests/<area>/…)
ADMIN_PASSWORD = "correct-horse-9"
CASHIER_PIN = "2468"

CATALOGUE = """sku,name,barcodes,category,unit,price_fen,vat,supplier,origin_county,origin_township,origin_village,certificate_no,certificate_valid_from,certificate_valid_to
ST001,松桃梅江茶,6901234567892,茶叶,piece,3800,9,松桃梅江茶业合作社,松桃苗族自治县,,,GZ-520628-2026-001,2026-01-01,2030-12-31
ST002,苗绣杯垫,,手工艺品,piece,2500,13,松桃苗绣坊,松桃苗族自治县,,,,,
ST003,高山腊肉,,肉制品,kg,9800,9,松桃腊味坊,松桃苗族自治县,,,,,
"""
STOCK_BASE = "商品编码,数量,批号,到期日,进价\nST001,200,L-2026-01,2030-06-30,20.50\nST002,50,,,12\nST003,30.5,,,60\n"
STOCK_HALL = "sku,qty\nST001,40\nST002,20\nST003,10\n"
STOCK_K001 = "barcode,qty,lot,expires_on\n6901234567892,8,L-2026-01,2030-06-30\n"


def songtao(env: dict, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "pos.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    if ok:
        assert done.returncode == 0, f"songtao {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def counters_csv(path: Path) -> Path:
    towns = ("虎门镇", "沙田镇", "麻涌镇", "中堂镇", "滨海湾新区")
    kinds = ("机关", "医院", "学校", "企业", "饭堂", "其他")
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        out = csv.writer(fh)
        out.writerow(["编号", "名称", "场所类型", "所在单位", "镇街", "地址", "纬度", "经度"])
        for n in range(1, 127):
            out.writerow([f"K{n:03d}", f"{towns[n % 5]}第{n}号专柜", kinds[n % 6], f"单位{n}", towns[n % 5],
                          f"{towns[n % 5]}某路 {n} 号", f"{22.70 + n / 1000:.4f}", f"{113.60 + n / 1000:.4f}"])
    return path


@pytest.fixture
def empty_database(tmp_path):
    """A database with no tables at all: a new SQLite file, or a PostgreSQL database of its own
    with an empty public schema."""
    if not USING_PG:
        return f"sqlite:///{tmp_path / 'hall.sqlite3'}"
    need(pg_reachable(TEST_DATABASE_URL), f"PostgreSQL not reachable at {TEST_DATABASE_URL}")
    name = "songtao_golive" + (f"_{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else "")
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


def test_a_hall_goes_live_from_an_empty_database_with_commands_only(empty_database, tmp_path):
    url = empty_database
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url, "SONGTAO_INSTANCE": str(tmp_path / "instance"),
           "SECRET_KEY": "go-live-test-secret"}
    files = tmp_path / "files"
    files.mkdir()
    for name, body in (("catalogue.csv", CATALOGUE), ("base.csv", STOCK_BASE), ("hall.csv", STOCK_HALL),
                       ("k001.csv", STOCK_K001)):
        (files / name).write_text(body, encoding="utf-8")

    # --- set-up, by commands --------------------------------------------------------------------
    first = songtao(env, "init-db")
    assert "SUPPLIER、CUSTOMER、LOSS、COUNT-ADJ" in first.stdout  # the bookkeeping locations
    songtao(env, "create-user", "boss", "--role", "admin", "--password", ADMIN_PASSWORD)
    songtao(env, "create-user", "cash", "--role", "cashier", "--password", ADMIN_PASSWORD, "--pin", CASHIER_PIN)
    songtao(env, "add-location", "HALL", "--kind", "hall", "--name", "松桃馆卖场")
    songtao(env, "add-location", "HALL-STORE", "--kind", "storeroom", "--name", "松桃馆仓库")
    songtao(env, "add-location", "BASE", "--kind", "base", "--name", "黔货出山大湾区物流基地")
    songtao(env, "add-location", "VAN1", "--kind", "van", "--name", "补货车 1")
    songtao(env, "add-till", "H1", "--name", "1号收银台", "--location", "HALL", "--printer", "none", "--paper", "80")
    imported = songtao(env, "import-kiosks", str(counters_csv(files / "counters.csv")))
    assert "新建 126 个专柜" in imported.stdout
    assert "未变 126 个" in songtao(env, "import-kiosks", str(files / "counters.csv")).stdout  # rerun: no duplicates
    assert "新建 3 个商品" in songtao(env, "import-catalogue", str(files / "catalogue.csv")).stdout
    songtao(env, "import-stock", str(files / "base.csv"), "--location", "BASE")
    songtao(env, "import-stock", str(files / "hall.csv"), "--location", "HALL")
    songtao(env, "import-stock", str(files / "k001.csv"), "--location", "K001")
    token = songtao(env, "kiosk-token", "K001").stdout.strip()

    # --- selling: the till's JSON API, the counter API, a group order ------------------------------
    from inventory import ledger
    from inventory.models import Location, Product, StockLevel
    from kiosks import registry
    from kiosks.models import Kiosk
    from pos import create_app
    from pos.core.db import session_scope
    from pos.group import buyers
    from pos.group import orders as go
    from pos.group.delivery import deliver
    from pos.models import Till, User
    from tests.conftest import csrf_token

    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "go-live-test-secret",
                      "LOGIN_DELAY_UNIT_SECONDS": 0, "LOGIN_DELAY_MAX_SECONDS": 0})
    try:
        with session_scope(app) as s:
            assert s.scalar(select(func.count()).select_from(Kiosk)) == 126
            assert s.scalar(select(func.count()).select_from(Location).where(Location.code.like("K%"))) == 126
            assert s.scalar(select(Till.code)) == "H1"
            tea, rug, pork = (s.scalar(select(Product.id).where(Product.sku == sku)) for sku in ("ST001", "ST002", "ST003"))
            boss = s.scalar(select(User.id).where(User.username == "boss"))
            base = s.scalar(select(Location.id).where(Location.code == "BASE"))
            assert s.scalar(select(StockLevel.qty_milli).where(StockLevel.location_id == base,
                                                               StockLevel.product_id == pork)) == 30_500
            registry.set_slot(s, "K001", "A1", product_id=tea, par=8, price_fen=3800, actor_id=boss)

        client = app.test_client()
        token_page = client.get("/login")
        assert token_page.status_code == 200
        login = client.post("/login?mode=pin", data={"pin-username": "cash", "pin-pin": CASHIER_PIN,
                                                     "pin-csrf_token": csrf_token(client, "/login?mode=pin")})
        assert login.status_code == 302, login.get_data(as_text=True)
        headers = {"X-CSRFToken": csrf_token(client, "/account")}
        opened = client.post("/api/v1/shifts", json={"till": "H1", "opening_float_fen": 20000}, headers=headers)
        assert opened.status_code == 201, opened.get_data(as_text=True)
        hall_sale = client.post("/api/v1/sales", headers=headers, json={
            "client_sale_id": str(uuid.uuid4()), "till": "H1",
            "lines": [{"product_id": tea, "qty_milli": 2000}, {"product_id": pork, "qty_milli": 500}],
            "payments": [{"method": "cash", "amount_fen": 7600 + 4900, "tendered_fen": 15000}]})
        assert hall_sale.status_code == 201, hall_sale.get_data(as_text=True)

        sold_at = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0) - dt.timedelta(minutes=5)
        counter = client.post("/api/v1/kiosks/K001/sales", headers={"Authorization": f"Bearer {token}"}, json={
            "sales": [{"txn_id": "K001-first", "sold_at": sold_at.isoformat(),
                       "lines": [{"slot": "A1", "qty": 1, "unit_price_fen": 3800}],
                       "payment": {"method": "wechat", "amount_fen": 3800, "ref": "wx-1"}}]})
        assert counter.status_code == 200, counter.get_data(as_text=True)
        assert counter.get_json()["accepted"] == ["K001-first"]

        with session_scope(app) as s:
            union = buyers.create_buyer(s, buyers.BuyerIn(name="虎门镇总工会", buyer_type="union"), actor_id=boss).id
            order = go.create_order(s, buyer_id=union, lines=[go.OrderLineIn(rug, 10_000)],
                                    delivery_date=dt.date.today(), actor_id=boss)
            go.confirm_order(s, order.id, actor_id=boss)
            go.pick_order(s, order.id, actor_id=boss)
            delivered = deliver(s, order.id, actor_id=boss)
            assert delivered.sale_id
        with session_scope(app) as s:
            assert ledger.unbalanced(s) == []
    finally:
        app.extensions["songtao.engine"].dispose()

    # --- the figures, by command ----------------------------------------------------------------
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    report = json.loads(songtao(env, "report", "collaboration", "--from", today, "--to", today,
                                "--format", "json").stdout)
    channels = report["by_channel"]
    assert channels["hall"]["total_fen"] == 12_500
    assert channels["kiosk"]["total_fen"] == 3_800
    assert channels["group"]["total_fen"] == 25_000
    assert channels["hall"]["certified_fen"] == 7_600 and channels["kiosk"]["certified_fen"] == 3_800
    assert channels["group"]["certified_fen"] == 0
    assert report["total_fen"] == 12_500 + 3_800 + 25_000
    assert report["by_buyer_type"]["union"]["total_fen"] == 25_000
