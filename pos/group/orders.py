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
  goods go back to the base), the order is **delivered**.
- a **return** is a refund of a delivery's sale (counted on its own day, with the original
  lines' certified flags); goods fit to sell go back to the base.
- **payments** on account (a bank transfer and its reference) settle the balance: delivered −
  returned − paid. A delivered order whose balance is zero is **paid**.
- **cancelled**: allowed until the first delivery; the reservation is released and picked goods
  go back to the base.

So every figure of the statistics comes from sales and refunds, as for the hall and the counters.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, case, cast, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from inventory import ledger
from inventory.audit import record
from inventory.certification import certified_product_ids
from inventory.errors import InventoryError
from inventory.localtime import local_date, local_today, utcnow
from inventory.models import Location, LocationKind, Lot, MoveReason, Product, StockMove
from inventory.money import format_qty, format_yuan, line_amount_fen
from inventory.expiry import allocate_fresh
from inventory.transfers import logistics_base
from pos.sales import refunds
from pos.group.buyers import agreed_prices, get_buyer
from pos.core.errors import Conflict, NotFound, PosError
from pos.group.models import (
    Buyer, GroupDelivery, GroupOrder, GroupOrderLine, GroupOrderPick, GroupOrderStatus, GroupPayment,
)
from pos.models import PaymentMethod, Refund, RefundLine, Sale, SaleLine, SaleStatus
from pos.sales.service import GROUP_PREFIX, LineIn, SaleIn, document_number, next_number, record_sale

ORDER_PREFIX = "TG"            # order numbers TG-20261126-0001 (团购)
DISPATCH_CODE = "DISPATCH"     # the location picked goods wait in for delivery
MAX_LINES = 200
MAX_PRICE_FEN = 100_000_000
MAX_ORDER_FEN = 2_000_000_000  # integer columns are 32-bit on PostgreSQL
PAYMENT_METHODS = (PaymentMethod.BANK_TRANSFER, PaymentMethod.WECHAT, PaymentMethod.ALIPAY, PaymentMethod.CASH)

STATUS_LABELS = {
    GroupOrderStatus.DRAFT: _l("草稿"),
    GroupOrderStatus.CONFIRMED: _l("已确认"),
    GroupOrderStatus.PICKED: _l("已拣货"),
    GroupOrderStatus.DELIVERED: _l("已送达"),
    GroupOrderStatus.PAID: _l("已结清"),
    GroupOrderStatus.CANCELLED: _l("已取消"),
}

PRICE_SOURCES = {"list": _l("目录价"), "agreed": _l("协议价"), "manual": _l("本单议价")}


class GroupOrderError(PosError):
    """A step of a group order that the rules refuse."""


@dataclass(frozen=True)
class OrderLineIn:
    product_id: int
    qty_milli: int
    unit_price_fen: Optional[int] = None   # None: the buyer's agreed price, else the catalogue price


@dataclass(frozen=True)
class DeliveryResult:
    sale_id: int
    receipt_no: str
    total_fen: int
    created: bool


def status_label(value: Any) -> str:
    try:
        return str(STATUS_LABELS[GroupOrderStatus(value)])
    except ValueError:
        return str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _client_id(value: Any, field: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise GroupOrderError(_l("编号必须是 1 到 64 个字符"), field)
    return value


def _text(value: Any, limit: int, label: Any, field: str) -> Optional[str]:
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


def _base(s: Session) -> Location:
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
        if not isinstance(line, OrderLineIn) or not _is_int(line.product_id):
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
        if not _is_int(qty) or qty <= 0:
            raise GroupOrderError(_l("第 %(n)s 行：数量必须大于零", n=n), f"lines-{i}-qty_milli")
        if qty > ledger.MAX_QTY_MILLI:
            raise GroupOrderError(_l("第 %(n)s 行：数量太大", n=n), f"lines-{i}-qty_milli")
        if not product.weighed and qty % 1000:
            raise GroupOrderError(_l("第 %(n)s 行：「%(product)s」按件销售，数量必须是整数件", n=n, product=product.name),
                                  f"lines-{i}-qty_milli")
        if line.unit_price_fen is not None:
            price, source = line.unit_price_fen, "manual"
            if not _is_int(price) or not 0 <= price <= MAX_PRICE_FEN:
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
        "delivery_address": _text(delivery_address, 200, _l("送货地址"), "delivery_address") or buyer.address,
        "contact": _text(contact, 80, _l("联系人"), "contact")
        or " ".join(x for x in (buyer.contact_name, buyer.contact_phone) if x) or None,
        "note": _text(note, 1000, _l("备注"), "note"),
    }


def create_order(s: Session, *, buyer_id: int, lines: Sequence[OrderLineIn], delivery_date: dt.date,
                 delivery_address: Optional[str] = None, contact: Optional[str] = None, note: Optional[str] = None,
                 actor_id: Optional[int], client_order_id: Optional[str] = None, source: str = "manual",
                 ordered_at: Optional[dt.datetime] = None) -> GroupOrder:
    """A draft order, numbered by the local day it is entered (``ordered_at``, default now: an
    order taken on paper earlier may be entered with its own date). The same ``client_order_id``
    again (a form sent twice) returns the order it made, and makes nothing new."""
    client_order_id = _client_id(client_order_id, "client_order_id")
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


def _locked(s: Session, order_id: Any) -> GroupOrder:
    """The order, locked for the step (PostgreSQL: FOR UPDATE; SQLite serialises writers)."""
    order = s.scalars(select(GroupOrder).where(GroupOrder.id == order_id).with_for_update()
                      .execution_options(populate_existing=True)).first() if _is_int(order_id) else None
    if order is None:
        raise NotFound(_l("订单不存在"), "order_id")
    return order


def _require(order: GroupOrder, *allowed: GroupOrderStatus) -> None:
    if order.status not in allowed:
        raise GroupOrderError(_l("订单 %(no)s 当前为「%(status)s」，不能这样操作",
                                 no=order.order_no, status=status_label(order.status)), "status")


def update_order(s: Session, order_id: int, *, lines: Sequence[OrderLineIn], delivery_date: dt.date,
                 delivery_address: Optional[str] = None, contact: Optional[str] = None, note: Optional[str] = None,
                 actor_id: Optional[int]) -> GroupOrder:
    """Change a draft (once confirmed, stock is held: cancel and enter it again instead)."""
    order = _locked(s, order_id)
    _require(order, GroupOrderStatus.DRAFT)
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

def confirm_order(s: Session, order_id: int, *, actor_id: Optional[int]) -> GroupOrder:
    """Reserve every line at the base, all or nothing. Confirming a confirmed order again (a
    double click) changes nothing."""
    order = _locked(s, order_id)
    if order.status == GroupOrderStatus.CONFIRMED:
        return order
    _require(order, GroupOrderStatus.DRAFT)
    base = _base(s)
    try:
        with s.begin_nested():
            for line in order.lines:
                ledger.reserve(s, location_id=base.id, product_id=line.product_id, qty_milli=line.qty_milli)
                line.reserved_milli = line.qty_milli
            order.status = GroupOrderStatus.CONFIRMED
            order.confirmed_at = utcnow()
            s.flush()
    except InventoryError as exc:
        s.expire(order)
        raise GroupOrderError(exc.message, "lines") from None
    record(s, user_id=actor_id, action="group_order.confirm", entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "reserved": _lines_snapshot(order)})
    return order


def pick_order(s: Session, order_id: int, *, actor_id: Optional[int]) -> GroupOrder:
    """Move the reserved goods out of the base to dispatch, lots first expiry first out, and keep
    which lots were taken. Picking a picked order again (a double click) changes nothing."""
    order = _locked(s, order_id)
    if order.status == GroupOrderStatus.PICKED:
        return order
    _require(order, GroupOrderStatus.CONFIRMED)
    base, dispatch = _base(s), dispatch_location(s)
    try:
        with s.begin_nested():
            for line in order.lines:
                ledger.release(s, location_id=base.id, product_id=line.product_id, qty_milli=line.reserved_milli)
                line.reserved_milli = 0
                for lot_id, qty in allocate_fresh(s, location_id=base.id, product_id=line.product_id,
                                                  qty_milli=line.qty_milli):
                    ledger.move(s, product_id=line.product_id, qty_milli=qty, from_location_id=base.id,
                                to_location_id=dispatch.id, reason=MoveReason.TRANSFER, lot_id=lot_id,
                                ref_type="group_order", ref_id=order.id, user_id=actor_id,
                                note=order.order_no)
                    line.picks.append(GroupOrderPick(lot_id=lot_id, qty_milli=qty))
                line.picked_milli = line.qty_milli
            order.status = GroupOrderStatus.PICKED
            order.picked_at = utcnow()
            s.flush()
    except InventoryError as exc:
        s.expire(order)
        raise GroupOrderError(exc.message, "lines") from None
    record(s, user_id=actor_id, action="group_order.pick", entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "picks": [
               {"product_id": ln.product_id, "lots": [[p.lot_id, p.qty_milli] for p in ln.picks]}
               for ln in order.lines]})
    return order


def _back_to_base(s: Session, order: GroupOrder, moves: list[tuple[int, Optional[int], int]],
                  actor_id: Optional[int], note: str) -> None:
    """Move (product, lot, qty) from dispatch back to the base: goods not delivered, or returned."""
    dispatch, base = dispatch_location(s).id, _base(s).id
    for product_id, lot_id, qty in moves:
        ledger.move(s, product_id=product_id, qty_milli=qty, from_location_id=dispatch, to_location_id=base,
                    reason=MoveReason.TRANSFER, lot_id=lot_id, ref_type="group_order", ref_id=order.id,
                    user_id=actor_id, note=note)


def _take_back_undelivered(s: Session, order: GroupOrder, actor_id: Optional[int]) -> None:
    """Picked goods that were not delivered go back to the base, lot by lot."""
    moves = []
    for line in order.lines:
        for pick in line.picks:
            rest = pick.qty_milli - pick.delivered_milli - pick.returned_milli
            if rest > 0:
                moves.append((line.product_id, pick.lot_id, rest))
                pick.returned_milli += rest
    _back_to_base(s, order, moves, actor_id, order.order_no)


# --- delivering --------------------------------------------------------------------------------------

def _deliveries(s: Session, order_id: int) -> list[Sale]:
    return list(s.scalars(select(Sale).where(Sale.group_order_id == order_id, Sale.status == SaleStatus.COMPLETED)
                          .order_by(Sale.sold_at, Sale.id)))


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
    client_delivery_id = _client_id(client_delivery_id, "client_delivery_id")
    received_by = _text(received_by, 40, _l("收货人"), "received_by")
    delivered_at = delivered_at or utcnow()
    if not isinstance(delivered_at, dt.datetime) or delivered_at.tzinfo is None:
        raise GroupOrderError(_l("送货时间必须带时区"), "delivered_at")
    if delivered_at > utcnow() + dt.timedelta(minutes=5):
        raise GroupOrderError(_l("送货时间不能晚于现在"), "delivered_at")
    order = _locked(s, order_id)
    if client_delivery_id is not None:
        # Looked up under the order's lock: a form sent twice at once finds the first one's sale.
        done = s.scalars(select(Sale).where(Sale.client_sale_id == client_delivery_id)).first()
        if done is not None:
            if done.group_order_id != order.id:
                raise Conflict(_l("送货编号已用于另一张订单"), "client_delivery_id")
            return DeliveryResult(done.id, done.receipt_no, done.total_fen, False)
    _require(order, GroupOrderStatus.PICKED)
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
        if not _is_int(qty) or qty < 0:
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
    number = len(_deliveries(s, order.id)) + 1
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
    reason = _text(reason, 200, _l("原因"), "reason")
    if not reason:
        raise GroupOrderError(_l("请填写原因"), "reason")
    order = _locked(s, order_id)
    _require(order, GroupOrderStatus.PICKED)
    if not _deliveries(s, order.id):
        raise GroupOrderError(_l("订单还没有送过货，请取消订单"), "status")
    _take_back_undelivered(s, order, actor_id)
    order.status = GroupOrderStatus.DELIVERED
    order.closed_at = utcnow()
    s.flush()
    _settle(s, order)
    record(s, user_id=actor_id, action="group_order.close", entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "reason": reason})
    return order


def cancel_order(s: Session, order_id: int, *, reason: str, actor_id: Optional[int]) -> GroupOrder:
    """Cancel before the first delivery: the reservation is released, picked goods go back."""
    reason = _text(reason, 200, _l("取消原因"), "reason")
    if not reason:
        raise GroupOrderError(_l("请填写取消原因"), "reason")
    order = _locked(s, order_id)
    _require(order, GroupOrderStatus.DRAFT, GroupOrderStatus.CONFIRMED, GroupOrderStatus.PICKED)
    if _deliveries(s, order.id):
        raise GroupOrderError(_l("订单已送过货，不能取消；请用“结束剩余”"), "status")
    before = order.status
    if order.status == GroupOrderStatus.CONFIRMED:
        base = _base(s)
        for line in order.lines:
            ledger.release(s, location_id=base.id, product_id=line.product_id, qty_milli=line.reserved_milli)
            line.reserved_milli = 0
    elif order.status == GroupOrderStatus.PICKED:
        _take_back_undelivered(s, order, actor_id)
    order.status = GroupOrderStatus.CANCELLED
    order.cancel_reason = reason
    order.closed_at = utcnow()
    s.flush()
    record(s, user_id=actor_id, action="group_order.cancel", entity="group_order", entity_id=order.id,
           before={"status": before.value}, after={"order_no": order.order_no, "reason": reason})
    return order


# --- returns and money -----------------------------------------------------------------------------

def return_goods(s: Session, order_id: int, *, receipt_no: str, lines: Sequence[tuple[int, int, bool]],
                 reason: str, actor_id: Optional[int], returned_at: Optional[dt.datetime] = None,
                 client_refund_id: Optional[str] = None) -> refunds.RefundResult:
    """The buyer sends goods back from a delivery: a refund of that delivery's sale, credited to
    the order's account; goods fit to sell go back to the base."""
    order = _locked(s, order_id)
    _require(order, GroupOrderStatus.PICKED, GroupOrderStatus.DELIVERED, GroupOrderStatus.PAID)
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
        _back_to_base(s, order, [tuple(row) for row in returned], actor_id, result.refund_no)
        _settle(s, order)
    return result


def _money_arg(value: Any, field: str) -> int:
    if not _is_int(value) or value <= 0:
        raise GroupOrderError(_l("金额必须大于零"), field)
    if value > MAX_ORDER_FEN:
        raise GroupOrderError(_l("金额太大"), field)
    return value


def _payment(s: Session, order_id: int, *, amount_fen: int, method: Any, ref: Any, on: Any, note: Any,
             actor_id: Optional[int], client_payment_id: Any, repay: bool) -> GroupPayment:
    client_payment_id = _client_id(client_payment_id, "client_payment_id")
    amount = _money_arg(amount_fen, "amount_fen")
    try:
        method = PaymentMethod(method)
    except ValueError:
        method = None
    if method not in PAYMENT_METHODS:
        raise GroupOrderError(_l("请选择收款方式"), "method")
    ref = _text(ref, 80, _l("流水号"), "ref")
    if method == PaymentMethod.BANK_TRANSFER and not ref:
        raise GroupOrderError(_l("银行转账请填写转账流水号"), "ref")
    if not isinstance(on, dt.date) or isinstance(on, dt.datetime):
        raise GroupOrderError(_l("请填写日期"), "received_on")
    if on > local_today():
        raise GroupOrderError(_l("日期不能晚于今天"), "received_on")
    note = _text(note, 200, _l("备注"), "note")
    order = _locked(s, order_id)
    if client_payment_id is not None:
        # Looked up under the order's lock: a form sent twice at once finds the first one's payment.
        done = s.scalars(select(GroupPayment).where(GroupPayment.client_payment_id == client_payment_id)).first()
        if done is not None:
            if done.order_id != order.id:
                raise Conflict(_l("收款编号已用于另一张订单"), "client_payment_id")
            return done
    _require(order, GroupOrderStatus.PICKED, GroupOrderStatus.DELIVERED, GroupOrderStatus.PAID)
    balance = order_figures(s, order.id)["balance_fen"]
    if not repay and amount > balance:
        raise GroupOrderError(_l("收款 %(amount)s 超过应收余额 %(balance)s",
                                 amount=format_yuan(amount), balance=format_yuan(max(balance, 0))), "amount_fen")
    if repay and amount > -balance:
        raise GroupOrderError(_l("退还 %(amount)s 超过应退金额 %(credit)s",
                                 amount=format_yuan(amount), credit=format_yuan(max(-balance, 0))), "amount_fen")
    payment = GroupPayment(order_id=order.id, client_payment_id=client_payment_id, method=method, ref=ref,
                           amount_fen=-amount if repay else amount, received_on=on, note=note,
                           recorded_by_id=actor_id)
    s.add(payment)
    s.flush()
    _settle(s, order)
    record(s, user_id=actor_id, action="group_order.repay" if repay else "group_order.payment",
           entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "amount_fen": payment.amount_fen, "method": method.value,
                  "ref": ref, "on": on.isoformat()})
    return payment


def record_payment(s: Session, order_id: int, *, amount_fen: int, ref: Optional[str], received_on: dt.date,
                   actor_id: Optional[int], method: str = PaymentMethod.BANK_TRANSFER.value,
                   note: Optional[str] = None, client_payment_id: Optional[str] = None) -> GroupPayment:
    """Money received on account (at most what is owed for the goods delivered)."""
    return _payment(s, order_id, amount_fen=amount_fen, method=method, ref=ref, on=received_on, note=note,
                    actor_id=actor_id, client_payment_id=client_payment_id, repay=False)


def record_repayment(s: Session, order_id: int, *, amount_fen: int, ref: Optional[str], paid_on: dt.date,
                     actor_id: Optional[int], method: str = PaymentMethod.BANK_TRANSFER.value,
                     note: Optional[str] = None, client_payment_id: Optional[str] = None) -> GroupPayment:
    """Money paid back to the buyer after a return (at most the buyer's credit on the order)."""
    return _payment(s, order_id, amount_fen=amount_fen, method=method, ref=ref, on=paid_on, note=note,
                    actor_id=actor_id, client_payment_id=client_payment_id, repay=True)


def _settle(s: Session, order: GroupOrder) -> None:
    """Delivered with nothing owed either way → paid; a paid order that a return put in credit →
    delivered again (until the money is paid back)."""
    balance = order_figures(s, order.id)["balance_fen"]
    if order.status == GroupOrderStatus.DELIVERED and balance == 0:
        order.status = GroupOrderStatus.PAID
    elif order.status == GroupOrderStatus.PAID and balance != 0:
        order.status = GroupOrderStatus.DELIVERED
    s.flush()


# --- figures -----------------------------------------------------------------------------------------

def _delivered_q():
    return (select(Sale.group_order_id.label("order_id"), func.sum(Sale.total_fen).label("fen"))
            .where(Sale.group_order_id.is_not(None), Sale.status == SaleStatus.COMPLETED)
            .group_by(Sale.group_order_id))


def _returned_q():
    return (select(Sale.group_order_id.label("order_id"), func.sum(Refund.total_fen).label("fen"))
            .join(Sale, Sale.id == Refund.sale_id).where(Sale.group_order_id.is_not(None))
            .group_by(Sale.group_order_id))


def _paid_q():
    return (select(GroupPayment.order_id.label("order_id"), func.sum(GroupPayment.amount_fen).label("fen"))
            .group_by(GroupPayment.order_id))


def _ordered_q():
    # price × qty / 1000 rounded half up, as line_amount_fen does, in 64-bit integers.
    amount = (cast(GroupOrderLine.unit_price_fen, BigInteger) * GroupOrderLine.qty_milli + 500) // 1000
    return (select(GroupOrderLine.order_id.label("order_id"), func.sum(amount).label("fen"))
            .group_by(GroupOrderLine.order_id))


def order_figures(s: Session, order_id: int) -> dict[str, int]:
    """Delivered, returned, paid and the balance of one order, in fen."""
    delivered = s.scalar(select(func.coalesce(func.sum(Sale.total_fen), 0))
                         .where(Sale.group_order_id == order_id, Sale.status == SaleStatus.COMPLETED))
    returned = s.scalar(select(func.coalesce(func.sum(Refund.total_fen), 0))
                        .join(Sale, Sale.id == Refund.sale_id).where(Sale.group_order_id == order_id))
    paid = s.scalar(select(func.coalesce(func.sum(GroupPayment.amount_fen), 0))
                    .where(GroupPayment.order_id == order_id))
    delivered, returned, paid = int(delivered), int(returned), int(paid)
    return {"delivered_fen": delivered, "returned_fen": returned, "paid_fen": paid,
            "balance_fen": delivered - returned - paid}


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
                               selectinload(GroupOrder.payments))).first() if _is_int(order_id) else None
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
    sales = _deliveries(s, order_id)
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
    sale = s.get(Sale, sale_id) if _is_int(sale_id) else None
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
    ordered, delivered, returned, paid = (q_.subquery() for q_ in (_ordered_q(), _delivered_q(), _returned_q(), _paid_q()))
    where = []
    if status:
        try:
            where.append(GroupOrder.status == GroupOrderStatus(status))
        except ValueError:
            return [], 0
    if _is_int(buyer_id):
        where.append(GroupOrder.buyer_id == buyer_id)
    if due_by is not None:
        where += [GroupOrder.status.in_((GroupOrderStatus.CONFIRMED, GroupOrderStatus.PICKED)),
                  GroupOrder.delivery_date <= due_by]
    if q and q.strip():
        like = f"%{q.strip()}%"
        where.append(or_(GroupOrder.order_no.ilike(like), Buyer.name.ilike(like)))
    total = s.scalar(select(func.count()).select_from(GroupOrder).join(Buyer, Buyer.id == GroupOrder.buyer_id)
                     .where(*where)) or 0
    d_fen = func.coalesce(delivered.c.fen, 0)
    r_fen = func.coalesce(returned.c.fen, 0)
    p_fen = func.coalesce(paid.c.fen, 0)
    rows = s.execute(
        select(GroupOrder.id, GroupOrder.order_no, Buyer.id, Buyer.name, GroupOrder.buyer_type, GroupOrder.status,
               GroupOrder.delivery_date, func.coalesce(ordered.c.fen, 0), d_fen, r_fen, p_fen)
        .join(Buyer, Buyer.id == GroupOrder.buyer_id)
        .outerjoin(ordered, ordered.c.order_id == GroupOrder.id)
        .outerjoin(delivered, delivered.c.order_id == GroupOrder.id)
        .outerjoin(returned, returned.c.order_id == GroupOrder.id)
        .outerjoin(paid, paid.c.order_id == GroupOrder.id)
        .where(*where).order_by(GroupOrder.id.desc()).limit(per_page).offset((max(page, 1) - 1) * per_page)
    ).all()
    out = []
    for oid, no, bid, bname, btype, st, day, o, d, r, p in rows:
        out.append({"id": oid, "order_no": no, "buyer_id": bid, "buyer_name": bname, "buyer_type": btype.value,
                    "status": st.value, "status_label": status_label(st), "delivery_date": day,
                    "ordered_fen": int(o), "delivered_fen": int(d), "returned_fen": int(r), "paid_fen": int(p),
                    "balance_fen": int(d) - int(r) - int(p)})
    return out, total


def open_balances(s: Session) -> list[dict[str, Any]]:
    """Per buyer, what is owed on its orders (or owed back to it), largest first."""
    delivered, returned, paid = (q_.subquery() for q_ in (_delivered_q(), _returned_q(), _paid_q()))
    first_delivery = (select(Sale.group_order_id.label("order_id"), func.min(Sale.local_date).label("day"))
                      .where(Sale.group_order_id.is_not(None), Sale.status == SaleStatus.COMPLETED)
                      .group_by(Sale.group_order_id)).subquery()
    d_fen = func.coalesce(delivered.c.fen, 0)
    r_fen = func.coalesce(returned.c.fen, 0)
    p_fen = func.coalesce(paid.c.fen, 0)
    owed = d_fen - r_fen - p_fen
    rows = s.execute(
        select(Buyer.id, Buyer.name, Buyer.buyer_type, func.sum(d_fen), func.sum(r_fen), func.sum(p_fen),
               func.sum(owed), func.sum(case((owed != 0, 1), else_=0)),
               func.min(case((owed > 0, first_delivery.c.day), else_=None)))
        .join(GroupOrder, GroupOrder.buyer_id == Buyer.id)
        .outerjoin(delivered, delivered.c.order_id == GroupOrder.id)
        .outerjoin(returned, returned.c.order_id == GroupOrder.id)
        .outerjoin(paid, paid.c.order_id == GroupOrder.id)
        .outerjoin(first_delivery, first_delivery.c.order_id == GroupOrder.id)
        .where(GroupOrder.status != GroupOrderStatus.CANCELLED)
        .group_by(Buyer.id, Buyer.name, Buyer.buyer_type)
        .having(func.sum(case((owed != 0, 1), else_=0)) > 0)
    ).all()
    out = [{"buyer_id": bid, "name": name, "buyer_type": btype.value, "delivered_fen": int(d),
            "returned_fen": int(r), "paid_fen": int(p), "balance_fen": int(b), "orders": int(n),
            "oldest_delivery": oldest}
           for bid, name, btype, d, r, p, b, n, oldest in rows]
    out.sort(key=lambda row: (-row["balance_fen"], row["name"]))
    return out


def dashboard_figures(s: Session, today: dt.date) -> dict[str, int]:
    """For the manager's dashboard: drafts to confirm, orders due for delivery by ``today`` (or
    late), and what buyers owe in all."""
    due = s.scalar(select(func.count()).select_from(GroupOrder).where(
        GroupOrder.status.in_((GroupOrderStatus.CONFIRMED, GroupOrderStatus.PICKED)),
        GroupOrder.delivery_date <= today)) or 0
    drafts = s.scalar(select(func.count()).select_from(GroupOrder)
                      .where(GroupOrder.status == GroupOrderStatus.DRAFT)) or 0
    delivered, returned, paid = (
        s.scalar(select(func.coalesce(func.sum(Sale.total_fen), 0))
                 .where(Sale.group_order_id.is_not(None), Sale.status == SaleStatus.COMPLETED)),
        s.scalar(select(func.coalesce(func.sum(Refund.total_fen), 0)).join(Sale, Sale.id == Refund.sale_id)
                 .where(Sale.group_order_id.is_not(None))),
        s.scalar(select(func.coalesce(func.sum(GroupPayment.amount_fen), 0))),
    )
    return {"due": int(due), "drafts": int(drafts), "balance_fen": int(delivered) - int(returned) - int(paid)}


__all__ = [
    "ORDER_PREFIX", "STATUS_LABELS", "PRICE_SOURCES", "GroupOrderError", "OrderLineIn", "DeliveryResult",
    "status_label", "dispatch_location", "check_lines", "create_order", "update_order", "confirm_order",
    "pick_order", "deliver",
    "deliverable_milli", "close_remainder", "cancel_order", "return_goods", "record_payment", "record_repayment",
    "order_figures", "order_view", "delivery_note", "list_orders", "open_balances", "dashboard_figures",
]
