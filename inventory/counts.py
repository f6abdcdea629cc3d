"""Stock counts: counting a location (or part of it) while the hall goes on selling, the
variances against the book, and posting them to COUNT-ADJ.
"""
from __future__ import annotations

from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from . import fields
from .audit import record
from .documents import DocStatus, StockCount, StockCountLine
from .errors import NotFound
from .expiry import allocate_removal
from .ledger import level, move, virtual_location
from .localtime import utcnow
from .models import LocationKind, MoveReason, Product, StockLevel
from .stock_documents import (
    DEFAULT_PER_PAGE,
    all_or_nothing,
    cancel_draft,
    checked_location,
    checked_product,
    checked_qty,
    insert_numbered,
    lock_draft,
    paging,
    product_columns,
    transition,
)
from .web import Page


def start_count(session: Session, *, location_id: int, scope: Optional[str] = None,
                actor_id: Optional[int]) -> StockCount:
    """Begin counting a real location (or the part of it named by ``scope``, e.g. "货架 A")."""
    checked_location(session, location_id, field="location_id")
    count = StockCount(
        location_id=location_id,
        scope=fields.text(scope, field="scope", label=_l("盘点范围"), max_len=120),
        status=DocStatus.DRAFT,
        started_by_id=actor_id,
        started_at=utcnow(),
    )
    insert_numbered(session, count)
    return count


def get_count(session: Session, count_id: int, *, fresh: bool = False) -> StockCount:
    count = session.scalar(
        select(StockCount).where(StockCount.id == count_id)
        .options(selectinload(StockCount.lines).selectinload(StockCountLine.product),
                 selectinload(StockCount.location))
        .execution_options(populate_existing=fresh)
    )
    if count is None:
        raise NotFound(_l("盘点单不存在"))
    return count


def list_counts(session: Session, page: int = 1, *, per_page: int = DEFAULT_PER_PAGE,
                location_id: Optional[int] = None, status: Optional[DocStatus] = None) -> Page:
    where = []
    if location_id is not None:
        where.append(StockCount.location_id == location_id)
    if status is not None:
        where.append(StockCount.status == DocStatus(status))
    page, per_page, total = paging(session, select(func.count(StockCount.id)).where(*where), page, per_page)
    items = session.scalars(
        select(StockCount).where(*where).options(selectinload(StockCount.location))
        .order_by(StockCount.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(items, total, page, per_page)


def record_count_line(session: Session, count_id: int, *, product_id: int, counted_qty_milli: int,
                      actor_id: Optional[int]) -> StockCountLine:
    """Record what was counted of a product, with the book level at this moment: sales that go on
    while the rest of the shop is counted then change the level and the book alike, and are not
    mistaken for a shortage. Counting a product again replaces its line and its book level."""
    lock_draft(session, StockCount, count_id)  # a count being posted waits for this line, or refuses it
    count = session.get(StockCount, count_id)
    product = checked_product(session, product_id)
    counted = checked_qty(counted_qty_milli, product, field="counted_qty_milli", label=_l("实盘数量"), allow_zero=True)
    values = {"counted_qty_milli": counted, "book_qty_milli": level(session, count.location_id, product.id),
              "counted_at": utcnow(), "counted_by_id": actor_id}
    line = session.scalar(
        select(StockCountLine).where(StockCountLine.count_id == count.id, StockCountLine.product_id == product.id)
    )
    if line is None:
        try:
            with session.begin_nested():
                line = StockCountLine(count_id=count.id, product_id=product.id, **values)
                session.add(line)
                session.flush()
            return line
        except IntegrityError:  # another tablet counted the same product at the same moment
            line = session.scalar(
                select(StockCountLine).where(StockCountLine.count_id == count.id,
                                             StockCountLine.product_id == product.id)
            )
            if line is None:
                raise
    for key, value in values.items():
        setattr(line, key, value)
    session.flush()
    return line


def count_variances(session: Session, count_id: int) -> list[dict]:
    """Each counted product: counted, book (at the time it was counted), variance = counted −
    book, and the level now."""
    if session.get(StockCount, count_id) is None:
        raise NotFound(_l("盘点单不存在"))
    count_loc = select(StockCount.location_id).where(StockCount.id == count_id).scalar_subquery()
    now_level = func.coalesce(StockLevel.qty_milli, 0)
    rows = session.execute(
        select(StockCountLine, Product, now_level)
        .join(Product, Product.id == StockCountLine.product_id)
        .outerjoin(StockLevel, and_(StockLevel.product_id == StockCountLine.product_id,
                                    StockLevel.location_id == count_loc))
        .where(StockCountLine.count_id == count_id)
        .order_by(Product.sku)
    ).all()
    return [
        {
            "line_id": line.id,
            **product_columns(product),
            "counted": line.counted_qty_milli,
            "book": line.book_qty_milli,
            "variance": line.counted_qty_milli - line.book_qty_milli,
            "level_now": now,
            "counted_at": line.counted_at,
            "counted_by_id": line.counted_by_id,
        }
        for line, product, now in rows
    ]


def post_count(session: Session, count_id: int, *, reason: str, actor_id: Optional[int]) -> StockCount:
    """Post the count: each product's variance (counted − book at count time) moves between the
    location and COUNT-ADJ. A shortage is taken from the lots first-expiry-first-out; goods found
    are unlotted. Audited as "stock.count_post"."""
    lock_draft(session, StockCount, count_id)
    count = get_count(session, count_id, fresh=True)
    reason = fields.text(reason, field="reason", label=_l("盘点调整原因"), max_len=200, required=True)
    location = checked_location(session, count.location_id, field="location_id")
    adjustment = virtual_location(session, LocationKind.COUNT_ADJUSTMENT)
    variances = []
    with all_or_nothing(session, count):
        transition(session, StockCount, count.id, DocStatus.POSTED, reason=reason, posted_at=utcnow(),
                    posted_by_id=actor_id)
        for line in sorted(count.lines, key=lambda ln: ln.product_id):
            variance = line.counted_qty_milli - line.book_qty_milli
            variances.append({"product_id": line.product_id, "sku": line.product.sku,
                              "counted": line.counted_qty_milli, "book": line.book_qty_milli, "variance": variance})
            common = dict(product_id=line.product_id, reason=MoveReason.COUNT_ADJUSTMENT, ref_type="stock_count",
                          ref_id=count.id, note=reason, user_id=actor_id)
            if variance > 0:
                move(session, qty_milli=variance, from_location_id=adjustment.id, to_location_id=location.id, **common)
            elif variance < 0:
                for lot_id, part in allocate_removal(session, location_id=location.id, product_id=line.product_id,
                                                     qty_milli=-variance):
                    move(session, qty_milli=part, from_location_id=location.id, to_location_id=adjustment.id,
                         lot_id=lot_id, allow_negative_source=True, **common)
        record(session, user_id=actor_id, action="stock.count_post", entity="stock_count", entity_id=count.id,
               after={"number": count.number, "location_id": location.id, "reason": reason, "lines": variances})
    return count


def cancel_count(session: Session, count_id: int, *, actor_id: Optional[int]) -> StockCount:
    return cancel_draft(session, StockCount, count_id, actor_id=actor_id,
                         action="stock.count_cancel", entity="stock_count")


