"""Counter sales ingestion: one day of the whole fleet posted through the counter API v1 over real
HTTP (waitress in a thread, bearer tokens, batches of up to 100 sales, each sale in its own
savepoint through pos.sales.service.record_sale) against the same rows written with plain SQL statements
(see ``run_plain`` for what that baseline does), in the same run on the same database.

    python -m bench.kiosk_ingest [--database-url URL] [--scale N]

--scale is the number of counters (default 126, the fleet); each sells 15–40 sales in the day,
1–3 lines each, as counters in offices, hospitals, schools and factories do. Without
--database-url a temporary SQLite file is used. On an existing database the schema is brought to
the newest migration and the benchmark's counters (codes K10001 …), products and lots are added
beside whatever is there, so point it at a scratch database.
"""
from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import socket
import threading
import time

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
from kiosks.models import Kiosk, PlanogramSlot, SiteType
from kiosks.registry import issue_token

BATCH = 100
SALES_PER_TRANSACTION = 10   # as the counter API commits (kiosks.api)
PRODUCTS = 40
PRICES = [680, 980, 1280, 1580, 1880, 2350, 2800, 3200, 3800, 4500, 5800, 6800]
SITE_TYPES = [SiteType.GOVERNMENT, SiteType.HOSPITAL, SiteType.SCHOOL, SiteType.FACTORY, SiteType.CANTEEN]
TOWNS = ["虎门镇", "沙田镇", "麻涌镇", "中堂镇", "滨海湾新区"]
STOCK_PIECES = 200   # per slot: plenty for both runs, so that FEFO takes from lots


def seed(maker: sessionmaker, run: str, counters: int) -> dict:
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
                qty = STOCK_PIECES * 1000
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


def run_http(url: str, world: dict, day: dict[str, list[dict]]) -> tuple[float, dict]:  # ok-float: seconds
    """Serve the app with waitress on a free port and post every counter's batches to it."""
    from waitress.server import create_server

    from pos import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-only-secret-key"})
    port = _free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=4, ident="songtao-bench")
    stop = threading.Event()

    def serve():  # waitress's own loop, stopped and closed from this thread (no race on its sockets)
        from waitress import wasyncore

        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        for channel in list(server._map.values()):
            channel.close()
        server.task_dispatcher.shutdown()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0}
    try:
        started = time.perf_counter()
        conn = None
        current = None
        for code, batch in _batches(day):
            if code != current:  # each counter keeps its own connection open for its batches
                if conn is not None:
                    conn.close()
                conn, current = http.client.HTTPConnection("127.0.0.1", port, timeout=120), code
            body = json.dumps({"sales": batch}).encode()
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
        if conn is not None:
            conn.close()
        seconds = time.perf_counter() - started
    finally:
        stop.set()
        thread.join(timeout=10)
        app.extensions["songtao.engine"].dispose()
    return seconds, counts


def run_plain(engine, world: dict, day: dict[str, list[dict]]) -> float:  # ok-float: seconds
    """The same sales with plain statements (bench.plain_sale), as ingest needs them: per batch the
    planogram and the products named by sku (one query each); per transaction of
    SALES_PER_TRANSACTION sales the known txn_ids, the products with their supplier, the
    certificates valid on the day and the lots on hand (FEFO); per sale the receipt counter, the
    sale, its lines, its payment, its moves and the guarded level debits; then the counter's
    last sale time. No savepoints, no validation beyond what the data needs."""
    sqlite = engine.dialect.name == "sqlite"
    stmts = statements(engine.dialect.name)
    planogram_q = text("SELECT slot, product_id, price_fen FROM planogram_slots WHERE kiosk_id = :kiosk_id")
    sku_q = text("SELECT sku, id FROM products WHERE sku IN :skus").bindparams(bindparam("skus", expanding=True))
    started = time.perf_counter()
    for code, batch in _batches(day):
        location, kiosk_id = world["locations"][code], world["kiosk_ids"][code]
        with engine.connect() as conn:
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
    return time.perf_counter() - started


def main(argv=None) -> None:
    db = bench_database(argv, prog="python -m bench.kiosk_ingest", doc=__doc__, default_scale=126,
                        scale_help="counters (default 126, the fleet)")
    url, engine, counters = db.url, db.engine, db.scale
    try:
        maker = sessionmaker(bind=engine, expire_on_commit=False)
        run = utcnow().strftime("%H%M%S%f")
        from pos import create_app

        with create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-only-secret-key"}).app_context():
            world = seed(maker, run, counters)
        yesterday = local_date(utcnow()) - dt.timedelta(days=1)
        day = one_day(world, yesterday)
        # A warm-up day two days back on each path, so that neither pays for warming caches.
        warm = {c: s[:3] for c, s in one_day(world, yesterday - dt.timedelta(days=1), seed_value=3).items()}
        warm = dict(list(warm.items())[:3])
        run_http(url, world, warm)
        run_plain(engine, world, warm)
        total = sum(len(s) for s in day.values())
        lines = sum(len(x["lines"]) for s in day.values() for x in s)
        batches = sum(1 for _ in _batches(day))
        http_seconds, counts = run_http(url, world, day)
        plain_seconds = run_plain(engine, world, day)
    finally:
        db.close()
    if counts["accepted"] != total:
        raise SystemExit(f"only {counts['accepted']} of {total} sales were accepted: {counts}")

    http_rate = total / http_seconds  # ok-float: timing
    plain_rate = total / plain_seconds  # ok-float: timing
    print(f"database: {engine.dialect.name}   counters: {counters}   sales: {total} ({lines} lines) "
          f"in {batches} batches of ≤ {BATCH}, one day ({yesterday})")
    print(f"{'path':<34}{'seconds':>10}{'sales/s':>12}{'ms/sale':>10}")
    for name, seconds, rate in (("counter API over HTTP (project)", http_seconds, http_rate),
                                ("plain SQL statements", plain_seconds, plain_rate)):
        print(f"{name:<34}{seconds:>10.3f}{rate:>12.1f}{1000 * seconds / total:>10.2f}")
    print(f"kiosk_ingest: {http_rate:.1f} sales/s vs plain SQL {plain_rate:.1f} sales/s, "
          f"ratio={http_rate / plain_rate:.3f} (throughput: below 1 is slower than plain SQL)")


if __name__ == "__main__":
    main()
