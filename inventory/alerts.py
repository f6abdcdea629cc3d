"""Alerts on the manager's dashboard: below the reorder point, negative levels (a sale that
outran the books), lots about to expire, certificates about to lapse.

``refresh_alerts`` is the one reconciler of these four kinds: it works out from the database
which alerts ought to be open, opens the missing ones, updates the text of the open ones (a
quantity changed), and resolves those whose cause has gone. Running it twice changes nothing the
second time. There is one open alert per key: (kind, location, product) for stock levels,
(kind, location, lot) for lots, (kind, certificate) for certificates.

The ledger opens a negative-stock alert at once, in the sale's own transaction (see
``raise_negative_stock_alert``), so a discrepancy shows before the next refresh.

Alert texts are stored in the hall's language (Chinese), whatever the language of the person
whose action raised them: the dashboard shows the stored text.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from flask_babel import force_locale, lazy_gettext as _l
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from .audit import record
from .errors import NotFound
from .localtime import utcnow
from .models import (
    VIRTUAL_LOCATION_KINDS,
    Alert,
    AlertKind,
    Certificate,
    Location,
    LocationKind,
    Lot,
    LotLevel,
    Product,
    ReorderPoint,
    StockLevel,
    is_weighed,
    certificate_products,
)
from .money import format_qty

EXPIRY_WARNING_DAYS = 30
CERTIFICATE_WARNING_DAYS = 30
REAL_LOCATION_KINDS = tuple(k for k in LocationKind if k not in VIRTUAL_LOCATION_KINDS)
MANAGED_KINDS = (AlertKind.BELOW_REORDER, AlertKind.NEGATIVE_STOCK, AlertKind.EXPIRING_LOT,
                 AlertKind.CERTIFICATE_LAPSING)
MESSAGE_MAX = 300


def hall_text(message: Any) -> str:
    """A (lazy) message as stored text, in the hall's language whatever the current locale."""
    with force_locale("zh"):
        return str(message)[:MESSAGE_MAX]


# --- the ledger's immediate alert -----------------------------------------------------------

def raise_negative_stock_alert(session: Session, location: Location, product: Product, level_milli: int,
                               *, move_id: Optional[int] = None) -> Optional[Alert]:
    """Open a negative-stock alert for (location, product) unless one is open already.

    Called by the ledger right after the move that took the level below zero, while the level
    row is locked by that move's update: a concurrent sale of the same product at the same place
    waits for this transaction and then sees its alert, so no duplicate is opened."""
    open_id = session.scalar(
        select(Alert.id).where(
            Alert.kind == AlertKind.NEGATIVE_STOCK,
            Alert.location_id == location.id,
            Alert.product_id == product.id,
            Alert.resolved_at.is_(None),
        ).limit(1)
    )
    if open_id is not None:
        return None
    alert = Alert(
        kind=AlertKind.NEGATIVE_STOCK,
        message=_negative_message(location.name, product.name, level_milli,
                                  is_weighed(product.unit, product.sold_by_weight)),
        location_id=location.id,
        product_id=product.id,
        ref_type="stock_move" if move_id is not None else None,
        ref_id=move_id,
        created_at=utcnow(),
    )
    session.add(alert)
    return alert


def raise_expired_stock_sold_alert(session: Session, *, location_id: int, product_id: int,
                                   today: dt.date) -> list[Alert]:
    """A sale of a product the books hold at that location only in expired lots: expired goods
    may have reached a customer. Opens (or sharpens the text of) the expired-lot alert of each such
    lot, the key the reconciler uses (expiring lot, location, lot), so the manager sees it at once
    and no duplicate is opened."""
    rows = session.execute(
        select(LotLevel.lot_id, Lot.lot_no, Lot.expires_on, Location.name, Product.name)
        .join(Lot, Lot.id == LotLevel.lot_id)
        .join(Location, Location.id == LotLevel.location_id)
        .join(Product, Product.id == Lot.product_id)
        .where(LotLevel.location_id == location_id, Lot.product_id == product_id, LotLevel.qty_milli > 0,
               Lot.expires_on < today)
        .order_by(Lot.expires_on, Lot.id)
    ).all()
    alerts = []
    for lot_id, lot_no, expires_on, location, product in rows:
        message = hall_text(_l("%(location)s的「%(product)s」账面只剩过期批次 %(lot)s（%(date)s 已过期），"
                               "却仍有售出：请检查货架，下架报损",
                               location=location, product=product, lot=lot_no, date=expires_on.isoformat()))
        alert = session.scalar(select(Alert).where(
            Alert.kind == AlertKind.EXPIRING_LOT, Alert.location_id == location_id, Alert.ref_type == "lot",
            Alert.ref_id == lot_id, Alert.resolved_at.is_(None)).order_by(Alert.id).limit(1))
        if alert is None:
            alert = Alert(kind=AlertKind.EXPIRING_LOT, message=message, location_id=location_id,
                          product_id=product_id, ref_type="lot", ref_id=lot_id, created_at=utcnow())
            session.add(alert)
        else:
            alert.message = message
        alerts.append(alert)
    return alerts


def _negative_message(location: str, product: str, level_milli: int, weighed: bool) -> str:
    return hall_text(_l("%(location)s的「%(product)s」账面库存为负：%(qty)s（销售超出了账面，请盘点）",
                        location=location, product=product, qty=format_qty(level_milli, by_weight=weighed)))


# --- the reconciler ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Wanted:
    kind: AlertKind
    location_id: Optional[int]
    product_id: Optional[int]
    ref_type: Optional[str]
    ref_id: Optional[int]
    message: str

    @property
    def key(self) -> tuple:
        return _key(self.kind, self.location_id, self.product_id, self.ref_type, self.ref_id)


def _key(kind, location_id, product_id, ref_type, ref_id) -> tuple:
    kind = AlertKind(kind)
    if kind in (AlertKind.BELOW_REORDER, AlertKind.NEGATIVE_STOCK):
        return (kind, location_id, product_id)  # the ledger's alert refers to a move: not part of the key
    if kind == AlertKind.EXPIRING_LOT:
        return (kind, location_id, ref_id)
    return (kind, ref_id)


@dataclass(frozen=True)
class RefreshResult:
    opened: int
    updated: int
    resolved: int
    open: int


def refresh_alerts(session: Session, *, today: dt.date, expiry_days: int = EXPIRY_WARNING_DAYS,
                   certificate_days: int = CERTIFICATE_WARNING_DAYS) -> RefreshResult:
    """Bring the open alerts of the four stock kinds in line with the database (idempotent)."""
    wanted: dict[tuple, _Wanted] = {}
    for w in _chain(
        _negative_levels(session),
        _below_reorder(session),
        _expiring_lots(session, today, expiry_days),
        _lapsing_certificates(session, today, certificate_days),
    ):
        wanted.setdefault(w.key, w)

    now = utcnow()
    opened = updated = resolved = 0
    seen: set[tuple] = set()
    existing = session.scalars(
        select(Alert).where(Alert.kind.in_(MANAGED_KINDS), Alert.resolved_at.is_(None)).order_by(Alert.id)
    ).all()
    for alert in existing:
        key = _key(alert.kind, alert.location_id, alert.product_id, alert.ref_type, alert.ref_id)
        w = wanted.get(key)
        if w is None or key in seen:  # the cause has gone, or a duplicate of an older open alert
            alert.resolved_at = now
            resolved += 1
            continue
        seen.add(key)
        if alert.message != w.message:
            alert.message = w.message
            updated += 1
    for key, w in wanted.items():
        if key not in seen:
            session.add(Alert(kind=w.kind, message=w.message, location_id=w.location_id, product_id=w.product_id,
                              ref_type=w.ref_type, ref_id=w.ref_id, created_at=now))
            opened += 1
    session.flush()
    return RefreshResult(opened=opened, updated=updated, resolved=resolved, open=len(wanted))


def _chain(*iterables: Iterable[_Wanted]) -> Iterable[_Wanted]:
    for it in iterables:
        yield from it


def _negative_levels(session: Session) -> Iterable[_Wanted]:
    rows = session.execute(
        select(StockLevel.location_id, StockLevel.product_id, StockLevel.qty_milli, Location.name,
               Product.name, Product.unit, Product.sold_by_weight)
        .join(Location, Location.id == StockLevel.location_id)
        .join(Product, Product.id == StockLevel.product_id)
        .where(StockLevel.qty_milli < 0, Location.kind.in_(REAL_LOCATION_KINDS))
    )
    for loc_id, product_id, qty, loc_name, product_name, unit, by_weight in rows:
        yield _Wanted(AlertKind.NEGATIVE_STOCK, loc_id, product_id, None, None,
                      _negative_message(loc_name, product_name, qty, is_weighed(unit, by_weight)))


def _below_reorder(session: Session) -> Iterable[_Wanted]:
    have = func.coalesce(StockLevel.qty_milli, 0)
    rows = session.execute(
        select(ReorderPoint.location_id, ReorderPoint.product_id, have, ReorderPoint.min_qty_milli,
               Location.name, Product.name, Product.unit, Product.sold_by_weight)
        .join(Location, Location.id == ReorderPoint.location_id)
        .join(Product, Product.id == ReorderPoint.product_id)
        .outerjoin(StockLevel, and_(StockLevel.location_id == ReorderPoint.location_id,
                                    StockLevel.product_id == ReorderPoint.product_id))
        .where(have < ReorderPoint.min_qty_milli, Product.active.is_(True), Location.active.is_(True))
    )
    for loc_id, product_id, qty, minimum, loc_name, product_name, unit, by_weight in rows:
        weighed = is_weighed(unit, by_weight)
        yield _Wanted(AlertKind.BELOW_REORDER, loc_id, product_id, None, None, hall_text(_l(
            "%(location)s的「%(product)s」低于补货点：现有 %(qty)s，补货点 %(min)s",
            location=loc_name, product=product_name, qty=format_qty(qty, by_weight=weighed),
            min=format_qty(minimum, by_weight=weighed))))


def _expiring_lots(session: Session, today: dt.date, within_days: int) -> Iterable[_Wanted]:
    last_day = today + dt.timedelta(days=within_days)
    rows = session.execute(
        select(LotLevel.location_id, Lot.product_id, LotLevel.lot_id, LotLevel.qty_milli, Lot.lot_no, Lot.expires_on,
               Location.name, Product.name, Product.unit, Product.sold_by_weight)
        .join(Lot, Lot.id == LotLevel.lot_id)
        .join(Location, Location.id == LotLevel.location_id)
        .join(Product, Product.id == Lot.product_id)
        .where(LotLevel.qty_milli > 0, Lot.expires_on <= last_day, Location.kind.in_(REAL_LOCATION_KINDS))
    )
    for loc_id, product_id, lot_id, qty, lot_no, expires_on, loc_name, product_name, unit, by_weight in rows:
        shown = format_qty(qty, by_weight=is_weighed(unit, by_weight))
        days = (expires_on - today).days
        if days < 0:
            message = _l("%(location)s的「%(product)s」批次 %(lot)s 已于 %(date)s 过期，数量 %(qty)s，请下架报损",
                         location=loc_name, product=product_name, lot=lot_no, date=expires_on.isoformat(), qty=shown)
        else:
            message = _l("%(location)s的「%(product)s」批次 %(lot)s 将于 %(date)s 到期（还剩 %(days)s 天），数量 %(qty)s",
                         location=loc_name, product=product_name, lot=lot_no, date=expires_on.isoformat(),
                         days=days, qty=shown)
        yield _Wanted(AlertKind.EXPIRING_LOT, loc_id, product_id, "lot", lot_id, hall_text(message))


def _lapsing_certificates(session: Session, today: dt.date, within_days: int) -> Iterable[_Wanted]:
    """Certificates whose last valid day is within the window, unless every product they cover
    is already covered by another certificate on the day after (a renewal is in place)."""
    last_day = today + dt.timedelta(days=within_days)
    certs = session.execute(
        select(Certificate.id, Certificate.number, Certificate.valid_to)
        .where(Certificate.valid_to >= today, Certificate.valid_to <= last_day)
        .order_by(Certificate.valid_to, Certificate.id)
    ).all()
    for cert_id, number, valid_to in certs:
        day_after = valid_to + dt.timedelta(days=1)
        other = Certificate.__table__.alias("other")
        other_link = certificate_products.alias("other_link")
        uncovered = session.scalar(
            select(func.count())
            .select_from(certificate_products)
            .where(
                certificate_products.c.certificate_id == cert_id,
                ~select(other_link.c.product_id)
                .join(other, other.c.id == other_link.c.certificate_id)
                .where(
                    other_link.c.product_id == certificate_products.c.product_id,
                    other.c.id != cert_id,
                    other.c.valid_from <= day_after,
                    other.c.valid_to >= day_after,
                )
                .exists(),
            )
        )
        covered_any = session.scalar(
            select(func.count()).select_from(certificate_products).where(certificate_products.c.certificate_id == cert_id)
        )
        if covered_any and not uncovered:
            continue  # renewed: every product stays certified
        days = (valid_to - today).days
        yield _Wanted(AlertKind.CERTIFICATE_LAPSING, None, None, "certificate", cert_id, hall_text(_l(
            "扶贫产品认定证书 %(number)s 将于 %(date)s 到期（还剩 %(days)s 天），请及时续期",
            number=number, date=valid_to.isoformat(), days=days)))


# --- reading and resolving ---------------------------------------------------------------------

def open_alerts(session: Session, *, limit: int = 50, kinds: Optional[Iterable[AlertKind]] = None,
                location_id: Optional[int] = None) -> list[Alert]:
    """Open alerts, newest first."""
    stmt = select(Alert).where(Alert.resolved_at.is_(None))
    if kinds is not None:
        stmt = stmt.where(Alert.kind.in_([AlertKind(k) for k in kinds]))
    if location_id is not None:
        stmt = stmt.where(Alert.location_id == location_id)
    return list(session.scalars(stmt.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)))


def open_alert_counts(session: Session) -> dict[AlertKind, int]:
    """How many alerts of each kind are open (for the dashboard's badges)."""
    rows = session.execute(
        select(Alert.kind, func.count()).where(Alert.resolved_at.is_(None)).group_by(Alert.kind)
    )
    return {AlertKind(kind): n for kind, n in rows}


def resolve_alert(session: Session, alert_id: int, *, actor_id: Optional[int]) -> Alert:
    """Mark an alert as dealt with. If its cause is still there, the next refresh opens a new one."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(_l("提醒不存在"))
    if alert.resolved_at is None:
        alert.resolved_at = utcnow()
        alert.resolved_by_id = actor_id
        record(session, user_id=actor_id, action="alert.resolve", entity="alert", entity_id=alert.id,
               after={"kind": alert.kind.value, "message": alert.message})
    return alert
