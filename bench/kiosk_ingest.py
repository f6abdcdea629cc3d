"""Counter sales ingestion: the fleet's day of sales posted through the counter API v1 over real HTTP,
and recorded in-process by the same domain function without HTTP, each against the same sales
written with plain SQL statements, in the same run on the same database.

    python -m bench.kiosk_ingest [--database-url URL] [--scale N] [--batch N] [--rounds 3] [--concurrent K]

Three paths, each recording every counter's day:

- the counter API (``post_counter``): waitress serves the app in a thread; each counter posts its
  day in batches of up to 100 sales on an HTTP connection of its own with its own bearer token;
  the server checks the token, parses the JSON, checks each sale against the API's schema
  (pydantic) and calls kiosks.ingest.ingest_sales, which takes each batch in transactions of 10
  sales (each judged whole first, then the accepted ones written together: pos.sales.writing).
- in-process (``ingest_counter``): the same batches handed to kiosks.ingest.ingest_sales(chunk=10)
  in a session per batch (the counter read by its code), without HTTP, JSON or the schema check:
  the domain's own cost, the work the plain path does.
- plain SQL (``plain_counter``, bench.plain_sale), the baseline of both: each counter's day on a
  bare connection of its own, per batch of up to 100 the planogram and the skus named (one query
  each), per transaction of 10 sales the known txn_ids, the products with their supplier, the
  certificates valid on the day and the lots on hand (FEFO), per sale the receipt counter, the
  sale, its lines, its payment, its moves and the guarded level debits, then the counter's last
  sale time; no savepoints, no validation beyond what the data needs, no daily figures.

The paths are interleaved: per round (three by default; the same sales each round, dated a day
apart so that their txn_ids differ; the in-process path's txn_ids are prefixed ``in-``, the plain
path's ``plain-``) groups of --batch counters per thread go through each path in turn, which path
goes first rotating, totals per path. --concurrent K runs K counters at once (a thread each, with
its own kiosk and token, its own HTTP connection, session or database connection, all selling
from the same products), each phase timed from its start to the last thread's end. Two ``ratio=``
lines: the API's throughput over plain SQL's, and the in-process path's over plain SQL's.

--scale is the number of counters (default 126, the fleet); each sells 15–40 sales in the day,
1–3 lines each, as counters in offices, hospitals, schools and factories do. Without
--database-url a temporary SQLite file is used. On an existing database the schema is brought to
the newest migration and the benchmark's counters (codes K10001 …), products and lots are added
beside whatever is there, so point it at a scratch database.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Self

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.orm import sessionmaker

from bench.checkout import _get_or_add
from bench.common import bench_database
from bench.plain_sale import read_catalogue, statements, write_sale
from inventory.localtime import HALL_TZ, local_date, utcnow
from inventory.models import (
    Certificate,
    Location,
    LocationKind,
    Lot,
    LotLevel,
    MoveReason,
    Product,
    StockLevel,
    StockMove,
    Supplier,
    certificate_products,
)
from kiosks.ingest import ingest_sales
from kiosks.models import Kiosk, PlanogramSlot, SiteType
from kiosks.registry import get_kiosk, issue_token
from pos.core.db import session_scope

BATCH = 100
SALES_PER_TRANSACTION = 10   # as the counter API commits (kiosks.api)
PRODUCTS = 40
PRICES = [680, 980, 1280, 1580, 1880, 2350, 2800, 3200, 3800, 4500, 5800, 6800]
SITE_TYPES = [SiteType.GOVERNMENT, SiteType.HOSPITAL, SiteType.SCHOOL, SiteType.FACTORY, SiteType.CANTEEN]
TOWNS = ["虎门镇", "沙田镇", "麻涌镇", "中堂镇", "滨海湾新区"]
STOCK_PIECES = 200   # per slot and round: plenty for both paths, so that FEFO takes from lots


def seed(maker: sessionmaker, run: str, counters: int, rounds: int = 1) -> dict:
    """Products (half certified), ``counters`` counters with a planogram of 12–20 slots each and
    stock in a lot per slot, and a token per counter."""
    rng = random.Random(11)
    with maker.begin() as s:
        for code, name, kind in (("SUPPLIER", "供应商", LocationKind.SUPPLIER),
                                 ("CUSTOMER", "顾客", LocationKind.CUSTOMER)):
            if s.scalars(select(Location).where(Location.kind == kind)).first() is None:
                _get_or_add(s, Location, {"code": code}, name=name, kind=kind)
        supplier_loc = s.scalars(select(Location.id).where(Location.kind == LocationKind.SUPPLIER)).first()
        customer_loc = s.scalars(select(Location.id).where(Location.kind == LocationKind.CUSTOMER)).first()
        supplier = Supplier(name=f"压测合作社 {run}", origin_county="松桃苗族自治县", origin_county_code="520628")
        s.add(supplier)
        s.flush()
        products = []
        for i in range(PRODUCTS):
            p = Product(sku=f"KB-{run}-{i}", name=f"专柜压测商品 {i}", pinyin_initials="", supplier_id=supplier.id,
                        price_fen=PRICES[i % len(PRICES)], shelf_life_days=365)
            s.add(p)
            products.append(p)
        s.flush()
        cert = Certificate(number=f"BENCH-{run}", issuer="压测", supplier_id=supplier.id,
                           valid_from=dt.date(2020, 1, 1), valid_to=dt.date(2035, 12, 31))
        s.add(cert)
        s.flush()
        s.execute(insert(certificate_products), [{"certificate_id": cert.id, "product_id": p.id}
                                                 for p in products[::2]])
        lots = {}
        for p in products:
            lot = Lot(product_id=p.id, lot_no=f"KB-{run}", expires_on=dt.date(2031, 1, 1))
            s.add(lot)
            lots[p.id] = lot
        s.flush()

        taken = [int(c[1:]) for c in s.scalars(select(Kiosk.code)) if c[1:].isdigit()]
        first = max([10_000, *taken]) + 1
        codes = [f"K{first + n:05d}" for n in range(counters)]
        s.execute(insert(Location), [{"code": c, "name": f"压测专柜 {c}", "kind": LocationKind.KIOSK, "active": True}
                                     for c in codes])
        loc_ids = dict(s.execute(select(Location.code, Location.id).where(Location.code.in_(codes))).all())
        s.execute(insert(Kiosk), [{"code": c, "site_name": f"压测站点 {c}", "host_org": "压测单位",
                                   "site_type": rng.choice(SITE_TYPES), "town": rng.choice(TOWNS),
                                   "address": "广东省东莞市", "location_id": loc_ids[c], "door_open": False,
                                   "status": "active"} for c in codes])
        kiosk_ids = dict(s.execute(select(Kiosk.code, Kiosk.id).where(Kiosk.code.in_(codes))).all())
        slot_rows, level_rows, lot_rows, move_rows, planograms = [], [], [], [], {}
        now = utcnow()
        for c in codes:
            chosen = rng.sample(products, rng.randint(12, 20))
            planograms[c] = []
            for n, p in enumerate(chosen):
                slot = f"{'ABCD'[n // 6]}{n % 6 + 1}"
                planograms[c].append((slot, p.id, p.sku, p.price_fen))
                slot_rows.append({"kiosk_id": kiosk_ids[c], "slot": slot, "product_id": p.id,
                                  "par": rng.randint(4, 12), "price_fen": p.price_fen})
                qty = STOCK_PIECES * 1000 * max(1, rounds)
                level_rows.append({"location_id": loc_ids[c], "product_id": p.id, "qty_milli": qty})
                lot_rows.append({"location_id": loc_ids[c], "lot_id": lots[p.id].id, "qty_milli": qty})
                move_rows.append({"product_id": p.id, "lot_id": lots[p.id].id, "from_location_id": supplier_loc,
                                  "to_location_id": loc_ids[c], "qty_milli": qty, "reason": MoveReason.RECEIPT,
                                  "moved_at": now})
        s.execute(insert(PlanogramSlot), slot_rows)
        s.execute(insert(StockMove), move_rows)
        s.execute(insert(StockLevel), level_rows)
        s.execute(insert(LotLevel), lot_rows)
        # the supplier's side of the receipts, so that every product's levels still add up to zero
        per_product: dict[int, int] = {}
        for row in move_rows:
            per_product[row["product_id"]] = per_product.get(row["product_id"], 0) + row["qty_milli"]
        for pid, qty in per_product.items():
            updated = s.execute(text("UPDATE stock_levels SET qty_milli = qty_milli - :q "
                                     "WHERE location_id = :l AND product_id = :p RETURNING qty_milli"),
                                {"q": qty, "l": supplier_loc, "p": pid}).first()
            if updated is None:
                s.execute(insert(StockLevel), [{"location_id": supplier_loc, "product_id": pid, "qty_milli": -qty}])
        tokens = {c: issue_token(s, c) for c in codes}
        return {"codes": codes, "tokens": tokens, "kiosk_ids": kiosk_ids, "locations": loc_ids,
                "planograms": planograms, "customer": customer_loc, "lots": {p.id: lots[p.id].id for p in products},
                "certified": {p.id for p in products[::2]}, "cert_no": cert.number, "supplier_id": supplier.id}


def one_day(world: dict, day: dt.date, seed_value: int = 7) -> dict[str, list[dict]]:
    """Each counter's sales of one local day as the counter API takes them, in time order."""
    rng = random.Random(seed_value)
    out = {}
    for c in world["codes"]:
        planogram = world["planograms"][c]
        sales = []
        for n in range(rng.randint(15, 40)):
            moment = dt.datetime.combine(day, dt.time(7), tzinfo=HALL_TZ) + dt.timedelta(
                seconds=rng.randint(0, 15 * 3600))
            lines = []
            for slot, _pid, sku, price in rng.sample(planogram, rng.choice((1, 1, 1, 2, 2, 3))):
                line = {"slot": slot} if rng.random() > 0.03 else {"sku": sku}
                lines.append({**line, "qty": rng.choice((1, 1, 1, 2)), "unit_price_fen": price})
            amount = sum(ln["qty"] * ln["unit_price_fen"] for ln in lines)
            sales.append({"txn_id": f"{c}-{day:%Y%m%d}-{n:04d}", "sold_at": moment.isoformat(), "lines": lines,
                          "payment": {"method": rng.choice(("wechat", "wechat", "alipay")), "amount_fen": amount,
                                      "ref": f"4200{rng.randrange(10**12):012d}"}})
        sales.sort(key=lambda x: x["sold_at"])
        out[c] = sales
    return out


def _batches(day: dict[str, list[dict]]):
    for code, sales in day.items():
        for i in range(0, len(sales), BATCH):
            yield code, sales[i:i + BATCH]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app served by waitress on a free port in a thread of its own, for the whole run (its start
    is not timed), with at least as many worker threads as counters post at once."""

    def __init__(self, url: str, threads: int) -> None:
        from waitress.server import create_server

        from pos import create_app

        self.app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-only-secret-key"})
        self.port = _free_port()
        self._server = create_server(self.app, host="127.0.0.1", port=self.port, threads=max(4, threads),
                                     ident="songtao-bench")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:  # waitress's own loop, stopped and closed from this thread (no race on its sockets)
        from waitress import wasyncore

        while not self._stop.is_set():
            wasyncore.loop(timeout=0.05, map=self._server._map, count=1)
        for channel in list(self._server._map.values()):
            channel.close()
        self._server.task_dispatcher.shutdown()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.app.extensions["songtao.engine"].dispose()


def post_counter(port: int, world: dict, code: str, sales: list[dict]) -> dict:
    """The counter API path for one counter's day: its batches of ≤ BATCH sales posted one after
    another on one HTTP connection of its own, with its own bearer token; the server takes each
    batch in transactions of SALES_PER_TRANSACTION sales (kiosks.ingest). Every sale must be
    accepted."""
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for i in range(0, len(sales), BATCH):
            body = json.dumps({"sales": sales[i:i + BATCH]}).encode()
            conn.request("POST", f"/api/v1/kiosks/{code}/sales", body=body, headers={
                "Authorization": f"Bearer {world['tokens'][code]}", "Content-Type": "application/json"})
            response = conn.getresponse()
            payload = json.loads(response.read())
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status} for {code}: {payload}")
            for key in counts:
                counts[key] += len(payload[key])
            if payload["rejected"]:
                raise SystemExit(f"rejected sales at {code}: {payload['rejected'][:3]}")
    finally:
        conn.close()
    return counts


def ingest_counter(app, code: str, sales: list[dict]) -> dict:
    """The in-process path for one counter's day: its batches of ≤ BATCH sales, each in a session
    of its own (the counter read by its code), through kiosks.ingest.ingest_sales in transactions
    of SALES_PER_TRANSACTION sales, as the API calls it, without HTTP, JSON or the schema check.
    Every sale must be accepted."""
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0}
    for i in range(0, len(sales), BATCH):
        with session_scope(app) as s:
            result = ingest_sales(s, get_kiosk(s, code), sales[i:i + BATCH], chunk=SALES_PER_TRANSACTION)
        for key in counts:
            counts[key] += len(result[key])
        if result["rejected"]:
            raise SystemExit(f"rejected sales at {code}: {result['rejected'][:3]}")
    return counts


def plain_counter(engine, stmts: dict, world: dict, code: str, sales: list[dict], sqlite: bool) -> None:
    """The plain-SQL path for one counter's day, on one connection of its own, with plain statements
    (bench.plain_sale) as ingest needs them: per batch of ≤ BATCH sales the planogram and the
    products named by sku (one query each); per transaction of SALES_PER_TRANSACTION sales the known
    txn_ids, the products with their supplier, the certificates valid on the day and the lots on
    hand (FEFO); per sale the receipt counter, the sale, its lines, its payment, its moves and the
    guarded level debits; then the counter's last sale time. No savepoints, no validation beyond
    what the data needs."""
    planogram_q = text("SELECT slot, product_id, price_fen FROM planogram_slots WHERE kiosk_id = :kiosk_id")
    sku_q = text("SELECT sku, id FROM products WHERE sku IN :skus").bindparams(bindparam("skus", expanding=True))
    location, kiosk_id = world["locations"][code], world["kiosk_ids"][code]
    with engine.connect() as conn:
        for b in range(0, len(sales), BATCH):
            batch = sales[b:b + BATCH]
            by_slot = {slot: pid for slot, pid, _ in conn.execute(planogram_q, {"kiosk_id": kiosk_id})}
            skus = sorted({ln["sku"] for sale in batch for ln in sale["lines"] if "sku" in ln})
            by_sku = dict(conn.execute(sku_q, {"skus": skus}).all()) if skus else {}
            conn.rollback()
            for start in range(0, len(batch), SALES_PER_TRANSACTION):
                part = batch[start:start + SALES_PER_TRANSACTION]
                with conn.begin():
                    known = dict(conn.execute(stmts["by_txn"], {"kiosk_id": kiosk_id,
                                                                "txns": ["plain-" + x["txn_id"] for x in part]}).all())
                    pids = {by_slot[ln["slot"]] if "slot" in ln else by_sku[ln["sku"]]
                            for sale in part for ln in sale["lines"]}
                    now = utcnow()
                    local = local_date(dt.datetime.fromisoformat(part[0]["sold_at"]).astimezone(dt.timezone.utc))
                    products, certs, lots = read_catalogue(conn, stmts, pids, location, local)
                    for sale in part:
                        if "plain-" + sale["txn_id"] in known:
                            continue
                        sold_at = dt.datetime.fromisoformat(sale["sold_at"]).astimezone(dt.timezone.utc)
                        stamp, sold = (now.replace(tzinfo=None), sold_at.replace(tzinfo=None)) if sqlite else (now, sold_at)
                        lines = [{"product_id": by_slot[ln["slot"]] if "slot" in ln else by_sku[ln["sku"]],
                                  "qty": ln["qty"] * 1000, "price": ln["unit_price_fen"], "slot": ln.get("slot")}
                                 for ln in sale["lines"]]
                        write_sale(conn, stmts, sale={
                            "prefix": f"P{code[1:]}", "channel": "kiosk", "key": None, "kiosk_id": kiosk_id,
                            "txn_id": "plain-" + sale["txn_id"], "till": None, "shift": None, "cashier": None,
                            "location": location, "sold_at": sold, "day": local_date(sold_at), "now": stamp},
                            lines=lines, payment={"method": sale["payment"]["method"], "ref": sale["payment"]["ref"]},
                            products=products, certs=certs, lots=lots, customer=world["customer"])
                    conn.execute(stmts["last_sale"], {"sold_at": sold, "kiosk_id": kiosk_id})


PATHS = ("api", "ingest", "plain")


def measure(server: Server, engine, world: dict, days: list[dict[str, list[dict]]], *, batch: int, threads: int,
            pool: ThreadPoolExecutor) -> list[dict]:
    """Interleaved: per round (one day of sales each, ``days[r]``), groups of ``batch`` counters per
    thread go through each path in turn (which goes first rotates too); with several threads each
    phase runs them all at once, each thread taking its counters one after another, and is timed
    from start to the last thread's end. The in-process path's sales carry txn_ids of their own."""
    stmts = statements(engine.dialect.name)
    sqlite = engine.dialect.name == "sqlite"
    results = []
    for r, day in enumerate(days):
        codes = list(day)
        own = {code: [{**sale, "txn_id": "in-" + sale["txn_id"]} for sale in sales] for code, sales in day.items()}
        seconds = {path: 0.0 for path in PATHS}  # ok-float: seconds
        accepted = {"api": 0, "ingest": 0}
        for c, start in enumerate(range(0, len(codes), batch * threads)):
            chunk = codes[start:start + batch * threads]
            turn = (c + r) % len(PATHS)
            for path in PATHS[turn:] + PATHS[:turn]:
                def one_thread(t: int, path=path, chunk=chunk, day=day) -> int:
                    done = 0
                    with server.app.app_context():
                        for code in chunk[t::threads]:
                            if path == "api":
                                done += post_counter(server.port, world, code, day[code])["accepted"]
                            elif path == "ingest":
                                done += ingest_counter(server.app, code, own[code])["accepted"]
                            else:
                                plain_counter(engine, stmts, world, code, day[code], sqlite)
                    return done
                began = time.perf_counter()
                done = sum(future.result() for future in [pool.submit(one_thread, t)
                                                          for t in range(min(threads, len(chunk)))])
                seconds[path] += time.perf_counter() - began
                if path in accepted:
                    accepted[path] += done
        for path, n in accepted.items():
            if n != sum(len(s) for s in day.values()):
                raise SystemExit(f"round {r + 1}: only {n} sales were accepted on the {path} path")
        results.append(seconds)
    return results


def main(argv=None) -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--batch", type=int, default=6,
                       help="counters per thread and path before switching (default 6)")
    extra.add_argument("--rounds", type=int, default=3, help="interleaved rounds, one day of sales each (default 3)")
    extra.add_argument("--concurrent", type=int, default=1, help="counters posting at once (default 1)")
    opts, rest = extra.parse_known_args(argv)
    db = bench_database(rest, prog="python -m bench.kiosk_ingest", doc=__doc__, default_scale=126,
                        scale_help="counters (default 126, the fleet)", parents=[extra])
    url, engine, counters = db.url, db.engine, db.scale
    threads, rounds, batch = max(1, opts.concurrent), max(1, opts.rounds), max(1, opts.batch)
    try:
        maker = sessionmaker(bind=engine, expire_on_commit=False)
        run = utcnow().strftime("%H%M%S%f")
        from pos import create_app

        with create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-only-secret-key"}).app_context():
            world = seed(maker, run, counters, rounds)
        yesterday = local_date(utcnow()) - dt.timedelta(days=1)
        # The same sales each round (same seed), on a day of its own so that their txn_ids differ.
        days = [one_day(world, yesterday - dt.timedelta(days=r)) for r in range(rounds)]
        # A warm-up day before those on each path (a few sales of a few counters per thread), so
        # that neither pays for warming caches.
        warm = one_day(world, yesterday - dt.timedelta(days=rounds), seed_value=3)
        warm = {c: s[:3] for c, s in list(warm.items())[:max(3, threads)]}
        with Server(url, threads) as server, ThreadPoolExecutor(max_workers=threads) as pool:
            measure(server, engine, world, [warm], batch=1, threads=threads, pool=pool)
            results = measure(server, engine, world, days, batch=batch, threads=threads, pool=pool)
        kiosk_ids = list(world["kiosk_ids"].values())
        with engine.connect() as conn:
            plain_rows = conn.execute(text("SELECT count(*) FROM sales WHERE kiosk_id IN :ids AND txn_id LIKE 'plain-%'")
                                      .bindparams(bindparam("ids", expanding=True)), {"ids": kiosk_ids}).scalar_one()
    finally:
        db.close()

    day = days[0]
    total = sum(len(s) for s in day.values())
    if plain_rows != total * rounds + sum(len(s) for s in warm.values()):
        raise SystemExit(f"the plain path wrote {plain_rows} sales, not {total} per round and the warm-up's")
    lines = sum(len(x["lines"]) for s in day.values() for x in s)
    batches = sum(1 for _ in _batches(day))
    print(f"database: {engine.dialect.name}   counters at once: {threads}   counters: {counters}   "
          f"sales per path and round: {total} ({lines} lines) in {batches} batches of ≤ {BATCH}, "
          f"interleaved in groups of {batch} counter{'s' if batch > 1 else ''} per thread")
    print(f"{'round':<7}{'api s':>9}{'ingest s':>10}{'plain s':>9}{'api/s':>9}{'ingest/s':>10}{'plain/s':>9}"
          f"{'api:plain':>11}{'ingest:plain':>14}")
    for n, r in enumerate(results, start=1):
        print(f"{n:<7}{r['api']:>9.3f}{r['ingest']:>10.3f}{r['plain']:>9.3f}{total / r['api']:>9.1f}"
              f"{total / r['ingest']:>10.1f}{total / r['plain']:>9.1f}{r['plain'] / r['api']:>11.3f}"
              f"{r['plain'] / r['ingest']:>14.3f}")
    spent = {path: sum(r[path] for r in results) for path in PATHS}
    at_once = f"{threads} counter{'s' if threads > 1 else ''} at once"
    for path, label in (("ingest", "in-process ingest_sales"), ("api", "counter API over HTTP")):
        print(f"kiosk_ingest ({label}): {total * rounds / spent[path]:.1f} sales/s vs plain SQL "
              f"{total * rounds / spent['plain']:.1f} sales/s ({at_once}), "
              f"ratio={spent['plain'] / spent[path]:.3f} (throughput: below 1 is slower than plain SQL)")


if __name__ == "__main__":
    main()
