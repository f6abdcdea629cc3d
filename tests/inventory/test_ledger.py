"""The stock ledger (inventory.ledger.move, and post_moves for many moves at once): its rules one
by one, then its invariants under hypothesis-generated sequences of moves and batches of moves on
the real test database (SQLite or PostgreSQL):

- per product, all locations add up to zero;
- every stock level equals the sum of the ledger's moves into and out of that location
  (computed by the database from stock_moves), and so does every lot level;
- no real location is below zero except by a sale (allowed to outrun the books);
- a refused move writes nothing;
- a batch is refused exactly when posting its moves one after the other would refuse one.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from inventory.errors import InventoryError
from inventory.ledger import InsufficientStock, MoveIn, StockError, level, move, post_moves
from inventory.models import Alert, AlertKind, Lot, MoveReason, StockMove, Unit
from tests.fixtures.stock import (  # noqa: F401  (fixtures)
    engine,
    level_of,
    levels,
    lot_levels,
    lot_moves_by_location,
    move_count,
    moves_by_location,
    s,
    world,
)

REAL = ("HALL", "HALL-STORE", "BASE")
VIRTUAL = ("SUPPLIER", "CUSTOMER", "LOSS", "COUNT-ADJ")


def test_stock_error_is_an_inventory_error_with_a_chinese_message(world, s):
    tea = world.product(s, "梵净山翠峰茶 250g")
    with pytest.raises(InsufficientStock) as refused:
        move(s, product_id=tea.id, qty_milli=1000, from_location_id=world.loc["BASE"],
             to_location_id=world.loc["HALL"], reason=MoveReason.TRANSFER)
    assert isinstance(refused.value, InventoryError) and isinstance(refused.value, ValueError)
    assert "梵净山翠峰茶 250g" in str(refused.value) and "库存不足" in str(refused.value)


def test_refused_moves_write_nothing(world, s):
    tea = world.product(s)
    other = world.product(s, "苗家腊肉 500g")
    lot = Lot(product_id=tea.id, lot_no="A1", expires_on=dt.date(2027, 1, 1))
    lot_of_other = Lot(product_id=other.id, lot_no="B1")
    s.add_all([lot, lot_of_other])
    s.flush()
    move(s, product_id=tea.id, qty_milli=5000, from_location_id=world.loc["SUPPLIER"],
         to_location_id=world.loc["BASE"], reason=MoveReason.RECEIPT)  # 5 unlotted pieces
    move(s, product_id=tea.id, qty_milli=2000, lot_id=lot.id, from_location_id=world.loc["SUPPLIER"],
         to_location_id=world.loc["BASE"], reason=MoveReason.RECEIPT)  # and 2 of lot A1
    before = (move_count(s), levels(s, [tea.id]), lot_levels(s, [lot.id]))
    attempts = [
        # the product has 7 at the base, but lot A1 only 2: the product debit must not stay behind
        dict(qty_milli=3000, lot_id=lot.id, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"]),
        dict(qty_milli=8000, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"]),
        dict(qty_milli=0, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"]),
        dict(qty_milli=-1000, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"]),
        dict(qty_milli=1000, from_location_id=world.loc["BASE"], to_location_id=world.loc["BASE"]),
        dict(qty_milli=1000, lot_id=lot_of_other.id, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"]),
        dict(qty_milli=1000, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"], allow_negative_source=True),
    ]
    for kw in attempts:
        with pytest.raises(StockError):
            move(s, product_id=tea.id, reason=MoveReason.TRANSFER, **kw)
        assert (move_count(s), levels(s, [tea.id]), lot_levels(s, [lot.id])) == before, kw
    s.commit()
    assert (move_count(s), levels(s, [tea.id]), lot_levels(s, [lot.id])) == before


def test_post_moves_posts_guarded_moves_with_a_few_statements_and_refuses_as_move_does(world, s, engine):
    """Transfers, refills and the demo post many guarded moves at once: the statements do not grow
    with the moves, the reserved stock is kept, and a refusal names what ``move`` names."""
    from sqlalchemy import event
    from inventory.reservations import reserve

    goods = [world.product(s, f"测试商品{i}") for i in range(8)]
    base, hall, store = world.loc["BASE"], world.loc["HALL"], world.loc["HALL-STORE"]
    post_moves(s, [MoveIn(product_id=p.id, qty_milli=10_000, from_location_id=world.loc["SUPPLIER"],
                          to_location_id=base, reason=MoveReason.RECEIPT) for p in goods])
    reserve(s, location_id=base, product_id=goods[0].id, qty_milli=4000)

    def statements(moves) -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            post_moves(s, moves)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    two = statements([MoveIn(product_id=p.id, qty_milli=1000, from_location_id=base, to_location_id=hall,
                             reason=MoveReason.TRANSFER) for p in goods[:2]])
    eight = statements([MoveIn(product_id=p.id, qty_milli=1000, from_location_id=base, to_location_id=target,
                               reason=MoveReason.TRANSFER) for p in goods for target in (hall, store)])
    assert eight == two <= 5, (two, eight)  # savepoint, places not seen yet, levels, moves, release
    assert level(s, base, goods[0].id) == 7000 and level(s, base, goods[7].id) == 8000
    assert level(s, hall, goods[0].id) == 2000 and level(s, store, goods[7].id) == 1000
    # 7 on the books, 4 of them reserved: 3 may go, not 4; the batch before the refusal is as move left it
    rows = move_count(s)
    with pytest.raises(InsufficientStock) as refused:
        post_moves(s, [MoveIn(product_id=goods[0].id, qty_milli=3000, from_location_id=base, to_location_id=hall,
                              reason=MoveReason.TRANSFER),
                       MoveIn(product_id=goods[0].id, qty_milli=1000, from_location_id=base, to_location_id=hall,
                              reason=MoveReason.TRANSFER)])
    assert "团购订单预留" in str(refused.value) and "测试商品0" in str(refused.value)
    assert move_count(s) == rows + 1 and level(s, base, goods[0].id) == 4000


def test_a_sale_may_outrun_the_books_and_opens_one_alert(world, s):
    tea = world.product(s, "苗家腊肉 500g")
    hall, customer = world.loc["HALL"], world.loc["CUSTOMER"]
    move(s, product_id=tea.id, qty_milli=1000, from_location_id=world.loc["SUPPLIER"], to_location_id=hall,
         reason=MoveReason.RECEIPT)
    for _ in range(3):
        move(s, product_id=tea.id, qty_milli=1000, from_location_id=hall, to_location_id=customer,
             reason=MoveReason.SALE, allow_negative_source=True)
    s.commit()
    assert level(s, hall, tea.id) == -2000
    alerts = s.scalars(select(Alert).where(Alert.kind == AlertKind.NEGATIVE_STOCK, Alert.product_id == tea.id)).all()
    assert len(alerts) == 1
    assert alerts[0].location_id == hall and alerts[0].resolved_at is None
    assert "苗家腊肉 500g" in alerts[0].message and "-1" in alerts[0].message


def test_weighed_goods_move_in_grams(world, s):
    rice = world.product(s, "散装松桃红米", unit=Unit.KG, sold_by_weight=True)
    move(s, product_id=rice.id, qty_milli=5000, from_location_id=world.loc["SUPPLIER"],
         to_location_id=world.loc["HALL"], reason=MoveReason.RECEIPT)
    r = move(s, product_id=rice.id, qty_milli=523, from_location_id=world.loc["HALL"],
             to_location_id=world.loc["CUSTOMER"], reason=MoveReason.SALE, allow_negative_source=True)
    assert (r.from_level_milli, r.to_level_milli) == (4477, None)  # the customer keeps no level row
    assert level(s, world.loc["CUSTOMER"], rice.id) == 523  # its level is the sum of its moves
    with pytest.raises(InsufficientStock) as refused:
        move(s, product_id=rice.id, qty_milli=4478, from_location_id=world.loc["HALL"],
             to_location_id=world.loc["LOSS"], reason=MoveReason.WRITE_OFF)
    assert "4.477" in str(refused.value) and "4.478" in str(refused.value)


def test_ledger_invariants_under_random_moves(world):
    """A rule-based state machine: each example gets fresh products and lots (the locations are
    the hall's), makes up to 30 random moves, some of which the rules refuse, and after every
    step the invariants are checked against the database and a model of what should be there."""
    loc = world.loc
    real_ids = {loc[c] for c in REAL}

    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def fresh_rows(self):
            self.s = world.Session()
            self.pids = [world.product(self.s, f"测试商品{i}").id for i in range(2)]
            self.lots: dict[int, list[int]] = {}
            for pid in self.pids:
                lots = [Lot(product_id=pid, lot_no="L1", expires_on=dt.date(2027, 3, 1)),
                        Lot(product_id=pid, lot_no="L2")]
                self.s.add_all(lots)
                self.s.flush()
                self.lots[pid] = [lot.id for lot in lots]
            self.s.commit()
            self.all_lots = [lot for lots in self.lots.values() for lot in lots]
            self.model: Counter = Counter()       # (location, product) → qty
            self.lot_model: Counter = Counter()   # (location, lot) → qty
            self.sold_from: set = set()           # (location, product) a sale took from
            self.moves = 0                        # moves of these products in the ledger

        def teardown(self):
            if not hasattr(self, "s"):
                return
            try:
                # at the end of each example: the levels are the ledger's moves, summed by the
                # database (after every step they are checked against the model, below)
                self.s.rollback()
                assert levels(self.s, self.pids) == moves_by_location(self.s, self.pids)
                assert lot_levels(self.s, self.all_lots) == lot_moves_by_location(self.s, self.all_lots)
            finally:
                self.s.close()

        def ledger_rows(self) -> int:
            return self.s.scalar(select(func.count()).select_from(StockMove).where(StockMove.product_id.in_(self.pids)))

        @rule(p=st.integers(0, 1), lot=st.sampled_from([None, None, 0, 1]),
              src=st.sampled_from(REAL + VIRTUAL), dst=st.sampled_from(REAL + VIRTUAL),
              qty=st.one_of(st.integers(1, 6).map(lambda n: n * 1000), st.integers(-1000, 3000)),
              sale=st.booleans())
        def a_move(self, p, lot, src, dst, qty, sale):
            pid = self.pids[p]
            lot_id = None if lot is None else self.lots[pid][lot]
            s_id, d_id = loc[src], loc[dst]
            guarded = s_id in real_ids and not sale
            refused = (
                qty <= 0 or s_id == d_id
                or (guarded and self.model[(s_id, pid)] < qty)
                or (guarded and lot_id is not None and self.lot_model[(s_id, lot_id)] < qty)
            )
            try:
                move(self.s, product_id=pid, qty_milli=qty, from_location_id=s_id, to_location_id=d_id,
                     lot_id=lot_id, reason=MoveReason.SALE if sale else MoveReason.TRANSFER,
                     allow_negative_source=sale)
            except StockError:
                assert refused, "the ledger refused a move the rules allow"
                # nothing written: no move here, and the levels are checked against the
                # unchanged model by the invariant below
                assert self.ledger_rows() == self.moves, "a refused move wrote a move"
            else:
                assert not refused, "the ledger allowed a move the rules refuse"
                self.moves += 1
                self.model[(s_id, pid)] -= qty
                self.model[(d_id, pid)] += qty
                if lot_id is not None:
                    self.lot_model[(s_id, lot_id)] -= qty
                    self.lot_model[(d_id, lot_id)] += qty
                if sale:
                    self.sold_from.add((s_id, pid))
            self.s.commit()

        @rule(batch=st.lists(st.tuples(st.integers(0, 1), st.sampled_from([None, 0, 1]),
                                       st.sampled_from(REAL + VIRTUAL), st.sampled_from(REAL + VIRTUAL),
                                       st.integers(1, 6).map(lambda n: n * 1000), st.booleans()),
                             min_size=1, max_size=5))
        def a_batch(self, batch):
            """post_moves: guarded moves are checked against the level each leaves in the batch's
            order (a credit earlier in the batch may pay for a debit later in it)."""
            moves, model, lot_model, refused = [], Counter(self.model), Counter(self.lot_model), False
            for p, lot, src, dst, qty, sale in batch:
                pid = self.pids[p]
                lot_id = None if lot is None else self.lots[pid][lot]
                s_id, d_id = loc[src], loc[dst]
                if s_id == d_id:
                    d_id = loc["LOSS"] if s_id != loc["LOSS"] else loc["SUPPLIER"]
                guarded = s_id in real_ids and not sale
                refused = refused or (guarded and (model[(s_id, pid)] < qty
                                                   or (lot_id is not None and lot_model[(s_id, lot_id)] < qty)))
                model[(s_id, pid)] -= qty
                model[(d_id, pid)] += qty
                if lot_id is not None:
                    lot_model[(s_id, lot_id)] -= qty
                    lot_model[(d_id, lot_id)] += qty
                moves.append((MoveIn(product_id=pid, qty_milli=qty, from_location_id=s_id, to_location_id=d_id,
                                     lot_id=lot_id, reason=MoveReason.SALE if sale else MoveReason.TRANSFER,
                                     allow_negative_source=sale), sale))
            try:
                post_moves(self.s, [m for m, _ in moves])
            except StockError:
                assert refused, "post_moves refused a batch the rules allow one move after the other"
                self.s.rollback()  # the caller's transaction is all or nothing (a transfer's is)
                assert self.ledger_rows() == self.moves
            else:
                assert not refused, "post_moves allowed a batch the rules refuse"
                self.moves += len(moves)
                self.model, self.lot_model = model, lot_model
                self.sold_from.update((m.from_location_id, m.product_id) for m, sale in moves if sale)
            self.s.commit()

        @invariant()
        def ledger_invariants(self):
            if not hasattr(self, "s"):
                return
            lv = levels(self.s, self.pids)
            lots = lot_levels(self.s, self.all_lots)
            # per product (and per lot), all locations add up to zero
            per_product, per_lot = Counter(), Counter()
            for (_, pid), qty in lv.items():
                per_product[pid] += qty
            for (_, lot), qty in lots.items():
                per_lot[lot] += qty
            assert not +per_product and not -per_product, per_product
            assert not +per_lot and not -per_lot, per_lot
            # the levels are what the rules allow
            assert lv == {k: v for k, v in self.model.items() if v}
            assert lots == {k: v for k, v in self.lot_model.items() if v}
            # a real location is below zero only where a sale took it there
            for (loc_id, pid), qty in lv.items():
                if loc_id in real_ids and qty < 0:
                    assert (loc_id, pid) in self.sold_from

    run_state_machine_as_test(
        LedgerMachine, settings=settings(max_examples=30, stateful_step_count=20, deadline=None)
    )


def test_moves_of_a_refused_lot_debit_leave_no_product_debit_on_postgres_and_sqlite(world, s):
    """The lot debit is the second of two guarded updates; its refusal rolls back the first."""
    tea = world.product(s)
    lot = Lot(product_id=tea.id, lot_no="X")
    s.add(lot)
    s.flush()
    move(s, product_id=tea.id, qty_milli=3000, from_location_id=world.loc["SUPPLIER"],
         to_location_id=world.loc["BASE"], reason=MoveReason.RECEIPT)
    with pytest.raises(InsufficientStock) as refused:
        move(s, product_id=tea.id, qty_milli=1000, lot_id=lot.id, from_location_id=world.loc["BASE"],
             to_location_id=world.loc["HALL"], reason=MoveReason.TRANSFER)
    assert "批次 X" in str(refused.value)
    assert level_of(s, world.loc["BASE"], tea.id) == 3000
    assert s.scalar(select(func.count()).select_from(Alert)) == 0
