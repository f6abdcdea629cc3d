"""Group purchases (团购): buyer organisations, their agreed prices, orders delivered from the
logistics base, and payments on account.

What was delivered and returned is not stored here: a delivery *is* a sale (channel ``group``,
``sales.group_order_id``) and a return *is* a refund of it, so the statistics count them exactly
like every other channel. These tables keep what only an order has: what was ordered, what is
reserved and picked, and what the buyer paid.
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.base import Base, StrEnum, UTCDateTime, db_enum
from inventory.localtime import utcnow
from pos.models import BuyerType, PaymentMethod


class Buyer(Base):
    """An organisation that buys in bulk: a union (工会), a firm, a government canteen …"""

    __tablename__ = "buyers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    buyer_type: Mapped[BuyerType] = mapped_column(db_enum(BuyerType, "buyer_type"))
    uscc: Mapped[Optional[str]] = mapped_column(String(18), unique=True)   # 统一社会信用代码
    town: Mapped[Optional[str]] = mapped_column(String(40))
    address: Mapped[Optional[str]] = mapped_column(String(200))            # default delivery address
    contact_name: Mapped[Optional[str]] = mapped_column(String(40))
    contact_phone: Mapped[Optional[str]] = mapped_column(String(30))
    invoice_title: Mapped[Optional[str]] = mapped_column(String(120))      # 发票抬头
    tax_id: Mapped[Optional[str]] = mapped_column(String(20))              # 纳税人识别号
    note: Mapped[Optional[str]] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BuyerPrice(Base):
    """A price agreed with one buyer for one product (tax-inclusive, per unit of the product)."""

    __tablename__ = "buyer_prices"
    __table_args__ = (CheckConstraint("unit_price_fen >= 0", name="price_non_negative"),)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    unit_price_fen: Mapped[int] = mapped_column(Integer)


class GroupOrderStatus(StrEnum):
    DRAFT = "draft"            # being entered; changes nothing
    CONFIRMED = "confirmed"    # stock reserved at the logistics base
    PICKED = "picked"          # goods moved out of the base to dispatch, lot by lot; deliveries may follow
    DELIVERED = "delivered"    # everything delivered (or the rest closed); money may be owed
    PAID = "paid"              # delivered and the balance is zero
    CANCELLED = "cancelled"


class GroupOrder(Base):
    __tablename__ = "group_orders"
    __table_args__ = (
        Index("ix_group_orders_status_delivery", "status", "delivery_date"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_no: Mapped[str] = mapped_column(String(40), unique=True)       # TG-20261126-0001
    # Sent by the form (or the import) that created the order: submitting it twice makes one order.
    client_order_id: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    buyer_type: Mapped[BuyerType] = mapped_column(db_enum(BuyerType, "buyer_type"))  # the buyer's, when ordered
    status: Mapped[GroupOrderStatus] = mapped_column(db_enum(GroupOrderStatus, "group_order_status"),
                                                     default=GroupOrderStatus.DRAFT)
    delivery_date: Mapped[dt.date] = mapped_column(Date)                  # planned, Asia/Shanghai
    delivery_address: Mapped[Optional[str]] = mapped_column(String(200))
    contact: Mapped[Optional[str]] = mapped_column(String(80))
    note: Mapped[Optional[str]] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20), default="manual")     # manual | import
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    picked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)   # delivered, paid or cancelled
    cancel_reason: Mapped[Optional[str]] = mapped_column(String(200))

    buyer: Mapped[Buyer] = relationship()
    lines: Mapped[list["GroupOrderLine"]] = relationship(
        back_populates="order", order_by="GroupOrderLine.line_no", cascade="all, delete-orphan")
    payments: Mapped[list["GroupPayment"]] = relationship(
        back_populates="order", order_by="GroupPayment.id", cascade="all, delete-orphan")


class GroupOrderLine(Base):
    """One product of an order. ``reserved_milli`` is this line's part of the base's reserved
    stock (``stock_levels.reserved_milli``); ``picked_milli`` what was moved out to dispatch."""

    __tablename__ = "group_order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        UniqueConstraint("order_id", "product_id"),
        CheckConstraint("qty_milli > 0", name="qty_positive"),
        CheckConstraint("unit_price_fen >= 0", name="price_non_negative"),
        CheckConstraint("reserved_milli >= 0 AND picked_milli >= 0", name="stock_non_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("group_orders.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    qty_milli: Mapped[int] = mapped_column(Integer)
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    list_price_fen: Mapped[int] = mapped_column(Integer)     # the catalogue price when ordered
    price_source: Mapped[str] = mapped_column(String(10))    # list | agreed | manual
    reserved_milli: Mapped[int] = mapped_column(Integer, default=0)
    picked_milli: Mapped[int] = mapped_column(Integer, default=0)

    order: Mapped[GroupOrder] = relationship(back_populates="lines")
    picks: Mapped[list["GroupOrderPick"]] = relationship(
        back_populates="line", order_by="GroupOrderPick.id", cascade="all, delete-orphan")


class GroupOrderPick(Base):
    """The lots picked for a line (first expiry first out), frozen when picked; deliveries take
    exactly these lots, so the delivery note names the batches the buyer received."""

    __tablename__ = "group_order_picks"
    __table_args__ = (
        CheckConstraint("qty_milli > 0", name="qty_positive"),
        CheckConstraint("delivered_milli >= 0 AND returned_milli >= 0", name="counts_non_negative"),
        CheckConstraint("delivered_milli + returned_milli <= qty_milli", name="within_pick"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("group_order_lines.id", ondelete="CASCADE"), index=True)
    lot_id: Mapped[Optional[int]] = mapped_column(ForeignKey("lots.id"))
    qty_milli: Mapped[int] = mapped_column(Integer)
    delivered_milli: Mapped[int] = mapped_column(Integer, default=0)
    returned_milli: Mapped[int] = mapped_column(Integer, default=0)   # taken back to the base undelivered

    line: Mapped[GroupOrderLine] = relationship(back_populates="picks")


class GroupDelivery(Base):
    """What only a delivery has beyond its sale (``sale_id``): who received the goods."""

    __tablename__ = "group_deliveries"
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("group_orders.id"), index=True)
    received_by: Mapped[Optional[str]] = mapped_column(String(40))   # 收货人, as signed on the 送货单


class GroupPayment(Base):
    """Money received on account for an order (usually a bank transfer, with its reference), or
    paid back to the buyer (negative) after a return."""

    __tablename__ = "group_payments"
    __table_args__ = (CheckConstraint("amount_fen <> 0", name="amount_not_zero"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("group_orders.id"), index=True)
    client_payment_id: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    method: Mapped[PaymentMethod] = mapped_column(db_enum(PaymentMethod, "payment_method"))
    ref: Mapped[Optional[str]] = mapped_column(String(80))     # the bank transfer's reference
    received_on: Mapped[dt.date] = mapped_column(Date)         # Asia/Shanghai
    note: Mapped[Optional[str]] = mapped_column(String(200))
    recorded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    order: Mapped[GroupOrder] = relationship(back_populates="payments")
