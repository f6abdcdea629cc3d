"""Catalogue import and export: one row per product, as CSV (UTF-8 with or without BOM, as Excel
writes it) or XLSX, with English or Chinese column names.

Columns: sku, name, barcodes (several separated by ``|``), category, unit (piece | kg), price_fen,
vat (9 | 13 | exempt), supplier, origin_county, origin_township, origin_village, certificate_no,
certificate_valid_from, certificate_valid_to (dates YYYY-MM-DD). Optional extra columns:
certificate_issuer (认定机构), supplier_credit_code (统一社会信用代码), origin_county_code
(产地县代码). Other columns are ignored and listed in the preview. Instead of price_fen a file may
give the price in yuan, as suppliers' sheets do (售价, 售价(元), 单价, price: "12.8", "12.80",
"¥12.80" are 1280 fen; read exactly, at most two decimals, by ``inventory.spreadsheets``, as the
group import reads its prices); one price column, not both.

What a row means (so that a supplier's spreadsheet can be loaded as it is, and an export imported
again changes nothing):

- products are matched by sku, suppliers by name, categories by name, certificates by number;
  missing ones are created.
- a missing column leaves that field alone; an empty cell means "none" for category, supplier,
  barcodes and certificate, "the supplier's origin" for the origin columns, and "keep" (or the
  default for a new product: piece, 9 %) for unit and vat. Name and price are required for a new
  product.
- unit kg means sold by weight (a new product, or one whose unit changes).
- an origin equal to the supplier's is not copied onto the product.
- a certificate number links the product to that certificate (created with the row's dates if
  new; given dates that differ update an existing one). Empty certificate columns mean
  uncertified from today on: the product is taken off the certificates it is on that are still
  valid or not yet valid. Lapsed certificates keep the products they covered (history).
- a supplier's credit code is only used to create the supplier; for a known supplier it must
  match the one on record.

Every problem of a row is reported (one per cell), with the row number and the column as the
file names it. Nothing is written unless every row is valid (``apply_import`` checks the whole file first and
writes in a savepoint).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from . import barcodes as barcode_rules
from . import catalogue, suppliers
from .audit import record
from .credit_codes import normalise_credit_code
from .errors import InventoryError, ValidationError
from .localtime import local_today
from .models import Barcode, Category, Certificate, Product, Supplier, Unit, VatRate
from .money import AmountError
from .spreadsheets import cell_text, csv_table, decimal_text, xlsx_tables, yuan_cell_fen

COLUMNS = (
    "sku", "name", "barcodes", "category", "unit", "price_fen", "vat", "supplier", "origin_county",
    "origin_township", "origin_village", "certificate_no", "certificate_valid_from", "certificate_valid_to",
)
CHINESE_HEADERS = (
    "商品编码", "名称", "条码", "分类", "单位", "售价(分)", "税率", "供应商", "产地县", "产地乡镇", "产地村",
    "认定证书编号", "证书生效日期", "证书失效日期",
)
OPTIONAL_COLUMNS = ("certificate_issuer", "supplier_credit_code", "origin_county_code")
OPTIONAL_CHINESE = ("认定机构", "统一社会信用代码", "产地县代码")
ALIASES = {
    "商品名称": "name", "品名": "name", "商品条码": "barcodes", "售价（分）": "price_fen",
    "发证机关": "certificate_issuer", "证书编号": "certificate_no", "县级行政区划代码": "origin_county_code",
}
PIPE = "|"
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
MAX_ERRORS = 200
DEFAULT_ISSUER = "待补充"


def _header_key(text: Any) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text or "")).lstrip("\ufeff")).lower()


HEADER_MAP: dict[str, str] = {}
for _names in (COLUMNS, CHINESE_HEADERS):
    HEADER_MAP.update({_header_key(n): c for n, c in zip(_names, COLUMNS)})
for _names in (OPTIONAL_COLUMNS, OPTIONAL_CHINESE):
    HEADER_MAP.update({_header_key(n): c for n, c in zip(_names, OPTIONAL_COLUMNS)})
HEADER_MAP.update({_header_key(k): v for k, v in ALIASES.items()})
# A supplier's sheet usually gives the price in yuan (售价 12.80): read exactly, as the group
# import reads its prices (inventory.spreadsheets.yuan_cell_fen); our own export writes fen.
YUAN_HEADERS = ("售价", "售价(元)", "价格", "单价", "price", "price_yuan")
HEADER_MAP.update({_header_key(h): "price_yuan" for h in YUAN_HEADERS})
PRICE_COLUMNS = ("price_fen", "price_yuan")

NOT_A_SHEET = _l("文件不是 CSV 或 Excel 表格")


class ImportRefused(InventoryError):
    """The file has errors; nothing was written. ``errors`` lists them by row."""

    def __init__(self, errors: list["RowError"]) -> None:
        first = errors[0] if errors else None
        message = _l("导入被拒绝：%(n)s 处错误，未写入任何数据。%(first)s", n=len(errors),
                     first=first.describe() if first else "")
        super().__init__(message)
        self.errors = errors


@dataclass(frozen=True)
class RowError:
    row_no: int          # as the spreadsheet shows it: the header is row 1
    column: str          # the column's name as the file has it ("" for the whole row)
    message: str

    def describe(self) -> str:
        if self.column:
            return str(_l("第 %(row)s 行「%(column)s」：%(message)s", row=self.row_no, column=self.column,
                          message=self.message))
        return str(_l("第 %(row)s 行：%(message)s", row=self.row_no, message=self.message))


@dataclass
class RowPlan:
    row_no: int
    sku: str
    name: str
    action: str                                  # "create" | "update" | "unchanged"
    changes: dict = field(default_factory=dict)  # column -> (old, new), display strings


@dataclass
class ImportPreview:
    rows: list[RowPlan]
    errors: list[RowError]
    new_categories: list[str] = field(default_factory=list)
    new_suppliers: list[str] = field(default_factory=list)
    new_certificates: list[str] = field(default_factory=list)
    changed_certificates: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    @property
    def created(self) -> int:
        return self.count("create")

    @property
    def updated(self) -> int:
        return self.count("update")

    @property
    def unchanged(self) -> int:
        return self.count("unchanged")


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    categories_created: int = 0
    suppliers_created: int = 0
    certificates_created: int = 0
    certificates_changed: int = 0


# --- reading the file --------------------------------------------------------------------------

_cell_text = cell_text  # a cell as the person sees it (inventory.spreadsheets)


# Control characters other than tab and line ends: not text a person typed (PostgreSQL also
# refuses NUL in a string), so the file is not a spreadsheet saved as CSV.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _decode_csv(data: bytes) -> str:
    if b"\x00" in data:
        raise ValidationError(NOT_A_SHEET, "file")
    for encoding in ("utf-8-sig", "gb18030"):  # Excel on a Chinese Windows saves CSV as GB18030
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _CONTROL.search(text):
            break
        return text
    raise ValidationError(NOT_A_SHEET, "file")


def _csv_records(data: bytes) -> list[tuple[int, list[str]]]:
    text = _decode_csv(data)
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=first_line.count)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
        return [(n, row) for n, row in enumerate(reader, 1)]
    except csv.Error:
        raise ValidationError(NOT_A_SHEET, "file") from None


def _xlsx_records(data: bytes) -> list[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # a zip that is not a workbook, a damaged workbook …
        raise ValidationError(NOT_A_SHEET, "file") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise ValidationError(NOT_A_SHEET, "file")
        sheet.reset_dimensions()  # a workbook that records a wrong size would otherwise lose rows
        records = []
        for n, row in enumerate(sheet.iter_rows(values_only=True), 1):
            records.append((n, list(row)))
            if n > MAX_ROWS + 50:
                break
        return records
    finally:
        book.close()


def read_rows(filename: str, data: bytes) -> list[dict]:
    """The rows of a CSV or XLSX file as dicts of column -> text, keyed by the English column
    names (whatever language the header uses), each with ``_row``: its row number as the
    spreadsheet shows it (the header is row 1). Blank rows are skipped; unknown columns are left
    out. ValidationError for a file that is not a spreadsheet or has no usable header."""
    rows, _headers, _ignored = _read(filename, data)
    return rows


def _read(filename: str, data: bytes) -> tuple[list[dict], dict[str, str], list[str]]:
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValidationError(_l("文件是空的"), "file")
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(_l("文件不能超过 10 MB"), "file")
    data = bytes(data)
    name = (filename or "").lower()
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or name.endswith(".xls"):
        raise ValidationError(_l("不支持旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 CSV"), "file")
    if data[:4] == b"PK\x03\x04":
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise ValidationError(NOT_A_SHEET, "file")
        records = _xlsx_records(data)
    else:
        records = _csv_records(data)
    records = [(n, [_cell_text(v) for v in cells], cells) for n, cells in records]
    records = [(n, cells, raw) for n, cells, raw in records if any(cells)]
    if not records:
        raise ValidationError(_l("表格是空的"), "file")
    header_no, header, _raw = records[0]
    columns: list[Optional[str]] = []
    headers: dict[str, str] = {}
    ignored: list[str] = []
    for text in header:
        key = _header_key(text)
        column = HEADER_MAP.get(key)
        if column is not None and column in headers:
            raise ValidationError(_l("列名重复：%(name)s", name=text), "file")
        if column in PRICE_COLUMNS and set(PRICE_COLUMNS) & set(headers):
            raise ValidationError(_l("售价只能有一列：「%(first)s」和「%(second)s」都是售价", first=headers[
                next(c for c in PRICE_COLUMNS if c in headers)], second=text), "file")
        if column is not None:
            headers[column] = text
        elif text:
            ignored.append(text)
        columns.append(column)
    if "sku" not in headers:
        if not headers:
            raise ValidationError(
                _l("文件不是 CSV 或 Excel 表格：第 %(row)s 行应为列名（商品编码、名称、条码……）", row=header_no), "file"
            )
        raise ValidationError(_l("表格缺少「商品编码」（sku）列"), "file")
    rows = []
    for n, cells, raw in records[1:]:
        row: dict[str, Any] = {"_row": n}
        for column, value, raw_value in zip(columns, cells, raw):
            if column == "price_yuan":     # a number cell as the decimal Excel shows
                row[column] = decimal_text(raw_value)
            elif column is not None:
                row[column] = value
        for column in headers:
            row.setdefault(column, "")
        if any(row[c] for c in headers):
            rows.append(row)
    if len(rows) > MAX_ROWS:
        raise ValidationError(_l("一次最多导入 %(n)s 行，请分批导入", n=MAX_ROWS), "file")
    return rows, headers, ignored


# --- understanding one row -------------------------------------------------------------------------

UNIT_WORDS = {"piece": Unit.PIECE, "件": Unit.PIECE, "个": Unit.PIECE, "pcs": Unit.PIECE,
              "kg": Unit.KG, "千克": Unit.KG, "公斤": Unit.KG}
VAT_WORDS = {"9": VatRate.AGRICULTURAL_9, "9%": VatRate.AGRICULTURAL_9, "13": VatRate.GENERAL_13,
             "13%": VatRate.GENERAL_13, "exempt": VatRate.EXEMPT, "免税": VatRate.EXEMPT}
# Columns holding codes, numbers and words from a short list: full-width characters typed with a
# Chinese input method are made ASCII. Names keep their own punctuation.
CODE_COLUMNS = ("sku", "barcodes", "unit", "price_fen", "price_yuan", "vat", "certificate_valid_from", "certificate_valid_to",
                "supplier_credit_code", "origin_county_code")
DATE_RE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
SCIENTIFIC_RE = re.compile(r"\d(\.\d+)?e\+?\d+", re.IGNORECASE)


class _RowProblem(Exception):
    def __init__(self, column: str, message: Any) -> None:
        super().__init__(str(message))
        self.column, self.message = column, str(message)


class _Problems:
    """Every problem of one row, each field checked on its own (a row with a bad price and a bad
    barcode names both)."""

    def __init__(self) -> None:
        self.items: list[_RowProblem] = []

    def check(self, parse, *args, default: Any = None) -> Any:
        """``parse(*args)``, or ``default`` when it finds a problem (which is kept)."""
        try:
            return parse(*args)
        except _RowProblem as problem:
            self.items.append(problem)
            return default

    def columns(self) -> set[str]:
        return {p.column for p in self.items}


def _parse_fen(text: str, column: str) -> int:
    if not re.fullmatch(r"-?[0-9]+", text):
        raise _RowProblem(column, _l("售价必须是以分为单位的整数，例如 3800 表示 ¥38.00：%(text)s", text=text[:20]))
    value = int(text)
    if value < 0:
        raise _RowProblem(column, _l("售价不能为负数"))
    if value > catalogue.MAX_PRICE_FEN:
        raise _RowProblem(column, _l("售价太大：%(text)s", text=text[:20]))
    return value


def _parse_yuan(text: str, column: str) -> int:
    """售价 in yuan ("12.8", "12.80", "¥12.80", a number cell) → fen, exactly; at most 2 decimals."""
    try:
        value = yuan_cell_fen(text)
    except AmountError:
        if text.lstrip().startswith("-"):
            raise _RowProblem(column, _l("售价不能为负数")) from None
        raise _RowProblem(column, _l("售价应以元为单位，最多两位小数，例如 12.80：%(text)s", text=text[:20])) from None
    if value > catalogue.MAX_PRICE_FEN:
        raise _RowProblem(column, _l("售价太大：%(text)s", text=text[:20]))
    return value


def _parse_date(text: str, column: str) -> Optional[dt.date]:
    if not text:
        return None
    match = DATE_RE.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise _RowProblem(column, _l("日期格式应为 YYYY-MM-DD：%(text)s", text=text[:20])) from None


def _parse_barcodes(text: str, column: str) -> list[str]:
    codes = []
    for part in text.split(PIPE):
        part = part.strip()
        if not part:
            continue
        if SCIENTIFIC_RE.fullmatch(part):
            raise _RowProblem(column, _l(
                "条码被 Excel 显示成了科学计数法（%(text)s），请把条码列设为文本后重新保存，或改用 .xlsx", text=part))
        try:
            code, _kind = barcode_rules.validate(part)
        except ValidationError as error:
            raise _RowProblem(column, error) from None
        if code not in codes:
            codes.append(code)
    return codes


def _origin(county, township, village) -> tuple:
    return (county or None, township or None, village or None)


# --- the plan --------------------------------------------------------------------------------------

@dataclass
class _Row:
    row_no: int
    sku: str
    product: Optional[Product]
    values: dict = field(default_factory=dict)            # product fields to set (cleaned)
    barcodes: Optional[list[str]] = None                   # wanted codes, None = column absent
    category: Optional[str] = None                         # name, when the column is present
    has_category: bool = False
    supplier: Optional[str] = None
    has_supplier: bool = False
    origin: Optional[tuple] = None                         # (county, township, village) or None = absent
    set_origin: bool = False                               # the product's own origin is to be set …
    own_origin: Optional[tuple] = None                     # … to this (None: use the supplier's)
    county_code: Optional[str] = None
    cert_no: Optional[str] = None
    has_cert: bool = False
    cert_from: Optional[dt.date] = None
    cert_to: Optional[dt.date] = None
    issuer: Optional[str] = None
    credit_code: Optional[str] = None
    changes: dict = field(default_factory=dict)
    name: str = ""


@dataclass
class _Plan:
    preview: ImportPreview
    rows: list[_Row]
    new_categories: dict[str, int]                 # name -> first row
    new_suppliers: dict[str, dict]                 # name -> fields for create_supplier
    new_certs: dict[str, dict]                     # number -> fields for create_certificate (no products)
    cert_dates: dict[str, tuple]                   # existing number -> (from, to) when changed
    link: dict[str, list[str]]                     # cert number -> skus to add
    unlink: dict[int, set[str]]                    # cert id -> skus to remove
    headers: dict[str, str]                        # column -> its name in the file


class _Errors:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.items: list[RowError] = []
        self.cells: set[tuple[int, str]] = set()

    def add(self, row_no: int, column: str, message: Any) -> None:
        error = RowError(row_no, self.headers.get(column, column), str(message))
        if (row_no, error.column) in self.cells:   # one problem per cell: the first found
            return
        self.cells.add((row_no, error.column))
        if len(self.items) < MAX_ERRORS:
            self.items.append(error)


FIELD_COLUMNS = {
    "sku": "sku", "name": "name", "price_fen": "price_fen", "unit": "unit", "sold_by_weight": "unit",
    "scale_plu": "unit", "vat": "vat", "vat_exemption_code": "vat", "origin_county": "origin_county",
    "origin_township": "origin_township", "origin_village": "origin_village",
    "origin_county_code": "origin_county_code", "barcodes": "barcodes",
}


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _load(s: Session, model, column, keys: set, *options) -> dict:
    found = {}
    for chunk in _chunks(sorted(keys)):
        query = select(model).where(column.in_(chunk))
        if options:
            query = query.options(*options)
        for obj in s.scalars(query):
            found[getattr(obj, column.key)] = obj
    return found


def _plan(s: Session, filename: str, data: bytes, today: dt.date) -> _Plan:
    raw_rows, headers, ignored = _read(filename, data)
    errors = _Errors(headers)
    present = set(headers)

    for raw in raw_rows:
        for column in CODE_COLUMNS:
            if raw.get(column):
                raw[column] = unicodedata.normalize("NFKC", raw[column]).strip()
    skus = {r["sku"] for r in raw_rows if r.get("sku")}
    products = _load(s, Product, Product.sku, skus, selectinload(Product.barcodes),
                     selectinload(Product.certificates), joinedload(Product.supplier), joinedload(Product.category))
    categories = {c.name: c for c in s.scalars(select(Category))}
    supplier_names = {r.get("supplier", "") for r in raw_rows} - {""}
    known_suppliers = _load(s, Supplier, Supplier.name, supplier_names)
    cert_numbers = {r.get("certificate_no", "") for r in raw_rows} - {""}
    known_certs = _load(s, Certificate, Certificate.number, cert_numbers, selectinload(Certificate.products))
    county_codes = _county_codes(s)

    rows: list[_Row] = []
    seen_skus: dict[str, int] = {}
    for raw in raw_rows:
        row_no = raw["_row"]
        row, problems = _parse_row(s, raw, present, products, known_suppliers, county_codes, today)
        for problem in problems:
            errors.add(row_no, problem.column, problem.message)
        if row is None:
            continue
        if row.sku in seen_skus:
            errors.add(row_no, "sku", _l("商品编码 %(sku)s 在第 %(row)s 行已出现", sku=row.sku, row=seen_skus[row.sku]))
            continue
        seen_skus[row.sku] = row_no
        if problems:
            row.changes = None   # checked against the other rows and the catalogue below, never planned
        rows.append(row)

    # Barcodes: unique within the file, and not carried by a product that keeps them.
    by_sku = {r.sku: r for r in rows}
    wanted_codes: dict[str, tuple[int, str]] = {}
    for row in rows:
        for code in row.barcodes or ():
            variants = barcode_rules.scan_variants(code)
            taken = next((wanted_codes[v] for v in variants if v in wanted_codes), None)
            if taken is not None and taken[1] != row.sku:
                errors.add(row.row_no, "barcodes", _l("条码 %(code)s 在第 %(row)s 行已用于商品 %(sku)s",
                                                      code=code, row=taken[0], sku=taken[1]))
                continue
            for variant in variants:
                wanted_codes.setdefault(variant, (row.row_no, row.sku))
    owners = {}
    for chunk in _chunks(sorted(wanted_codes)):
        for code, sku, name in s.execute(select(Barcode.code, Product.sku, Product.name)
                                         .join(Product, Product.id == Barcode.product_id)
                                         .where(Barcode.code.in_(chunk))):
            owners[code] = (sku, name)
    for code, (owner_sku, owner_name) in owners.items():
        row_no, sku = wanted_codes[code]
        if owner_sku == sku:
            continue
        owner_row = by_sku.get(owner_sku)
        if owner_row is not None and owner_row.barcodes is not None and not (
            set(barcode_rules.scan_variants(code)) & set(owner_row.barcodes)
        ):
            continue  # the file takes it off its present owner
        errors.add(row_no, "barcodes", _l("条码 %(code)s 已属于商品「%(name)s」（%(sku)s）",
                                          code=code, name=owner_name, sku=owner_sku))

    # Categories, suppliers and certificates the file names.
    new_categories: dict[str, int] = {}
    new_suppliers: dict[str, dict] = {}
    new_certs: dict[str, dict] = {}
    cert_dates: dict[str, tuple] = {}
    cert_rows: dict[str, tuple] = {}               # number -> (first row giving dates, its dates)
    link: dict[str, list[str]] = {}
    unlink: dict[int, set[str]] = {}
    credit_codes: dict[str, str] = {}
    for row in rows:
        for problem in _plan_references(s, row, categories, known_suppliers, known_certs, new_categories,
                                        new_suppliers, new_certs, cert_dates, cert_rows, link, unlink, credit_codes,
                                        today):
            errors.add(row.row_no, problem.column, problem.message)

    # A new certificate takes its dates from any of its rows; none at all is an error on each.
    for row in rows:
        if row.changes is None:
            continue
        if row.cert_no and row.cert_no not in known_certs and row.cert_no not in new_certs:
            errors.add(row.row_no, "certificate_valid_from", _l(
                "新证书 %(number)s 需要生效日期和失效日期", number=row.cert_no))
            row.changes = None
    plans = []
    for row in rows:
        if row.changes is None:
            continue
        try:
            _plan_product(row, known_suppliers, new_suppliers, known_certs, new_certs, cert_dates, unlink, today)
        except _RowProblem as problem:
            errors.add(row.row_no, problem.column, problem.message)
            continue
        if row.product is None:
            action = "create"
        else:
            action = "update" if row.changes else "unchanged"
        plans.append(RowPlan(row.row_no, row.sku, row.name, action, row.changes))

    changed_certs = set(cert_dates) | {s.get(Certificate, cert_id).number for cert_id in unlink}
    for number, linked_skus in link.items():
        known = known_certs.get(number)
        if known is not None and set(linked_skus) - {p.sku for p in known.products}:
            changed_certs.add(number)
    errors.items.sort(key=lambda e: (e.row_no, e.column))
    preview = ImportPreview(
        rows=plans, errors=errors.items, new_categories=sorted(new_categories), new_suppliers=sorted(new_suppliers),
        new_certificates=sorted(new_certs), changed_certificates=sorted(changed_certs), ignored_columns=ignored,
    )
    return _Plan(preview, rows, new_categories, new_suppliers, new_certs, cert_dates, link, unlink, headers)


def _county_codes(s: Session) -> dict[str, str]:
    """County name -> administrative code, as already recorded on suppliers and products."""
    codes: dict[str, str] = {}
    for model in (Product, Supplier):
        for county, code in s.execute(select(model.origin_county, model.origin_county_code)
                                      .where(model.origin_county.is_not(None), model.origin_county_code.is_not(None))
                                      .distinct()):
            codes.setdefault(county, code)
    return codes


def _parse_row(s: Session, raw: dict, present: set, products: dict, known_suppliers: dict,
               county_codes: dict, today: dt.date) -> tuple[Optional[_Row], list[_RowProblem]]:
    """The row understood, and every problem found in it (each column checked on its own). The
    row is None when it has no sku (nothing more can be said about it)."""
    problems = _Problems()

    def text(column: str, max_len: int, label: Any) -> Optional[str]:
        value = raw.get(column, "")
        if len(value) > max_len:
            raise _RowProblem(column, _l("%(label)s最多 %(n)s 个字符", label=label, n=max_len))
        if "\n" in value or "\r" in value:
            raise _RowProblem(column, _l("%(label)s不能换行", label=label))
        return value or None

    def fail(column: str, message: Any) -> None:
        problems.items.append(_RowProblem(column, message))

    sku = raw.get("sku", "")
    if not sku:
        fail("sku", _l("商品编码不能为空"))
    product = products.get(sku) if sku else None
    row = _Row(row_no=raw["_row"], sku=sku, product=product)
    values: dict[str, Any] = {}
    if product is None:
        values["sku"] = sku
    if "name" in present and raw["name"]:
        values["name"] = raw["name"]
    elif product is None:
        fail("name", _l("新商品需要名称"))
    price_column = "price_yuan" if "price_yuan" in present else "price_fen"
    if price_column in present and raw[price_column]:
        parse_price = _parse_yuan if price_column == "price_yuan" else _parse_fen
        price = problems.check(parse_price, raw[price_column], price_column)
        if price is not None:
            values["price_fen"] = price
    elif product is None:
        fail(price_column, _l("新商品需要售价（分）") if price_column == "price_fen" else _l("新商品需要售价"))
    if "unit" in present and raw["unit"]:
        unit = UNIT_WORDS.get(raw["unit"].lower())
        if unit is None:
            fail("unit", _l("单位只能是 piece（件）或 kg（千克）：%(text)s", text=raw["unit"][:20]))
        elif product is None or product.unit != unit:
            values["unit"] = unit
            values["sold_by_weight"] = unit == Unit.KG
    elif product is None:
        values["unit"], values["sold_by_weight"] = Unit.PIECE, False
    if "vat" in present and raw["vat"]:
        vat = VAT_WORDS.get(raw["vat"].lower())
        if vat is None:
            fail("vat", _l("税率只能是 9、13 或 exempt（免税）：%(text)s", text=raw["vat"][:20]))
        else:
            values["vat"] = vat
    elif product is None:
        values["vat"] = VatRate.AGRICULTURAL_9
    if "barcodes" in present:
        row.barcodes = problems.check(_parse_barcodes, raw["barcodes"], "barcodes")
    if "category" in present:
        row.has_category, row.category = True, problems.check(text, "category", 60, _l("分类"))
    if "supplier" in present:
        row.has_supplier, row.supplier = True, problems.check(text, "supplier", 120, _l("供应商"))
    if present & {"origin_county", "origin_township", "origin_village"}:
        row.origin = _origin(problems.check(text, "origin_county", 60, _l("产地县")),
                             problems.check(text, "origin_township", 60, _l("产地乡镇")),
                             problems.check(text, "origin_village", 60, _l("产地村")))
        if "origin_county_code" in present and raw["origin_county_code"]:
            try:
                row.county_code = catalogue.fields.county_code(raw["origin_county_code"])
            except ValidationError as error:
                fail("origin_county_code", error)
        elif row.origin[0]:
            row.county_code = county_codes.get(row.origin[0])
    if "certificate_no" in present:
        row.has_cert = True
        row.cert_no = problems.check(text, "certificate_no", 60, _l("认定证书编号"))
        row.cert_from = problems.check(_parse_date, raw.get("certificate_valid_from", ""), "certificate_valid_from")
        row.cert_to = problems.check(_parse_date, raw.get("certificate_valid_to", ""), "certificate_valid_to")
        if not row.cert_no and (row.cert_from or row.cert_to) and "certificate_no" not in problems.columns():
            fail("certificate_no", _l("填写了证书日期，但没有证书编号"))
        if row.cert_from and row.cert_to and row.cert_to < row.cert_from:
            fail("certificate_valid_to", _l("失效日期不能早于生效日期"))
        row.issuer = problems.check(text, "certificate_issuer", 120, _l("认定机构"))
    if "supplier_credit_code" in present and raw["supplier_credit_code"]:
        try:
            row.credit_code = normalise_credit_code(raw["supplier_credit_code"])
        except ValidationError as error:
            fail("supplier_credit_code", error)
    # The product's own fields, checked by the catalogue's own rules, each problem once: a field
    # it refuses is left out and the rest checked again.
    pending = dict(values)
    for _attempt in range(len(values) + 1):
        try:
            row.values = catalogue._clean_product(s, pending, product, check_sku=False)  # skus looked up in bulk
            break
        except ValidationError as error:
            column = FIELD_COLUMNS.get(error.field or "", "")
            if column == "price_fen":
                column = price_column
            if column not in problems.columns():
                fail(column, error)
            if error.field not in pending:
                break       # a rule on the product as a whole: nothing left to drop
            pending.pop(error.field)
    row.name = row.values.get("name") or (product.name if product else "")
    return (row if sku else None), problems.items


def _plan_references(s, row: _Row, categories, known_suppliers, known_certs, new_categories, new_suppliers,
                     new_certs, cert_dates, cert_rows, link, unlink, credit_codes, today) -> list[_RowProblem]:
    """The categories, suppliers and certificates the row names; its problems with them (the
    supplier's and the certificate's, each checked on its own)."""
    if row.category and row.category not in categories:
        new_categories.setdefault(row.category, row.row_no)
    problems = _Problems()
    problems.check(_plan_supplier, s, row, known_suppliers, new_suppliers, credit_codes)
    problems.check(_plan_certificate, row, known_certs, new_certs, cert_dates, cert_rows, link, unlink, today)
    return problems.items


def _plan_supplier(s, row: _Row, known_suppliers, new_suppliers, credit_codes) -> None:
    if row.supplier:
        known = known_suppliers.get(row.supplier)
        if known is not None:
            if row.credit_code and known.credit_code and known.credit_code != row.credit_code:
                raise _RowProblem("supplier_credit_code", _l(
                    "供应商「%(name)s」登记的统一社会信用代码是 %(code)s，与表格不同", name=known.name,
                    code=known.credit_code))
        elif row.supplier not in new_suppliers:
            if row.credit_code:
                if row.credit_code in credit_codes:
                    raise _RowProblem("supplier_credit_code", _l(
                        "统一社会信用代码 %(code)s 已用于供应商「%(name)s」", code=row.credit_code,
                        name=credit_codes[row.credit_code]))
                try:
                    suppliers._clean_supplier(s, {"credit_code": row.credit_code}, None)
                except ValidationError as error:
                    raise _RowProblem("supplier_credit_code", error) from None
                credit_codes[row.credit_code] = row.supplier
            origin = row.origin or (None, None, None)
            new_suppliers[row.supplier] = dict(
                name=row.supplier, credit_code=row.credit_code, origin_county=origin[0],
                origin_county_code=row.county_code if origin[0] else None, origin_township=origin[1],
                origin_village=origin[2],
            )


def _plan_certificate(row: _Row, known_certs, new_certs, cert_dates, cert_rows, link, unlink, today) -> None:
    if not row.has_cert:
        return
    if row.cert_no:
        known = known_certs.get(row.cert_no)
        if known is None and (row.cert_from or row.cert_to) and not (row.cert_from and row.cert_to):
            raise _RowProblem("certificate_valid_from", _l(
                "新证书 %(number)s 需要生效日期和失效日期", number=row.cert_no))
        if row.cert_from or row.cert_to:
            # Rows that give a certificate's dates must agree; empty dates mean "as on record".
            wanted = (row.cert_from or known.valid_from, row.cert_to or known.valid_to)
            if wanted[1] < wanted[0]:
                raise _RowProblem("certificate_valid_to", _l("失效日期不能早于生效日期"))
            first = cert_rows.setdefault(row.cert_no, (row.row_no, wanted))
            if first[1] != wanted:
                raise _RowProblem("certificate_valid_from", _l(
                    "证书 %(number)s 的日期与第 %(row)s 行不同", number=row.cert_no, row=first[0]))
            if known is None:
                new_certs.setdefault(row.cert_no, dict(
                    number=row.cert_no, issuer=row.issuer or DEFAULT_ISSUER, valid_from=wanted[0],
                    valid_to=wanted[1], supplier=row.supplier))
            elif wanted != (known.valid_from, known.valid_to):
                cert_dates[row.cert_no] = wanted
        link.setdefault(row.cert_no, []).append(row.sku)
    elif row.product is not None:
        for cert in row.product.certificates:
            if cert.valid_to >= today:
                unlink.setdefault(cert.id, set()).add(row.sku)


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (Unit, VatRate)):
        return value.value
    if isinstance(value, (list, tuple)):
        return PIPE.join(str(v) for v in value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _plan_product(row: _Row, known_suppliers, new_suppliers, known_certs, new_certs, cert_dates, unlink,
                  today) -> None:
    """Fill row.changes: column -> (old, new) as display strings; empty for an unchanged product."""
    product = row.product
    changes: dict[str, tuple[str, str]] = {}

    def change(column: str, old: Any, new: Any) -> None:
        if _show(old) != _show(new):
            changes[column] = (_show(old), _show(new))

    for key, value in row.values.items():
        column = FIELD_COLUMNS.get(key, key)
        if key in ("sku", "sold_by_weight", "vat_exemption_code"):
            continue
        change(column, getattr(product, key) if product is not None else None, value)
    if row.barcodes is not None:
        old = [b.code for b in product.barcodes] if product is not None else []
        if sorted(old) != sorted(row.barcodes):
            changes["barcodes"] = (_show(old), _show(row.barcodes))
    if row.has_category:
        change("category", product.category.name if product is not None and product.category else None, row.category)
    if row.has_supplier:
        change("supplier", product.supplier.name if product is not None and product.supplier else None, row.supplier)
    supplier_origin = _supplier_origin(row, product, known_suppliers, new_suppliers)
    if row.origin is not None:
        # Empty origin cells, or the supplier's origin, mean "the supplier's": not copied.
        own = None if (not any(row.origin) or row.origin == supplier_origin) else row.origin
        before = _effective_origin(product) if product is not None else (None, None, None)
        after = own or supplier_origin
        if after != before:
            row.set_origin, row.own_origin = True, own
            for i, column in enumerate(("origin_county", "origin_township", "origin_village")):
                change(column, before[i], after[i])
    if row.has_cert:
        if row.cert_no:
            linked = product is not None and any(c.number == row.cert_no for c in product.certificates)
            if not linked:
                changes["certificate_no"] = ("", row.cert_no)
            if row.cert_no in cert_dates:
                known = known_certs[row.cert_no]
                new_from, new_to = cert_dates[row.cert_no]
                change("certificate_valid_from", known.valid_from, new_from)
                change("certificate_valid_to", known.valid_to, new_to)
            elif row.cert_no in new_certs and product is None:
                changes["certificate_valid_from"] = ("", _show(new_certs[row.cert_no]["valid_from"]))
                changes["certificate_valid_to"] = ("", _show(new_certs[row.cert_no]["valid_to"]))
        elif product is not None:
            lost = [c.number for c in product.certificates if c.id in unlink and row.sku in unlink[c.id]]
            if lost:
                changes["certificate_no"] = ("、".join(sorted(lost)), "")
    row.changes = changes


def _effective_origin(product: Product) -> tuple:
    origin = product.origin()
    return _origin(origin["county"], origin["township"], origin["village"])


def _current_supplier_origin(product: Product) -> tuple:
    s = product.supplier
    return _origin(s.origin_county, s.origin_township, s.origin_village) if s else (None, None, None)


def _supplier_origin(row: _Row, product, known_suppliers, new_suppliers) -> tuple:
    """The origin of the supplier the product will have after the import."""
    if row.has_supplier:
        if not row.supplier:
            return (None, None, None)
        known = known_suppliers.get(row.supplier)
        if known is not None:
            return _origin(known.origin_county, known.origin_township, known.origin_village)
        new = new_suppliers.get(row.supplier, {})
        return _origin(new.get("origin_county"), new.get("origin_township"), new.get("origin_village"))
    return _current_supplier_origin(product) if product is not None else (None, None, None)


# --- public entry points -------------------------------------------------------------------------

def preview_import(s: Session, filename: str, data: bytes, *, today: Optional[dt.date] = None) -> ImportPreview:
    """What importing the file would do, row by row, and every error with its row number.
    Writes nothing. ValidationError for a file that is not a spreadsheet at all."""
    return _plan(s, filename, data, today or local_today()).preview


def apply_import(s: Session, filename: str, data: bytes, *, actor_id: Optional[int] = None,
                 today: Optional[dt.date] = None) -> ImportResult:
    """Import the file: all of it, or nothing (ImportRefused with the row errors)."""
    today = today or local_today()
    plan = _plan(s, filename, data, today)
    if plan.preview.errors:
        raise ImportRefused(plan.preview.errors)
    state = {"row": 0}
    try:
        with s.begin_nested():
            result = _apply(s, plan, actor_id, state)
    except ValidationError as error:  # a rule the plan did not foresee: nothing is kept
        column = FIELD_COLUMNS.get(error.field or "", "")
        raise ImportRefused([RowError(state["row"], plan.headers.get(column, column), str(error))]) from None
    record(s, user_id=actor_id, action="catalogue.import", entity="catalogue", entity_id=None,
           after={"file": (filename or "")[:120], "created": result.created, "updated": result.updated,
                  "unchanged": result.unchanged, "suppliers_created": result.suppliers_created,
                  "categories_created": result.categories_created,
                  "certificates_created": result.certificates_created,
                  "certificates_changed": result.certificates_changed})
    s.flush()
    return result


def _apply(s: Session, plan: _Plan, actor_id, state: dict) -> ImportResult:
    """Write the checked plan. Every value was checked by the catalogue's own rules while planning
    (catalogue._clean_product, barcodes.validate, the supplier and certificate rules); products
    are written through the catalogue's own writers (_new_product / _change_product), in bulk."""
    category_ids = {c.name: c.id for c in s.scalars(select(Category))}
    for name in plan.new_categories:
        category_ids[name] = catalogue.create_category(s, name, actor_id=actor_id).id
    supplier_ids = {sup.name: sup.id for sup in s.scalars(select(Supplier))}
    for name, values in plan.new_suppliers.items():
        supplier_ids[name] = suppliers.create_supplier(s, **values, actor_id=actor_id).id

    # Barcodes that move to another product leave their present owner first.
    for row in plan.rows:
        state["row"] = row.row_no
        if row.product is not None and row.barcodes is not None:
            keep = [(b.code, b.kind) for b in row.product.barcodes if b.code in row.barcodes]
            if len(keep) != len(row.product.barcodes):
                catalogue._change_product(s, row.product, {"barcodes": keep}, actor_id)
    s.flush()

    created = updated = unchanged = 0
    products_by_sku: dict[str, Product] = {}
    new_products: list[Product] = []
    for row in plan.rows:
        state["row"] = row.row_no
        values = dict(row.values)
        if row.barcodes is not None:
            values["barcodes"] = [(code, barcode_rules.classify(code)) for code in row.barcodes]
        if row.has_category:
            values["category_id"] = category_ids[row.category] if row.category else None
        if row.has_supplier:
            values["supplier_id"] = supplier_ids[row.supplier] if row.supplier else None
        if row.set_origin:
            own = row.own_origin or (None, None, None)
            values.update(origin_county=own[0], origin_township=own[1], origin_village=own[2],
                          origin_county_code=row.county_code if own[0] else None)
        if row.product is None:
            product = catalogue._new_product(values)
            s.add(product)
            new_products.append(product)
            created += 1
        else:
            if row.changes:
                values.pop("sku", None)
                catalogue._change_product(s, row.product, values, actor_id)
                updated += 1
            else:
                unchanged += 1
            product = row.product
        products_by_sku[row.sku] = product
    s.flush()  # one batch of INSERTs for the new products and their barcodes
    for product in new_products:
        catalogue._record_created(s, product, actor_id)

    state["row"] = 0
    certs_created = certs_changed = 0
    cert_ids = {}
    for number, values in plan.new_certs.items():
        values = dict(values)
        supplier_name = values.pop("supplier", None)
        skus = plan.link.get(number, [])
        cert = suppliers.create_certificate(
            s, **values, supplier_id=supplier_ids.get(supplier_name) if supplier_name else None,
            product_ids=[products_by_sku[sku].id for sku in skus], actor_id=actor_id)
        cert_ids[number] = cert.id
        certs_created += 1
    touched: dict[int, dict] = {}
    for number, skus in plan.link.items():
        if number in cert_ids:
            continue
        cert = s.scalar(select(Certificate).where(Certificate.number == number))
        ids = [p.id for p in cert.products]
        new_ids = ids + [products_by_sku[sku].id for sku in skus if products_by_sku[sku].id not in ids]
        changes = touched.setdefault(cert.id, {})
        if new_ids != ids:
            changes["product_ids"] = new_ids
        if number in plan.cert_dates:
            changes["valid_from"], changes["valid_to"] = plan.cert_dates[number]
    for cert_id, skus in plan.unlink.items():
        cert = s.get(Certificate, cert_id)
        changes = touched.setdefault(cert_id, {})
        ids = changes.get("product_ids", [p.id for p in cert.products])
        drop = {products_by_sku[sku].id for sku in skus}
        changes["product_ids"] = [pid for pid in ids if pid not in drop]
    for cert_id, changes in touched.items():
        if changes:
            suppliers.update_certificate(s, cert_id, actor_id=actor_id, **changes)
            certs_changed += 1
    s.flush()
    return ImportResult(created=created, updated=updated, unchanged=unchanged,
                        categories_created=len(plan.new_categories), suppliers_created=len(plan.new_suppliers),
                        certificates_created=certs_created, certificates_changed=certs_changed)


# --- export --------------------------------------------------------------------------------------

def _export_rows(s: Session) -> list[list[Any]]:
    products = s.scalars(
        select(Product)
        .options(selectinload(Product.barcodes), selectinload(Product.certificates),
                 joinedload(Product.category), joinedload(Product.supplier))
        .order_by(Product.sku)
    ).unique()
    rows = []
    for p in products:
        origin = p.origin()
        cert = max(p.certificates, key=lambda c: (c.valid_to, c.number), default=None)
        rows.append([
            p.sku, p.name, PIPE.join(b.code for b in p.barcodes), p.category.name if p.category else "",
            p.unit.value, p.price_fen, p.vat.value, p.supplier.name if p.supplier else "",
            origin["county"] or "", origin["township"] or "", origin["village"] or "",
            cert.number if cert else "", cert.valid_from.isoformat() if cert else "",
            cert.valid_to.isoformat() if cert else "",
        ])
    return rows


def export_catalogue(s: Session, fmt: str = "csv", *, headers: str = "zh") -> bytes:
    """Every product, one row each, in the import's columns (Chinese column names unless
    ``headers="en"``). CSV carries a BOM so that Excel opens it as UTF-8; in XLSX the codes are
    text cells, so Excel keeps their leading zeros and all 13 digits."""
    header = list(CHINESE_HEADERS if headers == "zh" else COLUMNS)
    rows = _export_rows(s)
    if fmt == "csv":
        return csv_table(header, rows).encode("utf-8-sig")
    if fmt == "xlsx":
        return xlsx_tables([("商品", header, rows)])
    raise ValidationError(_l("导出格式只能是 csv 或 xlsx"), "fmt")
