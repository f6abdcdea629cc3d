"""Sales: the one function that records a sale (hall tills now, counters and group orders later),
the pricing that the till's running total shares with it, voids, and the sale as a plain dict.

The server prices every sale itself and never trusts a client's totals. Every fen paid belongs to
exactly one sale line: order discounts and 抹零 are spread over the lines (pro rata, the remainder
to the largest line), so that the lines' net amounts add up to the total, and certified +
uncertified = total.

Functions take a Session and plain values, never commit (the caller's unit of work does) and
validate everything before writing, so an error leaves nothing half-written once the caller rolls
back.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from inventory import ledger
from inventory.alerts import hall_text
from inventory.audit import record
from inventory.certification import certified_product_ids
from inventory.documents import format_number, take_number
from inventory.errors import InventoryError
from inventory.localtime import format_local, local_date, utcnow
from inventory.models import Alert, AlertKind, Location, LocationKind, MoveReason, Product, StockMove
from inventory.money import format_yuan, line_amount_fen, round_down_to_jiao, spread_fen
from inventory.expiry import fefo_allocate
from pos.core.errors import ApprovalRequired, Conflict, NotFound, PaymentError, PosError, ShiftError
from pos.models import (
    BuyerType,
    Channel,
    Payment,
    PaymentMethod,
    Refund,
    RefundLine,
    Role,
    Sale,
    SaleLine,
    SaleStatus,
    Shift,
    ShiftStatus,
    Till,
    User,
)
from pos.hall.settings import hall_settings

# Integer columns are 32-bit on PostgreSQL; no amount or quantity may come near that.
MAX_QTY_MILLI = ledger.MAX_QTY_MILLI
MAX_AMOUNT_FEN = 1_000_000_000  # ¥10,000,000: far beyond any basket, far below 2^31
MAX_LINES = 500
GROUP_PREFIX = "G"


# What each payment method is called on the till, receipts and reports (one table for all).
PAYMENT_METHOD_LABELS = {
    PaymentMethod.CASH: _l("现金"),
    PaymentMethod.WECHAT: _l("微信支付"),
    PaymentMethod.ALIPAY: _l("支付宝"),
    PaymentMethod.UNIONPAY: _l("银联卡"),
    PaymentMethod.UNION_CARD: _l("工会卡"),
    PaymentMethod.VOUCHER: _l("代金券"),
    PaymentMethod.BANK_TRANSFER: _l("对公转账"),
}


def payment_label(method: Any) -> str:
    """The person-facing name of a payment method (the code itself when unknown)."""
    try:
        return str(PAYMENT_METHOD_LABELS[PaymentMethod(getattr(method, "value", method))])
    except ValueError:
        return str(method)


# --- what callers send ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LineIn:
    product_id: int
    qty_milli: int
    unit_price_fen: Optional[int] = None  # None: the catalogue price; a counter passes what it charged
    line_discount_fen: int = 0
    slot: Optional[str] = None
    # ((lot_id, qty_milli), …) adding up to qty_milli: take exactly these lots (a group delivery
    # hands over the lots picked for its order); empty: first expiry first out at the location.
    lots: tuple[tuple[Optional[int], int], ...] = ()


@dataclass(frozen=True)
class PaymentIn:
    method: str
    amount_fen: int                       # what counts towards the sale
    tendered_fen: Optional[int] = None    # cash handed over (default: the amount)
    ref: Optional[str] = None


@dataclass(frozen=True)
class SaleIn:
    channel: str                          # "hall" | "kiosk" | "group"
    location_id: Optional[int]            # hall: taken from the till
    lines: Sequence[LineIn]
    payments: Sequence[PaymentIn] = ()
    order_discount_fen: int = 0
    client_sale_id: Optional[str] = None
    till_id: Optional[int] = None
    shift_id: Optional[int] = None
    cashier_id: Optional[int] = None
    kiosk_id: Optional[int] = None
    txn_id: Optional[str] = None
    sold_at: Optional[dt.datetime] = None  # default now
    buyer_type: Optional[str] = None
    group_order_id: Optional[int] = None
    # 抹零 for hall sales: None = the hall setting ``rounding_to_jiao``; never for kiosk/group, and
    # only when the sale is paid wholly in cash (see cash_rounding_applies).
    rounding_to_jiao: Optional[bool] = None
    approved_by_id: Optional[int] = None
    receipt_prefix: Optional[str] = None
    # The sender's own fingerprint of what it sent (a counter's: kiosks.ingest.counter_fingerprint),
    # judged before the server resolved anything; None: ``content_hash`` of this SaleIn.
    fingerprint: Optional[str] = None


@dataclass(frozen=True)
class PricedLine:
    product_id: int
    sku: str
    name: str
    unit: str
    sold_by_weight: bool
    qty_milli: int
    unit_price_fen: int
    gross_fen: int
    line_discount_fen: int   # the line's own discount
    discount_fen: int        # line discount + its share of the order discount and of 抹零
    net_fen: int
    certified: bool
    certificate_no: Optional[str]
    slot: Optional[str] = None


@dataclass(frozen=True)
class Basket:
    lines: list[PricedLine]
    subtotal_fen: int        # Σ gross
    discount_fen: int        # line discounts + order discount
    rounding_fen: int        # 抹零, 0–9 fen, only ever down
    total_fen: int           # = Σ net
    certified_fen: int
    uncertified_fen: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SaleResult:
    sale_id: int
    receipt_no: str
    total_fen: int
    change_fen: int
    created: bool


# --- small validators -----------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _amount(value, label, *, field_name: Optional[str] = None, error=PosError) -> int:
    if not _is_int(value) or value < 0:
        raise error(_l("%(label)s必须是不小于零的整数（分）", label=label), field_name)
    if value > MAX_AMOUNT_FEN:
        raise error(_l("%(label)s太大", label=label), field_name)
    return value


def active_approver(s: Session, user_id: Optional[int]) -> Optional[User]:
    """The user, if an active manager or admin (who may approve discounts, voids and refunds)."""
    if not _is_int(user_id):
        return None
    user = s.get(User, user_id)
    if user is None or not user.active or user.role not in (Role.MANAGER, Role.ADMIN):
        return None
    return user


# --- pricing ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Priced:
    """One line to price, with everything the arithmetic needs (no database)."""
    qty_milli: int
    unit_price_fen: int
    line_discount_fen: int
    certified: bool


def compute_amounts(items: Sequence[_Priced], *, order_discount_fen: int = 0, rounding_to_jiao: bool = False
                    ) -> tuple[list[tuple[int, int, int]], int, int, int]:
    """The arithmetic of a basket, with no database: per line (gross, discount, net), and
    (subtotal, discount, rounding). The order discount and 抹零 are spread over the lines in
    proportion to their amounts after line discounts, so Σ net == subtotal − discount − rounding."""
    gross = [line_amount_fen(i.unit_price_fen, i.qty_milli) for i in items]
    after_line = [g - i.line_discount_fen for g, i in zip(gross, items)]
    after_discounts = sum(after_line) - order_discount_fen
    total = round_down_to_jiao(after_discounts) if rounding_to_jiao else after_discounts
    rounding = after_discounts - total
    shares = spread_fen(order_discount_fen + rounding, after_line)
    lines = [(g, g - a + sh, a - sh) for g, a, sh in zip(gross, after_line, shares)]
    line_discounts = sum(i.line_discount_fen for i in items)
    return lines, sum(gross), line_discounts + order_discount_fen, rounding


def _products(s: Session, ids: list[int]) -> dict[int, Product]:
    rows = s.scalars(select(Product).where(Product.id.in_(set(ids))).options(selectinload(Product.supplier)))
    return {p.id: p for p in rows}


def _price(s: Session, lines: Sequence[LineIn], *, order_discount_fen: int, rounding_to_jiao: bool,
           sold_at: dt.datetime, allow_inactive: bool, use_given_prices: bool
           ) -> tuple[Basket, dict[int, Product], dict]:
    if not isinstance(lines, (list, tuple)) or not lines:
        raise PosError(_l("至少要有一件商品"), "lines")
    if len(lines) > MAX_LINES:
        raise PosError(_l("一笔销售最多 %(n)s 行", n=MAX_LINES), "lines")
    for i, line in enumerate(lines):
        if not isinstance(line, LineIn) or not _is_int(line.product_id):
            raise PosError(_l("第 %(n)s 行：请选择商品", n=i + 1), f"lines-{i}-product_id")
    products = _products(s, [line.product_id for line in lines])
    items: list[_Priced] = []
    for i, line in enumerate(lines):
        n = i + 1
        product = products.get(line.product_id)
        if product is None:
            raise PosError(_l("第 %(n)s 行：商品不存在", n=n), f"lines-{i}-product_id")
        if not product.active and not allow_inactive:
            raise PosError(_l("第 %(n)s 行：「%(product)s」已停售", n=n, product=product.name), f"lines-{i}-product_id")
        qty = line.qty_milli
        if not _is_int(qty) or qty <= 0:
            raise PosError(_l("第 %(n)s 行：数量必须大于零", n=n), f"lines-{i}-qty_milli")
        if qty > MAX_QTY_MILLI:
            raise PosError(_l("第 %(n)s 行：数量太大", n=n), f"lines-{i}-qty_milli")
        weighed = product.weighed
        if not weighed and qty % 1000:
            raise PosError(_l("第 %(n)s 行：「%(product)s」按件销售，数量必须是整数件", n=n, product=product.name),
                           f"lines-{i}-qty_milli")
        price = line.unit_price_fen if (use_given_prices and line.unit_price_fen is not None) else product.price_fen
        price = _amount(price, _l("第 %(n)s 行单价", n=n), field_name=f"lines-{i}-unit_price_fen")
        if price * qty // 1000 > MAX_AMOUNT_FEN:
            raise PosError(_l("第 %(n)s 行：金额太大", n=n), f"lines-{i}-qty_milli")
        discount = _amount(line.line_discount_fen, _l("第 %(n)s 行折扣", n=n), field_name=f"lines-{i}-line_discount_fen")
        if discount > line_amount_fen(price, qty):
            raise PosError(_l("第 %(n)s 行：折扣不能超过该行金额", n=n), f"lines-{i}-line_discount_fen")
        if line.slot is not None and (not isinstance(line.slot, str) or len(line.slot) > 8):
            raise PosError(_l("第 %(n)s 行：货道编号不正确", n=n), f"lines-{i}-slot")
        if line.lots and (not isinstance(line.lots, tuple)
                          or any(not _is_int(q) or q <= 0 for _, q in line.lots)
                          or sum(q for _, q in line.lots) != qty):
            raise PosError(_l("第 %(n)s 行：批次数量与销售数量不符", n=n), f"lines-{i}-lots")
        items.append(_Priced(qty, price, discount, False))
    order_discount_fen = _amount(order_discount_fen, _l("整单折扣"), field_name="order_discount_fen")
    after_line = sum(line_amount_fen(i.unit_price_fen, i.qty_milli) - i.line_discount_fen for i in items)
    if after_line > MAX_AMOUNT_FEN:
        raise PosError(_l("销售金额太大"), "lines")
    if order_discount_fen > after_line:
        raise PosError(_l("整单折扣不能超过应收金额"), "order_discount_fen")

    # Certified means: covered by a certificate valid on the sale's LOCAL date.
    certs = certified_product_ids(s, list(products), local_date(sold_at))
    amounts, subtotal, discount, rounding = compute_amounts(
        items, order_discount_fen=order_discount_fen, rounding_to_jiao=rounding_to_jiao)
    priced = []
    for line, item, (gross, line_total_discount, net) in zip(lines, items, amounts):
        product = products[line.product_id]
        cert = certs[product.id]
        priced.append(PricedLine(
            product_id=product.id, sku=product.sku, name=product.name, unit=product.unit.value,
            sold_by_weight=bool(product.sold_by_weight), qty_milli=item.qty_milli,
            unit_price_fen=item.unit_price_fen, gross_fen=gross, line_discount_fen=item.line_discount_fen,
            discount_fen=line_total_discount, net_fen=net, certified=cert.certified,
            certificate_no=cert.certificate_no, slot=line.slot,
        ))
    total = subtotal - discount - rounding
    certified = sum(p.net_fen for p in priced if p.certified)
    basket = Basket(priced, subtotal, discount, rounding, total, certified, total - certified)
    return basket, products, certs


def price_basket(s: Session, lines: Sequence[LineIn], *, order_discount_fen: int = 0, rounding_to_jiao: bool = False,
                 sold_at: Optional[dt.datetime] = None) -> Basket:
    """Price a basket as record_sale would (the till's running total, with its certified part).
    A line's unit price is the catalogue price unless the line gives one (a counter's).
    ``rounding_to_jiao``: apply 抹零 — pass ``cash_rounding_applies(…)`` for the sale's payments."""
    sold_at = sold_at or utcnow()
    basket, _, _ = _price(s, lines, order_discount_fen=order_discount_fen, rounding_to_jiao=bool(rounding_to_jiao),
                          sold_at=sold_at, allow_inactive=False, use_given_prices=True)
    return basket


# --- receipt numbers ------------------------------------------------------------------------------

def next_number(s: Session, prefix: str, day: dt.date) -> int:
    """The next number for (prefix, local day), from the counter every document kind uses
    (``inventory.documents.take_number``): two tills (or two workers) can never get the same
    number, and a rolled-back sale gives its number back."""
    return take_number(s, prefix, day)


def document_number(prefix: str, day: dt.date, n: int) -> str:
    return format_number(prefix, day, n)


# --- recording a sale ------------------------------------------------------------------------------

def content_hash(sale: SaleIn) -> str:
    """Fingerprint of what the sender sent (not of what the server computed), to tell a
    duplicate from a conflict."""
    canonical = {
        "channel": sale.channel,
        "till_id": sale.till_id,
        "kiosk_id": sale.kiosk_id,
        "lines": [[line.product_id, line.qty_milli, line.unit_price_fen, line.line_discount_fen, line.slot]
                  + ([[list(lot) for lot in line.lots]] if line.lots else [])
                  for line in sale.lines],
        "payments": [[p.method, p.amount_fen, p.tendered_fen, p.ref] for p in sale.payments],
        "order_discount_fen": sale.order_discount_fen,
        "sold_at": sale.sold_at.astimezone(dt.timezone.utc).isoformat() if sale.sold_at else None,
        "buyer_type": sale.buyer_type,
        "group_order_id": sale.group_order_id,
    }
    text = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _existing(s: Session, sale: SaleIn) -> Optional[Sale]:
    if sale.client_sale_id is not None:
        return s.scalars(select(Sale).where(Sale.client_sale_id == sale.client_sale_id)).first()
    if sale.kiosk_id is not None and sale.txn_id is not None:
        return s.scalars(select(Sale).where(Sale.kiosk_id == sale.kiosk_id, Sale.txn_id == sale.txn_id)).first()
    return None


def _duplicate(s: Session, existing: Sale, digest: str, sale: SaleIn) -> SaleResult:
    # A sale recorded before senders' fingerprints were kept carries the hash of its SaleIn.
    if existing.content_hash != digest and not (sale.fingerprint and existing.content_hash == content_hash(sale)):
        raise Conflict(_l("编号 %(id)s 已用于另一笔内容不同的销售（小票 %(receipt)s）",
                          id=existing.client_sale_id or existing.txn_id, receipt=existing.receipt_no))
    change = s.scalar(select(func.coalesce(func.sum(Payment.change_fen), 0)).where(Payment.sale_id == existing.id))
    return SaleResult(existing.id, existing.receipt_no, existing.total_fen, int(change), False)


def _check_payments(payments: Sequence[PaymentIn], total: int) -> tuple[list[dict], int]:
    """Payment rows to write, and the change. Amounts must add up exactly to the total; only cash
    may be over-tendered (the difference is change)."""
    if not isinstance(payments, (list, tuple)):
        raise PaymentError(_l("支付信息格式不正确"), "payments")
    rows = []
    cash_lines = 0
    for i, p in enumerate(payments):
        if not isinstance(p, PaymentIn):
            raise PaymentError(_l("支付信息格式不正确"), f"payments-{i}")
        try:
            method = PaymentMethod(p.method)
        except ValueError:
            raise PaymentError(_l("未知的支付方式：%(method)s", method=str(p.method)[:20]), f"payments-{i}-method") from None
        amount = _amount(p.amount_fen, _l("支付金额"), field_name=f"payments-{i}-amount_fen", error=PaymentError)
        if amount == 0:
            raise PaymentError(_l("支付金额必须大于零"), f"payments-{i}-amount_fen")
        if p.ref is not None and (not isinstance(p.ref, str) or len(p.ref) > 80):
            raise PaymentError(_l("支付流水号太长"), f"payments-{i}-ref")
        tendered = p.tendered_fen
        if method == PaymentMethod.CASH:
            cash_lines += 1
            if cash_lines > 1:
                raise PaymentError(_l("一笔销售只能有一行现金支付"), f"payments-{i}-method")
            tendered = amount if tendered is None else _amount(
                tendered, _l("实收现金"), field_name=f"payments-{i}-tendered_fen", error=PaymentError)
            if tendered < amount:
                raise PaymentError(_l("实收现金 %(tendered)s 少于现金支付金额 %(amount)s",
                                      tendered=format_yuan(tendered), amount=format_yuan(amount)),
                                   f"payments-{i}-tendered_fen")
        elif tendered is not None and tendered != amount:
            raise PaymentError(_l("非现金支付不能找零"), f"payments-{i}-tendered_fen")
        rows.append({"method": method, "amount_fen": amount, "tendered_fen": tendered,
                     "change_fen": (tendered - amount) if tendered is not None else 0, "ref": p.ref})
    paid = sum(r["amount_fen"] for r in rows)
    if paid != total:
        raise PaymentError(_l("支付合计 %(paid)s 与应收 %(total)s 不符", paid=format_yuan(paid), total=format_yuan(total)),
                           "payments")
    return rows, sum(r["change_fen"] for r in rows)


def cash_rounding_applies(rounding_to_jiao: bool, payments: Sequence[PaymentIn]) -> bool:
    """抹零 ("现金收款抹零") applies only to a sale paid wholly in cash: a WeChat, Alipay, card or
    voucher payment, alone or beside cash, is charged to the fen. The one place for that rule."""
    def method(p) -> object:
        m = getattr(p, "method", None)
        return getattr(m, "value", m)

    # No payment at all (a basket that rounds to ¥0.00) is no non-cash payment: rounded like cash.
    if not isinstance(payments, (list, tuple)):  # malformed: _check_payments refuses it with a message
        payments = ()
    return bool(rounding_to_jiao) and all(method(p) == PaymentMethod.CASH.value for p in payments)


@dataclass
class _Context:
    channel: Channel
    location_id: int
    receipt_prefix: str
    shift_id: Optional[int] = None
    after_shift_closed: bool = False
    buyer_type: Optional[BuyerType] = None
    till: Optional[Till] = None
    rounding_to_jiao: bool = False
    discount_limit_percent: int = 0


def _context(s: Session, sale: SaleIn) -> _Context:
    """Channel rules: where the goods leave from, which shift, which receipt prefix."""
    try:
        channel = Channel(sale.channel)
    except ValueError:
        raise PosError(_l("未知的销售渠道：%(channel)s", channel=str(sale.channel)[:20]), "channel") from None
    for name in ("client_sale_id", "txn_id"):
        value = getattr(sale, name)
        if value is not None and (not isinstance(value, str) or not value or len(value) > 64):
            raise PosError(_l("销售编号必须是 1 到 64 个字符"), name)
    settings = hall_settings(s)
    buyer_type = None
    if sale.buyer_type is not None:
        try:
            buyer_type = BuyerType(sale.buyer_type)
        except ValueError:
            raise PosError(_l("未知的购买方类型：%(t)s", t=str(sale.buyer_type)[:20]), "buyer_type") from None

    if channel == Channel.HALL:
        till = s.get(Till, sale.till_id) if _is_int(sale.till_id) else None
        if till is None:
            raise PosError(_l("请选择收银台"), "till_id")
        ctx = _Context(channel, till.location_id, till.code, till=till, buyer_type=buyer_type,
                       discount_limit_percent=settings.discount_limit_percent)
        ctx.rounding_to_jiao = cash_rounding_applies(
            settings.rounding_to_jiao if sale.rounding_to_jiao is None else bool(sale.rounding_to_jiao), sale.payments)
        if sale.shift_id is not None:
            # FOR SHARE: close_shift locks the row FOR UPDATE, so a sale in flight is either
            # counted before the close, or waits and then sees the shift closed.
            shift = s.scalars(select(Shift).where(Shift.id == sale.shift_id).with_for_update(read=True)).first() \
                if _is_int(sale.shift_id) else None
            if shift is None:
                raise ShiftError(_l("班次不存在"), "shift_id")
            if shift.till_id != till.id:
                raise ShiftError(_l("班次不属于收银台 %(till)s", till=till.code), "shift_id")
        else:
            shift = s.scalars(select(Shift).where(Shift.till_id == till.id, Shift.status == ShiftStatus.OPEN)
                              .with_for_update(read=True)).first()
        ctx.shift_id = shift.id if shift is not None else None
        # Kept, not lost: the money was taken. The manager sees it among the late sales.
        ctx.after_shift_closed = shift is None or shift.status != ShiftStatus.OPEN
        return ctx

    if not _is_int(sale.location_id) or s.get(Location, sale.location_id) is None:
        raise PosError(_l("请选择销售位置"), "location_id")
    if channel == Channel.KIOSK:
        if not _is_int(sale.kiosk_id) or not sale.txn_id:
            raise PosError(_l("专柜销售必须有专柜和交易编号"), "txn_id")
        prefix = sale.receipt_prefix  # the counter's code: the counters' side (kiosks.ingest) gives it
        if not prefix:
            raise PosError(_l("专柜销售必须有专柜编号"), "receipt_prefix")
        return _Context(channel, sale.location_id, prefix, buyer_type=buyer_type,
                        discount_limit_percent=settings.discount_limit_percent)
    if buyer_type is None:
        raise PosError(_l("团购必须选择购买方类型"), "buyer_type")
    return _Context(channel, sale.location_id, sale.receipt_prefix or GROUP_PREFIX, buyer_type=buyer_type,
                    discount_limit_percent=settings.discount_limit_percent)


def record_sale(s: Session, sale: SaleIn) -> SaleResult:
    """Record one sale whole: lines with certification and origin snapshots, payments, stock
    moves (first expiry first out) and a receipt number. Idempotent on ``client_sale_id`` (hall)
    or (kiosk, ``txn_id``) (counters): the same content again returns the existing sale with
    ``created=False``; different content raises Conflict."""
    digest = sale.fingerprint or content_hash(sale)
    existing = _existing(s, sale)
    if existing is not None:
        return _duplicate(s, existing, digest, sale)

    sold_at = sale.sold_at or utcnow()
    if sold_at.tzinfo is None:
        raise PosError(_l("销售时间必须带时区"), "sold_at")
    sold_at = sold_at.astimezone(dt.timezone.utc)
    day = local_date(sold_at)
    ctx = _context(s, sale)
    basket, products, _ = _price(
        s, sale.lines, order_discount_fen=sale.order_discount_fen, rounding_to_jiao=ctx.rounding_to_jiao, sold_at=sold_at,
        allow_inactive=ctx.channel == Channel.KIOSK, use_given_prices=ctx.channel != Channel.HALL)
    if ctx.channel == Channel.GROUP and not sale.payments:
        payments, change = [], 0  # on account: the buyer pays the order later (pos.group.orders)
    else:
        payments, change = _check_payments(sale.payments, basket.total_fen)

    limit = ctx.discount_limit_percent
    over_limit = basket.discount_fen * 100 > limit * basket.subtotal_fen
    if over_limit and active_approver(s, sale.approved_by_id) is None:
        raise ApprovalRequired(_l("折扣超过 %(n)s%%，需要店长授权", n=limit), "approved_by_id")

    # Claim the idempotency key and the receipt number together in a savepoint: if another
    # transaction recorded the same id meanwhile, the unique index refuses ours, the savepoint
    # gives the number back, and the other's sale is returned instead.
    sales = Sale.__table__
    try:
        with s.begin_nested():
            receipt_no = document_number(ctx.receipt_prefix, day, next_number(s, ctx.receipt_prefix, day))
            sale_id = s.execute(insert(sales).returning(sales.c.id), {
                "receipt_no": receipt_no, "channel": ctx.channel, "status": SaleStatus.COMPLETED,
                "client_sale_id": sale.client_sale_id, "kiosk_id": sale.kiosk_id, "txn_id": sale.txn_id,
                "content_hash": digest, "till_id": ctx.till.id if ctx.till else None, "shift_id": ctx.shift_id,
                "after_shift_closed": ctx.after_shift_closed, "cashier_id": sale.cashier_id,
                "location_id": ctx.location_id, "buyer_type": ctx.buyer_type, "group_order_id": sale.group_order_id,
                "sold_at": sold_at, "local_date": day, "recorded_at": utcnow(),
                "subtotal_fen": basket.subtotal_fen, "discount_fen": basket.discount_fen,
                "rounding_fen": basket.rounding_fen, "total_fen": basket.total_fen, "reprint_count": 0,
            }).scalar_one()
    except IntegrityError:
        existing = _existing(s, sale)
        if existing is None:
            raise
        return _duplicate(s, existing, digest, sale)

    line_rows = []
    for n, line in enumerate(basket.lines, start=1):
        product = products[line.product_id]
        origin = product.origin()
        line_rows.append({
            "sale_id": sale_id, "line_no": n, "product_id": line.product_id, "slot": line.slot,
            "qty_milli": line.qty_milli, "unit_price_fen": line.unit_price_fen, "gross_fen": line.gross_fen,
            "discount_fen": line.discount_fen, "net_fen": line.net_fen, "vat": product.vat.value,
            "certified": line.certified, "certificate_no": line.certificate_no,
            "supplier_id": product.supplier_id, "supplier_name": product.supplier.name if product.supplier else None,
            "origin_county": origin["county"], "origin_county_code": origin["county_code"],
            "origin_township": origin["township"], "origin_village": origin["village"],
            "cost_fen": None if product.cost_fen is None else line_amount_fen(product.cost_fen, line.qty_milli),
        })
    s.execute(insert(SaleLine.__table__), line_rows)
    if payments:
        s.execute(insert(Payment.__table__), [{**p, "sale_id": sale_id} for p in payments])

    # The goods are in the customer's hand: a sale may drive a level negative (the ledger then
    # raises a discrepancy alert), never refuses. Lines move in the ledger's lock order (product
    # id), whatever order the basket was scanned in, so that tills never deadlock each other.
    customer = _customer_location(s)
    for given, line in ledger.by_product(zip(sale.lines, basket.lines), key=lambda pair: pair[1].product_id):
        for lot_id, qty in given.lots or fefo_allocate(s, location_id=ctx.location_id, product_id=line.product_id,
                                                       qty_milli=line.qty_milli):
            ledger.move(s, product_id=line.product_id, qty_milli=qty, from_location_id=ctx.location_id,
                        to_location_id=customer, reason=MoveReason.SALE, lot_id=lot_id, ref_type="sale",
                        ref_id=sale_id, user_id=sale.cashier_id, allow_negative_source=True)

    if ctx.after_shift_closed:
        s.add(Alert(kind=AlertKind.LATE_SALE, location_id=ctx.location_id, ref_type="sale", ref_id=sale_id,
                    message=hall_text(_l("收银台 %(till)s 的销售 %(receipt)s（%(amount)s）在交班后到达，请核对",
                                         till=ctx.receipt_prefix, receipt=receipt_no,
                                         amount=format_yuan(basket.total_fen)))))
    if over_limit:
        record(s, user_id=sale.approved_by_id, action="sale.discount_approved", entity="sale", entity_id=sale_id,
               after={"receipt_no": receipt_no, "subtotal_fen": basket.subtotal_fen,
                      "discount_fen": basket.discount_fen, "limit_percent": limit, "cashier_id": sale.cashier_id})
    return SaleResult(sale_id, receipt_no, basket.total_fen, change, True)


def _customer_location(s: Session) -> int:
    cached = s.info.get("pos.customer_location")
    if cached is None:
        try:
            cached = ledger.virtual_location(s, LocationKind.CUSTOMER).id
        except InventoryError as exc:
            raise PosError(exc.message) from None
        s.info["pos.customer_location"] = cached
    return cached


# --- voids -----------------------------------------------------------------------------------------

def void_sale(s: Session, sale_id: int, *, actor_id: Optional[int], approved_by_id: Optional[int],
              reason: str) -> Sale:
    """Cancel a sale while its shift is still open (a mistake at the till, before the drawer is
    counted): reverses its stock moves and marks it voided. Later, a refund is the way back."""
    if active_approver(s, approved_by_id) is None:
        raise ApprovalRequired(_l("作废销售需要店长授权"), "approved_by_id")
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise PosError(_l("请填写作废原因"), "reason")
    sale = _locked_sale(s, sale_id)
    if sale.status != SaleStatus.COMPLETED:
        raise PosError(_l("小票 %(receipt)s 已作废", receipt=sale.receipt_no))
    shift = s.get(Shift, sale.shift_id) if sale.shift_id is not None else None
    if shift is None or shift.status != ShiftStatus.OPEN or sale.after_shift_closed:
        raise ShiftError(_l("只能作废本班次内的销售；交班后请办理退货"))
    if s.scalar(select(func.count()).select_from(Refund).where(Refund.sale_id == sale.id)):
        raise PosError(_l("小票 %(receipt)s 已有退货，不能作废", receipt=sale.receipt_no))

    moves = s.execute(select(StockMove.product_id, StockMove.lot_id, StockMove.qty_milli, StockMove.from_location_id,
                             StockMove.to_location_id)
                      .where(StockMove.ref_type == "sale", StockMove.ref_id == sale.id,
                             StockMove.reason == MoveReason.SALE)
                      .order_by(StockMove.product_id, StockMove.id)).all()  # the ledger's lock order
    for m in moves:
        ledger.move(s, product_id=m.product_id, qty_milli=m.qty_milli, from_location_id=m.to_location_id,
                    to_location_id=m.from_location_id, reason=MoveReason.REFUND, lot_id=m.lot_id,
                    ref_type="sale_void", ref_id=sale.id, user_id=actor_id, note=reason[:200])
    sale.status = SaleStatus.VOIDED
    sale.voided_at = utcnow()
    sale.voided_by_id = actor_id
    record(s, user_id=actor_id, action="sale.void", entity="sale", entity_id=sale.id,
           before={"status": SaleStatus.COMPLETED.value, "receipt_no": sale.receipt_no, "total_fen": sale.total_fen},
           after={"status": SaleStatus.VOIDED.value, "approved_by_id": approved_by_id, "reason": reason})
    s.flush()
    return sale


def _locked_sale(s: Session, sale_id) -> Sale:
    """The sale row, locked FOR UPDATE (PostgreSQL) so that voids and refunds of one sale take
    turns; on SQLite every write transaction already begins IMMEDIATE."""
    sale = s.scalars(select(Sale).where(Sale.id == sale_id).with_for_update()
                     .execution_options(populate_existing=True)).first() if _is_int(sale_id) else None
    if sale is None:
        raise NotFound(_l("找不到该销售"))
    return sale


# --- reading ---------------------------------------------------------------------------------------

def get_sale(s: Session, receipt_no: str) -> Sale:
    # A receipt number may come from a URL or a scanned QR code and hold anything; PostgreSQL
    # refuses a NUL in a text parameter, so a number that is not printable is nobody's receipt.
    plausible = isinstance(receipt_no, str) and len(receipt_no) <= 40 and receipt_no.isprintable()
    sale = s.scalars(select(Sale).where(Sale.receipt_no == receipt_no)).first() if plausible else None
    if sale is None:
        raise NotFound(_l("找不到小票：%(receipt)s", receipt=str(receipt_no)[:40]))
    return sale


def refunded_qty_by_line(s: Session, sale_id: int) -> dict[int, tuple[int, int]]:
    """sale_line_id → (quantity refunded so far, amount refunded so far), by SQL aggregation."""
    rows = s.execute(
        select(RefundLine.sale_line_id, func.sum(RefundLine.qty_milli), func.sum(RefundLine.amount_fen))
        .join(Refund, Refund.id == RefundLine.refund_id)
        .where(Refund.sale_id == sale_id)
        .group_by(RefundLine.sale_line_id)
    )
    return {line_id: (int(qty), int(amount)) for line_id, qty, amount in rows}


def sale_view(s: Session, sale_id: int) -> dict[str, Any]:
    """The sale as a plain JSON-able dict, for receipts and the API."""
    sale = s.scalars(select(Sale).where(Sale.id == sale_id)
                     .options(selectinload(Sale.lines), selectinload(Sale.payments))).first() \
        if _is_int(sale_id) else None
    if sale is None:
        raise NotFound(_l("找不到该销售"))
    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_({ln.product_id for ln in sale.lines})))}
    refunded = refunded_qty_by_line(s, sale.id)
    till = s.get(Till, sale.till_id) if sale.till_id else None
    cashier = s.get(User, sale.cashier_id) if sale.cashier_id else None
    lines = []
    for ln in sale.lines:
        p = products[ln.product_id]
        done = refunded.get(ln.id, (0, 0))[0]
        lines.append({
            "id": ln.id, "line_no": ln.line_no, "product_id": ln.product_id, "sku": p.sku, "name": p.name,
            "unit": p.unit.value, "sold_by_weight": bool(p.sold_by_weight), "qty_milli": ln.qty_milli,
            "unit_price_fen": ln.unit_price_fen, "gross_fen": ln.gross_fen, "discount_fen": ln.discount_fen,
            "net_fen": ln.net_fen, "certified": ln.certified, "certificate_no": ln.certificate_no,
            "supplier_name": ln.supplier_name, "origin_county": ln.origin_county,
            "refunded_qty_milli": done,
            "refundable_qty_milli": ln.qty_milli - done if sale.status == SaleStatus.COMPLETED else 0,
        })
    refunds = s.execute(select(Refund.refund_no, Refund.refunded_at, Refund.total_fen, Refund.method)
                        .where(Refund.sale_id == sale.id).order_by(Refund.id)).all()
    certified = sum(ln.net_fen for ln in sale.lines if ln.certified)
    return {
        "id": sale.id,
        "receipt_no": sale.receipt_no,
        "channel": sale.channel.value,
        "status": sale.status.value,
        "till": till.code if till else None,
        "cashier": cashier.display_name if cashier else None,
        "sold_at": sale.sold_at.isoformat(),
        "sold_at_local": format_local(sale.sold_at),
        "local_date": sale.local_date.isoformat(),
        "subtotal_fen": sale.subtotal_fen,
        "discount_fen": sale.discount_fen,
        "rounding_fen": sale.rounding_fen,
        "total_fen": sale.total_fen,
        "certified_fen": certified,
        "uncertified_fen": sale.total_fen - certified,
        "change_fen": sum(p.change_fen for p in sale.payments),
        "after_shift_closed": sale.after_shift_closed,
        "lines": lines,
        "payments": [{"method": p.method.value, "amount_fen": p.amount_fen, "tendered_fen": p.tendered_fen,
                      "change_fen": p.change_fen, "ref": p.ref} for p in sale.payments],
        "refunds": [{"refund_no": r.refund_no, "refunded_at_local": format_local(r.refunded_at),
                     "total_fen": r.total_fen, "method": PaymentMethod(r.method).value} for r in refunds],
    }


__all__ = [
    "LineIn", "PaymentIn", "SaleIn", "PricedLine", "Basket", "SaleResult",
    "price_basket", "cash_rounding_applies", "record_sale", "void_sale", "get_sale", "sale_view", "compute_amounts",
    "next_number", "document_number", "active_approver", "refunded_qty_by_line",
]
