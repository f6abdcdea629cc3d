"""Every CSV and XLSX export goes through one safe writer (inventory.spreadsheets): text a person
typed that a spreadsheet would run as a formula (``=HYPERLINK("http://x","y")``, ``@SUM(1)``,
``+1+2``, ``-2+3``) is written as text, never as a formula; numbers stay numbers; and an export
imported again gives back the text as typed."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from inventory import spreadsheets
from inventory.catalogue_export import export_catalogue
from inventory.catalogue_import import apply_import, preview_import
from inventory.localtime import HALL_TZ
from inventory.models import Category, Location, LocationKind, Product, Supplier
from inventory.spreadsheets import Fen, Qty, csv_table, safe_text, unguard_text, xlsx_tables
from pos.reports import figures as reports
from pos.reports import drilldown as report_drilldown
from pos.reports import exports as report_exports
from pos.reports import monthly as report_monthly
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn, record_sale

EVIL = '=HYPERLINK("http://x","y")'
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def assert_csv_has_no_formula(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    for row in rows:
        for cell in row:
            assert not (cell.startswith(DANGEROUS) and not NUMBER.fullmatch(cell)), (cell, row)
    return rows


def assert_xlsx_has_no_formula(data: bytes) -> list:
    book = load_workbook(io.BytesIO(data))
    cells = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(DANGEROUS), (sheet.title, cell.coordinate, cell.value)
                cells.append(cell)
    return cells


@pytest.fixture
def evil(session):
    """A supplier, a category and a product whose names are formulas, sold once (a group sale)."""
    base = Location(code="BASE", name="物流基地", kind=LocationKind.BASE)
    customer = Location(code="CUSTOMER", name="顾客（虚拟）", kind=LocationKind.CUSTOMER)
    supplier = Supplier(name=EVIL, origin_county="@SUM(1)", origin_county_code="520628", origin_township="-2+3")
    category = Category(name="+1+2")
    session.add_all([base, customer, supplier, category])
    session.flush()
    product = Product(sku="EVIL1", name=EVIL, price_fen=1280, supplier_id=supplier.id, category_id=category.id)
    session.add(product)
    session.flush()
    record_sale(session, SaleIn(channel="group", location_id=base.id, buyer_type="other", receipt_prefix="G",
                                sold_at=dt.datetime(2026, 3, 20, 10, 0, tzinfo=HALL_TZ),
                                lines=[LineIn(product.id, 2000)], payments=[PaymentIn("bank_transfer", 2560)]))
    session.flush()
    return product


def test_point7b_catalogue_export_writes_a_formula_name_as_text(session, evil):
    rows = assert_csv_has_no_formula(export_catalogue(session, "csv").decode("utf-8-sig"))
    row = next(r for r in rows if r[0] == "EVIL1")
    assert row[1] == "'" + EVIL and row[3] == "'+1+2" and row[7] == "'" + EVIL
    assert row[5] == "1280"                                    # the price stays a plain number

    cells = assert_xlsx_has_no_formula(export_catalogue(session, "xlsx"))
    named = [c for c in cells if c.value == "'" + EVIL]
    assert len(named) == 2 and all(c.data_type == "s" for c in named)   # name and supplier
    price = next(c for c in cells if c.value == 1280)
    assert price.data_type == "n"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_point7b_catalogue_export_imported_again_changes_nothing(session, evil, fmt):
    data = export_catalogue(session, fmt)
    preview = preview_import(session, f"catalogue.{fmt}", data, today=dt.date(2026, 3, 21))
    assert preview.errors == []
    assert [(r.sku, r.action, r.changes) for r in preview.rows] == [("EVIL1", "unchanged", {})]
    apply_import(session, f"catalogue.{fmt}", data, today=dt.date(2026, 3, 21))
    session.flush()
    session.refresh(evil)
    assert evil.name == EVIL


def test_point7b_every_report_export_writes_formula_names_as_text(session, evil):
    collab = reports.collaboration(session, first=dt.date(2026, 3, 1), last=dt.date(2026, 3, 31))
    monthly = report_monthly.monthly_summary(session, month="2026-03")
    lines = list(report_drilldown.iter_collaboration_lines(session, first=dt.date(2026, 3, 1), last=dt.date(2026, 3, 31)))
    assert lines and collab["total_fen"] == 2560

    texts = {
        "collaboration_csv": report_exports.collaboration_csv(collab),
        "monthly_csv": report_exports.monthly_csv(monthly),
        "lines_csv": report_exports.lines_csv(iter(lines)),
    }
    for name, text in texts.items():
        rows = assert_csv_has_no_formula(text)
        assert any("'" + EVIL in row for row in rows) or name == "monthly_csv", name
    books = {
        "collaboration_xlsx": report_exports.collaboration_xlsx(collab),
        "monthly_xlsx": report_exports.monthly_xlsx(monthly),
        "lines_xlsx": report_exports.lines_xlsx(iter(lines)),
    }
    for name, data in books.items():
        cells = assert_xlsx_has_no_formula(data)
        guarded = [c for c in cells if isinstance(c.value, str) and c.value.startswith("'")]
        assert all(c.data_type == "s" for c in guarded), name
    line_cells = assert_xlsx_has_no_formula(books["lines_xlsx"])
    assert {"'" + EVIL, "'-2+3"} <= {c.value for c in line_cells}
    assert 25.6 in [c.value for c in line_cells]               # the amount stays a number (yuan)


def test_the_writer_guards_text_and_keeps_numbers():
    assert [safe_text(t) for t in (EVIL, "@x", "+1", "-1", "\tx", "\rx", "茶", "", None, "'=x", "'a")] == [
        "'" + EVIL, "'@x", "'+1", "'-1", "'\tx", "'\rx", "茶", "", "", "''=x", "'a"]
    for text in (EVIL, "@x", "'=x", "'a", "茶", "a'=b"):
        assert unguard_text(safe_text(text)) == text
    rows = list(csv.reader(io.StringIO(csv_table(["a", "=b"], [[Fen(-300), Qty(1500), 7, Decimal("12.5"), True, "-x"]]))))
    assert rows == [["a", "'=b"], ["-3.00", "1.500", "7", "12.5", "是", "'-x"]]
    book = load_workbook(io.BytesIO(xlsx_tables([("t", ["h"], [[Fen(-300), Qty(1500), 7, "=1+1", "-x"]])])))
    values = [(c.value, c.data_type) for c in book["t"][2]]
    assert values == [(-3, "n"), (1.5, "n"), (7, "n"), ("'=1+1", "s"), ("'-x", "s")]
    assert spreadsheets.FORMULA_STARTS == DANGEROUS
