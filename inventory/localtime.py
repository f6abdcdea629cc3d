"""Time: stored in UTC, shown and grouped in Asia/Shanghai (the hall's days and months)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

HALL_TZ = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def to_local(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(HALL_TZ)


def local_date(moment: dt.datetime) -> dt.date:
    """The hall's calendar day of a moment: 00:30 on 1 November in Humen is 1 November."""
    return to_local(moment).date()


def local_today() -> dt.date:
    return local_date(utcnow())


def day_start_utc(day: dt.date) -> dt.datetime:
    """The UTC instant at which a local day begins."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=HALL_TZ).astimezone(UTC)


def local_days_to_utc_range(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Half-open UTC range [start, end) covering the local dates first..last inclusive."""
    return day_start_utc(first), day_start_utc(last + dt.timedelta(days=1))


def format_local(moment: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if moment is None:
        return ""
    return to_local(moment).strftime(fmt)


def parse_local_date(text: str) -> dt.date:
    """A YYYY-MM-DD date as people type it; ValueError with a plain message otherwise."""
    try:
        return dt.date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"日期格式应为 YYYY-MM-DD：{text!r}") from None
