"""Recording a sale: ``record_sale``, the one function that records a sale for the hall's tills,
the counters (kiosks.ingest) and group orders (pos.group.orders), with what it checks on the way
(the channel's rules, payments, the discount limit, idempotency) and the document numbers.

The server prices every sale itself (pos.sales.pricing) and never trusts a client's totals.

Functions take a Session and plain values, never commit (the caller's unit of work does) and
validate everything before writing, so an error leaves nothing half-written once the caller rolls
back.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Optional, Sequence, Union

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventory import ledger
from inventory.documents import format_number, take_number
from inventory.localtime import local_date, utcnow
from inventory.money import AmountError, format_yuan
from pos.accounts.users import active_approver
from pos.core.db import read_connection, writes_alone
from pos.core.errors import ApprovalRequired, Conflict, PaymentError, PosError, ShiftError
from pos.hall.settings import hall_settings
from pos.models import (
    BuyerType,
    Channel,
    Payment,
    PaymentMethod,
    Sale,
    Shift,
    ShiftStatus,
    Till,
)
from pos.sales.code_payments import checked_attempt
from pos.sales.offline import OfflineLimits, check_time, open_shift_of, shift_at
from pos.sales.pricing import MAX_LINES, Basket, LineIn, cash_rounding_applies, checked_fen, is_int, price_lines
from pos.sales.receipt_blocks import claim_reserved_number, refuse_if_taken
from pos.sales.writing import claim, customer_location, write_claimed, write_sales

GROUP_PREFIX = "G"


# --- what callers send ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PaymentIn:
    method: str
    amount_fen: int                       # what counts towards the sale
    tendered_fen: Optional[int] = None    # cash handed over (default: the amount)
    ref: Optional[str] = None
    attempt_id: Optional[int] = None      # a payment code's confirmed attempt (pos.sales.code_payments)


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
    # A number of a block the till reserved for the sale's local day (pos.sales.receipt_blocks), for
    # a receipt printed offline; None: the next number of the day's counter.
    receipt_no: Optional[str] = None
    # A hall sale the till made offline (the till's API sets it when the sale gives its ``sold_at``):
    # the time is judged against these bounds (pos.sales.offline.check_time), the sale counts in the
    # shift its time falls in, and it is recorded at the prices its lines give (what the customer
    # paid), flagged when they are not the catalogue's. None: an online sale, a counter's, a group
    # delivery, history.
    offline: Optional[OfflineLimits] = None
    # The payment methods whose provider has merchant credentials (pos.payments.credentials): a
    # payment of such a method must name its confirmed attempt (pos.sales.code_payments). The
    # till's API fills it for hall sales; empty for counters, group orders, history.
    code_methods: frozenset = frozenset()


@dataclass(frozen=True)
class SaleResult:
    sale_id: int
    receipt_no: str
    total_fen: int
    change_fen: int
    created: bool


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
        "payments": [[p.method, p.amount_fen, p.tendered_fen, p.ref]
                     + ([p.attempt_id] if getattr(p, "attempt_id", None) is not None else [])
                     for p in sale.payments],
        "order_discount_fen": sale.order_discount_fen,
        "sold_at": sale.sold_at.astimezone(dt.timezone.utc).isoformat() if sale.sold_at else None,
        "buyer_type": sale.buyer_type,
        "group_order_id": sale.group_order_id,
    }
    if sale.receipt_no is not None:  # only then: the fingerprints of sales recorded before stay the same
        canonical["receipt_no"] = sale.receipt_no
    text = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The checkout's reads: built once, with bound parameters, on table columns, and run on the
# session's connection (pos.core.db.read_connection): building a statement, or an ORM load, costs
# more than running it on SQLite, and nothing is loaded into the session.
_SALES, _PAYMENTS, _TILLS, _SHIFTS = Sale.__table__, Payment.__table__, Till.__table__, Shift.__table__
_KEY_COLUMNS = (_SALES.c.id, _SALES.c.content_hash, _SALES.c.receipt_no, _SALES.c.total_fen, _SALES.c.client_sale_id,
                _SALES.c.txn_id)
_BY_CLIENT_ID = select(*_KEY_COLUMNS).where(_SALES.c.client_sale_id == bindparam("key"))
_BY_TXN = select(*_KEY_COLUMNS).where(_SALES.c.kiosk_id == bindparam("kiosk_id"), _SALES.c.txn_id == bindparam("txn_id"))
_CHANGE = select(func.coalesce(func.sum(_PAYMENTS.c.change_fen), 0)).where(_PAYMENTS.c.sale_id == bindparam("sale_id"))
_TILL_COLUMNS = (_TILLS.c.id, _TILLS.c.location_id, _TILLS.c.code)
_SHIFT_COLUMNS = (_SHIFTS.c.id.label("shift_id"), _SHIFTS.c.till_id.label("shift_till_id"), _SHIFTS.c.status)
_TILL = select(*_TILL_COLUMNS).where(_TILLS.c.id == bindparam("till_id"))
# The till with its shift in one statement: the shift the sale names, or the till's open one. FOR
# SHARE of the shift's row only: close_shift locks it FOR UPDATE, so a sale in flight is either
# counted before the close, or waits and then sees the shift closed (or, for the open one, none).
_TILL_AND_SHIFT = select(*_TILL_COLUMNS, *_SHIFT_COLUMNS) \
    .select_from(_TILLS.join(_SHIFTS, _SHIFTS.c.id == bindparam("shift_id"))) \
    .where(_TILLS.c.id == bindparam("till_id")).with_for_update(read=True, of=_SHIFTS)
_TILL_AND_OPEN_SHIFT = select(*_TILL_COLUMNS, *_SHIFT_COLUMNS) \
    .select_from(_TILLS.join(_SHIFTS, (_SHIFTS.c.till_id == _TILLS.c.id) & (_SHIFTS.c.status == ShiftStatus.OPEN))) \
    .where(_TILLS.c.id == bindparam("till_id")).with_for_update(read=True, of=_SHIFTS)


@dataclass(frozen=True)
class TillRef:
    """What a sale needs of its till (not an ORM object)."""
    id: int
    location_id: int
    code: str


@dataclass(frozen=True)
class _ShiftRef:
    id: int
    till_id: int
    status: ShiftStatus


def _existing(s: Session, sale: SaleIn):
    """The sale already recorded under the sender's key: only what a duplicate's answer needs (its
    id, fingerprint, receipt number, total and key), not a whole Sale."""
    if sale.client_sale_id is not None:
        return read_connection(s).execute(_BY_CLIENT_ID, {"key": sale.client_sale_id}).first()
    if sale.kiosk_id is not None and sale.txn_id is not None:
        return read_connection(s).execute(_BY_TXN, {"kiosk_id": sale.kiosk_id, "txn_id": sale.txn_id}).first()
    return None


def _duplicate(s: Session, existing, digest: str, sale: SaleIn) -> SaleResult:
    # A sale recorded before senders' fingerprints were kept carries the hash of its SaleIn.
    if existing.content_hash != digest and not (sale.fingerprint and existing.content_hash == content_hash(sale)):
        raise Conflict(_l("编号 %(id)s 已用于另一笔内容不同的销售（小票 %(receipt)s）",
                          id=existing.client_sale_id or existing.txn_id, receipt=existing.receipt_no))
    change = read_connection(s).execute(_CHANGE, {"sale_id": existing.id}).scalar_one()
    return SaleResult(existing.id, existing.receipt_no, existing.total_fen, int(change), False)


def _check_payments(payments: Sequence[PaymentIn], total: int, s: Optional[Session] = None,
                    sale: Optional[SaleIn] = None) -> tuple[list[dict], int]:
    """Payment rows to write, and the change. Amounts must add up exactly to the total; only cash
    may be over-tendered (the difference is change). A payment-code payment names its confirmed
    attempt (pos.sales.code_payments): its ref is then the provider's transaction id."""
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
        amount = checked_fen(p.amount_fen, _l("支付金额"), field_name=f"payments-{i}-amount_fen", error=PaymentError)
        if amount == 0:
            raise PaymentError(_l("支付金额必须大于零"), f"payments-{i}-amount_fen")
        if p.ref is not None and (not isinstance(p.ref, str) or len(p.ref) > 80):
            raise PaymentError(_l("支付流水号太长"), f"payments-{i}-ref")
        tendered = p.tendered_fen
        if method == PaymentMethod.CASH:
            cash_lines += 1
            if cash_lines > 1:
                raise PaymentError(_l("一笔销售只能有一行现金支付"), f"payments-{i}-method")
            tendered = amount if tendered is None else checked_fen(
                tendered, _l("实收现金"), field_name=f"payments-{i}-tendered_fen", error=PaymentError)
            if tendered < amount:
                raise PaymentError(_l("实收现金 %(tendered)s 少于现金支付金额 %(amount)s",
                                      tendered=format_yuan(tendered), amount=format_yuan(amount)),
                                   f"payments-{i}-tendered_fen")
        elif tendered is not None and tendered != amount:
            raise PaymentError(_l("非现金支付不能找零"), f"payments-{i}-tendered_fen")
        ref, attempt_id = p.ref, None
        if s is not None and sale is not None:
            attempt = checked_attempt(s, index=i, method=method, amount_fen=amount, attempt_id=p.attempt_id,
                                      till_id=sale.till_id, client_sale_id=sale.client_sale_id,
                                      code_methods=sale.code_methods)
            if attempt is not None:
                if attempt.id in {r["attempt_id"] for r in rows}:
                    raise PaymentError(_l("同一笔付款码收款不能用两次"), f"payments-{i}-attempt_id")
                ref, attempt_id = attempt.transaction_id, attempt.id
        elif p.attempt_id is not None:
            raise PaymentError(_l("这类销售不能带付款码记录"), f"payments-{i}-attempt_id")
        rows.append({"method": method, "amount_fen": amount, "tendered_fen": tendered,
                     "change_fen": (tendered - amount) if tendered is not None else 0, "ref": ref,
                     "attempt_id": attempt_id})
    paid = sum(r["amount_fen"] for r in rows)
    if paid != total:
        raise PaymentError(_l("支付合计 %(paid)s 与应收 %(total)s 不符", paid=format_yuan(paid), total=format_yuan(total)),
                           "payments")
    return rows, sum(r["change_fen"] for r in rows)


@dataclass
class _Context:
    channel: Channel
    location_id: int
    receipt_prefix: str
    shift_id: Optional[int] = None
    after_shift_closed: bool = False
    buyer_type: Optional[BuyerType] = None
    till: Optional[TillRef] = None
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
        till, shift = _till_and_shift(s, sale)
        if till is None:
            raise PosError(_l("请选择收银台"), "till_id")
        ctx = _Context(channel, till.location_id, till.code, till=till, buyer_type=buyer_type,
                       discount_limit_percent=settings.discount_limit_percent)
        ctx.rounding_to_jiao = cash_rounding_applies(
            settings.rounding_to_jiao if sale.rounding_to_jiao is None else bool(sale.rounding_to_jiao), sale.payments)
        if sale.shift_id is not None:
            if shift is None:
                raise ShiftError(_l("班次不存在"), "shift_id")
            if shift.till_id != till.id:
                raise ShiftError(_l("班次不属于收银台 %(till)s", till=till.code), "shift_id")
        elif sale.offline is not None and sale.sold_at is not None:
            # Made offline: the shift its time falls in, even one closed meanwhile (then a late sale);
            # before any shift of the till had opened, the open one (check_time refuses the time).
            shift = shift_at(s, till.id, sale.sold_at, lock=True) or open_shift_of(s, till.id)
        if sale.offline is not None:
            check_time(sale.sold_at, sale.offline, field="sold_at", shift=shift)
        ctx.shift_id = shift.id if shift is not None else None
        # Kept, not lost: the money was taken. The manager sees it among the late sales.
        ctx.after_shift_closed = shift is None or shift.status != ShiftStatus.OPEN
        return ctx

    if not is_int(sale.location_id) or ledger.locations(s, (sale.location_id,)).get(sale.location_id) is None:
        raise PosError(_l("请选择销售位置"), "location_id")
    if channel == Channel.KIOSK:
        if not is_int(sale.kiosk_id) or not sale.txn_id:
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


def _till_and_shift(s: Session, sale: SaleIn) -> tuple[Optional[TillRef], Optional[_ShiftRef]]:
    """A hall sale's till (None: no such till) and, unless the sale was made offline without naming
    a shift (then the caller finds the shift its time falls in), the shift it names, else the
    till's open one (None: none, or no such shift) — one statement when both exist."""
    if not is_int(sale.till_id):
        return None, None
    conn = read_connection(s)
    offline_time = sale.shift_id is None and sale.offline is not None and sale.sold_at is not None
    if sale.shift_id is None and not offline_time:
        row = conn.execute(_TILL_AND_OPEN_SHIFT, {"till_id": sale.till_id}).first()
    elif is_int(sale.shift_id):
        row = conn.execute(_TILL_AND_SHIFT, {"till_id": sale.till_id, "shift_id": sale.shift_id}).first()
    else:
        row = None
    if row is None:  # no such till, or no such (open) shift: the till alone says which
        till = conn.execute(_TILL, {"till_id": sale.till_id}).first()
        return (TillRef(till.id, till.location_id, till.code) if till is not None else None), None
    return TillRef(row.id, row.location_id, row.code), _ShiftRef(row.shift_id, row.shift_till_id, row.status)


@dataclass
class PreparedSale:
    """A sale prepare_sale has checked and priced, nothing written: what pos.sales.writing writes."""
    sale: SaleIn
    digest: str                           # the sender's fingerprint (or content_hash)
    sold_at: dt.datetime                  # UTC
    day: dt.date                          # its local date
    ctx: _Context
    basket: Basket
    products: dict
    list_prices: dict                     # line index → catalogue price, where an offline sale charged another
    payments: list[dict]
    change: int
    over_limit: bool                      # a discount over the limit, approved (audited when written)
    reserved: Optional[str]               # a receipt number of the till's reserved block


class PricedTogether:
    """``price_lines`` for many sales at once (a counter's part of a batch): the lines of the
    sales of one local day priced by one call, so one query for their products and one for the
    certificates of that day, instead of two per sale. Only sales with no basket-level amount (no
    order discount, no 抹零) are priced together: then every line's amounts depend on that line
    alone, and each sale's basket is the sum of its own lines, as pricing it alone gives. Called
    as ``price_lines`` (prepare_sale's ``price``); a call it has no answer for (other flags, a group
    that some line's check refused) is priced alone, so a refusal names the sale's own line."""

    def __init__(self, s: Session, sales: Sequence[SaleIn], *, allow_inactive: bool, use_given_prices: bool):
        self.flags = (allow_inactive, use_given_prices)
        self.priced: dict[int, tuple] = {}
        days: dict[dt.date, list[SaleIn]] = {}
        for sale in sales:
            if (sale.order_discount_fen == 0 and isinstance(sale.sold_at, dt.datetime) and sale.sold_at.tzinfo
                    and isinstance(sale.lines, (list, tuple)) and 0 < len(sale.lines) <= MAX_LINES):
                days.setdefault(local_date(sale.sold_at), []).append(sale)
        for group in days.values():
            chunk: list[SaleIn] = []
            for sale in group:  # at most MAX_LINES lines per call
                if sum(len(x.lines) for x in chunk) + len(sale.lines) > MAX_LINES:
                    self._price(s, chunk)
                    chunk = []
                chunk.append(sale)
            self._price(s, chunk)

    def _price(self, s: Session, sales: list[SaleIn]) -> None:
        allow_inactive, use_given_prices = self.flags
        try:
            basket, products, certs = price_lines(
                s, [line for sale in sales for line in sale.lines], order_discount_fen=0, rounding_to_jiao=False,
                sold_at=sales[0].sold_at, allow_inactive=allow_inactive, use_given_prices=use_given_prices)
        except (PosError, AmountError):
            return  # each sale is priced alone when prepared: its refusal names its own line
        first = 0
        for sale in sales:
            lines = basket.lines[first:first + len(sale.lines)]
            first += len(sale.lines)
            subtotal = sum(line.gross_fen for line in lines)
            total = sum(line.net_fen for line in lines)
            certified = sum(line.net_fen for line in lines if line.certified)
            own = Basket(lines, subtotal, subtotal - total, 0, total, certified, total - certified)
            self.priced[id(sale.lines)] = (sale.lines, own, products, certs)

    def __call__(self, s: Session, lines, *, order_discount_fen, rounding_to_jiao, sold_at, allow_inactive,
                 use_given_prices):
        known = self.priced.get(id(lines))
        if (known is not None and known[0] is lines and order_discount_fen == 0 and not rounding_to_jiao
                and (allow_inactive, use_given_prices) == self.flags):
            return known[1:]
        return price_lines(s, lines, order_discount_fen=order_discount_fen, rounding_to_jiao=rounding_to_jiao,
                           sold_at=sold_at, allow_inactive=allow_inactive, use_given_prices=use_given_prices)


def prepare_sale(s: Session, sale: SaleIn, *, key_unused: bool = False, price=price_lines
                 ) -> Union[PreparedSale, SaleResult]:
    """The read half of record_sale: everything checked and priced, nothing written. Returns the
    sale already recorded under the sender's key (a duplicate, or Conflict), else the
    PreparedSale that ``pos.sales.writing.write_sales`` writes. ``key_unused``: the caller has
    looked the key up in this transaction and found it unused (kiosks.ingest, one query for a
    part's txn_ids); the unique index still refuses a sale recorded meanwhile. ``price``: what
    prices the lines, ``price_lines`` or a ``PricedTogether`` made for the caller's sales."""
    digest = sale.fingerprint or content_hash(sale)
    existing = None if key_unused else _existing(s, sale)
    if existing is not None:
        return _duplicate(s, existing, digest, sale)

    sold_at = sale.sold_at or utcnow()
    if sold_at.tzinfo is None:
        raise PosError(_l("销售时间必须带时区"), "sold_at")
    sold_at = sold_at.astimezone(dt.timezone.utc)
    day = local_date(sold_at)
    ctx = _context(s, sale)
    # A hall sale made offline is recorded at the prices the till charged, even for a product
    # retired meanwhile: the money was taken. Online, the server prices it (given prices ignored).
    offline_hall = ctx.channel == Channel.HALL and sale.offline is not None
    basket, products, _ = price(
        s, sale.lines, order_discount_fen=sale.order_discount_fen, rounding_to_jiao=ctx.rounding_to_jiao, sold_at=sold_at,
        allow_inactive=ctx.channel == Channel.KIOSK or offline_hall,
        use_given_prices=ctx.channel != Channel.HALL or offline_hall)
    list_prices = {i: products[line.product_id].price_fen for i, line in enumerate(basket.lines)
                   if offline_hall and line.unit_price_fen != products[line.product_id].price_fen}
    if ctx.channel == Channel.GROUP and not sale.payments:
        payments, change = [], 0  # on account: the buyer pays the order later (pos.group.payments)
    else:
        payments, change = _check_payments(sale.payments, basket.total_fen, s,
                                           sale if ctx.channel == Channel.HALL else None)

    limit = ctx.discount_limit_percent
    over_limit = basket.discount_fen * 100 > limit * basket.subtotal_fen
    if over_limit and active_approver(s, sale.approved_by_id) is None:
        raise ApprovalRequired(_l("折扣超过 %(n)s%%，需要店长授权", n=limit), "approved_by_id")

    # A receipt number the till reserved (printed offline): its own, for the sale's day, unused.
    reserved = claim_reserved_number(s, ctx.till, day, sale.receipt_no) if sale.receipt_no is not None else None
    return PreparedSale(sale, digest, sold_at, day, ctx, basket, products, list_prices, payments, change,
                        over_limit, reserved)


def _claim(s: Session, ready: PreparedSale, sale: SaleIn) -> Union[list[tuple[int, str]], SaleResult]:
    """Claim the idempotency key and the receipt number together in a savepoint: if another
    transaction recorded the same id meanwhile, the unique index refuses ours, the savepoint gives
    the number back, and the other's sale is returned instead. Not needed (record_sale claims
    directly) while SQLite's write lock is held, as it has been since the transaction began: then
    nobody can have recorded the key, or taken the reserved number, since prepare_sale found it
    unused, and the savepoint's two statements of a checkout's ~17 are saved."""
    try:
        with s.begin_nested():
            return claim(s, [ready])
    except IntegrityError:
        existing = _existing(s, sale)
        if existing is None:
            if ready.reserved is not None:  # another sale took the reserved number meanwhile
                refuse_if_taken(s, ready.reserved)
            raise
        return _duplicate(s, existing, ready.digest, sale)


def record_sale(s: Session, sale: SaleIn) -> SaleResult:
    """Record one sale whole: lines with certification and origin snapshots, payments, stock
    moves (first expiry first out) and a receipt number. Idempotent on ``client_sale_id`` (hall)
    or (kiosk, ``txn_id``) (counters): the same content again returns the existing sale with
    ``created=False``; different content raises Conflict. prepare_sale, then writing's
    ``claim`` and ``write_claimed``: the one place for each rule, shared with a counter's batch."""
    ready = prepare_sale(s, sale)
    if isinstance(ready, SaleResult):
        return ready
    # In a savepoint, unless SQLite's write lock is held (see _claim).
    claimed = claim(s, [ready]) if writes_alone(s) else _claim(s, ready, sale)
    if isinstance(claimed, SaleResult):
        return claimed
    write_claimed(s, [ready], claimed)
    sale_id, receipt_no = claimed[0]
    return SaleResult(sale_id, receipt_no, ready.basket.total_fen, ready.change, True)


__all__ = [
    "PaymentIn", "SaleIn", "SaleResult", "PreparedSale", "PricedTogether", "record_sale", "prepare_sale",
    "write_sales", "content_hash", "customer_location",
    "next_number", "document_number", "GROUP_PREFIX",
]
