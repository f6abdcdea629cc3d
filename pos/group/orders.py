"""Group orders (团购订单): a buyer organisation orders at list or agreed prices; the goods leave
the logistics base and are delivered on account.

The life of an order, and what each step changes:

- **draft**: lines only; nothing is held.
- **confirmed**: every line is reserved at the base (``stock_levels.reserved_milli``, one atomic
  update per line): transfers, refills and write-offs can no longer take those goods.
- **picked**: the reservation becomes a move, base → dispatch, lot by lot first expiry first out;
  the lots are kept (``group_order_picks``) and later deliveries hand over exactly those lots.
- a **delivery** records a sale through the one sales service (channel ``group``, the order's
  buyer type, sold on the delivery's date), taking the picked lots from dispatch to the customer.
  A delivery may be partial; when everything ordered is delivered, or the rest is closed (its
  goods go back to the base), the order is **delivered** (``pos.group.delivery``).
- a **return** is a refund of a delivery's sale (counted on its own day, with the original
  lines' certified flags); goods fit to sell go back to the base (``pos.group.delivery``).
- **payments** on account (a bank transfer and its reference) settle the balance: delivered −
  returned − paid. A delivered order whose balance is zero is **paid** (``pos.group.payments``).
- **cancelled**: allowed until the first delivery; the reservation is released and picked goods
  go back to the base.

So every figure of the statistics comes from sales and refunds, as for the hall and the counters.
This module enters, reserves, picks and cancels orders; what the pages and printouts read is in
``pos.group.documents``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventory import ledger, reservations
from inventory.audit import record
from inventory.errors import InventoryError
from inventory.localtime import local_date, local_today, utcnow
from inventory.models import Location, LocationKind, MoveReason, Product
from inventory.money import line_amount_fen
from inventory.expiry import allocate_fresh
from inventory.transfers import logistics_base
from pos.group.buyers import agreed_prices, get_buyer
from pos.core.errors import Conflict, NotFound, PosError
from pos.group.models import Buyer, GroupOrder, GroupOrderLine, GroupOrderPick, GroupOrderStatus
from pos.models import Sale, SaleStatus
from pos.sales.service import document_number, next_number
from pos.group.labels import status_label


ORDER_PREFIX = "TG"            # order numbers TG-20261126-0001 (团购)
DISPATCH_CODE = "DISPATCH"     # the location picked goods wait in for delivery
MAX_LINES = 200
MAX_PRICE_FEN = 100_000_000
MAX_ORDER_FEN = 2_000_000_000  # integer columns are 32-bit on PostgreSQL


class GroupOrderError(PosError):
    """A step of a group order that the rules refuse."""


@dataclass(frozen=True)
class OrderLineIn:
    product_id: int
    qty_milli: int
    unit_price_fen: Optional[int] = None   # None: the buyer's agreed price, else the catalogue price


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def client_id_arg(value: Any, field: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise GroupOrderError(_l("编号必须是 1 到 64 个字符"), field)
    return value


def text_arg(value: Any, limit: int, label: Any, field: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise GroupOrderError(_l("%(field)s格式不正确", field=label), field)
    value = value.strip()
    if len(value) > limit:
        raise GroupOrderError(_l("%(field)s最多 %(n)s 个字", field=label, n=limit), field)
    return value or None


# --- locations -------------------------------------------------------------------------------------

def dispatch_location(s: Session) -> Location:
    """团购待发区: where picked goods wait for their delivery (made on first use)."""
    loc = s.scalars(select(Location).where(Location.code == DISPATCH_CODE)).first()
    if loc is None:
        loc = s.scalars(select(Location).where(Location.kind == LocationKind.DISPATCH).order_by(Location.id)).first()
    if loc is None:
        loc = Location(code=DISPATCH_CODE, name="团购待发区", kind=LocationKind.DISPATCH, active=True)
        s.add(loc)
        s.flush()
    return loc


def base_location(s: Session) -> Location:
    try:
        return logistics_base(s)
    except InventoryError as exc:
        raise GroupOrderError(exc.message) from None


# --- entering orders -------------------------------------------------------------------------------

def check_lines(s: Session, buyer_id: int, lines: Sequence[OrderLineIn]) -> list[dict[str, Any]]:
    """Validated line values: the product, a whole number of pieces (or a weight), and the price:
    the one given, else the buyer's agreed price, else the catalogue price."""
    if not isinstance(lines, (list, tuple)) or not lines:
        raise GroupOrderError(_l("订单至少要有一种商品"), "lines")
    if len(lines) > MAX_LINES:
        raise GroupOrderError(_l("一张订单最多 %(n)s 行", n=MAX_LINES), "lines")
    ids = []
    for i, line in enumerate(lines):
        if not isinstance(line, OrderLineIn) or not is_int(line.product_id):
            raise GroupOrderError(_l("第 %(n)s 行：请选择商品", n=i + 1), f"lines-{i}-product_id")
        ids.append(line.product_id)
    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_(ids)))}
    agreed = agreed_prices(s, buyer_id, ids)
    rows, seen, total = [], set(), 0
    for i, line in enumerate(lines):
        n = i + 1
        product = products.get(line.product_id)
        if product is None:
            raise GroupOrderError(_l("第 %(n)s 行：商品不存在", n=n), f"lines-{i}-product_id")
        if not product.active:
            raise GroupOrderError(_l("第 %(n)s 行：「%(product)s」已停售", n=n, product=product.name),
                                  f"lines-{i}-product_id")
        if product.id in seen:
            raise GroupOrderError(_l("第 %(n)s 行：「%(product)s」重复，请合并为一行", n=n, product=product.name),
                                  f"lines-{i}-product_id")
        seen.add(product.id)
        qty = line.qty_milli
        if not is_int(qty) or qty <= 0:
            raise GroupOrderError(_l("第 %(n)s 行：数量必须大于零", n=n), f"lines-{i}-qty_milli")
        if qty > ledger.MAX_QTY_MILLI:
            raise GroupOrderError(_l("第 %(n)s 行：数量太大", n=n), f"lines-{i}-qty_milli")
        if not product.weighed and qty % 1000:
            raise GroupOrderError(_l("第 %(n)s 行：「%(product)s」按件销售，数量必须是整数件", n=n, product=product.name),
                                  f"lines-{i}-qty_milli")
        if line.unit_price_fen is not None:
            price, source = line.unit_price_fen, "manual"
            if not is_int(price) or not 0 <= price <= MAX_PRICE_FEN:
                raise GroupOrderError(_l("第 %(n)s 行：单价不正确", n=n), f"lines-{i}-unit_price_fen")
            if price == agreed.get(product.id):
                source = "agreed"
        elif product.id in agreed:
            price, source = agreed[product.id], "agreed"
        else:
            price, source = product.price_fen, "list"
        total += line_amount_fen(price, qty)
        if total > MAX_ORDER_FEN:
            raise GroupOrderError(_l("订单金额太大"), "lines")
        rows.append({"line_no": n, "product_id": product.id, "qty_milli": qty, "unit_price_fen": price,
                     "list_price_fen": product.price_fen, "price_source": source})
    return rows


def _header(buyer: Buyer, delivery_date: Any, delivery_address: Any, contact: Any, note: Any) -> dict[str, Any]:
    if not isinstance(delivery_date, dt.date) or isinstance(delivery_date, dt.datetime):
        raise GroupOrderError(_l("请填写送货日期"), "delivery_date")
    if delivery_date > local_today() + dt.timedelta(days=366):
        raise GroupOrderError(_l("送货日期不能超过一年以后"), "delivery_date")
    return {
        "delivery_date": delivery_date,
        "delivery_address": text_arg(delivery_address, 200, _l("送货地址"), "delivery_address") or buyer.address,
        "contact": text_arg(contact, 80, _l("联系人"), "contact")
        or " ".join(x for x in (buyer.contact_name, buyer.contact_phone) if x) or None,
        "note": text_arg(note, 1000, _l("备注"), "note"),
    }


def create_order(s: Session, *, buyer_id: int, lines: Sequence[OrderLineIn], delivery_date: dt.date,
                 delivery_address: Optional[str] = None, contact: Optional[str] = None, note: Optional[str] = None,
                 actor_id: Optional[int], client_order_id: Optional[str] = None, source: str = "manual",
                 ordered_at: Optional[dt.datetime] = None) -> GroupOrder:
    """A draft order, numbered by the local day it is entered (``ordered_at``, default now: an
    order taken on paper earlier may be entered with its own date). The same ``client_order_id``
    again (a form sent twice) returns the order it made, and makes nothing new."""
    client_order_id = client_id_arg(client_order_id, "client_order_id")
    if client_order_id is not None:
        existing = s.scalars(select(GroupOrder).where(GroupOrder.client_order_id == client_order_id)).first()
        if existing is not None:
            return existing
    buyer = get_buyer(s, buyer_id)
    if not buyer.active:
        raise GroupOrderError(_l("买方单位「%(name)s」已停用", name=buyer.name), "buyer_id")
    header = _header(buyer, delivery_date, delivery_address, contact, note)
    rows = check_lines(s, buyer.id, lines)
    ordered_at = ordered_at or utcnow()
    if not isinstance(ordered_at, dt.datetime) or ordered_at.tzinfo is None or ordered_at > utcnow():
        raise GroupOrderError(_l("下单时间不正确"), "ordered_at")
    day = local_date(ordered_at)
    try:
        with s.begin_nested():
            order = GroupOrder(
                order_no=document_number(ORDER_PREFIX, day, next_number(s, ORDER_PREFIX, day)), created_at=ordered_at,
                client_order_id=client_order_id, buyer_id=buyer.id, buyer_type=buyer.buyer_type,
                status=GroupOrderStatus.DRAFT, source="import" if source == "import" else "manual",
                created_by_id=actor_id, **header)
            order.lines = [GroupOrderLine(**row) for row in rows]
            s.add(order)
            s.flush()
    except IntegrityError:
        existing = s.scalars(select(GroupOrder).where(GroupOrder.client_order_id == client_order_id)).first() \
            if client_order_id else None
        if existing is None:
            raise
        return existing
    record(s, user_id=actor_id, action="group_order.create", entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "buyer_id": buyer.id, "lines": rows, "source": order.source})
    return order


def locked_order(s: Session, order_id: Any) -> GroupOrder:
    """The order, locked for the step (PostgreSQL: FOR UPDATE; SQLite serialises writers)."""
    order = s.scalars(select(GroupOrder).where(GroupOrder.id == order_id).with_for_update()
                      .execution_options(populate_existing=True)).first() if is_int(order_id) else None
    if order is None:
        raise NotFound(_l("订单不存在"), "order_id")
    return order


def require_status(order: GroupOrder, *allowed: GroupOrderStatus) -> None:
    if order.status not in allowed:
        raise GroupOrderError(_l("订单 %(no)s 当前为「%(status)s」，不能这样操作",
                                 no=order.order_no, status=status_label(order.status)), "status")


def sent_before(s: Session, order: GroupOrder, key, client_id: Optional[str], order_key, message: Any,
                field: str) -> Any:
    """What the same form made when it was sent before (the row whose ``key`` is ``client_id``),
    else None. Looked up under the order's lock, so a form sent twice at once finds the first
    one's; refused (``message`` on ``field``) when it belongs to another order."""
    if client_id is None:
        return None
    done = s.scalars(select(key.class_).where(key == client_id)).first()
    if done is not None and getattr(done, order_key.key) != order.id:
        raise Conflict(message, field)
    return done


def update_order(s: Session, order_id: int, *, lines: Sequence[OrderLineIn], delivery_date: dt.date,
                 delivery_address: Optional[str] = None, contact: Optional[str] = None, note: Optional[str] = None,
                 actor_id: Optional[int]) -> GroupOrder:
    """Change a draft (once confirmed, stock is held: cancel and enter it again instead)."""
    order = locked_order(s, order_id)
    require_status(order, GroupOrderStatus.DRAFT)
    header = _header(order.buyer, delivery_date, delivery_address, contact, note)
    rows = check_lines(s, order.buyer_id, lines)
    before = _lines_snapshot(order)
    for key, value in header.items():
        setattr(order, key, value)
    s.execute(delete(GroupOrderLine).where(GroupOrderLine.order_id == order.id))
    s.expire(order, ["lines"])
    s.add_all(GroupOrderLine(order_id=order.id, **row) for row in rows)
    s.flush()
    record(s, user_id=actor_id, action="group_order.update", entity="group_order", entity_id=order.id,
           before={"lines": before}, after={"lines": rows, **{k: str(v) for k, v in header.items()}})
    return order


def _lines_snapshot(order: GroupOrder) -> list[dict[str, int]]:
    return [{"product_id": ln.product_id, "qty_milli": ln.qty_milli, "unit_price_fen": ln.unit_price_fen}
            for ln in order.lines]


# --- reserving and picking -------------------------------------------------------------------------

def _stock_step(s: Session, order: GroupOrder, step: Callable[[GroupOrderLine], None], status: GroupOrderStatus,
                at_field: str) -> None:
    """A step that holds or moves stock, all or nothing: ``step`` for every line, then the order
    takes ``status`` and its time (``at_field``). A refusal of the stock rules leaves the order as
    it was and is the order's refusal."""
    try:
        with s.begin_nested():
            for line in order.lines:
                step(line)
            order.status = status
            setattr(order, at_field, utcnow())
            s.flush()
    except InventoryError as exc:
        s.expire(order)
        raise GroupOrderError(exc.message, "lines") from None


def confirm_order(s: Session, order_id: int, *, actor_id: Optional[int]) -> GroupOrder:
    """Reserve every line at the base, all or nothing. Confirming a confirmed order again (a
    double click) changes nothing."""
    order = locked_order(s, order_id)
    if order.status == GroupOrderStatus.CONFIRMED:
        return order
    require_status(order, GroupOrderStatus.DRAFT)
    base = base_location(s)

    def reserve(line: GroupOrderLine) -> None:
        reservations.reserve(s, location_id=base.id, product_id=line.product_id, qty_milli=line.qty_milli)
        line.reserved_milli = line.qty_milli

    _stock_step(s, order, reserve, GroupOrderStatus.CONFIRMED, "confirmed_at")
    record(s, user_id=actor_id, action="group_order.confirm", entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "reserved": _lines_snapshot(order)})
    return order


def pick_order(s: Session, order_id: int, *, actor_id: Optional[int]) -> GroupOrder:
    """Move the reserved goods out of the base to dispatch, lots first expiry first out, and keep
    which lots were taken. Picking a picked order again (a double click) changes nothing."""
    order = locked_order(s, order_id)
    if order.status == GroupOrderStatus.PICKED:
        return order
    require_status(order, GroupOrderStatus.CONFIRMED)
    base, dispatch = base_location(s), dispatch_location(s)

    def pick(line: GroupOrderLine) -> None:
        reservations.release(s, location_id=base.id, product_id=line.product_id, qty_milli=line.reserved_milli)
        line.reserved_milli = 0
        for lot_id, qty in allocate_fresh(s, location_id=base.id, product_id=line.product_id,
                                          qty_milli=line.qty_milli):
            ledger.move(s, product_id=line.product_id, qty_milli=qty, from_location_id=base.id,
                        to_location_id=dispatch.id, reason=MoveReason.TRANSFER, lot_id=lot_id,
                        ref_type="group_order", ref_id=order.id, user_id=actor_id, note=order.order_no)
            line.picks.append(GroupOrderPick(lot_id=lot_id, qty_milli=qty))
        line.picked_milli = line.qty_milli

    _stock_step(s, order, pick, GroupOrderStatus.PICKED, "picked_at")
    record(s, user_id=actor_id, action="group_order.pick", entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "picks": [
               {"product_id": ln.product_id, "lots": [[p.lot_id, p.qty_milli] for p in ln.picks]}
               for ln in order.lines]})
    return order


def back_to_base(s: Session, order: GroupOrder, moves: list[tuple[int, Optional[int], int]],
                  actor_id: Optional[int], note: str) -> None:
    """Move (product, lot, qty) from dispatch back to the base: goods not delivered, or returned."""
    dispatch, base = dispatch_location(s).id, base_location(s).id
    for product_id, lot_id, qty in moves:
        ledger.move(s, product_id=product_id, qty_milli=qty, from_location_id=dispatch, to_location_id=base,
                    reason=MoveReason.TRANSFER, lot_id=lot_id, ref_type="group_order", ref_id=order.id,
                    user_id=actor_id, note=note)


def take_back_undelivered(s: Session, order: GroupOrder, actor_id: Optional[int]) -> None:
    """Picked goods that were not delivered go back to the base, lot by lot."""
    moves = []
    for line in order.lines:
        for pick in line.picks:
            rest = pick.qty_milli - pick.delivered_milli - pick.returned_milli
            if rest > 0:
                moves.append((line.product_id, pick.lot_id, rest))
                pick.returned_milli += rest
    back_to_base(s, order, moves, actor_id, order.order_no)


# --- delivering --------------------------------------------------------------------------------------

def delivery_sales(s: Session, order_id: int) -> list[Sale]:
    return list(s.scalars(select(Sale).where(Sale.group_order_id == order_id, Sale.status == SaleStatus.COMPLETED)
                          .order_by(Sale.sold_at, Sale.id)))


def cancel_order(s: Session, order_id: int, *, reason: str, actor_id: Optional[int]) -> GroupOrder:
    """Cancel before the first delivery: the reservation is released, picked goods go back."""
    reason = text_arg(reason, 200, _l("取消原因"), "reason")
    if not reason:
        raise GroupOrderError(_l("请填写取消原因"), "reason")
    order = locked_order(s, order_id)
    require_status(order, GroupOrderStatus.DRAFT, GroupOrderStatus.CONFIRMED, GroupOrderStatus.PICKED)
    if delivery_sales(s, order.id):
        raise GroupOrderError(_l("订单已送过货，不能取消；请用“结束剩余”"), "status")
    before = order.status
    if order.status == GroupOrderStatus.CONFIRMED:
        base = base_location(s)
        for line in order.lines:
            reservations.release(s, location_id=base.id, product_id=line.product_id, qty_milli=line.reserved_milli)
            line.reserved_milli = 0
    elif order.status == GroupOrderStatus.PICKED:
        take_back_undelivered(s, order, actor_id)
    order.status = GroupOrderStatus.CANCELLED
    order.cancel_reason = reason
    order.closed_at = utcnow()
    s.flush()
    record(s, user_id=actor_id, action="group_order.cancel", entity="group_order", entity_id=order.id,
           before={"status": before.value}, after={"order_no": order.order_no, "reason": reason})
    return order
