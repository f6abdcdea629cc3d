"""Sales and refunds a till made offline and sends later, carrying their own time (``sold_at`` /
``refunded_at``): the one place that decides whether such a time is believable (``check_time``),
which of the till's shifts a sale made at that time counts in (``shift_at``), and the sales the
server recorded at another price than the catalogue's (``price_differences``, for the manager).

The time decides the sale's day and month, its receipt number's day, its shift and its
certification (pos.sales.service uses it for all of them). The bounds: not more than
``FUTURE_TOLERANCE`` ahead of the server's clock, not before the shift it counts in opened, not
older than ``OfflineLimits.max_age_days`` (app config ``OFFLINE_MAX_AGE_DAYS``, from the
environment's ``SONGTAO_OFFLINE_MAX_AGE_DAYS``, default 7), and a refund never before its sale.
Outside them: a PosError naming the field (the API answers 422).

A sale whose time lies in a shift that was closed meanwhile is never refused (the money was
taken): it counts in that shift, flagged ``after_shift_closed`` like every late sale, so the
closed shift's Z report stays as it was and the manager sees it among the late sales.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.localtime import format_local, utcnow
from inventory.models import Alert, AlertKind, Product
from pos.core.errors import PosError
from pos.models import Sale, SaleLine, SaleStatus, Shift, ShiftStatus, Till, User

FUTURE_TOLERANCE = dt.timedelta(minutes=5)
DEFAULT_MAX_AGE_DAYS = 7


@dataclass(frozen=True)
class OfflineLimits:
    """What a sale's or refund's own time is judged against: the server's clock when the request
    arrived, and how many days old an offline sale may be."""
    now: dt.datetime
    max_age_days: int = DEFAULT_MAX_AGE_DAYS

    @classmethod
    def from_config(cls, config: Any, now: Optional[dt.datetime] = None) -> "OfflineLimits":
        days = config.get("OFFLINE_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS)
        return cls(now=now or utcnow(), max_age_days=int(days))


def check_time(moment: dt.datetime, limits: OfflineLimits, *, field: str,
               shift: Optional[Shift] = None, sale: Optional[Sale] = None) -> dt.datetime:
    """``moment`` in UTC when it is within the bounds, else PosError(message, ``field``):
    timezone-aware; at most FUTURE_TOLERANCE after ``limits.now``; not older than
    ``limits.max_age_days``; not before ``shift`` opened (the shift it counts in); for a refund,
    not before its ``sale``."""
    if not isinstance(moment, dt.datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise PosError(_l("时间必须带时区（ISO 8601，如 2026-11-30T23:59:00+08:00）"), field)
    try:
        moment = moment.astimezone(dt.timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+00:01 is before the first representable moment
        raise PosError(_l("时间必须带时区（ISO 8601，如 2026-11-30T23:59:00+08:00）"), field) from None
    if moment > limits.now + FUTURE_TOLERANCE:
        raise PosError(_l("时间 %(at)s 晚于服务器时间超过 %(n)s 分钟，请校准收银台时钟",
                          at=format_local(moment), n=int(FUTURE_TOLERANCE.total_seconds() // 60)), field)
    if moment < limits.now - dt.timedelta(days=limits.max_age_days):
        raise PosError(_l("时间 %(at)s 早于 %(n)s 天前，离线单据太旧，不能补录，请联系店长",
                          at=format_local(moment), n=limits.max_age_days), field)
    if shift is not None and moment < shift.opened_at:
        raise PosError(_l("时间 %(at)s 早于班次 #%(id)s 的开班时间 %(opened)s",
                          at=format_local(moment), id=shift.id, opened=format_local(shift.opened_at)), field)
    if sale is not None and moment < sale.sold_at:
        raise PosError(_l("退货时间 %(at)s 早于原销售时间 %(sold)s",
                          at=format_local(moment), sold=format_local(sale.sold_at)), field)
    return moment


def shift_at(s: Session, till_id: int, moment: dt.datetime, *, lock: bool = False) -> Optional[Shift]:
    """The till's shift a sale made at ``moment`` counts in: the last one opened at or before that
    moment, open or closed (a closed one takes the sale as a late sale). None when no shift of the
    till had opened by then."""
    query = (select(Shift).where(Shift.till_id == till_id, Shift.opened_at <= moment)
             .order_by(Shift.opened_at.desc(), Shift.id.desc()).limit(1))
    if lock:
        # FOR SHARE, as for the open shift: a close in flight waits for the sale, or the sale sees it closed.
        query = query.with_for_update(read=True)
    return s.scalars(query).first()


def open_shift_of(s: Session, till_id: int) -> Optional[Shift]:
    return s.scalars(select(Shift).where(Shift.till_id == till_id, Shift.status == ShiftStatus.OPEN)).first()


def price_differences(s: Session, *, limit: int = 200) -> list[dict[str, Any]]:
    """Sales made offline that the server recorded at the price the till charged because it was not
    the catalogue's (``Sale.price_differs``), newest first, each with its differing lines (the
    catalogue price when recorded beside the price paid) and the alert the manager resolves."""
    sales = s.execute(
        select(Sale.id, Sale.receipt_no, Sale.sold_at, Sale.recorded_at, Sale.total_fen, Sale.status,
               Till.code, User.display_name)
        .outerjoin(Till, Till.id == Sale.till_id).outerjoin(User, User.id == Sale.cashier_id)
        .where(Sale.price_differs.is_(True))
        .order_by(Sale.sold_at.desc(), Sale.id.desc()).limit(limit)).all()
    ids = [r[0] for r in sales]
    lines: dict[int, list[dict]] = {}
    alerts: dict[int, tuple[int, Optional[dt.datetime]]] = {}
    if ids:
        for sale_id, name, qty, paid, listed, net in s.execute(
                select(SaleLine.sale_id, Product.name, SaleLine.qty_milli, SaleLine.unit_price_fen,
                       SaleLine.list_price_fen, SaleLine.net_fen)
                .join(Product, Product.id == SaleLine.product_id)
                .where(SaleLine.sale_id.in_(ids), SaleLine.list_price_fen.is_not(None))
                .order_by(SaleLine.sale_id, SaleLine.line_no)):
            lines.setdefault(sale_id, []).append({"name": name, "qty_milli": qty, "unit_price_fen": paid,
                                                  "list_price_fen": listed, "difference_fen": paid - listed,
                                                  "net_fen": net})
        for alert_id, ref_id, resolved_at in s.execute(
                select(Alert.id, Alert.ref_id, Alert.resolved_at)
                .where(Alert.kind == AlertKind.PRICE_MISMATCH, Alert.ref_type == "sale", Alert.ref_id.in_(ids))):
            alerts[ref_id] = (alert_id, resolved_at)
    out = []
    for sale_id, receipt_no, sold_at, recorded_at, total, status, till, cashier in sales:
        alert_id, resolved_at = alerts.get(sale_id, (None, None))
        out.append({"sale_id": sale_id, "receipt_no": receipt_no, "sold_at_local": format_local(sold_at),
                    "recorded_at_local": format_local(recorded_at), "total_fen": total,
                    "status": SaleStatus(status).value, "till": till, "cashier": cashier,
                    "lines": lines.get(sale_id, []), "alert_id": alert_id,
                    "reviewed": alert_id is None or resolved_at is not None})
    return out


__all__ = ["OfflineLimits", "check_time", "shift_at", "open_shift_of", "price_differences",
           "FUTURE_TOLERANCE", "DEFAULT_MAX_AGE_DAYS"]
