"""Checkout throughput: sales recorded through pos.sales.service.record_sale (one transaction per sale,
as the till does: idempotency, settings, shift, pricing, certification snapshot, payments, FEFO stock
moves, receipt number) against a plain-SQL baseline, in the same run on the same database.

    python -m bench.checkout [--database-url URL] [--scale N] [--batch N] [--rounds 3] [--concurrent K]

The baseline (bench.plain_sale) does what a checkout needs with hand-written statements on a bare
connection, one transaction per sale: the idempotency check by key, the hall settings, the till
and its open shift (FOR SHARE on PostgreSQL), the basket's products with their supplier, the
certificates valid on the sale's day, the lots on hand (FEFO, expired left out), then the day's
receipt counter, the sale, its lines (one executemany), the reports' daily aggregate (one upsert
executemany, as record_sale keeps it in the sale's transaction), the payment, the moves (one
executemany) and per lot the product and lot level debits, each guarded (``qty_milli >= :qty``), in product
order. The two paths are interleaved: per round (three by default) batches of --batch sales
alternate between them, totals per path. --concurrent K runs K tills at once (a thread and a
connection each, the same products), each phase timed from its start to the last till's end.

The process is set up as the server's (``songtao serve``): once the app's objects are built they are
frozen out of the garbage collector's way (pos.core.heap), for both paths alike.

Without --database-url a temporary SQLite file is used. On an existing database the schema is
brought to the newest migration and the benchmark's rows are added beside whatever is there
(its products, till and lots have names of their own), so point it at a scratch database.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from inventory import ledger
from inventory.localtime import local_date, utcnow
from inventory.models import Location, LocationKind, Lot, MoveReason, Product
from inventory.money import line_amount_fen
from bench.common import bench_database
from bench.plain_sale import SETTING_KEYS, read_catalogue, statements, write_sale
from pos.core import heap
from pos.models import Role, Shift, ShiftStatus, Till, User
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn, record_sale

LINES_PER_SALE = 3
PRODUCTS = 6
PRICES = [1280, 3800, 5800, 9900, 16800, 2350]


def _get_or_add(s: Session, model, where: dict, **values):
    row = s.scalars(select(model).filter_by(**where)).first()
    if row is None:
        row = model(**where, **values)
        s.add(row)
        s.flush()
    return row


def seed(maker: sessionmaker, run: str, scale: int, tills: int = 1) -> dict:
    """A hall, ``tills`` tills with an open shift each, a cashier and a few products with stock in
    two lots each."""
    with maker.begin() as s:
        hall = _get_or_add(s, Location, {"code": "HALL"}, name="卖场", kind=LocationKind.HALL_FLOOR)
        for code, name, kind in (("SUPPLIER", "供应商", LocationKind.SUPPLIER),
                                 ("CUSTOMER", "顾客", LocationKind.CUSTOMER)):
            if s.scalars(select(Location).where(Location.kind == kind)).first() is None:
                _get_or_add(s, Location, {"code": code}, name=name, kind=kind)
        supplier = ledger.virtual_location(s, LocationKind.SUPPLIER)
        customer = ledger.virtual_location(s, LocationKind.CUSTOMER)
        cashier = _get_or_add(s, User, {"username": "bench-cashier"}, display_name="压测", role=Role.CASHIER,
                              password_hash="x")
        opened = []
        for t in range(tills):
            till = _get_or_add(s, Till, {"code": f"B{t + 1}"}, name=f"压测收银台 {t + 1}", location_id=hall.id)
            shift = s.scalars(select(Shift).where(Shift.till_id == till.id, Shift.status == ShiftStatus.OPEN)).first()
            if shift is None:
                shift = Shift(till_id=till.id, cashier_id=cashier.id, status=ShiftStatus.OPEN, opening_float_fen=0)
                s.add(shift)
                s.flush()
            opened.append({"till": till.id, "shift": shift.id})
        products = []
        for i, price in enumerate(PRICES[:PRODUCTS]):
            p = Product(sku=f"BENCH-{run}-{i}", name=f"压测商品 {i}", pinyin_initials="", price_fen=price)
            s.add(p)
            s.flush()
            lots = []
            for n, expires in enumerate((dt.date(2030, 1, 1), dt.date(2031, 1, 1))):
                lot = Lot(product_id=p.id, lot_no=f"{run}-{n}", expires_on=expires)
                s.add(lot)
                s.flush()
                # Plenty for both runs, so that FEFO takes from lots rather than going negative.
                ledger.move(s, product_id=p.id, qty_milli=scale * 1000 * LINES_PER_SALE * 2 * 4 * tills, lot_id=lot.id,
                            from_location_id=supplier.id, to_location_id=hall.id, reason=MoveReason.RECEIPT)
                lots.append(lot.id)
            products.append((p.id, price, lots[0]))
        s.flush()
        return {"hall": hall.id, "customer": customer.id, "tills": opened, "cashier": cashier.id,
                "products": products}


def baskets(world: dict, scale: int, seed_value: int = 7) -> list[list[tuple[int, int, int, int]]]:
    """The same N baskets of 3 lines for both runs: (product, price, lot, qty)."""
    rng = random.Random(seed_value)
    return [[(pid, price, lot, 1000 * rng.randint(1, 3)) for pid, price, lot in rng.sample(world["products"], 3)]
            for _ in range(scale)]


def plain_sale(conn, stmts: dict, world: dict, till: dict, lines, key: str, sqlite: bool) -> None:
    """One checkout with plain statements (see bench.plain_sale): the reads a checkout needs, then
    its writes, in one transaction."""
    if conn.execute(stmts["by_key"], {"key": key}).first() is not None:
        return
    dict(conn.execute(stmts["settings"], {"keys": list(SETTING_KEYS)}).all())
    location, code = conn.execute(stmts["till"], {"till": till["till"]}).one()
    shift = conn.execute(stmts["shift"], {"shift": till["shift"], "till": till["till"]}).first()
    if shift is None or shift[1] != "open":
        raise SystemExit("the bench's shift is not open")
    now = utcnow()
    day = local_date(now)
    products, certs, lots = read_catalogue(conn, stmts, [pid for pid, _, _, _ in lines], location, day)
    stamp = now.replace(tzinfo=None) if sqlite else now  # SQLite keeps naive UTC, as UTCDateTime does
    total = sum(line_amount_fen(products[pid][1], qty) for pid, _, _, qty in lines)
    write_sale(conn, stmts, sale={
        "prefix": "P" + code, "channel": "hall", "key": key, "kiosk_id": None, "txn_id": None, "till": till["till"],
        "shift": shift[0], "cashier": world["cashier"], "location": location, "sold_at": stamp, "day": day,
        "now": stamp}, lines=[{"product_id": pid, "qty": qty, "price": products[pid][1]} for pid, _, _, qty in lines],
        payment={"method": "cash", "tendered": total + 100}, products=products, certs=certs, lots=lots,
        customer=world["customer"])


def project_sale(maker: sessionmaker, world: dict, till: dict, lines, key: str) -> None:
    total = sum(line_amount_fen(price, qty) for _, price, _, qty in lines)
    with maker.begin() as s:
        record_sale(s, SaleIn(
            channel="hall", location_id=None, till_id=till["till"], shift_id=till["shift"],
            cashier_id=world["cashier"], client_sale_id=key, lines=[LineIn(pid, qty) for pid, _, _, qty in lines],
            payments=[PaymentIn("cash", total, total + 100)]))


def measure(maker: sessionmaker, engine, world: dict, work: list, run: str, *, batch: int, rounds: int,
            pool: ThreadPoolExecutor) -> list[dict]:
    """Interleaved: per round, batches of ``batch`` sales per till alternate between the paths
    (which goes first alternates too); with several tills each phase runs them all at once, one
    thread and connection per till, and is timed from start to the last till's end."""
    sqlite = engine.dialect.name == "sqlite"
    stmts = statements(engine.dialect.name)
    tills = world["tills"]
    results = []
    for r in range(rounds):
        seconds = {"project": 0.0, "plain": 0.0}  # ok-float: seconds
        for c, start in enumerate(range(0, len(work), batch)):
            chunk = list(enumerate(work[start:start + batch], start=start))
            for path in (("project", "plain") if (c + r) % 2 == 0 else ("plain", "project")):
                def one_till(t: int, path=path, chunk=chunk) -> None:
                    till = tills[t]
                    if path == "project":
                        for i, lines in chunk:
                            project_sale(maker, world, till, lines, f"bench-{run}-{r}-{t}-{i}")
                    else:
                        for i, lines in chunk:
                            with engine.begin() as conn:
                                plain_sale(conn, stmts, world, till, lines, f"plain-{run}-{r}-{t}-{i}", sqlite)
                began = time.perf_counter()
                for future in [pool.submit(one_till, t) for t in range(len(tills))]:
                    future.result()
                seconds[path] += time.perf_counter() - began
        results.append(seconds)
    return results


def main(argv=None) -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--batch", type=int, default=25, help="sales per path before switching (default 25)")
    extra.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    extra.add_argument("--concurrent", type=int, default=1, help="tills at once (default 1)")
    opts, rest = extra.parse_known_args(argv)
    db = bench_database(rest, prog="python -m bench.checkout", doc=__doc__, default_scale=200,
                        scale_help="sales per till, path and round (default 200)", parents=[extra])
    engine, scale = db.engine, db.scale
    tills = max(1, opts.concurrent)
    try:
        maker = sessionmaker(bind=engine, expire_on_commit=False)
        run = utcnow().strftime("%H%M%S%f")
        world = seed(maker, run, scale * max(1, opts.rounds), tills)
        work = baskets(world, scale)
        heap.settle()  # as ``songtao serve`` does once the app is built (pos.core.heap), for both paths
        with ThreadPoolExecutor(max_workers=tills) as pool:
            # A few sales first on each path, so that neither pays for warming caches.
            measure(maker, engine, world, work[:4], run + "w", batch=2, rounds=1, pool=pool)
            results = measure(maker, engine, world, work, run, batch=max(1, opts.batch),
                              rounds=max(1, opts.rounds), pool=pool)
    finally:
        db.close()

    sales = scale * tills
    print(f"database: {engine.dialect.name}   tills at once: {tills}   sales per path and round: {sales} "
          f"x {LINES_PER_SALE} lines + 1 payment, interleaved in batches of {opts.batch}")
    print(f"{'round':<8}{'project s':>11}{'plain s':>10}{'project/s':>11}{'plain/s':>10}{'ratio':>8}")
    for n, r in enumerate(results, start=1):
        print(f"{n:<8}{r['project']:>11.3f}{r['plain']:>10.3f}{sales / r['project']:>11.1f}"
              f"{sales / r['plain']:>10.1f}{r['plain'] / r['project']:>8.3f}")
    project = sum(r["project"] for r in results)
    plain = sum(r["plain"] for r in results)
    total = sales * len(results)
    print(f"checkout: {total / project:.1f} sales/s vs plain SQL {total / plain:.1f} sales/s "
          f"({tills} till{'s' if tills > 1 else ''} at once), "
          f"ratio={plain / project:.3f} (throughput: below 1 is slower than plain SQL)")


if __name__ == "__main__":
    main()
