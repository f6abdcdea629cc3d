"""Issue 14, point 6: a counter that loses its connection over midnight AND a month's end keeps
selling, sends its backlog when it is back, and every sale counts on its own local day and month
(Sale.local_date, and the monthly summary's counter figures to the fen), however late it arrived.
The fleet simulator (kiosks.simulator) against the real counter API through the app's test
client, on SQLite and PostgreSQL (TEST_DATABASE_URL)."""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import select

from inventory import ledger
from inventory.localtime import HALL_TZ, local_today
from inventory.models import Location, LocationKind, Lot, MoveReason, Product, Supplier
from kiosks import registry, simulator
from kiosks.models import Kiosk, SiteType
from pos.core.db import session_scope
from pos.models import Channel, Sale
from pos.reports.monthly import monthly_summary

LAST_DAY = local_today().replace(day=1) - dt.timedelta(days=1)    # the last day of last month
MIDNIGHT = dt.datetime.combine(LAST_DAY + dt.timedelta(days=1), dt.time.min, tzinfo=HALL_TZ)
START = MIDNIGHT - dt.timedelta(hours=12)                          # noon on the last day
OUTAGE = (MIDNIGHT - dt.timedelta(hours=4), MIDNIGHT + dt.timedelta(hours=9))  # 20:00 → 09:00
PRICES = (1580, 1680, 6800, 3280)
STOCK = 300  # pieces per product: the run never sells out, so what it sells depends on the seed only


def _seed(app) -> dict:
    """K001, a hospital counter with four products in slots A1–A4, plenty of each."""
    with session_scope(app) as s:
        for code, kind in (("SUPPLIER", LocationKind.SUPPLIER), ("CUSTOMER", LocationKind.CUSTOMER)):
            s.add(Location(code=code, name=code, kind=kind))
        supplier = Supplier(name="松桃苗王食品有限公司", origin_county="松桃苗族自治县", origin_county_code="520628")
        s.add(supplier)
        s.flush()
        kiosk = registry.create_kiosk(s, code="K001", site_name="东莞市第五人民医院 门诊楼", host_org="东莞市第五人民医院",
                                      town="虎门镇", address="广东省东莞市虎门镇", site_type="hospital")
        source = ledger.virtual_location(s, LocationKind.SUPPLIER).id
        for n, price in enumerate(PRICES, 1):
            product = Product(sku=f"BL{n:03d}", name=f"松桃特产 {n}", pinyin_initials="", price_fen=price,
                              supplier_id=supplier.id, shelf_life_days=365)
            s.add(product)
            s.flush()
            registry.set_slot(s, "K001", f"A{n}", product_id=product.id, par=STOCK, price_fen=price, actor_id=None)
            lot = Lot(product_id=product.id, lot_no=f"BL-{n}", expires_on=local_today() + dt.timedelta(days=300))
            s.add(lot)
            s.flush()
            ledger.move(s, product_id=product.id, qty_milli=STOCK * 1000, lot_id=lot.id, from_location_id=source,
                        to_location_id=kiosk.location_id, reason=MoveReason.REFILL)
        return {"token": registry.issue_token(s, "K001")}


def test_a_backlog_across_midnight_and_a_month_end_counts_each_sale_on_its_own_day(app, monkeypatch):
    token = _seed(app)["token"]
    # Busy round the clock (4 sales an hour), so that sales fall on both sides of the midnight
    monkeypatch.setattr(simulator, "expected_sales", lambda site, moment: 4.0)
    sent = []
    real = simulator.client_sender(app)

    def send(method, path, bearer, body):
        sent.append((path, body))
        return real(method, path, bearer, body)

    stats = simulator.simulate(send=send, kiosks=[("K001", token, SiteType.HOSPITAL)], start=START, days=1,
                               seed=14, resend_share=0, outages={"K001": OUTAGE})
    assert not stats.failures and stats.rejected == 0, (stats.failures, stats.rejections)
    assert stats.accepted == stats.sales_made > 0 and stats.unsent == 0

    # The counter sent nothing during the outage, then one backlog with sales of both months
    batches = [body["sales"] for path, body in sent if path.endswith("/sales")]
    first_after = next(n for n, batch in enumerate(batches)
                       if any(dt.datetime.fromisoformat(sale["sold_at"]) >= OUTAGE[0] for sale in batch))
    backlog = [dt.datetime.fromisoformat(sale["sold_at"]).astimezone(HALL_TZ) for sale in batches[first_after]]
    assert max(backlog) >= MIDNIGHT and {t.date() for t in backlog if t < MIDNIGHT} == {LAST_DAY}
    assert min(t for t in backlog if t >= OUTAGE[0]) < MIDNIGHT
    before_midnight = [t for t in backlog if OUTAGE[0] <= t < MIDNIGHT]
    after_midnight = [t for t in backlog if MIDNIGHT <= t < OUTAGE[1]]
    assert before_midnight and after_midnight, backlog

    # What the counter said it sold, by its own local date and month (each txn_id once)
    said: dict[str, dict] = {}
    for batch in batches:
        for sale in batch:
            said[sale["txn_id"]] = sale
    amount_by_month: dict[str, int] = defaultdict(int)
    for sale in said.values():
        amount_by_month[f"{dt.datetime.fromisoformat(sale['sold_at']).astimezone(HALL_TZ):%Y-%m}"] += \
            sale["payment"]["amount_fen"]

    with session_scope(app) as s:
        rows = s.execute(select(Sale.txn_id, Sale.sold_at, Sale.local_date, Sale.total_fen)
                         .join(Kiosk, Kiosk.id == Sale.kiosk_id).where(Sale.channel == Channel.KIOSK)).all()
        assert {txn for txn, *_ in rows} == set(said)
        for txn, sold_at, day, total in rows:
            stated = dt.datetime.fromisoformat(said[txn]["sold_at"])
            assert sold_at == stated and day == stated.astimezone(HALL_TZ).date(), txn
            assert total == said[txn]["payment"]["amount_fen"], txn
        assert Counter(day for _, _, day, _ in rows) == stats.accepted_by_day
        assert set(stats.accepted_by_day) == {LAST_DAY, MIDNIGHT.date()}

        # The monthly summary counts each sale in its own month, to the fen
        for month, amount in amount_by_month.items():
            summary = monthly_summary(s, month=month)
            assert summary["by_channel"]["kiosk"]["total_fen"] == summary["total_fen"] == amount, month
            assert summary["by_kiosk"][0]["total_fen"] == amount, month
        assert set(amount_by_month) == {f"{LAST_DAY:%Y-%m}", f"{MIDNIGHT:%Y-%m}"}
        late_ones = [t for t in before_midnight if t.date() == LAST_DAY]
        assert late_ones and amount_by_month[f"{LAST_DAY:%Y-%m}"] > 0
