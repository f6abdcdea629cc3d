"""Receiving: goods receipts from a supplier into a real location, with lots and expiry dates;
posting them into the ledger, voiding a draft, and reversing a posted receipt with a new one.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from . import fields
from .alerts import hall_text
from .audit import record
from .documents import DocStatus, GoodsReceipt, GoodsReceiptLine
from .errors import NotFound, ValidationError
from .expiry import is_expired
from .ledger import InsufficientStock, move, virtual_location
from .localtime import local_date, local_today, utcnow
from .models import Location, LocationKind, Lot, MoveReason, Product, Supplier
from .money import line_amount_fen
from .stock_documents import (
    DEFAULT_PER_PAGE,
    NOT_FOUND,
    DocumentLocked,
    all_or_nothing,
    cancel_draft,
    checked_date,
    checked_location,
    checked_qty,
    document_lines,
    insert_numbered,
    line_label,
    lock_draft,
    paging,
    transition,
)
from .web import Page


def _expiry(product: Product, produced_on: Optional[dt.date], expires_on: Optional[dt.date]) -> Optional[dt.date]:
    if expires_on is None and produced_on is not None and product.shelf_life_days:
        return produced_on + dt.timedelta(days=product.shelf_life_days)
    return expires_on


def _refuse_expired_goods(product: Product, expires: Optional[dt.date], today: dt.date, field: str, *, n: int) -> None:
    """Expired goods are not received into stock (they would reach customers): the supplier takes
    them back."""
    if is_expired(expires, today):
        raise ValidationError(_l("第 %(n)s 行：「%(product)s」已于 %(date)s 过期，过期商品不能入库，请退回供应商",
                                 n=n, product=product.name, date=expires.isoformat()), field)


def _receipt_lines(session: Session, lines: Any) -> list[GoodsReceiptLine]:
    today = local_today()
    result = []
    for i, raw, product in document_lines(session, lines, empty=_l("入库单至少要有一行商品")):
        if not product.active:
            raise ValidationError(_l("第 %(n)s 行：「%(product)s」已停用，不能入库", n=i + 1, product=product.name),
                                  f"lines-{i}-product_id")
        qty = checked_qty(raw.get("qty_milli"), product, field=f"lines-{i}-qty_milli", label=line_label(i, _l("数量")))
        cost = fields.integer(raw.get("cost_fen"), field=f"lines-{i}-cost_fen", label=line_label(i, _l("进价")))
        lot_no = fields.text(raw.get("lot_no"), field=f"lines-{i}-lot_no", label=line_label(i, _l("批号")), max_len=40)
        produced = checked_date(raw.get("produced_on"), field=f"lines-{i}-produced_on", label=line_label(i, _l("生产日期")))
        expires = checked_date(raw.get("expires_on"), field=f"lines-{i}-expires_on", label=line_label(i, _l("到期日")))
        if produced is not None and produced > today:
            raise ValidationError(_l("第 %(n)s 行：生产日期不能晚于今天", n=i + 1), f"lines-{i}-produced_on")
        expires = _expiry(product, produced, expires)
        if produced is not None and expires is not None and expires < produced:
            raise ValidationError(_l("第 %(n)s 行：到期日不能早于生产日期", n=i + 1), f"lines-{i}-expires_on")
        _refuse_expired_goods(product, expires, today, f"lines-{i}-expires_on", n=i + 1)
        if lot_no is not None:
            known = session.scalar(select(Lot).where(Lot.product_id == product.id, Lot.lot_no == lot_no))
            if known is not None and known.expires_on is not None and expires is not None and known.expires_on != expires:
                raise ValidationError(_l("第 %(n)s 行：批号 %(lot)s 已登记，到期日为 %(date)s，与本次不一致",
                                         n=i + 1, lot=lot_no, date=known.expires_on.isoformat()), f"lines-{i}-expires_on")
        result.append(GoodsReceiptLine(product_id=product.id, qty_milli=qty, cost_fen=cost, lot_no=lot_no,
                                       produced_on=produced, expires_on=expires))
    return result


def receive(
    session: Session,
    *,
    supplier_id: int,
    location_id: int,
    lines: Sequence[Mapping[str, Any]],
    supplier_ref: Optional[str] = None,
    note: Optional[str] = None,
    actor_id: Optional[int],
) -> GoodsReceipt:
    """A draft goods receipt from a supplier into a real location. Each line: product_id,
    qty_milli, cost_fen (per unit), and optionally lot_no, produced_on, expires_on (when only
    the production date is given, the expiry is that date + the product's shelf life)."""
    if isinstance(supplier_id, bool) or not isinstance(supplier_id, int):
        raise ValidationError(_l("请选择供应商"), "supplier_id")
    if session.get(Supplier, supplier_id) is None:
        raise NotFound(_l("供应商不存在"))
    checked_location(session, location_id, field="location_id")
    receipt = GoodsReceipt(
        supplier_id=supplier_id,
        location_id=location_id,
        status=DocStatus.DRAFT,
        supplier_ref=fields.text(supplier_ref, field="supplier_ref", label=_l("送货单号"), max_len=60),
        note=fields.text(note, field="note", label=_l("备注"), max_len=500),
        created_by_id=actor_id,
        created_at=utcnow(),
    )
    receipt.lines = _receipt_lines(session, lines)
    insert_numbered(session, receipt)
    return receipt


_KEEP: Any = object()


def update_receipt_draft(
    session: Session,
    receipt_id: int,
    *,
    lines: Any = _KEEP,
    supplier_id: Any = _KEEP,
    location_id: Any = _KEEP,
    supplier_ref: Any = _KEEP,
    note: Any = _KEEP,
    actor_id: Optional[int] = None,
) -> GoodsReceipt:
    """Change a draft receipt (the lines are replaced as a whole). A posted one cannot change."""
    lock_draft(session, GoodsReceipt, receipt_id)
    receipt = get_receipt(session, receipt_id, fresh=True)
    if supplier_id is not _KEEP:
        if isinstance(supplier_id, bool) or not isinstance(supplier_id, int):
            raise ValidationError(_l("请选择供应商"), "supplier_id")
        if session.get(Supplier, supplier_id) is None:
            raise NotFound(_l("供应商不存在"))
        receipt.supplier_id = supplier_id
    if location_id is not _KEEP:
        checked_location(session, location_id, field="location_id")
        receipt.location_id = location_id
    if supplier_ref is not _KEEP:
        receipt.supplier_ref = fields.text(supplier_ref, field="supplier_ref", label=_l("送货单号"), max_len=60)
    if note is not _KEEP:
        receipt.note = fields.text(note, field="note", label=_l("备注"), max_len=500)
    if lines is not _KEEP:
        receipt.lines = _receipt_lines(session, lines)
    session.flush()
    return receipt


def _lot_for(session: Session, product: Product, lot_no: str, produced_on: Optional[dt.date],
             expires_on: Optional[dt.date]) -> Lot:
    """The product's lot with this number, created when new (race-free: the unique constraint on
    (product, lot_no) decides, and the loser uses the winner's lot)."""
    lot = session.scalar(select(Lot).where(Lot.product_id == product.id, Lot.lot_no == lot_no))
    if lot is None:
        try:
            with session.begin_nested():
                lot = Lot(product_id=product.id, lot_no=lot_no, produced_on=produced_on, expires_on=expires_on,
                          created_at=utcnow())
                session.add(lot)
                session.flush()
            return lot
        except IntegrityError:
            lot = session.scalar(select(Lot).where(Lot.product_id == product.id, Lot.lot_no == lot_no))
            if lot is None:
                raise
    if expires_on is not None and lot.expires_on is not None and lot.expires_on != expires_on:
        raise ValidationError(_l("「%(product)s」批号 %(lot)s 已登记，到期日为 %(date)s，与本次不一致",
                                 product=product.name, lot=lot_no, date=lot.expires_on.isoformat()))
    if lot.expires_on is None and expires_on is not None:
        lot.expires_on = expires_on
    if lot.produced_on is None and produced_on is not None:
        lot.produced_on = produced_on
    return lot


def post_receipt(session: Session, receipt_id: int, *, actor_id: Optional[int]) -> GoodsReceipt:
    """Post a draft receipt: lots are created (a line with an expiry but no lot number gets the
    receipt's number as its lot), the goods move SUPPLIER → the receiving location, and each
    product's cost becomes the latest cost paid. All or nothing."""
    lock_draft(session, GoodsReceipt, receipt_id)
    receipt = get_receipt(session, receipt_id, fresh=True)
    if not receipt.lines:
        raise ValidationError(_l("入库单至少要有一行商品"), "lines")
    location = checked_location(session, receipt.location_id, field="location_id")
    supplier_loc = virtual_location(session, LocationKind.SUPPLIER)
    now = utcnow()
    today = local_date(now)
    for i, line in enumerate(receipt.lines):  # a draft whose goods have expired since it was made
        _refuse_expired_goods(line.product, _expiry(line.product, line.produced_on, line.expires_on), today,
                              f"lines-{i}-expires_on", n=i + 1)
    with all_or_nothing(session, receipt, *receipt.lines):
        for i, line in enumerate(receipt.lines):
            product = line.product
            expires = _expiry(product, line.produced_on, line.expires_on)
            if line.lot_no or expires is not None:
                lot_no = line.lot_no or f"{receipt.number}-{i + 1:02d}"
                lot = _lot_for(session, product, lot_no, line.produced_on, expires)
                line.lot = lot
                line.lot_no = lot_no
                line.expires_on = lot.expires_on
        session.flush()
        transition(session, GoodsReceipt, receipt.id, DocStatus.POSTED, posted_at=now, posted_by_id=actor_id)
        for line in sorted(receipt.lines, key=lambda ln: (ln.product_id, ln.lot_id or 0, ln.id)):
            move(session, product_id=line.product_id, qty_milli=line.qty_milli, from_location_id=supplier_loc.id,
                 to_location_id=location.id, reason=MoveReason.RECEIPT, lot_id=line.lot_id,
                 ref_type="goods_receipt", ref_id=receipt.id, user_id=actor_id)
        for line in receipt.lines:  # in document order: the last line's cost wins
            line.product.cost_fen = line.cost_fen
        record(session, user_id=actor_id, action="receipt.post", entity="goods_receipt", entity_id=receipt.id,
               after=_receipt_summary(receipt))
    return receipt


def reverse_receipt(session: Session, receipt_id: int, *, actor_id: Optional[int], note: Optional[str] = None) -> GoodsReceipt:
    """Reverse a posted receipt with a new posted receipt (``reverses_id``) that takes the same
    goods (same lots) back out of the location to the supplier. Refused, writing nothing, when
    the goods are no longer all there."""
    original = get_receipt(session, receipt_id)
    if original.status != DocStatus.POSTED:
        raise DocumentLocked(_l("只有已过账的入库单可以冲销"))
    if original.reverses_id is not None:
        raise DocumentLocked(_l("%(number)s 本身是冲销单，不能再冲销", number=original.number))
    done = session.scalar(select(GoodsReceipt.number).where(GoodsReceipt.reverses_id == original.id))
    if done is not None:
        raise DocumentLocked(_l("入库单 %(number)s 已被 %(other)s 冲销", number=original.number, other=done))
    note = fields.text(note, field="note", label=_l("冲销原因"), max_len=500)
    supplier_loc = virtual_location(session, LocationKind.SUPPLIER)
    location = session.get(Location, original.location_id)
    reversal = GoodsReceipt(
        supplier_id=original.supplier_id,
        location_id=original.location_id,
        status=DocStatus.DRAFT,
        supplier_ref=original.supplier_ref,
        reverses_id=original.id,
        note=note or hall_text(_l("冲销 %(number)s", number=original.number)),
        created_by_id=actor_id,
        created_at=utcnow(),
        lines=[GoodsReceiptLine(product_id=ln.product_id, qty_milli=ln.qty_milli, cost_fen=ln.cost_fen,
                                lot_no=ln.lot_no, produced_on=ln.produced_on, expires_on=ln.expires_on,
                                lot_id=ln.lot_id) for ln in original.lines],
    )
    try:
        with all_or_nothing(session):
            insert_numbered(session, reversal)
            transition(session, GoodsReceipt, reversal.id, DocStatus.POSTED, posted_at=utcnow(),
                        posted_by_id=actor_id)
            for line in sorted(original.lines, key=lambda ln: (ln.product_id, ln.lot_id or 0, ln.id)):
                try:
                    move(session, product_id=line.product_id, qty_milli=line.qty_milli,
                         from_location_id=original.location_id, to_location_id=supplier_loc.id,
                         reason=MoveReason.RECEIPT, lot_id=line.lot_id, ref_type="goods_receipt",
                         ref_id=reversal.id, user_id=actor_id)
                except InsufficientStock as exc:
                    raise InsufficientStock(_l("无法冲销 %(number)s：货物已不在%(location)s（%(reason)s）",
                                               number=original.number, location=location.name, reason=str(exc))) from exc
            record(session, user_id=actor_id, action="receipt.reverse", entity="goods_receipt",
                   entity_id=original.id, before=_receipt_summary(original),
                   after={"reversal": reversal.number, "note": reversal.note})
    except IntegrityError:
        raise DocumentLocked(_l("入库单 %(number)s 已被冲销", number=original.number)) from None
    return reversal


def cancel_receipt(session: Session, receipt_id: int, *, actor_id: Optional[int]) -> GoodsReceipt:
    """Void a draft receipt (it stays, numbered, as cancelled)."""
    return cancel_draft(session, GoodsReceipt, receipt_id, actor_id=actor_id,
                         action="receipt.cancel", entity="goods_receipt")


def _receipt_summary(receipt: GoodsReceipt) -> dict:
    return {
        "number": receipt.number,
        "supplier_id": receipt.supplier_id,
        "location_id": receipt.location_id,
        "lines": [{"product_id": ln.product_id, "qty_milli": ln.qty_milli, "cost_fen": ln.cost_fen,
                   "lot_no": ln.lot_no, "expires_on": ln.expires_on} for ln in receipt.lines],
        "total_fen": receipt_total_fen(receipt),
    }


def receipt_total_fen(receipt: GoodsReceipt) -> int:
    """Cost of the receipt: Σ cost per unit × quantity, each line rounded half up to the fen."""
    return sum(line_amount_fen(ln.cost_fen, ln.qty_milli) for ln in receipt.lines)


def get_receipt(session: Session, receipt_id: int, *, fresh: bool = False) -> GoodsReceipt:
    """A receipt with its lines, products and lots (``fresh``: re-read what the session holds)."""
    receipt = session.scalar(
        select(GoodsReceipt)
        .where(GoodsReceipt.id == receipt_id)
        .options(selectinload(GoodsReceipt.lines).selectinload(GoodsReceiptLine.product),
                 selectinload(GoodsReceipt.lines).selectinload(GoodsReceiptLine.lot))
        .execution_options(populate_existing=fresh)
    )
    if receipt is None:
        raise NotFound(NOT_FOUND[GoodsReceipt])
    return receipt


def list_receipts(session: Session, page: int = 1, *, per_page: int = DEFAULT_PER_PAGE,
                  status: Optional[DocStatus] = None, supplier_id: Optional[int] = None) -> Page:
    """Receipts, newest first, with supplier and location loaded."""
    where = []
    if status is not None:
        where.append(GoodsReceipt.status == DocStatus(status))
    if supplier_id is not None:
        where.append(GoodsReceipt.supplier_id == supplier_id)
    page, per_page, total = paging(session, select(func.count(GoodsReceipt.id)).where(*where), page, per_page)
    items = session.scalars(
        select(GoodsReceipt).where(*where)
        .options(selectinload(GoodsReceipt.supplier), selectinload(GoodsReceipt.location))
        .order_by(GoodsReceipt.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(items, total, page, per_page)


