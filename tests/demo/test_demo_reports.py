"""Issue 16 point 5: the whole demo (its default period, from the first of last month until now)
gives every report all three channels: the collaboration statistics and the monthly summary of
last month and of this month show hall, counter and group figures, and the dashboard's day shows
the counters and the group delivery of today. Whatever the weekday and the hour: where the
simulator's model (kiosks.simulator.expected_sales) expects next to no counter sale, or the month
has no day before today, the test says so and asserts what must hold then."""
import datetime as dt

from sqlalchemy import select

from inventory.localtime import HALL_TZ, local_date, utcnow
from kiosks import simulator
from kiosks.models import Kiosk, KioskStatus
from pos.demo import build as demo
from pos.demo import counter_history
from pos.reports import figures, monthly

CHANNELS = ("hall", "kiosk", "group")


def _expected_kiosk_sales(session, first: dt.datetime, last: dt.datetime, volume: float) -> float:  # ok-float
    sites = session.scalars(select(Kiosk.site_type).where(Kiosk.status == KioskStatus.ACTIVE)).all()
    total, at = 0.0, first  # ok-float: expected sales
    while at < last:
        total += volume * sum(simulator.expected_sales(site, at) for site in sites)
        at += dt.timedelta(hours=1)
    return total


def _takings(by_channel: dict) -> dict[str, int]:
    return {c: by_channel[c]["total_fen"] for c in CHANNELS}


def test_every_report_of_the_demo_has_all_three_channels(app, session):
    now = utcnow()
    demo.build(session, seed=demo.DEFAULT_SEED, app=app, now=now)
    session.commit()
    today = local_date(now)
    this_month = today.replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)

    # Last month: the hall's history, its group purchases and the counters' scaled-down history
    # cover it whole.
    first, last = figures.month_bounds(last_month)
    collab = figures.collaboration(session, first=first, last=last)
    assert all(v > 0 for v in _takings(collab["by_channel"]).values()), _takings(collab["by_channel"])
    summary = monthly.monthly_summary(session, month=f"{last_month:%Y-%m}")
    assert _takings(summary["by_channel"]) == _takings(collab["by_channel"])

    # This month until today: the group delivery of today (an open order partly delivered) always;
    # the hall from the 1st until yesterday; the counters whenever the model expects them to sell.
    collab = figures.collaboration(session, first=this_month, last=today)
    takings = _takings(collab["by_channel"])
    assert takings["group"] > 0
    month_start = dt.datetime.combine(this_month, dt.time.min, tzinfo=HALL_TZ)
    expected = _expected_kiosk_sales(session, max(month_start, now - dt.timedelta(
        hours=counter_history.LAST_DAY_HOURS)), now, counter_history.LAST_DAY_VOLUME)
    if today.day > 1:
        assert takings["hall"] > 0 and takings["kiosk"] > 0, takings
    elif expected >= 20:
        assert takings["kiosk"] > 0
    else:  # the first of the month, shortly after midnight: nothing of the hall's yet
        assert takings["hall"] == 0
    summary = monthly.monthly_summary(session, month=f"{this_month:%Y-%m}")
    assert _takings(summary["by_channel"]) == _takings(
        figures.collaboration(session, first=this_month, last=figures.month_bounds(this_month)[1])["by_channel"])

    # The dashboard's day: today's group delivery, and the counters when the model expects them.
    daily = monthly.daily_summary(session, day=today)
    today_start = dt.datetime.combine(today, dt.time.min, tzinfo=HALL_TZ)
    assert daily["by_channel"]["group"]["total_fen"] > 0
    if _expected_kiosk_sales(session, today_start, now, counter_history.LAST_DAY_VOLUME) >= 20:
        assert daily["by_channel"]["kiosk"]["total_fen"] > 0
