"""A busy Saturday on the served app: how long a hall sale takes (p50, p99) while eight tills sell
the same products in shuffled orders and four counters send batches of 200 sales, and while four
addresses flood the login page with wrong passwords; against the same tills' transactions written
as plain SQL (a sale row, its lines, the level updates) on the same database in the same run.

    python -m bench.contention [--database-url URL] [--scale N]

``--scale`` is the number of sales each till makes per phase (default 30); a till waits up to half
a second between sales (a dozen sales a second across the eight tills, far above a busy hall), each
counter sends a 200-sale batch every second, and the four attackers do not wait at all. The server runs in a process of its own, as on the
hall's server. The goal (issue 18, points B and 3): a hall sale's p99 under 1 s in every phase,
with no error.
The tests (tests/system/test_contention.py) use this module's hall, tills and counters.
"""
from __future__ import annotations

import datetime as dt
import http.cookiejar
import json
import random
import re
import statistics
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager

from sqlalchemy import select, text

from bench.common import bench_database
from inventory import catalogue, ledger
from inventory.localtime import utcnow
from inventory.models import Location, LocationKind, MoveReason
from kiosks import registry
from pos.accounts import users as accounts
from pos.core.db import session_scope
from pos.models import Till

TILLS = 8
COUNTERS = 4
SALES_PER_BATCH = 200
PRICES = (1280, 3800, 990, 5800)          # four products every till and counter sells
STOCK = 100_000                           # pieces of each, at the hall and at each counter
PASSWORD = "bench-password-9"
# A cashier scans and takes money between two sales: each till waits up to this long (at random)
# before its next sale; still a dozen sales a second across the tills, far above a busy hall.
THINK_SECONDS = 0.5  # ok-float: seconds
# A counter sends a batch of 200 sales, then its next one a second later (a real counter sends
# every few minutes): four counters keep a stream of several hundred sales a second coming.
COUNTER_PAUSE_SECONDS = 1.0  # ok-float: seconds
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(app, threads: int):
    """The app served by waitress on a free loopback port, in a thread."""
    from waitress import wasyncore
    from waitress.server import create_server

    port = free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=threads, ident="songtao-contention")
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        for channel in list(server._map.values()):
            channel.close()
        server.task_dispatcher.shutdown()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=10)


def _serve_forever(url: str, port: int, threads: int) -> None:  # pragma: no cover - a child process
    from waitress import serve

    from pos import create_app
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret-key"})
    serve(app, host="127.0.0.1", port=port, threads=threads, ident="songtao-bench", _quiet=True)


@contextmanager
def served_elsewhere(url: str, threads: int):
    """The app served by waitress in a process of its own, as on a hall's server: the clients'
    threads (tills, counters, attackers) do not share its interpreter lock."""
    import multiprocessing
    import socket

    port = free_port()
    child = multiprocessing.get_context("spawn").Process(target=_serve_forever, args=(url, port, threads),
                                                         daemon=True)
    child.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or not child.is_alive():
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        child.join(timeout=10)


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 302 after a login is the answer itself


class Browser:
    """A cashier's browser: cookies, the page's CSRF token, JSON calls."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                                  _KeepRedirects())
        self.token = ""

    def _open(self, request):
        try:
            with self.opener.open(request, timeout=300) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def login(self, username: str, password: str = PASSWORD) -> int:
        _, page = self._open(urllib.request.Request(self.base + "/login"))
        token = CSRF_META.search(page.decode()).group(1)
        form = urllib.parse.urlencode({"pw-username": username, "pw-password": password,
                                       "pw-csrf_token": token}).encode()
        status, _ = self._open(urllib.request.Request(self.base + "/login", data=form, method="POST"))
        if status == 302:
            _, page = self._open(urllib.request.Request(self.base + "/account"))
            found = CSRF_META.search(page.decode())
            self.token = found.group(1) if found else ""
        return status

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "X-CSRFToken": self.token})
        status, payload = self._open(request)
        return status, json.loads(payload) if payload else {}


def post_batch(base: str, code: str, token: str, sales: list) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}/api/v1/kiosks/{code}/sales", data=json.dumps({"sales": sales}).encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def build_hall(app, *, password: str = PASSWORD) -> dict:
    """The hall floor, TILLS tills with a cashier each, four products with stock, COUNTERS counters
    selling the same four products (planogram, token, stock)."""
    with app.app_context(), session_scope(app) as s:
        for code, kind in (("HALL", LocationKind.HALL_FLOOR), ("SUPPLIER", LocationKind.SUPPLIER),
                           ("CUSTOMER", LocationKind.CUSTOMER), ("LOSS", LocationKind.LOSS)):
            s.add(Location(code=code, name=code, kind=kind))
        s.flush()
        hall = s.scalar(select(Location.id).where(Location.code == "HALL"))
        supplier = s.scalar(select(Location.id).where(Location.code == "SUPPLIER"))
        products = [catalogue.create_product(s, sku=f"BUSY{i}", name=f"松桃特产 {i} 号", price_fen=price).id
                    for i, price in enumerate(PRICES)]
        for n in range(1, TILLS + 1):
            s.add(Till(code=f"H{n}", name=f"{n} 号收银台", location_id=hall, printer_uri="none", paper_columns=48))
            accounts.create_user(s, username=f"cashier{n}", role="cashier", password=password)
        accounts.create_user(s, username="admin", role="admin", password=password)
        counters = {}
        for n in range(1, COUNTERS + 1):
            code = f"K{n:03d}"
            kiosk = registry.create_kiosk(s, code=code, site_name=f"专柜 {n}", host_org="虎门镇人民政府", town="虎门镇",
                                          address="广东省东莞市虎门镇")
            for slot, (product, price) in enumerate(zip(products, PRICES), start=1):
                registry.set_slot(s, code, f"A{slot}", product_id=product, par=10, price_fen=price, actor_id=None)
            counters[code] = {"token": registry.issue_token(s, code), "location": kiosk.location_id}
        for product in products:
            for where in [hall] + [c["location"] for c in counters.values()]:
                ledger.move(s, product_id=product, qty_milli=STOCK * 1000, from_location_id=supplier,
                            to_location_id=where, reason=MoveReason.RECEIPT)
        return {"hall": hall, "products": products, "counters": counters}


def counter_sales(code: str, rng: random.Random, *, batch: int = 0) -> list[dict]:
    """SALES_PER_BATCH counter sales of 1–4 of the products each, in shuffled slot order."""
    sold_at = (utcnow() - dt.timedelta(minutes=5)).isoformat()
    sales = []
    for i in range(SALES_PER_BATCH):
        slots = rng.sample(range(1, len(PRICES) + 1), rng.randint(1, len(PRICES)))
        lines = [{"slot": f"A{slot}", "qty": 1, "unit_price_fen": PRICES[slot - 1]} for slot in slots]
        sales.append({"txn_id": f"{code}-{batch}-{i}", "sold_at": sold_at, "lines": lines,
                      "payment": {"method": "wechat", "amount_fen": sum(ln["unit_price_fen"] for ln in lines)}})
    return sales


def hall_sale(till_code: str, products: list[int]) -> dict:
    return {"client_sale_id": str(uuid.uuid4()), "till": till_code,
            "lines": [{"product_id": p, "qty_milli": 1000} for p in products],
            "payments": [{"method": "cash", "amount_fen": sum(PRICES), "tendered_fen": 50000}]}


def open_tills(base: str, *, password: str = PASSWORD) -> list[Browser]:
    """Every till's cashier logged in, with a shift open."""
    cashiers = []
    for n in range(1, TILLS + 1):
        browser = Browser(base)
        assert browser.login(f"cashier{n}", password) == 302
        status, _ = browser.post("/api/v1/shifts", {"till": f"H{n}", "opening_float_fen": 20000})
        assert status == 201
        cashiers.append(browser)
    return cashiers


def run_tills(cashiers: list[Browser], world: dict, sales_each: int, rng: random.Random,
              background=None) -> tuple[list[float], list[str]]:  # ok-float: seconds
    """Every till sells ``sales_each`` shuffled baskets at once while ``background()`` runs;
    returns each sale's seconds and the errors."""
    latencies: list[float] = []  # ok-float: seconds
    errors: list[str] = []
    baskets = [[rng.sample(world["products"], len(world["products"])) for _ in range(sales_each)]
               for _ in cashiers]
    done = threading.Event()

    def till(n: int) -> None:
        for basket in baskets[n]:
            time.sleep(THINK_SECONDS * random.random())
            started = time.perf_counter()
            status, answer = cashiers[n].post("/api/v1/sales", hall_sale(f"H{n + 1}", basket))
            latencies.append(time.perf_counter() - started)
            if status != 201:
                errors.append(f"till H{n + 1}: {status} {str(answer)[:200]}")

    threads = [threading.Thread(target=till, args=(n,)) for n in range(len(cashiers))]
    helper = threading.Thread(target=background, args=(done, errors)) if background else None
    if helper:
        helper.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    if helper:
        helper.join()
    return latencies, errors


def percentile(values: list[float], p: float) -> float:  # ok-float: seconds
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def plain_sql_latencies(engine, world: dict, sales_each: int) -> list[float]:  # ok-float: seconds
    """The tills' transactions as plain SQL from TILLS threads at once: one sale row, its lines
    and the level updates (in product order), committed; on the same database."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_plain_sales (id INTEGER PRIMARY KEY, till TEXT, "
                          "total_fen INTEGER)"))
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_plain_lines (sale_id INTEGER, product_id INTEGER, "
                          "net_fen INTEGER)"))
    latencies: list[float] = []  # ok-float: seconds
    ids = iter(range(1, 10**9))
    lock = threading.Lock()

    def till(n: int) -> None:
        for _ in range(sales_each):
            with lock:
                sale_id = next(ids)
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO bench_plain_sales (id, till, total_fen) VALUES (:i, :t, :f)"),
                             {"i": sale_id, "t": f"H{n}", "f": sum(PRICES)})
                conn.execute(text("INSERT INTO bench_plain_lines (sale_id, product_id, net_fen) VALUES (:s, :p, :f)"),
                             [{"s": sale_id, "p": p, "f": f} for p, f in zip(world["products"], PRICES)])
                for p in sorted(world["products"]):
                    conn.execute(text("UPDATE stock_levels SET qty_milli = qty_milli - 1000 "
                                      "WHERE location_id = :l AND product_id = :p"), {"l": world["hall"], "p": p})
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=till, args=(n,)) for n in range(TILLS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_plain_lines"))
        conn.execute(text("DROP TABLE bench_plain_sales"))
    return latencies


def main(argv=None) -> None:
    from pos import create_app

    db = bench_database(argv, prog="python -m bench.contention", doc=__doc__, default_scale=30,
                        scale_help="sales per till per phase")
    app = create_app({"DATABASE_URL": db.url, "SECRET_KEY": "bench-secret-key"})
    world = build_hall(app)
    rng = random.Random(18)
    sales_each = db.scale
    rows = []
    app.extensions["songtao.engine"].dispose()  # the server is another process from here on
    with served_elsewhere(db.url, threads=TILLS + COUNTERS + 6) as base:
        cashiers = open_tills(base)

        def counters(done: threading.Event, errors: list[str]) -> None:
            def one(code: str) -> None:
                batch = 0
                while not done.is_set():
                    status, answer = post_batch(base, code, world["counters"][code]["token"],
                                                counter_sales(code, random.Random(batch), batch=batch))
                    batch += 1
                    if status != 200 or answer.get("rejected"):
                        errors.append(f"counter {code}: {status} {str(answer)[:200]}")
                    done.wait(COUNTER_PAUSE_SECONDS)
            workers = [threading.Thread(target=one, args=(code,)) for code in world["counters"]]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        def login_flood(done: threading.Event, errors: list[str]) -> None:
            def one(n: int) -> None:
                attacker = Browser(base)
                while not done.is_set():
                    status = attacker.login("admin", "wrong-password")
                    if status >= 500 and status != 503:
                        errors.append(f"attacker {n}: {status}")
            workers = [threading.Thread(target=one, args=(n,)) for n in range(4)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        for name, background in (("tills alone", None), ("tills + 4 counters", counters),
                                 ("tills + login flood", login_flood)):
            latencies, errors = run_tills(cashiers, world, sales_each, rng, background)
            rows.append((name, latencies, errors))
    plain = plain_sql_latencies(app.extensions["songtao.engine"], world, sales_each)
    rows.append(("plain SQL, tills alone", plain, []))
    db.close()

    print(f"database: {app.extensions['songtao.engine'].dialect.name}   tills: {TILLS}, sales each: {sales_each}")
    print(f"{'phase':<26}{'sales':>7}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, latencies, errors in rows:
        print(f"{name:<26}{len(latencies):>7}{len(errors):>8}{1000 * statistics.median(latencies):>9.1f}"
              f"{1000 * percentile(latencies, 99):>9.1f}{1000 * max(latencies):>9.1f}")
        for error in errors[:3]:
            print(f"    {error}")
    worst = max(percentile(lat, 99) for name, lat, _ in rows if not name.startswith("plain"))
    plain_p99 = percentile(plain, 99)
    print(f"goal: p99 under 1000 ms with no error: {'met' if worst < 1 and not any(e for _, _, e in rows) else 'NOT met'}")
    print(f"contention: hall sale p99 {1000 * worst:.1f} ms vs plain SQL {1000 * plain_p99:.1f} ms, "
          f"ratio={worst / plain_p99:.2f} (times: above 1 is slower)")


if __name__ == "__main__":
    main()
