"""The record of every payment-code payment (issue 15): one ``PaymentAttempt`` per scanned code,
with its own order number (``out_trade_no``), the provider's transaction id once paid, and its
state; one ``PaymentAttemptEvent`` per call to the provider (pay, query, reverse, refund,
refund_query) with the state it answered and its raw answer without secrets. A crash between the
calls leaves an attempt in the middle (pending / unknown / userpaying / reversing), which the
tick finishes (pos.payments.service.finish_unfinished).

The customer's payment code itself is never stored: only its first four and last four digits."""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Optional

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from inventory.base import Base, StrEnum, UTCDateTime, db_enum
from inventory.localtime import HALL_TZ, utcnow


class AttemptState(StrEnum):
    PENDING = "pending"        # written, the pay call not answered yet
    SUCCESS = "success"        # the money is confirmed
    USERPAYING = "userpaying"  # the customer confirms with a password: the till polls
    FAILED = "failed"          # refused (insufficient balance, a bad code …): nothing taken
    UNKNOWN = "unknown"        # no answer: queried before anything else
    REVERSING = "reversing"    # a reverse asked and not answered yet: retried until answered
    REVERSED = "reversed"      # cancelled at the provider: nothing taken


UNFINISHED = (AttemptState.PENDING, AttemptState.UNKNOWN, AttemptState.USERPAYING, AttemptState.REVERSING)


class PaymentAttempt(Base):
    __tablename__ = "payment_attempts"
    __table_args__ = (
        Index("ix_payment_attempts_state", "state"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(10))                 # "wechat" | "alipay"
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    auth_code: Mapped[str] = mapped_column(String(16))                # masked: first 4 + last 4 only
    till_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tills.id"))
    cashier_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    client_sale_id: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    state: Mapped[AttemptState] = mapped_column(db_enum(AttemptState, "payment_attempt_state"))
    transaction_id: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    message: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_query_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    sale_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sales.id"), index=True)


class PaymentAttemptEvent(Base):
    __tablename__ = "payment_attempt_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("payment_attempts.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))   # pay | query | reverse | refund | refund_query
    state: Mapped[str] = mapped_column(String(16))
    raw: Mapped[Optional[str]] = mapped_column(Text)  # JSON, the provider's answer without secrets
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


def mask_code(code: str) -> str:
    """First four and last four digits of a payment code; the rest is never kept."""
    return f"{code[:4]}…{code[-4:]}" if len(code) > 8 else "…"


def new_out_trade_no(till_code: str, *, now: Optional[dt.datetime] = None) -> str:
    """Ours: the till's code (alphanumerics only), the local time yyyymmddHHMMSS and 6 random
    digits, at most 32 characters (both providers' limit), e.g. H120261205154503123456."""
    prefix = "".join(ch for ch in (till_code or "") if ch.isascii() and ch.isalnum())[:12] or "P"
    stamp = (now or utcnow()).astimezone(HALL_TZ).strftime("%Y%m%d%H%M%S")
    return f"{prefix}{stamp}{secrets.randbelow(10**6):06d}"


def new_out_refund_no() -> str:
    """Ours, for a refund: "R" + the local time + 6 random digits (unique index on refunds)."""
    stamp = utcnow().astimezone(HALL_TZ).strftime("%Y%m%d%H%M%S")
    return f"R{stamp}{secrets.randbelow(10**8):08d}"


__all__ = ["AttemptState", "UNFINISHED", "PaymentAttempt", "PaymentAttemptEvent", "mask_code",
           "new_out_trade_no", "new_out_refund_no"]
