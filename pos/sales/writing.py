"""The write half of recording sales: what pos.sales.service.prepare_sale has checked and priced
(a ``PreparedSale``, nothing written yet) written for a LIST of sales in one pass, so that a
counter's part of ten sales costs a few statements rather than a few dozen per sale.

``record_sale`` writes its one sale with these same functions (``claim``, in a savepoint unless
SQLite's write lock is held, then ``write_claimed``), so each rule of writing a sale has one place.
Their Core statements run on the session's connection (the session's transaction, without the ORM's
per-statement work, which costs more than a short statement on SQLite):

- ``claim``: the receipt numbers, per (prefix, local day) taken together from the day's counter
  (one upsert taking N numbers; counters in (prefix, day) order), and the sales' rows (one INSERT).
  The unique indexes on the senders' keys refuse a sale another transaction recorded meanwhile
  (IntegrityError): the caller decides what that means (record_sale: a duplicate; a counter's part:
  run again).
- ``write_claimed``: all lines (one INSERT, with the certified / origin snapshot), the reports'
  daily aggregate (one statement over every sale's lines), all payments (one INSERT), the lots
  (FEFO, one query per location, later sales taking from what earlier ones left) and the stock
  moves (one ``ledger.post_moves``, level rows in the global lock order), then the alerts (one
  INSERT) and the audit of approved discounts.

Nothing here reads what prepare_sale has judged again, and nothing commits.
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert
from sqlalchemy.orm import Session

from inventory import ledger
from inventory.alerts import hall_text
from inventory.audit import record
from inventory.documents import format_number, take_numbers
from inventory.errors import InventoryError
from inventory.expiry import fefo_allocate_many
from inventory.localtime import utcnow
from inventory.models import Alert, AlertKind, LocationKind, MoveReason
from inventory.money import format_yuan, line_amount_fen
from pos.core.errors import PosError
from pos.models import Payment, Sale, SaleLine, SaleStatus
from pos.sales import daily_figures
from pos.sales.code_payments import mark_used

if TYPE_CHECKING:
    from pos.sales.service import PreparedSale

_SALES = Sale.__table__
_INSERT_SALE = _SALES.insert().returning(_SALES.c.id)
_INSERT_SALES = _SALES.insert().returning(_SALES.c.id, _SALES.c.receipt_no)
_INSERT_LINES = insert(SaleLine.__table__)
_INSERT_PAYMENTS = insert(Payment.__table__)
_INSERT_ALERTS = insert(Alert.__table__)


def claim(s: Session, ready: Sequence[PreparedSale]) -> list[tuple[int, str]]:
    """(sale id, receipt number) of each sale, in order: the numbers taken, the sales inserted."""
    conn = s.connection()
    wanted: dict[tuple[str, dt.date], int] = {}
    for r in ready:
        if r.reserved is None:
            key = (r.ctx.receipt_prefix, r.day)
            wanted[key] = wanted.get(key, 0) + 1
    first: dict[tuple[str, dt.date], int] = {}
    for key in sorted(wanted):  # one order in every transaction: two parts never wait in a circle
        first[key] = take_numbers(conn, key[0], key[1], wanted[key]) - wanted[key] + 1
    numbers = []
    for r in ready:
        if r.reserved is not None:  # a number of the till's reserved block (printed offline)
            numbers.append(r.reserved)
            continue
        key = (r.ctx.receipt_prefix, r.day)
        numbers.append(format_number(key[0], key[1], first[key]))
        first[key] += 1
    now = utcnow()
    rows = [_sale_row(r, number, now) for r, number in zip(ready, numbers)]
    if len(rows) == 1:
        return [(conn.execute(_INSERT_SALE, rows[0]).scalar_one(), numbers[0])]
    ids = dict((receipt, sale_id) for sale_id, receipt in conn.execute(_INSERT_SALES, rows))
    return [(ids[number], number) for number in numbers]


def _sale_row(r: PreparedSale, receipt_no: str, now: dt.datetime) -> dict:
    sale, ctx, basket = r.sale, r.ctx, r.basket
    return {
        "receipt_no": receipt_no, "channel": ctx.channel, "status": SaleStatus.COMPLETED,
        "client_sale_id": sale.client_sale_id, "kiosk_id": sale.kiosk_id, "txn_id": sale.txn_id,
        "content_hash": r.digest, "till_id": ctx.till.id if ctx.till else None, "shift_id": ctx.shift_id,
        "after_shift_closed": ctx.after_shift_closed, "price_differs": bool(r.list_prices),
        "cashier_id": sale.cashier_id,
        "location_id": ctx.location_id, "buyer_type": ctx.buyer_type, "group_order_id": sale.group_order_id,
        "sold_at": r.sold_at, "local_date": r.day, "recorded_at": now,
        "subtotal_fen": basket.subtotal_fen, "discount_fen": basket.discount_fen,
        "rounding_fen": basket.rounding_fen, "total_fen": basket.total_fen, "reprint_count": 0,
    }


def _line_rows(r: PreparedSale, sale_id: int) -> list[dict]:
    rows = []
    for n, line in enumerate(r.basket.lines, start=1):
        product = r.products[line.product_id]
        origin = product.origin()
        rows.append({
            "sale_id": sale_id, "line_no": n, "product_id": line.product_id, "slot": line.slot,
            "qty_milli": line.qty_milli, "unit_price_fen": line.unit_price_fen, "gross_fen": line.gross_fen,
            "discount_fen": line.discount_fen, "net_fen": line.net_fen, "vat": product.vat.value,
            "certified": line.certified, "certificate_no": line.certificate_no,
            "supplier_id": product.supplier_id, "supplier_name": product.supplier.name if product.supplier else None,
            "origin_county": origin["county"], "origin_county_code": origin["county_code"],
            "origin_township": origin["township"], "origin_village": origin["village"],
            "cost_fen": None if product.cost_fen is None else line_amount_fen(product.cost_fen, line.qty_milli),
            "list_price_fen": r.list_prices.get(n - 1),
        })
    return rows


def write_claimed(s: Session, ready: Sequence[PreparedSale], claimed: Sequence[tuple[int, str]]) -> None:
    """Everything of the claimed sales but their rows: lines, aggregate, payments, stock, alerts."""
    sale_ids = [sale_id for sale_id, _ in claimed]
    conn = s.connection()
    conn.execute(_INSERT_LINES, [row for r, sale_id in zip(ready, sale_ids) for row in _line_rows(r, sale_id)])
    daily_figures.add_sale(conn, sale_ids)  # the reports' daily aggregate, in this transaction
    payments = [{**p, "sale_id": sale_id} for r, sale_id in zip(ready, sale_ids) for p in r.payments]
    if payments:
        conn.execute(_INSERT_PAYMENTS, payments)
        for r, sale_id in zip(ready, sale_ids):
            mark_used(s, [p["attempt_id"] for p in r.payments if p["attempt_id"] is not None], sale_id)
    _move_stock(s, ready, sale_ids)

    alerts = []
    for r, (sale_id, receipt_no) in zip(ready, claimed):
        ctx, basket = r.ctx, r.basket
        if ctx.after_shift_closed:
            alerts.append(_alert(AlertKind.LATE_SALE, ctx.location_id, sale_id, None, hall_text(_l(
                "收银台 %(till)s 的销售 %(receipt)s（%(amount)s）在交班后到达，请核对",
                till=ctx.receipt_prefix, receipt=receipt_no, amount=format_yuan(basket.total_fen)))))
        if r.list_prices:
            differing = [basket.lines[i] for i in r.list_prices]
            alerts.append(_alert(AlertKind.PRICE_MISMATCH, ctx.location_id, sale_id, differing[0].product_id, hall_text(_l(
                "收银台 %(till)s 的离线销售 %(receipt)s 按收银台当时的价格收款，"
                "与目录价格不同（%(product)s：收 %(paid)s，目录 %(listed)s），请核对",
                till=ctx.receipt_prefix, receipt=receipt_no, product=differing[0].name,
                paid=format_yuan(differing[0].unit_price_fen),
                listed=format_yuan(r.list_prices[next(iter(r.list_prices))])))))
        if r.over_limit:
            record(s, user_id=r.sale.approved_by_id, action="sale.discount_approved", entity="sale", entity_id=sale_id,
                   after={"receipt_no": receipt_no, "subtotal_fen": basket.subtotal_fen,
                          "discount_fen": basket.discount_fen, "limit_percent": ctx.discount_limit_percent,
                          "cashier_id": r.sale.cashier_id})
    insert_alerts(s, alerts)


def _alert(kind: AlertKind, location_id: int, sale_id: int, product_id: Optional[int], message: str) -> dict:
    return {"kind": kind, "location_id": location_id, "product_id": product_id, "ref_type": "sale",
            "ref_id": sale_id, "message": message}


def insert_alerts(s: Session, rows: list[dict]) -> None:
    """Alerts of recorded sales (kind, location_id, product_id, ref_type, ref_id, message each), by
    one INSERT."""
    if rows:
        s.execute(_INSERT_ALERTS, [{**row, "created_at": utcnow()} for row in rows])


def _move_stock(s: Session, ready: Sequence[PreparedSale], sale_ids: Sequence[int]) -> None:
    """The goods are in the customer's hand: a sale may drive a level negative (the ledger then
    raises a discrepancy alert), never refuses. Each sale's lines in the ledger's lock order
    (product id), whatever order the basket was scanned in; the lots first expiry first out, one
    allocation per location for every sale at once, later sales taking from what earlier ones left
    (as if each sale's moves had been posted before the next was allocated); then all moves by one
    post_moves, whose level rows are locked in the global order, so that tills never deadlock."""
    ledger.locations(s, {r.ctx.location_id for r in ready})  # with the virtual ones: one query for the moves' places
    customer = customer_location(s)
    ordered = [ledger.by_product(zip(r.sale.lines, r.basket.lines), key=lambda pair: pair[1].product_id)
               for r in ready]
    items: dict[int, list[tuple[int, int]]] = {}
    for r, lines in zip(ready, ordered):
        items.setdefault(r.ctx.location_id, []).extend(
            (line.product_id, line.qty_milli) for given, line in lines if not given.lots)
    allocated = {location_id: iter(fefo_allocate_many(s, location_id=location_id, items=wanted))
                 for location_id, wanted in items.items() if wanted}
    ledger.post_moves(s, [
        ledger.MoveIn(product_id=line.product_id, qty_milli=qty, from_location_id=r.ctx.location_id,
                      to_location_id=customer, reason=MoveReason.SALE, lot_id=lot_id, ref_type="sale", ref_id=sale_id,
                      user_id=r.sale.cashier_id, allow_negative_source=True)
        for r, sale_id, lines in zip(ready, sale_ids, ordered)
        for given, line in lines for lot_id, qty in (given.lots or next(allocated[r.ctx.location_id]))])


def customer_location(s: Session) -> int:
    cached = s.info.get("pos.customer_location")
    if cached is None:
        try:
            cached = ledger.virtual_location_id(s, LocationKind.CUSTOMER)
        except InventoryError as exc:
            raise PosError(exc.message) from None
        s.info["pos.customer_location"] = cached
    return cached


def write_sales(s: Session, ready: Sequence[PreparedSale]) -> list[tuple[int, str]]:
    """Write prepared sales in one pass; (sale id, receipt number) of each, in order. Without a
    savepoint: a sale recorded meanwhile under one of their keys raises IntegrityError, and the
    caller's transaction is then to be rolled back (kiosks.ingest runs its part again)."""
    if not ready:
        return []
    claimed = claim(s, ready)
    write_claimed(s, ready, claimed)
    return claimed


__all__ = ["claim", "write_claimed", "write_sales", "insert_alerts", "customer_location"]
