"""Expiry: which lots goods leave a location from (first expiry first out, never an expired lot
to a customer or another location), the lots about to expire, and write-offs (expired, damaged,
other) to LOSS.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from . import fields
from .alerts import raise_expired_stock_sold_alert
from .audit import record
from .errors import ValidationError
from .ledger import InsufficientStock, MoveResult, level, move, remember_lots, virtual_location
from .localtime import local_today
from .models import Location, LocationKind, Lot, LotLevel, MoveReason, Product, first_expiry_first
from .money import format_qty
from .stock_documents import (
    REAL_LOCATION_KINDS,
    checked_location,
    checked_product,
    checked_qty,
    product_columns,
    show_qty,
)

WRITE_OFF_REASONS = ("expiry", "damage", "other")
MAX_EXPIRY_DAYS = 3650


# --- FEFO ----------------------------------------------------------------------------------------
# Goods leave a location first expiry first out, and an expired lot (expires_on before today,
# local date) is never handed out: not to a sale, a transfer, a refill or a group order.
#
# - ``fefo_allocate`` (a sale): the unexpired lots, then the rest as an unlotted remainder (a sale
#   is never refused); when the books hold nothing but expired lots for it, an alert is opened for
#   the manager (the till has warned the cashier at the scan: ``expired_only``).
# - ``allocate_fresh`` (a transfer, a refill, a group order's pick): the same, but the remainder
#   may only come from goods without a lot; what only expired lots could cover is refused
#   (``ExpiredStock``), so expired goods cannot travel as "unlotted".
# - ``allocate_removal`` (a write-off, a count's shortage): every lot, expired ones first, since
#   those are the goods that leave the books there.


class ExpiredStock(InsufficientStock):
    """What is asked for is only there in expired lots (they are to be written off, not moved)."""


def is_expired(expires_on: Optional[dt.date], today: dt.date) -> bool:
    return expires_on is not None and expires_on < today


def _lot_rows(session: Session, location_id: int, product_id: int) -> list[tuple[int, int, Optional[dt.date]]]:
    """(lot, quantity, expiry) of the product's lots on hand at the location, earliest expiry first,
    lots without an expiry last."""
    return [tuple(r) for r in session.execute(
        select(LotLevel.lot_id, LotLevel.qty_milli, Lot.expires_on)
        .join(Lot, Lot.id == LotLevel.lot_id)
        .where(LotLevel.location_id == location_id, Lot.product_id == product_id, LotLevel.qty_milli > 0)
        .order_by(*first_expiry_first(Lot.id))
    ).all()]


@dataclass(frozen=True)
class _Allocation:
    parts: list[tuple[Optional[int], int]]
    uncovered: int          # what neither unexpired lots nor goods without a lot cover (0 without expired lots)
    expired_milli: int      # on hand in expired lots


def _allocate(session: Session, location_id: int, product_id: int, qty_milli: int,
              taken: dict[tuple[int, Optional[int]], int], *, today: Optional[dt.date], rows=None) -> _Allocation:
    """Lots first expiry first out; with ``today``, expired lots are left out (and counted), with
    None every lot is taken, expired ones included. ``rows``: the product's ``_lot_rows``, when
    already read."""
    rows = _lot_rows(session, location_id, product_id) if rows is None else rows
    parts: list[tuple[Optional[int], int]] = []
    remaining = qty_milli
    expired = 0
    for lot_id, have, expires_on in rows:
        have -= taken.get((product_id, lot_id), 0)
        if today is not None and is_expired(expires_on, today):
            expired += max(have, 0)
            continue
        if remaining <= 0 or have <= 0:
            continue
        part = min(have, remaining)
        parts.append((lot_id, part))
        remaining -= part
    uncovered = 0
    if remaining > 0:
        parts.append((None, remaining))
        if expired:  # only then does it matter whether goods without a lot cover the rest (one more query)
            unlotted = (level(session, location_id, product_id) - sum(q for _, q, _ in rows)
                        - taken.get((product_id, None), 0))
            uncovered = remaining - max(unlotted, 0)
    return _Allocation(parts, max(uncovered, 0), expired)


def fefo_allocate(session: Session, *, location_id: int, product_id: int, qty_milli: int) -> list[tuple[Optional[int], int]]:
    """Which lots a sale of ``qty_milli`` at a location takes, first expiry first out: the earliest
    expiry first, lots without an expiry after those with one, never an expired lot (expiry
    before today, local date), and whatever the lots do not cover as an unlotted remainder
    ``(None, qty)`` (a sale is never refused: the goods are in the customer's hand).

    When the books hold that product at that location only in expired lots, the sale is flagged:
    an alert tells the manager to check the shelf (the till warned the cashier at the scan)."""
    if isinstance(qty_milli, bool) or not isinstance(qty_milli, int) or qty_milli <= 0:
        raise ValidationError(_l("数量必须是正数"), "qty_milli")
    today = local_today()
    allocation = _allocate(session, location_id, product_id, qty_milli, {}, today=today)
    if allocation.uncovered and allocation.expired_milli:
        raise_expired_stock_sold_alert(session, location_id=location_id, product_id=product_id, today=today)
    return allocation.parts


_BASKET_LOTS = (
    select(Lot.product_id, LotLevel.lot_id, LotLevel.qty_milli, Lot.expires_on)
    .join(Lot, Lot.id == LotLevel.lot_id)
    .where(LotLevel.location_id == bindparam("location_id"), Lot.product_id.in_(bindparam("ids", expanding=True)),
           LotLevel.qty_milli > 0)
    .order_by(Lot.product_id, *first_expiry_first(Lot.id))
)


def fefo_allocate_many(session: Session, *, location_id: int, items: list[tuple[int, int]]
                       ) -> list[list[tuple[Optional[int], int]]]:
    """``fefo_allocate`` for many lines, (product, qty) each (a basket's, or every line of a
    counter's part of sales, in order), with one query for the lots of all their products: a
    product on two lines takes its second line from what the first left, as two calls one after
    the other (with the moves posted in between) would. The lots' products are handed to the
    ledger (``remember_lots``), so posting their moves reads them no more."""
    for _, qty_milli in items:
        if isinstance(qty_milli, bool) or not isinstance(qty_milli, int) or qty_milli <= 0:
            raise ValidationError(_l("数量必须是正数"), "qty_milli")
    today = local_today()
    rows: dict[int, list] = {pid: [] for pid, _ in items}
    if session.autoflush:
        session.flush()  # as the ORM would before a query (returns at once when nothing is pending)
    # On the session's connection: a checkout's hot path, where the ORM's per-query work costs more
    # than the query.
    for pid, lot_id, qty, expires_on in session.connection().execute(_BASKET_LOTS, {"location_id": location_id,
                                                                                     "ids": sorted(rows)}):
        rows[pid].append((lot_id, qty, expires_on))
    remember_lots(session, ((lot_id, pid) for pid, lots in rows.items() for lot_id, _, _ in lots))
    taken: dict[tuple[int, Optional[int]], int] = {}
    out = []
    for product_id, qty_milli in items:
        allocation = _allocate(session, location_id, product_id, qty_milli, taken, today=today, rows=rows[product_id])
        if allocation.uncovered and allocation.expired_milli:
            raise_expired_stock_sold_alert(session, location_id=location_id, product_id=product_id, today=today)
        for lot_id, part in allocation.parts:
            taken[(product_id, lot_id)] = taken.get((product_id, lot_id), 0) + part
        out.append(allocation.parts)
    return out


def allocate_fresh(session: Session, *, location_id: int, product_id: int, qty_milli: int) -> list[tuple[Optional[int], int]]:
    """Which lots a transfer, a refill or a group order's pick takes: as ``fefo_allocate``, but
    refused (``ExpiredStock``, nothing written) when only expired lots could cover the quantity."""
    if isinstance(qty_milli, bool) or not isinstance(qty_milli, int) or qty_milli <= 0:
        raise ValidationError(_l("数量必须是正数"), "qty_milli")
    return fresh_parts(session, location_id, product_id, qty_milli, {}, local_today())


def fresh_parts(session: Session, location_id: int, product_id: int, qty_milli: int,
                 taken: dict[tuple[int, Optional[int]], int], today: dt.date) -> list[tuple[Optional[int], int]]:
    allocation = _allocate(session, location_id, product_id, qty_milli, taken, today=today)
    if allocation.uncovered and allocation.expired_milli:
        product = session.get(Product, product_id)
        location = session.get(Location, location_id)
        weighed = product.weighed
        raise ExpiredStock(_l(
            "%(location)s的「%(product)s」可用库存不足：需要 %(need)s，其中 %(expired)s 在已过期的批次里，"
            "过期商品不能调出，请先报损",
            location=location.name, product=product.name, need=format_qty(qty_milli, by_weight=weighed),
            expired=format_qty(allocation.expired_milli, by_weight=weighed)))
    return allocation.parts


def allocate_removal(session: Session, *, location_id: int, product_id: int, qty_milli: int) -> list[tuple[Optional[int], int]]:
    """Which lots goods leaving the books (a write-off, a count's shortage) come from: every lot,
    first expiry first out, expired lots included (first), then an unlotted remainder."""
    if isinstance(qty_milli, bool) or not isinstance(qty_milli, int) or qty_milli <= 0:
        raise ValidationError(_l("数量必须是正数"), "qty_milli")
    return _allocate(session, location_id, product_id, qty_milli, {}, today=None).parts


def expired_only(session: Session, *, location_id: int, product_id: int, today: Optional[dt.date] = None) -> bool:
    """True when the books hold the product at the location only in expired lots: no unexpired
    lot and no goods without a lot, but some expired lot (the till warns the cashier)."""
    today = today or local_today()
    rows = _lot_rows(session, location_id, product_id)
    expired = sum(q for _, q, expires_on in rows if is_expired(expires_on, today))
    if not expired:
        return False
    fresh = sum(q for _, q, expires_on in rows if not is_expired(expires_on, today))
    unlotted = level(session, location_id, product_id) - sum(q for _, q, _ in rows)
    return fresh <= 0 and unlotted <= 0


# --- expiry and write-offs -----------------------------------------------------------------------

def expiring_lots(session: Session, *, today: dt.date, within_days: int,
                  location_id: Optional[int] = None) -> list[dict]:
    """Lots on hand at real locations that expire within ``within_days`` of ``today`` (or have
    already expired: ``days_left`` < 0), soonest first."""
    within_days = fields.integer(within_days, field="days", label=_l("天数"), maximum=MAX_EXPIRY_DAYS)
    last_day = today + dt.timedelta(days=within_days)
    stmt = (
        select(Location, Product, Lot, LotLevel.qty_milli)
        .join(Lot, Lot.id == LotLevel.lot_id)
        .join(Location, Location.id == LotLevel.location_id)
        .join(Product, Product.id == Lot.product_id)
        .where(LotLevel.qty_milli > 0, Lot.expires_on <= last_day, Location.kind.in_(REAL_LOCATION_KINDS))
        .order_by(Lot.expires_on, Location.code, Product.sku, Lot.lot_no)
    )
    if location_id is not None:
        stmt = stmt.where(LotLevel.location_id == location_id)
    return [
        {
            "location": loc,
            "location_id": loc.id,
            "location_name": loc.name,
            **product_columns(product),
            "lot": lot,
            "lot_id": lot.id,
            "lot_no": lot.lot_no,
            "expires_on": lot.expires_on,
            "qty_milli": qty,
            "qty": show_qty(product, qty),
            "days_left": (lot.expires_on - today).days,
            "expired": lot.expires_on < today,
        }
        for loc, product, lot, qty in session.execute(stmt)
    ]


def write_off(
    session: Session,
    *,
    location_id: int,
    product_id: int,
    lot_id: Optional[int] = None,
    qty_milli: int,
    reason: str,
    note: Optional[str] = None,
    actor_id: Optional[int],
) -> MoveResult:
    """Write goods off to LOSS (expired, damaged, other), refusing to take the location below
    zero. Audited as "stock.write_off"."""
    if reason not in WRITE_OFF_REASONS:
        raise ValidationError(_l("请选择报损原因"), "reason")
    location = checked_location(session, location_id, field="location_id")
    product = checked_product(session, product_id)
    qty = checked_qty(qty_milli, product, field="qty_milli", label=_l("报损数量"))
    note = fields.text(note, field="note", label=_l("说明"), max_len=200)
    if reason == "other" and not note:
        raise ValidationError(_l("报损原因为“其他”时请填写说明"), "note")
    lot = None
    if lot_id is not None:
        lot = session.get(Lot, lot_id) if isinstance(lot_id, int) and not isinstance(lot_id, bool) else None
        if lot is None or lot.product_id != product.id:
            raise ValidationError(_l("批次不属于「%(product)s」", product=product.name), "lot_id")
    loss = virtual_location(session, LocationKind.LOSS)
    result = move(session, product_id=product.id, qty_milli=qty, from_location_id=location.id,
                  to_location_id=loss.id, reason=MoveReason.EXPIRY if reason == "expiry" else MoveReason.WRITE_OFF,
                  lot_id=lot.id if lot else None, ref_type="write_off", note=note, user_id=actor_id)
    record(session, user_id=actor_id, action="stock.write_off", entity="stock_move", entity_id=result.move_id,
           before={"qty_milli": result.from_level_milli + qty},
           after={"location_id": location.id, "product_id": product.id, "sku": product.sku,
                  "lot_id": lot.id if lot else None, "lot_no": lot.lot_no if lot else None,
                  "qty_milli": qty, "reason": reason, "note": note, "level_milli": result.from_level_milli})
    return result


