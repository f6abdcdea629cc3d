"""Users, tills and shifts, sales, payments and refunds."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.base import Base, StrEnum, UTCDateTime, db_enum
from inventory.localtime import utcnow


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    CASHIER = "cashier"
    RESTOCKER = "restocker"
    AUDITOR = "auditor"


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    role: Mapped[Role] = mapped_column(db_enum(Role, "role"))
    password_hash: Mapped[str] = mapped_column(String(200))
    pin_hash: Mapped[Optional[str]] = mapped_column(String(200))
    locale: Mapped[Optional[str]] = mapped_column(String(10))  # None: follow the browser
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on password change, deactivation and role change: logs out every other session.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class LoginAttempt(Base):
    """Every login attempt, for throttling by user and by address (shared by all workers)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40))
    ip: Mapped[str] = mapped_column(String(45))
    ok: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Till(Base):
    __tablename__ = "tills"
    __table_args__ = (CheckConstraint("paper_columns IN (32, 48)", name="paper_columns"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(10), unique=True)   # H1, H2 …
    name: Mapped[str] = mapped_column(String(60))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    printer_uri: Mapped[str] = mapped_column(String(200), default="none")
    paper_columns: Mapped[int] = mapped_column(Integer, default=48)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PrintJobStatus(StrEnum):
    PENDING = "pending"
    PRINTED = "printed"
    FAILED = "failed"


class PrintJob(Base):
    """A print (receipt, reprint, refund receipt, drawer, test page, labels) queued for a printer's
    worker thread (pos.hall.print_queue): the request answers at once with the job's id and the till
    asks for its outcome. Kept in the database so any server process can answer that question."""

    __tablename__ = "print_jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random: unguessable
    kind: Mapped[str] = mapped_column(String(20))  # receipt, reprint, refund, drawer, test, labels
    till_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tills.id"), index=True)
    sale_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sales.id"), index=True)
    status: Mapped[PrintJobStatus] = mapped_column(db_enum(PrintJobStatus, "print_job_status"),
                                                   default=PrintJobStatus.PENDING)
    error: Mapped[Optional[str]] = mapped_column(String(300))
    reprint_count: Mapped[Optional[int]] = mapped_column(Integer)
    drawer_kick: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class ShiftStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Shift(Base):
    __tablename__ = "shifts"
    __table_args__ = (
        CheckConstraint("opening_float_fen >= 0", name="float_non_negative"),
        # Only one open shift per till, enforced by the database.
        Index(
            "uq_shifts_one_open_per_till",
            "till_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    till_id: Mapped[int] = mapped_column(ForeignKey("tills.id"), index=True)
    cashier_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[ShiftStatus] = mapped_column(db_enum(ShiftStatus, "shift_status"))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    opening_float_fen: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    expected_cash_fen: Mapped[Optional[int]] = mapped_column(Integer)
    counted_cash_fen: Mapped[Optional[int]] = mapped_column(Integer)
    denominations: Mapped[Optional[str]] = mapped_column(Text)  # JSON {"10000": 3, …}
    # Fixed when the shift closes: {"cash": 12300, "wechat": …}
    totals_json: Mapped[Optional[str]] = mapped_column(Text)

    till: Mapped[Till] = relationship()


class CashMovementKind(StrEnum):
    CASH_IN = "in"
    CASH_OUT = "out"


class CashMovement(Base):
    __tablename__ = "cash_movements"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id"), index=True)
    kind: Mapped[CashMovementKind] = mapped_column(db_enum(CashMovementKind, "cash_movement_kind"))
    amount_fen: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Channel(StrEnum):
    HALL = "hall"      # 专馆
    KIOSK = "kiosk"    # 专柜
    GROUP = "group"    # 团购


class BuyerType(StrEnum):
    UNION = "union"            # 工会福利
    ENTERPRISE = "enterprise"  # 企业认购
    CANTEEN = "canteen"        # 机关饭堂团购
    OTHER = "other"


class SaleStatus(StrEnum):
    COMPLETED = "completed"
    VOIDED = "voided"


class PaymentMethod(StrEnum):
    CASH = "cash"
    WECHAT = "wechat"
    ALIPAY = "alipay"
    UNIONPAY = "unionpay"
    UNION_CARD = "union_card"      # union welfare card (工会卡)
    VOUCHER = "voucher"
    BANK_TRANSFER = "bank_transfer"  # group orders on account


class Sale(Base):
    __tablename__ = "sales"
    __table_args__ = (
        UniqueConstraint("kiosk_id", "txn_id"),
        CheckConstraint("total_fen >= 0", name="total_non_negative"),
        CheckConstraint("discount_fen >= 0 AND rounding_fen >= 0", name="reductions_non_negative"),
        CheckConstraint("subtotal_fen - discount_fen - rounding_fen = total_fen", name="totals_add_up"),
        Index("ix_sales_local_date_channel", "local_date", "channel"),
        Index("ix_sales_till_local_date", "till_id", "local_date"),
        # The quick keys and the search's "most sold": the last 30 days' completed sales.
        Index("ix_sales_local_date_status", "local_date", "status", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_no: Mapped[str] = mapped_column(String(40), unique=True)
    channel: Mapped[Channel] = mapped_column(db_enum(Channel, "channel"))
    status: Mapped[SaleStatus] = mapped_column(db_enum(SaleStatus, "sale_status"), default=SaleStatus.COMPLETED)
    client_sale_id: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    kiosk_id: Mapped[Optional[int]] = mapped_column(ForeignKey("kiosks.id"), index=True)
    txn_id: Mapped[Optional[str]] = mapped_column(String(64))
    # Fingerprint of what the sender sent, to tell a duplicate from a conflict.
    content_hash: Mapped[str] = mapped_column(String(64))
    till_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tills.id"))
    shift_id: Mapped[Optional[int]] = mapped_column(ForeignKey("shifts.id"), index=True)
    # A hall sale that reached the server after its shift had closed: kept, and shown to the manager.
    after_shift_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    # A sale made offline that the server recorded at the price the till charged, which was not the
    # catalogue's when it arrived (pos.sales.offline): kept, and shown to the manager.
    price_differs: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cashier_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    buyer_type: Mapped[Optional[BuyerType]] = mapped_column(db_enum(BuyerType, "buyer_type"))
    group_order_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    sold_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    local_date: Mapped[dt.date] = mapped_column(Date)  # Asia/Shanghai day of sold_at
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    subtotal_fen: Mapped[int] = mapped_column(Integer)
    discount_fen: Mapped[int] = mapped_column(Integer, default=0)
    rounding_fen: Mapped[int] = mapped_column(Integer, default=0)
    total_fen: Mapped[int] = mapped_column(Integer)
    voided_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    voided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    reprint_count: Mapped[int] = mapped_column(Integer, default=0)
    # When the first print of this (cash) sale opened the drawer: set once, by a conditional UPDATE,
    # so repeating the first print never opens the drawer again (pos.hall.printing).
    drawer_kicked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    lines: Mapped[list["SaleLine"]] = relationship(
        back_populates="sale", order_by="SaleLine.line_no", cascade="all, delete-orphan"
    )
    payments: Mapped[list["Payment"]] = relationship(
        back_populates="sale", order_by="Payment.id", cascade="all, delete-orphan"
    )


class SaleLine(Base):
    """One product on a sale, with the net amount the customer paid for it and a snapshot of its
    certification and origin on the sale's local date (editing a product later never rewrites
    history)."""

    __tablename__ = "sale_lines"
    __table_args__ = (
        UniqueConstraint("sale_id", "line_no"),
        CheckConstraint("qty_milli > 0", name="qty_positive"),
        CheckConstraint("unit_price_fen >= 0", name="price_non_negative"),
        CheckConstraint("gross_fen - discount_fen = net_fen", name="net_adds_up"),
        CheckConstraint("net_fen >= 0", name="net_non_negative"),
        Index("ix_sale_lines_product", "product_id"),
        Index("ix_sale_lines_supplier", "supplier_id"),
        # Covers the quick keys' read: a sale's products without reading its lines.
        Index("ix_sale_lines_sale_product", "sale_id", "product_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    slot: Mapped[Optional[str]] = mapped_column(String(8))  # counter slot, when sold by a counter
    qty_milli: Mapped[int] = mapped_column(Integer)
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    gross_fen: Mapped[int] = mapped_column(Integer)
    # Line discount + its share of the order discount + its share of cash rounding.
    discount_fen: Mapped[int] = mapped_column(Integer, default=0)
    net_fen: Mapped[int] = mapped_column(Integer)
    vat: Mapped[str] = mapped_column(String(8))
    # Snapshot on the sale's local date
    certified: Mapped[bool] = mapped_column(Boolean)
    certificate_no: Mapped[Optional[str]] = mapped_column(String(60))
    supplier_id: Mapped[Optional[int]] = mapped_column(ForeignKey("suppliers.id"))
    supplier_name: Mapped[Optional[str]] = mapped_column(String(120))
    origin_county: Mapped[Optional[str]] = mapped_column(String(60))
    origin_county_code: Mapped[Optional[str]] = mapped_column(String(6))
    origin_township: Mapped[Optional[str]] = mapped_column(String(60))
    origin_village: Mapped[Optional[str]] = mapped_column(String(60))
    # The product's cost price × quantity at sale time, for the gross margin (None: cost unknown).
    cost_fen: Mapped[Optional[int]] = mapped_column(Integer)
    # The catalogue price when the line was recorded, kept only when the till charged another one
    # (an offline sale at an old price; unit_price_fen is what was paid).
    list_price_fen: Mapped[Optional[int]] = mapped_column(Integer)

    sale: Mapped[Sale] = relationship(back_populates="lines")


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("change_fen >= 0", name="change_non_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id", ondelete="CASCADE"), index=True)
    method: Mapped[PaymentMethod] = mapped_column(db_enum(PaymentMethod, "payment_method"))
    amount_fen: Mapped[int] = mapped_column(Integer)        # what counts towards the sale
    tendered_fen: Mapped[Optional[int]] = mapped_column(Integer)  # cash handed over
    change_fen: Mapped[int] = mapped_column(Integer, default=0)
    ref: Mapped[Optional[str]] = mapped_column(String(80))
    # A payment-code payment (issue 15): the confirmed attempt (pos.payments.attempts); ref is then
    # the provider's transaction id.
    attempt_id: Mapped[Optional[int]] = mapped_column(ForeignKey("payment_attempts.id"), index=True)

    sale: Mapped[Sale] = relationship(back_populates="payments")


class Refund(Base):
    """A refund references the original sale; it counts in the period in which it happens."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("total_fen > 0", name="total_positive"),
        Index("ix_refunds_local_date", "local_date"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    refund_no: Mapped[str] = mapped_column(String(40), unique=True)
    client_refund_id: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id"), index=True)
    shift_id: Mapped[Optional[int]] = mapped_column(ForeignKey("shifts.id"), index=True)
    till_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tills.id"))
    refunded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    local_date: Mapped[dt.date] = mapped_column(Date)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(200))
    method: Mapped[PaymentMethod] = mapped_column(db_enum(PaymentMethod, "payment_method"))
    total_fen: Mapped[int] = mapped_column(Integer)
    # A refund of a payment-code payment goes back through the provider (pos.payments.service):
    # the attempt it refunds, our refund number, and "pending" until the provider says "success"
    # (retried by the tick). None: an ordinary refund (cash or a manual tender).
    attempt_id: Mapped[Optional[int]] = mapped_column(ForeignKey("payment_attempts.id"), index=True)
    out_refund_no: Mapped[Optional[str]] = mapped_column(String(32), unique=True)
    provider_state: Mapped[Optional[str]] = mapped_column(String(12))

    lines: Mapped[list["RefundLine"]] = relationship(back_populates="refund", cascade="all, delete-orphan")


class RefundLine(Base):
    __tablename__ = "refund_lines"
    __table_args__ = (
        CheckConstraint("qty_milli > 0", name="qty_positive"),
        CheckConstraint("amount_fen >= 0", name="amount_non_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id", ondelete="CASCADE"), index=True)
    sale_line_id: Mapped[int] = mapped_column(ForeignKey("sale_lines.id"), index=True)
    qty_milli: Mapped[int] = mapped_column(Integer)
    amount_fen: Mapped[int] = mapped_column(Integer)
    back_to_stock: Mapped[bool] = mapped_column(Boolean, default=True)

    refund: Mapped[Refund] = relationship(back_populates="lines")


class InvoiceStatus(StrEnum):
    REQUESTED = "requested"
    ISSUED = "issued"
    REJECTED = "rejected"


class InvoiceRequest(Base):
    """A customer's request for an electronic invoice (电子发票), filed from the public receipt page
    and handled by the hall's finance staff. At most one open (requested) request per sale."""

    __tablename__ = "invoice_requests"
    __table_args__ = (
        Index(
            "uq_invoice_requests_one_open_per_sale",
            "sale_id",
            unique=True,
            sqlite_where=text("status = 'requested'"),
            postgresql_where=text("status = 'requested'"),
        ),
        Index("ix_invoice_requests_status_created", "status", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))           # 发票抬头
    tax_id: Mapped[Optional[str]] = mapped_column(String(18))  # 统一社会信用代码; None for individuals
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[InvoiceStatus] = mapped_column(db_enum(InvoiceStatus, "invoice_status"),
                                                  default=InvoiceStatus.REQUESTED)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    handled_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    invoice_no: Mapped[Optional[str]] = mapped_column(String(40))
    note: Mapped[Optional[str]] = mapped_column(Text)  # the reason of a rejection


class ReceiptBlock(Base):
    """Receipt numbers ``first_no`` … ``last_no`` of a till's local day, reserved (while online)
    from the same counter as the server's own receipt numbers, so that a receipt printed offline
    carries its final number (pos.sales.receipt_blocks). A number is used once a sale carries it:
    sales.receipt_no is unique."""

    __tablename__ = "receipt_blocks"
    __table_args__ = (
        CheckConstraint("first_no >= 1 AND last_no >= first_no", name="numbers_in_order"),
        Index("ix_receipt_blocks_till_id_day", "till_id", "day"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    till_id: Mapped[int] = mapped_column(ForeignKey("tills.id"))
    day: Mapped[dt.date] = mapped_column(Date)  # the local day the numbers belong to
    first_no: Mapped[int] = mapped_column(Integer)
    last_no: Mapped[int] = mapped_column(Integer)
    reserved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reserved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
