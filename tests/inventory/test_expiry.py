"""Issue 18, point 11: expired goods never reach customers silently. A goods receipt refuses
expired lots; first-expiry-first-out never hands out an expired lot (expiry before today, local
date) to a sale, a transfer, a refill or a group order's pick; a sale of a product the books hold
only in expired lots goes through (sales are never blocked by stock) but is flagged with an alert;
write-offs and count shortages still take the expired lots first."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from inventory import expiry, ledger, receiving, transfers
from inventory.documents import DocStatus, GoodsReceipt, Transfer
from inventory.errors import ValidationError
from inventory.ledger import lot_level, move
from inventory.localtime import local_today
from inventory.models import Alert, AlertKind, Lot, MoveReason
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn, record_sale
from tests.fixtures.stock import engine, level_of, s, world  # noqa: F401  (fixtures)


def days(n: int) -> dt.date:
    return local_today() + dt.timedelta(days=n)


def _lot(world, s, product_id, qty_milli, lot_no, expires_on, location="BASE") -> int:
    """Goods on the books in a lot (received when still good; the expiry is what it is today)."""
    lot = Lot(product_id=product_id, lot_no=lot_no, expires_on=expires_on)
    s.add(lot)
    s.flush()
    move(s, product_id=product_id, qty_milli=qty_milli, from_location_id=world.loc["SUPPLIER"],
         to_location_id=world.loc[location], reason=MoveReason.RECEIPT, lot_id=lot.id)
    return lot.id


def _unlotted(world, s, product_id, qty_milli, location="BASE") -> None:
    move(s, product_id=product_id, qty_milli=qty_milli, from_location_id=world.loc["SUPPLIER"],
         to_location_id=world.loc[location], reason=MoveReason.RECEIPT)


def _receipt(world, s, product_id, **line):
    return receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc["BASE"], actor_id=world.manager_id,
                         lines=[{"product_id": product_id, "qty_milli": 5000, "cost_fen": 1000, **line}])


# --- receiving ------------------------------------------------------------------------------------

def test_point11_a_goods_receipt_refuses_an_expired_lot(world, s):
    tea = world.product(s, shelf_life_days=30)
    before = s.scalar(select(func.count()).select_from(GoodsReceipt))
    with pytest.raises(ValidationError) as caught:
        _receipt(world, s, tea.id, lot_no="L1", expires_on=days(-1))
    assert caught.value.field == "lines-0-expires_on" and "过期" in str(caught.value) and "不能入库" in str(caught.value)
    with pytest.raises(ValidationError):   # expired by its production date and shelf life
        _receipt(world, s, tea.id, lot_no="L2", produced_on=days(-31))
    assert s.scalar(select(func.count()).select_from(GoodsReceipt)) == before
    # expiring today is still good today
    posted = receiving.post_receipt(s, _receipt(world, s, tea.id, lot_no="L3", expires_on=days(0)).id,
                                actor_id=world.manager_id)
    assert posted.status == DocStatus.POSTED and level_of(s, world.loc["BASE"], tea.id) == 5000


def test_point11_a_draft_receipt_whose_goods_expired_meanwhile_is_not_posted(world, s):
    tea = world.product(s)
    draft = _receipt(world, s, tea.id, lot_no="L1", expires_on=days(3))
    s.execute(update(draft.lines[0].__class__).values(expires_on=days(-1)))   # three days later …
    s.expire_all()
    with pytest.raises(ValidationError) as caught:
        receiving.post_receipt(s, draft.id, actor_id=world.manager_id)
    assert "过期" in str(caught.value)
    assert receiving.get_receipt(s, draft.id, fresh=True).status == DocStatus.DRAFT
    assert level_of(s, world.loc["BASE"], tea.id) == 0


# --- first expiry first out -------------------------------------------------------------------------

def test_point11_fefo_never_hands_out_an_expired_lot(world, s):
    tea = world.product(s)
    old = _lot(world, s, tea.id, 3000, "OLD", days(-1))
    fresh = _lot(world, s, tea.id, 5000, "FRESH", days(20))
    later = _lot(world, s, tea.id, 2000, "LATER", days(90))
    today = _lot(world, s, tea.id, 1000, "TODAY", days(0))
    base = world.loc["BASE"]
    assert expiry.fefo_allocate(s, location_id=base, product_id=tea.id, qty_milli=4000) == [(today, 1000), (fresh, 3000)]
    assert expiry.allocate_fresh(s, location_id=base, product_id=tea.id, qty_milli=7000) == [
        (today, 1000), (fresh, 5000), (later, 1000)]
    # write-offs and count shortages take the expired lot first
    assert expiry.allocate_removal(s, location_id=base, product_id=tea.id, qty_milli=4000) == [(old, 3000), (today, 1000)]
    assert old not in [lot for lot, _ in expiry.fefo_allocate(s, location_id=base, product_id=tea.id, qty_milli=9000)]


def test_point11_a_transfer_never_takes_an_expired_lot(world, s):
    tea = world.product(s)
    old = _lot(world, s, tea.id, 3000, "OLD", days(-1))
    fresh = _lot(world, s, tea.id, 2000, "FRESH", days(20))
    _unlotted(world, s, tea.id, 1000)
    common = dict(from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"], actor_id=world.manager_id)
    transfer = transfers.create_transfer(s, lines=[{"product_id": tea.id, "qty_milli": 3000}], **common)
    assert sorted((ln.lot_id or 0, ln.qty_milli) for ln in transfer.lines) == [(0, 1000), (fresh, 2000)]
    transfers.post_transfer(s, transfer.id, actor_id=world.manager_id)
    assert lot_level(s, world.loc["HALL"], old) == 0 and lot_level(s, world.loc["BASE"], old) == 3000

    # what is left at the base is expired: refused, naming why, nothing written
    before = s.scalar(select(func.count()).select_from(Transfer))
    with pytest.raises(ValidationError) as caught:
        transfers.create_transfer(s, lines=[{"product_id": tea.id, "qty_milli": 1000}], **common)
    assert "过期" in str(caught.value) and caught.value.field == "lines-0-qty_milli"
    with pytest.raises(ValidationError) as caught:       # naming the expired lot does not help
        transfers.create_transfer(s, lines=[{"product_id": tea.id, "qty_milli": 1000, "lot_id": old}], **common)
    assert "OLD" in str(caught.value) and "过期" in str(caught.value)
    assert s.scalar(select(func.count()).select_from(Transfer)) == before
    with pytest.raises(expiry.ExpiredStock):
        expiry.allocate_fresh(s, location_id=world.loc["BASE"], product_id=tea.id, qty_milli=1000)


def test_point11_a_draft_transfer_whose_lot_expired_meanwhile_is_not_posted(world, s):
    tea = world.product(s)
    lot = _lot(world, s, tea.id, 3000, "SOON", days(1))
    transfer = transfers.create_transfer(s, from_location_id=world.loc["BASE"], to_location_id=world.loc["HALL"],
                                     lines=[{"product_id": tea.id, "qty_milli": 3000}], actor_id=world.manager_id)
    assert [ln.lot_id for ln in transfer.lines] == [lot]
    s.execute(update(Lot).where(Lot.id == lot).values(expires_on=days(-1)))   # two days later …
    s.expire_all()
    with pytest.raises(ValidationError) as caught:
        transfers.post_transfer(s, transfer.id, actor_id=world.manager_id)
    assert "SOON" in str(caught.value)
    assert transfers.get_transfer(s, transfer.id, fresh=True).status == DocStatus.DRAFT
    assert level_of(s, world.loc["HALL"], tea.id) == 0


# --- selling -----------------------------------------------------------------------------------------

def _sell(world, s, product_id, qty_milli):
    return record_sale(s, SaleIn(channel="group", location_id=world.loc["HALL"], buyer_type="other",
                                 receipt_prefix="G", lines=[LineIn(product_id, qty_milli)],
                                 payments=[PaymentIn("bank_transfer", 16800 * qty_milli // 1000)]))


def _open_alerts(s):
    return s.scalars(select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.id)).all()


def test_point11_a_sale_takes_the_fresh_lot_not_the_expired_one(world, s):
    tea = world.product(s)
    old = _lot(world, s, tea.id, 2000, "OLD", days(-3), location="HALL")
    fresh = _lot(world, s, tea.id, 2000, "FRESH", days(30), location="HALL")
    assert not expiry.expired_only(s, location_id=world.loc["HALL"], product_id=tea.id)
    _sell(world, s, tea.id, 1000)
    assert lot_level(s, world.loc["HALL"], old) == 2000 and lot_level(s, world.loc["HALL"], fresh) == 1000
    assert _open_alerts(s) == []


def test_point11_a_sale_of_only_expired_stock_goes_through_and_alerts_the_manager(world, s):
    tea = world.product(s)
    old = _lot(world, s, tea.id, 2000, "OLD", days(-3), location="HALL")
    assert expiry.expired_only(s, location_id=world.loc["HALL"], product_id=tea.id)
    result = _sell(world, s, tea.id, 1000)
    assert result.sale_id                                          # recorded, never blocked
    assert lot_level(s, world.loc["HALL"], old) == 2000            # not booked out of the expired lot
    assert level_of(s, world.loc["HALL"], tea.id) == 1000
    [alert] = _open_alerts(s)
    assert (alert.kind, alert.location_id, alert.product_id, alert.ref_type, alert.ref_id) == (
        AlertKind.EXPIRING_LOT, world.loc["HALL"], tea.id, "lot", old)
    assert "只剩过期批次 OLD" in alert.message and "售出" in alert.message
    _sell(world, s, tea.id, 1000)
    assert len(_open_alerts(s)) == 1                               # one alert per lot, not per sale


def test_point11_expired_only_means_nothing_else_on_the_books(world, s):
    tea = world.product(s)
    hall = world.loc["HALL"]
    assert not expiry.expired_only(s, location_id=hall, product_id=tea.id)          # nothing at all
    _lot(world, s, tea.id, 1000, "OLD", days(-1), location="HALL")
    assert expiry.expired_only(s, location_id=hall, product_id=tea.id)
    _unlotted(world, s, tea.id, 1000, location="HALL")
    assert not expiry.expired_only(s, location_id=hall, product_id=tea.id)          # goods without a lot too
    assert not expiry.expired_only(s, location_id=hall, product_id=tea.id, today=days(-5))


def test_point11_a_counter_refill_and_a_group_pick_use_the_refusing_allocation():
    """The van's goods going into a counter and a group order's pick leave a real location for
    customers: they use ``allocate_fresh``; write-offs and count shortages ``allocate_removal``."""
    import inspect

    from inventory import stock_views
    from kiosks import refill_visits
    from pos.group import orders as group_orders

    assert "allocate_fresh(s, location_id=van" in inspect.getsource(refill_visits)
    assert "allocate_fresh(s, location_id=base.id" in inspect.getsource(group_orders)
    assert "allocate_removal(s, location_id=counter" in inspect.getsource(refill_visits)
    assert "allocate_removal(session" in inspect.getsource(stock_views)
    assert ledger.move  # the ledger itself is unchanged: the rule is in the allocation
