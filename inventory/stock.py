"""Stock services: receiving, transfers, counts, expiry and write-offs, reorder points, and the
ledger's read side (stock per location, every move of a product with its running balance).

Every change of stock goes through ``inventory.ledger.move``. A document is posted whole or not
at all: its moves run in a savepoint, so a refusal (say, a transfer that would take the source
below zero) leaves nothing behind, not even in the caller's transaction, and the document stays a
draft. Posting is a single conditional ``UPDATE … SET status = 'posted' WHERE status = 'draft'``,
so two people pressing "post" at once post it once. A posted document is never edited or deleted
(a session hook refuses it); a receipt posted by mistake is reversed by a new receipt.

Functions take a session and plain values, never commit, and raise ``InventoryError``s whose text
is for the person (``StockError`` / ``InsufficientStock`` from the ledger, ``NotFound``,
``ValidationError`` with the field, ``DocumentLocked``).
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, event, func, inspect as orm_inspect, or_, select, union, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from . import fields
from .alerts import hall_text, raise_expired_stock_sold_alert
from .audit import record
from .documents import (
    DocStatus,
    GoodsReceipt,
    GoodsReceiptLine,
    StockCount,
    StockCountLine,
    Transfer,
    TransferLine,
)
from .errors import InventoryError, NotFound, ValidationError
from .ledger import MAX_QTY_MILLI, InsufficientStock, MoveResult, StockError, level, move, virtual_location
from .localtime import local_date, local_today, parse_local_date, utcnow
from .models import (
    VIRTUAL_LOCATION_KINDS,
    Barcode,
    Location,
    LocationKind,
    Lot,
    LotLevel,
    MoveReason,
    Product,
    ReorderPoint,
    StockLevel,
    StockMove,
    Supplier,
    first_expiry_first,
)
from .money import format_qty, line_amount_fen
from .web import Page

__all__ = [
    "DocumentLocked", "InsufficientStock", "StockError",
    # receiving
    "receive", "update_receipt_draft", "post_receipt", "reverse_receipt", "cancel_receipt", "get_receipt",
    "list_receipts", "receipt_total_fen",
    # transfers
    "create_transfer", "pick_list", "post_transfer", "cancel_transfer", "get_transfer", "list_transfers",
    "fefo_allocate", "allocate_fresh", "allocate_removal", "expired_only", "ExpiredStock",
    # counts
    "start_count", "record_count_line", "count_variances", "post_count", "cancel_count", "get_count", "list_counts",
    # expiry
    "expiring_lots", "write_off", "WRITE_OFF_REASONS",
    # reads
    "stock_at_location", "product_ledger", "product_levels", "list_locations",
    # reorder points
    "set_reorder_point", "reorder_point",
    # numbers
    "next_document_number",
]

REAL_LOCATION_KINDS = tuple(k for k in LocationKind if k not in VIRTUAL_LOCATION_KINDS)
WRITE_OFF_REASONS = ("expiry", "damage", "other")
MAX_EXPIRY_DAYS = 3650
DEFAULT_PER_PAGE = 50


class DocumentLocked(InventoryError):
    """A posted or cancelled document was to be changed (or posted again)."""


# --- small helpers ---------------------------------------------------------------------------

def _show_qty(product: Product, qty_milli: int) -> str:
    return format_qty(qty_milli, by_weight=product.weighed)


def _location(session: Session, location_id: Any, *, field: str, real: bool = True) -> Location:
    if isinstance(location_id, bool) or not isinstance(location_id, int):
        raise ValidationError(_l("请选择位置"), field)
    loc = session.get(Location, location_id)
    if loc is None:
        raise NotFound(_l("位置不存在"))
    if real and loc.kind.is_virtual:
        raise ValidationError(_l("「%(name)s」是虚拟位置，不能存放货物", name=loc.name), field)
    if real and not loc.active:
        raise ValidationError(_l("「%(name)s」已停用", name=loc.name), field)
    return loc


def _product(session: Session, product_id: Any, *, field: str = "product_id", label: Any = None) -> Product:
    if isinstance(product_id, bool) or not isinstance(product_id, int):
        raise ValidationError(_l("%(label)s：请选择商品", label=label or _l("商品")), field)
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(_l("%(label)s：商品不存在", label=label or _l("商品")))
    return product


def _qty(value: Any, product: Product, *, field: str, label: Any, allow_zero: bool = False) -> int:
    """A quantity in qty_milli: an int, positive (or zero when allowed), whole pieces for goods
    that are not sold by weight."""
    qty = fields.integer(value, field=field, label=label, minimum=0 if allow_zero else 1, maximum=MAX_QTY_MILLI)
    if not product.weighed and qty % 1000:
        raise ValidationError(_l("%(label)s：「%(product)s」按件计，数量必须是整数件",
                                 label=label, product=product.name), field)
    return qty


def _date(value: Any, *, field: str, label: Any) -> Optional[dt.date]:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return parse_local_date(value)
        except ValueError:
            raise ValidationError(_l("%(label)s应为日期（YYYY-MM-DD）", label=label), field) from None
    return fields.date(value, field=field, label=label, required=False)


def _line_label(i: int, what: Any) -> Any:
    return _l("第 %(n)s 行的%(what)s", n=i + 1, what=what)


@contextmanager
def _all_or_nothing(session: Session, *docs: Any) -> Iterator[None]:
    """A savepoint: everything inside is written, or nothing is (and ``docs`` are reloaded from
    the database, so that a document whose posting failed reads as the draft it still is)."""
    try:
        with session.begin_nested():
            yield
    except BaseException:
        for doc in docs:
            if doc in session:
                session.expire(doc)
        raise


def _transition(session: Session, model, doc_id: int, to: DocStatus, **values: Any) -> None:
    """Draft → posted / cancelled in one conditional statement (two clicks post once)."""
    row = session.execute(
        update(model)
        .where(model.id == doc_id, model.status == DocStatus.DRAFT)
        .values(status=to, **values)
        .returning(model.id)
    ).first()
    if row is None:
        raise DocumentLocked(_l("单据已过账或已作废，不能再操作"))


def _cancel_draft(session: Session, model, doc_id: int, *, actor_id: Optional[int], action: str, entity: str):
    """Void a draft document of any kind: it keeps its number and stays listed as cancelled."""
    _lock_draft(session, model, doc_id)
    doc = session.get(model, doc_id, populate_existing=True)
    _transition(session, model, doc.id, DocStatus.CANCELLED)
    record(session, user_id=actor_id, action=action, entity=entity, entity_id=doc.id,
           after={"number": doc.number})
    return doc


def _locked_message(doc) -> Any:
    if doc.status == DocStatus.POSTED:
        return _l("单据 %(number)s 已过账，不能修改（如有错误，请用新单据更正）", number=doc.number)
    return _l("单据 %(number)s 已作废，不能修改", number=doc.number)


_NOT_FOUND = {
    GoodsReceipt: _l("入库单不存在"),
    Transfer: _l("调拨单不存在"),
    StockCount: _l("盘点单不存在"),
}


def _lock_draft(session: Session, model, doc_id: Any) -> None:
    """Lock a draft document's row until the end of the transaction (``SELECT … FOR UPDATE`` on
    PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers), so that nobody edits it,
    counts into it or posts it meanwhile. Refused when it is no longer a draft. The caller then
    reads the document afresh (``get_…(fresh=True)``): what the session held may be stale."""
    if isinstance(doc_id, bool) or not isinstance(doc_id, int):
        raise NotFound(_NOT_FOUND[model])
    row = session.execute(
        select(model.number, model.status).where(model.id == doc_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(_NOT_FOUND[model])
    if row.status != DocStatus.DRAFT:
        doc = session.get(model, doc_id)
        if doc is not None:
            session.expire(doc)  # what this session held was stale
        raise DocumentLocked(_locked_message(row))


# --- document numbers -------------------------------------------------------------------------

_PREFIX = {GoodsReceipt: "GR", Transfer: "TR", StockCount: "CT"}


def next_document_number(session: Session, model, day: Optional[dt.date] = None) -> str:
    """The next free number of the local day: GR-20261126-001, TR-…, CT-…. Taken inside the
    transaction; the unique constraint on ``number`` is the backstop (see ``_insert_numbered``)."""
    day = day or local_today()
    stem = f"{_PREFIX[model]}-{day:%Y%m%d}-"
    last = session.scalar(
        select(model.number)
        .where(model.number.like(stem + "%"))
        .order_by(func.length(model.number).desc(), model.number.desc())
        .limit(1)
    )
    n = 1
    if last is not None:
        try:
            n = int(last[len(stem):]) + 1
        except ValueError:  # pragma: no cover - a number typed by hand
            n = 1
    return f"{stem}{n:03d}"


def _insert_numbered(session: Session, doc, attempts: int = 8) -> None:
    """Insert a new document under the next free number; when another transaction took that
    number meanwhile, take the next one."""
    model = type(doc)
    for _ in range(attempts):
        doc.number = next_document_number(session, model)
        try:
            with session.begin_nested():
                session.add(doc)
                session.flush()
            return
        except IntegrityError:
            taken = session.scalar(select(model.id).where(model.number == doc.number))
            if taken is None:
                raise
    raise InventoryError(_l("单据编号分配失败，请重试"))


# --- posted documents are immutable ------------------------------------------------------------

_GUARDED_PARENT = {
    GoodsReceipt: None, GoodsReceiptLine: "receipt",
    Transfer: None, TransferLine: "transfer",
    StockCount: None, StockCountLine: "count",
}


def _stored_status(doc) -> DocStatus:
    """The status as it is in the database (before any change pending in the session)."""
    history = orm_inspect(doc).attrs.status.history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return doc.status


@event.listens_for(Session, "before_flush")
def _posted_documents_are_immutable(session: Session, _flush_context, _instances) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        parent_attr = _GUARDED_PARENT.get(type(obj), False)
        if parent_attr is False:
            continue
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        doc = obj if parent_attr is None else getattr(obj, parent_attr)
        if doc is None or doc in session.new:
            continue
        status = _stored_status(doc)
        if status != DocStatus.DRAFT:
            raise DocumentLocked(_l("单据 %(number)s 已过账或已作废，不能修改（如有错误，请用新单据更正）",
                                    number=doc.number))


# --- receiving -----------------------------------------------------------------------------------

def _expiry(product: Product, produced_on: Optional[dt.date], expires_on: Optional[dt.date]) -> Optional[dt.date]:
    if expires_on is None and produced_on is not None and product.shelf_life_days:
        return produced_on + dt.timedelta(days=product.shelf_life_days)
    return expires_on


def _refuse_expired_goods(product: Product, expires: Optional[dt.date], today: dt.date, field: str, *, n: int) -> None:
    """Expired goods are not received into stock (they would reach customers): the supplier takes
    them back."""
    if _is_expired(expires, today):
        raise ValidationError(_l("第 %(n)s 行：「%(product)s」已于 %(date)s 过期，过期商品不能入库，请退回供应商",
                                 n=n, product=product.name, date=expires.isoformat()), field)


def _receipt_lines(session: Session, lines: Any) -> list[GoodsReceiptLine]:
    if not isinstance(lines, (list, tuple)) or not lines:
        raise ValidationError(_l("入库单至少要有一行商品"), "lines")
    today = local_today()
    result = []
    for i, raw in enumerate(lines):
        if not isinstance(raw, Mapping):
            raise ValidationError(_l("第 %(n)s 行格式不正确", n=i + 1), f"lines-{i}")
        product = _product(session, raw.get("product_id"), field=f"lines-{i}-product_id", label=_l("第 %(n)s 行", n=i + 1))
        if not product.active:
            raise ValidationError(_l("第 %(n)s 行：「%(product)s」已停用，不能入库", n=i + 1, product=product.name),
                                  f"lines-{i}-product_id")
        qty = _qty(raw.get("qty_milli"), product, field=f"lines-{i}-qty_milli", label=_line_label(i, _l("数量")))
        cost = fields.integer(raw.get("cost_fen"), field=f"lines-{i}-cost_fen", label=_line_label(i, _l("进价")))
        lot_no = fields.text(raw.get("lot_no"), field=f"lines-{i}-lot_no", label=_line_label(i, _l("批号")), max_len=40)
        produced = _date(raw.get("produced_on"), field=f"lines-{i}-produced_on", label=_line_label(i, _l("生产日期")))
        expires = _date(raw.get("expires_on"), field=f"lines-{i}-expires_on", label=_line_label(i, _l("到期日")))
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
    _location(session, location_id, field="location_id")
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
    _insert_numbered(session, receipt)
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
    _lock_draft(session, GoodsReceipt, receipt_id)
    receipt = get_receipt(session, receipt_id, fresh=True)
    if supplier_id is not _KEEP:
        if isinstance(supplier_id, bool) or not isinstance(supplier_id, int):
            raise ValidationError(_l("请选择供应商"), "supplier_id")
        if session.get(Supplier, supplier_id) is None:
            raise NotFound(_l("供应商不存在"))
        receipt.supplier_id = supplier_id
    if location_id is not _KEEP:
        _location(session, location_id, field="location_id")
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
    _lock_draft(session, GoodsReceipt, receipt_id)
    receipt = get_receipt(session, receipt_id, fresh=True)
    if not receipt.lines:
        raise ValidationError(_l("入库单至少要有一行商品"), "lines")
    location = _location(session, receipt.location_id, field="location_id")
    supplier_loc = virtual_location(session, LocationKind.SUPPLIER)
    now = utcnow()
    today = local_date(now)
    for i, line in enumerate(receipt.lines):  # a draft whose goods have expired since it was made
        _refuse_expired_goods(line.product, _expiry(line.product, line.produced_on, line.expires_on), today,
                              f"lines-{i}-expires_on", n=i + 1)
    with _all_or_nothing(session, receipt, *receipt.lines):
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
        _transition(session, GoodsReceipt, receipt.id, DocStatus.POSTED, posted_at=now, posted_by_id=actor_id)
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
        with _all_or_nothing(session):
            _insert_numbered(session, reversal)
            _transition(session, GoodsReceipt, reversal.id, DocStatus.POSTED, posted_at=utcnow(),
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
    return _cancel_draft(session, GoodsReceipt, receipt_id, actor_id=actor_id,
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
        raise NotFound(_NOT_FOUND[GoodsReceipt])
    return receipt


def _paging(session: Session, count_stmt, page: int, per_page: int) -> tuple[int, int, int]:
    """(page, per_page, total) with page and per_page made sensible."""
    page = max(1, int(page or 1))
    per_page = max(1, min(int(per_page or DEFAULT_PER_PAGE), 500))
    total = session.scalar(count_stmt) or 0
    return page, per_page, total


def list_receipts(session: Session, page: int = 1, *, per_page: int = DEFAULT_PER_PAGE,
                  status: Optional[DocStatus] = None, supplier_id: Optional[int] = None) -> Page:
    """Receipts, newest first, with supplier and location loaded."""
    where = []
    if status is not None:
        where.append(GoodsReceipt.status == DocStatus(status))
    if supplier_id is not None:
        where.append(GoodsReceipt.supplier_id == supplier_id)
    page, per_page, total = _paging(session, select(func.count(GoodsReceipt.id)).where(*where), page, per_page)
    items = session.scalars(
        select(GoodsReceipt).where(*where)
        .options(selectinload(GoodsReceipt.supplier), selectinload(GoodsReceipt.location))
        .order_by(GoodsReceipt.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(items, total, page, per_page)


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


def _is_expired(expires_on: Optional[dt.date], today: dt.date) -> bool:
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


def _fefo(session: Session, location_id: int, product_id: int, qty_milli: int,
          taken: dict[tuple[int, Optional[int]], int], *, today: Optional[dt.date] = None) -> list[tuple[Optional[int], int]]:
    """Lots first expiry first out (every lot, expired ones included, when ``today`` is None)."""
    return _allocate(session, location_id, product_id, qty_milli, taken, today=today).parts


def _allocate(session: Session, location_id: int, product_id: int, qty_milli: int,
              taken: dict[tuple[int, Optional[int]], int], *, today: Optional[dt.date]) -> _Allocation:
    rows = _lot_rows(session, location_id, product_id)
    parts: list[tuple[Optional[int], int]] = []
    remaining = qty_milli
    expired = 0
    for lot_id, have, expires_on in rows:
        have -= taken.get((product_id, lot_id), 0)
        if today is not None and _is_expired(expires_on, today):
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


def allocate_fresh(session: Session, *, location_id: int, product_id: int, qty_milli: int) -> list[tuple[Optional[int], int]]:
    """Which lots a transfer, a refill or a group order's pick takes: as ``fefo_allocate``, but
    refused (``ExpiredStock``, nothing written) when only expired lots could cover the quantity."""
    if isinstance(qty_milli, bool) or not isinstance(qty_milli, int) or qty_milli <= 0:
        raise ValidationError(_l("数量必须是正数"), "qty_milli")
    return _fresh_parts(session, location_id, product_id, qty_milli, {}, local_today())


def _fresh_parts(session: Session, location_id: int, product_id: int, qty_milli: int,
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
    return _fefo(session, location_id, product_id, qty_milli, {})


def expired_only(session: Session, *, location_id: int, product_id: int, today: Optional[dt.date] = None) -> bool:
    """True when the books hold the product at the location only in expired lots: no unexpired
    lot and no goods without a lot, but some expired lot (the till warns the cashier)."""
    today = today or local_today()
    rows = _lot_rows(session, location_id, product_id)
    expired = sum(q for _, q, expires_on in rows if _is_expired(expires_on, today))
    if not expired:
        return False
    fresh = sum(q for _, q, expires_on in rows if not _is_expired(expires_on, today))
    unlotted = level(session, location_id, product_id) - sum(q for _, q, _ in rows)
    return fresh <= 0 and unlotted <= 0


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
    source = _location(session, from_location_id, field="from_location_id")
    target = _location(session, to_location_id, field="to_location_id")
    if source.id == target.id:
        raise ValidationError(_l("调出和调入位置不能相同"), "to_location_id")
    if not isinstance(lines, (list, tuple)) or not lines:
        raise ValidationError(_l("调拨单至少要有一行商品"), "lines")
    planned: dict[tuple[int, Optional[int]], int] = {}  # (product, lot) → qty, in the order given
    today = local_today()
    for i, raw in enumerate(lines):
        if not isinstance(raw, Mapping):
            raise ValidationError(_l("第 %(n)s 行格式不正确", n=i + 1), f"lines-{i}")
        product = _product(session, raw.get("product_id"), field=f"lines-{i}-product_id", label=_l("第 %(n)s 行", n=i + 1))
        qty = _qty(raw.get("qty_milli"), product, field=f"lines-{i}-qty_milli", label=_line_label(i, _l("数量")))
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
                parts = _fresh_parts(session, source.id, product.id, qty, planned, today)
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
    _insert_numbered(session, transfer)
    return transfer


def _refuse_expired_lot(lot: Lot, product: Product, today: dt.date, field: str, *, n: int) -> None:
    if _is_expired(lot.expires_on, today):
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
    page, per_page, total = _paging(session, select(func.count(Transfer.id)).where(*where), page, per_page)
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
            "product": product,
            "product_id": product.id,
            "sku": product.sku,
            "name": product.name,
            "lot": lot,
            "lot_id": lot.id if lot else None,
            "lot_no": lot.lot_no if lot else None,
            "expires_on": lot.expires_on if lot else None,
            "qty_milli": line.qty_milli,
            "qty": _show_qty(product, line.qty_milli),
            "weighed": product.weighed,
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
    _lock_draft(session, Transfer, transfer_id)
    transfer = get_transfer(session, transfer_id, fresh=True)
    _location(session, transfer.from_location_id, field="from_location_id")
    _location(session, transfer.to_location_id, field="to_location_id")
    today = local_today()
    for i, line in enumerate(transfer.lines):  # a lot that has expired since the draft was made
        if line.lot is not None:
            _refuse_expired_lot(line.lot, line.product, today, "lines", n=i + 1)
    with _all_or_nothing(session, transfer):
        _transition(session, Transfer, transfer.id, DocStatus.POSTED, posted_at=utcnow(), posted_by_id=actor_id)
        # Always the same order, so two transfers of the same goods lock their rows in the same order.
        for line in sorted(transfer.lines, key=lambda ln: (ln.product_id, ln.lot_id or 0, ln.id)):
            move(session, product_id=line.product_id, qty_milli=line.qty_milli,
                 from_location_id=transfer.from_location_id, to_location_id=transfer.to_location_id,
                 reason=MoveReason.TRANSFER, lot_id=line.lot_id, ref_type="transfer", ref_id=transfer.id,
                 user_id=actor_id)
        record(session, user_id=actor_id, action="transfer.post", entity="transfer", entity_id=transfer.id,
               after={"number": transfer.number, "from": transfer.from_location_id, "to": transfer.to_location_id,
                      "lines": [{"product_id": ln.product_id, "lot_id": ln.lot_id, "qty_milli": ln.qty_milli}
                                for ln in transfer.lines]})
    return transfer


def cancel_transfer(session: Session, transfer_id: int, *, actor_id: Optional[int]) -> Transfer:
    return _cancel_draft(session, Transfer, transfer_id, actor_id=actor_id,
                         action="transfer.cancel", entity="transfer")


# --- stock counts -----------------------------------------------------------------------------

def start_count(session: Session, *, location_id: int, scope: Optional[str] = None,
                actor_id: Optional[int]) -> StockCount:
    """Begin counting a real location (or the part of it named by ``scope``, e.g. "货架 A")."""
    _location(session, location_id, field="location_id")
    count = StockCount(
        location_id=location_id,
        scope=fields.text(scope, field="scope", label=_l("盘点范围"), max_len=120),
        status=DocStatus.DRAFT,
        started_by_id=actor_id,
        started_at=utcnow(),
    )
    _insert_numbered(session, count)
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
    page, per_page, total = _paging(session, select(func.count(StockCount.id)).where(*where), page, per_page)
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
    _lock_draft(session, StockCount, count_id)  # a count being posted waits for this line, or refuses it
    count = session.get(StockCount, count_id)
    product = _product(session, product_id)
    counted = _qty(counted_qty_milli, product, field="counted_qty_milli", label=_l("实盘数量"), allow_zero=True)
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
            "product": product,
            "product_id": product.id,
            "sku": product.sku,
            "name": product.name,
            "weighed": product.weighed,
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
    _lock_draft(session, StockCount, count_id)
    count = get_count(session, count_id, fresh=True)
    reason = fields.text(reason, field="reason", label=_l("盘点调整原因"), max_len=200, required=True)
    location = _location(session, count.location_id, field="location_id")
    adjustment = virtual_location(session, LocationKind.COUNT_ADJUSTMENT)
    variances = []
    with _all_or_nothing(session, count):
        _transition(session, StockCount, count.id, DocStatus.POSTED, reason=reason, posted_at=utcnow(),
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
                for lot_id, part in _fefo(session, location.id, line.product_id, -variance, {}):
                    move(session, qty_milli=part, from_location_id=location.id, to_location_id=adjustment.id,
                         lot_id=lot_id, allow_negative_source=True, **common)
        record(session, user_id=actor_id, action="stock.count_post", entity="stock_count", entity_id=count.id,
               after={"number": count.number, "location_id": location.id, "reason": reason, "lines": variances})
    return count


def cancel_count(session: Session, count_id: int, *, actor_id: Optional[int]) -> StockCount:
    return _cancel_draft(session, StockCount, count_id, actor_id=actor_id,
                         action="stock.count_cancel", entity="stock_count")


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
            "product": product,
            "product_id": product.id,
            "sku": product.sku,
            "name": product.name,
            "weighed": product.weighed,
            "lot": lot,
            "lot_id": lot.id,
            "lot_no": lot.lot_no,
            "expires_on": lot.expires_on,
            "qty_milli": qty,
            "qty": _show_qty(product, qty),
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
    location = _location(session, location_id, field="location_id")
    product = _product(session, product_id)
    qty = _qty(qty_milli, product, field="qty_milli", label=_l("报损数量"))
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


# --- reorder points ---------------------------------------------------------------------------

def reorder_point(session: Session, *, location_id: int, product_id: int) -> Optional[int]:
    return session.scalar(select(ReorderPoint.min_qty_milli).where(
        ReorderPoint.location_id == location_id, ReorderPoint.product_id == product_id))


def set_reorder_point(session: Session, *, location_id: int, product_id: int, min_qty_milli: Optional[int],
                      actor_id: Optional[int]) -> Optional[ReorderPoint]:
    """Set (or, with None, remove) the level below which a product at a location needs goods."""
    location = _location(session, location_id, field="location_id")
    product = _product(session, product_id)
    point = session.get(ReorderPoint, (location.id, product.id))
    before = None if point is None else point.min_qty_milli
    if min_qty_milli is None:
        if point is not None:
            session.delete(point)
            point = None
    else:
        qty = _qty(min_qty_milli, product, field="min_qty_milli", label=_l("补货点"), allow_zero=True)
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


# --- the ledger's read side ----------------------------------------------------------------------

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
    page, per_page, total = _paging(session, select(func.count()).select_from(stmt.subquery()), page, per_page)
    rows = session.execute(stmt.order_by(Product.sku).limit(per_page).offset((page - 1) * per_page)).all()
    items = [
        {
            "product": product,
            "product_id": product.id,
            "sku": product.sku,
            "name": product.name,
            "weighed": product.weighed,
            "qty_milli": qty_milli,
            "qty": _show_qty(product, qty_milli),
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
    page, per_page, total = _paging(session, select(func.count()).select_from(base.subquery()), page, per_page)
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
