"""The search and the quick keys read through their indexes, on SQLite and PostgreSQL: every statement
they run (caught on the connection as they run it) is explained again with the same parameters, and
the plan names the index — never a full scan of products or sale_lines.

On PostgreSQL a tiny table is cheaper to read whole, so the plans are asked with sequential scans
discouraged (``enable_seqscan = off``): the index must be usable, which is what this checks; the
planner takes it by itself once the catalogue is large (bench.search)."""
from __future__ import annotations

import contextlib
import re

import pytest
from sqlalchemy import event, select

from inventory import catalogue
from inventory.localtime import local_today, utcnow
from inventory.models import Location
from inventory.search import search_ids
from pos.hall import popular
from pos.models import Sale, SaleLine
from tests.fixtures.till import hall  # noqa: F401  (fixture)


@contextlib.contextmanager
def statements(engine):
    caught: list[tuple[str, object]] = []

    def catch(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            caught.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", catch)
    try:
        yield caught
    finally:
        event.remove(engine, "before_cursor_execute", catch)


def plans(session, caught) -> list[str]:
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    if pg:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    out = []
    for statement, parameters in caught:
        rows = conn.exec_driver_sql(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + statement, parameters).all()
        out.append("\n".join(str(r[-1]) for r in rows))
    return out


@pytest.fixture
def products(app, hall):  # noqa: F811
    from pos.core.db import session_scope

    with session_scope(app) as s:
        for sku, name in [("MJC", "散装货"), ("ZA1", "梅江茶"), ("ZA3", "红梅江茶")]:
            catalogue.create_product(s, sku=sku, name=name, price_fen=1000)


def full_scan(plan: str, table: str) -> bool:
    return f"Seq Scan on {table}" in plan or f"SCAN {table}" in plan.replace(" USING", "\nUSING").split("\n")


@pytest.mark.parametrize("q, indexes", [
    ("mjc", {"ix_products_lower_sku", "initials", "fts_or_trgm"}),       # sku, initials, initials fragment
    ("6901234567892", {"ix_barcodes_code"}),                             # a barcode
    ("梅江茶", {"ix_products_lower_name", "fts_or_trgm"}),                  # name start, name fragment
    ("mj", {"ix_products_lower_sku", "initials"}),                        # short: prefixes only
    ("茶", {"covering"}),                                                  # one Chinese character
])
def test_search_reads_through_the_indexes(app, session, products, q, indexes):
    pg = session.get_bind().dialect.name == "postgresql"
    with statements(session.get_bind()) as caught:
        search_ids(session, q, sold={})
    assert len(caught) == 1  # one statement for every rank
    plan = plans(session, caught)[0]
    expected = set()
    for name in indexes:
        if name == "fts_or_trgm":
            expected.add("ix_products_name_trgm" if pg and q == "梅江茶" else
                         "ix_products_initials_trgm" if pg else "products_fts VIRTUAL TABLE INDEX")
        elif name == "initials":
            expected.add("ix_products_initials_c" if pg else "ix_products_pinyin_initials")
        elif name == "covering":  # SQLite walks the sku index, which covers name (PostgreSQL: its choice)
            expected.add("ix_products" if pg else "SCAN products USING COVERING INDEX ix_products_lower_sku")
        elif name == "ix_barcodes_code":
            expected.add("uq_barcodes_code" if pg else "sqlite_autoindex_barcodes")
        else:
            expected.add(name)
    missing = {name for name in expected if name not in plan}
    assert not missing, plan
    assert "Seq Scan on products" not in plan and "SCAN products\n" not in plan + "\n", plan


def test_quick_keys_read_the_last_30_days_through_the_indexes(app, session, hall):  # noqa: F811
    hall_id = session.scalar(select(Location.id).where(Location.code == "HALL"))
    sale = Sale(receipt_no="PLAN-1", channel="hall", content_hash="0" * 64, location_id=hall_id, sold_at=utcnow(),
                local_date=local_today(), subtotal_fen=100, total_fen=100)
    sale.lines = [SaleLine(line_no=1, product_id=hall.tea, qty_milli=1000, unit_price_fen=100, gross_fen=100,
                           net_fen=100, vat="9", certified=False)]
    session.add(sale)
    session.flush()
    with statements(session.get_bind()) as caught:
        assert popular.most_sold(session) == [(hall.tea, 1)]
    plan = plans(session, caught)[-1]  # (PostgreSQL first reads the window's first sale id)
    assert "Seq Scan on sale_lines" not in plan and "SCAN sale_lines\n" not in plan + "\n", plan
    assert "Seq Scan on sales" not in plan and "SCAN sales\n" not in plan + "\n", plan
    if session.get_bind().dialect.name == "postgresql":
        # On a few rows PostgreSQL picks among the indexes that start with the window's column
        # (local_date) and those that start with sale_id, by statistics that autovacuum may or may
        # not have gathered yet; what matters is that neither table is scanned whole.
        assert re.search(r"Index Cond: \(+local_date >= ", plan), plan
        assert re.search(r"(Index|Index Only|Bitmap Index) Scan (using|on) ix_sale_lines_sale_(product|id)", plan), plan
    else:
        assert "ix_sales_local_date_status" in plan, plan
        assert "COVERING INDEX ix_sale_lines_sale_product" in plan, plan
