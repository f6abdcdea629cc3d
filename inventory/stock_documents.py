"""The machinery every stock document shares (goods receipts, transfers, counts): checking the
values a document is made of, numbering, posting and voiding, and the session hook that keeps a
posted document immutable.

A document is posted whole or not at all: its moves run in a savepoint (``all_or_nothing``), so a
refusal (say, a transfer that would take the source below zero) leaves nothing behind, not even in
the caller's transaction, and the document stays a draft. Posting is a single conditional
``UPDATE … SET status = 'posted' WHERE status = 'draft'`` (``transition``), so two people pressing
"post" at once post it once. A posted document is never edited or deleted (the hook below refuses
it); a receipt posted by mistake is reversed by a new receipt.

The services built on this (``receiving``, ``transfers``, ``counts``, ``expiry``, ``reorder``,
``stock_levels``) take a session and plain values, never commit, and raise ``InventoryError``s whose text
is for the person (``StockError`` / ``InsufficientStock`` from the ledger, ``NotFound``,
``ValidationError`` with the field, ``DocumentLocked``).
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import event, select, update
from sqlalchemy import inspect as orm_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import fields
from .audit import record
from .documents import (
    STOCK_NUMBERS,
    DocStatus,
    GoodsReceipt,
    GoodsReceiptLine,
    StockCount,
    StockCountLine,
    Transfer,
    TransferLine,
    format_number,
    take_number,
)
from .errors import InventoryError, NotFound, ValidationError
from .ledger import MAX_QTY_MILLI
from .localtime import local_today, parse_local_date
from .models import VIRTUAL_LOCATION_KINDS, Location, LocationKind, Product
from .money import format_qty

REAL_LOCATION_KINDS = tuple(k for k in LocationKind if k not in VIRTUAL_LOCATION_KINDS)
DEFAULT_PER_PAGE = 50


class DocumentLocked(InventoryError):
    """A posted or cancelled document was to be changed (or posted again)."""


# --- small helpers ---------------------------------------------------------------------------

def product_columns(product: Product) -> dict:
    """The product's columns in a row of a stock page (levels, a pick list, a count, expiring lots)."""
    return {"product": product, "product_id": product.id, "sku": product.sku, "name": product.name,
            "weighed": product.weighed}


def show_qty(product: Product, qty_milli: int) -> str:
    return format_qty(qty_milli, by_weight=product.weighed)


def checked_location(session: Session, location_id: Any, *, field: str, real: bool = True) -> Location:
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


def checked_product(session: Session, product_id: Any, *, field: str = "product_id", label: Any = None) -> Product:
    if isinstance(product_id, bool) or not isinstance(product_id, int):
        raise ValidationError(_l("%(label)s：请选择商品", label=label or _l("商品")), field)
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(_l("%(label)s：商品不存在", label=label or _l("商品")))
    return product


def checked_qty(value: Any, product: Product, *, field: str, label: Any, allow_zero: bool = False) -> int:
    """A quantity in qty_milli: an int, positive (or zero when allowed), whole pieces for goods
    that are not sold by weight."""
    qty = fields.integer(value, field=field, label=label, minimum=0 if allow_zero else 1, maximum=MAX_QTY_MILLI)
    if not product.weighed and qty % 1000:
        raise ValidationError(_l("%(label)s：「%(product)s」按件计，数量必须是整数件",
                                 label=label, product=product.name), field)
    return qty


def checked_date(value: Any, *, field: str, label: Any) -> Optional[dt.date]:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return parse_local_date(value)
        except ValueError:
            raise ValidationError(_l("%(label)s应为日期（YYYY-MM-DD）", label=label), field) from None
    return fields.date(value, field=field, label=label, required=False)


def line_label(i: int, what: Any) -> Any:
    return _l("第 %(n)s 行的%(what)s", n=i + 1, what=what)


def document_lines(session: Session, lines: Any, *, empty: Any) -> Iterator[tuple[int, Mapping, Product]]:
    """The lines of a document as given (a receipt's, a transfer's): (index, the line, its
    product), each line a mapping naming a product. Refused with ``empty`` when there is none."""
    if not isinstance(lines, (list, tuple)) or not lines:
        raise ValidationError(empty, "lines")
    for i, raw in enumerate(lines):
        if not isinstance(raw, Mapping):
            raise ValidationError(_l("第 %(n)s 行格式不正确", n=i + 1), f"lines-{i}")
        yield i, raw, checked_product(session, raw.get("product_id"), field=f"lines-{i}-product_id",
                                      label=_l("第 %(n)s 行", n=i + 1))


@contextmanager
def all_or_nothing(session: Session, *docs: Any) -> Iterator[None]:
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


def transition(session: Session, model, doc_id: int, to: DocStatus, **values: Any) -> None:
    """Draft → posted / cancelled in one conditional statement (two clicks post once)."""
    row = session.execute(
        update(model)
        .where(model.id == doc_id, model.status == DocStatus.DRAFT)
        .values(status=to, **values)
        .returning(model.id)
    ).first()
    if row is None:
        raise DocumentLocked(_l("单据已过账或已作废，不能再操作"))


def cancel_draft(session: Session, model, doc_id: int, *, actor_id: Optional[int], action: str, entity: str):
    """Void a draft document of any kind: it keeps its number and stays listed as cancelled."""
    lock_draft(session, model, doc_id)
    doc = session.get(model, doc_id, populate_existing=True)
    transition(session, model, doc.id, DocStatus.CANCELLED)
    record(session, user_id=actor_id, action=action, entity=entity, entity_id=doc.id,
           after={"number": doc.number})
    return doc


def _locked_message(doc) -> Any:
    if doc.status == DocStatus.POSTED:
        return _l("单据 %(number)s 已过账，不能修改（如有错误，请用新单据更正）", number=doc.number)
    return _l("单据 %(number)s 已作废，不能修改", number=doc.number)


NOT_FOUND = {
    GoodsReceipt: _l("入库单不存在"),
    Transfer: _l("调拨单不存在"),
    StockCount: _l("盘点单不存在"),
}


def lock_draft(session: Session, model, doc_id: Any) -> None:
    """Lock a draft document's row until the end of the transaction (``SELECT … FOR UPDATE`` on
    PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers), so that nobody edits it,
    counts into it or posts it meanwhile. Refused when it is no longer a draft. The caller then
    reads the document afresh (``get_…(fresh=True)``): what the session held may be stale."""
    if isinstance(doc_id, bool) or not isinstance(doc_id, int):
        raise NotFound(NOT_FOUND[model])
    row = session.execute(
        select(model.number, model.status).where(model.id == doc_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(NOT_FOUND[model])
    if row.status != DocStatus.DRAFT:
        doc = session.get(model, doc_id)
        if doc is not None:
            session.expire(doc)  # what this session held was stale
        raise DocumentLocked(_locked_message(row))


def paging(session: Session, count_stmt, page: int, per_page: int) -> tuple[int, int, int]:
    """(page, per_page, total) with page and per_page made sensible."""
    page = max(1, int(page or 1))
    per_page = max(1, min(int(per_page or DEFAULT_PER_PAGE), 500))
    total = session.scalar(count_stmt) or 0
    return page, per_page, total


# --- document numbers -------------------------------------------------------------------------

_PREFIX = {GoodsReceipt: "GR", Transfer: "TR", StockCount: "CT"}


def next_document_number(session: Session, model, day: Optional[dt.date] = None) -> str:
    """The next number of the local day: GR-20261126-001, TR-…, CT-…, from the one counter every
    document kind uses (``inventory.documents.take_number``). The unique constraint on ``number``
    is the backstop for a number that was typed in by hand (see ``insert_numbered``)."""
    day = day or local_today()
    prefix = _PREFIX[model]
    return format_number(prefix, day, take_number(session, prefix, day, kind=STOCK_NUMBERS), digits=3)


def insert_numbered(session: Session, doc, attempts: int = 8) -> None:
    """Insert a new document under the next number; when that number is taken already (typed in
    by hand, or restored from elsewhere), take the next one."""
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


