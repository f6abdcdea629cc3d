"""The fleet's figures (kiosks.fleet) on a small data set whose answers are worked out by hand:
sales today and this month (local days), fill level, empty slots, days of cover, lots expiring in
a counter, offline alerts opened and resolved. On SQLite and PostgreSQL (TEST_DATABASE_URL)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import event, func, select

from inventory import ledger
from inventory.localtime import HALL_TZ, UTC
from inventory.models import Alert, AlertKind, Lot, MoveReason
from kiosks import fleet, registry
from kiosks.models import Kiosk, KioskStatus
from pos.sales import service
from pos.core.errors import NotFound
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn
from tests.fixtures.stock import World, engine, s, world  # noqa: F401  (fixtures)

TODAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=HALL_TZ).astimezone(UTC)


@dataclass
class Fleet:
    world: World
    k1: int
    k2: int
    k3: int
    tea: int
    honey: int
    jam: int
    lots: dict[str, int]


def kiosk_sale(s, code: str, product_id: int, qty: int, price_fen: int, sold_at: dt.datetime, txn: str):
    kiosk = registry.get_kiosk(s, code)
    return service.record_sale(s, SaleIn(
        channel="kiosk", location_id=kiosk.location_id, kiosk_id=kiosk.id, txn_id=txn, receipt_prefix=kiosk.code,
        sold_at=sold_at, lines=[LineIn(product_id, qty * 1000, unit_price_fen=price_fen, slot="A2")],
        payments=[PaymentIn("wechat", qty * price_fen, ref=txn)]))


@pytest.fixture
def fleet_data(world) -> Fleet:
    """K001 (虎门): tea A1 par 10 (10 in the counter: 2 expired yesterday, 3 expire in two days,
    5 next year), honey A2 par 5 (8 in, 6 sold: 2 left), jam A3 par 4 (none): on hand 12 of 19.
    Honey sold: today 2 × ¥58, on 10 November 2 for ¥116, at 00:30 on 1 November (local; still
    31 October in UTC) 1, at 22:00 on 31 October 1. Last heartbeat two hours ago.
    K002 (虎门): tea A1 par 4, nothing in it, heartbeat ten minutes ago. K003 (沙田): paused, no
    planogram, never a heartbeat."""
    w = world
    with w.Session() as s:
        tea = w.product(s, "梵净山翠峰茶 250g", price_fen=3800)
        honey = w.product(s, "松桃土蜂蜜 500g", price_fen=5800, shelf_life_days=None)
        jam = w.product(s, "刺梨果酱", price_fen=2500)
        k1 = registry.create_kiosk(s, code="K001", site_name="虎门镇政府", host_org="虎门镇人民政府", town="虎门",
                                   address="虎门镇银龙路 1 号", latitude=22.82, longitude=113.67)
        k2 = registry.create_kiosk(s, code="K002", site_name="虎门医院", host_org="虎门医院", town="虎门",
                                   address="虎门镇 2 号")
        k3 = registry.create_kiosk(s, code="K003", site_name="沙田中学", host_org="沙田中学", town="沙田",
                                   address="沙田镇 3 号", status="paused")
        for slot, product, par, price in (("A1", tea, 10, 3800), ("A2", honey, 5, 5800), ("A3", jam, 4, 2500)):
            registry.set_slot(s, "K001", slot, product_id=product.id, par=par, price_fen=price, actor_id=w.manager_id)
        registry.set_slot(s, "K002", "A1", product_id=tea.id, par=4, price_fen=3800, actor_id=w.manager_id)
        lots = {}
        for name, expires, qty in (("OLD", TODAY - dt.timedelta(days=1), 2), ("SOON", TODAY + dt.timedelta(days=2), 3),
                                   ("FRESH", dt.date(2027, 11, 1), 5)):
            lot = Lot(product_id=tea.id, lot_no=name, expires_on=expires)
            s.add(lot)
            s.flush()
            lots[name] = lot.id
            ledger.move(s, product_id=tea.id, qty_milli=qty * 1000, from_location_id=w.loc["SUPPLIER"],
                        to_location_id=w.loc["BASE"], reason=MoveReason.RECEIPT, lot_id=lot.id)
            ledger.move(s, product_id=tea.id, qty_milli=qty * 1000, from_location_id=w.loc["BASE"],
                        to_location_id=k1.location_id, reason=MoveReason.REFILL, lot_id=lot.id)
        ledger.move(s, product_id=honey.id, qty_milli=8000, from_location_id=w.loc["SUPPLIER"],
                    to_location_id=k1.location_id, reason=MoveReason.OPENING)
        local = lambda *a: dt.datetime(*a, tzinfo=HALL_TZ)  # noqa: E731
        kiosk_sale(s, "K001", honey.id, 1, 5800, local(2026, 11, 20, 9, 0), "t1")
        kiosk_sale(s, "K001", honey.id, 1, 5800, local(2026, 11, 20, 10, 30), "t2")
        kiosk_sale(s, "K001", honey.id, 2, 5800, local(2026, 11, 10, 15, 0), "t3")
        kiosk_sale(s, "K001", honey.id, 1, 5800, local(2026, 11, 1, 0, 30), "t4")
        kiosk_sale(s, "K001", honey.id, 1, 5800, local(2026, 10, 31, 22, 0), "t5")
        k1.last_heartbeat_at = NOW - dt.timedelta(hours=2)
        k2.last_heartbeat_at = NOW - dt.timedelta(minutes=10)
        s.commit()
        return Fleet(w, k1.id, k2.id, k3.id, tea.id, honey.id, jam.id, lots)


def by_code(rows):
    return {r["code"]: r for r in rows}


def test_slot_levels_join_planogram_and_stock(fleet_data, s):
    f = fleet_data
    levels = fleet.slot_levels(s)
    assert [(lv.code, lv.slot, lv.product_id, lv.par, lv.on_hand_milli) for lv in levels] == [
        ("K001", "A1", f.tea, 10, 10000), ("K001", "A2", f.honey, 5, 2000), ("K001", "A3", f.jam, 4, 0),
        ("K002", "A1", f.tea, 4, 0),
    ]
    assert levels[0].kiosk_id == f.k1 and levels[0].town == "虎门"
    assert [lv.code for lv in fleet.slot_levels(s, kiosk_ids=[f.k2])] == ["K002"]
    assert fleet.slot_levels(s, kiosk_ids=[]) == []


def test_expiring_at_kiosks_includes_expired_lots_soonest_first(fleet_data, s):
    f = fleet_data
    rows = fleet.expiring_at_kiosks(s, today=TODAY, within_days=3)
    assert rows == [(f.k1, f.tea, f.lots["OLD"], TODAY - dt.timedelta(days=1), 2000),
                    (f.k1, f.tea, f.lots["SOON"], TODAY + dt.timedelta(days=2), 3000)]
    assert [r.lot_id for r in fleet.expiring_at_kiosks(s, today=TODAY, within_days=1)] == [f.lots["OLD"]]
    assert fleet.expiring_at_kiosks(s, today=TODAY, within_days=3, kiosk_ids=[f.k2]) == []


def test_overview_figures_are_the_worked_out_answers(fleet_data, s):
    rows = by_code(fleet.fleet_overview(s, today=TODAY, now=NOW))
    k1, k2, k3 = rows["K001"], rows["K002"], rows["K003"]
    assert (k1["today_count"], k1["today_fen"]) == (2, 11600)
    # 1 November 00:30 local counts in November; 31 October 22:00 does not
    assert (k1["month_count"], k1["month_fen"]) == (4, 5800 * 2 + 11600 + 5800)
    assert (k1["on_hand_milli"], k1["par_milli"], k1["fill_percent"], k1["empty_slots"]) == (12000, 19000, 63, 1)
    # sold over the last 14 days (7–20 November): 4 pieces → 4/14 a day → 12 ÷ (4/14) = 42.0 days
    assert (k1["sold_milli_14d"], k1["cover_tenths"]) == (4000, 420)
    assert (k1["expired_lots"], k1["expiring_lots"], k1["expired_milli"], k1["expiring_milli"]) == (1, 1, 2000, 3000)
    assert k1["last_sale_at"] == dt.datetime(2026, 11, 20, 10, 30, tzinfo=HALL_TZ)
    assert k1["offline"] is True and k2["offline"] is False and k3["offline"] is False  # paused: not flagged
    assert (k2["today_count"], k2["month_fen"], k2["fill_percent"], k2["empty_slots"], k2["cover_tenths"]) == (
        0, 0, 0, 1, None)
    assert (k3["slots"], k3["fill_percent"], k3["status"]) == (0, None, "paused")


def test_overview_filters_sorts_and_groups_by_town(fleet_data, s):
    assert [r["code"] for r in fleet.fleet_overview(s, today=TODAY, now=NOW, town="沙田")] == ["K003"]
    assert [r["code"] for r in fleet.fleet_overview(s, today=TODAY, now=NOW, status="paused")] == ["K003"]
    assert [r["code"] for r in fleet.fleet_overview(s, today=TODAY, now=NOW, status="offline")] == ["K001"]
    rows = fleet.fleet_overview(s, today=TODAY, now=NOW, sort="fill", descending=True)
    assert [r["code"] for r in rows] == ["K001", "K002", "K003"]  # no figure (no planogram) sorts last
    rows = fleet.fleet_overview(s, today=TODAY, now=NOW, sort="fill")
    assert [r["code"] for r in rows] == ["K002", "K001", "K003"]
    groups = fleet.group_by_town(fleet.fleet_overview(s, today=TODAY, now=NOW))
    assert [g["town"] for g in groups] == ["沙田", "虎门"]
    humen = groups[1]["totals"]
    assert (humen["kiosks"], humen["today_fen"], humen["month_count"], humen["empty_slots"]) == (2, 11600, 4, 2)
    assert (humen["par_milli"], humen["on_hand_milli"], humen["fill_percent"], humen["offline"]) == (
        23000, 12000, 52, 1)


def test_overview_is_a_handful_of_queries_whatever_the_fleet_size(fleet_data, s, engine):
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        fleet.fleet_overview(s, today=TODAY, now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) <= 7, statements


def test_offline_alerts_open_once_and_resolve_when_heartbeats_return(fleet_data, s):
    f = fleet_data
    first = fleet.refresh_kiosk_alerts(s, now=NOW)
    again = fleet.refresh_kiosk_alerts(s, now=NOW)
    s.commit()
    assert (first.opened, first.resolved, again.opened, again.resolved) == (1, 0, 0, 0)
    alert = s.scalars(select(Alert).where(Alert.kind == AlertKind.KIOSK_OFFLINE)).one()
    assert alert.resolved_at is None and alert.ref_id == f.k1 and "K001" in alert.message
    assert by_code(fleet.fleet_overview(s, today=TODAY, now=NOW))["K001"]["open_alerts"] == 1

    s.get(Kiosk, f.k1).last_heartbeat_at = NOW - dt.timedelta(minutes=1)
    back = fleet.refresh_kiosk_alerts(s, now=NOW)
    s.commit()
    assert (back.opened, back.resolved, back.open) == (0, 1, 0)
    assert s.scalar(select(func.count(Alert.id)).where(Alert.resolved_at.is_(None))) == 0

    # silent again later: a new alert; a paused counter never gets one
    later = NOW + dt.timedelta(hours=3)
    assert fleet.refresh_kiosk_alerts(s, now=later).opened == 2  # K001 and K002
    assert s.scalar(select(func.count(Alert.id)).where(Alert.ref_id == f.k3)) == 0


def test_kiosk_detail_slots_sales_and_refills(fleet_data, s):
    detail = fleet.kiosk_detail(s, "K001", today=TODAY, now=NOW)
    assert [(sl["slot"], sl["on_hand"], sl["missing"]) for sl in detail["slots"]] == [
        ("A1", 10, 0), ("A2", 2, 3), ("A3", 0, 4)]
    assert detail["sales"].total == 5 and detail["sales"].items[0]["txn_id"] == "t2"
    assert detail["sales"].items[0]["qty_milli"] == 1000 and detail["sales"].items[0]["method"] == "wechat"
    assert detail["refills"].total == 3 and {r["lot_no"] for r in detail["refills"].items} == {"OLD", "SOON", "FRESH"}
    assert [e["lot_no"] for e in detail["expiring"]] == ["OLD", "SOON"]
    page2 = fleet.sales_history(s, fleet_data.k1, page=2, per_page=2)
    assert [r["txn_id"] for r in page2.items] == ["t3", "t4"]
    with pytest.raises(NotFound):
        fleet.kiosk_detail(s, "K999", today=TODAY, now=NOW)


def test_offline_is_one_rule_in_python_and_in_sql(fleet_data, s):
    """kiosks.fleet.is_offline and its SQL form agree: an active counter is offline after more
    than an hour without a heartbeat (exactly an hour is not yet), or with none ever; a paused
    one never is."""
    k = s.get(Kiosk, fleet_data.k2)
    for heartbeat in (None, NOW - dt.timedelta(hours=1), NOW - dt.timedelta(hours=1, seconds=1), NOW):
        k.last_heartbeat_at = heartbeat
        s.flush()
        in_sql = s.scalar(select(func.count()).select_from(Kiosk).where(Kiosk.id == k.id, fleet.offline_where(NOW)))
        in_python = fleet.is_offline(k.status, heartbeat, NOW)
        assert bool(in_sql) == in_python == (heartbeat is None or heartbeat < NOW - dt.timedelta(hours=1))
    assert fleet.is_offline("paused", None, NOW) is False


def test_a_counter_without_planogram_has_no_fill_anywhere(fleet_data, s):
    """The one answer for a counter without planogram: no fill (None), neither 0 % nor 100 %, on
    the dashboard, in its town's totals and in the refill planner, which then never finds it
    "below" a fill threshold."""
    from kiosks import refill_plans

    assert fleet.fill_percent(0, 0) is None
    assert fleet.fill_percent(12000, 19000) == 63
    k3 = s.get(Kiosk, fleet_data.k3)
    k3.status = KioskStatus.ACTIVE
    k3.last_heartbeat_at = NOW
    s.flush()
    assert by_code(fleet.fleet_overview(s, today=TODAY, now=NOW))["K003"]["fill_percent"] is None
    shatian = fleet.group_by_town(fleet.fleet_overview(s, today=TODAY, now=NOW, town="沙田"))[0]["totals"]
    assert shatian["fill_percent"] is None
    candidates = by_code(refill_plans.refill_candidates(s, today=TODAY, now=NOW))
    assert candidates["K003"]["fill_percent"] is None and candidates["K003"]["reasons"] == []
    assert candidates["K001"]["fill_percent"] == by_code(fleet.fleet_overview(s, today=TODAY, now=NOW))["K001"]["fill_percent"]
    below = refill_plans.refill_candidates(s, today=TODAY, now=NOW, fill_below_percent=100)
    assert "K003" not in {r["code"] for r in below}
