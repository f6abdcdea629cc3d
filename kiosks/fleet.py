"""The fleet of counters seen from the office: stock per slot, lots expiring in the counters,
and the dashboard figures. Every figure is an SQL aggregation (GROUP BY counter), never a loop
over sale lines in Python.

Two small rules live here and nowhere else: when a counter is offline (``is_offline``, and
``offline_where`` for SQL) and how full it is (``fill_percent`` over ``slot_stock_milli`` /
``slot_stock_sql``), for the dashboard, the counter page, the refill planner and the reports."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from inventory.alerts import hall_text
from inventory.models import (Alert, AlertKind, Location, Lot, LotLevel, MoveReason, Product, StockLevel,
                              StockMove)
from inventory.web import Page
from kiosks.models import Kiosk, KioskStatus, PlanogramSlot
from kiosks.registry import get_kiosk
from pos.models import Channel, Payment, Sale, SaleLine, SaleStatus


class SlotLevel(NamedTuple):
    kiosk_id: int
    code: str
    town: str
    slot: str
    product_id: int
    par: int               # pieces
    on_hand_milli: int     # stock level of the slot's product at the counter (0 when none)


class ExpiringLot(NamedTuple):
    kiosk_id: int
    product_id: int
    lot_id: int
    expires_on: dt.date
    qty_milli: int


def slot_levels(s: Session, kiosk_ids: Optional[list[int]] = None) -> list[SlotLevel]:
    """Every planogram slot with the stock on hand of its product at the counter's location, in
    one query (slots LEFT JOIN stock levels), ordered by counter code and slot."""
    stmt = (
        select(
            Kiosk.id, Kiosk.code, Kiosk.town, PlanogramSlot.slot, PlanogramSlot.product_id,
            PlanogramSlot.par, func.coalesce(StockLevel.qty_milli, 0),
        )
        .join(PlanogramSlot, PlanogramSlot.kiosk_id == Kiosk.id)
        .outerjoin(
            StockLevel,
            and_(StockLevel.location_id == Kiosk.location_id, StockLevel.product_id == PlanogramSlot.product_id),
        )
        .order_by(Kiosk.code, PlanogramSlot.slot)
    )
    if kiosk_ids is not None:
        stmt = stmt.where(Kiosk.id.in_(list(kiosk_ids)))
    return [SlotLevel(*row) for row in s.execute(stmt)]


def expiring_at_kiosks(s: Session, *, today: dt.date, within_days: int,
                       kiosk_ids: Optional[list[int]] = None) -> list[ExpiringLot]:
    """Lots on hand in counters that expire on or before ``today + within_days`` (already expired
    ones included), soonest first: (kiosk_id, product_id, lot_id, expires_on, qty_milli)."""
    last_day = today + dt.timedelta(days=int(within_days))
    stmt = (
        select(Kiosk.id, Lot.product_id, Lot.id, Lot.expires_on, LotLevel.qty_milli)
        .join(LotLevel, LotLevel.location_id == Kiosk.location_id)
        .join(Lot, Lot.id == LotLevel.lot_id)
        .where(LotLevel.qty_milli > 0, Lot.expires_on.is_not(None), Lot.expires_on <= last_day)
        .order_by(Lot.expires_on, Kiosk.code, Lot.product_id, Lot.id)
    )
    if kiosk_ids is not None:
        stmt = stmt.where(Kiosk.id.in_(list(kiosk_ids)))
    return [ExpiringLot(*row) for row in s.execute(stmt)]


# --- two small rules: offline and fill --------------------------------------------------------

OFFLINE_AFTER = dt.timedelta(hours=1)


def is_offline(kiosk_status, last_heartbeat_at: Optional[dt.datetime], now: dt.datetime) -> bool:
    """An active counter with no heartbeat for over an hour (or never) is offline; a paused or
    retired one never is."""
    if KioskStatus(kiosk_status) != KioskStatus.ACTIVE:
        return False
    return last_heartbeat_at is None or now - last_heartbeat_at > OFFLINE_AFTER


def offline_where(now: dt.datetime):
    """``is_offline`` as an SQL condition on Kiosk."""
    return and_(Kiosk.status == KioskStatus.ACTIVE,
                or_(Kiosk.last_heartbeat_at.is_(None), Kiosk.last_heartbeat_at < now - OFFLINE_AFTER))


def slot_stock_milli(on_hand_milli: int) -> int:
    """What a slot's stock level counts towards fill: a negative level (a sale that outran the
    books) counts as empty, not as minus."""
    return max(0, on_hand_milli)


def slot_stock_sql(on_hand):
    """``slot_stock_milli`` as an SQL expression over a stock level column."""
    return case((on_hand > 0, on_hand), else_=0)


def fill_percent(on_hand_milli: int, par_milli: int) -> Optional[int]:
    """Fill in whole percent, rounded down: Σ slot stock ÷ Σ par. None without a par (a counter
    without planogram has no fill: neither 0 % nor 100 %)."""
    return on_hand_milli * 100 // par_milli if par_milli else None


# --- the dashboard ------------------------------------------------------------------------------

COVER_WINDOW_DAYS = 14      # days of cover = on hand ÷ average daily units over the last 14 days
EXPIRY_SOON_DAYS = 3
OFFLINE_STATUS = "offline"  # a filter value beside the registry statuses

SORT_KEYS = ("code", "town", "today_fen", "month_fen", "fill", "empty", "cover", "expiring",
             "last_sale", "heartbeat", "alerts")


def _kiosk_sales_filter(first: dt.date, last: dt.date):
    return and_(Sale.channel == Channel.KIOSK, Sale.status == SaleStatus.COMPLETED, Sale.kiosk_id.is_not(None),
                Sale.local_date >= first, Sale.local_date <= last)


def fleet_overview(s: Session, *, today: dt.date, now: dt.datetime, town: Optional[str] = None,
                   status: Optional[str] = None, sort: str = "code", descending: bool = False,
                   expiring_within_days: int = EXPIRY_SOON_DAYS) -> list[dict]:
    """One row per counter with its figures, each figure an SQL aggregate grouped by counter:
    six queries for the whole fleet whatever its size. ``status`` is a registry status or
    "offline"; ``sort`` one of SORT_KEYS (counters without a figure sort last)."""
    month_start = today.replace(day=1)
    window_start = today - dt.timedelta(days=COVER_WINDOW_DAYS - 1)

    stmt = select(Kiosk).order_by(Kiosk.code)
    if town:
        stmt = stmt.where(Kiosk.town == town)
    if status and status != OFFLINE_STATUS:
        stmt = stmt.where(Kiosk.status == KioskStatus(status))
    kiosks = s.scalars(stmt).all()

    is_today = Sale.local_date == today
    sales = {
        row.kiosk_id: row for row in s.execute(
            select(
                Sale.kiosk_id,
                func.sum(case((is_today, 1), else_=0)).label("today_count"),
                func.sum(case((is_today, Sale.total_fen), else_=0)).label("today_fen"),
                func.sum(case((Sale.local_date >= month_start, 1), else_=0)).label("month_count"),
                func.sum(case((Sale.local_date >= month_start, Sale.total_fen), else_=0)).label("month_fen"),
                func.max(Sale.sold_at).label("last_sale_at"),
            )
            .where(_kiosk_sales_filter(min(month_start, window_start), today))
            .group_by(Sale.kiosk_id)
        )
    }
    sold_milli = dict(s.execute(
        select(Sale.kiosk_id, func.sum(SaleLine.qty_milli))
        .join(SaleLine, SaleLine.sale_id == Sale.id)
        .where(_kiosk_sales_filter(window_start, today))
        .group_by(Sale.kiosk_id)
    ).all())

    on_hand = func.coalesce(StockLevel.qty_milli, 0)
    slots = {
        row.kiosk_id: row for row in s.execute(
            select(
                PlanogramSlot.kiosk_id,
                func.count(PlanogramSlot.id).label("slots"),
                func.sum(PlanogramSlot.par).label("par"),
                func.sum(slot_stock_sql(on_hand)).label("on_hand_milli"),
                func.sum(case((on_hand < 1000, 1), else_=0)).label("empty"),
            )
            .join(Kiosk, Kiosk.id == PlanogramSlot.kiosk_id)
            .outerjoin(StockLevel, and_(StockLevel.location_id == Kiosk.location_id,
                                        StockLevel.product_id == PlanogramSlot.product_id))
            .group_by(PlanogramSlot.kiosk_id)
        )
    }

    soon = today + dt.timedelta(days=expiring_within_days)
    expiring = {
        row.kiosk_id: row for row in s.execute(
            select(
                Kiosk.id.label("kiosk_id"),
                func.sum(case((Lot.expires_on < today, 1), else_=0)).label("expired"),
                func.sum(case((Lot.expires_on >= today, 1), else_=0)).label("soon"),
                func.sum(case((Lot.expires_on < today, LotLevel.qty_milli), else_=0)).label("expired_milli"),
                func.sum(case((Lot.expires_on >= today, LotLevel.qty_milli), else_=0)).label("soon_milli"),
            )
            .join(LotLevel, LotLevel.location_id == Kiosk.location_id)
            .join(Lot, Lot.id == LotLevel.lot_id)
            .where(LotLevel.qty_milli > 0, Lot.expires_on.is_not(None), Lot.expires_on <= soon)
            .group_by(Kiosk.id)
        )
    }

    alerts = dict(s.execute(
        select(Kiosk.id, func.count(Alert.id))
        .join(Alert, or_(Alert.location_id == Kiosk.location_id,
                         and_(Alert.ref_type == ALERT_REF, Alert.ref_id == Kiosk.id)))
        .where(Alert.resolved_at.is_(None))
        .group_by(Kiosk.id)
    ).all())

    rows = []
    for k in kiosks:
        offline = is_offline(k.status, k.last_heartbeat_at, now)
        if status == OFFLINE_STATUS and not offline:
            continue
        sale = sales.get(k.id)
        slot = slots.get(k.id)
        exp = expiring.get(k.id)
        par_milli = (slot.par or 0) * 1000 if slot else 0
        on_hand_milli = int(slot.on_hand_milli or 0) if slot else 0
        sold = int(sold_milli.get(k.id) or 0)
        last_sale = max((t for t in (k.last_sale_at, sale.last_sale_at if sale else None) if t is not None),
                        default=None)
        rows.append({
            "id": k.id,
            "code": k.code,
            "site_name": k.site_name,
            "host_org": k.host_org,
            "town": k.town,
            "status": KioskStatus(k.status).value,
            "latitude": k.latitude,
            "longitude": k.longitude,
            "today_count": int(sale.today_count or 0) if sale else 0,
            "today_fen": int(sale.today_fen or 0) if sale else 0,
            "month_count": int(sale.month_count or 0) if sale else 0,
            "month_fen": int(sale.month_fen or 0) if sale else 0,
            "slots": int(slot.slots) if slot else 0,
            "par_milli": par_milli,
            "on_hand_milli": on_hand_milli,
            "fill_percent": fill_percent(on_hand_milli, par_milli),
            "empty_slots": int(slot.empty or 0) if slot else 0,
            "sold_milli_14d": sold,
            # days of cover at the recent rate, one decimal, in tenths of a day (None: nothing sold)
            "cover_tenths": (on_hand_milli * COVER_WINDOW_DAYS * 10 // sold) if sold else None,
            "expiring_lots": int(exp.soon or 0) if exp else 0,
            "expired_lots": int(exp.expired or 0) if exp else 0,
            "expiring_milli": int(exp.soon_milli or 0) if exp else 0,
            "expired_milli": int(exp.expired_milli or 0) if exp else 0,
            "last_sale_at": last_sale,
            "last_heartbeat_at": k.last_heartbeat_at,
            "offline": offline,
            "door_open": bool(k.door_open),
            "temperature_c": k.temperature_c,
            "last_error": k.last_error,
            "open_alerts": int(alerts.get(k.id) or 0),
        })
    return sort_rows(rows, sort, descending)


_SORT_VALUE = {
    "code": lambda r: r["code"],
    "town": lambda r: (r["town"], r["code"]),
    "today_fen": lambda r: r["today_fen"],
    "month_fen": lambda r: r["month_fen"],
    "fill": lambda r: r["fill_percent"],
    "empty": lambda r: r["empty_slots"],
    "cover": lambda r: r["cover_tenths"],
    "expiring": lambda r: r["expired_lots"] + r["expiring_lots"],
    "last_sale": lambda r: r["last_sale_at"],
    "heartbeat": lambda r: r["last_heartbeat_at"],
    "alerts": lambda r: r["open_alerts"],
}


def sort_rows(rows: list[dict], sort: str, descending: bool = False) -> list[dict]:
    """Sort the (already aggregated) rows by one of SORT_KEYS; rows without the figure go last,
    ties by code."""
    key = _SORT_VALUE.get(sort, _SORT_VALUE["code"])
    by_code = sorted(rows, key=lambda r: r["code"])
    present = [r for r in by_code if key(r) is not None]
    missing = [r for r in by_code if key(r) is None]
    return sorted(present, key=key, reverse=descending) + missing


def group_by_town(rows: list[dict]) -> list[dict]:
    """Rows grouped by town (towns by name, rows in their given order) with per-town totals."""
    towns: dict[str, list[dict]] = {}
    for r in rows:
        towns.setdefault(r["town"], []).append(r)
    groups = []
    for name in sorted(towns):
        members = towns[name]
        groups.append({"town": name, "rows": members, "totals": totals(members)})
    return groups


def totals(rows: list[dict]) -> dict:
    par = sum(r["par_milli"] for r in rows)
    on_hand = sum(r["on_hand_milli"] for r in rows)
    sold = sum(r["sold_milli_14d"] for r in rows)
    return {
        "kiosks": len(rows),
        "today_count": sum(r["today_count"] for r in rows),
        "today_fen": sum(r["today_fen"] for r in rows),
        "month_count": sum(r["month_count"] for r in rows),
        "month_fen": sum(r["month_fen"] for r in rows),
        "par_milli": par,
        "on_hand_milli": on_hand,
        "fill_percent": fill_percent(on_hand, par),
        "empty_slots": sum(r["empty_slots"] for r in rows),
        "cover_tenths": on_hand * COVER_WINDOW_DAYS * 10 // sold if sold else None,
        "expiring_lots": sum(r["expiring_lots"] for r in rows),
        "expired_lots": sum(r["expired_lots"] for r in rows),
        "offline": sum(1 for r in rows if r["offline"]),
        "open_alerts": sum(r["open_alerts"] for r in rows),
    }


def towns(s: Session) -> list[str]:
    return list(s.scalars(select(Kiosk.town).distinct().order_by(Kiosk.town)))


# --- offline alerts ---------------------------------------------------------------------------

ALERT_REF = "kiosk"


@dataclass(frozen=True)
class OfflineRefresh:
    opened: int
    resolved: int
    open: int


def refresh_kiosk_alerts(s: Session, *, now: dt.datetime) -> OfflineRefresh:
    """Open a kiosk_offline alert for each active counter without a heartbeat for over an hour
    (or never), and resolve those of counters that are back (or paused, retired). One open alert
    per counter; running it twice changes nothing the second time. The offline counters' rows are
    locked (PostgreSQL) so that two dashboards loading at once do not both open an alert."""
    offline = s.execute(
        select(Kiosk.id, Kiosk.code, Kiosk.site_name, Kiosk.location_id)
        .where(offline_where(now))
        .order_by(Kiosk.id)
        .with_for_update(of=Kiosk)
    ).all()
    offline_ids = {row.id for row in offline}
    opened = resolved = 0
    seen: set[int] = set()
    for alert in s.scalars(
        select(Alert).where(Alert.kind == AlertKind.KIOSK_OFFLINE, Alert.resolved_at.is_(None)).order_by(Alert.id)
    ):
        if alert.ref_type != ALERT_REF or alert.ref_id not in offline_ids or alert.ref_id in seen:
            alert.resolved_at = now
            resolved += 1
        else:
            seen.add(alert.ref_id)
    for row in offline:
        if row.id in seen:
            continue
        s.add(Alert(
            kind=AlertKind.KIOSK_OFFLINE,
            message=hall_text(_l("专柜 %(code)s（%(site)s）超过一小时没有心跳", code=row.code, site=row.site_name)),
            location_id=row.location_id, ref_type=ALERT_REF, ref_id=row.id, created_at=now,
        ))
        opened += 1
    s.flush()
    return OfflineRefresh(opened=opened, resolved=resolved, open=len(offline_ids))


def slot_order(slot: str) -> tuple:
    """A1, A2, …, A10 (not A1, A10, A2)."""
    letters = slot.rstrip("0123456789")
    digits = slot[len(letters):]
    return letters, int(digits) if digits else 0


# --- one counter --------------------------------------------------------------------------------

def kiosk_slots(s: Session, kiosk: Kiosk) -> list[dict]:
    """The counter's slots with product, par, price and on hand (one query)."""
    rows = s.execute(
        select(PlanogramSlot, Product, func.coalesce(StockLevel.qty_milli, 0))
        .join(Product, Product.id == PlanogramSlot.product_id)
        .outerjoin(StockLevel, and_(StockLevel.location_id == kiosk.location_id,
                                    StockLevel.product_id == PlanogramSlot.product_id))
        .where(PlanogramSlot.kiosk_id == kiosk.id)
        .order_by(PlanogramSlot.slot)
    ).all()
    out = []
    for slot, product, qty in sorted(rows, key=lambda r: slot_order(r[0].slot)):
        pieces = int(qty) // 1000
        out.append({
            "slot": slot.slot, "product_id": product.id, "sku": product.sku, "name": product.name,
            "par": slot.par, "price_fen": slot.price_fen, "catalogue_price_fen": product.price_fen,
            "on_hand_milli": int(qty), "on_hand": pieces, "missing": max(slot.par - max(pieces, 0), 0),
            "fill_percent": fill_percent(max(pieces, 0) * 1000, slot.par * 1000),
        })
    return out


def sales_history(s: Session, kiosk_id: int, *, page: int = 1, per_page: int = 20) -> Page:
    """The counter's sales, newest first, with item count and payment method (one query per page
    plus the count)."""
    page = max(1, int(page))
    total = s.scalar(select(func.count(Sale.id)).where(Sale.kiosk_id == kiosk_id)) or 0
    items_q = (select(func.sum(SaleLine.qty_milli)).where(SaleLine.sale_id == Sale.id)
               .correlate(Sale).scalar_subquery())
    method_q = (select(func.min(Payment.method)).where(Payment.sale_id == Sale.id)
                .correlate(Sale).scalar_subquery())
    rows = s.execute(
        select(Sale.id, Sale.receipt_no, Sale.txn_id, Sale.sold_at, Sale.local_date, Sale.total_fen, Sale.status,
               items_q.label("qty_milli"), method_q.label("method"))
        .where(Sale.kiosk_id == kiosk_id)
        .order_by(Sale.sold_at.desc(), Sale.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page([dict(r._mapping) for r in rows], total, page, per_page)


def refill_history(s: Session, location_id: int, *, page: int = 1, per_page: int = 20) -> Page:
    """Stock moves into the counter's location with reason refill, newest first."""
    page = max(1, int(page))
    where = (StockMove.to_location_id == location_id, StockMove.reason == MoveReason.REFILL)
    total = s.scalar(select(func.count(StockMove.id)).where(*where)) or 0
    rows = s.execute(
        select(StockMove.id, StockMove.moved_at, StockMove.qty_milli, StockMove.note, Product.sku, Product.name,
               Lot.lot_no, Lot.expires_on, Location.name.label("from_name"))
        .join(Product, Product.id == StockMove.product_id)
        .join(Location, Location.id == StockMove.from_location_id)
        .outerjoin(Lot, Lot.id == StockMove.lot_id)
        .where(*where)
        .order_by(StockMove.moved_at.desc(), StockMove.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page([dict(r._mapping) for r in rows], total, page, per_page)


def kiosk_detail(s: Session, code: str, *, today: dt.date, now: dt.datetime, sales_page: int = 1,
                 refills_page: int = 1) -> dict:
    """Everything the counter page shows: the dashboard row, slots, expiring lots, sales and
    refill history (paged). NotFound for an unknown code."""
    kiosk = get_kiosk(s, code)
    row = _one_row(s, kiosk, today=today, now=now)
    lots = s.execute(
        select(Lot, Product, LotLevel.qty_milli)
        .join(LotLevel, LotLevel.lot_id == Lot.id)
        .join(Product, Product.id == Lot.product_id)
        .where(LotLevel.location_id == kiosk.location_id, LotLevel.qty_milli > 0, Lot.expires_on.is_not(None),
               Lot.expires_on <= today + dt.timedelta(days=EXPIRY_SOON_DAYS))
        .order_by(Lot.expires_on, Product.sku)
    ).all()
    return {
        "kiosk": kiosk,
        "row": row,
        "slots": kiosk_slots(s, kiosk),
        "expiring": [{"lot_no": lot.lot_no, "expires_on": lot.expires_on, "sku": p.sku, "name": p.name,
                      "qty_milli": int(q), "expired": lot.expires_on < today} for lot, p, q in lots],
        "sales": sales_history(s, kiosk.id, page=sales_page),
        "refills": refill_history(s, kiosk.location_id, page=refills_page),
    }


def _one_row(s: Session, kiosk: Kiosk, *, today: dt.date, now: dt.datetime) -> dict:
    rows = fleet_overview(s, today=today, now=now, town=kiosk.town)
    return next(r for r in rows if r["id"] == kiosk.id)
