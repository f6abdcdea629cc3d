"""The migrations build the models' schema on SQLite and PostgreSQL, go down and up again, and the
database itself refuses what breaks the rules.

PostgreSQL runs in a database of its own (``songtao_migrations_<pid>``, one per test process) so that
dropping and rebuilding the schema never disturbs the suite's database.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventory.models import Barcode, BarcodeKind, Location, LocationKind, Product
from kiosks.models import Kiosk, SiteType
from pos.core.db import make_engine
from pos.schema import metadata
from pos.migrate import alembic_config, current_revision, include_name, downgrade, head_revision, table_names, upgrade
from pos.models import Channel, Role, Sale, Shift, ShiftStatus, Till, User
from tests.conftest import DEFAULT_PG_URL, TEST_DATABASE_URL, USING_PG, need, pg_reachable, reset_pg_schema

PG_BASE_URL = TEST_DATABASE_URL if USING_PG else DEFAULT_PG_URL
KINDS = ["sqlite", "postgresql"]


def _pg_url_for(name: str) -> str:
    return re.sub(r"/([^/?]*)(\?|$)", lambda m: f"/{name}{m.group(2)}", PG_BASE_URL, count=1)


@pytest.fixture(scope="module")
def pg_migrations_url():
    """A PostgreSQL database of this module's own, created when missing and dropped at the end."""
    need(pg_reachable(PG_BASE_URL), f"PostgreSQL not reachable at {PG_BASE_URL}")
    # One per process: two suite runs on the same server (a developer's and CI's) never share it.
    name = f"songtao_migrations_{os.getpid()}"
    admin = create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield _pg_url_for(name)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=KINDS)
def empty_url(request, tmp_path):
    """An empty database: a fresh SQLite file, or an emptied PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    url = request.getfixturevalue("pg_migrations_url")
    reset_pg_schema(url)
    return url


@pytest.fixture
def migrated_url(empty_url):
    upgrade(empty_url)
    return empty_url


def schema_differences(url: str, target: MetaData = metadata) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
            with warnings.catch_warnings():
                # the search's expression indexes (inventory.search_index), left out by include_name
                warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
                return compare_metadata(context, target)
    finally:
        engine.dispose()


# --- up, down, up ----------------------------------------------------------------------------

def test_there_is_one_head():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == [head_revision()]


def test_upgrade_from_empty_builds_every_table(empty_url):
    assert table_names(empty_url) == set()
    assert current_revision(empty_url) is None
    upgrade(empty_url)
    assert table_names(empty_url) == set(metadata.tables) | {"alembic_version"}
    assert current_revision(empty_url) == head_revision()


def test_migrated_schema_matches_the_models(migrated_url):
    assert schema_differences(migrated_url) == []


def test_a_model_change_without_a_migration_is_noticed(migrated_url):
    """The comparison above can fail: a column the migrations do not create shows up."""
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["products"].append_column(Column("shelf_code", Integer, nullable=True))
    differences = schema_differences(migrated_url, changed)
    assert [(d[0], d[2], d[3].name) for d in differences if d[0] == "add_column"] == [
        ("add_column", "products", "shelf_code")]


def test_downgrade_one_step_and_upgrade_again(migrated_url):
    script = ScriptDirectory.from_config(alembic_config(migrated_url))
    head = head_revision()
    previous = script.get_revision(head).down_revision

    downgrade(migrated_url, "-1")
    assert current_revision(migrated_url) == previous
    if previous is None:  # the first migration goes back to an empty database
        assert table_names(migrated_url) <= {"alembic_version"}

    upgrade(migrated_url)
    assert current_revision(migrated_url) == head
    assert table_names(migrated_url) == set(metadata.tables) | {"alembic_version"}
    assert schema_differences(migrated_url) == []


def test_upgrade_twice_is_harmless(migrated_url):
    upgrade(migrated_url)
    assert current_revision(migrated_url) == head_revision()


# --- rules the database enforces -------------------------------------------------------------

SOLD_AT = dt.datetime(2026, 11, 26, 2, 15, tzinfo=dt.timezone.utc)


@pytest.fixture
def db(migrated_url):
    """A session on a migrated database holding one of everything the cases refer to."""
    engine = make_engine(migrated_url)
    with Session(engine) as s:
        hall = Location(code="HALL", name="展厅", kind=LocationKind.HALL_FLOOR)
        counter = Location(code="K001", name="专柜 K001", kind=LocationKind.KIOSK)
        counter2 = Location(code="K002", name="专柜 K002", kind=LocationKind.KIOSK)
        s.add_all([hall, counter, counter2])
        s.flush()
        s.add_all([
            Kiosk(code="K001", site_name="虎门镇政府", host_org="虎门镇政府", site_type=SiteType.GOVERNMENT,
                  town="虎门", address="虎门镇", location_id=counter.id),
            Kiosk(code="K002", site_name="虎门医院", host_org="虎门医院", site_type=SiteType.HOSPITAL,
                  town="虎门", address="虎门镇", location_id=counter2.id),
            Till(code="H1", name="1号收银台", location_id=hall.id),
            Till(code="H2", name="2号收银台", location_id=hall.id),
            User(username="cash", display_name="收银员", role=Role.CASHIER, password_hash="x"),
        ])
        product = Product(sku="P1", name="梵净山翠峰茶", price_fen=3800)
        s.add(product)
        s.flush()
        s.add(Barcode(product_id=product.id, code="6901234567892", kind=BarcodeKind.EAN13))
        s.commit()
        ids = {
            "product": product.id,
            "hall": hall.id,
            "k1": s.scalar(text("SELECT id FROM kiosks WHERE code = 'K001'")),
            "k2": s.scalar(text("SELECT id FROM kiosks WHERE code = 'K002'")),
            "h1": s.scalar(text("SELECT id FROM tills WHERE code = 'H1'")),
            "h2": s.scalar(text("SELECT id FROM tills WHERE code = 'H2'")),
            "cashier": s.scalar(text("SELECT id FROM users WHERE username = 'cash'")),
        }
    yield engine, ids
    engine.dispose()


_receipts = iter(range(1, 1_000_000))


def sale(ids, *, kiosk=None, txn_id=None, client_sale_id=None) -> Sale:
    return Sale(
        receipt_no=f"R{next(_receipts):06d}", channel=Channel.KIOSK if kiosk else Channel.HALL,
        content_hash="0" * 64, kiosk_id=kiosk, txn_id=txn_id, client_sale_id=client_sale_id,
        location_id=ids["hall"], sold_at=SOLD_AT, local_date=dt.date(2026, 11, 26),
        subtotal_fen=0, discount_fen=0, rounding_fen=0, total_fen=0,
    )


def shift(ids, till: str, status: ShiftStatus) -> Shift:
    return Shift(till_id=ids[till], cashier_id=ids["cashier"], status=status, opening_float_fen=0)


def raw_product(sku: str, unit: str) -> tuple[str, dict]:
    return (
        "INSERT INTO products (sku, name, pinyin_initials, unit, sold_by_weight, price_fen, vat, active, created_at)"
        " VALUES (:sku, :name, '', :unit, :w, 100, '9', :a, CURRENT_TIMESTAMP)",
        {"sku": sku, "name": sku, "unit": unit, "w": False, "a": True},
    )


# Each case: what the refusal names (SQLite's wording | PostgreSQL's constraint name), something the
# database accepts, then the same thing broken, which it must refuse.
CASES = {
    "duplicate sku": (
        r"products\.sku|uq_products_sku",
        lambda ids: [Product(sku="P2", name="B", price_fen=1)],
        lambda ids: [Product(sku="P1", name="C", price_fen=1)],
    ),
    "duplicate barcode": (
        r"barcodes\.code|uq_barcodes_code",
        lambda ids: [Barcode(product_id=ids["product"], code="6901234567908", kind=BarcodeKind.EAN13)],
        lambda ids: [Barcode(product_id=ids["product"], code="6901234567892", kind=BarcodeKind.EAN13)],
    ),
    "negative price": (
        "ck_products_price_non_negative",
        lambda ids: [Product(sku="P2", name="B", price_fen=0)],
        lambda ids: [Product(sku="P3", name="C", price_fen=-1)],
    ),
    "unknown unit": (
        "ck_products_unit",
        lambda ids: raw_product("P2", "kg"),
        lambda ids: raw_product("P3", "box"),
    ),
    "unknown location kind": (
        "ck_locations_location_kind",
        lambda ids: ("INSERT INTO locations (code, name, kind, active) VALUES ('L1', 'x', 'loss', :a)", {"a": True}),
        lambda ids: ("INSERT INTO locations (code, name, kind, active) VALUES ('L2', 'x', 'warehouse', :a)", {"a": True}),
    ),
    "foreign key to a missing row": (
        "FOREIGN KEY constraint failed|fk_barcodes_product_id_products",
        lambda ids: [Barcode(product_id=ids["product"], code="1111", kind=BarcodeKind.INTERNAL)],
        lambda ids: [Barcode(product_id=ids["product"] + 999_999, code="2222", kind=BarcodeKind.INTERNAL)],
    ),
    "duplicate kiosk txn_id": (
        r"sales\.kiosk_id, sales\.txn_id|uq_sales_kiosk_id_txn_id",
        lambda ids: [sale(ids, kiosk=ids["k1"], txn_id="T1"), sale(ids, kiosk=ids["k2"], txn_id="T1")],
        lambda ids: [sale(ids, kiosk=ids["k1"], txn_id="T1"), sale(ids, kiosk=ids["k1"], txn_id="T1")],
    ),
    "duplicate client_sale_id": (
        r"sales\.client_sale_id|uq_sales_client_sale_id",
        lambda ids: [sale(ids, client_sale_id="c-1"), sale(ids, client_sale_id="c-2"), sale(ids), sale(ids)],
        lambda ids: [sale(ids, client_sale_id="c-1"), sale(ids, client_sale_id="c-1")],
    ),
    "second open shift on a till": (
        r"shifts\.till_id|uq_shifts_one_open_per_till",
        lambda ids: [shift(ids, "h1", ShiftStatus.CLOSED), shift(ids, "h1", ShiftStatus.CLOSED),
                     shift(ids, "h1", ShiftStatus.OPEN), shift(ids, "h2", ShiftStatus.OPEN)],
        lambda ids: [shift(ids, "h1", ShiftStatus.OPEN), shift(ids, "h1", ShiftStatus.OPEN)],
    ),
}


def apply(session: Session, change) -> None:
    if isinstance(change, tuple):
        session.execute(text(change[0]), change[1])
    else:
        for row in change:  # one statement per row, in order
            session.add(row)
            session.flush()


@pytest.mark.parametrize("case", list(CASES))
def test_the_database_refuses(db, case):
    engine, ids = db
    names, allowed, refused = CASES[case]
    with Session(engine) as s:
        apply(s, allowed(ids))  # the valid twin goes through: the refusal below is the rule's
        s.rollback()
    with Session(engine) as s:
        with pytest.raises(IntegrityError, match=names):
            apply(s, refused(ids))
        s.rollback()


def test_sqlite_enforces_foreign_keys_on_every_connection(tmp_path):
    url = f"sqlite:///{tmp_path / 'fk.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert inspect(engine).get_foreign_keys("barcodes")
    finally:
        engine.dispose()
