"""Delivering a picked order, closing what the buyer no longer takes, and taking goods back: a
delivery is a sale on account through the one sales service, a return a refund of that sale.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.audit import record
from inventory.localtime import utcnow
from inventory.models import Lot, Product, StockMove
from inventory.money import format_qty
from pos.sales import refunds
from pos.core.errors import PosError
from pos.group.models import GroupDelivery, GroupOrder, GroupOrderLine, GroupOrderStatus
from pos.models import PaymentMethod, Sale
from pos.sales.pricing import LineIn
from pos.sales.service import GROUP_PREFIX, SaleIn, record_sale
from pos.group.orders import (
    GroupOrderError, back_to_base, client_id_arg, delivery_sales, dispatch_location, is_int, locked_order,
    require_status, sent_before, take_back_undelivered, text_arg,
)
from pos.group.payments import settle


@dataclass(frozen=True)
class DeliveryResult:
    sale_id: int
    receipt_no: str
    total_fen: int
    created: bool


def _pick_lots(s: Session, line: GroupOrderLine, qty: int) -> tuple[tuple[Optional[int], int], ...]:
    """Take ``qty`` out of the line's picked lots, first expiry first, and count it delivered."""
    expiry = {lot.id: lot.expires_on for lot in s.scalars(
        select(Lot).where(Lot.id.in_([p.lot_id for p in line.picks if p.lot_id is not None])))}
    order = sorted(line.picks, key=lambda p: (p.lot_id is None, expiry.get(p.lot_id) is None,
                                              expiry.get(p.lot_id) or dt.date.max, p.id))
    taken, rest = [], qty
    for pick in order:
        have = pick.qty_milli - pick.delivered_milli - pick.returned_milli
        part = min(have, rest)
        if part > 0:
            taken.append((pick.lot_id, part))
            pick.delivered_milli += part
            rest -= part
    return tuple(taken)


def deliverable_milli(line: GroupOrderLine) -> int:
    return sum(p.qty_milli - p.delivered_milli - p.returned_milli for p in line.picks)


def deliver(s: Session, order_id: int, *, quantities: Optional[Mapping[int, int]] = None,
            delivered_at: Optional[dt.datetime] = None, received_by: Optional[str] = None,
            actor_id: Optional[int], client_delivery_id: Optional[str] = None) -> DeliveryResult:
    """Hand over picked goods: ``quantities`` {order line id: qty_milli} (None: all that is
    picked and not yet delivered). Records one sale, on account, on the delivery's local date.
    The same ``client_delivery_id`` again returns that delivery and records nothing."""
    client_delivery_id = client_id_arg(client_delivery_id, "client_delivery_id")
    received_by = text_arg(received_by, 40, _l("收货人"), "received_by")
    delivered_at = delivered_at or utcnow()
    if not isinstance(delivered_at, dt.datetime) or delivered_at.tzinfo is None:
        raise GroupOrderError(_l("送货时间必须带时区"), "delivered_at")
    if delivered_at > utcnow() + dt.timedelta(minutes=5):
        raise GroupOrderError(_l("送货时间不能晚于现在"), "delivered_at")
    order = locked_order(s, order_id)
    done = sent_before(s, order, Sale.client_sale_id, client_delivery_id, Sale.group_order_id,
                       _l("送货编号已用于另一张订单"), "client_delivery_id")
    if done is not None:
        return DeliveryResult(done.id, done.receipt_no, done.total_fen, False)
    require_status(order, GroupOrderStatus.PICKED)
    lines = {line.id: line for line in order.lines}
    if quantities is None:
        quantities = {line_id: deliverable_milli(line) for line_id, line in lines.items()}
    if not isinstance(quantities, Mapping):
        raise GroupOrderError(_l("送货数量格式不正确"), "quantities")
    wanted: list[tuple[GroupOrderLine, int]] = []
    for line_id, qty in quantities.items():
        line = lines.get(line_id)
        if line is None:
            raise GroupOrderError(_l("订单中没有这一行"), "quantities")
        if not is_int(qty) or qty < 0:
            raise GroupOrderError(_l("「%(product)s」送货数量不正确", product=line_product(s, line).name), f"qty-{line_id}")
        if qty == 0:
            continue
        product = line_product(s, line)
        can = deliverable_milli(line)
        if qty > can:
            raise GroupOrderError(_l("「%(product)s」最多还能送 %(can)s", product=product.name,
                                     can=format_qty(can, by_weight=product.weighed)), f"qty-{line_id}")
        if not product.weighed and qty % 1000:
            raise GroupOrderError(_l("「%(product)s」按件销售，数量必须是整数件", product=product.name), f"qty-{line_id}")
        wanted.append((line, qty))
    if not wanted:
        raise GroupOrderError(_l("请填写送货数量"), "quantities")
    wanted.sort(key=lambda item: item[0].line_no)

    sale_lines = [LineIn(product_id=line.product_id, qty_milli=qty, unit_price_fen=line.unit_price_fen,
                         lots=_pick_lots(s, line, qty)) for line, qty in wanted]
    number = len(delivery_sales(s, order.id)) + 1
    try:
        result = record_sale(s, SaleIn(
            channel="group", location_id=dispatch_location(s).id, lines=sale_lines, payments=(),
            client_sale_id=client_delivery_id or f"{order.order_no}/{number}", cashier_id=actor_id,
            sold_at=delivered_at, buyer_type=order.buyer_type.value, group_order_id=order.id,
            receipt_prefix=GROUP_PREFIX))
    except PosError as exc:
        s.expire(order)
        raise GroupOrderError(exc.message, exc.field) from None
    s.add(GroupDelivery(sale_id=result.sale_id, order_id=order.id, received_by=received_by))
    if all(line.qty_milli == sum(p.delivered_milli for p in line.picks) for line in order.lines):
        order.status = GroupOrderStatus.DELIVERED
        order.closed_at = utcnow()
    s.flush()
    record(s, user_id=actor_id, action="group_order.deliver", entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "receipt_no": result.receipt_no, "total_fen": result.total_fen,
                  "received_by": received_by, "lines": [[ln.product_id, q] for ln, q in wanted]})
    return DeliveryResult(result.sale_id, result.receipt_no, result.total_fen, True)


def line_product(s: Session, line: GroupOrderLine) -> Product:
    return s.get(Product, line.product_id)


def close_remainder(s: Session, order_id: int, *, reason: str, actor_id: Optional[int]) -> GroupOrder:
    """The buyer takes no more: what was picked and not delivered goes back to the base, and the
    order counts as delivered (with what was delivered so far)."""
    reason = text_arg(reason, 200, _l("原因"), "reason")
    if not reason:
        raise GroupOrderError(_l("请填写原因"), "reason")
    order = locked_order(s, order_id)
    require_status(order, GroupOrderStatus.PICKED)
    if not delivery_sales(s, order.id):
        raise GroupOrderError(_l("订单还没有送过货，请取消订单"), "status")
    take_back_undelivered(s, order, actor_id)
    order.status = GroupOrderStatus.DELIVERED
    order.closed_at = utcnow()
    s.flush()
    settle(s, order)
    record(s, user_id=actor_id, action="group_order.close", entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "reason": reason})
    return order


# --- returns and money -----------------------------------------------------------------------------

def return_goods(s: Session, order_id: int, *, receipt_no: str, lines: Sequence[tuple[int, int, bool]],
                 reason: str, actor_id: Optional[int], returned_at: Optional[dt.datetime] = None,
                 client_refund_id: Optional[str] = None) -> refunds.RefundResult:
    """The buyer sends goods back from a delivery: a refund of that delivery's sale, credited to
    the order's account; goods fit to sell go back to the base."""
    order = locked_order(s, order_id)
    require_status(order, GroupOrderStatus.PICKED, GroupOrderStatus.DELIVERED, GroupOrderStatus.PAID)
    sale = s.scalars(select(Sale).where(Sale.receipt_no == receipt_no)).first() if isinstance(receipt_no, str) else None
    if sale is None or sale.group_order_id != order.id:
        raise GroupOrderError(_l("送货单 %(no)s 不属于这张订单", no=str(receipt_no)[:40]), "receipt_no")
    try:
        result = refunds.refund(s, receipt_no=sale.receipt_no, lines=lines, method=PaymentMethod.BANK_TRANSFER.value,
                                reason=reason, cashier_id=actor_id, approved_by_id=actor_id,
                                client_refund_id=client_refund_id, refunded_at=returned_at, for_group_order=True)
    except PosError as exc:
        raise GroupOrderError(exc.message, exc.field) from None
    if result.created:
        # The refund brought the sellable goods back to the sale's location (dispatch): on to the base.
        returned = s.execute(
            select(StockMove.product_id, StockMove.lot_id, StockMove.qty_milli)
            .where(StockMove.ref_type == "refund", StockMove.ref_id == result.refund_id,
                   StockMove.to_location_id == dispatch_location(s).id).order_by(StockMove.id)
        ).all()
        back_to_base(s, order, [tuple(row) for row in returned], actor_id, result.refund_no)
        settle(s, order)
    return result
