"""Document numbers come from one atomic counter for every kind (inventory.documents.take_number):
receipts, refunds and group orders (four digits) and goods receipts, transfers and counts (three).
Concurrent transactions never get the same number, on SQLite and PostgreSQL alike (whichever the
suite runs on), and the migration that brought the counter in goes on from the numbers already
given out."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from inventory import receiving
from inventory.documents import (
    SALES_NUMBERS,
    STOCK_NUMBERS,
    DocumentCounter,
    GoodsReceipt,
    StockCount,
    Transfer,
    format_number,
    take_number,
)
from inventory.localtime import local_today
from inventory.stock_documents import next_document_number
from pos.core.db import make_engine
from pos.migrate import downgrade, upgrade
from tests.fixtures.stock import engine, s, world  # noqa: F401  (fixtures)
from tests.fixtures.threads import run_threads

DAY = dt.date(2026, 11, 26)


def test_the_formats_stay_as_they_were():
    assert format_number("H1", DAY, 7) == "H1-20261126-0007"
    assert format_number("GR", DAY, 7, digits=3) == "GR-20261126-007"


def test_each_kind_prefix_and_day_counts_on_its_own(s):
    assert [take_number(s, "H1", DAY) for _ in range(3)] == [1, 2, 3]
    assert take_number(s, "H2", DAY) == 1
    assert take_number(s, "H1", DAY + dt.timedelta(days=1)) == 1
    # a till coded like a stock document does not share that document's counter
    assert take_number(s, "TR", DAY, kind=SALES_NUMBERS) == 1
    assert take_number(s, "TR", DAY, kind=STOCK_NUMBERS) == 1
    assert next_document_number(s, Transfer, DAY) == "TR-20261126-002"


def test_a_rolled_back_transaction_gives_its_number_back(world):
    with world.Session() as s:
        assert take_number(s, "H1", DAY) == 1
        s.rollback()
        assert take_number(s, "H1", DAY) == 1
        s.commit()


def test_concurrent_sessions_never_get_the_same_number(world):
    """Eight sessions at once, each taking numbers in transactions of their own (one in three
    rolled back): the committed numbers are all different and leave no gap."""
    taken: list[int] = []

    def till(_i: int) -> None:
        for j in range(15):
            with world.Session() as s:
                n = take_number(s, "H1", DAY)
                if j % 3 == 2:
                    s.rollback()
                    continue
                s.commit()
                taken.append(n)

    assert run_threads(till, 8) == []
    assert sorted(taken) == list(range(1, len(taken) + 1)) and len(taken) == 8 * 10
    with world.Session() as s:
        assert s.scalar(select(DocumentCounter.last_no).where(DocumentCounter.prefix == "H1")) == 80


def test_concurrent_goods_receipts_are_numbered_apart(world, s):
    tea_id = world.product(s).id
    s.commit()
    numbers: list[str] = []

    def storeroom(_i: int) -> None:
        for _ in range(3):
            with world.Session() as ss:
                receipt = receiving.receive(ss, supplier_id=world.supplier_id, location_id=world.loc["BASE"],
                                            lines=[{"product_id": tea_id, "qty_milli": 1000, "cost_fen": 1}],
                                            actor_id=None)
                ss.commit()
                numbers.append(receipt.number)

    assert run_threads(storeroom, 6) == []
    stem = f"GR-{local_today():%Y%m%d}-"
    assert sorted(numbers) == [f"{stem}{n:03d}" for n in range(1, 19)]


def test_the_migration_goes_on_from_the_numbers_already_given_out(tmp_path):
    url = f"sqlite:///{tmp_path / 'numbers.sqlite3'}"
    upgrade(url, "0008")
    plain = create_engine(url)
    with plain.begin() as conn:
        conn.execute(text("INSERT INTO suppliers (id, name, province, active) VALUES (1, '翠峰茶业', '贵州省', 1)"))
        conn.execute(text("INSERT INTO locations (id, code, name, kind, active) "
                          "VALUES (1, 'BASE', '物流基地', 'base', 1), (2, 'HALL', '卖场', 'hall_floor', 1)"))
        conn.execute(text("INSERT INTO receipt_counters (prefix, day, last_no) VALUES "
                          "('H1', '2026-11-26', 41), ('R-H1', '2026-11-26', 2), ('H1', '2026-11-25', 90)"))
        for table, number in [("goods_receipts", "GR-20261126-007"), ("goods_receipts", "GR-20261126-012"),
                              ("goods_receipts", "GR-20261125-003"), ("goods_receipts", "手工-1")]:
            conn.execute(text(f"INSERT INTO {table} (number, supplier_id, location_id, status, created_at) "
                              "VALUES (:n, 1, 1, 'posted', '2026-11-26 01:00:00')"), {"n": number})
        conn.execute(text("INSERT INTO transfers (number, from_location_id, to_location_id, status, created_at) "
                          "VALUES ('TR-20261126-003', 1, 2, 'draft', '2026-11-26 01:00:00')"))
    plain.dispose()

    upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            assert take_number(s, "H1", DAY) == 42
            assert take_number(s, "R-H1", DAY) == 3
            assert take_number(s, "H1", DAY - dt.timedelta(days=1)) == 91
            assert next_document_number(s, GoodsReceipt, DAY) == "GR-20261126-013"
            assert next_document_number(s, GoodsReceipt, DAY - dt.timedelta(days=1)) == "GR-20261125-004"
            assert next_document_number(s, Transfer, DAY) == "TR-20261126-004"
            assert next_document_number(s, StockCount, DAY) == "CT-20261126-001"
            s.commit()
    finally:
        engine.dispose()

    downgrade(url, "0008")  # the sales' counters go back where they were
    plain = create_engine(url)
    with plain.connect() as conn:
        rows = conn.execute(text("SELECT prefix, day, last_no FROM receipt_counters ORDER BY prefix, day")).all()
    plain.dispose()
    assert [tuple(map(str, r)) for r in rows] == [("H1", "2026-11-25", "91"), ("H1", "2026-11-26", "42"),
                                                  ("R-H1", "2026-11-26", "3")]
