"""The fleet simulator (kiosks.simulator) against the real counter API: in this process through
the app's test client, and once over real HTTP (waitress on a free port). What it reports must be
what the database recorded: accepted sales recorded once each, resends counted as duplicates, an
offline counter's backlog counted on the days the sales happened, heartbeats stored, and never a
piece sold that the counter did not hold. On SQLite and PostgreSQL (TEST_DATABASE_URL)."""
from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from inventory import ledger
from inventory.localtime import HALL_TZ, local_today
from inventory.models import Location, LocationKind, Lot, MoveReason, Product, StockLevel, Supplier
from kiosks import registry, simulator
from kiosks.models import Kiosk, SiteType
from pos.cli import main
from pos.core.db import session_scope
from pos.models import Channel, Sale, SaleLine

# Two weeks ago on Monday, local midnight: a past weekday whatever day the tests run.
_today = local_today()
MONDAY = dt.datetime.combine(_today - dt.timedelta(days=_today.weekday() + 14), dt.time.min, tzinfo=HALL_TZ)
PLENTY = 80  # pieces per product: more than two days can sell, so availability never changes


def seed_fleet(app, *, stock=PLENTY, scarce: bool = False) -> dict:
    """K001 hospital, K002 factory, K003 school: four products each (A1–A4) with ``stock`` pieces
    in the counter, in one lot. ``scarce``: K003 holds only 3 pieces of A1 and nothing else."""
    with app.app_context(), session_scope(app) as s:
        for code, name, kind in (("SUPPLIER", "供应商（虚拟）", LocationKind.SUPPLIER),
                                 ("CUSTOMER", "顾客（虚拟）", LocationKind.CUSTOMER),
                                 ("BASE", "物流基地", LocationKind.BASE)):
            s.add(Location(code=code, name=name, kind=kind))
        supplier = Supplier(name="松桃苗王食品有限公司", origin_county="松桃苗族自治县", origin_county_code="520628")
        s.add(supplier)
        s.flush()
        products = []
        for n, (name, price) in enumerate((("苗家辣椒酱 280g", 1580), ("松桃红薯粉 500g", 1680),
                                           ("梵净山蜂蜜 500g", 6800), ("刺梨干 200g", 3280)), 1):
            p = Product(sku=f"SIM{n:03d}", name=name, pinyin_initials="", price_fen=price,
                        supplier_id=supplier.id, shelf_life_days=365)
            s.add(p)
            s.flush()
            products.append(p)
        supplier_loc = ledger.virtual_location(s, LocationKind.SUPPLIER).id
        tokens = {}
        for code, site_type in (("K001", "hospital"), ("K002", "factory"), ("K003", "school")):
            kiosk = registry.create_kiosk(s, code=code, site_name=f"{code} 站点", host_org="虎门镇人民政府",
                                          town="虎门镇", address="广东省东莞市虎门镇", site_type=site_type)
            for slot, p in zip(("A1", "A2", "A3", "A4"), products):
                held = (3 if slot == "A1" else 0) if scarce and code == "K003" else stock
                registry.set_slot(s, code, slot, product_id=p.id, par=max(held, 1), price_fen=p.price_fen,
                                  actor_id=None)
                if held:
                    lot = Lot(product_id=p.id, lot_no=f"{code}-{slot}", expires_on=_today + dt.timedelta(days=200))
                    s.add(lot)
                    s.flush()
                    ledger.move(s, product_id=p.id, qty_milli=held * 1000, lot_id=lot.id,
                                from_location_id=supplier_loc, to_location_id=kiosk.location_id,
                                reason=MoveReason.REFILL)
            tokens[code] = registry.issue_token(s, code)
        kinds = {"K001": SiteType.HOSPITAL, "K002": SiteType.FACTORY, "K003": SiteType.SCHOOL}
        return {"fleet": [simulator.SimKiosk(code, token, kinds[code]) for code, token in tokens.items()],
                "tokens": tokens, "products": [p.id for p in products]}


class Recorder:
    """A transport that remembers what went out: (path, body) per request."""

    def __init__(self, send):
        self.send, self.sent = send, []

    def __call__(self, method, path, token, body):
        self.sent.append((path, body))
        return self.send(method, path, token, body)


def kiosk_sales(s) -> list[tuple[str, str, dt.datetime, dt.date]]:
    return s.execute(select(Kiosk.code, Sale.txn_id, Sale.sold_at, Sale.local_date)
                     .join(Kiosk, Kiosk.id == Sale.kiosk_id).where(Sale.channel == Channel.KIOSK)).all()


# --- the rate model -------------------------------------------------------------------------------

def test_selling_rates_follow_site_day_and_hour():
    monday, saturday = MONDAY, MONDAY + dt.timedelta(days=5)

    def per_day(site, day):
        return sum(simulator.expected_sales(site, day + dt.timedelta(hours=h)) for h in range(24))

    for site in SiteType:
        assert 15 <= per_day(site, monday) <= 40, site
    assert per_day(SiteType.SCHOOL, saturday) == 0
    assert per_day(SiteType.GOVERNMENT, saturday) < 2
    assert per_day(SiteType.HOSPITAL, saturday) > 20 and per_day(SiteType.FACTORY, saturday) > 20
    at = lambda site, hour: simulator.expected_sales(site, monday + dt.timedelta(hours=hour))  # noqa: E731
    assert at(SiteType.SCHOOL, 2) == at(SiteType.GOVERNMENT, 23) == 0            # nights
    assert at(SiteType.HOSPITAL, 3) < at(SiteType.HOSPITAL, 10) / 10             # quiet at night
    assert at(SiteType.CANTEEN, 12) > 5 * at(SiteType.CANTEEN, 15)               # meal times
    rng = random.Random(3)
    draws = [simulator.poisson(rng, 2.5) for _ in range(4000)]
    assert abs(sum(draws) / len(draws) - 2.5) < 0.15


def test_sales_never_fall_before_a_window_that_starts_inside_a_second(monkeypatch):
    """A run that starts at 10:00:00.5 sends no sale stamped 10:00:00: the API's times are whole
    seconds, so the simulator must not round a sale to before its window (the demo test saw it)."""
    monkeypatch.setattr(simulator, "expected_sales", lambda site, moment: 36000.0)  # ten a second
    start = MONDAY + dt.timedelta(hours=10, microseconds=500_000)
    sent = []

    def send(method, path, token, body):
        if path.endswith("/planogram"):
            return 200, {"slots": [{"slot": "A1", "sku": "SIM001", "price_fen": 100, "on_hand": 10**6}]}
        if path.endswith("/sales"):
            sent.extend(body["sales"])
            return 200, {"accepted": [sale["txn_id"] for sale in body["sales"]]}
        return 200, {}

    simulator.simulate(send=send, kiosks=[("K001", "t", "hospital")], start=start, days=3 / 86400, seed=1,
                       offline_share=0, resend_share=0)
    times = [dt.datetime.fromisoformat(sale["sold_at"]) for sale in sent]
    assert len(times) > 5
    assert all(start <= at < start + dt.timedelta(seconds=3) for at in times), min(times)


def test_a_fleet_runs_window_after_window_at_the_volume_asked():
    """A Fleet's counters keep their sequence from one run to the next (no txn_id used twice), a
    run at a tenth of the volume sells about a tenth, and planogram_every_days spares the fetches
    (the demo's scaled-down history)."""
    sent, fetched = [], []

    def send(method, path, token, body):
        if path.endswith("/planogram"):
            fetched.append(path)
            return 200, {"slots": [{"slot": "A1", "sku": "SIM001", "price_fen": 100, "on_hand": 10**6}]}
        if path.endswith("/sales"):
            sent.extend(body["sales"])
            return 200, {"accepted": [sale["txn_id"] for sale in body["sales"]]}
        return 204, None

    fleet = simulator.Fleet([("K001", "t", "hospital"), ("K002", "t", "factory")], seed=5, resend_share=0)
    full = fleet.run(send=send, start=MONDAY, days=1, offline_share=0)
    assert len(fetched) == 2 and full.accepted == len(sent) >= 30  # ~64 expected on a Monday
    first_window = len(sent)
    tuesday = MONDAY + dt.timedelta(days=1)
    tenth = fleet.run(send=send, start=tuesday, days=3, offline_share=0, volume=0.1, planogram_every_days=7)
    assert len(fetched) == 4  # once per counter at the window's start, not every morning
    assert tenth.accepted == len(sent) - first_window < first_window / 2  # ~19 expected in 3 days, ~190 at full volume
    ids = [sale["txn_id"] for sale in sent]
    assert len(ids) == len(set(ids))
    assert simulator.txn_id(5, "K001", 1) in ids and all(
        dt.datetime.fromisoformat(sale["sold_at"]) >= tuesday for sale in sent[first_window:])
    assert fleet.run(send=send, start=tuesday + dt.timedelta(days=3), days=1, offline_share=0,
                     volume=0).sales_made == 0


# --- in process ----------------------------------------------------------------------------------

def test_in_process_run_records_what_it_reports(app, session):
    data = seed_fleet(app)
    outage = (MONDAY + dt.timedelta(hours=20), MONDAY + dt.timedelta(hours=33))  # Mon 20:00 → Tue 09:00
    send = Recorder(simulator.client_sender(app))
    days = []
    stats = simulator.simulate(send=send, kiosks=data["fleet"], start=MONDAY, days=2, seed=11, resend_share=0.25,
                               outages={"K002": outage}, progress=lambda day, _stats: days.append(day))

    assert not stats.failures and stats.rejected == 0, (stats.failures, stats.rejections)
    assert days == [MONDAY.date(), MONDAY.date() + dt.timedelta(days=1)]  # one progress line per day
    recorded = kiosk_sales(session)
    assert len(recorded) == stats.accepted == stats.sales_made and stats.unsent == 0
    assert len({(code, txn) for code, txn, _, _ in recorded}) == len(recorded)  # nothing twice
    assert stats.resent_batches > 0 and stats.duplicates > 0
    assert stats.sales_sent == stats.accepted + stats.duplicates
    per_code = Counter(code for code, *_ in recorded)
    assert all(15 <= per_code[code] / 2 <= 60 for code in ("K001", "K002")), per_code  # hospital, factory
    assert 10 <= per_code["K003"] / 2 <= 40, per_code                                   # school

    # Counted on the local day they happened, as the simulator tallied them
    assert all(day == sold_at.astimezone(HALL_TZ).date() for *_, sold_at, day in recorded)
    assert Counter(day for *_, day in recorded) == stats.accepted_by_day
    # Deterministic ids: counter, seed, sequence
    assert sorted(txn for code, txn, _, _ in recorded if code == "K001")[:2] == [
        simulator.txn_id(11, "K001", 1), simulator.txn_id(11, "K001", 2)]
    # The school sells in the daytime only
    assert all(7 <= sold_at.astimezone(HALL_TZ).hour < 19 for code, _, sold_at, _ in recorded if code == "K003")

    # K002 was offline from Monday 20:00 to Tuesday 09:00: no heartbeat meanwhile, then its backlog in
    # one batch with sales from both days, each counted on its own day
    k002 = "/api/v1/kiosks/K002/"
    beats = [dt.datetime.fromisoformat(body["at"]) for path, body in send.sent if path == k002 + "heartbeat"]
    assert beats and not [at for at in beats if outage[0] < at <= outage[1]]
    batches = [[dt.datetime.fromisoformat(sale["sold_at"]) for sale in body["sales"]]
               for path, body in send.sent if path == k002 + "sales"]
    backlog = next(b for b in batches if any(t < outage[1] for t in b) and any(t >= outage[0] for t in b))
    in_outage = [t for t in backlog if outage[0] <= t < outage[1]]
    assert {t.date() for t in in_outage} == {MONDAY.date(), MONDAY.date() + dt.timedelta(days=1)}
    k002_days = Counter(day for code, _, _, day in recorded if code == "K002")
    assert k002_days[MONDAY.date()] >= sum(t.date() == MONDAY.date() for t in in_outage) > 0

    # Heartbeats: the last one at the end of the run, for every counter
    end = MONDAY + dt.timedelta(days=2)
    session.expire_all()
    kiosks = {k.code: k for k in session.scalars(select(Kiosk))}
    assert all(k.last_heartbeat_at == end for k in kiosks.values())
    assert all(k.temperature_c is not None for k in kiosks.values())
    assert kiosks["K001"].last_sale_at == max(t for code, _, t, _ in recorded if code == "K001")

    # Stock moved out of the counters exactly as sold, never below zero
    sold = dict(session.execute(select(SaleLine.product_id, func.sum(SaleLine.qty_milli))
                                .group_by(SaleLine.product_id)).all())
    levels = session.execute(select(StockLevel.product_id, func.sum(StockLevel.qty_milli))
                             .join(Location, Location.id == StockLevel.location_id)
                             .where(Location.kind == LocationKind.KIOSK).group_by(StockLevel.product_id)).all()
    assert {pid: qty for pid, qty in levels} == {pid: 3 * PLENTY * 1000 - sold.get(pid, 0) for pid in data["products"]}
    assert not session.scalars(select(StockLevel).join(Location, Location.id == StockLevel.location_id)
                               .where(Location.kind == LocationKind.KIOSK, StockLevel.qty_milli < 0)).all()
    session.rollback()

    # The same seed again: the same txn_ids and content, all duplicates, nothing recorded twice
    again = simulator.simulate(send=simulator.client_sender(app), kiosks=data["fleet"], start=MONDAY, days=2,
                               seed=11, resend_share=0.25, outages={"K002": outage})
    assert again.accepted == 0 and again.rejected == 0
    assert again.duplicates == again.sales_sent > 0 and again.sales_made == stats.sales_made
    assert len(kiosk_sales(session)) == len(recorded)
    session.rollback()


def test_counters_sell_only_what_they_hold(app, session):
    data = seed_fleet(app, scarce=True)  # K003: 3 pieces of A1, nothing else
    stats = simulator.simulate(send=simulator.client_sender(app), kiosks=data["fleet"][2:], start=MONDAY, days=1,
                               seed=5, offline_share=0, resend_share=0)
    assert not stats.failures and stats.rejected == 0
    assert stats.sold_out > 0 and 1 <= stats.accepted <= 3
    lines = session.execute(select(SaleLine.slot, func.sum(SaleLine.qty_milli)).group_by(SaleLine.slot)).all()
    assert lines == [("A1", 3000)]
    location = session.scalar(select(Kiosk.location_id).where(Kiosk.code == "K003"))
    assert session.scalar(select(StockLevel.qty_milli).where(StockLevel.location_id == location)) == 0
    session.rollback()


def test_outages_are_drawn_from_the_seed(app):
    data = seed_fleet(app)
    real = simulator.client_sender(app)

    def busy(method, path, token, body):  # a server that cannot take sales right now
        return (503, {"error": "服务暂不可用"}) if path.endswith("/sales") else real(method, path, token, body)

    runs = [simulator.simulate(send=busy, kiosks=data["fleet"], start=MONDAY, days=1, seed=seed,
                               offline_share=0.34) for seed in (1, 1, 2)]
    assert runs[0].offline == runs[1].offline and len(runs[0].offline) == 1
    assert all(len(r.offline) == 1 for r in runs)
    # The counters keep their sales for later
    assert runs[0].accepted == 0 and runs[0].unsent == runs[0].sales_made > 0


# --- over HTTP and from the command line ------------------------------------------------------------

@pytest.fixture
def server(live_server):
    yield live_server
    time.sleep(0.2)  # let waitress close its finished connections itself (see tests/kiosks/test_kiosk_api.py)


def test_run_over_http(app, session, server):
    data = seed_fleet(app)
    stats = simulator.simulate(send=simulator.http_sender(server), kiosks=data["fleet"], start=MONDAY, days=1,
                               seed=3, resend_share=0.2)
    assert not stats.failures and stats.rejected == 0
    assert stats.accepted == stats.sales_made == len(kiosk_sales(session)) > 20
    assert stats.heartbeats == 3 * 24 and stats.planograms == 3
    session.rollback()


def test_command_issues_tokens_and_reports(app, session, database_url, monkeypatch):
    data = seed_fleet(app)
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["simulate-kiosks", "--kiosks", "2", "--days", "1", "--in-process",
                                       "--seed", "4", "--start", MONDAY.date().isoformat()])
    assert result.exit_code == 0, result.output
    assert f"{MONDAY.date()}：" in result.output and "接受" in result.output
    recorded = kiosk_sales(session)
    assert {code for code, *_ in recorded} == {"K001", "K002"} and recorded
    assert registry.kiosk_for_token(session, data["tokens"]["K001"]) is None  # rotated
    assert registry.kiosk_for_token(session, data["tokens"]["K003"]).code == "K003"  # not simulated
    session.rollback()

    refused = CliRunner().invoke(main, ["simulate-kiosks", "--days", "1"])
    assert refused.exit_code != 0 and "--url" in refused.output
