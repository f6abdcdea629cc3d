"""Catalogue import throughput: ``songtao import-catalogue`` (the file read, every row checked and
planned against the catalogue, then written all or nothing, with audit events, price history and
the catalogue version the tills follow) against the same rows written with plain SQL statements,
in the same run on the same database, the two paths interleaved file by file.

    python -m bench.catalogue_import [--database-url URL] [--scale N]

--scale is the number of products (default 100,000). They come in CSV files of 20,000 rows (the
most one import takes): every file first creates its products (name, two barcodes for one product
in three, category, unit, price, VAT, supplier and its county, a certificate for one product in
ten), then every file is imported again with every price changed (an update of each product).

What the plain SQL baseline does, in one transaction per file: reads the CSV with ``csv``, looks
up the categories, suppliers and certificates by name and inserts the missing ones, computes the
pinyin initials once per distinct name, inserts the products (executemany), reads their ids back,
inserts their barcodes, certificate links and one audit event per product; on the re-import it
reads the products' ids and prices by sku, updates the prices (executemany) and inserts the price
history rows and audit events. It checks nothing (no cell rules, no barcode owners, no duplicate
rows), which is what the project's import adds.

Without --database-url a temporary SQLite file is used. On an existing database the schema is
brought to the newest migration and the benchmark's products (skus CI<run>…) are added beside
whatever is there, so point it at a scratch database. Profile with
``python -m cProfile -o import.prof -m bench.catalogue_import``.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import time

from sqlalchemy import bindparam, insert, select, update

from bench.common import bench_database
from inventory import barcodes as barcode_rules
from inventory.catalogue import pinyin_initials
from inventory.localtime import utcnow
from inventory.models import (
    AuditEvent,
    Barcode,
    BarcodeKind,
    Category,
    Certificate,
    PriceChange,
    Product,
    Supplier,
    Unit,
    VatRate,
    certificate_products,
)

FILE_ROWS = 20_000        # inventory.catalogue_sheet.MAX_ROWS: the most one file may hold
HEADER = ["sku", "name", "barcodes", "category", "unit", "price_fen", "vat", "supplier", "origin_county",
          "origin_township", "origin_village", "certificate_no", "certificate_valid_from", "certificate_valid_to"]
PLACES = ["梅江", "松桃", "铜仁", "正大", "普觉", "寨英", "孟溪", "乌罗", "盘信", "大兴", "长兴", "世昌",
          "蓼皋", "甘龙", "迓驾", "石梁", "瓦溪", "永安", "牛郎", "黄板"]
ITEMS = ["绿茶", "红茶", "苦荞茶", "香米", "糯米", "菜籽油", "腊肉", "香肠", "干辣椒", "花椒", "蜂蜜", "核桃",
         "板栗", "猕猴桃干", "野生菌", "竹笋干", "豆腐乳", "米粉", "红薯粉", "土鸡蛋", "黑木耳", "香菇",
         "生姜", "魔芋", "刺梨汁", "油茶", "杜仲茶", "金银花", "天麻", "土豆"]
SPECS = ["250g", "500g", "1kg", "2.5kg", "礼盒装", "散装"]
CATEGORIES = ["茶叶", "粮油", "腊味", "山货", "调味", "饮品", "干货", "蔬果"]
COUNTIES = ["松桃苗族自治县", "江口县", "印江土家族苗族自治县", "石阡县", "思南县"]
SUPPLIERS = 40
CERTS = 40


def make_files(run: str, path: str, count: int, seed_value: int) -> list[list[list[str]]]:
    """The rows of every file (without header) for one path: products ``count``, in files of
    FILE_ROWS. Barcodes and skus are the path's own."""
    rng = random.Random(seed_value)
    valid_from = dt.date.today() - dt.timedelta(days=30)
    valid_to = dt.date.today() + dt.timedelta(days=700)
    rows = []
    for n in range(count):
        supplier = rng.randrange(SUPPLIERS)
        codes = []
        if n % 3 == 0:
            codes = [barcode_rules.ean13(f"69{path}{run[-3:]}{n:06d}"[:12]),
                     barcode_rules.ean13(f"68{path}{run[-3:]}{n:06d}"[:12])]
        elif n % 3 == 1:
            codes = [barcode_rules.ean13(f"69{path}{run[-3:]}{n:06d}"[:12])]
        cert = n % 10 == 0
        rows.append([
            f"CI{run}{path}{n:06d}",
            f"{rng.choice(PLACES)}{rng.choice(ITEMS)} {rng.choice(SPECS)}",
            "|".join(codes),
            CATEGORIES[n % len(CATEGORIES)],
            "kg" if n % 17 == 0 else "piece",
            str(rng.randrange(300, 30000)),
            "13" if n % 11 == 0 else "9",
            f"压测供应商{run}{path}-{supplier:02d}",
            COUNTIES[supplier % len(COUNTIES)], "", "",
            f"CERT-{run}{path}-{n % CERTS:02d}" if cert else "",
            valid_from.isoformat() if cert else "", valid_to.isoformat() if cert else "",
        ])
    return [rows[i:i + FILE_ROWS] for i in range(0, len(rows), FILE_ROWS)]


def repriced(files: list[list[list[str]]]) -> list[list[list[str]]]:
    return [[row[:5] + [str(int(row[5]) + 10)] + row[6:] for row in rows] for rows in files]


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


# --- the project's import, as `songtao import-catalogue` runs it --------------------------------

def run_project(app, data: bytes, filename: str) -> tuple[float, object]:  # ok-float: seconds
    from inventory import catalogue_import
    from pos.core.db import session_scope

    started = time.perf_counter()
    with session_scope(app) as s:
        plan = catalogue_import.plan_import(s, filename, data)     # as the CLI: planned once, shown, written
        if plan.preview.errors:
            raise SystemExit(f"the bench's file was refused: {plan.preview.errors[:3]}")
        result = catalogue_import.apply_plan(s, plan, filename)
    return time.perf_counter() - started, result


# --- the same rows with plain SQL -----------------------------------------------------------------

def _audit(action: str, entity_id: int, before, after, now) -> dict:
    return {"at": now, "user_id": None, "action": action, "entity": "product", "entity_id": str(entity_id),
            "before": None if before is None else json.dumps(before, ensure_ascii=False, sort_keys=True),
            "after": json.dumps(after, ensure_ascii=False, sort_keys=True), "ip": None}


def _ids_by(conn, column, keys, *extra) -> dict:
    found = {}
    keys = sorted(keys)
    for i in range(0, len(keys), 500):
        for row in conn.execute(select(column, *extra).where(column.in_(keys[i:i + 500]))):
            found[row[0]] = row[1:] if len(extra) > 1 else row[1]
    return found


def run_plain(engine, data: bytes, *, create: bool) -> float:  # ok-float: seconds
    started = time.perf_counter()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    now = utcnow()
    with engine.begin() as conn:
        skus = [r["sku"] for r in rows]
        if not create:
            have = _ids_by(conn, Product.sku, skus, Product.id, Product.price_fen)
            changes = [{"pid": have[r["sku"]][0], "price": int(r["price_fen"]), "old": have[r["sku"]][1]}
                       for r in rows if int(r["price_fen"]) != have[r["sku"]][1]]
            conn.execute(update(Product).where(Product.id == bindparam("pid"))
                         .values(price_fen=bindparam("price")), changes)
            conn.execute(insert(PriceChange), [
                {"product_id": c["pid"], "old_price_fen": c["old"], "new_price_fen": c["price"],
                 "changed_by_id": None, "changed_at": now} for c in changes])
            conn.execute(insert(AuditEvent), [
                _audit("product.price_change", c["pid"], {"price_fen": c["old"]}, {"price_fen": c["price"]}, now)
                for c in changes])
            return time.perf_counter() - started
        categories = _ids_by(conn, Category.name, {r["category"] for r in rows}, Category.id)
        for name in sorted({r["category"] for r in rows} - set(categories)):
            categories[name] = conn.execute(insert(Category).values(name=name, sort_order=0, active=True)
                                            .returning(Category.id)).scalar_one()
        suppliers = _ids_by(conn, Supplier.name, {r["supplier"] for r in rows}, Supplier.id)
        for r in rows:
            if r["supplier"] not in suppliers:
                suppliers[r["supplier"]] = conn.execute(insert(Supplier).values(
                    name=r["supplier"], origin_county=r["origin_county"], active=True,
                ).returning(Supplier.id)).scalar_one()
        certs = _ids_by(conn, Certificate.number, {r["certificate_no"] for r in rows} - {""}, Certificate.id)
        for r in rows:
            if r["certificate_no"] and r["certificate_no"] not in certs:
                certs[r["certificate_no"]] = conn.execute(insert(Certificate).values(
                    number=r["certificate_no"], issuer="待补充", supplier_id=suppliers[r["supplier"]],
                    valid_from=dt.date.fromisoformat(r["certificate_valid_from"]),
                    valid_to=dt.date.fromisoformat(r["certificate_valid_to"])).returning(Certificate.id)).scalar_one()
        initials: dict[str, str] = {}
        products = []
        for r in rows:
            name = r["name"]
            if name not in initials:
                initials[name] = pinyin_initials(name)
            unit = Unit(r["unit"])
            products.append({
                "sku": r["sku"], "name": name, "pinyin_initials": initials[name],
                "category_id": categories[r["category"]], "supplier_id": suppliers[r["supplier"]],
                "unit": unit, "sold_by_weight": unit == Unit.KG, "price_fen": int(r["price_fen"]),
                "vat": VatRate(r["vat"]) if r["vat"] != "9" else VatRate.AGRICULTURAL_9, "active": True,
                "created_at": now, "catalogue_version": 1})
        conn.execute(insert(Product), products)
        ids = _ids_by(conn, Product.sku, skus, Product.id)
        conn.execute(insert(Barcode), [
            {"product_id": ids[r["sku"]], "code": code, "kind": BarcodeKind.EAN13}
            for r in rows for code in r["barcodes"].split("|") if code])
        links = [{"certificate_id": certs[r["certificate_no"]], "product_id": ids[r["sku"]]}
                 for r in rows if r["certificate_no"]]
        if links:
            conn.execute(insert(certificate_products), links)
        conn.execute(insert(AuditEvent), [
            _audit("product.create", ids[p["sku"]], None,
                   {"sku": p["sku"], "name": p["name"], "price_fen": p["price_fen"], "unit": p["unit"].value}, now)
            for p in products])
    return time.perf_counter() - started


def main(argv=None) -> None:
    db = bench_database(argv, prog="python -m bench.catalogue_import", doc=__doc__, default_scale=100_000,
                        scale_help="products (default 100,000), in files of 20,000 rows")
    url, engine, count = db.url, db.engine, db.scale
    run = utcnow().strftime("%H%M%S")
    project_files = make_files(run, "1", count, 5)
    plain_files = make_files(run, "2", count, 5)
    phases = {"create": (project_files, plain_files), "update": (repriced(project_files), repriced(plain_files))}
    seconds = {(phase, path): 0.0 for phase in phases for path in ("project", "plain")}  # ok-float: seconds
    counts = {"created": 0, "updated": 0}
    try:
        from pos import create_app

        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-only-secret-key"})
        with app.app_context():
            for phase, (mine, theirs) in phases.items():
                for n, (rows, plain_rows) in enumerate(zip(mine, theirs)):
                    took, result = run_project(app, csv_bytes(rows), f"catalogue-{phase}-{n}.csv")
                    seconds[(phase, "project")] += took
                    counts["created"] += result.created
                    counts["updated"] += result.updated
                    seconds[(phase, "plain")] += run_plain(engine, csv_bytes(plain_rows), create=phase == "create")
    finally:
        db.close()
    if counts != {"created": count, "updated": count}:
        raise SystemExit(f"expected {count} products created and updated, got {counts}")

    print(f"database: {engine.dialect.name}   products: {count} in files of ≤ {FILE_ROWS} rows, "
          f"imported new, then again with every price changed")
    print(f"{'path':<40}{'seconds':>10}{'rows/s':>12}")
    for phase in phases:
        for path, label in (("project", "songtao import-catalogue"), ("plain", "plain SQL statements")):
            took = seconds[(phase, path)]
            print(f"{phase + ': ' + label:<40}{took:>10.3f}{count / took:>12.1f}")
    project = sum(seconds[(p, "project")] for p in phases)
    plain = sum(seconds[(p, "plain")] for p in phases)
    for phase in phases:
        rate = count / seconds[(phase, "project")]
        print(f"catalogue_import {phase}: {rate:.1f} rows/s vs plain SQL {count / seconds[(phase, 'plain')]:.1f} "
              f"rows/s, ratio={seconds[(phase, 'plain')] / seconds[(phase, 'project')]:.3f}")
    print(f"catalogue_import: {2 * count / project:.1f} rows/s vs plain SQL {2 * count / plain:.1f} rows/s, "
          f"ratio={plain / project:.3f} (throughput: below 1 is slower than plain SQL)")


if __name__ == "__main__":
    main()
