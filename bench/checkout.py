"""Checkout throughput: sales recorded through pos.sales.service.record_sale (one transaction per sale,
as the till does: pricing, certification snapshot, payments, FEFO stock moves, receipt number)
against the same rows written with plain SQL statements, in the same run on the same database.

    python -m bench.checkout [--database-url URL] [--scale N]

Without --database-url a temporary SQLite file is used. On an existing database the schema is
brought to the newest migration and the benchmark's rows are added beside whatever is there
(its products, till and lots have names of their own), so point it at a scratch database.
"""
from __future__ import annotations

import datetime as dt
import random
import time

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from inventory import ledger
from inventory.localtime import local_date, utcnow
from inventory.models import Location, LocationKind, Lot, MoveReason, Product
from inventory.money import line_amount_fen
from bench.common import bench_database
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


def seed(maker: sessionmaker, run: str, scale: int) -> dict:
    """A hall, a till with an open shift, a cashier and a few products with stock in two lots each."""
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
        till = _get_or_add(s, Till, {"code": "B1"}, name="压测收银台", location_id=hall.id)
        shift = s.scalars(select(Shift).where(Shift.till_id == till.id, Shift.status == ShiftStatus.OPEN)).first()
        if shift is None:
            shift = Shift(till_id=till.id, cashier_id=cashier.id, status=ShiftStatus.OPEN, opening_float_fen=0)
            s.add(shift)
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
                ledger.move(s, product_id=p.id, qty_milli=scale * 1000 * LINES_PER_SALE * 2, lot_id=lot.id,
                            from_location_id=supplier.id, to_location_id=hall.id, reason=MoveReason.RECEIPT)
                lots.append(lot.id)
            products.append((p.id, price, lots[0]))
        s.flush()
        return {"hall": hall.id, "customer": customer.id, "till": till.id, "shift": shift.id,
                "cashier": cashier.id, "products": products}


def baskets(world: dict, scale: int, seed_value: int = 7) -> list[list[tuple[int, int, int, int]]]:
    """The same N baskets of 3 lines for both runs: (product, price, lot, qty)."""
    rng = random.Random(seed_value)
    return [[(pid, price, lot, 1000 * rng.randint(1, 3)) for pid, price, lot in rng.sample(world["products"], 3)]
            for _ in range(scale)]


def run_project(maker: sessionmaker, world: dict, work: list, run: str) -> float:  # ok-float: seconds
    started = time.perf_counter()
    for i, lines in enumerate(work):
        total = sum(line_amount_fen(price, qty) for _, price, _, qty in lines)
        with maker.begin() as s:
            record_sale(s, SaleIn(
                channel="hall", location_id=None, till_id=world["till"], shift_id=world["shift"],
                cashier_id=world["cashier"], client_sale_id=f"bench-{run}-{i}",
                lines=[LineIn(pid, qty) for pid, _, _, qty in lines],
                payments=[PaymentIn("cash", total, total + 100)]))
    return time.perf_counter() - started


PLAIN = {
    "counter": """INSERT INTO document_counters (kind, prefix, day, last_no) VALUES ('sales', :prefix, :day, 1)
                  ON CONFLICT (kind, prefix, day) DO UPDATE SET last_no = document_counters.last_no + 1
                  RETURNING last_no""",
    "sale": """INSERT INTO sales (receipt_no, channel, status, client_sale_id, content_hash, till_id, shift_id,
                  after_shift_closed, cashier_id, location_id, sold_at, local_date, recorded_at, subtotal_fen,
                  discount_fen, rounding_fen, total_fen, reprint_count)
               VALUES (:receipt_no, 'hall', 'completed', :client_sale_id, :hash, :till, :shift, :false, :cashier,
                  :hall, :now, :day, :now, :total, 0, 0, :total, 0) RETURNING id""",
    "line": """INSERT INTO sale_lines (sale_id, line_no, product_id, qty_milli, unit_price_fen, gross_fen,
                  discount_fen, net_fen, vat, certified)
               VALUES (:sale_id, :line_no, :product_id, :qty, :price, :amount, 0, :amount, '9', :false)""",
    "payment": """INSERT INTO payments (sale_id, method, amount_fen, tendered_fen, change_fen)
                  VALUES (:sale_id, 'cash', :total, :tendered, 100)""",
    "move": """INSERT INTO stock_moves (product_id, lot_id, from_location_id, to_location_id, qty_milli, reason,
                  ref_type, ref_id, user_id, moved_at)
               VALUES (:product_id, :lot_id, :hall, :customer, :qty, 'sale', 'sale', :sale_id, :cashier, :now)""",
    "debit": """UPDATE stock_levels SET qty_milli = qty_milli - :qty
                WHERE location_id = :hall AND product_id = :product_id""",
    "lot_debit": """UPDATE lot_levels SET qty_milli = qty_milli - :qty WHERE location_id = :hall AND lot_id = :lot_id""",
    "credit": """INSERT INTO stock_levels (location_id, product_id, qty_milli) VALUES (:customer, :product_id, :qty)
                 ON CONFLICT (location_id, product_id) DO UPDATE SET qty_milli = stock_levels.qty_milli + :qty""",
    "lot_credit": """INSERT INTO lot_levels (location_id, lot_id, qty_milli) VALUES (:customer, :lot_id, :qty)
                     ON CONFLICT (location_id, lot_id) DO UPDATE SET qty_milli = lot_levels.qty_milli + :qty""",
}


def run_plain(engine, world: dict, work: list, run: str) -> float:  # ok-float: seconds
    sqlite = engine.dialect.name == "sqlite"
    stmts = {k: text(v) for k, v in PLAIN.items()}
    base = {"hall": world["hall"], "customer": world["customer"], "cashier": world["cashier"], "false": False}
    started = time.perf_counter()
    for i, lines in enumerate(work):
        now = utcnow()
        day = local_date(now)
        stamp = now.replace(tzinfo=None) if sqlite else now  # SQLite keeps naive UTC, as UTCDateTime does
        total = sum(line_amount_fen(price, qty) for _, price, _, qty in lines)
        with engine.begin() as conn:
            n = conn.execute(stmts["counter"], {"prefix": f"P{run[-4:]}", "day": day}).scalar_one()
            sale_id = conn.execute(stmts["sale"], {
                **base, "receipt_no": f"P{run[-4:]}-{day:%Y%m%d}-{n:04d}", "client_sale_id": f"plain-{run}-{i}",
                "hash": "0" * 64, "till": world["till"], "shift": world["shift"], "now": stamp, "day": day,
                "total": total}).scalar_one()
            rows = [{**base, "sale_id": sale_id, "line_no": k + 1, "product_id": pid, "price": price, "lot_id": lot,
                     "qty": qty, "amount": line_amount_fen(price, qty), "now": stamp}
                    for k, (pid, price, lot, qty) in enumerate(lines)]
            conn.execute(stmts["line"], rows)
            conn.execute(stmts["payment"], {"sale_id": sale_id, "total": total, "tendered": total + 100})
            conn.execute(stmts["move"], rows)
            for name in ("debit", "lot_debit", "credit", "lot_credit"):
                conn.execute(stmts[name], rows)
    return time.perf_counter() - started


def main(argv=None) -> None:
    db = bench_database(argv, prog="python -m bench.checkout", doc=__doc__, default_scale=300,
                        scale_help="sales per run (default 300)")
    url, engine, scale = db.url, db.engine, db.scale
    try:
        maker = sessionmaker(bind=engine, expire_on_commit=False)
        run = utcnow().strftime("%H%M%S%f")
        world = seed(maker, run, scale)
        work = baskets(world, scale)
        # A few sales first on each path, so that neither pays for warming caches.
        run_project(maker, world, work[:5], run + "w")
        run_plain(engine, world, work[:5], run + "w")
        project = run_project(maker, world, work, run)
        plain = run_plain(engine, world, work, run)
    finally:
        db.close()

    project_rate = scale / project  # ok-float: timing
    plain_rate = scale / plain  # ok-float: timing
    print(f"database: {engine.dialect.name}   sales per run: {scale} x {LINES_PER_SALE} lines + 1 payment")
    print(f"{'path':<28}{'seconds':>10}{'sales/s':>12}{'ms/sale':>10}")
    for name, seconds, rate in (("record_sale (project)", project, project_rate),
                                ("plain SQL statements", plain, plain_rate)):
        print(f"{name:<28}{seconds:>10.3f}{rate:>12.1f}{1000 * seconds / scale:>10.2f}")
    print(f"checkout: {project_rate:.1f} sales/s vs plain SQL {plain_rate:.1f} sales/s, "
          f"ratio={project_rate / plain_rate:.3f} (throughput: below 1 is slower than plain SQL)")


if __name__ == "__main__":
    main()
