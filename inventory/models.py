"""Catalogue and stock tables. The database enforces what it can: unique skus and barcodes,
non-negative prices, allowed enum values, foreign keys."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    or_,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, StrEnum, UTCDateTime, db_enum
from .localtime import utcnow


class Unit(StrEnum):
    PIECE = "piece"
    KG = "kg"


def is_weighed(unit, sold_by_weight) -> bool:
    """The one rule for weighed goods: their quantities are thousandths of a kg (any number of them);
    every other product is counted in whole pieces. ``Product.weighed`` says it of a product."""
    return unit == Unit.KG or unit == "kg" or bool(sold_by_weight)


class VatRate(StrEnum):
    AGRICULTURAL_9 = "9"
    GENERAL_13 = "13"
    EXEMPT = "exempt"


class BarcodeKind(StrEnum):
    EAN13 = "ean13"
    EAN8 = "ean8"
    UPCA = "upca"
    INTERNAL = "internal"


class LocationKind(StrEnum):
    BASE = "base"                # logistics base (黔货出山大湾区物流基地)
    HALL_FLOOR = "hall_floor"
    HALL_STORE = "hall_store"
    KIOSK = "kiosk"              # each consumption counter
    VAN = "van"                  # a restocker's van while on a route
    DISPATCH = "dispatch"        # goods picked for group orders, waiting for delivery (团购待发区)
    SUPPLIER = "supplier"        # virtual: where received goods come from
    CUSTOMER = "customer"        # virtual: where sold goods go
    LOSS = "loss"                # virtual: write-offs, expiry, damage
    COUNT_ADJUSTMENT = "count_adjustment"  # virtual: differences found by stock counts

    @property
    def is_virtual(self) -> bool:
        return self in VIRTUAL_LOCATION_KINDS


VIRTUAL_LOCATION_KINDS = frozenset(
    {LocationKind.SUPPLIER, LocationKind.CUSTOMER, LocationKind.LOSS, LocationKind.COUNT_ADJUSTMENT}
)


class MoveReason(StrEnum):
    RECEIPT = "receipt"
    SALE = "sale"
    REFUND = "refund"
    TRANSFER = "transfer"
    REFILL = "refill"
    COUNT_ADJUSTMENT = "count_adjustment"
    WRITE_OFF = "write_off"
    EXPIRY = "expiry"
    OPENING = "opening"          # opening balances when a site starts using the system


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    sort_order: Mapped[int] = mapped_column(default=0)


class Supplier(Base):
    """A cooperative or firm. Origin down to the village, with the county's administrative code,
    so figures can be split into produce from the paired county and from elsewhere."""

    __tablename__ = "suppliers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    credit_code: Mapped[Optional[str]] = mapped_column(String(18), unique=True)  # 统一社会信用代码
    province: Mapped[str] = mapped_column(String(40), default="贵州省")
    origin_county: Mapped[Optional[str]] = mapped_column(String(60))
    origin_county_code: Mapped[Optional[str]] = mapped_column(String(6), index=True)
    origin_township: Mapped[Optional[str]] = mapped_column(String(60))
    origin_village: Mapped[Optional[str]] = mapped_column(String(60))
    contact_name: Mapped[Optional[str]] = mapped_column(String(60))
    contact_phone: Mapped[Optional[str]] = mapped_column(String(30))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


certificate_products = Table(
    "certificate_products",
    Base.metadata,
    Column("certificate_id", ForeignKey("certificates.id", ondelete="CASCADE"), primary_key=True),
    Column("product_id", ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_fen >= 0", name="price_non_negative"),
        CheckConstraint("cost_fen IS NULL OR cost_fen >= 0", name="cost_non_negative"),
        CheckConstraint("shelf_life_days IS NULL OR shelf_life_days > 0", name="shelf_life_positive"),
        CheckConstraint("unit = 'kg' OR NOT sold_by_weight", name="weighed_goods_in_kg"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120), index=True)
    pinyin_initials: Mapped[str] = mapped_column(String(120), default="", index=True)
    category_id: Mapped[Optional[int]] = mapped_column(ForeignKey("categories.id"))
    supplier_id: Mapped[Optional[int]] = mapped_column(ForeignKey("suppliers.id"), index=True)
    unit: Mapped[Unit] = mapped_column(db_enum(Unit, "unit"), default=Unit.PIECE)
    sold_by_weight: Mapped[bool] = mapped_column(Boolean, default=False)
    price_fen: Mapped[int] = mapped_column(Integer)
    cost_fen: Mapped[Optional[int]] = mapped_column(Integer)
    vat: Mapped[VatRate] = mapped_column(db_enum(VatRate, "vat_rate"), default=VatRate.AGRICULTURAL_9)
    vat_exemption_code: Mapped[Optional[str]] = mapped_column(String(20))
    tax_code: Mapped[Optional[str]] = mapped_column(String(19))  # 税收分类编码
    shelf_life_days: Mapped[Optional[int]] = mapped_column(Integer)
    # Product-level origin overrides the supplier's (a trader may buy from several villages).
    origin_county: Mapped[Optional[str]] = mapped_column(String(60))
    origin_county_code: Mapped[Optional[str]] = mapped_column(String(6))
    origin_township: Mapped[Optional[str]] = mapped_column(String(60))
    origin_village: Mapped[Optional[str]] = mapped_column(String(60))
    scale_plu: Mapped[Optional[int]] = mapped_column(Integer, unique=True)  # code on scale labels
    photo_path: Mapped[Optional[str]] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Bumped (inventory.catalogue_changes) whenever what a till sells from changes: the product,
    # its barcodes or a certificate covering it. The tills' delta catalogue asks for "> cursor".
    catalogue_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0", index=True)

    category: Mapped[Optional[Category]] = relationship()
    supplier: Mapped[Optional[Supplier]] = relationship()
    barcodes: Mapped[list["Barcode"]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="Barcode.id"
    )
    certificates: Mapped[list["Certificate"]] = relationship(
        secondary=certificate_products, back_populates="products"
    )

    @hybrid_property
    def weighed(self) -> bool:
        return is_weighed(self.unit, self.sold_by_weight)

    @weighed.inplace.expression
    @classmethod
    def _weighed_in_sql(cls):
        return or_(cls.unit == Unit.KG, cls.sold_by_weight.is_(True))

    def origin(self) -> dict[str, Optional[str]]:
        """The origin that a sale line snapshots: the product's own, else its supplier's."""
        s = self.supplier
        if self.origin_county:
            return {
                "county": self.origin_county,
                "county_code": self.origin_county_code,
                "township": self.origin_township,
                "village": self.origin_village,
            }
        return {
            "county": s.origin_county if s else None,
            "county_code": s.origin_county_code if s else None,
            "township": s.origin_township if s else None,
            "village": s.origin_village if s else None,
        }


class Barcode(Base):
    __tablename__ = "barcodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[BarcodeKind] = mapped_column(db_enum(BarcodeKind, "barcode_kind"))
    product: Mapped[Product] = relationship(back_populates="barcodes")


class PriceChange(Base):
    __tablename__ = "price_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    old_price_fen: Mapped[int] = mapped_column(Integer)
    new_price_fen: Mapped[int] = mapped_column(Integer)
    changed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Certificate(Base):
    """A poverty-alleviation product certificate (扶贫产品认定证书). Valid from/to are the hall's
    local calendar dates, both inclusive."""

    __tablename__ = "certificates"
    __table_args__ = (CheckConstraint("valid_to >= valid_from", name="valid_range"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(60), unique=True)
    issuer: Mapped[str] = mapped_column(String(120))
    supplier_id: Mapped[Optional[int]] = mapped_column(ForeignKey("suppliers.id"), index=True)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date] = mapped_column(Date)
    scan_path: Mapped[Optional[str]] = mapped_column(String(200))
    note: Mapped[Optional[str]] = mapped_column(Text)

    supplier: Mapped[Optional[Supplier]] = relationship()
    products: Mapped[list[Product]] = relationship(
        secondary=certificate_products, back_populates="certificates"
    )


class Location(Base):
    __tablename__ = "locations"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[LocationKind] = mapped_column(db_enum(LocationKind, "location_kind"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def is_virtual(self) -> bool:
        return self.kind.is_virtual


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("product_id", "lot_no"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    lot_no: Mapped[str] = mapped_column(String(40))
    produced_on: Mapped[Optional[dt.date]] = mapped_column(Date)
    expires_on: Mapped[Optional[dt.date]] = mapped_column(Date, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    product: Mapped[Product] = relationship()


def first_expiry_first(*then):
    """ORDER BY for first-expiry-first-out (FEFO): the lot that expires soonest first, lots without
    an expiry date last, then ``then`` (usually an id) so that the order is total."""
    return (Lot.expires_on.is_(None), Lot.expires_on, *then)


class StockMove(Base):
    """One line of the ledger: a quantity of a product (and lot) from one location to another.
    Posted moves are never edited or deleted; a mistake is reversed by a new move."""

    __tablename__ = "stock_moves"
    __table_args__ = (
        CheckConstraint("qty_milli > 0", name="qty_positive"),
        CheckConstraint("from_location_id <> to_location_id", name="distinct_locations"),
        Index("ix_stock_moves_product_at", "product_id", "moved_at"),
        Index("ix_stock_moves_ref", "ref_type", "ref_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    lot_id: Mapped[Optional[int]] = mapped_column(ForeignKey("lots.id"))
    from_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    to_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    qty_milli: Mapped[int] = mapped_column(Integer)
    reason: Mapped[MoveReason] = mapped_column(db_enum(MoveReason, "move_reason"))
    ref_type: Mapped[Optional[str]] = mapped_column(String(30))
    ref_id: Mapped[Optional[int]] = mapped_column(Integer)
    note: Mapped[Optional[str]] = mapped_column(String(200))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    moved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StockLevel(Base):
    """Quantity on hand per (location, product) at REAL locations, kept by the ledger in the same
    transaction with atomic increments. Virtual locations keep no rows: their levels are the sums
    of their moves (inventory.ledger.level), and with them all locations of a product add up to
    zero."""

    __tablename__ = "stock_levels"
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True, index=True)
    qty_milli: Mapped[int] = mapped_column(Integer, default=0)
    # Held for confirmed group orders: guarded moves (transfers, refills, write-offs) may not take
    # the level below it. Kept by ``inventory.reservations.reserve`` / ``release`` with atomic updates.
    reserved_milli: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LotLevel(Base):
    """Quantity on hand per (location, lot), for first-expiry-first-out and expiry lists."""

    __tablename__ = "lot_levels"
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), primary_key=True, index=True)
    qty_milli: Mapped[int] = mapped_column(Integer, default=0)


class ReorderPoint(Base):
    __tablename__ = "reorder_points"
    __table_args__ = (CheckConstraint("min_qty_milli >= 0", name="min_non_negative"),)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    min_qty_milli: Mapped[int] = mapped_column(Integer)


class AlertKind(StrEnum):
    BELOW_REORDER = "below_reorder"
    NEGATIVE_STOCK = "negative_stock"
    EXPIRING_LOT = "expiring_lot"
    CERTIFICATE_LAPSING = "certificate_lapsing"
    PRICE_MISMATCH = "price_mismatch"
    NOT_IN_PLANOGRAM = "not_in_planogram"
    KIOSK_OFFLINE = "kiosk_offline"
    KIOSK_ERROR = "kiosk_error"
    LATE_SALE = "late_sale"      # a sale for a till whose shift had closed


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AlertKind] = mapped_column(db_enum(AlertKind, "alert_kind"), index=True)
    message: Mapped[str] = mapped_column(String(300))
    location_id: Mapped[Optional[int]] = mapped_column(ForeignKey("locations.id"))
    product_id: Mapped[Optional[int]] = mapped_column(ForeignKey("products.id"))
    ref_type: Mapped[Optional[str]] = mapped_column(String(30))
    ref_id: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime, index=True)
    resolved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))


class AuditEvent(Base):
    """Who did what, before and after, when. Written by every package through inventory.audit."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[Optional[str]] = mapped_column(String(40))
    before: Mapped[Optional[str]] = mapped_column(Text)  # JSON
    after: Mapped[Optional[str]] = mapped_column(Text)   # JSON
    ip: Mapped[Optional[str]] = mapped_column(String(45))


class Setting(Base):
    """Hall settings (paired county, 抹零, discount limit …) as text, read through pos.hall.settings."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# The catalogue's change tracking listens to every session (imported last: it needs the models).
from . import catalogue_changes  # noqa: E402,F401
