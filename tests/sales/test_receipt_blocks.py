"""Reserved receipt numbers in the sales service (pos.sales.receipt_blocks, issue 14 point 4): a block
is a run of the day's receipt counter (inventory.documents.take_numbers), a block for tomorrow serves
the sales made after midnight and no earlier one, and concurrent tills never get overlapping numbers
or use one number twice (run on SQLite and on PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from inventory.documents import STOCK_NUMBERS, take_number, take_numbers
from inventory.localtime import HALL_TZ, day_start_utc, local_date, local_today, utcnow
from pos.core.errors import PosError
from pos.models import ReceiptBlock, Sale, Till
from pos.sales import service
from pos.sales.pricing import LineIn
from pos.sales.receipt_blocks import reserve_block, unused_numbers
from tests.fixtures.sales import cash_sale, hall  # noqa: F401  (fixture)
from tests.fixtures.stock import engine, s, world  # noqa: F401  (fixtures)
from tests.fixtures.threads import run_threads


def _honey_sale(hall, **kw):
    return cash_sale(hall, [LineIn(hall.honey_id, 1000)], amount=5800, **kw)


def test_take_numbers_takes_a_run_of_the_counter_take_number_uses(s):
    day = dt.date(2026, 12, 5)
    assert take_number(s, "H1", day) == 1
    assert take_numbers(s, "H1", day, 20) == 21        # 2 … 21
    assert take_number(s, "H1", day) == 22
    assert take_numbers(s, "H1", day + dt.timedelta(days=1), 5) == 5   # a day of its own
    assert take_numbers(s, "H1", day, 1, kind=STOCK_NUMBERS) == 1       # and a kind of its own
    for bad in (0, -3, True, 2.0):
        with pytest.raises(ValueError):
            take_numbers(s, "H1", day, bad)
    assert take_number(s, "H1", day) == 23


def test_a_block_for_tomorrow_serves_a_sale_after_midnight_and_no_earlier_one(hall, s):
    """Reserved yesterday evening for today (the till tops up before closing); the network is down
    over midnight. The sale at 23:59 cannot take tomorrow's number, the one after midnight does."""
    today = local_today()
    yesterday = today - dt.timedelta(days=1)
    till = s.get(Till, hall.till_id)
    numbers = reserve_block(s, till, today, 5, hall.cashier_id, today=yesterday)  # tomorrow, seen from yesterday
    assert numbers == [f"H1-{today:%Y%m%d}-{n:04d}" for n in range(1, 6)]
    s.commit()

    before_midnight = dt.datetime.combine(yesterday, dt.time(23, 59), tzinfo=HALL_TZ)
    with pytest.raises(PosError) as refused:
        service.record_sale(s, _honey_sale(hall, client_sale_id="offline-2359", sold_at=before_midnight,
                                           receipt_no=numbers[0]))
    assert refused.value.field == "receipt_no" and numbers[0] in str(refused.value)
    s.rollback()
    assert s.scalar(select(Sale.id)) is None

    after_midnight = min(day_start_utc(today) + dt.timedelta(seconds=30), utcnow())
    sold = service.record_sale(s, _honey_sale(hall, client_sale_id="offline-0000", sold_at=after_midnight,
                                              receipt_no=numbers[0]))
    s.commit()
    assert sold.created and sold.receipt_no == numbers[0]
    sale = s.get(Sale, sold.sale_id)
    assert (sale.receipt_no, sale.local_date) == (numbers[0], today)
    assert unused_numbers(s, till, today) == numbers[1:]
    # the 23:59 sale, numbered by the server: yesterday's counter
    late = service.record_sale(s, _honey_sale(hall, client_sale_id="offline-2359", sold_at=before_midnight))
    assert late.receipt_no == f"H1-{yesterday:%Y%m%d}-0001"
    # and today's ordinary sales go on after the block
    assert service.record_sale(s, _honey_sale(hall, sold_at=utcnow())).receipt_no == f"H1-{today:%Y%m%d}-0006"


def test_only_hall_sales_bring_a_receipt_number(hall, s):
    till = s.get(Till, hall.till_id)
    number = reserve_block(s, till, local_today(), 1, hall.cashier_id)[0]
    sale = service.SaleIn(channel="group", location_id=hall.hall, lines=[LineIn(hall.honey_id, 1000)],
                          buyer_type="union", receipt_no=number, sold_at=utcnow())
    with pytest.raises(PosError) as refused:
        service.record_sale(s, sale)
    assert refused.value.field == "receipt_no"


def test_two_threads_reserving_for_one_till_at_once_never_overlap(hall, s):
    s.close()  # on SQLite a session that so much as reads holds the write lock (BEGIN IMMEDIATE)
    today = local_today()
    rounds = 15
    got: dict[int, list[list[str]]] = {0: [], 1: []}

    def reserve(i: int) -> None:
        for n in range(rounds):
            with hall.session() as ss:
                till = ss.get(Till, hall.till_id)
                got[i].append(reserve_block(ss, till, today, 3 + (n + i) % 5, hall.cashier_id))
                ss.commit()

    assert run_threads(reserve, 2) == []

    numbers = [n for blocks in got.values() for block in blocks for n in block]
    assert len(numbers) == len(set(numbers))
    assert sorted(int(n.rsplit("-", 1)[1]) for n in numbers) == list(range(1, len(numbers) + 1))
    for blocks in got.values():  # each block is a run of consecutive numbers
        for block in blocks:
            runs = [int(n.rsplit("-", 1)[1]) for n in block]
            assert runs == list(range(runs[0], runs[0] + len(runs)))
    with hall.session() as ss:
        rows = ss.execute(select(ReceiptBlock.first_no, ReceiptBlock.last_no).order_by(ReceiptBlock.first_no)).all()
        assert len(rows) == 2 * rounds
        assert all(a.last_no < b.first_no for a, b in zip(rows, rows[1:]))


def test_sales_and_reservations_at_once_never_share_a_number(hall, s):
    s.close()
    today = local_today()
    got: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        for n in range(10):
            with hall.session() as ss:
                if i == 0:
                    taken = reserve_block(ss, ss.get(Till, hall.till_id), today, 4, hall.cashier_id)
                else:
                    taken = [service.record_sale(ss, _honey_sale(hall, client_sale_id=f"race-{i}-{n}",
                                                                 sold_at=utcnow())).receipt_no]
                ss.commit()
            with lock:
                got.extend(taken)

    assert run_threads(work, 3) == []
    assert len(got) == 10 * 4 + 2 * 10 == len(set(got))
    assert sorted(int(n.rsplit("-", 1)[1]) for n in got) == list(range(1, len(got) + 1))


def test_two_sales_claiming_one_reserved_number_at_once(hall, s):
    """Both pass the check before either is written: the unique receipt number refuses the second,
    which is told the number is used (422), never a 500; the first is recorded once."""
    till = s.get(Till, hall.till_id)
    number = reserve_block(s, till, local_today(), 2, hall.cashier_id)[0]
    s.commit()
    s.close()
    results: dict[int, object] = {}
    attempt = [0]

    def sell(i: int) -> None:
        with hall.session() as ss:
            try:
                results[i] = service.record_sale(ss, _honey_sale(hall, client_sale_id=f"claim-{attempt[0]}-{i}",
                                                                 sold_at=utcnow(), receipt_no=number))
                ss.commit()
            except PosError as refused:
                ss.rollback()
                results[i] = refused

    for attempt[0] in range(3):
        results.clear()
        assert run_threads(sell, 2) == []
        outcomes = sorted(type(r).__name__ for r in results.values())
        if attempt[0] == 0:
            assert outcomes == ["PosError", "SaleResult"], results
        else:  # the number is used: both refused
            assert outcomes == ["PosError", "PosError"], results
        for r in results.values():
            if isinstance(r, PosError):
                assert r.field == "receipt_no" and number in str(r)
    with hall.session() as ss:
        assert ss.scalars(select(Sale.receipt_no)).all() == [number]
        assert local_date(ss.scalar(select(Sale.sold_at))) == local_today()


def test_a_number_claimed_meanwhile_by_an_uncommitted_sale_is_refused_once_it_commits(hall, s):
    """The second sale checks before the first commits (on PostgreSQL it sees nothing yet and then
    waits on the unique receipt number; on SQLite it waits for the write lock first): either way it is
    refused on receipt_no, never answered with a 500, and the first sale stands."""
    till = s.get(Till, hall.till_id)
    number = reserve_block(s, till, local_today(), 1, hall.cashier_id)[0]
    s.commit()
    s.close()
    first = hall.session()
    recorded = service.record_sale(first, _honey_sale(hall, client_sale_id="first-claim", sold_at=utcnow(),
                                                      receipt_no=number))
    outcome: list[object] = []

    def second() -> None:
        with hall.session() as ss:
            try:
                outcome.append(service.record_sale(ss, _honey_sale(hall, client_sale_id="second-claim",
                                                                   sold_at=utcnow(), receipt_no=number)))
            except Exception as exc:  # noqa: BLE001 - judged below
                outcome.append(exc)

    waiting = threading.Thread(target=second)
    waiting.start()
    waiting.join(timeout=0.5)  # let it reach the lock it waits on
    assert waiting.is_alive()  # PostgreSQL: on the unique receipt number; SQLite: on the write lock
    first.commit()
    first.close()
    waiting.join(timeout=60)
    assert not waiting.is_alive()
    [refused] = outcome
    assert isinstance(refused, PosError) and refused.field == "receipt_no", refused
    with hall.session() as ss:
        assert ss.scalars(select(Sale.id).where(Sale.receipt_no == number)).all() == [recorded.sale_id]
