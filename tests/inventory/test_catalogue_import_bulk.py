"""The catalogue import of thousands of rows, written in bulk (issue 16): the same products,
barcodes, prices, pinyin, price history, audit events and certificate links as the catalogue's
own writers give; one catalogue version for the whole file, above the tills' cursor, so a till's
next delta has every imported product; errors still reported per row, nothing written; the same
file again changes nothing."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from inventory import catalogue, suppliers
from inventory.barcodes import ean13
from inventory.catalogue_changes import current_version
from inventory.catalogue_import import apply_import, apply_plan, plan_import
from inventory.catalogue_sheet import ImportRefused
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
from inventory.product_rules import product_snapshot
from pos.core.db import session_scope
from tests.fixtures.till import hall, till  # noqa: F401  (fixtures)

TODAY = dt.date(2026, 11, 26)
HEADER = ["sku", "name", "barcodes", "category", "unit", "price_fen", "vat", "supplier", "origin_county",
          "origin_township", "origin_village", "certificate_no", "certificate_valid_from", "certificate_valid_to"]
NAMES = ["梅江绿茶 250g", "松桃红米 2.5kg", "孟溪腊肉", "土蜂蜜 500g", "苗家米酒"]
OLD_CERT = "黔扶认〔2026〕520628-0001"
N = 3000
KEPT = 30
from tests.fixtures.catalogue import csv_bytes as catalogue_csv


def csv_bytes(rows) -> bytes:
    return catalogue_csv(HEADER, rows)


def counts(s) -> dict:
    return {model.__name__: s.scalar(select(func.count()).select_from(model))
            for model in (Product, Barcode, Category, Supplier, Certificate, PriceChange, AuditEvent)} | {
        "links": s.scalar(select(func.count()).select_from(certificate_products))}


def events(s, action: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for e in s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)):
        found.setdefault(e.entity_id, []).append({"before": json.loads(e.before) if e.before else None,
                                                   "after": json.loads(e.after)})
    return found


@pytest.fixture
def shop(session):
    """A supplier, a category and KEPT products (EAN-13 ``690000…``), the first ten on a certificate."""
    supplier = suppliers.create_supplier(session, name="孟溪红米合作社", origin_county="松桃苗族自治县",
                                         origin_county_code="520628")
    tea = catalogue.create_category(session, "茶叶")
    kept = [catalogue.create_product(session, sku=f"KEEP{i:03d}", name=f"旧茶 {i}", price_fen=1000 + i,
                                     category_id=tea.id, supplier_id=supplier.id,
                                     barcodes=[ean13(f"690000{i:06d}")]) for i in range(KEPT)]
    suppliers.create_certificate(session, number=OLD_CERT, issuer="铜仁市乡村振兴局", supplier_id=supplier.id,
                                 valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2027, 12, 31),
                                 product_ids=[p.id for p in kept[:10]])
    session.commit()
    return kept


def big_file() -> list[list[str]]:
    """N new products (two barcodes, one or none; a new certificate for one in five; a kg unit
    now and then), then the KEPT products again: every third with a new price, every fifth renamed,
    KEEP001 handing its barcode to KEEP000 and taking a new one, KEEP002 onto a new certificate."""
    rows = []
    for n in range(N):
        codes = [ean13(f"691{n:09d}"), ean13(f"692{n:09d}")][: n % 3]
        cert = (f"NEW-{n % 4}", "2026-02-01", "2027-02-01") if n % 5 == 0 else ("", "", "")
        rows.append([f"N{n:05d}", NAMES[n % len(NAMES)] + ("" if n % 2 else f" {n % 7}"), "|".join(codes),
                     "粮油" if n % 2 else "茶叶", "kg" if n % 13 == 0 else "piece", str(100 + n),
                     "13" if n % 11 == 0 else "9", "新供应商" if n % 3 == 0 else "孟溪红米合作社", "", "", "", *cert])
    for i in range(KEPT):
        code = ean13(f"690000{i:06d}")
        if i == 0:
            code += "|" + ean13(f"690000{1:06d}")
        elif i == 1:
            code = ean13(f"693000{1:06d}")
        cert = (OLD_CERT, "", "") if i < 10 else ("NEW-0", "", "") if i == 12 else ("", "", "")
        rows.append([f"KEEP{i:03d}", f"新名 {i}" if i % 5 == 0 else f"旧茶 {i}", code, "茶叶", "piece",
                     str(1000 + i + (7 if i % 3 == 0 else 0)), "9", "孟溪红米合作社", "", "", "", *cert])
    return rows


def test_thousands_of_rows_write_what_the_catalogue_writers_would(session, shop):
    cursor = current_version(session)
    rows = big_file()
    result = apply_import(session, "big.csv", csv_bytes(rows), today=TODAY)
    session.commit()
    renamed = {f"KEEP{i:03d}" for i in range(0, KEPT, 5)}
    repriced = {f"KEEP{i:03d}" for i in range(0, KEPT, 3)}
    changed = renamed | repriced | {"KEEP001", "KEEP012"}
    assert (result.created, result.updated, result.unchanged, result.certificates_created, result.suppliers_created,
            result.categories_created) == (N, len(changed), KEPT - len(changed), 4, 1, 1)

    products = {p.sku: p for p in session.scalars(select(Product))}
    created = events(session, "product.create")
    for sku, name, codes, category, unit, price, vat, supplier, *_rest in rows[:N]:
        p = products[sku]
        assert (p.name, p.price_fen, p.category.name, p.supplier.name, p.active) == (name, int(price), category,
                                                                                        supplier, True)
        assert p.unit == (Unit.KG if unit == "kg" else Unit.PIECE) and p.sold_by_weight is (unit == "kg")
        assert p.vat == (VatRate.GENERAL_13 if vat == "13" else VatRate.AGRICULTURAL_9)
        assert p.pinyin_initials == catalogue.pinyin_initials(name)
        assert [(b.code, b.kind) for b in p.barcodes] == [(c, BarcodeKind.EAN13) for c in codes.split("|") if c]
        if supplier == "孟溪红米合作社":   # the supplier's origin, not copied onto the product
            assert p.origin_county is None and p.origin()["county"] == "松桃苗族自治县"
        assert created[str(p.id)] == [{"before": None, "after": product_snapshot(p)}]   # as create_product audits
    assert len({products[r[0]].catalogue_version for r in rows[:N]}) == 1       # one number for the file …
    version = products["N00000"].catalogue_version
    assert version > cursor                                                      # … that the tills ask for

    for p in (products[f"KEEP{i:03d}"] for i in range(KEPT)):
        assert (p.catalogue_version == version) is (p.sku in changed)
        assert (p.catalogue_version <= cursor) is (p.sku not in changed)
        assert p.pinyin_initials == catalogue.pinyin_initials(p.name)
    prices = {(c.product_id, c.old_price_fen, c.new_price_fen) for c in session.scalars(select(PriceChange))}
    assert prices == {(products[s].id, 1000 + int(s[4:]), 1007 + int(s[4:])) for s in repriced}
    assert set(events(session, "product.price_change")) == {str(products[s].id) for s in repriced}
    updates = events(session, "product.update")
    keep0, keep1 = products["KEEP000"], products["KEEP001"]
    assert [b.code for b in keep0.barcodes] == [ean13("690000000000"), ean13("690000000001")]
    assert [b.code for b in keep1.barcodes] == [ean13("693000000001")]
    assert updates[str(keep1.id)] == [   # the code leaves its owner first, then the new one comes
        {"before": {"barcodes": [ean13("690000000001")]}, "after": {"barcodes": []}},
        {"before": {"barcodes": []}, "after": {"barcodes": [ean13("693000000001")]}}]
    assert updates[str(keep0.id)] == [{"before": {"barcodes": [ean13("690000000000")], "name": "旧茶 0"},
                                       "after": {"barcodes": [ean13("690000000000"), ean13("690000000001")],
                                                 "name": "新名 0"}}]
    assert products["KEEP005"].pinyin_initials == "xm5"

    covered = {number: {p.sku for p in c.products} for number, c in
               ((c.number, c) for c in session.scalars(select(Certificate)))}
    for k in range(4):
        assert covered[f"NEW-{k}"] == {r[0] for r in rows[:N] if r[11] == f"NEW-{k}"} | (
            {"KEEP012"} if k == 0 else set())
    assert covered[OLD_CERT] == {f"KEEP{i:03d}" for i in range(10)}
    cert_events = events(session, "certificate.create")
    new1 = session.scalar(select(Certificate).where(Certificate.number == "NEW-1"))
    assert cert_events[str(new1.id)][0]["after"]["product_ids"] == sorted(p.id for p in new1.products)


def test_the_same_file_again_changes_nothing(session, shop):
    data = csv_bytes(big_file())
    apply_import(session, "big.csv", data, today=TODAY)
    session.commit()
    before, version = counts(session), current_version(session)
    again = apply_import(session, "big.csv", data, today=TODAY)
    session.commit()
    assert (again.created, again.updated, again.unchanged) == (0, 0, N + KEPT)
    assert counts(session) == before | {"AuditEvent": before["AuditEvent"] + 1}   # the import itself, audited
    assert current_version(session) == version                                    # no version taken


def test_every_row_error_of_a_large_file_is_reported_and_nothing_written(session, shop):
    rows = big_file()
    rows[8][5] = "12.5"                         # row 10: a price in fen with a decimal point
    rows[1498][2] = "6910000014990"             # row 1500: a wrong check digit
    rows[2997][0] = rows[2996][0]               # row 2999: a sku twice
    rows[N + 3][2] = ean13("691000000001")      # a barcode of a new row, on an existing product too
    before, version = counts(session), current_version(session)
    with pytest.raises(ImportRefused) as refused:
        apply_import(session, "bad.csv", csv_bytes(rows), today=TODAY)
    found = [(e.row_no, e.column) for e in refused.value.errors]
    assert found == [(10, "price_fen"), (1500, "barcodes"), (2999, "sku"), (N + 5, "barcodes")]
    session.rollback()
    assert counts(session) == before and current_version(session) == version


def test_a_plan_with_errors_is_not_written(session, shop):
    rows = big_file()[:5]
    rows[2][5] = "abc"
    plan = plan_import(session, "bad.csv", csv_bytes(rows), today=TODAY)
    assert [(e.row_no, e.column) for e in plan.preview.errors] == [(4, "price_fen")]
    with pytest.raises(ImportRefused):
        apply_plan(session, plan, "bad.csv")
    assert session.scalar(select(func.count()).select_from(Product)) == KEPT


def test_a_till_sees_every_imported_product_in_its_next_delta(app, till, hall):  # noqa: F811
    first = till.get("/api/v1/catalogue", till="H1").get_json()
    rows = [[f"IMP{n:04d}", NAMES[n % 5], ean13(f"694{n:09d}"), "", "piece", str(500 + n), "9", "", "", "", "",
             "", "", ""] for n in range(300)]
    rows.append(["HONEY", "松桃土蜂蜜 500g", "", "", "piece", "4200", "9", "", "", "", "", "", "", ""])
    with session_scope(app) as s:
        apply_import(s, "till.csv", csv_bytes(rows))
        ids = {sku: pid for sku, pid in s.execute(select(Product.sku, Product.id).where(Product.sku.like("IMP%")))}
    delta = till.get("/api/v1/catalogue", till="H1", since=first["cursor"]).get_json()
    got = {p["product_id"]: p for p in delta["products"]}
    assert set(got) == set(ids.values()) | {hall.honey}
    assert got[hall.honey]["price_fen"] == 4200
    for n in (0, 151, 299):
        p = got[ids[f"IMP{n:04d}"]]
        assert (p["price_fen"], p["barcodes"], p["pinyin_initials"]) == (
            500 + n, [ean13(f"694{n:09d}")], catalogue.pinyin_initials(NAMES[n % 5]))
    assert till.get("/api/v1/catalogue", till="H1", since=delta["cursor"]).get_json()["products"] == []
