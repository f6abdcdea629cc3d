"""Group orders: the life of an order moves stock and money exactly once; reservations hold goods
at the base; deliveries and returns count in the statistics on their own days, by buyer type."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from inventory import ledger, reservations
from inventory.errors import InventoryError
from inventory.models import (
    AuditEvent, Certificate, Location, LocationKind, Lot, MoveReason, Product, StockLevel, StockMove, Unit,
)
from inventory.transfers import create_transfer, post_transfer
from pos.group import buyers
from pos.group import orders as go
from pos.group import delivery as group_delivery
from pos.group import documents as group_documents
from pos.group import payments as group_payments
from pos.sales import refunds
from pos.reports import figures as reports
from pos.reports import monthly as report_monthly
from pos.core.errors import Conflict, NotFound, PosError
from pos.group.models import Buyer, GroupOrder, GroupOrderLine, GroupOrderPick, GroupOrderStatus, GroupPayment
from pos.models import Refund, Sale
from tests.fixtures.stock import engine, s, world  # noqa: F401  (fixtures)
from tests.fixtures.threads import run_threads

TZ = dt.timezone(dt.timedelta(hours=8))
DAY1 = dt.datetime(2026, 11, 2, 10, 0, tzinfo=TZ)
DAY2 = dt.datetime(2026, 11, 3, 10, 0, tzinfo=TZ)
DAY3 = dt.datetime(2026, 11, 5, 15, 0, tzinfo=TZ)


class Base:
    """A logistics base stocked with tea (certified, two lots), rice (not certified) and pork
    (by weight), and a canteen and a union as buyers."""

    def __init__(self, world, s):
        self.world = world
        self.base = world.loc["BASE"]
        self.tea = world.product(s, "梵净山翠峰茶 250g", price_fen=16800).id
        self.rice = world.product(s, "松桃香米 5kg", price_fen=6500).id
        self.pork = world.product(s, "松桃黑猪腊肉", unit=Unit.KG, sold_by_weight=True, price_fen=3800).id
        s.add(Certificate(number="黔扶认〔2026〕0007", issuer="贵州省扶贫办", supplier_id=world.supplier_id,
                          valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 12, 31),
                          products=[s.get(Product, self.tea)]))
        self.early = Lot(product_id=self.tea, lot_no="T-EARLY", expires_on=dt.date(2027, 3, 1))
        self.late = Lot(product_id=self.tea, lot_no="T-LATE", expires_on=dt.date(2027, 9, 1))
        s.add_all([self.early, self.late])
        s.flush()
        for product, lot, qty in ((self.tea, self.late, 30000), (self.tea, self.early, 4000),
                                  (self.rice, None, 50000), (self.pork, None, 20000)):
            ledger.move(s, product_id=product, qty_milli=qty, from_location_id=world.loc["SUPPLIER"],
                        to_location_id=self.base, reason=MoveReason.RECEIPT, lot_id=lot.id if lot else None)
        self.canteen = buyers.create_buyer(s, buyers.BuyerIn(
            name="虎门镇政府机关饭堂", buyer_type="canteen", town="虎门", address="虎门镇银龙路 1 号",
            contact_name="陈师傅", contact_phone="0769-85000000"), actor_id=world.manager_id).id
        self.union = buyers.create_buyer(s, buyers.BuyerIn(name="东莞市虎门医院工会", buyer_type="union"),
                                         actor_id=world.manager_id).id
        self.manager = world.manager_id
        s.commit()

    def level(self, s, code_or_id, product):
        loc = code_or_id if isinstance(code_or_id, int) else self.world.loc[code_or_id]
        row = s.execute(select(StockLevel.qty_milli, StockLevel.reserved_milli)
                        .where(StockLevel.location_id == loc, StockLevel.product_id == product)).first()
        return tuple(row) if row else (ledger.level(s, loc, product), 0)  # virtual: the sum of its moves

    def dispatch(self, s):
        return go.dispatch_location(s).id


@pytest.fixture
def hub(world, s):
    return Base(world, s)


def order(hub, s, lines, *, buyer=None, **kw):
    kw.setdefault("delivery_date", dt.date(2026, 11, 3))
    o = go.create_order(s, buyer_id=buyer or hub.canteen, lines=[go.OrderLineIn(*ln) for ln in lines],
                        actor_id=hub.manager, **kw)
    s.commit()
    return o.id


def confirmed_and_picked(hub, s, lines, **kw):
    oid = order(hub, s, lines, **kw)
    go.confirm_order(s, oid, actor_id=hub.manager)
    go.pick_order(s, oid, actor_id=hub.manager)
    s.commit()
    return oid


def count(s, model, *where):
    return s.scalar(select(func.count()).select_from(model).where(*where))


# --- the whole life ---------------------------------------------------------------------------------

def test_an_order_from_draft_to_paid_moves_stock_and_money_exactly_once(hub, s):
    oid = order(hub, s, [(hub.tea, 6000), (hub.rice, 10000, 6000)])
    o = s.get(GroupOrder, oid)
    assert o.order_no.startswith("TG-") and o.status == GroupOrderStatus.DRAFT and o.buyer_type.value == "canteen"
    assert [(ln.unit_price_fen, ln.price_source) for ln in o.lines] == [(16800, "list"), (6000, "manual")]
    assert o.delivery_address == "虎门镇银龙路 1 号" and o.contact == "陈师傅 0769-85000000"
    assert hub.level(s, "BASE", hub.tea) == (34000, 0)  # a draft holds nothing

    go.confirm_order(s, oid, actor_id=hub.manager)
    s.commit()
    assert hub.level(s, "BASE", hub.tea) == (34000, 6000) and hub.level(s, "BASE", hub.rice) == (50000, 10000)
    assert reservations.available(s, hub.base, hub.tea) == 28000

    go.pick_order(s, oid, actor_id=hub.manager)
    s.commit()
    dispatch = hub.dispatch(s)
    assert hub.level(s, "BASE", hub.tea) == (28000, 0) and hub.level(s, dispatch, hub.tea) == (6000, 0)
    # first expiry first out: all 4 of the early lot, then 2 of the late one
    picked = s.execute(select(StockMove.lot_id, StockMove.qty_milli).where(
        StockMove.ref_type == "group_order", StockMove.product_id == hub.tea).order_by(StockMove.id)).all()
    assert picked == [(hub.early.id, 4000), (hub.late.id, 2000)]

    first = group_delivery.deliver(s, oid, client_delivery_id="d-1", delivered_at=DAY2, actor_id=hub.manager)
    s.commit()
    again = group_delivery.deliver(s, oid, client_delivery_id="d-1", delivered_at=DAY2, actor_id=hub.manager)
    s.commit()
    assert first.created and not again.created and again.sale_id == first.sale_id
    assert count(s, Sale, Sale.group_order_id == oid) == 1
    sale = s.get(Sale, first.sale_id)
    assert sale.receipt_no == "G-20261103-0001" and sale.channel.value == "group"
    assert sale.buyer_type.value == "canteen" and sale.local_date == dt.date(2026, 11, 3)
    assert sale.total_fen == 6 * 16800 + 10 * 6000 and sale.payments == []  # on account
    assert [ln.certified for ln in sale.lines] == [True, False]
    assert hub.level(s, dispatch, hub.tea) == (0, 0)
    # the sale handed over exactly the picked lots
    assert s.execute(select(StockMove.lot_id, StockMove.qty_milli).where(
        StockMove.ref_type == "sale", StockMove.ref_id == sale.id, StockMove.product_id == hub.tea)
        .order_by(StockMove.id)).all() == [(hub.early.id, 4000), (hub.late.id, 2000)]
    assert s.get(GroupOrder, oid).status == GroupOrderStatus.DELIVERED

    view = group_documents.order_view(s, oid)
    assert (view["ordered_fen"], view["delivered_fen"], view["paid_fen"], view["balance_fen"]) == (160800, 160800, 0, 160800)
    assert view["certified_fen"] == 100800 and view["actions"] == {"return", "pay"}

    with pytest.raises(go.GroupOrderError, match="超过应收余额"):
        group_payments.record_payment(s, oid, amount_fen=160801, ref="B1", received_on=dt.date(2026, 11, 20), actor_id=hub.manager)
    group_payments.record_payment(s, oid, amount_fen=100000, ref="ICBC-001", received_on=dt.date(2026, 11, 20),
                      actor_id=hub.manager, client_payment_id="p-1")
    group_payments.record_payment(s, oid, amount_fen=100000, ref="ICBC-001", received_on=dt.date(2026, 11, 20),
                      actor_id=hub.manager, client_payment_id="p-1")  # the same form again
    s.commit()
    assert s.get(GroupOrder, oid).status == GroupOrderStatus.DELIVERED
    group_payments.record_payment(s, oid, amount_fen=60800, ref="ICBC-002", received_on=dt.date(2026, 11, 21), actor_id=hub.manager)
    s.commit()
    assert s.get(GroupOrder, oid).status == GroupOrderStatus.PAID
    assert count(s, GroupPayment) == 2 and group_payments.order_figures(s, oid)["balance_fen"] == 0
    with pytest.raises(go.GroupOrderError, match="超过应收余额"):
        group_payments.record_payment(s, oid, amount_fen=1, ref="x", received_on=dt.date(2026, 11, 21), actor_id=hub.manager)

    # every unit accounted for: all locations of a product add up to zero
    assert ledger.unbalanced(s) == []
    assert [a for (a,) in s.execute(select(AuditEvent.action).where(AuditEvent.entity == "group_order")
                                    .order_by(AuditEvent.id))] == [
        "group_order.create", "group_order.confirm", "group_order.pick", "group_order.deliver",
        "group_order.payment", "group_order.payment"]


def test_an_order_taken_earlier_is_numbered_by_its_own_day(hub, s):
    oid = order(hub, s, [(hub.tea, 1000)], ordered_at=dt.datetime(2026, 10, 31, 23, 30, tzinfo=TZ))
    o = s.get(GroupOrder, oid)
    assert o.order_no == "TG-20261031-0001" and o.created_at == dt.datetime(2026, 10, 31, 15, 30, tzinfo=dt.timezone.utc)
    with pytest.raises(go.GroupOrderError, match="下单时间不正确"):
        order(hub, s, [(hub.tea, 1000)], ordered_at=dt.datetime(2099, 1, 1, tzinfo=TZ))


def test_the_same_order_form_sent_twice_makes_one_order(hub, s):
    a = order(hub, s, [(hub.tea, 1000)], client_order_id="form-1")
    b = order(hub, s, [(hub.tea, 1000)], client_order_id="form-1")
    assert a == b and count(s, GroupOrder) == 1


def test_agreed_prices_apply_unless_the_order_gives_one(hub, s):
    buyers.set_buyer_price(s, hub.canteen, product_id=hub.tea, unit_price_fen=15000, actor_id=hub.manager)
    oid = order(hub, s, [(hub.tea, 2000), (hub.rice, 1000), (hub.pork, 1250, 3600)])
    lines = group_documents.order_view(s, oid)["lines"]
    assert [(ln["unit_price_fen"], ln["price_source"], ln["amount_fen"]) for ln in lines] == [
        (15000, "agreed", 30000), (6500, "list", 6500), (3600, "manual", 4500)]
    assert buyers.buyer_prices(s, hub.canteen)[0]["unit_price_fen"] == 15000
    # another buyer does not get the canteen's price
    other = order(hub, s, [(hub.tea, 1000)], buyer=hub.union)
    assert group_documents.order_view(s, other)["lines"][0]["unit_price_fen"] == 16800


@pytest.mark.parametrize("lines, message", [
    ([], "至少要有一种商品"),
    ([(999999, 1000)], "商品不存在"),
    (["tea", 0], "数量必须大于零"),
    (["tea", 1500], "整数件"),
    (["tea", 1000, -1], "单价不正确"),
    (["dup"], "重复"),
])
def test_bad_lines_are_refused_and_nothing_is_made(hub, s, lines, message):
    if lines == ["dup"]:
        lines = [(hub.tea, 1000), (hub.tea, 2000)]
    elif lines and lines[0] == "tea":
        lines = [(hub.tea, *lines[1:])]
    with pytest.raises(PosError, match=message):
        order(hub, s, lines)
    s.rollback()
    assert count(s, GroupOrder) == 0


def test_an_inactive_buyer_or_a_bad_credit_code_is_refused(hub, s):
    with pytest.raises(PosError, match="统一社会信用代码不正确"):
        buyers.create_buyer(s, buyers.BuyerIn(name="某公司", buyer_type="enterprise", uscc="91441900123456789X"),
                            actor_id=hub.manager)
    ok = buyers.create_buyer(s, buyers.BuyerIn(name="某公司", buyer_type="enterprise", uscc="91110000600037341L"),
                             actor_id=hub.manager)
    with pytest.raises(Conflict, match="统一社会信用代码"):
        buyers.create_buyer(s, buyers.BuyerIn(name="另一公司", buyer_type="enterprise", uscc="91110000600037341L"),
                            actor_id=hub.manager)
    buyers.update_buyer(s, ok.id, buyers.BuyerIn(name="某公司", buyer_type="enterprise", active=False),
                        actor_id=hub.manager)
    with pytest.raises(go.GroupOrderError, match="已停用"):
        order(hub, s, [(hub.tea, 1000)], buyer=ok.id)
    with pytest.raises(NotFound):
        order(hub, s, [(hub.tea, 1000)], buyer=123456)


# --- reservations ---------------------------------------------------------------------------------

def test_a_reservation_holds_goods_against_transfers_and_other_orders(hub, s):
    first = order(hub, s, [(hub.rice, 40000)])
    go.confirm_order(s, first, actor_id=hub.manager)
    s.commit()
    second = order(hub, s, [(hub.rice, 20000), (hub.tea, 1000)])
    with pytest.raises(go.GroupOrderError, match="其中 40 已为团购订单预留，需要 20"):
        go.confirm_order(s, second, actor_id=hub.manager)
    s.commit()
    # all or nothing: the second order's tea was not reserved either
    assert hub.level(s, "BASE", hub.tea) == (34000, 0) and s.get(GroupOrder, second).status == GroupOrderStatus.DRAFT
    # a transfer may take what is free, not what is held
    t = create_transfer(s, from_location_id=hub.base, to_location_id=hub.world.loc["HALL"],
                        lines=[{"product_id": hub.rice, "qty_milli": 15000}], actor_id=hub.manager)
    with pytest.raises(InventoryError, match="已为团购订单预留"):
        post_transfer(s, t.id, actor_id=hub.manager)
    s.rollback()
    # cancelling the confirmed order releases its reservation: now the transfer goes through
    go.cancel_order(s, first, reason="单位取消采购", actor_id=hub.manager)
    s.commit()
    assert hub.level(s, "BASE", hub.rice) == (50000, 0)
    t = create_transfer(s, from_location_id=hub.base, to_location_id=hub.world.loc["HALL"],
                        lines=[{"product_id": hub.rice, "qty_milli": 15000}], actor_id=hub.manager)
    post_transfer(s, t.id, actor_id=hub.manager)
    s.commit()
    assert hub.level(s, "BASE", hub.rice) == (35000, 0)
    assert s.get(GroupOrder, first).status == GroupOrderStatus.CANCELLED


def test_cancelling_a_picked_order_takes_its_lots_back_to_the_base(hub, s):
    oid = confirmed_and_picked(hub, s, [(hub.tea, 5000), (hub.pork, 2500)])
    dispatch = hub.dispatch(s)
    assert hub.level(s, dispatch, hub.tea) == (5000, 0) and hub.level(s, "BASE", hub.tea) == (29000, 0)
    go.cancel_order(s, oid, reason="改期", actor_id=hub.manager)
    s.commit()
    assert hub.level(s, dispatch, hub.tea) == (0, 0) and hub.level(s, "BASE", hub.tea) == (34000, 0)
    assert hub.level(s, "BASE", hub.pork) == (20000, 0)
    lots = dict(s.execute(select(Lot.lot_no, func.sum(StockMove.qty_milli)).join(Lot, Lot.id == StockMove.lot_id)
                          .where(StockMove.to_location_id == hub.base, StockMove.ref_type == "group_order")
                          .group_by(Lot.lot_no)).all())
    assert lots == {"T-EARLY": 4000, "T-LATE": 1000}
    assert count(s, Sale) == 0


@pytest.mark.parametrize("step", ["confirm", "pick", "deliver", "pay"])  # the step before was skipped
def test_steps_out_of_order_are_refused_and_change_nothing(hub, s, step):
    oid = order(hub, s, [(hub.tea, 1000)])
    if step != "confirm":
        go.confirm_order(s, oid, actor_id=hub.manager)
        s.commit()
    calls = {
        "confirm": lambda: go.pick_order(s, oid, actor_id=hub.manager),
        "pick": lambda: group_delivery.deliver(s, oid, actor_id=hub.manager),
        "deliver": lambda: go.update_order(s, oid, lines=[go.OrderLineIn(hub.tea, 2000)],
                                           delivery_date=dt.date(2026, 12, 1), actor_id=hub.manager),
        "pay": lambda: group_payments.record_payment(s, oid, amount_fen=100, ref="x", received_on=dt.date(2026, 11, 1),
                                         actor_id=hub.manager),
    }
    before = s.get(GroupOrder, oid).status
    with pytest.raises(go.GroupOrderError, match="不能这样操作"):
        calls[step]()
    s.rollback()
    assert s.get(GroupOrder, oid).status == before and count(s, Sale) == 0


# --- partial deliveries, returns and the statistics -------------------------------------------------

def test_a_partial_delivery_and_a_return_count_on_their_own_days(hub, s):
    oid = confirmed_and_picked(hub, s, [(hub.tea, 6000), (hub.pork, 2500)])
    lines = {ln["product_id"]: ln["id"] for ln in group_documents.order_view(s, oid)["lines"]}
    one = group_delivery.deliver(s, oid, quantities={lines[hub.tea]: 4000, lines[hub.pork]: 1000}, delivered_at=DAY1,
                     actor_id=hub.manager)
    s.commit()
    view = group_documents.order_view(s, oid)
    assert view["status"] == "picked" and view["partly_delivered"] and "deliver" in view["actions"]
    with pytest.raises(go.GroupOrderError, match="最多还能送 2"):
        group_delivery.deliver(s, oid, quantities={lines[hub.tea]: 3000}, delivered_at=DAY2, actor_id=hub.manager)
    s.rollback()
    two = group_delivery.deliver(s, oid, quantities={lines[hub.tea]: 2000, lines[hub.pork]: 1500}, delivered_at=DAY2,
                     actor_id=hub.manager)
    s.commit()
    assert s.get(GroupOrder, oid).status == GroupOrderStatus.DELIVERED
    assert (one.total_fen, two.total_fen) == (4 * 16800 + 3800, 2 * 16800 + 5700)

    tea_line = next(ln for ln in s.get(Sale, one.sale_id).lines if ln.product_id == hub.tea)
    back = group_delivery.return_goods(s, oid, receipt_no=one.receipt_no, lines=[(tea_line.id, 1000, True)],
                           reason="包装破损", actor_id=hub.manager, returned_at=DAY3)
    s.commit()
    assert back.total_fen == 16800 and s.get(Refund, back.refund_id).local_date == dt.date(2026, 11, 5)
    # the returned tea is back at the base, not left in dispatch
    assert hub.level(s, hub.dispatch(s), hub.tea) == (0, 0) and hub.level(s, "BASE", hub.tea) == (29000, 0)

    def canteen(first, last):
        figures = reports.collaboration(s, first=first, last=last)
        return figures["by_buyer_type"]["canteen"], figures["by_channel"]["group"]

    day1, group1 = canteen(dt.date(2026, 11, 2), dt.date(2026, 11, 2))
    assert (day1["total_fen"], day1["certified_fen"], day1["sales"]) == (71000, 67200, 1) and group1 == day1
    day2, _ = canteen(dt.date(2026, 11, 3), dt.date(2026, 11, 3))
    assert (day2["total_fen"], day2["certified_fen"]) == (39300, 33600)
    day3, _ = canteen(dt.date(2026, 11, 5), dt.date(2026, 11, 5))
    assert (day3["total_fen"], day3["certified_fen"], day3["refunds_fen"]) == (-16800, -16800, 16800)
    whole, _ = canteen(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    assert whole["total_fen"] == 71000 + 39300 - 16800 == group_payments.order_figures(s, oid)["delivered_fen"] - 16800

    # the balance owes the returned tea no more; paying it settles the order
    assert group_payments.order_figures(s, oid)["balance_fen"] == 93500
    group_payments.record_payment(s, oid, amount_fen=93500, ref="BOC-77", received_on=dt.date(2026, 11, 10), actor_id=hub.manager)
    s.commit()
    assert s.get(GroupOrder, oid).status == GroupOrderStatus.PAID


def test_the_monthly_summary_shows_group_deliveries_on_account(hub, s):
    oid = confirmed_and_picked(hub, s, [(hub.tea, 2000), (hub.rice, 1000)])
    d = group_delivery.deliver(s, oid, delivered_at=DAY1, actor_id=hub.manager)
    line = s.get(Sale, d.sale_id).lines[1]
    group_delivery.return_goods(s, oid, receipt_no=d.receipt_no, lines=[(line.id, 1000, True)], reason="多送了",
                    actor_id=hub.manager, returned_at=DAY3)
    s.commit()
    summary = report_monthly.monthly_summary(s, month="2026-11")
    rows = {r["method"]: r for r in summary["by_payment"]}
    assert set(rows) == {"on_account"}
    assert (rows["on_account"]["sales_fen"], rows["on_account"]["refunds_fen"]) == (40100, 6500)
    assert rows["on_account"]["label"] == "团购挂账"
    assert sum(r["net_fen"] for r in summary["by_payment"]) == summary["total_fen"] == 33600


def test_a_delivery_cannot_be_refunded_at_a_till(hub, s):
    """Goods delivered on account are returned on the order, never paid back from a drawer."""
    oid = confirmed_and_picked(hub, s, [(hub.rice, 2000)])
    d = group_delivery.deliver(s, oid, delivered_at=DAY1, actor_id=hub.manager)
    s.commit()
    line = s.get(Sale, d.sale_id).lines[0]
    with pytest.raises(PosError, match="是团购送货单，请在团购订单中办理退货"):
        refunds.refund(s, receipt_no=d.receipt_no, lines=[(line.id, 1000, True)], method="cash", reason="退货",
                       cashier_id=hub.manager, approved_by_id=hub.manager)
    s.rollback()
    assert count(s, Refund) == 0 and group_payments.order_figures(s, oid)["balance_fen"] == 13000


def test_a_return_after_payment_is_paid_back(hub, s):
    oid = confirmed_and_picked(hub, s, [(hub.rice, 2000)])
    d = group_delivery.deliver(s, oid, delivered_at=DAY1, actor_id=hub.manager)
    group_payments.record_payment(s, oid, amount_fen=13000, ref="T1", received_on=dt.date(2026, 11, 3), actor_id=hub.manager)
    s.commit()
    assert s.get(GroupOrder, oid).status == GroupOrderStatus.PAID
    line = s.get(Sale, d.sale_id).lines[0]
    group_delivery.return_goods(s, oid, receipt_no=d.receipt_no, lines=[(line.id, 1000, False)], reason="霉变",
                    actor_id=hub.manager, returned_at=DAY3)
    s.commit()
    view = group_documents.order_view(s, oid)
    assert view["balance_fen"] == -6500 and view["status"] == "delivered" and "repay" in view["actions"]
    # damaged goods go to loss, not back to the base
    assert hub.level(s, "BASE", hub.rice) == (48000, 0)
    with pytest.raises(go.GroupOrderError, match="超过应退金额"):
        group_payments.record_repayment(s, oid, amount_fen=6501, ref="R", paid_on=dt.date(2026, 11, 6), actor_id=hub.manager)
    group_payments.record_repayment(s, oid, amount_fen=6500, ref="R-1", paid_on=dt.date(2026, 11, 6), actor_id=hub.manager)
    s.commit()
    assert s.get(GroupOrder, oid).status == GroupOrderStatus.PAID and group_payments.order_figures(s, oid)["paid_fen"] == 6500


def test_closing_the_rest_takes_undelivered_goods_back(hub, s):
    oid = confirmed_and_picked(hub, s, [(hub.tea, 6000)])
    with pytest.raises(go.GroupOrderError, match="请取消订单"):
        group_delivery.close_remainder(s, oid, reason="不要了", actor_id=hub.manager)
    s.rollback()
    line = group_documents.order_view(s, oid)["lines"][0]["id"]
    group_delivery.deliver(s, oid, quantities={line: 5000}, delivered_at=DAY1, actor_id=hub.manager)
    group_delivery.close_remainder(s, oid, reason="单位只要 5 盒", actor_id=hub.manager)
    s.commit()
    # FEFO: the delivery took the 4 early and 1 late; the late lot's last box goes back
    assert hub.level(s, hub.dispatch(s), hub.tea) == (0, 0) and hub.level(s, "BASE", hub.tea) == (29000, 0)
    assert s.scalar(select(StockMove.lot_id).where(StockMove.to_location_id == hub.base,
                                                   StockMove.ref_type == "group_order")) == hub.late.id
    view = group_documents.order_view(s, oid)
    assert view["status"] == "delivered" and view["lines"][0]["taken_back_milli"] == 1000
    assert view["delivered_fen"] == 5 * 16800
    with pytest.raises(go.GroupOrderError, match="已送达.*不能这样操作"):
        go.cancel_order(s, oid, reason="x", actor_id=hub.manager)


def test_confirming_or_picking_twice_changes_nothing_the_second_time(hub, s):
    oid = order(hub, s, [(hub.tea, 5000)])
    for step in (go.confirm_order, go.confirm_order, go.pick_order, go.pick_order):
        step(s, oid, actor_id=hub.manager)
        s.commit()
    assert hub.level(s, "BASE", hub.tea) == (29000, 0) and hub.level(s, hub.dispatch(s), hub.tea) == (5000, 0)
    assert count(s, GroupOrderPick) == 2  # the early and the late lot, once
    assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.entity == "group_order")) == 3


def test_the_delivery_note_names_the_lots_and_the_certified_lines(hub, s):
    oid = confirmed_and_picked(hub, s, [(hub.tea, 5000), (hub.rice, 1000)])
    d = group_delivery.deliver(s, oid, delivered_at=DAY1, received_by="陈师傅", actor_id=hub.manager)
    s.commit()
    note = group_documents.delivery_note(s, d.sale_id)
    assert note["received_by"] == "陈师傅" and group_documents.order_view(s, oid)["deliveries"][0]["received_by"] == "陈师傅"
    assert [(ln["unit"], ln["sold_by_weight"]) for ln in group_documents.order_view(s, oid)["deliveries"][0]["lines"]] == [
        ("piece", False), ("piece", False)]
    tea, rice = note["lines"]
    assert tea["certified"] and tea["certificate_no"] == "黔扶认〔2026〕0007" and not rice["certified"]
    assert [(x["lot_no"], x["qty_milli"]) for x in tea["lots"]] == [("T-EARLY", 4000), ("T-LATE", 1000)]
    assert note["certified_fen"] == 5 * 16800 and note["total_fen"] == 5 * 16800 + 6500
    with pytest.raises(NotFound):
        group_documents.delivery_note(s, 999999)


def test_lists_and_open_balances_are_grouped_per_order_and_buyer(hub, s):
    a = confirmed_and_picked(hub, s, [(hub.rice, 3000)])
    group_delivery.deliver(s, a, delivered_at=DAY1, actor_id=hub.manager)
    b = confirmed_and_picked(hub, s, [(hub.tea, 1000)], buyer=hub.union)
    group_delivery.deliver(s, b, delivered_at=DAY2, actor_id=hub.manager)
    group_payments.record_payment(s, b, amount_fen=16800, ref="U-1", received_on=dt.date(2026, 11, 4), actor_id=hub.manager)
    c = order(hub, s, [(hub.tea, 2000)])
    s.commit()
    rows, total = group_documents.list_orders(s)
    assert total == 3 and [r["id"] for r in rows] == [c, b, a]
    assert [(r["ordered_fen"], r["delivered_fen"], r["paid_fen"], r["balance_fen"], r["status"]) for r in rows] == [
        (33600, 0, 0, 0, "draft"), (16800, 16800, 16800, 0, "paid"), (19500, 19500, 0, 19500, "delivered")]
    assert group_documents.list_orders(s, status="draft")[1] == 1 and group_documents.list_orders(s, q="医院")[1] == 1
    balances = group_payments.open_balances(s)
    assert [(r["name"], r["balance_fen"], r["orders"], r["oldest_delivery"]) for r in balances] == [
        ("虎门镇政府机关饭堂", 19500, 1, dt.date(2026, 11, 2))]


# --- the statistics by buyer type match orders built with known totals -----------------------------

ORDER = st.tuples(st.sampled_from(["union", "enterprise", "canteen", "other"]),
                  st.integers(1, 5),           # boxes of tea
                  st.integers(1, 3000),        # grams of pork
                  st.integers(0, 20000))       # agreed price of the tea, fen


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=st.lists(ORDER, min_size=1, max_size=4))
def test_statistics_by_buyer_type_match_the_orders(hub, s, orders):
    day = dt.date(2026, 11, 9)
    for product, qty in ((hub.tea, 20000), (hub.pork, 12000)):  # enough for this example's orders
        ledger.move(s, product_id=product, qty_milli=qty, from_location_id=hub.world.loc["SUPPLIER"],
                    to_location_id=hub.base, reason=MoveReason.RECEIPT)
    before = reports.collaboration(s, first=day, last=day)["by_buyer_type"]
    expected = {t: [0, 0] for t in ("union", "enterprise", "canteen", "other")}
    for buyer_type, boxes, grams, price in orders:
        buyer = s.scalar(select(Buyer.id).where(Buyer.name == f"买方-{buyer_type}"))
        if buyer is None:
            buyer = buyers.create_buyer(s, buyers.BuyerIn(name=f"买方-{buyer_type}", buyer_type=buyer_type),
                                        actor_id=hub.manager).id
        oid = confirmed_and_picked(hub, s, [(hub.tea, boxes * 1000, price), (hub.pork, grams)], buyer=buyer)
        d = group_delivery.deliver(s, oid, delivered_at=dt.datetime(2026, 11, 9, 9, tzinfo=TZ), actor_id=hub.manager)
        s.commit()
        tea = price * boxes
        pork = (3800 * grams + 500) // 1000
        assert d.total_fen == tea + pork
        expected[buyer_type][0] += tea + pork
        expected[buyer_type][1] += tea
    after = reports.collaboration(s, first=day, last=day)["by_buyer_type"]
    for buyer_type, (total, certified) in expected.items():
        assert after[buyer_type]["total_fen"] - before[buyer_type]["total_fen"] == total
        assert after[buyer_type]["certified_fen"] - before[buyer_type]["certified_fen"] == certified


def test_reserved_stock_always_matches_the_confirmed_orders(hub, s):
    """The base's reserved figure is the sum of the lines of confirmed orders, through every step."""
    def consistent():
        held = s.scalar(select(func.coalesce(func.sum(GroupOrderLine.reserved_milli), 0))
                        .where(GroupOrderLine.product_id == hub.rice))
        assert hub.level(s, "BASE", hub.rice)[1] == held

    ids = [order(hub, s, [(hub.rice, q)]) for q in (3000, 5000, 7000)]
    for oid in ids:
        go.confirm_order(s, oid, actor_id=hub.manager)
        consistent()
    go.pick_order(s, ids[0], actor_id=hub.manager)
    consistent()
    go.cancel_order(s, ids[1], reason="取消", actor_id=hub.manager)
    consistent()
    go.cancel_order(s, ids[0], reason="取消", actor_id=hub.manager)
    consistent()
    s.commit()
    assert hub.level(s, "BASE", hub.rice) == (50000, 7000)


def test_the_dispatch_location_is_a_real_location(hub, s):
    loc = s.get(Location, hub.dispatch(s))
    assert loc.kind == LocationKind.DISPATCH and not loc.is_virtual
    assert go.dispatch_location(s).id == loc.id  # one, made once


# --- concurrency: two managers at once ----------------------------------------------------------------

def test_two_confirmations_racing_for_the_same_goods_hold_them_once(hub, world, s):
    ids = [order(hub, s, [(hub.rice, 30000)]) for _ in range(4)]  # 4 × 30 wanted, 50 at the base
    s.close()
    outcomes: dict[int, str] = {}

    def confirm(i: int) -> None:
        with world.Session() as own:
            try:
                go.confirm_order(own, ids[i], actor_id=hub.manager)
                own.commit()
                outcomes[i] = "confirmed"
            except go.GroupOrderError:
                own.rollback()
                outcomes[i] = "refused"

    assert run_threads(confirm, len(ids)) == []
    assert sorted(outcomes.values()) == ["confirmed", "refused", "refused", "refused"]
    assert hub.level(s, "BASE", hub.rice) == (50000, 30000)


def test_the_same_delivery_sent_twice_at_once_records_one_sale(hub, world, s):
    oid = confirmed_and_picked(hub, s, [(hub.tea, 3000)])
    s.close()
    results = []

    def send(_i: int) -> None:
        with world.Session() as own:
            results.append(group_delivery.deliver(own, oid, client_delivery_id="same-form", delivered_at=DAY2,
                                      actor_id=hub.manager).sale_id)
            own.commit()

    assert run_threads(send, 2) == []
    assert count(s, Sale, Sale.group_order_id == oid) == 1 and len(set(results)) == 1  # both answered with it
    assert hub.level(s, "CUSTOMER", hub.tea)[0] == 3000  # the goods left once


def test_the_dashboard_figures_count_due_orders_drafts_and_what_is_owed(hub, s):
    late = confirmed_and_picked(hub, s, [(hub.rice, 1000)], delivery_date=dt.date(2026, 11, 1))
    order(hub, s, [(hub.rice, 1000)])                                   # a draft
    later = order(hub, s, [(hub.rice, 1000)], delivery_date=dt.date(2026, 11, 20))
    go.confirm_order(s, later, actor_id=hub.manager)
    done = confirmed_and_picked(hub, s, [(hub.tea, 1000)])
    group_delivery.deliver(s, done, delivered_at=DAY2, actor_id=hub.manager)
    s.commit()
    assert group_payments.dashboard_figures(s, dt.date(2026, 11, 10)) == {"due": 1, "drafts": 1, "balance_fen": 16800}
    assert group_payments.dashboard_figures(s, dt.date(2026, 11, 20))["due"] == 2
    rows, total = group_documents.list_orders(s, due_by=dt.date(2026, 11, 10))
    assert total == 1 and rows[0]["id"] == late
