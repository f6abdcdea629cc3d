"""Product search and the till's first load at 100k products and a year of sales: each kind of search
(barcode, sku, name fragment, name start, pinyin initials, one Chinese character) through the app
function (inventory.search + the rows the endpoint answers) and through HTTP (the Flask test client),
against the plain SQL that does the same lookup on the same indexes, in the same run; then the
till's first load (the page, the quick keys, the whole catalogue the offline till downloads).

    python -m bench.search [--database-url URL] [--products 100000] [--lines 1150000]

The data: ``--products`` products (names from a few hundred Guizhou words, so that fragments match
tens to thousands of them; one EAN-13 each) and a year of hall sales ending today, ``--lines``
lines in all (2.5 a sale), the products drawn with a long tail (a few sell every day, most
rarely). Rows are written with plain bulk SQL. Without --database-url a temporary SQLite file;
on an existing database the rows are added beside what is there: point it at a scratch database.

Printed: median and p95 (ms) of each kind, and ``ratio=`` app time / plain SQL time (above 1 is
slower than plain SQL), as bench.reports does.
"""
from __future__ import annotations

import argparse
import bisect
import datetime as dt
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

import pos.schema  # noqa: F401  (every table)
from inventory.barcodes import gs1_check_digit
from inventory.catalogue import pinyin_initials
from inventory.localtime import HALL_TZ, local_today, utcnow
from inventory.models import Barcode, Location, LocationKind, Product
from pos.core.db import make_engine, normalise_url
from pos.migrate import upgrade
from pos.models import Role, Sale, SaleLine, Till

PLACES = ["梵净山", "松桃", "印江", "思南", "万山", "孟溪", "盘信", "正大", "蓼皋", "木黄", "合水", "乌江",
          "苗岭", "黔东", "铜仁", "石阡", "沿河", "德江", "江口", "玉屏"]
KINDS = ["野生", "高山", "有机", "生态", "手工", "古法", "农家", "特级", "精选", "原味", "土法", "林下"]
GOODS = ["绿茶", "红茶", "抹茶", "蜂蜜", "腊肉", "香肠", "米粉", "粉丝", "菜籽油", "山茶油", "辣椒", "木耳",
         "香菇", "天麻", "核桃", "板栗", "猕猴桃", "刺梨汁", "豆腐干", "糍粑", "苗绣", "银饰", "竹编", "蜡染",
         "土鸡蛋", "红薯粉", "黄豆", "糯米", "小米", "魔芋"]
PACKS = ["250g", "500g", "1kg", "礼盒", "袋装", "罐装", "散称", "2斤装"]
CHUNK = 20_000
RUNS = 30  # timed repetitions of each kind (after one warm-up)


def _initials(part: str, cache: dict) -> str:
    if part not in cache:
        cache[part] = pinyin_initials(part)
    return cache[part]


def build_products(conn, n: int, run: str) -> list[dict]:
    rng = random.Random(16)
    cache: dict = {}
    products, barcodes = [], []
    next_id = (conn.scalar(select(func.max(Product.id))) or 0) + 1
    next_bc = (conn.scalar(select(func.max(Barcode.id))) or 0) + 1
    for i in range(n):
        parts = [rng.choice(PLACES), rng.choice(KINDS), rng.choice(GOODS)]
        pack = rng.choice(PACKS)
        name = "".join(parts) + f"（{pack}）"
        initials = "".join(_initials(p, cache) for p in parts) + _initials(pack, cache)
        pid = next_id + i
        products.append({"id": pid, "sku": f"S{run}{i:06d}", "name": name, "pinyin_initials": initials,
                         "unit": "piece", "sold_by_weight": False, "price_fen": rng.randrange(500, 30000),
                         "vat": "9", "active": True, "created_at": utcnow(), "catalogue_version": 0})
        ean = f"69{run[-3:]}{i:07d}"
        barcodes.append({"id": next_bc + i, "product_id": pid, "code": ean + gs1_check_digit(ean), "kind": "ean13"})
    for rows, model in ((products, Product), (barcodes, Barcode)):
        for k in range(0, len(rows), CHUNK):
            conn.execute(insert(model.__table__), rows[k:k + CHUNK])
    return products


def build_sales(conn, products: list[dict], lines: int, run: str) -> int:
    """A year of hall sales ending today, 2.5 lines a sale, products on a long tail."""
    rng = random.Random(2026)
    hall = conn.scalar(select(Location.id).where(Location.code == "HALL"))
    if hall is None:
        with Session(bind=conn) as s:
            location = Location(code="HALL", name="卖场", kind=LocationKind.HALL_FLOOR)
            s.add(location)
            s.flush()
            hall = location.id
    weights = [1.0 / (k + 1) ** 1.1 for k in range(len(products))]  # ok-float: odds
    cumulative, total = [], 0.0  # ok-float: odds
    for w in weights:
        total += w
        cumulative.append(total)
    order = list(range(len(products)))
    rng.shuffle(order)

    def pick():
        return products[order[bisect.bisect_left(cumulative, rng.random() * total)]]  # ok-float: odds

    today = local_today()
    first = today - dt.timedelta(days=364)
    sale_id = (conn.scalar(select(func.max(Sale.id))) or 0) + 1
    line_id = (conn.scalar(select(func.max(SaleLine.id))) or 0) + 1
    sales_buf, lines_buf, written, n = [], [], 0, 0
    now = utcnow()
    while written < lines:
        k = min(2 if rng.random() < 0.5 else 3, lines - written)  # ok-float: odds
        day = first + dt.timedelta(days=n * 365 // max(1, lines * 2 // 5))
        day = min(day, today)
        local = dt.datetime.combine(day, dt.time(9), tzinfo=HALL_TZ) + dt.timedelta(seconds=rng.randrange(43200))
        subtotal = 0
        chosen = {p["id"]: p for p in (pick() for _ in range(k))}.values()
        for no, p in enumerate(chosen, start=1):
            subtotal += p["price_fen"]
            lines_buf.append({"id": line_id, "sale_id": sale_id, "line_no": no, "product_id": p["id"],
                              "qty_milli": 1000, "unit_price_fen": p["price_fen"], "gross_fen": p["price_fen"],
                              "discount_fen": 0, "net_fen": p["price_fen"], "vat": "9", "certified": False})
            line_id += 1
            written += 1
        sales_buf.append({"id": sale_id, "receipt_no": f"Q{run}-{sale_id}", "channel": "hall", "status": "completed",
                          "content_hash": "0" * 64, "sold_at": local, "local_date": day, "recorded_at": now,
                          "subtotal_fen": subtotal, "discount_fen": 0, "rounding_fen": 0, "total_fen": subtotal,
                          "reprint_count": 0, "after_shift_closed": False, "location_id": hall})
        sale_id += 1
        n += 1
        if len(lines_buf) >= CHUNK:
            conn.execute(insert(Sale.__table__), sales_buf)
            conn.execute(insert(SaleLine.__table__), lines_buf)
            sales_buf, lines_buf = [], []
    if sales_buf:
        conn.execute(insert(Sale.__table__), sales_buf)
        conn.execute(insert(SaleLine.__table__), lines_buf)
    if conn.dialect.name == "postgresql":
        for table in ("products", "barcodes", "sales", "sale_lines", "locations"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"))
    return written


def plain_sql(dialect: str) -> dict[str, str]:
    """The same lookups by hand, on the same indexes: 20 rows, by sku."""
    cols = "p.id, p.sku, p.name, p.unit, p.sold_by_weight, p.price_fen"
    if dialect == "postgresql":
        fragment = f"SELECT {cols} FROM products p WHERE p.active AND lower(p.name) LIKE :like ORDER BY p.sku LIMIT 20"
        prefix = (f'SELECT {cols} FROM products p WHERE p.active AND lower(p.name) COLLATE "C" >= :q '
                  f'AND lower(p.name) COLLATE "C" < :q || chr(1114111) ORDER BY p.sku LIMIT 20')
        initials = (f'SELECT {cols} FROM products p WHERE p.active AND p.pinyin_initials COLLATE "C" >= :q '
                    f'AND p.pinyin_initials COLLATE "C" < :q || chr(1114111) ORDER BY p.sku LIMIT 20')
        sku = f'SELECT {cols} FROM products p WHERE lower(p.sku) COLLATE "C" = :q AND p.active'
    else:
        fragment = (f"SELECT {cols} FROM products p WHERE p.active AND p.id IN "
                    f"(SELECT rowid FROM products_fts WHERE name LIKE :like) ORDER BY p.sku LIMIT 20")
        prefix = (f"SELECT {cols} FROM products p WHERE p.active AND lower(p.name) >= :q "
                  f"AND lower(p.name) < :q || char(1114111) ORDER BY p.sku LIMIT 20")
        initials = (f"SELECT {cols} FROM products p WHERE p.active AND p.pinyin_initials >= :q "
                    f"AND p.pinyin_initials < :q || char(1114111) ORDER BY p.sku LIMIT 20")
        sku = f"SELECT {cols} FROM products p WHERE lower(p.sku) = :q AND p.active"
    return {
        "barcode": f"SELECT {cols} FROM barcodes b JOIN products p ON p.id = b.product_id "
                   f"WHERE b.code = :q AND p.active",
        "sku": sku, "name fragment": fragment, "name start": prefix, "pinyin initials": initials,
        "one character": f"SELECT {cols} FROM products p WHERE p.active AND p.name LIKE :like ORDER BY p.sku LIMIT 20",
    }


def quick_plain(dialect: str) -> str:
    """The 30 days' most sold, by hand, on the same indexes (grouped by product_id + 0 as the app does:
    grouped by the bare column, SQLite reads every sale line in ix_sale_lines_product order)."""
    return ("SELECT l.product_id + 0 AS product_id, count(*) AS n FROM sales s JOIN sale_lines l ON l.sale_id = s.id "
            "WHERE s.local_date >= :since AND s.status = 'completed' GROUP BY l.product_id + 0 ORDER BY n DESC LIMIT 12")


def timed(fn, runs: int = RUNS) -> list[float]:  # ok-float: seconds
    fn()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def stats(samples: list[float]) -> tuple[float, float]:  # ok-float: milliseconds
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000


def login(app, run: str):
    from pos.accounts.users import create_user
    from pos.core.db import session_scope

    with session_scope(app) as s:
        create_user(s, username=f"bench-{run}", role=Role.CASHIER, password="bench-password-1")
        hall = s.scalar(select(Location.id).where(Location.code == "HALL"))
        s.add(Till(code=f"Q{run[-6:]}", name="压测收银台", location_id=hall, printer_uri="none", paper_columns=48))
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post("/login", data={"pw-username": f"bench-{run}", "pw-password": "bench-password-1",
                                           "pw-csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client, f"Q{run[-6:]}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=1_150_000, help="sale lines over the year (default 1,150,000)")
    args = parser.parse_args(argv)
    tmp = None
    url = args.database_url
    if not url:
        tmp = tempfile.TemporaryDirectory(prefix="songtao-bench-")
        url = f"sqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
    url = normalise_url(url)
    upgrade(url)
    engine = make_engine(url)
    run = utcnow().strftime("%M%S%f")[:8]
    try:
        started = time.perf_counter()
        with engine.begin() as conn:
            products = build_products(conn, args.products, run)
            lines = build_sales(conn, products, args.lines, run)
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
        built = time.perf_counter() - started
        report(url, engine, products, lines, built, run)
    finally:
        engine.dispose()
        if tmp is not None:
            tmp.cleanup()


def report(url: str, engine, products: list[dict], lines: int, built: float, run: str) -> None:  # ok-float: s
    from pos import create_app
    from pos.hall.api.products import products_out
    from pos.hall.popular import popular_for_search
    from inventory.search import search_ids

    dialect = engine.dialect.name
    rng = random.Random(7)
    sample = rng.choice(products)
    with engine.connect() as conn:
        barcode = conn.scalar(select(Barcode.code).where(Barcode.product_id == sample["id"]))
    name = sample["name"]
    queries = {
        "barcode": barcode, "sku": sample["sku"].lower(), "name fragment": name[2:5],
        "name start": name[:3], "pinyin initials": sample["pinyin_initials"][:4], "one character": "茶",
    }
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-only-secret-key"})
    client, till = login(app, run)
    plain = plain_sql(dialect)
    print(f"database: {dialect}   {len(products):,} products, {lines:,} sale lines over a year "
          f"(rows written in {built:.1f} s)")
    print(f"{'search':<18}{'q':<16}{'hits':>6}{'app med/p95 ms':>18}{'HTTP med/p95 ms':>18}{'SQL med/p95 ms':>18}")
    ratios = []
    with app.app_context():
        for kind, q in queries.items():
            def through_app():
                with Session(engine) as s:
                    ids = search_ids(s, q, sold=popular_for_search(s))
                    return ids, products_out(s, ids[:20])

            def through_http():
                r = client.get("/api/v1/products/search", query_string={"q": q})
                assert r.status_code == 200, r.get_data(as_text=True)[:200]
                return r

            def by_hand():
                with engine.connect() as conn:
                    return conn.execute(text(plain[kind]), {"q": q.lower(), "like": f"%{q.lower()}%"}).all()

            hits = len(through_app()[0])
            app_ms, http_ms, sql_ms = stats(timed(through_app)), stats(timed(through_http)), stats(timed(by_hand))
            ratios.append((kind, app_ms[0] / max(sql_ms[0], 1e-3)))
            print(f"{kind:<18}{q:<16}{hits:>6}{app_ms[0]:>10.1f}/{app_ms[1]:<7.1f}{http_ms[0]:>10.1f}/{http_ms[1]:<7.1f}"
                  f"{sql_ms[0]:>10.1f}/{sql_ms[1]:<7.1f}")
    for kind, ratio in ratios:
        print(f"search {kind}: ratio={ratio:.2f} (time: above 1 is slower than plain SQL)")

    # --- the till's first load ------------------------------------------------------------------
    since = local_today() - dt.timedelta(days=29)
    loads = {
        "till page": lambda: client.get("/till", query_string={"till": till}),
        "quick keys": lambda: client.get("/api/v1/products/quick"),
        "shift": lambda: client.get("/api/v1/shifts/current", query_string={"till": till}),
        "catalogue (background)": lambda: client.get("/api/v1/catalogue", query_string={"till": till}),
    }
    print(f"{'till first load':<26}{'median ms':>10}{'p95 ms':>10}")
    medians = {}
    for what, fn in loads.items():
        assert fn().status_code in (200, 404), what
        med, p95 = stats(timed(fn, runs=5 if "catalogue" in what else 15))
        medians[what] = med
        print(f"{what:<26}{med:>10.1f}{p95:>10.1f}")
    with engine.connect() as conn:
        quick_sql = stats(timed(lambda: conn.execute(text(quick_plain(dialect)), {"since": since}).all(), runs=15))
    waits = medians["till page"] + medians["quick keys"] + medians["shift"]
    print(f"the cashier waits for the page, the shift and the quick keys: {waits:.1f} ms "
          f"(the catalogue downloads in the background: {medians['catalogue (background)']:.0f} ms)")
    print(f"quick keys: ratio={medians['quick keys'] / max(quick_sql[0], 1e-3):.2f} "
          f"(HTTP vs the plain 30-day aggregate, {quick_sql[0]:.1f} ms)")


if __name__ == "__main__":
    main()
