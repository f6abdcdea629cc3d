"""A busy Saturday over real HTTP: eight tills selling the same products in shuffled orders while
four counters send batches of 200 sales, all at once, on the served app (waitress, urllib).

On PostgreSQL this deadlocked (issue 18, point B): every sale line upserted the one shared level
row of the customer location in basket order, a counter batch held those locks for the whole
batch, and nothing retried. Now: no sale answers an error, every sale is recorded exactly once,
and every level adds up to the fen (the same checks run on SQLite, where writers queue)."""
from __future__ import annotations

import datetime as dt
import http.cookiejar
import json
import random
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager

from sqlalchemy import func, select

from inventory import catalogue, ledger
from inventory.localtime import utcnow
from inventory.models import Location, LocationKind, MoveReason, StockMove
from kiosks import registry
from pos import accounts
from pos.db import session_scope
from pos.models import Sale, SaleLine, Till
from tests.conftest import TEST_PASSWORD, free_port

TILLS = 8
SALES_PER_TILL = 15
COUNTERS = 4
SALES_PER_BATCH = 200
PRICES = (1280, 3800, 990, 5800)          # four products every till and counter sells
STOCK = 10_000                            # pieces of each, at the hall and at each counter
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@contextmanager
def served(app, threads: int):
    """The app served by waitress on a free loopback port with enough threads for every client."""
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


class Browser:
    """A cashier's browser: cookies, the page's CSRF token, JSON calls."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.token = ""

    def _open(self, request):
        try:
            with self.opener.open(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def login(self, username: str) -> None:
        _, page = self._open(urllib.request.Request(self.base + "/login"))
        token = CSRF_META.search(page.decode()).group(1)
        form = urllib.parse.urlencode({"pw-username": username, "pw-password": TEST_PASSWORD,
                                       "pw-csrf_token": token}).encode()
        status, _ = self._open(urllib.request.Request(self.base + "/login", data=form, method="POST"))
        assert status in (200, 302)
        _, page = self._open(urllib.request.Request(self.base + "/account"))
        self.token = CSRF_META.search(page.decode()).group(1)

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
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def build_world(app) -> dict:
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
            accounts.create_user(s, username=f"cashier{n}", role="cashier", password=TEST_PASSWORD)
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


def counter_sales(code: str, rng: random.Random) -> list[dict]:
    sold_at = (utcnow() - dt.timedelta(minutes=5)).isoformat()
    sales = []
    for i in range(SALES_PER_BATCH):
        slots = rng.sample(range(1, len(PRICES) + 1), rng.randint(1, len(PRICES)))  # shuffled, 1–4 products
        lines = [{"slot": f"A{slot}", "qty": 1, "unit_price_fen": PRICES[slot - 1]} for slot in slots]
        sales.append({"txn_id": f"{code}-{i}", "sold_at": sold_at, "lines": lines,
                      "payment": {"method": "wechat", "amount_fen": sum(ln["unit_price_fen"] for ln in lines)}})
    return sales


def test_tills_and_counters_selling_the_same_products_at_once(app):
    world = build_world(app)
    rng = random.Random(18)
    batches = {code: counter_sales(code, rng) for code in world["counters"]}
    baskets = [[rng.sample(world["products"], len(world["products"])) for _ in range(SALES_PER_TILL)]
               for _ in range(TILLS)]
    errors: list[str] = []
    answers: dict[str, dict] = {}

    with served(app, threads=TILLS + COUNTERS + 2) as base:
        cashiers = []
        for n in range(1, TILLS + 1):
            browser = Browser(base)
            browser.login(f"cashier{n}")
            status, _ = browser.post("/api/v1/shifts", {"till": f"H{n}", "opening_float_fen": 20000})
            assert status == 201
            cashiers.append(browser)
        start = threading.Barrier(TILLS + COUNTERS)

        def till(n: int) -> None:
            start.wait(timeout=60)
            for basket in baskets[n]:
                body = {"client_sale_id": str(uuid.uuid4()), "till": f"H{n + 1}",
                        "lines": [{"product_id": p, "qty_milli": 1000} for p in basket],
                        "payments": [{"method": "cash", "amount_fen": sum(PRICES), "tendered_fen": 20000}]}
                status, answer = cashiers[n].post("/api/v1/sales", body)
                if status != 201:
                    errors.append(f"till H{n + 1}: {status} {answer}")

        def counter(code: str) -> None:
            start.wait(timeout=60)
            status, answer = post_batch(base, code, world["counters"][code]["token"], batches[code])
            answers[code] = answer
            if status != 200 or answer.get("rejected") or answer.get("duplicates"):
                errors.append(f"counter {code}: {status} {str(answer)[:300]}")

        threads = [threading.Thread(target=till, args=(n,)) for n in range(TILLS)]
        threads += [threading.Thread(target=counter, args=(code,)) for code in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in threads), "a till or counter hung"

    assert errors == []
    assert all(len(answers[code]["accepted"]) == SALES_PER_BATCH for code in batches)

    with app.app_context(), session_scope(app, read_only=True) as s:
        hall_sales = TILLS * SALES_PER_TILL
        assert s.scalar(select(func.count()).select_from(Sale).where(Sale.till_id.is_not(None))) == hall_sales
        assert s.scalar(select(func.count()).select_from(Sale).where(Sale.kiosk_id.is_not(None))) \
            == COUNTERS * SALES_PER_BATCH
        # every fen: what the tills and counters charged is what was recorded
        expected = hall_sales * sum(PRICES) + sum(
            sum(sum(ln["unit_price_fen"] for ln in sale["lines"]) for sale in batch) for batch in batches.values())
        assert s.scalar(select(func.sum(Sale.total_fen))) == expected
        assert s.scalar(select(func.sum(SaleLine.net_fen))) == expected
        customer = ledger.virtual_location(s, LocationKind.CUSTOMER).id
        for i, product in enumerate(world["products"]):
            slot = f"A{i + 1}"
            at_counters = {code: sum(1 for sale in batch for ln in sale["lines"] if ln["slot"] == slot)
                           for code, batch in batches.items()}
            assert ledger.level(s, world["hall"], product) == (STOCK - hall_sales) * 1000
            for code, sold in at_counters.items():
                assert ledger.level(s, world["counters"][code]["location"], product) == (STOCK - sold) * 1000
            assert ledger.level(s, customer, product) == (hall_sales + sum(at_counters.values())) * 1000
        # one move per line sold, none twice
        assert s.scalar(select(func.count()).select_from(StockMove).where(StockMove.reason == MoveReason.SALE)) \
            == s.scalar(select(func.count()).select_from(SaleLine))


def test_shuffled_baskets_lock_level_rows_in_product_order(app):
    """The rule that makes the test above pass on PostgreSQL, seen on any database: a sale's stock
    moves come out in product-id order whatever order the basket was scanned in."""
    world = build_world(app)
    with served(app, threads=4) as base:
        browser = Browser(base)
        browser.login("cashier1")
        shuffled = list(reversed(world["products"]))
        status, answer = browser.post("/api/v1/sales", {
            "client_sale_id": str(uuid.uuid4()), "till": "H1",
            "lines": [{"product_id": p, "qty_milli": 1000} for p in shuffled],
            "payments": [{"method": "cash", "amount_fen": sum(PRICES)}]})
        assert status == 201, answer
    with app.app_context(), session_scope(app, read_only=True) as s:
        moved = list(s.scalars(select(StockMove.product_id).where(StockMove.reason == MoveReason.SALE)
                               .order_by(StockMove.id)))
        assert moved == sorted(world["products"])
        lines = list(s.scalars(select(SaleLine.product_id).order_by(SaleLine.line_no)))
        assert lines == shuffled  # the receipt keeps the order the cashier scanned
