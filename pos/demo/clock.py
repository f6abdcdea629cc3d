"""The demo's past: the moment of a local day and hour, and the timestamps of what the services
wrote (they stamp their records with the clock) set afterwards to the moments they stand for,
in a few bulk statements.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.orm import Session

from inventory.localtime import HALL_TZ, UTC
from inventory.models import AuditEvent, StockMove
from inventory.documents import GoodsReceipt, Transfer
from pos.group.models import GroupOrder, GroupPayment
from pos.models import Refund, Sale, Shift


def at_local(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=HALL_TZ).astimezone(UTC)


def stamp_document(s: Session, model, doc_id: int, at: dt.datetime) -> None:
    """A posted document is immutable to the ORM (inventory.stock_documents): its dates are set once, here,
    by statement, to when the history says it was drafted and posted."""
    table = model.__table__
    s.execute(update(table).where(table.c.id == doc_id)
              .values(created_at=at - dt.timedelta(minutes=15), posted_at=at))


def set_times(s: Session, marks: dict) -> None:
    """Give what the history wrote the moments it stands for: the services stamp the clock."""
    s.flush()
    moves, audits, sales = StockMove.__table__, AuditEvent.__table__, Sale.__table__
    s.execute(update(sales).where(sales.c.id > marks[Sale]).values(recorded_at=sales.c.sold_at))
    stamp = {
        "sale": select(Sale.sold_at).where(Sale.id == moves.c.ref_id),
        "refund": select(Refund.refunded_at).where(Refund.id == moves.c.ref_id),
        "transfer": select(Transfer.posted_at).where(Transfer.id == moves.c.ref_id),
        "goods_receipt": select(GoodsReceipt.posted_at).where(GoodsReceipt.id == moves.c.ref_id),
        "group_order": select(GroupOrder.picked_at).where(GroupOrder.id == moves.c.ref_id),
    }
    for ref_type, when in stamp.items():
        s.execute(update(moves).where(moves.c.id > marks[StockMove], moves.c.ref_type == ref_type)
                  .values(moved_at=when.scalar_subquery()))
    key = audits.c.entity_id
    audit_stamp = {
        ("sale", None): select(Sale.sold_at).where(cast(Sale.id, String) == key),
        ("refund", None): select(Refund.refunded_at).where(cast(Refund.id, String) == key),
        ("transfer", None): select(Transfer.posted_at).where(cast(Transfer.id, String) == key),
        ("goods_receipt", None): select(GoodsReceipt.posted_at).where(cast(GoodsReceipt.id, String) == key),
        ("shift", "shift.open"): select(Shift.opened_at).where(cast(Shift.id, String) == key),
        ("shift", "shift.close"): select(Shift.closed_at).where(cast(Shift.id, String) == key),
        ("group_order", "group_order.create"): select(GroupOrder.created_at).where(cast(GroupOrder.id, String) == key),
        ("group_order", "group_order.confirm"): select(GroupOrder.confirmed_at).where(cast(GroupOrder.id, String) == key),
        ("group_order", "group_order.pick"): select(GroupOrder.picked_at).where(cast(GroupOrder.id, String) == key),
        ("group_order", "group_order.deliver"): select(GroupOrder.closed_at).where(cast(GroupOrder.id, String) == key),
        ("group_order", "group_order.payment"): select(func.min(GroupPayment.recorded_at))
        .where(cast(GroupPayment.order_id, String) == key),
    }
    for (entity, action), when in audit_stamp.items():
        where = [audits.c.id > marks[AuditEvent], audits.c.entity == entity]
        if action:
            where.append(audits.c.action == action)
        s.execute(update(audits).where(*where).values(at=when.scalar_subquery()))
    s.expire_all()
