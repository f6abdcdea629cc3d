"""The catalogue file, for import and export: one row per product, as CSV (UTF-8 with or without BOM, as Excel
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

This module reads the file and understands its cells (the group import reads its own sheets
with the same helpers); ``catalogue_import`` plans and applies a file, ``catalogue_export`` writes
one. Every problem of a row is reported (one per cell), with the row number and the column as the
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

from . import barcodes as barcode_rules
from . import product_rules
from .errors import InventoryError, ValidationError
from .models import Unit, VatRate
from .money import AmountError
from .spreadsheets import cell_text, decimal_text, yuan_cell_fen

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


def _cell(value: Any) -> str:
    """``cell_text``, with a shortcut for plain text (every cell of a CSV, most of them): only text
    that begins with ``=`` or an apostrophe needs its rules."""
    if type(value) is str:
        text = value.strip()
        if not text or text[0] not in "='":
            return text
    return _cell_text(value)


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
    records = [(n, [_cell(v) for v in cells], cells) for n, cells in records]
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
    used = [(i, column) for i, column in enumerate(columns) if column is not None]
    for n, cells, raw in records[1:]:
        row: dict[str, Any] = {"_row": n}
        width = len(cells)
        for i, column in used:
            if i >= width:                 # a short row: its missing cells are empty
                row[column] = ""
            elif column == "price_yuan":   # a number cell as the decimal Excel shows
                row[column] = decimal_text(raw[i])
            else:
                row[column] = cells[i]
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
    if value > product_rules.MAX_PRICE_FEN:
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
    if value > product_rules.MAX_PRICE_FEN:
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
    return [code for code, _kind in _parse_barcode_kinds(text, column)]


def _parse_barcode_kinds(text: str, column: str) -> list[tuple[str, Any]]:
    """The cell's barcodes, each checked once: [(code, kind)] (the import writes the kind)."""
    codes: list[tuple[str, Any]] = []
    for part in text.split(PIPE):
        part = part.strip()
        if not part:
            continue
        if SCIENTIFIC_RE.fullmatch(part):
            raise _RowProblem(column, _l(
                "条码被 Excel 显示成了科学计数法（%(text)s），请把条码列设为文本后重新保存，或改用 .xlsx", text=part))
        try:
            code, kind = barcode_rules.validate(part)
        except ValidationError as error:
            raise _RowProblem(column, error) from None
        if all(code != have for have, _kind in codes):
            codes.append((code, kind))
    return codes


def _origin(county, township, village) -> tuple:
    return (county or None, township or None, village or None)
