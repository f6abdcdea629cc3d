"""Counter registry and planograms."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Integer, String, UniqueConstraint  # ok-float: GPS and temperature only
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.base import Base, StrEnum, UTCDateTime, db_enum
from inventory.localtime import utcnow
from inventory.models import Location, Product


class KioskStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    RETIRED = "retired"


class SiteType(StrEnum):
    GOVERNMENT = "government"  # 镇政府、机关
    HOSPITAL = "hospital"
    SCHOOL = "school"
    FACTORY = "factory"
    CANTEEN = "canteen"
    OTHER = "other"


class Kiosk(Base):
    __tablename__ = "kiosks"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)  # K001 … K126
    site_name: Mapped[str] = mapped_column(String(120))
    host_org: Mapped[str] = mapped_column(String(120))
    site_type: Mapped[SiteType] = mapped_column(db_enum(SiteType, "site_type"))
    town: Mapped[str] = mapped_column(String(30), index=True)
    address: Mapped[str] = mapped_column(String(200))
    latitude: Mapped[Optional[float]] = mapped_column(Float)
    longitude: Mapped[Optional[float]] = mapped_column(Float)
    food_filing_no: Mapped[Optional[str]] = mapped_column(String(40))  # 食品经营备案编号
    status: Mapped[KioskStatus] = mapped_column(db_enum(KioskStatus, "kiosk_status"), default=KioskStatus.ACTIVE)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), unique=True)
    token_hash: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    token_issued_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_heartbeat_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    last_sale_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    door_open: Mapped[bool] = mapped_column(Boolean, default=False)
    temperature_c: Mapped[Optional[float]] = mapped_column(Float)
    last_error: Mapped[Optional[str]] = mapped_column(String(200))

    location: Mapped[Location] = relationship()
    slots: Mapped[list["PlanogramSlot"]] = relationship(
        back_populates="kiosk", order_by="PlanogramSlot.slot", cascade="all, delete-orphan"
    )


class PlanogramSlot(Base):
    __tablename__ = "planogram_slots"
    __table_args__ = (
        UniqueConstraint("kiosk_id", "slot"),
        CheckConstraint("par > 0", name="par_positive"),
        CheckConstraint("price_fen >= 0", name="price_non_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id", ondelete="CASCADE"), index=True)
    slot: Mapped[str] = mapped_column(String(8))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    par: Mapped[int] = mapped_column(Integer)  # capacity in pieces
    price_fen: Mapped[int] = mapped_column(Integer)

    kiosk: Mapped[Kiosk] = relationship(back_populates="slots")
    product: Mapped[Product] = relationship()
