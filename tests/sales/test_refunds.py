"""Refunds: partial, never more than sold minus earlier refunds (also when two race), exact
remainders, goods back to stock or to loss, approval, idempotency."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from inventory.models import AuditEvent, StockMove
from pos.sales import refunds
from pos.sales import reading, service, voids
from pos.hall import shifts
from pos.core.errors import ApprovalRequired, Conflict, RefundError, ShiftError
from pos.models import Refund, RefundLine, Sale
from pos.sales.pricing import LineIn
from tests.fixtures.sales import cash_sale, hall  # noqa: F401  (fixture)
from tests.fixtures.stock import engine, level_of, s, world  # noqa: F401  (fixtures)

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc)


def sold(hall, s, lines, amount, **kw):
    result = service.record_sale(s, cash_sale(hall, lines, amount=amount, **kw))
    s.commit()
    return result, [ln.id for ln in s.get(Sale, result.sale_id).lines]


def do_refund(hall, s, receipt_no, lines, **kw):
    kw.setdefault("method", None)
    kw.setdefault("reason", "顾客退货")
    kw.setdefault("cashier_id", hall.cashier_id)
    kw.setdefault("approved_by_id", hall.manager_id)
    kw.setdefault("refunded_at", NOW)
    return refunds.refund(s, receipt_no=receipt_no, lines=lines, **kw)


def test_a_partial_refund_returns_goods_and_money(hall, s):
    sale, (tea, honey) = sold(hall, s, [LineIn(hall.tea_id, 3000), LineIn(hall.honey_id, 1000)], 56200)
    result = do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)])
    s.commit()
    assert result.total_fen == 16800 and result.created
    assert result.refund_no == "R-H1-20261127-0001"  # its own local date, not the sale's
    r = s.get(Refund, result.refund_id)
    assert r.method.value == "cash" and r.shift_id == hall.shift_id and r.local_date == dt.date(2026, 11, 27)
    assert level_of(s, hall.hall, hall.tea_id) == 12000 - 3000 + 1000
    # back into the newest lot the sale took from
    assert s.execute(select(StockMove.lot_id, StockMove.qty_milli).where(StockMove.ref_type == "refund")).all() == [
        (hall.late_lot, 1000)]
    view = reading.sale_view(s, sale.sale_id)
    assert [(ln["refunded_qty_milli"], ln["refundable_qty_milli"]) for ln in view["lines"]] == [(1000, 2000), (0, 1000)]
    assert view["refunds"][0]["refund_no"] == result.refund_no
    assert s.scalar(select(AuditEvent.action).where(AuditEvent.entity == "refund")) == "refund.create"


def test_more_than_sold_minus_earlier_refunds_is_refused(hall, s):
    sale, (tea,) = sold(hall, s, [LineIn(hall.tea_id, 2000)], 33600)
    with pytest.raises(RefundError, match="最多还能退 2"):
        do_refund(hall, s, sale.receipt_no, [(tea, 3000, True)])
    do_refund(hall, s, sale.receipt_no, [(tea, 1500 // 1000 * 1000, True)])
    with pytest.raises(RefundError, match="最多还能退 1（已售 2，已退 1）"):
        do_refund(hall, s, sale.receipt_no, [(tea, 2000, True)])
    do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)])
    with pytest.raises(RefundError, match="最多还能退 0"):
        do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)])


def test_a_line_refunded_in_parts_returns_exactly_its_net(hall, s):
    # 3 × ¥58.00 less ¥0.01 order discount: net 17399 does not divide by 3
    sale, (honey,) = sold(hall, s, [LineIn(hall.honey_id, 3000)], 17399, order_discount_fen=1)
    amounts = [do_refund(hall, s, sale.receipt_no, [(honey, 1000, False)]).total_fen for _ in range(3)]
    assert sum(amounts) == 17399 and max(amounts) - min(amounts) <= 1
    # damaged goods go to loss, not back on the shelf
    assert level_of(s, hall.hall, hall.honey_id) == -3000
    assert level_of(s, hall.world.loc["LOSS"], hall.honey_id) == 3000


def test_weighed_goods_refunded_in_odd_parts(hall, s):
    sale, (pork,) = sold(hall, s, [LineIn(hall.pork_id, 777)], 2953)
    parts = [do_refund(hall, s, sale.receipt_no, [(pork, q, True)]).total_fen for q in (100, 333, 344)]
    assert sum(parts) == 2953 and all(p > 0 for p in parts)


def test_refund_needs_an_active_manager_and_a_reason(hall, s):
    sale, (tea,) = sold(hall, s, [LineIn(hall.tea_id, 1000)], 16800)
    with pytest.raises(ApprovalRequired, match="退货需要店长授权"):
        do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)], approved_by_id=hall.cashier_id)
    with pytest.raises(RefundError, match="原因"):
        do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)], reason=" ")
    with pytest.raises(RefundError, match="不属于"):
        do_refund(hall, s, sale.receipt_no, [(tea + 1000, 1000, True)])
    assert s.scalar(select(func.count()).select_from(Refund)) == 0


def test_a_refund_is_idempotent_on_its_client_id(hall, s):
    sale, (tea,) = sold(hall, s, [LineIn(hall.tea_id, 2000)], 33600)
    first = do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)], client_refund_id="r-1")
    again = do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)], client_refund_id="r-1")
    assert (again.refund_id, again.created) == (first.refund_id, False)
    with pytest.raises(Conflict):
        do_refund(hall, s, sale.receipt_no, [(tea, 2000, True)], client_refund_id="r-1")
    assert s.scalar(select(func.sum(RefundLine.qty_milli))) == 1000


def test_a_voided_sale_cannot_be_refunded(hall, s):
    sale, (tea,) = sold(hall, s, [LineIn(hall.tea_id, 1000)], 16800)
    voids.void_sale(s, sale.sale_id, actor_id=hall.cashier_id, approved_by_id=hall.manager_id, reason="录错")
    with pytest.raises(RefundError, match="已作废"):
        do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)])


def test_a_refund_in_a_closed_shift_is_refused(hall, s):
    sale, (tea,) = sold(hall, s, [LineIn(hall.tea_id, 1000)], 16800)
    shifts.close_shift(s, hall.shift_id, denominations={10000: 0}, closed_by_id=hall.manager_id)
    with pytest.raises(ShiftError, match="已交班"):
        do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)], shift_id=hall.shift_id)
    # without a shift, the refund still happens (no open shift on the till: it belongs to none)
    result = do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)])
    assert s.get(Refund, result.refund_id).shift_id is None


def test_two_racing_refunds_of_the_last_unit_one_succeeds(hall, s):
    """Two tills, two sessions, the same last unit: the sale row lock (PostgreSQL FOR UPDATE;
    SQLite BEGIN IMMEDIATE) makes the second see the first's refund and refuse."""
    sale, (tea,) = sold(hall, s, [LineIn(hall.tea_id, 2000)], 33600)
    do_refund(hall, s, sale.receipt_no, [(tea, 1000, True)])
    s.commit()
    barrier = threading.Barrier(2)
    outcomes = []

    def attempt(n):
        with hall.session() as own:
            try:
                barrier.wait()
                do_refund(hall, own, sale.receipt_no, [(tea, 1000, True)], client_refund_id=f"race-{n}")
                own.commit()
                outcomes.append("ok")
            except RefundError as exc:
                own.rollback()
                outcomes.append(str(exc))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes, key=lambda o: o != "ok")[0] == "ok" and len(outcomes) == 2
    assert "最多还能退 0" in [o for o in outcomes if o != "ok"][0]
    with hall.session() as check:
        assert check.scalar(select(func.sum(RefundLine.qty_milli))) == 2000
        assert check.scalar(select(func.sum(Refund.total_fen))) == 33600
