"""Stock documents: goods receipts, transfers and stock counts; the scale-label barcode rules; and
document numbers, for every kind of document the hall numbers (receipts, refunds, group orders,
goods receipts, transfers, counts).

A posted document is never edited or deleted: its stock moves are in the ledger, and a mistake is
reversed by a new document that points at the one it reverses.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from .base import Base, StrEnum, UTCDateTime, db_enum
from .localtime import utcnow
from .models import Location, Lot, Product, Supplier


class DocStatus(StrEnum):
    DRAFT = "draft"
    POSTED = "posted"
    CANCELLED = "cancelled"


class GoodsReceipt(Base):
    __tablename__ = "goods_receipts"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[DocStatus] = mapped_column(db_enum(DocStatus, "doc_status"), default=DocStatus.DRAFT)
    supplier_ref: Mapped[Optional[str]] = mapped_column(String(60))  # the supplier's delivery note no.
    reverses_id: Mapped[Optional[int]] = mapped_column(ForeignKey("goods_receipts.id"), unique=True)
    note: Mapped[Optional[str]] = mapped_column(Text)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    posted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    posted_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    supplier: Mapped[Supplier] = relationship()
    location: Mapped[Location] = relationship()
    lines: Mapped[list["GoodsReceiptLine"]] = relationship(
        back_populates="receipt", order_by="GoodsReceiptLine.id", cascade="all, delete-orphan"
    )


class GoodsReceiptLine(Base):
    __tablename__ = "goods_receipt_lines"
    __table_args__ = (
        CheckConstraint("qty_milli > 0", name="qty_positive"),
        CheckConstraint("cost_fen >= 0", name="cost_non_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("goods_receipts.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    qty_milli: Mapped[int] = mapped_column(Integer)
    cost_fen: Mapped[int] = mapped_column(Integer)  # per unit (piece or kg), tax inclusive
    lot_no: Mapped[Optional[str]] = mapped_column(String(40))
    produced_on: Mapped[Optional[dt.date]] = mapped_column(Date)
    expires_on: Mapped[Optional[dt.date]] = mapped_column(Date)
    lot_id: Mapped[Optional[int]] = mapped_column(ForeignKey("lots.id"))

    receipt: Mapped[GoodsReceipt] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
    lot: Mapped[Optional[Lot]] = relationship()


class Transfer(Base):
    __tablename__ = "transfers"
    __table_args__ = (CheckConstraint("from_location_id <> to_location_id", name="distinct_locations"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    from_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    to_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    status: Mapped[DocStatus] = mapped_column(db_enum(DocStatus, "doc_status"), default=DocStatus.DRAFT)
    note: Mapped[Optional[str]] = mapped_column(Text)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    posted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    posted_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    from_location: Mapped[Location] = relationship(foreign_keys=[from_location_id])
    to_location: Mapped[Location] = relationship(foreign_keys=[to_location_id])
    lines: Mapped[list["TransferLine"]] = relationship(
        back_populates="transfer", order_by="TransferLine.id", cascade="all, delete-orphan"
    )


class TransferLine(Base):
    __tablename__ = "transfer_lines"
    __table_args__ = (CheckConstraint("qty_milli > 0", name="qty_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    lot_id: Mapped[Optional[int]] = mapped_column(ForeignKey("lots.id"))
    qty_milli: Mapped[int] = mapped_column(Integer)

    transfer: Mapped[Transfer] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
    lot: Mapped[Optional[Lot]] = relationship()


class StockCount(Base):
    """Counting a location (or part of it). Each line keeps the book level at the moment it was
    counted, so sales that continue during the count are not mistaken for a shortage."""

    __tablename__ = "stock_counts"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    scope: Mapped[Optional[str]] = mapped_column(String(120))  # e.g. "货架 A" or a category
    status: Mapped[DocStatus] = mapped_column(db_enum(DocStatus, "doc_status"), default=DocStatus.DRAFT)
    reason: Mapped[Optional[str]] = mapped_column(String(200))
    started_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    posted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    posted_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    location: Mapped[Location] = relationship()
    lines: Mapped[list["StockCountLine"]] = relationship(
        back_populates="count", order_by="StockCountLine.id", cascade="all, delete-orphan"
    )


class StockCountLine(Base):
    __tablename__ = "stock_count_lines"
    __table_args__ = (
        UniqueConstraint("count_id", "product_id"),
        CheckConstraint("counted_qty_milli >= 0", name="counted_non_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    count_id: Mapped[int] = mapped_column(ForeignKey("stock_counts.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    counted_qty_milli: Mapped[int] = mapped_column(Integer)
    book_qty_milli: Mapped[int] = mapped_column(Integer)  # the ledger's level when this line was counted
    counted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    counted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))

    count: Mapped[StockCount] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()


class BarcodeRule(Base):
    """A scale-label rule in the style of a nomenclature: ``2{PPPPP}{WWWWW}C`` reads a product
    code and a weight in grams, ``2{PPPPP}{$$$$$}C`` a product code and a price in fen."""

    __tablename__ = "barcode_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    pattern: Mapped[str] = mapped_column(String(40), unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# --- document numbers ------------------------------------------------------------------------------

SALES_NUMBERS = "sales"  # receipts, refunds and group orders: the prefix names the till, counter or series
STOCK_NUMBERS = "stock"  # goods receipts (GR), transfers (TR) and stock counts (CT)


class DocumentCounter(Base):
    """The last number given out per numbering, prefix and local day: ``H1`` receipts of
    2026-11-26, ``R-H1`` refunds, ``GR`` goods receipts… One row per (kind, prefix, day), so two
    tills, or a till and the storeroom, never wait for each other's counter. The kind keeps a till
    coded like a stock document (``TR``) from sharing that document's counter."""

    __tablename__ = "document_counters"
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    last_no: Mapped[int] = mapped_column(Integer, default=0)


_COUNTER_STATEMENTS: dict[str, Any] = {}


def take_number(session: Session, prefix: str, day: dt.date, *, kind: str = SALES_NUMBERS) -> int:
    """The next number for (kind, prefix, local day), by one atomic upsert-and-increment
    (``INSERT … ON CONFLICT DO UPDATE SET last_no = last_no + 1 RETURNING last_no``, on SQLite and
    PostgreSQL alike): two transactions can never get the same number, and a rolled-back one gives
    its number back. The row stays locked until the transaction ends."""
    return take_numbers(session, prefix, day, 1, kind=kind)


def take_numbers(session: Session | Connection, prefix: str, day: dt.date, count: int, *,
                 kind: str = SALES_NUMBERS) -> int:
    """Take ``count`` consecutive numbers at once from the same counter as ``take_number``, by the
    same one statement (``… SET last_no = last_no + :count RETURNING last_no``); returns the last:
    the numbers are ``last - count + 1`` … ``last`` (a till's block of reserved receipt numbers).
    On a Session or on its Connection (a checkout's Core writes)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    dialect = (session if isinstance(session, Connection) else session.get_bind()).dialect.name
    stmt = _COUNTER_STATEMENTS.get(dialect)
    if stmt is None:
        t = DocumentCounter.__table__
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        new = dialect_insert(t).values(kind=bindparam("kind"), prefix=bindparam("prefix"), day=bindparam("day"),
                                       last_no=bindparam("count"))
        stmt = _COUNTER_STATEMENTS[dialect] = new.on_conflict_do_update(
            index_elements=[t.c.kind, t.c.prefix, t.c.day], set_={"last_no": t.c.last_no + new.excluded.last_no},
        ).returning(t.c.last_no)
    return session.execute(stmt, {"kind": kind, "prefix": prefix, "day": day, "count": count}).scalar_one()


def format_number(prefix: str, day: dt.date, n: int, *, digits: int = 4) -> str:
    """``H1-20261126-0001`` (receipts, refunds, group orders); stock documents use three digits:
    ``GR-20261126-001``."""
    return f"{prefix}-{day:%Y%m%d}-{n:0{digits}d}"
