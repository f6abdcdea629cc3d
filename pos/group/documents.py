"""What the group pages and printouts read: one order with its lines, deliveries, figures and the
actions it allows; the delivery note (送货单) of one delivery; the list of orders with their money.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, cast, func, or_, select
from sqlalchemy.orm import Session, selectinload

from inventory.certification import certified_product_ids
from inventory.models import Lot, Product, StockMove
from inventory.money import line_amount_fen
from pos.core.errors import NotFound
from pos.group.models import Buyer, GroupDelivery, GroupOrder, GroupOrderLine, GroupOrderStatus
from pos.models import Refund, RefundLine, Sale, SaleLine, SaleStatus
from pos.group.delivery import deliverable_milli
from pos.group.labels import PRICE_SOURCES, status_label
from pos.group.orders import delivery_sales, is_int
from pos.group.payments import order_figures, order_money


def ordered_q():
    # price × qty / 1000 rounded half up, as line_amount_fen does, in 64-bit integers.
    amount = (cast(GroupOrderLine.unit_price_fen, BigInteger) * GroupOrderLine.qty_milli + 500) // 1000
    return (select(GroupOrderLine.order_id.label("order_id"), func.sum(amount).label("fen"))
            .group_by(GroupOrderLine.order_id))


def _actions(order: GroupOrder, figures: dict[str, int], delivered_any: bool, deliverable: bool) -> set[str]:
    st = order.status
    actions: set[str] = set()
    if st == GroupOrderStatus.DRAFT:
        actions |= {"edit", "confirm", "cancel"}
    elif st == GroupOrderStatus.CONFIRMED:
        actions |= {"pick", "cancel"}
    elif st == GroupOrderStatus.PICKED:
        if deliverable:
            actions.add("deliver")
        actions.add("close" if delivered_any else "cancel")
    if st in (GroupOrderStatus.PICKED, GroupOrderStatus.DELIVERED, GroupOrderStatus.PAID) and delivered_any:
        actions.add("return")
        if figures["balance_fen"] > 0:
            actions.add("pay")
        if figures["balance_fen"] < 0:
            actions.add("repay")
    return actions


def order_view(s: Session, order_id: Any) -> dict[str, Any]:
    """Everything the order page and its printouts show."""
    order = s.scalars(select(GroupOrder).where(GroupOrder.id == order_id)
                      .options(selectinload(GroupOrder.lines).selectinload(GroupOrderLine.picks),
                               selectinload(GroupOrder.payments))).first() if is_int(order_id) else None
    if order is None:
        raise NotFound(_l("订单不存在"), "order_id")
    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_([ln.product_id for ln in order.lines])))}
    certs = certified_product_ids(s, list(products), order.delivery_date)
    delivered_qty = dict(s.execute(
        select(SaleLine.product_id, func.sum(SaleLine.qty_milli)).join(Sale, Sale.id == SaleLine.sale_id)
        .where(Sale.group_order_id == order.id, Sale.status == SaleStatus.COMPLETED).group_by(SaleLine.product_id)).all())
    returned_qty = dict(s.execute(
        select(SaleLine.product_id, func.sum(RefundLine.qty_milli)).join(SaleLine, SaleLine.id == RefundLine.sale_line_id)
        .join(Sale, Sale.id == SaleLine.sale_id).where(Sale.group_order_id == order.id)
        .group_by(SaleLine.product_id)).all())
    lines, ordered, certified = [], 0, 0
    for ln in order.lines:
        p = products[ln.product_id]
        amount = line_amount_fen(ln.unit_price_fen, ln.qty_milli)
        cert = certs[p.id]
        ordered += amount
        certified += amount if cert.certified else 0
        lines.append({
            "id": ln.id, "line_no": ln.line_no, "product_id": p.id, "sku": p.sku, "name": p.name,
            "unit": p.unit.value, "sold_by_weight": p.weighed, "qty_milli": ln.qty_milli,
            "unit_price_fen": ln.unit_price_fen, "list_price_fen": ln.list_price_fen,
            "price_source": ln.price_source, "price_source_label": str(PRICE_SOURCES.get(ln.price_source, "")),
            "amount_fen": amount, "certified": cert.certified, "certificate_no": cert.certificate_no,
            "reserved_milli": ln.reserved_milli, "picked_milli": ln.picked_milli,
            "delivered_milli": int(delivered_qty.get(p.id, 0)), "returned_milli": int(returned_qty.get(p.id, 0)),
            "taken_back_milli": sum(pk.returned_milli for pk in ln.picks),
            "deliverable_milli": deliverable_milli(ln),
        })
    deliveries = _delivery_views(s, order.id)
    figures = order_figures(s, order.id)
    return {
        "order": order, "buyer": order.buyer, "status": order.status.value, "status_label": status_label(order.status),
        "partly_delivered": order.status == GroupOrderStatus.PICKED and bool(deliveries),
        "lines": lines, "ordered_fen": ordered, "certified_fen": certified, **figures,
        "deliveries": deliveries, "payments": list(order.payments),
        "actions": _actions(order, figures, bool(deliveries), any(ln["deliverable_milli"] > 0 for ln in lines)),
    }


def _delivery_views(s: Session, order_id: int) -> list[dict[str, Any]]:
    sales = delivery_sales(s, order_id)
    if not sales:
        return []
    ids = [sale.id for sale in sales]
    back = dict(s.execute(select(RefundLine.sale_line_id, func.sum(RefundLine.qty_milli))
                          .join(SaleLine, SaleLine.id == RefundLine.sale_line_id)
                          .where(SaleLine.sale_id.in_(ids)).group_by(RefundLine.sale_line_id)).all())
    returned = dict(s.execute(select(Refund.sale_id, func.sum(Refund.total_fen)).where(Refund.sale_id.in_(ids))
                              .group_by(Refund.sale_id)).all())
    products = {p.id: p for p in s.scalars(select(Product).join(SaleLine, SaleLine.product_id == Product.id)
                                            .where(SaleLine.sale_id.in_(ids)))}
    receivers = dict(s.execute(select(GroupDelivery.sale_id, GroupDelivery.received_by)
                               .where(GroupDelivery.sale_id.in_(ids))).all())
    views = []
    for sale in sales:
        views.append({
            "sale_id": sale.id, "receipt_no": sale.receipt_no, "sold_at": sale.sold_at, "local_date": sale.local_date,
            "total_fen": sale.total_fen, "certified_fen": sum(ln.net_fen for ln in sale.lines if ln.certified),
            "returned_fen": int(returned.get(sale.id, 0)), "received_by": receivers.get(sale.id),
            "lines": [{"sale_line_id": ln.id, "product_id": ln.product_id, "name": products[ln.product_id].name,
                       "unit": products[ln.product_id].unit.value, "sold_by_weight": products[ln.product_id].weighed,
                       "qty_milli": ln.qty_milli, "net_fen": ln.net_fen, "certified": ln.certified,
                       "refundable_milli": ln.qty_milli - int(back.get(ln.id, 0))} for ln in sale.lines],
        })
    return views


def delivery_note(s: Session, sale_id: Any) -> dict[str, Any]:
    """The 送货单 of one delivery: its lines as sold (certified as judged on the delivery date),
    with the lots handed over."""
    sale = s.get(Sale, sale_id) if is_int(sale_id) else None
    if sale is None or sale.group_order_id is None:
        raise NotFound(_l("送货单不存在"), "sale_id")
    order = s.get(GroupOrder, sale.group_order_id)
    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_([ln.product_id for ln in sale.lines])))}
    lots: dict[int, list[dict[str, Any]]] = {}
    for product_id, lot_no, expires_on, qty in s.execute(
        select(StockMove.product_id, Lot.lot_no, Lot.expires_on, StockMove.qty_milli)
        .outerjoin(Lot, Lot.id == StockMove.lot_id)
        .where(StockMove.ref_type == "sale", StockMove.ref_id == sale.id).order_by(StockMove.id)
    ).all():
        if lot_no is not None:
            lots.setdefault(product_id, []).append({"lot_no": lot_no, "expires_on": expires_on, "qty_milli": qty})
    lines = []
    for ln in sale.lines:
        p = products[ln.product_id]
        origin = " · ".join(x for x in (ln.origin_county, ln.origin_township, ln.origin_village) if x)
        lines.append({"line_no": ln.line_no, "sku": p.sku, "name": p.name, "unit": p.unit.value,
                      "sold_by_weight": p.weighed, "qty_milli": ln.qty_milli, "unit_price_fen": ln.unit_price_fen,
                      "net_fen": ln.net_fen, "certified": ln.certified, "certificate_no": ln.certificate_no,
                      "origin": origin, "lots": lots.get(ln.product_id, [])})
    return {"order": order, "buyer": order.buyer if order else None, "sale": sale, "lines": lines,
            "received_by": s.scalar(select(GroupDelivery.received_by).where(GroupDelivery.sale_id == sale.id)),
            "total_fen": sale.total_fen, "certified_fen": sum(ln.net_fen for ln in sale.lines if ln.certified)}


def list_orders(s: Session, *, status: Optional[str] = None, buyer_id: Optional[int] = None, q: Optional[str] = None,
                page: int = 1, per_page: int = 30, due_by: Optional[dt.date] = None) -> tuple[list[dict[str, Any]], int]:
    """Orders newest first, with their money figures (grouped in SQL, one statement a page).
    ``due_by``: only confirmed or picked orders to be delivered by that day (or late)."""
    ordered, money = ordered_q().subquery(), order_money()
    where = []
    if status:
        try:
            where.append(GroupOrder.status == GroupOrderStatus(status))
        except ValueError:
            return [], 0
    if is_int(buyer_id):
        where.append(GroupOrder.buyer_id == buyer_id)
    if due_by is not None:
        where += [GroupOrder.status.in_((GroupOrderStatus.CONFIRMED, GroupOrderStatus.PICKED)),
                  GroupOrder.delivery_date <= due_by]
    if q and q.strip():
        like = f"%{q.strip()}%"
        where.append(or_(GroupOrder.order_no.ilike(like), Buyer.name.ilike(like)))
    total = s.scalar(select(func.count()).select_from(GroupOrder).join(Buyer, Buyer.id == GroupOrder.buyer_id)
                     .where(*where)) or 0
    rows = s.execute(
        money.join(
            select(GroupOrder.id, GroupOrder.order_no, Buyer.id, Buyer.name, GroupOrder.buyer_type, GroupOrder.status,
                   GroupOrder.delivery_date, func.coalesce(ordered.c.fen, 0), money.delivered, money.returned,
                   money.paid, money.balance)
            .join(Buyer, Buyer.id == GroupOrder.buyer_id)
            .outerjoin(ordered, ordered.c.order_id == GroupOrder.id))
        .where(*where).order_by(GroupOrder.id.desc()).limit(per_page).offset((max(page, 1) - 1) * per_page)
    ).all()
    out = []
    for oid, no, bid, bname, btype, st, day, o, d, r, p, b in rows:
        out.append({"id": oid, "order_no": no, "buyer_id": bid, "buyer_name": bname, "buyer_type": btype.value,
                    "status": st.value, "status_label": status_label(st), "delivery_date": day,
                    "ordered_fen": int(o), "delivered_fen": int(d), "returned_fen": int(r), "paid_fen": int(p),
                    "balance_fen": int(b)})
    return out, total
