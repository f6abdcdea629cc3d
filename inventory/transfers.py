"""Transfers between real locations (the logistics base, the hall's store and floor): drafts
allocated to lots first expiry first out, the pick list, posting and voiding.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from . import fields
from .audit import record
from .documents import DocStatus, Transfer, TransferLine
from .errors import NotFound, ValidationError
from .expiry import ExpiredStock, fresh_parts, is_expired
from .ledger import MoveIn, post_moves
from .localtime import local_today, utcnow
from .models import Location, LocationKind, Lot, MoveReason, Product, first_expiry_first
from .stock_documents import (
    DEFAULT_PER_PAGE,
    all_or_nothing,
    cancel_draft,
    checked_location,
    checked_qty,
    document_lines,
    insert_numbered,
    line_label,
    lock_draft,
    paging,
    product_columns,
    show_qty,
    transition,
)
from .web import Page


def logistics_base(session: Session) -> Location:
    """The logistics base (黔货出山大湾区物流基地), where refills and group orders start from: the
    active base location, the one coded BASE first."""
    base = session.scalars(select(Location).where(Location.kind == LocationKind.BASE, Location.active.is_(True))
                           .order_by(Location.code != "BASE", Location.id)).first()
    if base is None:
        raise ValidationError(_l("没有可用的物流基地"))
    return base


# --- transfers -----------------------------------------------------------------------------------

def create_transfer(
    session: Session,
    *,
    from_location_id: int,
    to_location_id: int,
    lines: Sequence[Mapping[str, Any]],
    note: Optional[str] = None,
    actor_id: Optional[int],
) -> Transfer:
    """A draft transfer between two real locations. A line without a lot is allocated to the
    source's lots first-expiry-first-out, so it may become several lines, one per lot."""
    source = checked_location(session, from_location_id, field="from_location_id")
    target = checked_location(session, to_location_id, field="to_location_id")
    if source.id == target.id:
        raise ValidationError(_l("调出和调入位置不能相同"), "to_location_id")
    planned: dict[tuple[int, Optional[int]], int] = {}  # (product, lot) → qty, in the order given
    today = local_today()
    for i, raw, product in document_lines(session, lines, empty=_l("调拨单至少要有一行商品")):
        qty = checked_qty(raw.get("qty_milli"), product, field=f"lines-{i}-qty_milli", label=line_label(i, _l("数量")))
        lot_id = raw.get("lot_id")
        if lot_id is not None:
            lot = session.get(Lot, lot_id) if isinstance(lot_id, int) and not isinstance(lot_id, bool) else None
            if lot is None or lot.product_id != product.id:
                raise ValidationError(_l("第 %(n)s 行：批次不属于「%(product)s」", n=i + 1, product=product.name),
                                      f"lines-{i}-lot_id")
            _refuse_expired_lot(lot, product, today, f"lines-{i}-lot_id", n=i + 1)
            parts = [(lot.id, qty)]
        else:
            try:
                parts = fresh_parts(session, source.id, product.id, qty, planned, today)
            except ExpiredStock as exc:
                raise ValidationError(_l("第 %(n)s 行：%(reason)s", n=i + 1, reason=exc.message),
                                      f"lines-{i}-qty_milli") from None
        for part_lot, part in parts:
            planned[(product.id, part_lot)] = planned.get((product.id, part_lot), 0) + part
    transfer = Transfer(
        from_location_id=source.id,
        to_location_id=target.id,
        status=DocStatus.DRAFT,
        note=fields.text(note, field="note", label=_l("备注"), max_len=500),
        created_by_id=actor_id,
        created_at=utcnow(),
        lines=[TransferLine(product_id=pid, lot_id=lot_id, qty_milli=qty) for (pid, lot_id), qty in planned.items()],
    )
    insert_numbered(session, transfer)
    return transfer


def _refuse_expired_lot(lot: Lot, product: Product, today: dt.date, field: str, *, n: int) -> None:
    if is_expired(lot.expires_on, today):
        raise ValidationError(_l("第 %(n)s 行：「%(product)s」批次 %(lot)s 已于 %(date)s 过期，不能调拨，请报损",
                                 n=n, product=product.name, lot=lot.lot_no, date=lot.expires_on.isoformat()), field)


def get_transfer(session: Session, transfer_id: int, *, fresh: bool = False) -> Transfer:
    transfer = session.scalar(
        select(Transfer)
        .where(Transfer.id == transfer_id)
        .options(selectinload(Transfer.lines).selectinload(TransferLine.product),
                 selectinload(Transfer.lines).selectinload(TransferLine.lot),
                 selectinload(Transfer.from_location), selectinload(Transfer.to_location))
        .execution_options(populate_existing=fresh)
    )
    if transfer is None:
        raise NotFound(_l("调拨单不存在"))
    return transfer


def list_transfers(session: Session, page: int = 1, *, per_page: int = DEFAULT_PER_PAGE,
                   status: Optional[DocStatus] = None) -> Page:
    where = [] if status is None else [Transfer.status == DocStatus(status)]
    page, per_page, total = paging(session, select(func.count(Transfer.id)).where(*where), page, per_page)
    items = session.scalars(
        select(Transfer).where(*where)
        .options(selectinload(Transfer.from_location), selectinload(Transfer.to_location))
        .order_by(Transfer.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(items, total, page, per_page)


def pick_list(session: Session, transfer_id: int) -> list[dict]:
    """The lines to pick at the source, for printing: product, sku, lot, expiry, quantity."""
    transfer = session.get(Transfer, transfer_id)
    if transfer is None:
        raise NotFound(_l("调拨单不存在"))
    source = session.get(Location, transfer.from_location_id)
    target = session.get(Location, transfer.to_location_id)
    rows = session.execute(
        select(TransferLine, Product, Lot)
        .join(Product, Product.id == TransferLine.product_id)
        .outerjoin(Lot, Lot.id == TransferLine.lot_id)
        .where(TransferLine.transfer_id == transfer_id)
        .order_by(Product.sku, *first_expiry_first(TransferLine.id))
    ).all()
    return [
        {
            "line_id": line.id,
            **product_columns(product),
            "lot": lot,
            "lot_id": lot.id if lot else None,
            "lot_no": lot.lot_no if lot else None,
            "expires_on": lot.expires_on if lot else None,
            "qty_milli": line.qty_milli,
            "qty": show_qty(product, line.qty_milli),
            "from_location": source,
            "from_location_name": source.name,
            "to_location": target,
            "to_location_name": target.name,
        }
        for line, product, lot in rows
    ]


def post_transfer(session: Session, transfer_id: int, *, actor_id: Optional[int]) -> Transfer:
    """Post a draft transfer: every line moves from the source to the target. If any line would
    take the source below zero the whole transfer is refused (``InsufficientStock`` naming the
    product), nothing is written and the transfer stays a draft."""
    lock_draft(session, Transfer, transfer_id)
    transfer = get_transfer(session, transfer_id, fresh=True)
    checked_location(session, transfer.from_location_id, field="from_location_id")
    checked_location(session, transfer.to_location_id, field="to_location_id")
    today = local_today()
    for i, line in enumerate(transfer.lines):  # a lot that has expired since the draft was made
        if line.lot is not None:
            _refuse_expired_lot(line.lot, line.product, today, "lines", n=i + 1)
    with all_or_nothing(session, transfer):
        transition(session, Transfer, transfer.id, DocStatus.POSTED, posted_at=utcnow(), posted_by_id=actor_id)
        # Always the same order, so two transfers of the same goods lock their rows in the same order.
        post_moves(session, [
            MoveIn(product_id=line.product_id, qty_milli=line.qty_milli,
                   from_location_id=transfer.from_location_id, to_location_id=transfer.to_location_id,
                   reason=MoveReason.TRANSFER, lot_id=line.lot_id, ref_type="transfer", ref_id=transfer.id,
                   user_id=actor_id)
            for line in sorted(transfer.lines, key=lambda ln: (ln.product_id, ln.lot_id or 0, ln.id))])
        record(session, user_id=actor_id, action="transfer.post", entity="transfer", entity_id=transfer.id,
               after={"number": transfer.number, "from": transfer.from_location_id, "to": transfer.to_location_id,
                      "lines": [{"product_id": ln.product_id, "lot_id": ln.lot_id, "qty_milli": ln.qty_milli}
                                for ln in transfer.lines]})
    return transfer


def cancel_transfer(session: Session, transfer_id: int, *, actor_id: Optional[int]) -> Transfer:
    return cancel_draft(session, Transfer, transfer_id, actor_id=actor_id,
                         action="transfer.cancel", entity="transfer")


