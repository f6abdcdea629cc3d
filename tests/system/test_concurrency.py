"""Concurrent tills and managers on the real database (SQLite with BEGIN IMMEDIATE and a busy
timeout, or PostgreSQL): no sale is lost, no transfer takes the last units twice."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from inventory import counts, transfers
from inventory.documents import DocStatus, Transfer
from inventory.ledger import InsufficientStock, move
from inventory.models import Alert, AlertKind, MoveReason, StockMove
from tests.fixtures.stock import engine, level_of, s, world  # noqa: F401  (fixtures)
from tests.fixtures.threads import run_threads

THREADS = 8
SALES_EACH = 50


def _receive(world, product_id: int, location: str, qty_milli: int) -> None:
    with world.Session() as s:
        move(s, product_id=product_id, qty_milli=qty_milli, from_location_id=world.loc["SUPPLIER"],
             to_location_id=world.loc[location], reason=MoveReason.RECEIPT)
        s.commit()


def _sell_concurrently(world, product_id: int) -> list[BaseException]:
    hall, customer = world.loc["HALL"], world.loc["CUSTOMER"]

    def till(_i: int) -> None:
        for _ in range(SALES_EACH):
            with world.Session() as s:  # one session and one transaction per sale
                move(s, product_id=product_id, qty_milli=1000, from_location_id=hall, to_location_id=customer,
                     reason=MoveReason.SALE, allow_negative_source=True, ref_type="test")
                s.commit()

    return run_threads(till, THREADS)


def test_eight_tills_selling_the_same_product_lose_no_sale(world, s):
    tea = world.product(s, "梵净山翠峰茶 250g")
    s.commit()
    s.close()  # on SQLite a session that so much as reads holds the write lock (BEGIN IMMEDIATE)
    _receive(world, tea.id, "HALL", 1000 * 1000)

    assert _sell_concurrently(world, tea.id) == []

    sold = THREADS * SALES_EACH * 1000
    assert level_of(s, world.loc["HALL"], tea.id) == 1000 * 1000 - sold
    assert level_of(s, world.loc["CUSTOMER"], tea.id) == sold
    assert s.scalar(select(func.count()).select_from(StockMove).where(
        StockMove.product_id == tea.id, StockMove.reason == MoveReason.SALE)) == THREADS * SALES_EACH


def test_sales_that_outrun_the_books_concurrently_open_one_alert(world, s):
    tea = world.product(s, "苗家腊肉 500g")
    s.commit()
    s.close()
    _receive(world, tea.id, "HALL", 100 * 1000)

    assert _sell_concurrently(world, tea.id) == []

    assert level_of(s, world.loc["HALL"], tea.id) == (100 - THREADS * SALES_EACH) * 1000
    alerts = s.scalars(select(Alert).where(Alert.kind == AlertKind.NEGATIVE_STOCK, Alert.product_id == tea.id)).all()
    assert len(alerts) == 1


def test_two_managers_transferring_the_last_units_at_once(world, s):
    """Both press "post" at the same moment on transfers of the same last 5 pieces: exactly one
    succeeds, the other is refused with nothing written, and the base never goes below zero."""
    tea_id = world.product(s, "梵净山红茶 200g").id
    s.commit()
    s.close()  # on SQLite a session that so much as reads holds the write lock (BEGIN IMMEDIATE)
    base, hall, store = world.loc["BASE"], world.loc["HALL"], world.loc["HALL-STORE"]
    for _ in range(5):  # five rounds, to give the race every chance
        _receive(world, tea_id, "BASE", 5000)
        with world.Session() as ss:
            ids = [transfers.create_transfer(ss, from_location_id=base, to_location_id=to,
                                             lines=[{"product_id": tea_id, "qty_milli": 5000}],
                                             actor_id=world.manager_id).id for to in (hall, store)]
            ss.commit()
        outcomes: dict[int, str] = {}

        def manager(i: int) -> None:
            with world.Session() as ss:
                try:
                    transfers.post_transfer(ss, ids[i], actor_id=world.manager_id)
                    ss.commit()
                    outcomes[i] = "posted"
                except InsufficientStock as exc:
                    ss.rollback()
                    outcomes[i] = str(exc)

        assert run_threads(manager, 2) == []
        assert sorted(o == "posted" for o in outcomes.values()) == [False, True], outcomes
        refused = next(o for o in outcomes.values() if o != "posted")
        assert "梵净山红茶 200g" in refused and "库存不足" in refused
        with world.Session() as check:
            assert level_of(check, base, tea_id) == 0
            statuses = sorted(check.scalars(select(Transfer.status).where(Transfer.id.in_(ids))))
            assert statuses == sorted([DocStatus.DRAFT, DocStatus.POSTED])
    with world.Session() as check:
        assert level_of(check, hall, tea_id) + level_of(check, store, tea_id) == 25000


def test_a_transfer_waiting_for_another_sees_what_it_left(world, s):
    """A deterministic interleaving: the first transfer has taken the units but not committed yet
    when the second one posts; the second waits for the first, then is refused."""
    tea_id = world.product(s, "乌罗毛尖 250g").id
    s.commit()
    s.close()
    base, hall, store = world.loc["BASE"], world.loc["HALL"], world.loc["HALL-STORE"]
    _receive(world, tea_id, "BASE", 3000)
    with world.Session() as ss:
        first, second = (transfers.create_transfer(ss, from_location_id=base, to_location_id=to,
                                                   lines=[{"product_id": tea_id, "qty_milli": 3000}], actor_id=None).id
                         for to in (hall, store))
        ss.commit()
    first_posted = threading.Event()
    result: dict[str, object] = {}

    def slow_first() -> None:
        with world.Session() as ss:
            transfers.post_transfer(ss, first, actor_id=None)
            first_posted.set()
            threading.Event().wait(0.3)  # hold the row while the second one tries
            ss.commit()

    def second_try() -> None:
        first_posted.wait(10)
        with world.Session() as ss:
            try:
                transfers.post_transfer(ss, second, actor_id=None)
                ss.commit()
                result["second"] = "posted"
            except InsufficientStock as exc:
                result["second"] = exc

    threads = [threading.Thread(target=slow_first), threading.Thread(target=second_try)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(result["second"], InsufficientStock)
    with world.Session() as check:
        assert level_of(check, base, tea_id) == 0 and level_of(check, hall, tea_id) == 3000
        assert check.get(Transfer, second).status == DocStatus.DRAFT


def test_a_line_counted_while_the_count_is_posted_is_not_lost(world, s):
    """A tablet records a line (not yet committed) as the manager presses "post": the posting
    waits for the line and adjusts it too, rather than posting without it and leaving a line in a
    posted count that never reached the books."""
    tea_id = world.product(s, "梵净山蜂蜜 500g").id
    s.commit()
    s.close()
    hall = world.loc["HALL"]
    _receive(world, tea_id, "HALL", 5000)
    with world.Session() as ss:
        count_id = counts.start_count(ss, location_id=hall, actor_id=None).id
        ss.commit()
    line_recorded = threading.Event()
    errors: list[BaseException] = []

    def tablet() -> None:
        try:
            with world.Session() as ss:
                counts.record_count_line(ss, count_id, product_id=tea_id, counted_qty_milli=3000, actor_id=None)
                line_recorded.set()
                threading.Event().wait(0.3)  # the manager presses "post" now
                ss.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            line_recorded.set()

    def manager() -> None:
        try:
            line_recorded.wait(10)
            with world.Session() as ss:
                counts.post_count(ss, count_id, reason="月末盘点", actor_id=None)
                ss.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=tablet), threading.Thread(target=manager)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with world.Session() as check:
        assert level_of(check, hall, tea_id) == 3000
        assert [(r["counted"], r["variance"]) for r in counts.count_variances(check, count_id)] == [(3000, -2000)]
