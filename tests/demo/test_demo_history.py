"""The demo hall's history (pos.demo.history) on a real database: a few days across a month's
end, built on the demo shop. Every day has hall sales in shifts that were counted and closed;
refunds never take back more than was sold; group purchases carry their buyer type; every sale's
lines add up to its total; the hall never sold what it did not hold; and one seed always gives
the same history (checked against a second build on its own SQLite file)."""
import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inventory import ledger
from inventory.localtime import HALL_TZ, local_date
from inventory.models import Alert, AlertKind, Location, LocationKind, Product, StockLevel, StockMove
from pos import create_app
from pos.demo import build as demo
from pos.demo import history as demo_history
from pos.migrate import upgrade
from pos.group.models import GroupOrder, GroupOrderStatus, GroupPayment
from pos.models import Channel, Payment, Refund, RefundLine, Sale, SaleLine, Shift, ShiftStatus, Till

# The history ends the day before: 31 October, 1 and 2 November (a month's end, and the first of
# the month brings back something bought in October).
NOW = dt.datetime(2026, 11, 3, 8, 0, tzinfo=HALL_TZ)
DAYS = 3
SEED = demo.DEFAULT_SEED


def _build(session, monkeypatch) -> demo_history.HistoryStats:
    monkeypatch.setattr(demo, "HALL_HISTORY_DAYS", 0)  # the shop alone; the history below
    demo.build(session, seed=SEED, app=None, now=NOW)
    stats = demo_history.build_hall_history(session, seed=SEED, now=NOW, days=DAYS)
    session.commit()
    return stats


def _snapshot(s: Session) -> dict:
    """The history without ids: sales with their lines and payments, refunds, shifts."""
    sku = dict(s.execute(select(Product.id, Product.sku)).all())
    lines = defaultdict(list)
    for sale_id, pid, qty, net, certified in s.execute(
            select(SaleLine.sale_id, SaleLine.product_id, SaleLine.qty_milli, SaleLine.net_fen, SaleLine.certified)
            .order_by(SaleLine.sale_id, SaleLine.line_no)):
        lines[sale_id].append((sku[pid], qty, net, certified))
    pays = defaultdict(list)
    for sale_id, method, amount, ref in s.execute(
            select(Payment.sale_id, Payment.method, Payment.amount_fen, Payment.ref).order_by(Payment.id)):
        pays[sale_id].append((str(method), amount, ref))
    return {
        "sales": [(r.receipt_no, r.sold_at, str(r.channel), r.buyer_type and str(r.buyer_type), r.total_fen,
                   r.discount_fen, r.rounding_fen, lines[r.id], pays[r.id])
                  for r in s.execute(select(Sale).order_by(Sale.receipt_no)).scalars()],
        "refunds": s.execute(select(Refund.refund_no, Refund.refunded_at, Refund.total_fen, Refund.method)
                             .order_by(Refund.refund_no)).all(),
        "shifts": s.execute(select(Till.code, Shift.opened_at, Shift.closed_at, Shift.expected_cash_fen,
                                   Shift.counted_cash_fen).join(Till, Till.id == Shift.till_id)
                            .order_by(Shift.opened_at, Till.code)).all(),
    }


def test_history_span_defaults_to_last_month_and_this_month():
    now = dt.datetime(2026, 11, 26, 10, 0, tzinfo=HALL_TZ)
    assert demo_history.history_span(now, None) == (dt.date(2026, 10, 1), dt.date(2026, 11, 25))
    assert demo_history.history_span(now, 3) == (dt.date(2026, 11, 23), dt.date(2026, 11, 25))
    january = dt.datetime(2027, 1, 1, 0, 30, tzinfo=HALL_TZ)  # 16:30 UTC on 31 December: local time counts
    assert demo_history.history_span(january, None) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))


def test_demo_history(app, session, monkeypatch, tmp_path):
    stats = _build(session, monkeypatch)
    s = session
    first, last = stats.first, stats.last
    assert (first, last) == (dt.date(2026, 10, 31), dt.date(2026, 11, 2)) and stats.days == DAYS
    days = [first + dt.timedelta(days=k) for k in range(DAYS)]
    locations = dict(s.execute(select(Location.code, Location.id)).all())
    sales = s.scalars(select(Sale)).all()

    # Every day has hall sales, on all three tills, in the hall's opening hours, each in a shift
    hall = [x for x in sales if x.channel == Channel.HALL]
    per_day = Counter(x.local_date for x in hall)
    assert sorted(per_day) == days and all(n >= 15 for n in per_day.values())
    assert len(hall) == stats.hall_sales
    tills = dict(s.execute(select(Till.id, Till.code)).all())
    assert {tills[x.till_id] for x in hall} == {"H1", "H2", "H3"}
    assert all(9 <= x.sold_at.astimezone(HALL_TZ).hour < 21 for x in hall)
    assert all(x.shift_id is not None and not x.after_shift_closed and x.location_id == locations["HALL"]
               for x in hall)
    assert all(x.recorded_at == x.sold_at for x in sales)

    # Shifts: one per till and day, all closed, with the difference between counted and expected
    # cash recorded, small, and not always zero
    shifts = s.scalars(select(Shift)).all()
    assert len(shifts) == 3 * DAYS == stats.shifts
    assert Counter((s_.till_id, local_date(s_.opened_at)) for s_ in shifts) == Counter(
        {(till, day): 1 for till in tills for day in days})
    differences = []
    for shift in shifts:
        assert shift.status == ShiftStatus.CLOSED and local_date(shift.closed_at) == local_date(shift.opened_at)
        assert shift.counted_cash_fen is not None and shift.expected_cash_fen is not None
        difference = shift.counted_cash_fen - shift.expected_cash_fen
        assert f'"difference_fen": {difference},' in shift.totals_json
        differences.append(difference)
    assert all(abs(d) <= 2000 for d in differences)
    assert any(d == 0 for d in differences) and any(d != 0 for d in differences)
    assert {shift.cashier_id for shift in shifts} >= {x.cashier_id for x in hall}
    assert len({shift.cashier_id for shift in shifts}) == 3

    # Every sale's lines add up to its total, and its payments too; discounts and 抹零 occur
    net = dict(s.execute(select(SaleLine.sale_id, func.sum(SaleLine.net_fen)).group_by(SaleLine.sale_id)).all())
    paid = dict(s.execute(select(Payment.sale_id, func.sum(Payment.amount_fen)).group_by(Payment.sale_id)).all())
    assert all(net[x.id] == x.total_fen == x.subtotal_fen - x.discount_fen - x.rounding_fen for x in sales)
    assert all(paid[x.id] == x.total_fen for x in sales if x.channel != Channel.GROUP)  # group: on account
    assert any(x.rounding_fen for x in hall) and any(x.discount_fen for x in hall)
    assert all(0 <= x.rounding_fen <= 9 for x in hall)
    methods = {str(m) for m in s.scalars(select(Payment.method).join(Sale, Sale.id == Payment.sale_id)
                                         .where(Sale.channel == Channel.HALL))}
    assert {"cash", "wechat", "alipay"} <= methods
    weighed = s.scalars(select(SaleLine.qty_milli).join(Product, Product.id == SaleLine.product_id)
                        .where(Product.sold_by_weight.is_(True))).all()
    assert weighed and any(q % 1000 for q in weighed)  # by the gram
    certified = set(s.scalars(select(SaleLine.certified)))
    assert certified == {True, False}

    # Refunds: never more than was sold, on or after the sale's day; one crosses into November
    refunds = s.execute(select(Refund, Sale).join(Sale, Sale.id == Refund.sale_id)).all()
    assert len(refunds) == stats.refunds >= 1
    assert all(r.local_date >= x.local_date and r.refunded_at > x.sold_at for r, x in refunds)
    assert any(x.local_date.month == 10 and r.local_date.month == 11 for r, x in refunds)
    taken = s.execute(select(SaleLine.qty_milli, SaleLine.net_fen, func.sum(RefundLine.qty_milli),
                             func.sum(RefundLine.amount_fen))
                      .join(RefundLine, RefundLine.sale_line_id == SaleLine.id)
                      .group_by(SaleLine.id, SaleLine.qty_milli, SaleLine.net_fen)).all()
    assert taken and all(0 < q <= sold_qty and 0 < a <= sold_net for sold_qty, sold_net, q, a in taken)

    # Group purchases: orders of the demo's buyers, delivered from the base's dispatch area with
    # their buyer type, at the buyer's agreed price, on account; paid by transfer days later
    group = [x for x in sales if x.channel == Channel.GROUP]
    assert len(group) == stats.group_sales >= 1
    orders = {o.id: o for o in s.scalars(select(GroupOrder))}
    for x in group:
        order = orders[x.group_order_id]
        assert x.buyer_type == order.buyer_type and x.location_id == locations["DISPATCH"]
        assert x.receipt_no.startswith("G-") and x.till_id is None and x.shift_id is None and x.payments == []
        assert order.status in (GroupOrderStatus.DELIVERED, GroupOrderStatus.PAID) and order.delivery_date == x.local_date
    agreed = s.execute(select(SaleLine.unit_price_fen, Product.price_fen).join(Product, Product.id == SaleLine.product_id)
                       .join(Sale, Sale.id == SaleLine.sale_id).where(Sale.channel == Channel.GROUP)).all()
    assert agreed and all(89 * list_ <= 100 * price < 100 * list_ for price, list_ in agreed)
    payments = s.execute(select(GroupPayment.received_on, Sale.local_date, GroupPayment.amount_fen, Sale.total_fen)
                         .join(Sale, Sale.group_order_id == GroupPayment.order_id)).all()
    assert all(paid_on > sold_on and amount == total for paid_on, sold_on, amount, total in payments)
    assert {o.status for o in orders.values()} <= {GroupOrderStatus.DELIVERED, GroupOrderStatus.PAID}

    # Stock: the hall (and the base) never went below zero, so no discrepancy alert; every product
    # adds up to zero over all locations; the stock moves carry the moments of the history
    virtual = {LocationKind.SUPPLIER, LocationKind.CUSTOMER, LocationKind.LOSS, LocationKind.COUNT_ADJUSTMENT}
    assert not s.scalars(select(StockLevel).join(Location, Location.id == StockLevel.location_id).where(
        Location.kind.not_in(virtual), StockLevel.qty_milli < 0)).all()
    assert not s.scalars(select(Alert).where(Alert.kind == AlertKind.NEGATIVE_STOCK)).all()
    assert ledger.unbalanced(s) == []
    sale_moves = s.execute(select(StockMove.moved_at, Sale.sold_at).join(Sale, Sale.id == StockMove.ref_id)
                           .where(StockMove.ref_type == "sale")).all()
    assert sale_moves and all(moved == sold for moved, sold in sale_moves)
    assert stats.transfers >= 1

    # The same seed gives the same history, here on a SQLite file of its own
    snapshot = _snapshot(s)
    url = f"sqlite:///{tmp_path / 'again.sqlite3'}"
    upgrade(url)
    other = create_app({"DATABASE_URL": url, "SECRET_KEY": "test", "TESTING": True})
    try:
        with other.extensions["songtao.sessionmaker"]() as again:
            _build(again, monkeypatch)
            assert _snapshot(again) == snapshot
    finally:
        other.extensions["songtao.engine"].dispose()


def test_a_history_starting_on_the_first_of_a_month(app, session, monkeypatch):
    """A history that starts on the first refunds nothing of a month it never saw."""
    monkeypatch.setattr(demo, "HALL_HISTORY_DAYS", 0)
    demo.build(session, seed=SEED, app=None, now=NOW)
    stats = demo_history.build_hall_history(session, seed=SEED, now=NOW - dt.timedelta(days=1), days=1)
    session.commit()
    assert (stats.first, stats.last, stats.days) == (dt.date(2026, 11, 1), dt.date(2026, 11, 1), 1)
    assert stats.hall_sales >= 15 and stats.group_sales == 1  # the last day takes the group order if none came
