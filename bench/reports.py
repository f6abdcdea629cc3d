"""Reporting speed: the consumption-collaboration statistics for a year (pos.reports.figures.collaboration,
every breakdown) asked through the app over HTTP (the Flask test client: routing, login session,
JSON), against ONE hand-written SQL aggregation giving the same figures, in the same run on the same
database, interleaved, three runs each; and the monthly summary of one month over HTTP.

    python -m bench.reports [--database-url URL] [--scale N]

The data: a year (2025) of hall, counter (126) and group sales with refunds now and then, written
with plain bulk SQL (executemany in chunks; this measures reporting, not checkout), each day's sales
together and the days in order, as a hall's tables grow (not one month scattered over the whole
table). The volume constants below (¥9.6 M hall, ¥0.6 M counters, ×10) would give ≈4.4 M lines at
``--scale 1``; the default ``--scale 4`` writes ≈1.1 M lines, the "year at ten times the hall's
volume" that issue 16 sets for this bench. ``--scale 40`` for a quick run. The lines are written
without record_sale, so the reports' daily aggregate (pos.sales.daily_figures) is then rebuilt from
them with ``rebuild`` (the same SQL as ``songtao rebuild-aggregates``; its time is printed).

The hand-written aggregation reads the daily aggregate, not the lines: it is the least any report
over this data must do (one GROUP BY month, channel, buyer type, supplier, county code, township
gives every figure of the statistics: sums of its rows, the sale counts included, are exact by the
aggregate's construction). Comparing the app with it measures what the app adds (HTTP, two grouped
statements, JSON). The lines-based computation (``collaboration_on_lines``, what the report did
before issue 16) is timed once for reference.

Without --database-url a temporary SQLite file is used. On an existing database the schema is
brought to the newest migration and the rows are added beside whatever is there, so point it at a
scratch database.
"""
from __future__ import annotations

import datetime as dt
import random
import re
import time

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench.common import bench_database
from inventory.localtime import HALL_TZ, utcnow
from inventory.models import Location, LocationKind, Product, Supplier
from pos.reports import figures as reports
from pos.models import Refund, RefundLine, Role, Sale, SaleLine, Till, User

YEAR = 2025
HALL_YEAR_FEN = 9_600_000_00 * 10       # ten times the hall's ¥9.6 M
KIOSK_YEAR_FEN = 600_000_00 * 10        # ten times the counters' ¥0.6 M
GROUP_SALES = 2000                      # a year of group purchases at full scale
REFUND_EVERY = 300                      # about one sale in 300 is partly refunded
CHUNK = 20_000
COUNTIES = [("520628", "松桃苗族自治县", ["蓼皋街道", "正大镇", "孟溪镇", "盘信镇"]),
            ("520527", "印江土家族苗族自治县", ["木黄镇", "合水镇"]),
            ("520603", "万山区", ["高楼坪乡"]),
            ("520624", "思南县", ["许家坝镇", "塘头镇"])]
PRICES = [1280, 1990, 2350, 3800, 4500, 5800, 6800, 9900, 12800, 16800]

PLAIN_SQL = """
SELECT {month} AS month, channel, buyer_type, supplier_id, county_code, township,
       SUM(sales_fen - refunds_fen) AS total_fen,
       SUM(CASE WHEN certified THEN sales_fen - refunds_fen ELSE 0 END) AS certified_fen,
       SUM(CASE WHEN county_code = '520628' THEN sales_fen - refunds_fen ELSE 0 END) AS songtao_fen,
       SUM(refunds_fen) AS refunds_fen, SUM(sales_n) AS sales, SUM(supplier_sales) AS supplier_sales,
       SUM(origin_sales) AS origin_sales, SUM(n_lines) AS n_lines
FROM daily_figures
WHERE local_date >= :first AND local_date <= :last
GROUP BY 1, channel, buyer_type, supplier_id, county_code, township
"""
MONTH_SQL = {"sqlite": "CAST(strftime('%Y%m', local_date) AS INTEGER)",
             "postgresql": "CAST(EXTRACT(YEAR FROM local_date) * 100 + EXTRACT(MONTH FROM local_date) AS INTEGER)"}


def seed(maker: sessionmaker, run: str) -> dict:
    """Locations, tills, a cashier, 24 suppliers in four counties and 240 products (about 60 %
    certified, ~¥24 on average, so that ~2.5 lines make a ¥60 ticket)."""
    rng = random.Random(11)
    with maker.begin() as s:
        hall = s.scalars(select(Location).where(Location.code == "HALL")).first()
        if hall is None:
            hall = Location(code="HALL", name="卖场", kind=LocationKind.HALL_FLOOR)
            s.add(hall)
        base = Location(code=f"BB-{run}", name="压测物流基地", kind=LocationKind.BASE)
        s.add(base)
        s.flush()
        kiosk_locs = []
        for i in range(126):
            loc = Location(code=f"BK{i:03d}-{run}", name=f"压测专柜 {i}", kind=LocationKind.KIOSK)
            s.add(loc)
            kiosk_locs.append(loc)
        cashier = User(username=f"bench-{run}", display_name="压测", role=Role.CASHIER, password_hash="x")
        tills = [Till(code=f"R{i}{run[-4:]}"[:10], name=f"压测收银台 {i}", location_id=hall.id) for i in range(6)]
        s.add(cashier)
        s.add_all(tills)
        s.flush()
        suppliers = []
        for i in range(24):
            code, county, towns = COUNTIES[i % len(COUNTIES)]
            sup = Supplier(name=f"压测供应商 {run} {i}", origin_county=county, origin_county_code=code,
                           origin_township=towns[i % len(towns)])
            s.add(sup)
            suppliers.append(sup)
        s.flush()
        products = []
        for i in range(240):
            sup = suppliers[i % len(suppliers)]
            p = Product(sku=f"BR-{run}-{i}", name=f"压测商品 {i}", pinyin_initials="",
                        price_fen=rng.choice(PRICES) // 3, supplier_id=sup.id)
            s.add(p)
            s.flush()
            products.append({"id": p.id, "price": p.price_fen, "certified": rng.random() < 0.6,  # ok-float: odds
                             "supplier_id": sup.id, "supplier_name": sup.name, "county": sup.origin_county,
                             "county_code": sup.origin_county_code, "township": sup.origin_township})
        return {"hall": hall.id, "base": base.id, "kiosk_locs": [k.id for k in kiosk_locs],
                "tills": [t.id for t in tills], "cashier": cashier.id, "products": products}


class Writer:
    """Rows in chunks, with ids chosen here (so lines can name their sale without RETURNING)."""

    def __init__(self, conn):
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.buffers: dict = {Sale: [], SaleLine: [], Refund: [], RefundLine: []}
        self.next_id = {m: (conn.scalar(select(func.max(m.id))) or 0) + 1 for m in self.buffers}
        self.counts = dict.fromkeys(self.buffers, 0)

    def take_id(self, model) -> int:
        n = self.next_id[model]
        self.next_id[model] = n + 1
        return n

    def add(self, model, row: dict) -> None:
        buf = self.buffers[model]
        buf.append(row)
        self.counts[model] += 1
        if len(buf) >= CHUNK:
            self.flush(model)

    def flush(self, model=None) -> None:
        # parents first, so the foreign keys hold on PostgreSQL
        for m in ([model] if model else [Sale, SaleLine, Refund, RefundLine]):
            if model is not None and m is SaleLine:
                self.flush(Sale)
            if model is not None and m is RefundLine:
                self.flush(Refund)
            buf = self.buffers[m]
            if buf:
                self.conn.execute(insert(m.__table__), buf)
                buf.clear()


def generate(engine, world: dict, scale: int, run: str) -> dict:
    rng = random.Random(2025)
    products = world["products"]
    start = dt.date(YEAR, 1, 1)
    days = (dt.date(YEAR + 1, 1, 1) - start).days
    average_price = sum(p["price"] for p in products) // len(products)
    hall_sales = HALL_YEAR_FEN * 2 // (5 * average_price) // scale    # 2.5 lines of one piece a sale
    kiosk_sales = KIOSK_YEAR_FEN // average_price // scale            # one piece a sale
    group_sales = max(1, GROUP_SALES // scale)
    now = utcnow()
    with engine.begin() as conn:
        w = Writer(conn)

        def sale(channel: str, n: int, day: dt.date, lines: list[tuple[dict, int, int]], **extra) -> None:
            local = dt.datetime.combine(day, dt.time(9), tzinfo=HALL_TZ) + dt.timedelta(seconds=rng.randrange(43200))
            sale_id = w.take_id(Sale)
            subtotal = 0
            line_rows = []
            for k, (p, qty, price) in enumerate(lines, start=1):
                gross = price * qty // 1000
                discount = gross // 20 if channel == "hall" and k == 1 and n % 7 == 0 else 0  # a few discounts
                subtotal += gross
                line_rows.append({
                    "id": w.take_id(SaleLine), "sale_id": sale_id, "line_no": k, "product_id": p["id"],
                    "qty_milli": qty, "unit_price_fen": price, "gross_fen": gross, "discount_fen": discount,
                    "net_fen": gross - discount, "vat": "9", "certified": p["certified"],
                    "certificate_no": "BENCH" if p["certified"] else None, "supplier_id": p["supplier_id"],
                    "supplier_name": p["supplier_name"], "origin_county": p["county"],
                    "origin_county_code": p["county_code"], "origin_township": p["township"],
                    "cost_fen": gross * 7 // 10,
                })
            discount = sum(r["discount_fen"] for r in line_rows)
            w.add(Sale, {
                "id": sale_id, "receipt_no": f"B{run}-{channel[0]}-{sale_id}", "channel": channel,
                "status": "completed", "content_hash": "0" * 64, "sold_at": local, "local_date": day,
                "recorded_at": now, "subtotal_fen": subtotal, "discount_fen": discount, "rounding_fen": 0,
                "total_fen": subtotal - discount, "reprint_count": 0, "after_shift_closed": False,
                "till_id": None, "kiosk_id": None, "txn_id": None, "buyer_type": None, "cashier_id": None,
                "location_id": world["hall"], **extra,
            })
            for row in line_rows:
                w.add(SaleLine, row)
            if n % REFUND_EVERY == 0:  # the first line back, a few days later (a later month now and then)
                first = line_rows[0]
                refund_day = min(day + dt.timedelta(days=3), dt.date(YEAR, 12, 31))
                refund_id = w.take_id(Refund)
                w.add(Refund, {
                    "id": refund_id, "refund_no": f"BR{run}-{refund_id}", "sale_id": sale_id,
                    "refunded_at": local + (refund_day - day), "local_date": refund_day, "user_id": world["cashier"],
                    "approved_by_id": world["cashier"], "reason": "压测", "method": "cash",
                    "total_fen": first["net_fen"] or 1, "till_id": None, "shift_id": None,
                })
                w.add(RefundLine, {"id": w.take_id(RefundLine), "refund_id": refund_id, "sale_line_id": first["id"],
                                   "qty_milli": first["qty_milli"], "amount_fen": first["net_fen"],
                                   "back_to_stock": True})

        # the year's sales in date order: each day's hall, counter and group sales together
        events = sorted([(n * days // hall_sales, 0, n) for n in range(hall_sales)]
                        + [(n * days // kiosk_sales, 1, n) for n in range(kiosk_sales)]
                        + [(n * days // group_sales, 2, n) for n in range(group_sales)])
        buyer_types = ["union", "enterprise", "canteen", "other"]
        for day_no, kind, n in events:
            day = start + dt.timedelta(days=day_no)
            if kind == 0:
                k = 2 if rng.random() < 0.5 else 3  # ok-float: odds; 2.5 lines on average
                lines = [(p, 1000, p["price"]) for p in rng.sample(products, k)]
                sale("hall", n, day, lines, till_id=world["tills"][n % len(world["tills"])],
                     cashier_id=world["cashier"])
            elif kind == 1:
                p = rng.choice(products)
                sale("kiosk", n, day, [(p, 1000, p["price"])], location_id=world["kiosk_locs"][n % 126])
            else:
                lines = [(p, 1000 * rng.randint(5, 40), p["price"] * 9 // 10) for p in rng.sample(products, 8)]
                sale("group", n, day, lines, buyer_type=buyer_types[n % 4], location_id=world["base"])
        w.flush()
        if conn.dialect.name == "postgresql":  # the ids were chosen here: move the sequences past them
            for table in ("sales", "sale_lines", "refunds", "refund_lines"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT MAX(id) FROM {table}))"))
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return {"sales": w.counts[Sale], "sale_lines": w.counts[SaleLine], "refunds": w.counts[Refund],
            "refund_lines": w.counts[RefundLine]}


def timed(fn) -> tuple[float, object]:  # ok-float: seconds
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def login(app, run: str):
    from pos.accounts.users import create_user
    from pos.core.db import session_scope

    with session_scope(app) as s:
        create_user(s, username=f"audit-{run}", role=Role.AUDITOR, password="bench-password-1")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post("/login", data={"pw-username": f"audit-{run}", "pw-password": "bench-password-1",
                                           "pw-csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


def plain_figures(rows) -> dict:
    """The hand-written aggregation's rows summed to the statistics' headline figures."""
    out = dict.fromkeys(("total_fen", "certified_fen", "songtao_fen", "refunds_fen", "sales"), 0)
    for r in rows:
        for k in out:
            out[k] += int(getattr(r, k))
    return out


def main(argv=None) -> None:
    from pos import create_app
    from pos.sales import daily_figures

    db = bench_database(argv, prog="python -m bench.reports", doc=__doc__, default_scale=4,
                        scale_help="divide the volume by N (default 4: ≈1.1 M lines, a year at ten times the hall)")
    url, engine, scale = db.url, db.engine, db.scale
    first, last = dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)
    try:
        maker = sessionmaker(bind=engine, expire_on_commit=False)
        run = utcnow().strftime("%H%M%S%f")[:10]
        world = seed(maker, run)
        started = time.perf_counter()
        counts = generate(engine, world, scale, run)
        generated = time.perf_counter() - started
        with Session(engine) as s, s.begin():
            rebuild_s, rebuilt = timed(lambda: daily_figures.rebuild(s, first, last))
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()

        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
        client = login(app, run)
        query = {"from": first.isoformat(), "to": last.isoformat()}
        sql = text(PLAIN_SQL.format(month=MONTH_SQL[engine.dialect.name]))

        def over_http():
            response = client.get("/api/v1/reports/collaboration", query_string=query)
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            return response.get_json()

        def plain():
            with engine.connect() as conn:
                return conn.execute(sql, {"first": first, "last": last}).all()

        def monthly():
            response = client.get("/api/v1/reports/monthly", query_string={"month": f"{YEAR}-06"})
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            return response.get_json()

        over_http(), plain(), monthly()  # warm all (caches, statement compilation)
        http_runs, plain_runs, monthly_runs = [], [], []
        for _ in range(3):  # interleaved
            took, report = timed(over_http)
            http_runs.append(took)
            took, rows = timed(plain)
            plain_runs.append(took)
            took, _ = timed(monthly)
            monthly_runs.append(took)
        with Session(engine) as s:
            lines_s, on_lines = timed(lambda: reports.collaboration_on_lines(s, first=first, last=last))
        headline = plain_figures(rows)
        assert {k: report[k] for k in headline} == headline, "the report and the hand-written SQL disagree"
        assert report == on_lines, "the report from the aggregate and the lines disagree"
    finally:
        db.close()

    print(f"database: {engine.dialect.name}   year {YEAR}, scale /{scale}   (rows written in {generated:.1f} s, "
          f"aggregate rebuilt in {rebuild_s:.1f} s: {rebuilt['rows']:,} rows)")
    for name, n in counts.items():
        print(f"  {name:<14}{n:>12,}")
    total = report["total_fen"]
    print(f"  takings       ¥{total // 100:>12,}  (hall ¥{report['by_channel']['hall']['total_fen'] // 100:,}, "
          f"counters ¥{report['by_channel']['kiosk']['total_fen'] // 100:,}, "
          f"group ¥{report['by_channel']['group']['total_fen'] // 100:,})")
    ms = lambda runs: " ".join(f"{r * 1000:8.1f}" for r in runs)  # noqa: E731
    print(f"{'query (three interleaved runs, ms)':<58}")
    print(f"{'year report over HTTP (/api/v1/reports/collaboration)':<58}{ms(http_runs)}")
    print(f"{'hand-written SQL over daily_figures (one GROUP BY)':<58}{ms(plain_runs)}")
    print(f"{'monthly summary over HTTP (/api/v1/reports/monthly)':<58}{ms(monthly_runs)}")
    print(f"{'for reference: the year from the lines (before issue 16)':<58}{lines_s * 1000:8.1f}")
    best_http, best_plain = min(http_runs), min(plain_runs)
    print(f"report over HTTP: {best_http * 1000:.1f} ms vs hand-written SQL {best_plain * 1000:.1f} ms, "
          f"ratio={best_http / best_plain:.2f} (time: above 1 is slower than plain SQL)")
    print(f"monthly summary over HTTP: best {min(monthly_runs) * 1000:.1f} ms (goal < 1000 ms)")


if __name__ == "__main__":
    main()
