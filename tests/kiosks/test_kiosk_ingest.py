"""Counter sales and heartbeats at the domain level (kiosks.ingest), without HTTP: the rules of
a counter sale on top of the sales service. The contract over real HTTP is tests/kiosks/test_kiosk_api.py.

The fleet is tests.fixtures.counters' ``seed_counters`` (used by the API and registry tests too):
K001 and K002 active, K003 retired, a certified tea and an uncertified noodle in K001's planogram, a
sachet in no planogram, stock at K001 in two lots."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from inventory import ledger
from inventory.localtime import utcnow
from inventory.models import (
    Alert,
    AlertKind,
)
from kiosks import registry
from kiosks.ingest import MAX_SALES, heartbeat, ingest_sales
from kiosks.models import Kiosk
from pos.core.db import session_scope
from pos.core.errors import PosError
from pos.models import Sale, SaleLine
from tests.fixtures.counters import CERT_NO, NOODLE, SACHET, TEA, sale, seed_counters


@pytest.fixture
def fleet(app):
    return seed_counters(app)


@pytest.fixture
def ingest(app, fleet):
    """ingest(code, sales) in one committed unit of work, as a request would."""
    def run(code: str, sales: list[dict]) -> dict:
        with app.test_request_context(), session_scope(app) as s:
            return ingest_sales(s, registry.get_kiosk(s, code), sales)
    return run


# On SQLite every transaction takes the write lock: the helpers end their read transaction, so
# that the next unit of work does not wait for the test's session.

def level(session, location_id: int, product_id: int) -> int:
    session.rollback()
    qty = ledger.level(session, location_id, product_id)
    session.rollback()
    return qty


def open_alerts(session, kind: AlertKind) -> list:
    session.rollback()
    rows = session.execute(select(Alert.location_id, Alert.product_id, Alert.message)
                           .where(Alert.kind == kind, Alert.resolved_at.is_(None)).order_by(Alert.id)).all()
    session.rollback()
    return rows


def counter(session, code: str):
    session.rollback()
    kiosk = session.scalars(select(Kiosk).where(Kiosk.code == code)).one()
    session.expunge(kiosk)
    session.rollback()
    return kiosk


def test_a_sale_by_slot_is_recorded_through_the_sales_service(ingest, fleet, session):
    result = ingest("K001", [sale("t-1", [{"slot": "A1", "qty": 2, "unit_price_fen": 3800},
                                          {"slot": "A2", "qty": 1, "unit_price_fen": 1280}])])
    assert result == {"accepted": ["t-1"], "duplicates": [], "rejected": []}
    row = session.scalars(select(Sale).where(Sale.txn_id == "t-1")).one()
    assert row.channel.value == "kiosk" and row.kiosk_id == fleet["kiosks"]["K001"]
    assert row.total_fen == 2 * 3800 + 1280
    assert row.receipt_no.startswith("K001")
    assert row.local_date == dt.date(2026, 11, 26)
    lines = {ln.slot: ln for ln in session.scalars(select(SaleLine).where(SaleLine.sale_id == row.id))}
    assert lines["A1"].certified and lines["A1"].certificate_no == CERT_NO
    assert lines["A1"].origin_county_code == "520628"
    assert not lines["A2"].certified
    k1 = fleet["locations"]["K001"]
    assert level(session, k1, fleet["products"][TEA]) == 18_000
    assert level(session, k1, fleet["products"][NOODLE]) == 9_000
    kiosk = counter(session, "K001")
    assert kiosk.last_sale_at == dt.datetime(2026, 11, 26, 2, 15, tzinfo=dt.timezone.utc)


def test_a_sale_by_sku_cash_refused_and_slot_sku_disagreeing(ingest, session):
    result = ingest("K001", [sale("t-sku", [{"sku": TEA, "qty": 1, "unit_price_fen": 3800}]),
                             sale("t-cash", method="cash"),
                             sale("t-both-bad", [{"slot": "A1", "sku": NOODLE, "qty": 1, "unit_price_fen": 3800}])])
    assert result["accepted"] == ["t-sku"]
    rejected = {r["txn_id"]: r["error"] for r in result["rejected"]}
    assert set(rejected) == {"t-cash", "t-both-bad"}
    assert "微信支付或支付宝" in rejected["t-cash"]
    assert "不一致" in rejected["t-both-bad"]


def test_lines_that_do_not_add_up_are_rejected(ingest, session):
    result = ingest("K001", [sale("t-sum", amount=3700)])
    assert result["rejected"] == [{"txn_id": "t-sum", "error": "商品金额合计与支付金额不符"}]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Sale)) == 0


def test_unknown_slot_or_sku_rejects_that_sale_only(ingest, session):
    result = ingest("K001", [sale("good-1"), sale("bad-slot", [{"slot": "Z9", "qty": 1, "unit_price_fen": 100}]),
                             sale("bad-sku", [{"sku": "NOPE", "qty": 1, "unit_price_fen": 100}]),
                             sale("good-2")])
    assert result["accepted"] == ["good-1", "good-2"]
    assert [r["txn_id"] for r in result["rejected"]] == ["bad-slot", "bad-sku"]
    assert "Z9" in result["rejected"][0]["error"] and "NOPE" in result["rejected"][1]["error"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Sale)) == 2


def test_duplicate_and_conflict(ingest):
    assert ingest("K001", [sale("t-1")])["accepted"] == ["t-1"]
    again = ingest("K001", [sale("t-1"), sale("t-1", [{"slot": "A2", "qty": 1, "unit_price_fen": 1280}])])
    assert again["duplicates"] == ["t-1"]
    assert [r["txn_id"] for r in again["rejected"]] == ["t-1"]
    assert "内容不同" in again["rejected"][0]["error"]


def test_the_same_txn_id_at_another_counter_is_another_sale(ingest):
    assert ingest("K002", [sale("t-1", [{"slot": "A1", "qty": 1, "unit_price_fen": 1300}])])["accepted"] == ["t-1"]
    assert ingest("K001", [sale("t-1")])["accepted"] == ["t-1"]


def test_a_sale_days_late_counts_on_its_own_local_day(ingest, session):
    # 00:30 Beijing time on 24 November is 16:30 UTC on the 23rd: it belongs to the 24th.
    ingest("K001", [sale("late", sold_at="2026-11-23T16:30:00Z")])
    assert session.scalars(select(Sale.local_date).where(Sale.txn_id == "late")).one() == dt.date(2026, 11, 24)


@pytest.mark.parametrize("sold_at,fragment", [
    ("2026-11-26T10:15:00", "时区"),
    ("yesterday", "有效的时间"),
    ("2099-01-01T00:00:00+08:00", "未来"),
    ("1999-01-01T00:00:00+08:00", "太早"),
])
def test_sold_at_must_carry_an_offset_and_be_plausible(ingest, sold_at, fragment):
    result = ingest("K001", [sale("t-time", sold_at=sold_at)])
    assert result["accepted"] == [] and fragment in result["rejected"][0]["error"]


def test_not_in_planogram_is_recorded_with_one_alert(ingest, fleet, session):
    line = [{"sku": SACHET, "qty": 1, "unit_price_fen": 5800}]
    assert ingest("K001", [sale("s-1", line), sale("s-2", line)])["accepted"] == ["s-1", "s-2"]
    assert ingest("K001", [sale("s-3", line)])["accepted"] == ["s-3"]
    alerts = open_alerts(session, AlertKind.NOT_IN_PLANOGRAM)
    assert [(a.location_id, a.product_id) for a in alerts] == [(fleet["locations"]["K001"], fleet["products"][SACHET])]
    assert "K001" in alerts[0].message and "苗绣香包" in alerts[0].message
    # the goods left the counter by the books (driving its level negative, which raises its own alert)
    assert level(session, fleet["locations"]["K001"], fleet["products"][SACHET]) == -3000


def test_price_mismatch_is_recorded_at_the_charged_price_with_one_alert(ingest, fleet, session):
    cheap = [{"slot": "A1", "qty": 1, "unit_price_fen": 3500}]
    assert ingest("K001", [sale("p-1", cheap), sale("p-2", cheap)])["accepted"] == ["p-1", "p-2"]
    assert ingest("K001", [sale("p-3", [{"sku": TEA, "qty": 1, "unit_price_fen": 3600}])])["accepted"] == ["p-3"]
    assert ingest("K001", [sale("p-ok")])["accepted"] == ["p-ok"]
    session.rollback()
    prices = dict(session.execute(select(Sale.txn_id, Sale.total_fen)).all())
    session.rollback()
    assert prices == {"p-1": 3500, "p-2": 3500, "p-3": 3600, "p-ok": 3800}
    alerts = open_alerts(session, AlertKind.PRICE_MISMATCH)
    assert len(alerts) == 1 and alerts[0].product_id == fleet["products"][TEA]
    assert "¥35.00" in alerts[0].message and "¥38.00" in alerts[0].message
    # another counter's mismatch is another alert
    ingest("K002", [sale("p-1", [{"slot": "A1", "qty": 1, "unit_price_fen": 1280}])])
    assert len(open_alerts(session, AlertKind.PRICE_MISMATCH)) == 2


def test_stock_leaves_the_counter_first_expiry_first_out(ingest, fleet, session):
    ingest("K001", [sale("f-1", [{"slot": "A1", "qty": 7, "unit_price_fen": 3800}])])
    session.rollback()
    from inventory.models import LotLevel
    k1 = fleet["locations"]["K001"]
    by_lot = dict(session.execute(select(LotLevel.lot_id, LotLevel.qty_milli).where(LotLevel.location_id == k1)).all())
    assert by_lot[fleet["lots"]["T-EARLY"]] == 0
    assert by_lot[fleet["lots"]["T-LATE"]] == 13_000


def test_more_than_500_sales_records_nothing(ingest, session):
    with pytest.raises(PosError):
        ingest("K001", [sale(f"t-{i}") for i in range(MAX_SALES + 1)])
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Sale)) == 0


def test_heartbeat_updates_the_counter_and_opens_one_error_alert(app, fleet, session):
    def beat(**payload):
        with app.test_request_context(), session_scope(app) as s:
            heartbeat(s, registry.get_kiosk(s, "K001"), payload)

    now = utcnow().replace(microsecond=0)
    beat(at=now.isoformat(), door_open=True, temperature_c=6.5, error=None)
    kiosk = counter(session, "K001")
    assert kiosk.last_heartbeat_at == now and kiosk.door_open and kiosk.temperature_c == 6.5
    beat(door_open=False, temperature_c=7.0, error="E12 制冷故障")
    beat(door_open=False, temperature_c=9.0, error="E12 制冷故障，温度 9℃")
    alerts = open_alerts(session, AlertKind.KIOSK_ERROR)
    assert len(alerts) == 1 and "温度 9℃" in alerts[0].message and "K001" in alerts[0].message
    assert counter(session, "K001").last_error == "E12 制冷故障，温度 9℃"
    # a heartbeat from the future is taken as now; an old one (out of order) changes nothing
    beat(at="2099-01-01T00:00:00+08:00", error=None)
    assert open_alerts(session, AlertKind.KIOSK_ERROR) == []
    latest = counter(session, "K001").last_heartbeat_at
    assert latest <= utcnow()
    beat(at="2020-01-01T00:00:00+08:00", error="旧的故障")
    assert counter(session, "K001").last_heartbeat_at == latest
    assert open_alerts(session, AlertKind.KIOSK_ERROR) == []
