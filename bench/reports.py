"""Reporting speed: the consumption-collaboration statistics for a year (pos.reports.figures.collaboration,
every breakdown) against ONE hand-written SQL aggregation over the same rows (net amount by
channel and certified flag), in the same run on the same database.

    python -m bench.reports [--database-url URL] [--scale N]

The data: a year (2025) at ten times the hall's volume — the hall took about ¥9.6 million in a
year at an average ticket near ¥60 with ~2.5 lines a sale (products at ~¥24), the 126 counters about
¥0.6 million at one piece a sale — plus group purchases (unions, firms, canteens) and refunds now and then. ``--scale N``
divides the volume (``--scale 20`` for a quick run). The rows are written with plain bulk SQL
(executemany in chunks): this measures reporting, not checkout.

Without --database-url a temporary SQLite file is used. On an existing database the schema is
brought to the newest migration and the rows are added beside whatever is there, so point it at a
scratch database.
"""
from __future__ import annotations

import datetime as dt
import random
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
SELECT s.channel, l.certified, SUM(l.net_fen) AS net_fen
FROM sale_lines l JOIN sales s ON s.id = l.sale_id
WHERE s.status = 'completed' AND s.local_date >= :first AND s.local_date <= :last
GROUP BY s.channel, l.certified
"""


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

        def sale(channel: str, n: int, lines: list[tuple[dict, int, int]], **extra) -> None:
            day = start + dt.timedelta(days=n % days)
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

        for n in range(hall_sales):
            k = 2 if rng.random() < 0.5 else 3  # ok-float: odds; 2.5 lines on average
            lines = [(p, 1000, p["price"]) for p in rng.sample(products, k)]
            sale("hall", n, lines, till_id=world["tills"][n % len(world["tills"])], cashier_id=world["cashier"])
        for n in range(kiosk_sales):
            p = rng.choice(products)
            loc = world["kiosk_locs"][n % 126]
            sale("kiosk", n, [(p, 1000, p["price"])], location_id=loc)
        buyer_types = ["union", "enterprise", "canteen", "other"]
        for n in range(group_sales):
            lines = [(p, 1000 * rng.randint(5, 40), p["price"] * 9 // 10) for p in rng.sample(products, 8)]
            sale("group", n, lines, buyer_type=buyer_types[n % 4], location_id=world["base"])
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


def best_of(n: int, fn) -> tuple[float, object]:  # ok-float: seconds
    best, result = None, None
    for _ in range(n):
        started = time.perf_counter()
        result = fn()
        took = time.perf_counter() - started
        best = took if best is None else min(best, took)
    return best, result


def main(argv=None) -> None:
    db = bench_database(argv, prog="python -m bench.reports", doc=__doc__, default_scale=1,
                        scale_help="divide the volume by N (default 1: ten times the hall)")
    url, engine, scale = db.url, db.engine, db.scale
    first, last = dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)
    try:
        maker = sessionmaker(bind=engine, expire_on_commit=False)
        run = utcnow().strftime("%H%M%S%f")[:10]
        world = seed(maker, run)
        started = time.perf_counter()
        counts = generate(engine, world, scale, run)
        generated = time.perf_counter() - started

        def project():
            with Session(engine) as s:
                return reports.collaboration(s, first=first, last=last)

        def plain():
            with engine.connect() as conn:
                return conn.execute(text(PLAIN_SQL), {"first": first, "last": last}).all()

        project(), plain()  # warm both (caches, statement compilation)
        report_s, report = best_of(3, project)
        plain_s, rows = best_of(3, plain)
        with engine.connect() as conn:
            refunds = conn.scalar(text("SELECT COALESCE(SUM(rl.amount_fen), 0) FROM refund_lines rl "
                                       "JOIN refunds r ON r.id = rl.refund_id "
                                       "WHERE r.local_date >= :first AND r.local_date <= :last"),
                                  {"first": first, "last": last})
        plain_total = sum(int(r.net_fen) for r in rows)
        assert report["total_fen"] == plain_total - int(refunds), "the report and plain SQL disagree"
    finally:
        db.close()

    print(f"database: {engine.dialect.name}   year {YEAR} at ten times the hall's volume / {scale}   "
          f"(rows written in {generated:.1f} s)")
    for name, n in counts.items():
        print(f"  {name:<14}{n:>12,}")
    total = report["total_fen"]
    print(f"  takings       ¥{total // 100:>12,}  (hall ¥{report['by_channel']['hall']['total_fen'] // 100:,}, "
          f"counters ¥{report['by_channel']['kiosk']['total_fen'] // 100:,}, "
          f"group ¥{report['by_channel']['group']['total_fen'] // 100:,})")
    print(f"{'query':<52}{'best of 3 (ms)':>16}")
    print(f"{'pos.reports.figures.collaboration (every breakdown)':<52}{report_s * 1000:>16.1f}")
    print(f"{'plain SQL: SUM(net_fen) GROUP BY channel, certified':<52}{plain_s * 1000:>16.1f}")
    print(f"reports: {report_s * 1000:.1f} ms vs plain SQL {plain_s * 1000:.1f} ms, ratio={report_s / plain_s:.2f} "
          f"(time: above 1 is slower than plain SQL)")


if __name__ == "__main__":
    main()
