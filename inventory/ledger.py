"""The stock ledger: the only writer of stock.

A move takes a quantity of a product (and lot) from one location to another. The stock-level
tables are kept in the same transaction with single-statement atomic increments
(``UPDATE … SET qty_milli = qty_milli + :d``), never read-add-write in Python, so concurrent
tills and counters cannot lose an update. Every move credits one location and debits another,
so per product all locations add up to zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .localtime import utcnow
from .money import format_qty
from .models import Alert, AlertKind, LocationKind, Location, LotLevel, MoveReason, Product, StockLevel, StockMove


class StockError(ValueError):
    """A move the rules refuse; the message is for the person who asked for it."""


class InsufficientStock(StockError):
    pass


@dataclass(frozen=True)
class MoveResult:
    move_id: int
    from_level_milli: int
    to_level_milli: int


def _add(session: Session, table, keys: dict, delta: int, *, floor: Optional[int] = None) -> Optional[int]:
    """Atomically add ``delta`` to the row of ``table`` at ``keys``; create it when missing.

    With ``floor``, the update only happens if the result stays >= floor; returns None when it
    would not (nothing is written). Returns the new quantity otherwise.
    """
    cond = [getattr(table, k) == v for k, v in keys.items()]
    stmt = update(table).where(*cond).values(qty_milli=table.qty_milli + delta)
    if floor is not None:
        stmt = stmt.where(table.qty_milli + delta >= floor)
    row = session.execute(stmt.returning(table.qty_milli)).first()
    if row is not None:
        return row[0]
    exists = session.execute(select(table.qty_milli).where(*cond)).first()
    if exists is not None:
        return None  # the floor refused it
    if floor is not None and delta < floor:
        return None
    # First movement here: create the row. Two transactions may race to create it; the loser's
    # insert fails on the primary key and it retries as an update inside a savepoint.
    try:
        with session.begin_nested():
            session.execute(insert(table).values(**keys, qty_milli=delta))
        return delta
    except IntegrityError:
        return _add(session, table, keys, delta, floor=floor)


def move(
    session: Session,
    *,
    product_id: int,
    qty_milli: int,
    from_location_id: int,
    to_location_id: int,
    reason: MoveReason,
    lot_id: Optional[int] = None,
    ref_type: Optional[str] = None,
    ref_id: Optional[int] = None,
    note: Optional[str] = None,
    user_id: Optional[int] = None,
    allow_negative_source: bool = False,
) -> MoveResult:
    """Post one move. A real source location may not go below zero unless
    ``allow_negative_source`` (sales: the goods are already in the customer's hand), in which
    case a negative level raises a discrepancy alert instead."""
    if not isinstance(qty_milli, int) or isinstance(qty_milli, bool) or qty_milli <= 0:
        raise StockError("数量必须是正数")
    if from_location_id == to_location_id:
        raise StockError("调出和调入位置不能相同")
    source = session.get(Location, from_location_id)
    target = session.get(Location, to_location_id)
    if source is None or target is None:
        raise StockError("位置不存在")
    guard = not source.kind.is_virtual and not allow_negative_source
    floor = 0 if guard else None

    from_level = _add(session, StockLevel, {"location_id": from_location_id, "product_id": product_id}, -qty_milli, floor=floor)
    if from_level is None:
        product = session.get(Product, product_id)
        raise InsufficientStock(f"{source.name}的「{product.name if product else product_id}」库存不足")
    if lot_id is not None:
        lot_level = _add(session, LotLevel, {"location_id": from_location_id, "lot_id": lot_id}, -qty_milli, floor=floor)
        if lot_level is None:
            raise InsufficientStock(f"{source.name}的该批次库存不足")
        _add(session, LotLevel, {"location_id": to_location_id, "lot_id": lot_id}, qty_milli)
    to_level = _add(session, StockLevel, {"location_id": to_location_id, "product_id": product_id}, qty_milli)

    move_id = session.execute(
        insert(StockMove)
        .values(
            product_id=product_id,
            lot_id=lot_id,
            from_location_id=from_location_id,
            to_location_id=to_location_id,
            qty_milli=qty_milli,
            reason=reason,
            ref_type=ref_type,
            ref_id=ref_id,
            note=note,
            user_id=user_id,
            moved_at=utcnow(),
        )
        .returning(StockMove.id)
    ).scalar_one()

    if not source.kind.is_virtual and from_level < 0:
        product = session.get(Product, product_id)
        shown = format_qty(from_level, by_weight=bool(product and product.sold_by_weight))
        session.add(
            Alert(
                kind=AlertKind.NEGATIVE_STOCK,
                message=f"{source.name}的「{product.name if product else product_id}」账面库存为负：{shown}",
                location_id=from_location_id,
                product_id=product_id,
                ref_type="stock_move",
                ref_id=move_id,
            )
        )
    return MoveResult(move_id, from_level, to_level)


def level(session: Session, location_id: int, product_id: int) -> int:
    return session.scalar(
        select(StockLevel.qty_milli).where(
            StockLevel.location_id == location_id, StockLevel.product_id == product_id
        )
    ) or 0


def virtual_location(session: Session, kind: LocationKind) -> Location:
    """The single virtual location of a kind (supplier, customer, loss, count adjustment)."""
    loc = session.scalars(select(Location).where(Location.kind == kind).order_by(Location.id)).first()
    if loc is None:
        raise StockError(f"缺少虚拟位置：{kind.value}")
    return loc
