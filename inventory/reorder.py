"""Reorder points: the level below which a product at a location needs goods."""
from __future__ import annotations

from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from .audit import record
from .models import ReorderPoint
from .stock_documents import checked_location, checked_product, checked_qty

def reorder_point(session: Session, *, location_id: int, product_id: int) -> Optional[int]:
    return session.scalar(select(ReorderPoint.min_qty_milli).where(
        ReorderPoint.location_id == location_id, ReorderPoint.product_id == product_id))


def set_reorder_point(session: Session, *, location_id: int, product_id: int, min_qty_milli: Optional[int],
                      actor_id: Optional[int]) -> Optional[ReorderPoint]:
    """Set (or, with None, remove) the level below which a product at a location needs goods."""
    location = checked_location(session, location_id, field="location_id")
    product = checked_product(session, product_id)
    point = session.get(ReorderPoint, (location.id, product.id))
    before = None if point is None else point.min_qty_milli
    if min_qty_milli is None:
        if point is not None:
            session.delete(point)
            point = None
    else:
        qty = checked_qty(min_qty_milli, product, field="min_qty_milli", label=_l("补货点"), allow_zero=True)
        if point is None:
            point = ReorderPoint(location_id=location.id, product_id=product.id, min_qty_milli=qty)
            session.add(point)
        else:
            point.min_qty_milli = qty
    after = None if point is None else point.min_qty_milli
    if before != after:
        record(session, user_id=actor_id, action="stock.reorder_point", entity="reorder_point",
               entity_id=f"{location.id}:{product.id}", before={"min_qty_milli": before},
               after={"min_qty_milli": after})
    session.flush()
    return point


