"""Catalogue import and export: CSV (with and without BOM, GB18030) and XLSX, English or Chinese
headers; a preview first; nothing written unless every row is valid; export then import changes
nothing; and `songtao import-catalogue` from the command line."""
from __future__ import annotations

import datetime as dt
import functools
import io
import zipfile

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook
from PIL import Image
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from inventory import catalogue, catalogue_sheet, credit_codes, suppliers
from inventory.catalogue_export import export_catalogue
from inventory.catalogue_import import apply_import, preview_import
from inventory.catalogue_sheet import ImportRefused, read_rows
from inventory.certification import certification_on
from inventory.errors import InventoryError, ValidationError
from inventory.models import (
    AuditEvent,
    Barcode,
    Category,
    Certificate,
    PriceChange,
    Product,
    Supplier,
    Unit,
    VatRate,
    certificate_products,
)

TODAY = dt.date(2026, 11, 26)
ZH = list(catalogue_sheet.CHINESE_HEADERS)
EN = list(catalogue_sheet.COLUMNS)
SONGTAO = ["松桃苗族自治县", "孟溪镇", "新场村"]
CERT = "黔扶认〔2026〕520628-0042"
CREDIT = credit_codes.example_credit_code(__import__("random").Random(3), cooperative=True, county_code="520628")
from tests.fixtures.catalogue import csv_bytes as catalogue_csv


csv_bytes = functools.partial(catalogue_csv, bom=True)  # a BOM, as Excel saves "CSV UTF-8"


def xlsx_bytes(header, rows) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def row(sku, name, barcodes="", category="茶叶", unit="piece", price="3800", vat="9", supplier="孟溪红米合作社",
        origin=("", "", ""), cert=("", "", "")):
    return [sku, name, barcodes, category, unit, price, vat, supplier, *origin, *cert]


def counts(session) -> dict:
    return {model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (Product, Barcode, Category, Supplier, Certificate, PriceChange, AuditEvent)} | {
        "links": session.scalar(select(func.count()).select_from(certificate_products))}


@pytest.fixture
def known(session):
    """What the hall already has: a supplier, a category, two products, a certificate."""
    supplier = suppliers.create_supplier(session, name="孟溪红米合作社", credit_code=CREDIT,
                                         origin_county=SONGTAO[0], origin_county_code="520628",
                                         origin_township=SONGTAO[1], origin_village=SONGTAO[2])
    tea = catalogue.create_category(session, "茶叶")
    p1 = catalogue.create_product(session, sku="ST0001", name="梅江茶 250g", price_fen=3800, category_id=tea.id,
                                  supplier_id=supplier.id, barcodes=["6901234567892"])
    p2 = catalogue.create_product(session, sku="ST0002", name="松桃红米 2.5kg", price_fen=6800, category_id=tea.id,
                                  supplier_id=supplier.id, vat="exempt")
    suppliers.create_certificate(session, number=CERT, issuer="铜仁市乡村振兴局", supplier_id=supplier.id,
                                 valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2027, 12, 31),
                                 product_ids=[p1.id, p2.id])
    session.flush()
    return {"supplier": supplier, "tea": p1, "rice": p2}


# --- reading files -------------------------------------------------------------------------------

@pytest.mark.parametrize("bom", [True, False])
def test_csv_with_and_without_bom_and_chinese_headers(bom):
    data = csv_bytes(ZH, [row("ST0009", "苗绣杯垫（4片装）", "6901234567892|ST-X1")], bom=bom)
    rows = read_rows("商品.csv", data)
    assert rows == [{"_row": 2, "sku": "ST0009", "name": "苗绣杯垫（4片装）", "barcodes": "6901234567892|ST-X1",
                     "category": "茶叶", "unit": "piece", "price_fen": "3800", "vat": "9", "supplier": "孟溪红米合作社",
                     "origin_county": "", "origin_township": "", "origin_village": "", "certificate_no": "",
                     "certificate_valid_from": "", "certificate_valid_to": ""}]


def test_english_headers_full_width_parentheses_gb18030_and_blank_rows():
    header = ["SKU", " Name ", "price_fen", "unit"]
    data = csv_bytes(header, [["ST1", "梅江茶", "100", "piece"], ["", "", "", ""], ["ST2", "翠峰茶", "200", "kg"]],
                     bom=False, encoding="gb18030")
    rows = read_rows("x.csv", data)
    assert [(r["_row"], r["sku"], r["name"]) for r in rows] == [(2, "ST1", "梅江茶"), (4, "ST2", "翠峰茶")]
    data = csv_bytes(["商品编码", "名称", "售价（分）"], [["ST1", "梅江茶", "100"]])
    assert read_rows("x.csv", data)[0]["price_fen"] == "100"


def test_xlsx_with_numbers_and_dates():
    data = xlsx_bytes(ZH, [["ST0001", "梅江茶", 6901234567892, "茶叶", "piece", 3800, 9, "孟溪红米合作社",
                            *SONGTAO, CERT, dt.datetime(2026, 1, 1), dt.date(2027, 12, 31)]])
    (only,) = read_rows("商品.xlsx", data)
    assert (only["barcodes"], only["price_fen"], only["vat"]) == ("6901234567892", "3800", "9")
    assert (only["certificate_valid_from"], only["certificate_valid_to"]) == ("2026-01-01", "2027-12-31")


def test_xlsx_whose_stored_size_is_wrong_still_gives_every_row():
    """Some generators write <dimension ref="A1"/>: read-only openpyxl would then see one row."""
    data = xlsx_bytes(ZH[:2], [[f"ST{n}", f"茶{n}"] for n in range(1, 4)])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                body = body.replace(b'<dimension ref="A1:B4" />', b'<dimension ref="A1" />')
                assert b'<dimension ref="A1" />' in body
            dst.writestr(item, body)
    assert [r["sku"] for r in read_rows("x.xlsx", out.getvalue())] == ["ST1", "ST2", "ST3"]


def test_a_csv_with_a_control_character_far_into_it_is_refused_not_stored(session):
    """PostgreSQL refuses NUL in text: found anywhere in the file, it is not a spreadsheet."""
    rows = [[f"ST{n}", "梅江茶" * 20, "100", "piece"] for n in range(80)]
    for bad in ("\x00", "\x07"):
        data = csv_bytes(["SKU", "名称", "售价(分)", "unit"], rows + [["ST999", "茶" + bad, "100", "piece"]])
        assert len(data) > 4096
        with pytest.raises(ValidationError, match="文件不是 CSV 或 Excel 表格"):
            preview_import(session, "x.csv", data)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2, 2)).save(out, format="PNG")
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "hi")
    return out.getvalue()


@pytest.mark.parametrize("filename, data", [
    ("photo.png", _png()),
    ("archive.zip", _zip()),
    ("data.bin", bytes(range(256)) * 4),
    ("notes.txt", "今天天气很好\n我们去爬梵净山\n".encode()),
    ("fake.xlsx", b"PK\x03\x04 not really a zip"),
])
def test_a_file_that_is_not_a_spreadsheet(session, filename, data):
    with pytest.raises(ValidationError) as caught:
        preview_import(session, filename, data)
    assert "文件不是 CSV 或 Excel 表格" in str(caught.value)
    with pytest.raises(InventoryError):
        apply_import(session, filename, data)


@pytest.mark.parametrize("filename, data, fragment", [
    ("empty.csv", b"", "空"),
    ("blank.csv", b"\xef\xbb\xbf\r\n,,\r\n", "空"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, ".xls"),
    ("two-prices.csv", csv_bytes(["商品编码", "名称", "售价(分)", "售价(元)"], [["ST1", "茶", "3800", "38.00"]]),
     "售价只能有一列"),
    ("nosku.csv", csv_bytes(["名称", "售价(分)"], [["茶", "3800"]]), "缺少「商品编码」"),
    ("twice.csv", csv_bytes(["sku", "商品编码"], [["A", "B"]]), "列名重复"),
])
def test_file_level_mistakes(session, filename, data, fragment):
    with pytest.raises(ValidationError) as caught:
        preview_import(session, filename, data)
    assert fragment in str(caught.value)


# --- preview -------------------------------------------------------------------------------------

def test_preview_shows_create_update_and_unchanged_and_writes_nothing(session, known):
    before = counts(session)
    data = csv_bytes(ZH, [
        row("ST0001", "梅江茶 250g", "6901234567892", supplier="孟溪红米合作社", origin=SONGTAO,
            cert=(CERT, "2026-01-01", "2027-12-31")),
        row("ST0002", "松桃红米 2.5kg", price="7200", vat="exempt", origin=SONGTAO, cert=(CERT, "", "")),
        row("ST0100", "苗家腊肉（散称）", unit="kg", price="9800", vat="13", category="腊味", supplier="盘信腊味合作社",
            origin=["松桃苗族自治县", "盘信镇", "大塘村"]),
    ])
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert preview.ok and preview.errors == []
    assert [(r.row_no, r.sku, r.action) for r in preview.rows] == [
        (2, "ST0001", "unchanged"), (3, "ST0002", "update"), (4, "ST0100", "create")]
    assert preview.rows[1].changes == {"price_fen": ("6800", "7200")}
    assert preview.rows[2].changes["unit"] == ("", "kg")
    assert (preview.created, preview.updated, preview.unchanged) == (1, 1, 1)
    assert preview.new_categories == ["腊味"] and preview.new_suppliers == ["盘信腊味合作社"]
    assert counts(session) == before


# --- apply ---------------------------------------------------------------------------------------

def test_import_creates_products_suppliers_categories_and_certificates(session, known):
    data = xlsx_bytes(ZH + ["认定机构", "统一社会信用代码"], [
        row("ST0100", "苗家腊肉（散称）", "", "腊味", "kg", 9800, "13", "盘信腊味合作社", ["松桃苗族自治县", "盘信镇", "大塘村"],
            ["黔扶认〔2026〕520628-0077", "2026-03-01", "2028-02-29"]) + ["铜仁市乡村振兴局", ""],
        row("ST0101", "苗家腊香肠 500g", "6901234567885|ST-LC-1", "腊味", "件", 5800, "13", "盘信腊味合作社",
            ["松桃苗族自治县", "盘信镇", "大塘村"], ["黔扶认〔2026〕520628-0077", "2026-03-01", "2028-02-29"]) + ["", ""],
        row("ST0102", "湘西腊肉 500g", "", "腊味", "piece", 5800, "13", "花垣腊味公司", ["花垣县", "边城镇", "茶峒村"])
        + ["", ""],
    ])
    result = apply_import(session, "腊味.xlsx", data, today=TODAY)
    assert (result.created, result.updated, result.unchanged) == (3, 0, 0)
    assert (result.suppliers_created, result.categories_created, result.certificates_created) == (2, 1, 1)
    pork = session.scalar(select(Product).where(Product.sku == "ST0100"))
    assert pork.unit == Unit.KG and pork.sold_by_weight and pork.vat == VatRate.GENERAL_13
    assert pork.supplier.name == "盘信腊味合作社" and pork.category.name == "腊味"
    # the new supplier took the rows' origin; the products do not copy it
    assert (pork.supplier.origin_county, pork.supplier.origin_township, pork.supplier.origin_county_code) == (
        "松桃苗族自治县", "盘信镇", "520628")
    assert pork.origin_county is None and pork.origin()["village"] == "大塘村"
    sausage = session.scalar(select(Product).where(Product.sku == "ST0101"))
    assert [b.code for b in sausage.barcodes] == ["6901234567885", "ST-LC-1"]
    cert = session.scalar(select(Certificate).where(Certificate.number == "黔扶认〔2026〕520628-0077"))
    assert cert.issuer == "铜仁市乡村振兴局" and cert.supplier.name == "盘信腊味合作社"
    assert sorted(p.sku for p in cert.products) == ["ST0100", "ST0101"]
    assert certification_on(session, pork.id, TODAY).certified
    hunan = session.scalar(select(Product).where(Product.sku == "ST0102"))
    assert not certification_on(session, hunan.id, TODAY).certified   # empty certificate columns
    assert hunan.supplier.origin_county_code is None
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "catalogue.import")).one()
    assert '"created": 3' in event.after


def test_import_updates_by_sku_name_and_number(session, known):
    data = csv_bytes(EN, [
        row("ST0001", "梅江茶 礼盒", "6901234567892|96385074", price="4200", origin=SONGTAO,
            cert=(CERT, "2026-01-01", "2028-06-30")),
    ])
    result = apply_import(session, "x.csv", data, today=TODAY)
    assert (result.created, result.updated, result.certificates_changed) == (0, 1, 1)
    tea = known["tea"]
    assert tea.name == "梅江茶 礼盒" and tea.pinyin_initials == "mjclh" and tea.price_fen == 4200
    assert sorted(b.code for b in tea.barcodes) == ["6901234567892", "96385074"]
    assert [(h.old_price_fen, h.new_price_fen) for h in session.scalars(select(PriceChange))] == [(3800, 4200)]
    cert = session.scalar(select(Certificate).where(Certificate.number == CERT))
    assert cert.valid_to == dt.date(2028, 6, 30)
    assert session.scalar(select(func.count()).select_from(Supplier)) == 1
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"product.price_change", "product.update", "certificate.update", "catalogue.import"} <= actions


def test_empty_certificate_columns_mean_uncertified_from_today(session, known):
    rice = known["rice"]
    old = suppliers.create_certificate(session, number="GZFP-2022-0001", issuer="贵州省乡村振兴局",
                                       valid_from=dt.date(2022, 1, 1), valid_to=dt.date(2023, 12, 31),
                                       product_ids=[rice.id])
    assert certification_on(session, rice.id, TODAY).certified
    data = csv_bytes(ZH, [row("ST0002", "松桃红米 2.5kg", price="6800", vat="exempt", origin=SONGTAO)])
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert preview.rows[0].action == "update"
    assert preview.rows[0].changes == {"certificate_no": (CERT, "")}
    assert preview.changed_certificates == [CERT]
    apply_import(session, "x.csv", data, today=TODAY)
    assert not certification_on(session, rice.id, TODAY).certified
    assert [p.sku for p in old.products] == ["ST0002"]  # the lapsed certificate keeps its history
    assert certification_on(session, rice.id, dt.date(2023, 6, 1)).certified


def test_a_file_with_one_bad_row_is_refused_with_its_row_and_column_and_writes_nothing(session, known):
    before = counts(session)
    rows = [row(f"NEW{n:03d}", f"新商品{n}", price=str(1000 + n), supplier="新合作社", category="新分类",
                cert=("NEWCERT-1", "2026-01-01", "2027-01-01")) for n in range(1, 10)]
    rows[5][5] = "12.80"                             # row 7 of the sheet: price in yuan
    data = csv_bytes(ZH, rows)
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert [(e.row_no, e.column) for e in preview.errors] == [(7, "售价(分)")]
    assert "整数" in preview.errors[0].message
    assert "第 7 行「售价(分)」" in preview.errors[0].describe()
    with pytest.raises(ImportRefused) as caught:
        apply_import(session, "x.csv", data, today=TODAY)
    assert [(e.row_no, e.column) for e in caught.value.errors] == [(7, "售价(分)")]
    assert "第 7 行" in str(caught.value) and "未写入任何数据" in str(caught.value)
    assert counts(session) == before


@pytest.mark.parametrize("bad_row, column, fragment", [
    (row("ST0200", "x", "6901234567893"), "条码", "条码校验位错误"),
    (row("ST0200", "x", "6.90123E+12"), "条码", "科学计数法"),
    (row("ST0200", "x", price="-5"), "售价(分)", "负数"),
    (row("ST0200", "x", price="abc"), "售价(分)", "整数"),
    (row("ST0200", "x", price=""), "售价(分)", "新商品需要售价"),
    (row("ST0200", "", price="100"), "名称", "新商品需要名称"),
    (row("", "x"), "商品编码", "不能为空"),
    (row("茶-1", "x"), "商品编码", "只能包含"),
    (row("ST0200", "x", unit="斤"), "单位", "piece"),
    (row("ST0200", "x", vat="6"), "税率", "9、13"),
    (row("ST0200", "x", cert=("NEW-CERT", "2026-13-01", "2027-01-01")), "证书生效日期", "YYYY-MM-DD"),
    (row("ST0200", "x", cert=("NEW-CERT", "", "")), "证书生效日期", "需要生效日期和失效日期"),
    (row("ST0200", "x", cert=("NEW-CERT", "2027-01-01", "2026-01-01")), "证书失效日期", "不能早于"),
    (row("ST0200", "x", cert=("", "2026-01-01", "2027-01-01")), "认定证书编号", "没有证书编号"),
    (row("ST0200", "x", "6901234567892"), "条码", "已属于商品「梅江茶 250g」"),
    (row("ST0002", "松桃红米", vat="9", unit="kg", price="100"), "单位", ""),
])
def test_row_errors_name_the_row_and_column(session, known, bad_row, column, fragment):
    before = counts(session)
    data = csv_bytes(ZH, [row("ST0300", "好商品", price="100"), bad_row])
    if bad_row[0] == "ST0002":  # give the rice a scale code first: a kg → piece change must then be refused
        catalogue.update_product(session, known["rice"].id, unit="kg", sold_by_weight=True, scale_plu=3)
        data = csv_bytes(ZH, [row("ST0300", "好商品", price="100"), row("ST0002", "松桃红米", unit="piece", price="100")])
        before = counts(session)
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert [(e.row_no, e.column) for e in preview.errors] == [(3, column)]
    assert fragment in preview.errors[0].message
    with pytest.raises(ImportRefused):
        apply_import(session, "x.csv", data, today=TODAY)
    assert counts(session) == before


def test_duplicates_within_the_file(session, known):
    data = csv_bytes(ZH, [row("A1", "甲", "96385074"), row("A2", "乙", "96385074"), row("A1", "甲again")])
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert [(e.row_no, e.column) for e in preview.errors] == [(3, "条码"), (4, "商品编码")]
    assert "第 2 行" in preview.errors[0].message and "第 2 行" in preview.errors[1].message


def test_a_barcode_can_move_between_products_in_one_file(session, known):
    data = csv_bytes(ZH, [
        row("ST0002", "松桃红米 2.5kg", "6901234567892", vat="exempt", price="6800", origin=SONGTAO, cert=(CERT, "", "")),
        row("ST0001", "梅江茶 250g", "", origin=SONGTAO, cert=(CERT, "", "")),
    ])
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert preview.ok, preview.errors
    apply_import(session, "x.csv", data, today=TODAY)
    assert [b.code for b in known["rice"].barcodes] == ["6901234567892"] and known["tea"].barcodes == []


def test_a_credit_code_must_match_the_supplier_on_record(session, known):
    other = credit_codes.example_credit_code(__import__("random").Random(99), cooperative=False, county_code="520628")
    data = csv_bytes(ZH + ["统一社会信用代码"], [row("ST0001", "梅江茶 250g", "6901234567892") + [other]])
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert [(e.row_no, e.column) for e in preview.errors] == [(2, "统一社会信用代码")]
    bad = CREDIT[:-1] + ("0" if CREDIT[-1] != "0" else "1")
    data = csv_bytes(ZH + ["统一社会信用代码"], [row("ST0500", "新", supplier="新社") + [bad]])
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert "校验位错误" in preview.errors[0].message


def test_only_some_columns_update_only_those_fields(session, known):
    data = csv_bytes(["商品编码", "售价(分)"], [["ST0001", "3900"]])
    preview = preview_import(session, "prices.csv", data, today=TODAY)
    assert [(r.action, r.changes) for r in preview.rows] == [("update", {"price_fen": ("3800", "3900")})]
    apply_import(session, "prices.csv", data, today=TODAY)
    tea = known["tea"]
    assert tea.price_fen == 3900 and [b.code for b in tea.barcodes] == ["6901234567892"]
    assert certification_on(session, tea.id, TODAY).certified


def test_ignored_columns_are_listed(session, known):
    data = csv_bytes(["商品编码", "售价(分)", "备注"], [["ST0001", "3800", "新包装"]])
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert preview.ignored_columns == ["备注"] and preview.rows[0].action == "unchanged"


# --- export --------------------------------------------------------------------------------------

@pytest.fixture
def varied(session, known):
    """Retired products, weighed goods, full-width names, a product's own origin, several
    barcodes, an expired and a current certificate, a product without supplier or category."""
    spare = catalogue.create_product(session, sku="ST0003", name="苗绣杯垫（4片装）", price_fen=4800, vat="13",
                                     barcodes=["012345678905", "ST-MX-1", "96385074"])
    rice = catalogue.create_product(session, sku="ST0023", name="散装松桃红米", price_fen=1680, unit="kg",
                                    sold_by_weight=True, scale_plu=101, supplier_id=known["supplier"].id,
                                    origin_county="松桃苗族自治县", origin_county_code="520628",
                                    origin_township="长兴堡镇", origin_village="长兴村")
    catalogue.set_active(session, spare.id, False)
    suppliers.create_certificate(session, number="GZFP-2022-0009", issuer="贵州省乡村振兴局",
                                 valid_from=dt.date(2022, 1, 1), valid_to=dt.date(2023, 12, 31),
                                 product_ids=[rice.id, known["tea"].id])
    return spare, rice


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("headers", ["zh", "en"])
def test_export_then_import_changes_nothing(session, varied, fmt, headers):
    data = export_catalogue(session, fmt, headers=headers)
    preview = preview_import(session, f"catalogue.{fmt}", data, today=TODAY)
    assert preview.errors == []
    assert [(r.sku, r.action, r.changes) for r in preview.rows if r.action != "unchanged"] == []
    assert len(preview.rows) == 4
    before = counts(session)
    result = apply_import(session, f"catalogue.{fmt}", data, today=TODAY)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 4)
    after = counts(session)
    assert after.pop("AuditEvent") == before.pop("AuditEvent") + 1   # only the import itself
    assert after == before


def test_export_formats(session, varied):
    data = export_catalogue(session, "csv")
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(ZH)
    assert lines[1].startswith("ST0001,梅江茶 250g,6901234567892,茶叶,piece,3800,9,孟溪红米合作社,松桃苗族自治县,孟溪镇,新场村,"
                               + CERT + ",2026-01-01,2027-12-31")
    assert "ST0003,苗绣杯垫（4片装）,012345678905|ST-MX-1|96385074,,piece,4800,13,,,,,,," in lines
    sheet = load_workbook(io.BytesIO(export_catalogue(session, "xlsx", headers="en"))).active
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == EN
    assert values[1][2] == "6901234567892" and values[1][5] == 3800
    with pytest.raises(ValidationError):
        export_catalogue(session, "pdf")


# --- the command line ----------------------------------------------------------------------------

@pytest.fixture
def cli(tmp_path, monkeypatch):
    from pos.cli import main

    monkeypatch.setenv("SONGTAO_INSTANCE", str(tmp_path / "instance"))
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    runner = CliRunner()
    assert runner.invoke(main, ["init-db"], env={"DATABASE_URL": url}).exit_code == 0

    def run(*args):
        return runner.invoke(main, list(args), env={"DATABASE_URL": url})

    def products():
        engine = create_engine(url)
        with Session(engine) as s:
            rows = sorted(s.execute(select(Product.sku, Product.price_fen)).all())
        engine.dispose()
        return rows

    return run, products


def test_cli_import_dry_run_then_import(cli, tmp_path):
    run, products = cli
    path = tmp_path / "商品.csv"
    path.write_bytes(csv_bytes(ZH, [row("ST0001", "梅江茶", "6901234567892"), row("ST0002", "翠峰茶", price="16800")]))
    result = run("import-catalogue", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "新建 2 个商品" in result.output and "未写入任何数据" in result.output
    assert products() == []
    result = run("import-catalogue", str(path))
    assert result.exit_code == 0, result.output
    assert "导入完成：新建 2 个商品" in result.output
    assert products() == [("ST0001", 3800), ("ST0002", 16800)]
    path.write_bytes(csv_bytes(["商品编码", "售价(分)"], [["ST0001", "3900"]]))
    result = run("import-catalogue", str(path))
    assert result.exit_code == 0 and "更新 1 个" in result.output and "3800 → 3900" in result.output
    assert products() == [("ST0001", 3900), ("ST0002", 16800)]


def test_cli_import_refuses_a_bad_file_and_lists_row_errors(cli, tmp_path):
    run, products = cli
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes(ZH, [row("ST0001", "梅江茶"), row("ST0002", "翠峰茶", "6901234567893"),
                                    row("ST0003", "红茶", price="-1")]))
    result = run("import-catalogue", str(path))
    assert result.exit_code != 0
    assert "第 3 行「条码」：条码校验位错误" in result.output
    assert "第 4 行「售价(分)」：售价不能为负数" in result.output
    assert "导入被拒绝：2 处错误，未写入任何数据" in result.output
    assert "Traceback" not in result.output
    assert products() == []


@pytest.mark.parametrize("content, fragment", [
    (None, "找不到文件"),
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "文件不是 CSV 或 Excel 表格"),
])
def test_cli_import_file_mistakes_are_one_line(cli, tmp_path, content, fragment):
    run, products = cli
    path = tmp_path / "x.csv"
    if content is not None:
        path.write_bytes(content)
    result = run("import-catalogue", str(path))
    assert result.exit_code != 0
    assert fragment in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert products() == []


def test_a_new_certificate_over_several_rows(session, known):
    rows = [row("N1", "甲", cert=("NEW-7", "", "")), row("N2", "乙", cert=("NEW-7", "2026-01-01", "2027-01-01")),
            row("N3", "丙", cert=("NEW-7", "2026-01-01", "2027-01-01"))]
    result = apply_import(session, "x.csv", csv_bytes(ZH, rows), today=TODAY)
    assert result.certificates_created == 1
    cert = session.scalar(select(Certificate).where(Certificate.number == "NEW-7"))
    assert sorted(p.sku for p in cert.products) == ["N1", "N2", "N3"] and cert.issuer == "待补充"


@pytest.mark.parametrize("rows, errors", [
    ([row("N1", "甲", cert=("NEW-7", "2026-01-01", "2027-01-01")), row("N2", "乙", cert=("NEW-7", "2026-02-01", ""))],
     [(3, "证书生效日期")]),
    ([row("N1", "甲", cert=("NEW-7", "", "")), row("N2", "乙", cert=("NEW-7", "", ""))],
     [(2, "证书生效日期"), (3, "证书生效日期")]),
    ([row("N1", "甲", cert=(CERT, "2026-01-01", "2029-01-01")), row("N2", "乙", cert=(CERT, "", "2027-12-31"))],
     [(3, "证书生效日期")]),
])
def test_rows_must_agree_on_a_certificates_dates(session, known, rows, errors):
    before = counts(session)
    preview = preview_import(session, "x.csv", csv_bytes(ZH, rows), today=TODAY)
    assert [(e.row_no, e.column) for e in preview.errors] == errors
    with pytest.raises(ImportRefused):
        apply_import(session, "x.csv", csv_bytes(ZH, rows), today=TODAY)
    assert counts(session) == before


# --- issue 18, point 15: a supplier's 售价 in yuan, and every error of a row -----------------------

@pytest.mark.parametrize("header", ["售价", "售价(元)", "单价", "price"])
def test_point15_the_price_column_in_yuan_is_read_exactly(session, header):
    texts = ["12.8", "12.80", "¥12.80", "￥12.80", "12", "12.80元", "0.05", "1,280.00"]
    rows = [[f"Y{n:02d}", f"商品{n}", text] for n, text in enumerate(texts)]
    result = apply_import(session, "supplier.csv", csv_bytes(["商品编码", "名称", header], rows), today=TODAY)
    assert result.created == len(texts)
    prices = dict(session.execute(select(Product.sku, Product.price_fen).where(Product.sku.like("Y%"))).all())
    assert [prices[f"Y{n:02d}"] for n in range(len(texts))] == [1280, 1280, 1280, 1280, 1200, 1280, 5, 128000]


def test_point15_yuan_number_cells_of_a_workbook_are_exact(session):
    # 12.8 typed in Excel; 3.3000000000000003 is what =3*1.1 saves (Excel shows 3.3); 19.99 typed
    data = xlsx_bytes(["sku", "name", "price"], [["X1", "甲", 12.8], ["X2", "乙", 3 * 1.1], ["X3", "丙", 19.99],
                                                 ["X4", "丁", 12]])
    apply_import(session, "supplier.xlsx", data, today=TODAY)
    prices = dict(session.execute(select(Product.sku, Product.price_fen).where(Product.sku.like("X%"))).all())
    assert prices == {"X1": 1280, "X2": 330, "X3": 1999, "X4": 1200}


@pytest.mark.parametrize("text, fragment", [
    ("12.345", "最多两位小数"), ("-1.00", "负数"), ("abc", "最多两位小数"), ("1e3", "最多两位小数"),
    ("99999999.99", "太大"),
])
def test_point15_a_yuan_price_that_is_not_exact_is_refused(session, text, fragment):
    data = csv_bytes(["商品编码", "名称", "售价"], [["Y1", "甲", "1.00"], ["Y2", "乙", text]])
    preview = preview_import(session, "supplier.csv", data, today=TODAY)
    assert [(e.row_no, e.column) for e in preview.errors] == [(3, "售价")]
    assert fragment in preview.errors[0].message
    with pytest.raises(ImportRefused):
        apply_import(session, "supplier.csv", data, today=TODAY)
    assert session.scalar(select(func.count()).select_from(Product)) == 0


def test_point15_the_catalogue_and_the_group_import_read_a_yuan_cell_alike(session):
    from pos.group import order_import as group_import

    for value in ("12.8", "¥12.80", "12", 12.8, 3 * 1.1, "12.80元"):
        data = xlsx_bytes(["sku", "name", "price"], [["Z1", "甲", value]])
        preview = preview_import(session, "supplier.xlsx", data, today=TODAY)
        assert preview.errors == [] and preview.rows[0].changes["price_fen"][1] == str(group_import._price_fen(value))


def test_point15_every_error_of_a_row_is_reported(session, known):
    bad = row("ST0200", "x" * 121, "6901234567893", unit="斤", price="12.345", vat="6",
              cert=("NEW-CERT", "2026-13-01", "2027-01-01"))
    data = csv_bytes(ZH[:5] + ["售价"] + ZH[6:], [row("ST0300", "好商品", price="1.00"), bad])
    preview = preview_import(session, "x.csv", data, today=TODAY)
    assert sorted((e.row_no, e.column) for e in preview.errors) == sorted([
        (3, "名称"), (3, "条码"), (3, "单位"), (3, "售价"), (3, "税率"), (3, "证书生效日期")])
    messages = {e.column: e.message for e in preview.errors}
    assert "120" in messages["名称"] and "校验位" in messages["条码"] and "两位小数" in messages["售价"]
    with pytest.raises(ImportRefused) as caught:
        apply_import(session, "x.csv", data, today=TODAY)
    assert len(caught.value.errors) == 6
