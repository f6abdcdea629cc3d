"""What a counter reports: batches of sales and heartbeats.

``ingest_sales`` records each sale of a batch whole or not at all through the one sales service
(pos.sales.service.prepare_sale, then pos.sales.writing, as record_sale does; channel ``kiosk``),
so counter sales move stock out of the counter's location and keep the certified snapshot exactly
as hall sales do. A batch may be partly accepted: every sale ends up in exactly one of
``accepted``, ``duplicates`` (the same ``txn_id`` with the same content was recorded before) or
``rejected`` (with the reason).

A part of a batch (ten sales, one transaction, see the API) is judged whole before anything is
written: duplicates against the database (one query for the part's txn_ids) and within the part
(a txn_id sent twice: the second is judged against the first, as if it were recorded), each
sale's rules and prices (the part's lines priced together per local day: pos.sales.service.
PricedTogether). The accepted ones are then written by one pass (one statement each for the
receipt numbers, the sales, the lines, the payments, the daily figures, the lots, the level rows
in the global lock order and the moves), with no savepoint per sale: a rejected sale has nothing
written. A sale of the part that another transaction recorded meanwhile makes the unique index
refuse the part's insert; the part is rolled back and run again, and then answers it as a
duplicate.

The rules of a counter sale, on top of record_sale's:

- a line names its ``slot`` (resolved through the counter's CURRENT planogram) or its ``sku``; an
  unknown slot or sku rejects the sale (nothing to record it against);
- a known product that is not in the planogram is still recorded (the goods were sold; the
  planogram is stale) and opens a ``not_in_planogram`` alert;
- the price the counter charged is what is recorded (the money was taken); a price that differs
  from the planogram's opens a ``price_mismatch`` alert;
- one open alert per (counter, product, kind): a mismatch that happens again adds none;
- the lines must add up to the payment (a counter gives no discounts); wechat or alipay only;
- ``sold_at`` must carry a UTC offset: the sale counts on its own local day however late it
  arrives (record_sale derives ``local_date`` from it).

The planogram and the skus of a batch are read with one query each; nothing is queried per line
or per sale.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from inventory.alerts import hall_text
from inventory.errors import InventoryError
from inventory.localtime import utcnow
from inventory.models import Alert, AlertKind, Product
from inventory.money import AmountError, format_yuan
from kiosks.models import Kiosk, PlanogramSlot
from pos.core.db import run_in_transaction
from pos.core.errors import Conflict, PosError
from pos.models import Sale
from pos.sales.pricing import LineIn, is_int
from pos.sales.service import PaymentIn, PreparedSale, PricedTogether, SaleIn, SaleResult, prepare_sale
from pos.sales.writing import insert_alerts, write_sales

MAX_SALES = 500               # per batch (DESIGN.md, counter API v1)
MAX_LINES = 50                # per counter sale: a cabinet holds at most a few dozen slots
MAX_QTY = 999                 # pieces on one line
MAX_UNIT_PRICE_FEN = 99_999_999
COUNTER_METHODS = ("wechat", "alipay")
TXN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
FUTURE_TOLERANCE = dt.timedelta(hours=24)   # a counter's clock may drift; a sale from next year may not
EARLIEST = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
MAX_ERROR_TEXT = 200


class Rejected(ValueError):
    """A sale refused before it reaches the sales service (its message is for the report)."""


@dataclass(frozen=True)
class _Slot:
    product_id: int
    price_fen: int


@dataclass(frozen=True)
class _Product:
    id: int
    name: str


# --- sales ---------------------------------------------------------------------------------------

def ingest_sales(s: Session, kiosk: Kiosk, sales: list, *, chunk: Optional[int] = None,
                 check: Optional[Callable[[Any], Any]] = None) -> dict[str, list]:
    """Record a counter's batch of sales. Returns ``{"accepted": [txn_id…], "duplicates":
    [txn_id…], "rejected": [{"txn_id", "error"}…]}`` in the order the sales came. More than
    MAX_SALES sales: PosError and nothing recorded.

    Without ``chunk`` nothing is committed: the caller's unit of work does. With ``chunk`` (the
    API) the batch is recorded in transactions of that many sales, each committed and, when the
    database answers a deadlock or serialization failure or another transaction recorded one of
    its txn_ids meanwhile, rolled back and run again (the txn_ids make the second run record
    nothing twice): a batch of 500 never holds its locks for long. Without ``chunk`` the batch is
    one part, in a savepoint.
    ``check`` reads each sale before anything else (the API's schema check): it returns the sale
    to record, or raises Rejected, which refuses that sale by its txn_id. The fingerprint is taken
    of the sale as sent."""
    if not isinstance(sales, (list, tuple)):
        raise PosError(_l("sales 必须是列表"), "sales")
    if len(sales) > MAX_SALES:
        raise PosError(_l("一批最多 %(n)s 笔销售", n=MAX_SALES), "sales")

    batch = _Batch(kiosk_id=kiosk.id, code=kiosk.code, location_id=kiosk.location_id,
                   last_sale_at=kiosk.last_sale_at)
    batch.slots, batch.planogram_prices = _planogram(s, kiosk.id)
    batch.products = _products_by_sku(s, _skus(sales))
    batch.names = _product_names(s, {slot.product_id for slot in batch.slots.values()})
    batch.alerts = _open_alerts(s, kiosk.location_id)

    result: dict[str, list] = {"accepted": [], "duplicates": [], "rejected": []}
    parts = [list(sales)] if not chunk else [list(sales[i:i + chunk]) for i in range(0, len(sales), chunk)]
    for part in parts:
        done = _run_part(s, kiosk, batch, part, check, committed=bool(chunk))
        for key in result:
            result[key].extend(done.result[key])
        batch.alerts, batch.last_sale_at = done.alerts, done.last_sale_at
    return result


@dataclass
class _Batch:
    """What every sale of a batch is judged against, read once."""
    kiosk_id: int
    code: str
    location_id: int
    last_sale_at: Optional[dt.datetime]
    slots: dict = field(default_factory=dict)
    planogram_prices: dict = field(default_factory=dict)
    products: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)
    alerts: set = field(default_factory=set)


@dataclass
class _Part:
    result: dict
    alerts: set
    last_sale_at: Optional[dt.datetime]


def counter_fingerprint(raw: Any) -> str:
    """The fingerprint of a sale as the counter sent it (its JSON, keys sorted, no spacing),
    before any slot is resolved through today's planogram: the same bytes sent again after a
    planogram change are still the same sale."""
    text = json.dumps(raw, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(("counter-v1:" + text).encode("utf-8")).hexdigest()


@dataclass
class _Staged:
    """One sale of a part as read before anything is looked up: what check() refused, or its
    fingerprint and the SaleIn (or what refused it)."""
    txn_id: Any
    shown_id: str
    refused: Optional[Rejected] = None       # by check(): rejected whatever else is known
    fingerprint: Optional[str] = None
    sale_in: Optional[SaleIn] = None
    notes: list = field(default_factory=list)
    unreadable: Optional[Rejected] = None    # by _sale_in: rejected, or a conflict when the txn_id is known


def _stage(batch: _Batch, raw: Any, check) -> _Staged:
    txn_id = raw.get("txn_id") if isinstance(raw, dict) else None
    staged = _Staged(txn_id, txn_id if isinstance(txn_id, str) else str(txn_id)[:64])
    try:
        sale = check(raw) if check is not None else raw
    except Rejected as error:
        staged.refused = error
        return staged
    staged.fingerprint = counter_fingerprint(raw)
    try:
        staged.sale_in, staged.notes = _sale_in(batch, sale, staged.fingerprint)
    except Rejected as error:
        staged.unreadable = error
    return staged


class _WriteRefused(Exception):
    """A rule refused a write of the part written together: run it again, each sale on its own."""


_REFUSALS = (Rejected, PosError, InventoryError, AmountError)
_LAST_SALE = update(Kiosk.__table__).where(Kiosk.__table__.c.id == bindparam("kiosk_id")) \
    .values(last_sale_at=bindparam("at"))


def _record_part(s: Session, kiosk: Kiosk, batch: _Batch, sales: list, check, alone: bool = False) -> _Part:
    """Record some sales of a batch, each whole or not at all: every sale judged first (a duplicate,
    a conflict, a rejection with its reason, or a PreparedSale), then the accepted ones written
    together by one pass of pos.sales.writing (no savepoint per sale). ``alone``: each written on
    its own in a savepoint instead (the rerun after a write the rules refused). Changes only its
    own copies of the batch's state, so that a part run again starts from the same state."""
    staged = [_stage(batch, raw, check) for raw in sales]
    known = _known_txns(s, batch.kiosk_id, sales)
    priced = PricedTogether(s, [x.sale_in for x in staged if x.sale_in is not None and x.txn_id not in known],
                            allow_inactive=True, use_given_prices=True)
    outcome: list[tuple[str, Any]] = []       # per sale: (accepted | duplicates | rejected | conflict, detail)
    pending: dict[str, tuple[str, int]] = {}  # txn_id → (fingerprint, index) of a sale of this part to record
    ready: list[tuple[int, PreparedSale]] = []
    claimed: dict[int, tuple[int, str]] = {}  # index → (sale id, receipt number)
    for i, x in enumerate(staged):
        if x.refused is not None:
            outcome.append(("rejected", x.refused))
            continue
        mine = pending.get(x.txn_id) if isinstance(x.txn_id, str) else None
        if mine is not None:  # sent twice in this part: judged against the first, as if it were recorded
            outcome.append(("duplicates", None) if mine[0] == x.fingerprint else ("conflict", mine[1]))
            continue
        seen = known.get(x.txn_id) if isinstance(x.txn_id, str) else None
        if seen is not None and seen[0] == x.fingerprint:
            outcome.append(("duplicates", None))  # judged on what the counter sent, before any slot
            continue
        if x.unreadable is not None:  # a txn_id already used, and this content cannot even be read
            outcome.append(("rejected", _conflict(x.txn_id, seen[1]) if seen is not None else x.unreadable))
            continue
        try:
            prepared = prepare_sale(s, x.sale_in, key_unused=seen is None, price=priced)
            if isinstance(prepared, SaleResult):  # recorded before counters' fingerprints were kept
                outcome.append(("duplicates", None))
                continue
            if alone:
                with s.begin_nested():
                    claimed[i] = write_sales(s, [prepared])[0]
        except _REFUSALS as error:
            outcome.append(("rejected", error))
            continue
        outcome.append(("accepted", None))
        pending[x.txn_id] = (x.fingerprint, i)
        ready.append((i, prepared))
    if not alone:
        try:
            claimed.update(zip([i for i, _ in ready], write_sales(s, [r for _, r in ready])))
        except _REFUSALS as error:
            raise _WriteRefused() from error

    result: dict[str, list] = {"accepted": [], "duplicates": [], "rejected": []}
    alerts, last_sale_at = set(batch.alerts), batch.last_sale_at
    new_alerts = []
    for x, (kind, detail), i in zip(staged, outcome, range(len(staged))):
        if kind == "conflict":
            kind, detail = "rejected", _conflict(x.txn_id, claimed[detail][1])
        if kind == "rejected":
            result["rejected"].append({"txn_id": x.shown_id, "error": str(detail)})
            continue
        result[kind].append(x.txn_id)
        if kind != "accepted":
            continue
        if last_sale_at is None or x.sale_in.sold_at > last_sale_at:
            last_sale_at = x.sale_in.sold_at
        for note, product_id, text in x.notes:
            if (note, product_id) not in alerts:
                alerts.add((note, product_id))
                new_alerts.append({"kind": note, "location_id": batch.location_id, "product_id": product_id,
                                   "ref_type": "sale", "ref_id": claimed[i][0],
                                   "message": hall_text(_alert_text(note, batch.code, text, batch.names))})
    insert_alerts(s, new_alerts)
    if last_sale_at is not None and last_sale_at != batch.last_sale_at:
        s.execute(_LAST_SALE, {"kiosk_id": kiosk.id, "at": last_sale_at})
        set_committed_value(kiosk, "last_sale_at", last_sale_at)
    s.flush()
    return _Part(result, alerts, last_sale_at)


def _txn_taken(error: IntegrityError) -> bool:
    """The unique index on (counter, txn_id) refused a sale: another transaction recorded it meanwhile."""
    orig = error.orig
    constraint = getattr(getattr(orig, "diag", None), "constraint_name", None)
    return constraint == "uq_sales_kiosk_id_txn_id" or "sales.kiosk_id, sales.txn_id" in str(orig)


RERUNS = 3


def _run_part(s: Session, kiosk: Kiosk, batch: _Batch, part: list, check, committed: bool) -> _Part:
    """A part in a transaction of its own (``committed``: run_in_transaction, which also runs it
    again after a deadlock or serialization failure) or in a savepoint of the caller's. When the
    unique index on (counter, txn_id) refuses the part's insert (another transaction recorded one
    of its sales meanwhile), the part is rolled back and run again: the rerun finds the txn_id
    known and answers it as a duplicate, or a conflict. When a rule refuses the write of the part
    written together, it is run again with each sale written on its own, so that only that sale
    is rejected."""
    alone = False
    for attempt in range(1, RERUNS + 1):
        try:
            if committed:
                return run_in_transaction(s, lambda: _record_part(s, kiosk, batch, part, check, alone))
            with s.begin_nested():
                return _record_part(s, kiosk, batch, part, check, alone)
        except IntegrityError as error:
            if attempt == RERUNS or not _txn_taken(error):
                raise
        except _WriteRefused:
            alone = True
    raise AssertionError("unreachable")


# Built once (building a statement costs more than running it on SQLite).
_KNOWN = select(Sale.txn_id, Sale.content_hash, Sale.receipt_no).where(
    Sale.kiosk_id == bindparam("kiosk_id"), Sale.txn_id.in_(bindparam("ids", expanding=True)))
_SLOTS = select(PlanogramSlot.slot, PlanogramSlot.product_id, PlanogramSlot.price_fen).where(
    PlanogramSlot.kiosk_id == bindparam("kiosk_id"))
_BY_SKU = select(Product.sku, Product.id, Product.name).where(Product.sku.in_(bindparam("skus", expanding=True)))
_NAMES = select(Product.id, Product.name).where(Product.id.in_(bindparam("ids", expanding=True)))
_OPEN_ALERTS = select(Alert.kind, Alert.product_id).where(
    Alert.location_id == bindparam("location_id"), Alert.resolved_at.is_(None),
    Alert.kind.in_([AlertKind.PRICE_MISMATCH, AlertKind.NOT_IN_PLANOGRAM]))


def _known_txns(s: Session, kiosk_id: int, sales: list) -> dict[str, tuple[str, str]]:
    """txn_id → (fingerprint, receipt number) of the sales of this part already recorded (one query)."""
    ids = {raw.get("txn_id") for raw in sales if isinstance(raw, dict)}
    ids = {t for t in ids if isinstance(t, str) and TXN_ID.match(t)}
    if not ids:
        return {}
    rows = s.execute(_KNOWN, {"kiosk_id": kiosk_id, "ids": sorted(ids)})
    return {txn: (digest, receipt) for txn, digest, receipt in rows}


def _conflict(txn_id: str, receipt_no: str) -> Conflict:
    return Conflict(_l("编号 %(id)s 已用于另一笔内容不同的销售（小票 %(receipt)s）", id=txn_id, receipt=receipt_no))


def _planogram(s: Session, kiosk_id: int) -> tuple[dict[str, _Slot], dict[int, set[int]]]:
    """slot → (product, price), and product → the prices the planogram gives it (one query)."""
    slots: dict[str, _Slot] = {}
    prices: dict[int, set[int]] = {}
    rows = s.execute(_SLOTS, {"kiosk_id": kiosk_id})
    for slot, product_id, price in rows:
        slots[slot] = _Slot(product_id, price)
        prices.setdefault(product_id, set()).add(price)
    return slots, prices


def _skus(sales: Iterable[Any]) -> set[str]:
    found = set()
    for sale in sales:
        lines = sale.get("lines") if isinstance(sale, dict) else None
        for line in lines if isinstance(lines, list) else ():
            sku = line.get("sku") if isinstance(line, dict) else None
            if isinstance(sku, str) and 0 < len(sku) <= 40 and sku.isprintable():
                found.add(sku)
    return found


def _products_by_sku(s: Session, skus: set[str]) -> dict[str, _Product]:
    if not skus:
        return {}
    rows = s.execute(_BY_SKU, {"skus": sorted(skus)})
    return {sku: _Product(pid, name) for sku, pid, name in rows}


def _product_names(s: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(s.execute(_NAMES, {"ids": sorted(ids)}).all())


def _open_alerts(s: Session, location_id: int) -> set[tuple[AlertKind, int]]:
    rows = s.execute(_OPEN_ALERTS, {"location_id": location_id})
    return {(AlertKind(kind), product_id) for kind, product_id in rows}


def _alert_text(kind: AlertKind, code: str, detail: dict, names: dict[int, str]) -> Any:
    name = detail.get("name") or names.get(detail["product_id"], "")
    if kind == AlertKind.NOT_IN_PLANOGRAM:
        return _l("专柜 %(code)s 售出了货道表中没有的「%(product)s」，请更新货道表", code=code, product=name)
    return _l("专柜 %(code)s 的「%(product)s」按 %(charged)s 收款，货道表售价为 %(price)s，请核对专柜价格",
              code=code, product=name, charged=format_yuan(detail["charged"]), price=format_yuan(detail["price"]))


def parse_moment(value: Any, field: str = "sold_at") -> dt.datetime:
    """An ISO 8601 moment WITH its offset ("2026-11-26T10:15:00+08:00" or "…Z"), in UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Rejected(_l("%(field)s 不是有效的时间（应为 ISO 8601，如 2026-11-26T10:15:00+08:00）",
                              field=field)) from None
    else:
        raise Rejected(_l("%(field)s 不是有效的时间（应为 ISO 8601，如 2026-11-26T10:15:00+08:00）", field=field))
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Rejected(_l("%(field)s 必须带时区（如 +08:00）", field=field))
    try:
        return moment.astimezone(dt.timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+00:01 is before the first representable moment
        raise Rejected(_l("%(field)s 不是有效的时间（应为 ISO 8601，如 2026-11-26T10:15:00+08:00）",
                          field=field)) from None


def _sale_in(batch: _Batch, raw: Any, fingerprint: str) -> tuple[SaleIn, list[tuple[AlertKind, int, dict]]]:
    """The sale as the sales service takes it, and the alerts it should raise once recorded."""
    slots, products, planogram_prices = batch.slots, batch.products, batch.planogram_prices
    if not isinstance(raw, dict):
        raise Rejected(_l("销售必须是对象"))
    txn_id = raw.get("txn_id")
    if not isinstance(txn_id, str) or not TXN_ID.match(txn_id):
        raise Rejected(_l("交易编号必须是 1 到 64 个字母、数字或 ._:-"))
    sold_at = parse_moment(raw.get("sold_at"))
    if sold_at > utcnow() + FUTURE_TOLERANCE:
        raise Rejected(_l("销售时间在未来，请校准专柜时钟"))
    if sold_at < EARLIEST:
        raise Rejected(_l("销售时间太早，请校准专柜时钟"))

    lines = raw.get("lines")
    if not isinstance(lines, list) or not lines:
        raise Rejected(_l("至少要有一件商品"))
    if len(lines) > MAX_LINES:
        raise Rejected(_l("一笔销售最多 %(n)s 行", n=MAX_LINES))
    line_ins: list[LineIn] = []
    notes: list[tuple[AlertKind, int, dict]] = []
    noted: set[tuple[AlertKind, int]] = set()
    total = 0
    for n, line in enumerate(lines, start=1):
        if not isinstance(line, dict):
            raise Rejected(_l("第 %(n)s 行格式不正确", n=n))
        slot_name, sku = line.get("slot"), line.get("sku")
        qty, price = line.get("qty"), line.get("unit_price_fen")
        if not is_int(qty) or not 0 < qty <= MAX_QTY:
            raise Rejected(_l("第 %(n)s 行：数量必须是 1–%(max)s 的整数（件）", n=n, max=MAX_QTY))
        if not is_int(price) or not 0 <= price <= MAX_UNIT_PRICE_FEN:
            raise Rejected(_l("第 %(n)s 行：单价必须是不小于零的整数（分）", n=n))
        product_id, name = None, None
        if slot_name is not None:
            slot = slots.get(slot_name) if isinstance(slot_name, str) else None
            if slot is None:
                raise Rejected(_l("第 %(n)s 行：货道 %(slot)s 不在本专柜的货道表中", n=n, slot=str(slot_name)[:8]))
            product_id = slot.product_id
            if sku is not None:
                named = products.get(sku) if isinstance(sku, str) else None
                if named is None or named.id != product_id:
                    raise Rejected(_l("第 %(n)s 行：货道 %(slot)s 与商品编码 %(sku)s 不一致",
                                      n=n, slot=slot_name, sku=str(sku)[:40]))
        elif sku is not None:
            named = products.get(sku) if isinstance(sku, str) else None
            if named is None:
                raise Rejected(_l("第 %(n)s 行：未知的商品编码 %(sku)s", n=n, sku=str(sku)[:40]))
            product_id, name = named.id, named.name
        else:
            raise Rejected(_l("第 %(n)s 行：请给出货道（slot）或商品编码（sku）", n=n))

        known = planogram_prices.get(product_id)
        if known is None:
            key = (AlertKind.NOT_IN_PLANOGRAM, product_id)
            if key not in noted:
                noted.add(key)
                notes.append((AlertKind.NOT_IN_PLANOGRAM, product_id, {"product_id": product_id, "name": name}))
        else:
            if slot_name is not None:
                expected = slots[slot_name].price_fen
                mismatch = price != expected
            else:
                expected = min(known)
                mismatch = price not in known
            if mismatch:
                key = (AlertKind.PRICE_MISMATCH, product_id)
                if key not in noted:
                    noted.add(key)
                    notes.append((AlertKind.PRICE_MISMATCH, product_id,
                                  {"product_id": product_id, "name": name, "charged": price, "price": expected}))
        total += price * qty
        line_ins.append(LineIn(product_id=product_id, qty_milli=qty * 1000, unit_price_fen=price,
                               slot=slot_name if isinstance(slot_name, str) else None))

    payment = raw.get("payment")
    if not isinstance(payment, dict):
        raise Rejected(_l("缺少支付信息"))
    method, amount, ref = payment.get("method"), payment.get("amount_fen"), payment.get("ref")
    if method not in COUNTER_METHODS:
        raise Rejected(_l("专柜只接受微信支付或支付宝，而不是 %(method)s", method=str(method)[:20]))
    if not is_int(amount) or amount <= 0:
        raise Rejected(_l("支付金额必须是大于零的整数（分）"))
    if ref is not None and (not isinstance(ref, str) or len(ref) > 80 or not ref.isprintable()):
        raise Rejected(_l("支付流水号不正确"))
    if total != amount:
        raise Rejected(_l("商品金额合计与支付金额不符"))
    sale_in = SaleIn(channel="kiosk", location_id=batch.location_id, kiosk_id=batch.kiosk_id, txn_id=txn_id,
                     receipt_prefix=batch.code, sold_at=sold_at, lines=line_ins,
                     payments=[PaymentIn(method=method, amount_fen=amount, ref=ref)], fingerprint=fingerprint)
    return sale_in, notes


# --- heartbeats ----------------------------------------------------------------------------------

def heartbeat(s: Session, kiosk: Kiosk, payload: dict) -> None:
    """A counter says it is alive: the door, the temperature and its error (if any).

    ``last_heartbeat_at`` is the moment the counter gives, but never later than the server's
    clock (a counter whose clock runs fast must not look online for ever) and never earlier than
    the one already stored (heartbeats may arrive out of order). An error opens one
    ``kiosk_error`` alert per counter (its text follows the latest error); a heartbeat without an
    error resolves it: the cause has gone."""
    now = utcnow()
    at = payload.get("at")
    moment = now if at is None else min(parse_moment(at, "at"), now)
    if kiosk.last_heartbeat_at is None or moment >= kiosk.last_heartbeat_at:
        kiosk.last_heartbeat_at = moment
        kiosk.door_open = bool(payload.get("door_open", False))
        temperature = payload.get("temperature_c")
        kiosk.temperature_c = float(temperature) if temperature is not None else None  # ok-float: ℃
        error = payload.get("error")
        error = error.strip()[:MAX_ERROR_TEXT] if isinstance(error, str) and error.strip() else None
        kiosk.last_error = error
        _kiosk_error_alert(s, kiosk, error, now)
    s.flush()


def _kiosk_error_alert(s: Session, kiosk: Kiosk, error: Optional[str], now: dt.datetime) -> None:
    alert = s.scalars(select(Alert).where(Alert.kind == AlertKind.KIOSK_ERROR, Alert.location_id == kiosk.location_id,
                                          Alert.resolved_at.is_(None)).order_by(Alert.id).limit(1)).first()
    if error is None:
        if alert is not None:
            alert.resolved_at = now
        return
    text = hall_text(_l("专柜 %(code)s 报告故障：%(error)s", code=kiosk.code, error=error))
    if alert is None:
        s.add(Alert(kind=AlertKind.KIOSK_ERROR, location_id=kiosk.location_id, ref_type="kiosk", ref_id=kiosk.id,
                    message=text, created_at=now))
    elif alert.message != text:
        alert.message = text


__all__ = ["ingest_sales", "heartbeat", "parse_moment", "counter_fingerprint", "Rejected", "MAX_SALES",
           "COUNTER_METHODS"]
