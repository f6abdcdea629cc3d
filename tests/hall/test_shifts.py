"""Shifts: one open per till, the cash arithmetic (float + cash sales − cash refunds + cash in −
cash out = expected; counted by denominations; the difference), and a closed shift's fixed figures."""
from __future__ import annotations

import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from inventory.models import AuditEvent
from pos.sales import refunds
from pos.sales import service, voids
from pos.hall import shifts
from pos.core.errors import ShiftError
from pos.models import Sale, Shift, ShiftStatus
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn
from tests.fixtures.sales import cash_sale, hall  # noqa: F401  (fixture)
from tests.fixtures.stock import engine, s, world  # noqa: F401  (fixtures)


def test_one_open_shift_per_till(hall, s):
    assert shifts.current_shift(s, hall.till_id).id == hall.shift_id
    with pytest.raises(ShiftError, match="该收银台已有未交班的班次"):
        shifts.open_shift(s, till_id=hall.till_id, cashier_id=hall.cashier_id, opening_float_fen=0)
    other = shifts.open_shift(s, till_id=hall.till2_id, cashier_id=hall.cashier_id, opening_float_fen=0)
    assert shifts.current_shift(s, hall.till2_id).id == other.id
    with pytest.raises(ShiftError, match="备用金"):
        shifts.open_shift(s, till_id=hall.till2_id, cashier_id=hall.cashier_id, opening_float_fen=-1)


def test_two_cashiers_opening_the_same_till_at_once(hall):
    barrier = threading.Barrier(2)
    outcomes = []

    def attempt():
        with hall.session() as own:
            try:
                barrier.wait()
                shifts.open_shift(own, till_id=hall.till2_id, cashier_id=hall.cashier_id, opening_float_fen=100)
                own.commit()
                outcomes.append("ok")
            except ShiftError as exc:
                own.rollback()
                outcomes.append(str(exc))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["ok", "该收银台已有未交班的班次"]


def test_the_cash_arithmetic_and_the_close(hall, s):
    # float 500.00; cash sale 168.00 (tendered 200); wechat 116.00; split 58.00 = 30 card + 28 cash
    service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800, tendered=20000))
    service.record_sale(s, SaleIn(channel="hall", location_id=None, lines=[LineIn(hall.honey_id, 2000)],
                                payments=[PaymentIn("wechat", 11600, ref="wx")], till_id=hall.till_id,
                                cashier_id=hall.cashier_id))
    split = service.record_sale(s, SaleIn(channel="hall", location_id=None, lines=[LineIn(hall.honey_id, 1000)],
                                        payments=[PaymentIn("union_card", 3000), PaymentIn("cash", 2800, 5000)],
                                        till_id=hall.till_id, cashier_id=hall.cashier_id))
    voided = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800))
    voids.void_sale(s, voided.sale_id, actor_id=hall.cashier_id, approved_by_id=hall.manager_id, reason="录错")
    line = s.get(Sale, split.sale_id).lines[0].id
    refunds.refund(s, receipt_no=split.receipt_no, lines=[(line, 1000, True)], method="cash", reason="退货",
                   cashier_id=hall.cashier_id, approved_by_id=hall.manager_id)
    shifts.cash_movement(s, hall.shift_id, kind="in", amount_fen=10000, reason="换零钱", user_id=hall.cashier_id)
    shifts.cash_movement(s, hall.shift_id, kind="out", amount_fen=20000, reason="存入保险柜", user_id=hall.manager_id)
    with pytest.raises(ShiftError, match="超过钱箱应有现金"):
        shifts.cash_movement(s, hall.shift_id, kind="out", amount_fen=10**6, reason="x", user_id=hall.manager_id)

    x = shifts.shift_report(s, hall.shift_id)
    assert x.takings_by_method == {"cash": 19600, "wechat": 11600, "union_card": 3000}
    assert x.refunds_by_method == {"cash": 5800}
    assert (x.sales_count, x.voids_count, x.total_fen, x.certified_fen) == (3, 1, 34200, 16800)
    assert (x.cash_sales_fen, x.cash_refunds_fen, x.cash_in_fen, x.cash_out_fen) == (19600, 5800, 10000, 20000)
    expected = 50000 + 19600 - 5800 + 10000 - 20000
    assert x.expected_cash_fen == expected and x.counted_cash_fen is None and x.difference_fen is None

    # counted: 5 × 100 + 3 × 10 + 1 × 5 + 2 × 1 + 3 × 0.1 = 537.30: 0.50 short
    z = shifts.close_shift(s, hall.shift_id, denominations={"10000": 5, "1000": 3, 500: 1, 100: 2, 10: 3},
                           closed_by_id=hall.manager_id)
    s.commit()
    assert (z.counted_cash_fen, z.expected_cash_fen, z.difference_fen) == (53730, expected, 53730 - expected)
    shift = s.get(Shift, hall.shift_id)
    assert shift.status == ShiftStatus.CLOSED and shift.counted_cash_fen == 53730
    assert json.loads(shift.totals_json)["takings_by_method"]["cash"] == 19600
    assert json.loads(shift.denominations) == {"10000": 5, "1000": 3, "500": 1, "100": 2, "10": 3}
    assert s.scalar(select(AuditEvent.action).where(AuditEvent.action == "shift.close")) == "shift.close"
    with pytest.raises(ShiftError, match="已交班"):
        shifts.close_shift(s, hall.shift_id, denominations={10000: 0}, closed_by_id=hall.manager_id)
    with pytest.raises(ShiftError, match="已交班"):
        shifts.cash_movement(s, hall.shift_id, kind="in", amount_fen=1, reason="x", user_id=hall.cashier_id)


def test_a_closed_shift_keeps_its_figures(hall, s):
    service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800))
    before = shifts.close_shift(s, hall.shift_id, denominations={10000: 6, 5000: 1, 1000: 1, 500: 1, 200: 1, 100: 1,
                                                                 50: 1, 20: 1, 10: 1},
                                closed_by_id=hall.manager_id)
    s.commit()
    assert before.difference_fen == 66880 - 66800
    # a late sale for the closed shift is kept, but the Z report does not change
    service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800, shift_id=hall.shift_id))
    s.commit()
    after = shifts.shift_report(s, hall.shift_id)
    assert after.figures() == {**before.figures(), "late_sales_count": 1}
    assert after.closed and after.as_dict()["till"] == "H1"


def test_bad_denominations_are_refused(hall, s):
    with pytest.raises(ShiftError, match="不认识的面额"):
        shifts.close_shift(s, hall.shift_id, denominations={300: 1}, closed_by_id=hall.manager_id)
    with pytest.raises(ShiftError, match="张数"):
        shifts.close_shift(s, hall.shift_id, denominations={100: -1}, closed_by_id=hall.manager_id)
    assert shifts.current_shift(s, hall.till_id) is not None


def test_shift_report_of_an_unknown_shift(hall, s):
    from pos.core.errors import NotFound
    with pytest.raises(NotFound):
        shifts.shift_report(s, 99999)


# --- the cash arithmetic for any day at the till (hypothesis) --------------------------------------

PRICES = {"tea_id": 16800, "honey_id": 5800}
operations = st.lists(st.one_of(
    st.tuples(st.just("cash_sale"), st.sampled_from(sorted(PRICES)), st.integers(1, 3), st.integers(0, 5000)),
    st.tuples(st.just("wechat_sale"), st.sampled_from(sorted(PRICES)), st.integers(1, 3), st.just(0)),
    st.tuples(st.just("cash_in"), st.integers(1, 50_000)),
    st.tuples(st.just("cash_out"), st.integers(1, 50_000)),
    st.tuples(st.just("refund_last"), st.sampled_from(["cash", "wechat"])),
), max_size=8)


@given(opening=st.integers(0, 100_000), ops=operations, counted=st.lists(st.integers(0, 20), min_size=4, max_size=4))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_expected_cash_is_float_plus_cash_sales_minus_cash_refunds_plus_in_minus_out(hall, s, opening, ops, counted):
    """For any sequence of sales, refunds and cash movements on a fresh shift, the report's
    expected cash is float + cash sales − cash refunds + cash in − cash out, and the close's
    difference is counted − expected."""
    current = shifts.current_shift(s, hall.till2_id)
    if current is not None:  # the previous example's shift
        shifts.close_shift(s, current.id, denominations={10000: 0}, closed_by_id=hall.manager_id)
    shift = shifts.open_shift(s, till_id=hall.till2_id, cashier_id=hall.cashier_id, opening_float_fen=opening)
    cash_sales = cash_refunds = cash_in = cash_out = 0
    last = None
    for op in ops:
        kind = op[0]
        if kind in ("cash_sale", "wechat_sale"):
            _, product, pieces, extra = op
            amount = PRICES[product] * pieces
            payment = PaymentIn("cash", amount, amount + extra) if kind == "cash_sale" else PaymentIn("wechat", amount)
            last = service.record_sale(s, SaleIn(channel="hall", location_id=None,
                                               lines=[LineIn(getattr(hall, product), pieces * 1000)],
                                               payments=[payment], till_id=hall.till2_id, cashier_id=hall.cashier_id))
            cash_sales += amount if kind == "cash_sale" else 0
        elif kind == "cash_in":
            shifts.cash_movement(s, shift.id, kind="in", amount_fen=op[1], reason="换零钱", user_id=hall.cashier_id)
            cash_in += op[1]
        elif kind == "cash_out":
            drawer = opening + cash_sales - cash_refunds + cash_in - cash_out
            if op[1] > drawer:
                with pytest.raises(ShiftError):
                    shifts.cash_movement(s, shift.id, kind="out", amount_fen=op[1], reason="存款", user_id=hall.manager_id)
                continue
            shifts.cash_movement(s, shift.id, kind="out", amount_fen=op[1], reason="存款", user_id=hall.manager_id)
            cash_out += op[1]
        elif kind == "refund_last" and last is not None:
            sale = s.get(Sale, last.sale_id)
            done = refunds.refund(s, receipt_no=sale.receipt_no, lines=[(sale.lines[0].id, 1000, True)],
                                  method=op[1], reason="退货", cashier_id=hall.cashier_id,
                                  approved_by_id=hall.manager_id, shift_id=shift.id)
            cash_refunds += done.total_fen if op[1] == "cash" else 0
            last = None  # one piece per sale at most: the next refund needs a new sale

    expected = opening + cash_sales - cash_refunds + cash_in - cash_out
    report = shifts.shift_report(s, shift.id)
    assert (report.cash_sales_fen, report.cash_refunds_fen, report.cash_in_fen, report.cash_out_fen) == \
        (cash_sales, cash_refunds, cash_in, cash_out)
    assert report.expected_cash_fen == expected
    notes = dict(zip((10000, 1000, 100, 10), counted))
    closed = shifts.close_shift(s, shift.id, denominations=notes, closed_by_id=hall.manager_id)
    counted_fen = sum(value * n for value, n in notes.items())
    assert (closed.expected_cash_fen, closed.counted_cash_fen, closed.difference_fen) == \
        (expected, counted_fen, counted_fen - expected)
    s.commit()
