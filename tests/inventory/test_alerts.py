"""The manager's alerts (inventory.alerts): below the reorder point, negative levels, expiring
lots, lapsing certificates. ``refresh_alerts`` opens each once, keeps its text current, and
resolves it when the cause has gone."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from inventory import alerts, counts, expiry, receiving, reorder
from inventory.ledger import move
from inventory.localtime import local_today
from inventory.models import Alert, AlertKind, AuditEvent, Certificate, Lot, MoveReason
from tests.fixtures.stock import engine, receive_fresh_then_age, s, world  # noqa: F401  (fixtures)

TODAY = local_today()


def days(n: int) -> dt.date:
    return TODAY + dt.timedelta(days=n)


def _open(s) -> list[tuple]:
    return sorted((  # one alert of each kind in these tests: sorting never compares None with an id
        (a.kind.value, a.location_id, a.product_id, a.ref_id)
        for a in s.scalars(select(Alert).where(Alert.resolved_at.is_(None)))
    ), key=lambda t: t[0])


def _receive(world, s, product_id, qty_milli, location="HALL", **lot):
    def receive(**lot):
        r = receiving.receive(s, supplier_id=world.supplier_id, location_id=world.loc[location], actor_id=None,
                          lines=[{"product_id": product_id, "qty_milli": qty_milli, "cost_fen": 100, **lot}])
        return receiving.post_receipt(s, r.id, actor_id=None)

    receive_fresh_then_age(receive, s, lot)   # a lot given an expiry in the past has aged on the shelf


def test_refresh_is_idempotent_and_alerts_resolve_when_the_cause_goes(world, s):
    hall, base = world.loc["HALL"], world.loc["BASE"]
    honey = world.product(s, "梵净山蜂蜜 500g")
    pork = world.product(s, "苗家腊肉 500g")
    tea = world.product(s, "梵净山翠峰茶 250g")
    _receive(world, s, honey.id, 2000)
    reorder.set_reorder_point(s, location_id=hall, product_id=honey.id, min_qty_milli=5000, actor_id=None)
    _receive(world, s, pork.id, 1000)
    for _ in range(3):  # sold 3, had 1
        move(s, product_id=pork.id, qty_milli=1000, from_location_id=hall, to_location_id=world.loc["CUSTOMER"],
             reason=MoveReason.SALE, allow_negative_source=True)
    _receive(world, s, tea.id, 4000, location="BASE", lot_no="SOON", expires_on=days(10))
    _receive(world, s, tea.id, 4000, location="BASE", lot_no="LATER", expires_on=days(200))
    cert = Certificate(number="TRZ-2025-0031", issuer="铜仁市乡村振兴局", supplier_id=world.supplier_id,
                       valid_from=days(-300), valid_to=days(20))
    cert.products = [tea]
    s.add(cert)
    s.commit()
    # the ledger opened the negative-stock alert at once, pointing at the sale that outran the books
    negative_ref = s.scalar(select(Alert.ref_id).where(Alert.kind == AlertKind.NEGATIVE_STOCK))
    assert negative_ref is not None

    first = alerts.refresh_alerts(s, today=TODAY)
    s.commit()
    expected = sorted([  # by kind
        ("below_reorder", hall, honey.id, None),
        ("negative_stock", hall, pork.id, negative_ref),
        ("expiring_lot", base, tea.id, _lot_id(s, tea.id, "SOON")),
        ("certificate_lapsing", None, None, cert.id),
    ], key=lambda t: t[0])
    assert _open(s) == expected
    assert first.opened == 3 and first.resolved == 0 and first.open == 4  # the negative one was open already

    # idempotent: a second run opens, changes and resolves nothing
    second = alerts.refresh_alerts(s, today=TODAY)
    s.commit()
    assert (second.opened, second.updated, second.resolved) == (0, 0, 0)
    assert _open(s) == expected
    assert s.scalar(select(func.count()).select_from(Alert)) == 4

    texts = {a.kind: a.message for a in alerts.open_alerts(s)}
    assert "梵净山蜂蜜 500g" in texts[AlertKind.BELOW_REORDER] and "2" in texts[AlertKind.BELOW_REORDER]
    assert "苗家腊肉 500g" in texts[AlertKind.NEGATIVE_STOCK] and "-2" in texts[AlertKind.NEGATIVE_STOCK]
    assert "SOON" in texts[AlertKind.EXPIRING_LOT] and "10 天" in texts[AlertKind.EXPIRING_LOT]
    assert "TRZ-2025-0031" in texts[AlertKind.CERTIFICATE_LAPSING]

    # the causes go: honey restocked, pork counted, the near lot written off, the certificate renewed
    _receive(world, s, honey.id, 4000)
    count = counts.start_count(s, location_id=hall, actor_id=None)
    counts.record_count_line(s, count.id, product_id=pork.id, counted_qty_milli=0, actor_id=None)
    counts.post_count(s, count.id, reason="盘点", actor_id=None)
    expiry.write_off(s, location_id=base, product_id=tea.id, lot_id=_lot_id(s, tea.id, "SOON"), qty_milli=4000,
                    reason="expiry", actor_id=None)
    renewal = Certificate(number="TRZ-2026-0007", issuer="铜仁市乡村振兴局", supplier_id=world.supplier_id,
                          valid_from=days(21), valid_to=days(21 + 730))
    renewal.products = [tea]
    s.add(renewal)
    s.commit()
    third = alerts.refresh_alerts(s, today=TODAY)
    s.commit()
    assert (third.opened, third.resolved) == (0, 4)
    assert _open(s) == []
    assert s.scalar(select(func.count()).select_from(Alert).where(Alert.resolved_at.is_(None))) == 0


def _lot_id(s, product_id, lot_no):
    return s.scalar(select(Lot.id).where(Lot.product_id == product_id, Lot.lot_no == lot_no))


def test_text_of_an_open_alert_follows_the_level(world, s):
    hall = world.loc["HALL"]
    honey = world.product(s, "梵净山蜂蜜 500g")
    _receive(world, s, honey.id, 2000)
    reorder.set_reorder_point(s, location_id=hall, product_id=honey.id, min_qty_milli=5000, actor_id=None)
    alerts.refresh_alerts(s, today=TODAY)
    [before] = alerts.open_alerts(s)
    move(s, product_id=honey.id, qty_milli=1000, from_location_id=hall, to_location_id=world.loc["CUSTOMER"],
         reason=MoveReason.SALE, allow_negative_source=True)
    result = alerts.refresh_alerts(s, today=TODAY)
    [after] = alerts.open_alerts(s)
    assert (result.opened, result.updated, result.resolved) == (0, 1, 0)
    assert after.id == before.id and "现有 1" in after.message


def test_duplicate_open_alerts_are_folded_into_the_oldest(world, s):
    hall = world.loc["HALL"]
    pork = world.product(s, "苗家腊肉 500g")
    move(s, product_id=pork.id, qty_milli=1000, from_location_id=hall, to_location_id=world.loc["CUSTOMER"],
         reason=MoveReason.SALE, allow_negative_source=True)
    s.add(Alert(kind=AlertKind.NEGATIVE_STOCK, message="重复", location_id=hall, product_id=pork.id))
    s.flush()
    result = alerts.refresh_alerts(s, today=TODAY)
    assert result.resolved == 1
    [left] = alerts.open_alerts(s)
    assert left.message != "重复"


def test_expired_lots_and_lapsed_certificates(world, s):
    tea = world.product(s, "梵净山翠峰茶 250g")
    _receive(world, s, tea.id, 1000, lot_no="OLD", expires_on=days(-3))
    old = Certificate(number="OLD-1", issuer="x", valid_from=days(-400), valid_to=days(-1))  # lapsed: no alert
    later = Certificate(number="LATER-1", issuer="x", valid_from=days(-10), valid_to=days(31))  # not yet
    s.add_all([old, later])
    alerts.refresh_alerts(s, today=TODAY)
    [alert] = alerts.open_alerts(s)
    assert alert.kind == AlertKind.EXPIRING_LOT and "已于" in alert.message and "过期" in alert.message
    assert alerts.refresh_alerts(s, today=days(1)).opened == 1  # the next day LATER-1 is 30 days out
    assert alerts.open_alert_counts(s) == {AlertKind.EXPIRING_LOT: 1, AlertKind.CERTIFICATE_LAPSING: 1}


def test_resolving_an_alert_by_hand(world, s):
    hall = world.loc["HALL"]
    pork = world.product(s, "苗家腊肉 500g")
    move(s, product_id=pork.id, qty_milli=1000, from_location_id=hall, to_location_id=world.loc["CUSTOMER"],
         reason=MoveReason.SALE, allow_negative_source=True)
    [alert] = alerts.open_alerts(s)
    alerts.resolve_alert(s, alert.id, actor_id=world.manager_id)
    assert alert.resolved_by_id == world.manager_id and alerts.open_alerts(s) == []
    assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "alert.resolve")) == 1
    # the cause is still there: the next refresh opens it again
    assert alerts.refresh_alerts(s, today=TODAY).opened == 1
