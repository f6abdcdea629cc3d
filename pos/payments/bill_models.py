"""The providers' daily trade bills as imported (one per provider and day, its lines as parsed) and
the finance staff's notes explaining a difference found by the bill check (pos.payments.reconcile).
Kept apart from the payment attempts' tables: the bill check only reads those."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.base import Base, UTCDateTime
from inventory.localtime import utcnow

BILL_PROVIDERS = ("wechat", "alipay")   # the PaymentMethod values of the two providers
LINE_KINDS = ("pay", "refund", "reversed")


class ProviderBill(Base):
    """One provider's trade bill of one (Asia/Shanghai) day, as imported. Importing the same day
    again replaces it (another file) or is refused (the same file)."""

    __tablename__ = "provider_bills"
    __table_args__ = (
        UniqueConstraint("provider", "bill_date"),
        CheckConstraint("provider IN ('wechat', 'alipay')", name="provider_known"),
        CheckConstraint("open_items >= 0", name="open_items_non_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(10))
    bill_date: Mapped[dt.date] = mapped_column(Date)
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    imported_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(10), default="upload")   # upload | download
    file_sha256: Mapped[str] = mapped_column(String(64))
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    # The last bill check of this day (on import, on a note, on 重新核对): the differences not yet
    # explained. A day counts as reconciled (已对账) in the monthly summary when this is 0.
    checked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    open_items: Mapped[int] = mapped_column(Integer, default=0)

    lines: Mapped[list["ProviderBillLine"]] = relationship(
        back_populates="bill", order_by="ProviderBillLine.line_no", cascade="all, delete-orphan")


class ProviderBillLine(Base):
    """One line of a bill: a payment, a refund or a reversal (撤销), amount always positive."""

    __tablename__ = "provider_bill_lines"
    __table_args__ = (
        UniqueConstraint("bill_id", "line_no"),
        CheckConstraint("kind IN ('pay', 'refund', 'reversed')", name="kind_known"),
        CheckConstraint("amount_fen >= 0", name="amount_non_negative"),
        Index("ix_provider_bill_lines_out_trade_no", "out_trade_no"),
        Index("ix_provider_bill_lines_transaction_id", "transaction_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("provider_bills.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    out_trade_no: Mapped[Optional[str]] = mapped_column(String(64))
    transaction_id: Mapped[Optional[str]] = mapped_column(String(64))
    out_refund_no: Mapped[Optional[str]] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    raw: Mapped[str] = mapped_column(Text)   # the line's fields as JSON {column: value}

    bill: Mapped[ProviderBill] = relationship(back_populates="lines")


class ReconcileNote(Base):
    """A person's explanation (说明) of one difference of one provider's day; audited. The item stays
    listed, as 已说明."""

    __tablename__ = "reconcile_notes"
    __table_args__ = (UniqueConstraint("provider", "bill_date", "item_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(10))
    bill_date: Mapped[dt.date] = mapped_column(Date)
    item_key: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(10))   # the item's outcome when it was explained
    note: Mapped[str] = mapped_column(String(500))
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
