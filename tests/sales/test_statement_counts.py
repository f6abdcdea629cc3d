"""How many SQL statements a checkout and a counter batch take (issue 16: the code before it ran 42
for the 3-line sale below and 288 for ten counter sales, now a constant per part of a batch), counted with a ``before_cursor_execute``
listener — deterministic, unlike a time — and that the batched stock path (ledger.post_moves,
FEFO for the whole basket) still does what the one-move-at-a-time path did."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from inventory import ledger
from inventory.models import Alert, AlertKind, MoveReason, StockMove
from kiosks import registry
from kiosks.ingest import ingest_sales
from pos.models import Sale
from pos.core.db import session_scope
from pos.sales import service
from pos.sales.pricing import LineIn
from tests.fixtures.counters import seed_counters, sale
from tests.fixtures.sales import cash_sale, hall  # noqa: F401  (fixture)
from tests.fixtures.stock import engine, world  # noqa: F401  (fixtures)


def sqlite(bind) -> bool:
    return bind.dialect.name == "sqlite"


@contextmanager
def counted(bind):
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(bind, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(bind, "before_cursor_execute", count)


def test_a_three_line_sale_takes_few_statements_and_moves_stock_as_before(hall, engine):
    # tea: 3 pieces from two lots (2 in the early lot, 1 in the late); honey: none on the books
    # (the level goes below zero: a sale is never refused, an alert is opened); pork: 1.234 kg.
    lines = [LineIn(hall.pork_id, 1234), LineIn(hall.tea_id, 3000), LineIn(hall.honey_id, 1000)]
    amount = 3800 * 1234 // 1000 + 3 * 16800 + 5800
    with hall.session() as s, counted(engine) as statements:
        result = service.record_sale(s, cash_sale(hall, lines, amount=amount, client_sale_id="count-1"))
        s.commit()
    # The code before issue 16 ran 42 statements for this sale; now 28: the batched path, with
    # the till and its shift read in one statement; the negative-stock alert inserts its moves one
    # by one, to name the one that went below zero, and reads each product it names (the checkout
    # loads no Product into the session; see the next test).
    assert len(statements) <= (25 if sqlite(engine) else 28), statements  # no savepoint on SQLite
    with hall.session() as s:
        moves = s.execute(select(StockMove.product_id, StockMove.lot_id, StockMove.qty_milli)
                          .where(StockMove.ref_type == "sale", StockMove.ref_id == result.sale_id)
                          .order_by(StockMove.id)).all()
        assert sorted(moves, key=lambda m: (m[0], m[1] or 0)) == sorted([
            (hall.tea_id, hall.early_lot, 2000), (hall.tea_id, hall.late_lot, 1000),
            (hall.honey_id, None, 1000), (hall.pork_id, None, 1234)], key=lambda m: (m[0], m[1] or 0))
        assert ledger.lot_level(s, hall.hall, hall.early_lot) == 0
        assert ledger.lot_level(s, hall.hall, hall.late_lot) == 9000
        assert ledger.level(s, hall.hall, hall.honey_id) == -1000
        assert ledger.level(s, hall.hall, hall.pork_id) == -1234
        negative = s.execute(select(Alert.product_id, Alert.ref_id).where(Alert.kind == AlertKind.NEGATIVE_STOCK)).all()
        honey_move = s.scalar(select(StockMove.id).where(StockMove.ref_id == result.sale_id,
                                                         StockMove.product_id == hall.honey_id))
        assert (hall.honey_id, honey_move) in negative


def test_a_sale_of_goods_on_hand_reads_in_five_statements_and_loads_nothing_into_the_session(hall, engine):
    # The reads: the idempotency key, the settings, the till with its shift, the products with
    # their supplier, the certificates. Then the writes, the lot choice and the level upserts.
    with hall.session() as s, counted(engine) as statements:
        result = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 3000)], amount=3 * 16800,
                                                  client_sale_id="count-2", shift_id=hall.shift_id))
        assert len(s.identity_map) == 0 and not s.new  # Core rows, not ORM objects: no autoflush work
        s.commit()
    first_write = next(i for i, q in enumerate(statements) if q.startswith(("SAVEPOINT", "INSERT")))
    reads = [q for q in statements[:first_write] if q.startswith("SELECT")]
    assert len(reads) == 5, reads
    # 20 before the till and its shift were one statement, 19 with the savepoint around the claim,
    # which SQLite's writer no longer needs (it has held the write lock since BEGIN IMMEDIATE).
    assert len(statements) <= (16 if sqlite(engine) else 19), statements
    assert not any(q.startswith("SAVEPOINT") for q in statements) or not sqlite(engine)
    with hall.session() as s:
        sale = s.get(Sale, result.sale_id)
        assert (sale.shift_id, sale.till_id, sale.after_shift_closed) == (hall.shift_id, hall.till_id, False)
        line = sale.lines[0]
        assert (line.certified, line.certificate_no, line.supplier_name, line.origin_county_code, line.vat) == \
            (True, "黔扶认〔2026〕0001", "松桃梵净山翠峰茶业有限公司", "520628", "9")  # origin: the supplier's
        assert ledger.lot_level(s, hall.hall, hall.early_lot) == 0
        assert ledger.lot_level(s, hall.hall, hall.late_lot) == 9000


def test_one_product_on_two_lines_takes_the_second_from_what_the_first_left(hall):
    with hall.session() as s:
        service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000), LineIn(hall.tea_id, 2000)],
                                         amount=3 * 16800))
        s.commit()
        assert ledger.lot_level(s, hall.hall, hall.early_lot) == 0
        assert ledger.lot_level(s, hall.hall, hall.late_lot) == 9000
        assert ledger.unbalanced(s) == []


def test_post_moves_refuses_a_guarded_move_that_would_go_below_zero(hall):
    with hall.session() as s:
        with pytest.raises(ledger.InsufficientStock):
            ledger.post_moves(s, [
                ledger.MoveIn(product_id=hall.tea_id, qty_milli=1000, from_location_id=hall.hall,
                              to_location_id=hall.world.loc["HALL-STORE"], reason=MoveReason.TRANSFER,
                              lot_id=hall.early_lot),
                ledger.MoveIn(product_id=hall.tea_id, qty_milli=99000, from_location_id=hall.hall,
                              to_location_id=hall.world.loc["HALL-STORE"], reason=MoveReason.TRANSFER,
                              lot_id=hall.late_lot)])
        s.rollback()
        assert ledger.level(s, hall.hall, hall.tea_id) == 12000


def test_a_counter_part_takes_a_few_statements_whatever_its_number_of_sales(app):
    fleet = seed_counters(app)

    def part(sales) -> int:
        with app.test_request_context(), session_scope(app) as s, \
                counted(app.extensions["songtao.engine"]) as statements:
            result = ingest_sales(s, registry.get_kiosk(s, "K001"), sales)
        assert len(result["accepted"]) == len(sales)
        return len(statements)

    ten = part([sale(f"T-{n}", [{"slot": "A1", "qty": 1, "unit_price_fen": 3800},
                                {"slot": "A2", "qty": 1, "unit_price_fen": 1280}]) for n in range(10)])
    # The code before issue 16 ran 288 statements for these ten sales, 178 with a savepoint and a
    # record_sale per sale; the part judged whole and written together runs 22 on SQLite: the
    # batch's reads, the part's txn_ids, products, certificates, settings and places, then one
    # statement each for the numbers, sales, lines, daily figures, payments, lots (with their
    # products), levels, lot levels, moves and the counter's last sale.
    assert ten <= 24, ten
    five = part([sale(f"U-{n}", [{"slot": "A1", "qty": 1, "unit_price_fen": 3800}],
                      sold_at="2026-11-26T11:00:00+08:00") for n in range(5)])
    assert five == ten  # a constant per part, not a number per sale
    with app.app_context(), session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(StockMove).where(StockMove.ref_type == "sale")) == 25
        assert ledger.level(s, fleet["locations"]["K001"], fleet["products"]["KT-TEA"]) == 5000
        assert ledger.unbalanced(s) == []
