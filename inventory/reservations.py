"""Reservations: stock at a real location held for confirmed group orders. A product level's
``reserved_milli`` is the part of its ``qty_milli`` that guarded moves (``inventory.ledger``) may
not take; it changes only here, by single atomic updates, so two confirmations can never hold the
same goods.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .ledger import StockError, insufficient
from .models import Location, StockLevel


def reserve(session: Session, *, location_id: int, product_id: int, qty_milli: int) -> None:
    """Hold ``qty_milli`` of a product at a real location (for a confirmed group order). One
    atomic UPDATE: it succeeds only if on hand − already reserved ≥ the quantity, so two
    confirmations can never hold the same goods; raises ``InsufficientStock`` otherwise."""
    if not isinstance(qty_milli, int) or isinstance(qty_milli, bool) or qty_milli <= 0:
        raise StockError(_l("数量必须是正数"))
    t = StockLevel.__table__
    done = session.execute(
        update(t)
        .where(t.c.location_id == location_id, t.c.product_id == product_id,
               t.c.qty_milli - t.c.reserved_milli >= qty_milli)
        .values(reserved_milli=t.c.reserved_milli + qty_milli)
        .returning(t.c.reserved_milli)
    ).first()
    if done is None:
        source = session.get(Location, location_id)
        if source is None:
            raise StockError(_l("位置不存在"))
        raise insufficient(session, source, product_id, qty_milli)


def release(session: Session, *, location_id: int, product_id: int, qty_milli: int) -> None:
    """Give back a reservation (an order cancelled, or its goods picked)."""
    if qty_milli <= 0:
        return
    t = StockLevel.__table__
    done = session.execute(
        update(t)
        .where(t.c.location_id == location_id, t.c.product_id == product_id, t.c.reserved_milli >= qty_milli)
        .values(reserved_milli=t.c.reserved_milli - qty_milli)
        .returning(t.c.reserved_milli)
    ).first()
    if done is None:  # a bug, not a user mistake: reservations are only released by who made them
        raise StockError(_l("预留数量不一致"))


def available(session: Session, location_id: int, product_id: int) -> int:
    """On hand minus reserved: what a transfer, a refill or a new reservation may still take."""
    row = session.execute(
        select(StockLevel.qty_milli - StockLevel.reserved_milli)
        .where(StockLevel.location_id == location_id, StockLevel.product_id == product_id)
    ).first()
    return row[0] if row else 0
