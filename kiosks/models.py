"""Counter registry and planograms."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import Boolean, CheckConstraint, Date, Float, ForeignKey, Integer, String, UniqueConstraint  # ok-float: GPS and temperature only
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.base import Base, StrEnum, UTCDateTime, db_enum
from inventory.localtime import utcnow
from inventory.models import Location, Lot, Product


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


# --- refill routes ---------------------------------------------------------------------------
#
# A route is planned (stops in order, a load plan per slot, lots to pull, a pick list at the base),
# then loaded (the pick list moves base → van and is FROZEN: the stored pick rows and each stop's
# load plan are what was put in the van; later planogram or stock changes never rewrite them),
# then each stop is confirmed once (the moves of the visit are posted together), then finished
# (what is left in the van goes back to the base).


class RefillStatus(StrEnum):
    PLANNED = "planned"
    LOADED = "loaded"
    DONE = "done"
    CANCELLED = "cancelled"


class StopStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"


class PullReason(StrEnum):
    EXPIRED = "expired"
    DAMAGED = "damaged"


class RefillRoute(Base):
    __tablename__ = "refill_routes"
    __table_args__ = (CheckConstraint("expiring_within_days >= 0", name="expiring_days_non_negative"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    planned_for: Mapped[dt.date] = mapped_column(Date, index=True)  # the hall's local day of the visits
    status: Mapped[RefillStatus] = mapped_column(db_enum(RefillStatus, "refill_status"), default=RefillStatus.PLANNED)
    restocker_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    base_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    van_location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    expiring_within_days: Mapped[int] = mapped_column(Integer, default=3)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    loaded_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    loaded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    finished_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))

    base_location: Mapped[Location] = relationship(foreign_keys=[base_location_id])
    van_location: Mapped[Location] = relationship(foreign_keys=[van_location_id])
    stops: Mapped[list["RefillStop"]] = relationship(
        back_populates="route", order_by="RefillStop.seq", cascade="all, delete-orphan"
    )
    picks: Mapped[list["RefillPick"]] = relationship(
        back_populates="route", order_by="RefillPick.id", cascade="all, delete-orphan"
    )


class RefillStop(Base):
    __tablename__ = "refill_stops"
    __table_args__ = (UniqueConstraint("route_id", "seq"), UniqueConstraint("route_id", "kiosk_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("refill_routes.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id"), index=True)
    status: Mapped[StopStatus] = mapped_column(db_enum(StopStatus, "stop_status"), default=StopStatus.PENDING)
    visited_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    visited_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))

    route: Mapped[RefillRoute] = relationship(back_populates="stops")
    kiosk: Mapped[Kiosk] = relationship()
    lines: Mapped[list["RefillLine"]] = relationship(
        back_populates="stop", order_by="RefillLine.slot", cascade="all, delete-orphan"
    )
    pulls: Mapped[list["RefillPull"]] = relationship(
        back_populates="stop", order_by="RefillPull.id", cascade="all, delete-orphan"
    )


class RefillLine(Base):
    """One slot of a stop: the plan (par − on hand when planned) and, once visited, what was
    recorded, counted and loaded."""

    __tablename__ = "refill_lines"
    __table_args__ = (
        UniqueConstraint("stop_id", "slot"),
        CheckConstraint("planned_load_milli >= 0", name="planned_load_non_negative"),
        CheckConstraint("counted_milli IS NULL OR counted_milli >= 0", name="counted_non_negative"),
        CheckConstraint("loaded_milli IS NULL OR loaded_milli >= 0", name="loaded_non_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    stop_id: Mapped[int] = mapped_column(ForeignKey("refill_stops.id", ondelete="CASCADE"), index=True)
    slot: Mapped[str] = mapped_column(String(8))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    par: Mapped[int] = mapped_column(Integer)                      # pieces, when planned
    on_hand_milli: Mapped[int] = mapped_column(Integer)            # at the counter, when planned
    need_milli: Mapped[int] = mapped_column(Integer)               # par − (on hand − planned pulls)
    planned_load_milli: Mapped[int] = mapped_column(Integer)       # need, capped by what the base had
    recorded_milli: Mapped[Optional[int]] = mapped_column(Integer)  # book level at the visit
    counted_milli: Mapped[Optional[int]] = mapped_column(Integer)
    loaded_milli: Mapped[Optional[int]] = mapped_column(Integer)

    stop: Mapped[RefillStop] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()


class RefillPull(Base):
    """A lot to take out of a counter: planned (expired or expiring by the visit) and/or pulled."""

    __tablename__ = "refill_pulls"
    __table_args__ = (
        CheckConstraint("planned_qty_milli >= 0", name="planned_non_negative"),
        CheckConstraint("pulled_qty_milli IS NULL OR pulled_qty_milli >= 0", name="pulled_non_negative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    stop_id: Mapped[int] = mapped_column(ForeignKey("refill_stops.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    lot_id: Mapped[Optional[int]] = mapped_column(ForeignKey("lots.id"))
    planned_qty_milli: Mapped[int] = mapped_column(Integer, default=0)
    pulled_qty_milli: Mapped[Optional[int]] = mapped_column(Integer)
    reason: Mapped[Optional[PullReason]] = mapped_column(db_enum(PullReason, "pull_reason"))

    stop: Mapped[RefillStop] = relationship(back_populates="pulls")
    product: Mapped[Product] = relationship()
    lot: Mapped[Optional[Lot]] = relationship()


class RefillPick(Base):
    """A line of the route's pick list at the base: a product and lot, the route's total. Frozen
    once the van is loaded."""

    __tablename__ = "refill_picks"
    __table_args__ = (CheckConstraint("qty_milli > 0", name="qty_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("refill_routes.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    lot_id: Mapped[Optional[int]] = mapped_column(ForeignKey("lots.id"))
    qty_milli: Mapped[int] = mapped_column(Integer)

    route: Mapped[RefillRoute] = relationship(back_populates="picks")
    product: Mapped[Product] = relationship()
    lot: Mapped[Optional[Lot]] = relationship()
