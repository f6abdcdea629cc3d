"""The ledger's read side: the locations, what is on the books at a location (with its reorder
points and what group orders hold), a product's level everywhere, and every move of a product
with its running balance.
"""
from __future__ import annotations

from typing import Iterable, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, union, union_all
from sqlalchemy.orm import Session, aliased

from .errors import NotFound
from .localtime import local_date
from .models import Barcode, Location, LocationKind, Lot, Product, ReorderPoint, StockLevel, StockMove
from .money import line_amount_fen
from .stock_documents import DEFAULT_PER_PAGE, REAL_LOCATION_KINDS, paging, product_columns, show_qty
from .web import Page


def list_locations(session: Session, *, real_only: bool = False, kinds: Optional[Iterable[LocationKind]] = None,
                   active_only: bool = True) -> list[Location]:
    stmt = select(Location)
    if real_only:
        stmt = stmt.where(Location.kind.in_(REAL_LOCATION_KINDS))
    if kinds is not None:
        stmt = stmt.where(Location.kind.in_([LocationKind(k) for k in kinds]))
    if active_only:
        stmt = stmt.where(Location.active.is_(True))
    return list(session.scalars(stmt.order_by(Location.kind, Location.code)))


def _product_filter(q: Optional[str]):
    q = (q or "").strip()
    if not q:
        return None
    return or_(
        Product.sku.startswith(q, autoescape=True),
        Product.name.contains(q, autoescape=True),
        Product.pinyin_initials.startswith(q.lower(), autoescape=True),
        Product.id.in_(select(Barcode.product_id).where(Barcode.code == q)),
    )


def stock_at_location(session: Session, location_id: int, *, q: Optional[str] = None, page: int = 1,
                      per_page: int = DEFAULT_PER_PAGE) -> Page:
    """What is on the books at a location: every product with a non-zero level or a reorder
    point there, by sku; ``q`` filters by sku prefix, name, pinyin initials or barcode."""
    location = session.get(Location, location_id)
    if location is None:
        raise NotFound(_l("位置不存在"))
    keys = union(
        select(StockLevel.product_id.label("product_id")).where(StockLevel.location_id == location_id,
                                                                 StockLevel.qty_milli != 0),
        select(ReorderPoint.product_id.label("product_id")).where(ReorderPoint.location_id == location_id),
    ).subquery()
    qty = func.coalesce(StockLevel.qty_milli, 0).label("qty_milli")
    reserved = func.coalesce(StockLevel.reserved_milli, 0).label("reserved_milli")
    stmt = (
        select(Product, qty, ReorderPoint.min_qty_milli, reserved)
        .select_from(keys)
        .join(Product, Product.id == keys.c.product_id)
        .outerjoin(StockLevel, and_(StockLevel.location_id == location_id, StockLevel.product_id == Product.id))
        .outerjoin(ReorderPoint, and_(ReorderPoint.location_id == location_id, ReorderPoint.product_id == Product.id))
    )
    condition = _product_filter(q)
    if condition is not None:
        stmt = stmt.where(condition)
    page, per_page, total = paging(session, select(func.count()).select_from(stmt.subquery()), page, per_page)
    rows = session.execute(stmt.order_by(Product.sku).limit(per_page).offset((page - 1) * per_page)).all()
    items = [
        {
            **product_columns(product),
            "qty_milli": qty_milli,
            "qty": show_qty(product, qty_milli),
            "min_qty_milli": minimum,
            "below_reorder": minimum is not None and qty_milli < minimum,
            "negative": qty_milli < 0,
            "cost_fen": product.cost_fen,
            "value_fen": line_amount_fen(product.cost_fen, qty_milli) if product.cost_fen and qty_milli > 0 else 0,
            "reserved_milli": held,   # held for confirmed group orders
            "available_milli": qty_milli - held,
        }
        for product, qty_milli, minimum, held in rows
    ]
    return Page(items, total, page, per_page)


def product_levels(session: Session, product_id: int, *, include_virtual: bool = False) -> list[dict]:
    """A product's level at each location that has (or had) it."""
    stmt = (
        select(Location, StockLevel.qty_milli)
        .join(Location, Location.id == StockLevel.location_id)
        .where(StockLevel.product_id == product_id)
        .order_by(Location.kind, Location.code)
    )
    if not include_virtual:
        stmt = stmt.where(Location.kind.in_(REAL_LOCATION_KINDS))
    return [{"location": loc, "location_id": loc.id, "location_name": loc.name, "qty_milli": qty}
            for loc, qty in session.execute(stmt)]


def product_ledger(session: Session, product_id: int, *, location_id: Optional[int] = None, page: int = 1,
                   per_page: int = 100, include_virtual: bool = False) -> Page:
    """Every move of a product, newest first, as seen from each location it touched (a move
    between two real locations appears twice: out of one, into the other), with that location's
    running balance after the move, computed by the database (a window function over the
    ledger). The newest entry's balance at a location is its level."""
    if session.get(Product, product_id) is None:
        raise NotFound(_l("商品不存在"))
    m = StockMove.__table__
    cols = [m.c.id.label("move_id"), m.c.moved_at]
    incoming = select(*cols, m.c.to_location_id.label("location_id"), m.c.from_location_id.label("other_id"),
                      m.c.qty_milli.label("delta")).where(m.c.product_id == product_id)
    outgoing = select(*cols, m.c.from_location_id.label("location_id"), m.c.to_location_id.label("other_id"),
                      (-m.c.qty_milli).label("delta")).where(m.c.product_id == product_id)
    entries = union_all(incoming, outgoing).subquery("entries")
    balanced = select(
        entries,
        func.sum(entries.c.delta).over(partition_by=entries.c.location_id, order_by=entries.c.move_id,
                                       rows=(None, 0)).label("running_balance"),
    ).subquery("balanced")

    here = aliased(Location)
    other = aliased(Location)
    where = []
    if location_id is not None:
        where.append(balanced.c.location_id == location_id)
    elif not include_virtual:
        where.append(here.kind.in_(REAL_LOCATION_KINDS))
    base = (
        select(StockMove, balanced.c.location_id, balanced.c.delta, balanced.c.running_balance, here.name,
               other.id, other.name, Lot.lot_no, Lot.expires_on)
        .join(balanced, balanced.c.move_id == StockMove.id)
        .join(here, here.id == balanced.c.location_id)
        .join(other, other.id == balanced.c.other_id)
        .outerjoin(Lot, Lot.id == StockMove.lot_id)
        .where(*where)
    )
    page, per_page, total = paging(session, select(func.count()).select_from(base.subquery()), page, per_page)
    rows = session.execute(
        base.order_by(StockMove.id.desc(), balanced.c.delta).limit(per_page).offset((page - 1) * per_page)
    ).all()
    items = [
        {
            "move": mv,
            "move_id": mv.id,
            "moved_at": mv.moved_at,
            "local_date": local_date(mv.moved_at),
            "reason": mv.reason,
            "location_id": loc_id,
            "location_name": loc_name,
            "other_location_id": other_id,
            "other_location_name": other_name,
            "delta_milli": delta,
            "qty_milli": mv.qty_milli,
            "lot_id": mv.lot_id,
            "lot_no": lot_no,
            "expires_on": expires_on,
            "ref_type": mv.ref_type,
            "ref_id": mv.ref_id,
            "note": mv.note,
            "user_id": mv.user_id,
            "running_balance": running,
        }
        for mv, loc_id, delta, running, loc_name, other_id, other_name, lot_no, expires_on in rows
    ]
    return Page(items, total, page, per_page)

