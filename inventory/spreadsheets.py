"""Spreadsheets written and read safely: the one writer of every CSV and XLSX export (the
catalogue, the reports), and the reading of a cell in yuan shared by the imports.

Writing. A cell that a person typed (a product or supplier name, a county, a note) may start
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return; Excel and LibreOffice would run it as
a formula (``=HYPERLINK("http://x","点我")`` sends whoever clicks to that address). Such text is
written with a leading apostrophe, in CSV and in XLSX alike, and XLSX text cells are always
string cells (``data_type "s"``, format ``@``), never formulas. Numbers stay numbers: ``Fen`` (an
amount in fen, written in yuan with two decimals), ``Qty`` (thousandths, written in units with
three decimals), ``int`` and ``Decimal``; ``bool`` is written 是 / 否.

Reading back. ``unguard_text`` takes the apostrophe off again, so that an export imported again
changes nothing (a name that really starts with an apostrophe before such a character is written
with a second one). ``decimal_text`` and ``yuan_cell_fen`` read a cell as the decimal Excel shows,
and a price in yuan as exact fen (no float on the way).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from decimal import Decimal
from typing import Any, Iterable, Optional, Sequence

from .money import format_plain_yuan, parse_yuan

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
YUAN_FORMAT = "#,##0.00"
QTY_FORMAT = "#,##0.000"
TEXT_FORMAT = "@"
SHEET_TITLE_MAX = 31     # Excel's limit on a sheet's name

# A table: (title, header, rows). The title names the XLSX sheet (and is a row of its own in a
# CSV of several tables).
Table = tuple[str, Sequence[str], Iterable[Sequence[Any]]]


class Fen(int):
    """An amount in fen, written as yuan."""


class Qty(int):
    """A quantity in thousandths, written in units (3 decimals)."""


class Pct(str):
    """A percentage as the reports give it ("12.5", or "80" for a whole percent): written as the
    text in CSV (the header says %), and in XLSX as the number 0.125 with a percent format, so
    that a spreadsheet can add it up. None or "" stays an empty cell (see ``pct``)."""


PERCENT_FORMAT = "0.0%"
WHOLE_PERCENT_FORMAT = "0%"


def pct(value: Any) -> Any:
    return "" if value is None or value == "" else Pct(value)


# --- text that must not become a formula ---------------------------------------------------------

def _needs_guard(text: str) -> bool:
    if text.startswith(FORMULA_STARTS):
        return True
    return text.startswith("'") and _needs_guard(text[1:])


def safe_text(value: Any) -> str:
    """The text of a cell as written: with a leading apostrophe when a spreadsheet would
    otherwise run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if _needs_guard(text) else text


def unguard_text(text: str) -> str:
    """What ``safe_text`` wrote, as the person typed it (for imports of our own exports)."""
    if text.startswith("'") and _needs_guard(text[1:]):
        return text[1:]
    return text


# --- writing -------------------------------------------------------------------------------------

def _qty_text(value: int) -> str:
    sign = "-" if value < 0 else ""
    whole, milli = divmod(abs(int(value)), 1000)
    return f"{sign}{whole}.{milli:03d}"


def csv_cell(value: Any) -> str:
    """One cell as CSV text."""
    if isinstance(value, Fen):
        return format_plain_yuan(int(value))
    if isinstance(value, Qty):
        return _qty_text(value)
    if isinstance(value, Pct):
        return str(value)  # a number the report made ("-3.0"), not text a person typed
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    return safe_text(value)


def xlsx_cell(sheet, value: Any):
    """One cell of a write-only sheet: numbers as numbers, everything else as a string cell."""
    from openpyxl.cell import WriteOnlyCell

    if isinstance(value, Fen):
        cell = WriteOnlyCell(sheet, value=Decimal(int(value)) / 100)
        cell.number_format = YUAN_FORMAT
    elif isinstance(value, Qty):
        cell = WriteOnlyCell(sheet, value=Decimal(int(value)) / 1000)
        cell.number_format = QTY_FORMAT
    elif isinstance(value, Pct):
        cell = WriteOnlyCell(sheet, value=Decimal(str(value)) / 100)
        cell.number_format = PERCENT_FORMAT if "." in value else WHOLE_PERCENT_FORMAT
    elif isinstance(value, bool):
        cell = _text_cell(sheet, "是" if value else "否")
    elif isinstance(value, int):
        cell = WriteOnlyCell(sheet, value=int(value))
    elif isinstance(value, Decimal) and value.is_finite():
        cell = WriteOnlyCell(sheet, value=value)
    else:
        cell = _text_cell(sheet, safe_text(value))
    return cell


def _text_cell(sheet, text: str):
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"          # a string, whatever it looks like: never a formula
    cell.number_format = TEXT_FORMAT
    return cell


def csv_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """One table as CSV text: the header row, then the rows (write it with a BOM for Excel)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow([safe_text(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue()


def csv_tables(tables: Iterable[Table]) -> str:
    """Tables one after another, each preceded by its title row and header row, a blank row
    between."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    for i, (title, header, rows) in enumerate(tables):
        if i:
            writer.writerow([])
        writer.writerow([safe_text(title)])
        writer.writerow([safe_text(h) for h in header])
        writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def xlsx_tables(tables: Iterable[Table]) -> bytes:
    """One sheet per table: the header row in bold, then the rows (streamed: openpyxl's
    write-only mode)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for title, header, rows in tables:
        sheet = book.create_sheet(str(title)[:SHEET_TITLE_MAX])
        head = []
        for text in header:
            cell = _text_cell(sheet, safe_text(text))
            cell.font = bold
            head.append(cell)
        sheet.append(head)
        for row in rows:
            sheet.append([xlsx_cell(sheet, v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- reading -------------------------------------------------------------------------------------

def cell_text(value: Any) -> str:
    """A cell as text: what the person sees in Excel (numbers without a trailing .0, dates as
    YYYY-MM-DD), with the apostrophe our own exports put before formula-like text taken off."""
    if type(value) is str:     # every cell of a CSV: straight to the text rules below
        return _typed_text(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return _typed_text(str(value))


def _typed_text(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    # ="0123" is how some programs keep digits as text in a CSV for Excel.
    if len(text) >= 3 and text.startswith('="') and text.endswith('"'):
        text = text[2:-1]
    return unguard_text(text)


def decimal_text(value: Any) -> str:
    """A cell as the decimal the person sees, exponent written out, for the money parsers to
    count its decimals. A number cell is a float: typed 12.5 or 19.99 it is exactly the decimal
    typed (``Decimal(str(value))``); the result of a formula such as =3*1.1 is saved by Excel as
    3.3000000000000003 and shown as 3.3, so a float is read to Excel's own precision of 15
    significant digits (no decimal a person can type into Excel is lost that way)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        number = Decimal(format(value, ".15g"))
        return format(number, "f") if number.is_finite() else str(value)
    if isinstance(value, int):
        return str(value)
    return unicodedata.normalize("NFKC", cell_text(value)).strip()


def yuan_cell_fen(value: Any) -> Optional[int]:
    """A price in yuan as a spreadsheet holds it ("12.8", "12.80", "¥12.80", "12.80元", 12.8 as a
    number cell) → exact fen; None for an empty cell. AmountError (its message is for the person)
    for more than two decimals, a negative amount or text that is not an amount. The caller
    checks its own upper limit."""
    text = decimal_text(value)
    if not text:
        return None
    return parse_yuan(text.removesuffix("元").strip())


__all__ = [
    "FORMULA_STARTS", "Fen", "Qty", "Table", "safe_text", "unguard_text", "csv_cell", "xlsx_cell", "csv_table",
    "csv_tables", "xlsx_tables", "cell_text", "decimal_text", "yuan_cell_fen", "SheetError", "header_key",
    "read_sheet",
]


# --- reading a whole sheet -------------------------------------------------------------------------
#
# The imports of counters and of opening stock read their files here (the catalogue import keeps
# its own copy of the same steps until its split, issue 17): CSV in UTF-8 (with or without BOM) or
# GB18030 as Excel on a Chinese Windows saves it, or the first sheet of an XLSX workbook; the
# header row is matched through a map of normalised names (English and Chinese) to columns.

MAX_SHEET_BYTES = 10 * 1024 * 1024


class SheetError(ValueError):
    """The file as a whole cannot be read (not a spreadsheet, no header, too big); ``str()`` is
    the message for the person."""

    def __init__(self, message: Any) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


def header_key(text: Any) -> str:
    """A column name as compared: NFKC, no spaces, no BOM, lower case (名称 = 名 称, Code = code)."""
    import re

    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text or "")).lstrip("\ufeff")).lower()


def _sheet_records(filename: str, data: bytes, max_rows: int) -> list[tuple[int, list[Any]]]:
    from flask_babel import lazy_gettext as _l

    not_a_sheet = _l("文件不是 CSV 或 Excel 表格")
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise SheetError(_l("文件是空的"))
    if len(data) > MAX_SHEET_BYTES:
        raise SheetError(_l("文件不能超过 10 MB"))
    data = bytes(data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or (filename or "").lower().endswith(".xls"):
        raise SheetError(_l("不支持旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 CSV"))
    if data[:4] == b"PK\x03\x04":
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:  # a zip that is not a workbook, a damaged workbook …
            raise SheetError(not_a_sheet) from None
        try:
            if not book.worksheets:
                raise SheetError(not_a_sheet)
            sheet = book.worksheets[0]
            sheet.reset_dimensions()
            records = []
            for n, row in enumerate(sheet.iter_rows(values_only=True), 1):
                records.append((n, list(row)))
                if n > max_rows + 50:
                    break
            return records
        finally:
            book.close()
    if b"\x00" in data:
        raise SheetError(not_a_sheet)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if any(ord(ch) < 0x20 and ch not in "\t\r\n" for ch in text):
            break
        first_line = text.split("\n", 1)[0]
        delimiter = max((",", "\t", ";"), key=first_line.count)
        try:
            return [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1)]
        except csv.Error:
            break
    raise SheetError(not_a_sheet)


def read_sheet(filename: str, data: bytes, header_map: dict[str, str], *, required: Sequence[str] = (),
               max_rows: int = 20_000) -> tuple[list[dict], dict[str, str]]:
    """The rows of a CSV or XLSX file as dicts column → text (``cell_text``), each with ``_row``,
    its row number as the spreadsheet shows it (the header is row 1); blank rows skipped, unknown
    columns left out. ``header_map`` maps ``header_key(name)`` → column. Also returns column →
    the header as the file wrote it (for messages). SheetError for an unreadable file, a missing
    required column, a repeated column or too many rows."""
    from flask_babel import lazy_gettext as _l

    records = [(n, [cell_text(v) for v in cells]) for n, cells in _sheet_records(filename, data, max_rows)]
    records = [(n, cells) for n, cells in records if any(cells)]
    if not records:
        raise SheetError(_l("表格是空的"))
    header_no, header = records[0]
    columns: list[Optional[str]] = []
    headers: dict[str, str] = {}
    for text in header:
        column = header_map.get(header_key(text))
        if column is not None and column in headers:
            raise SheetError(_l("列名重复：%(name)s", name=text))
        if column is not None:
            headers[column] = text
        columns.append(column)
    if not headers:
        raise SheetError(_l("第 %(row)s 行应为列名", row=header_no))
    missing = [c for c in required if c not in headers]
    if missing:
        raise SheetError(_l("表格缺少这些列：%(columns)s", columns="、".join(missing)))
    rows = []
    for n, cells in records[1:]:
        row: dict[str, Any] = {"_row": n}
        for column, value in zip(columns, cells):
            if column is not None:
                row[column] = value
        for column in headers:
            row.setdefault(column, "")
        if any(row[c] for c in headers):
            rows.append(row)
    if len(rows) > max_rows:
        raise SheetError(_l("一次最多导入 %(n)s 行，请分批导入", n=max_rows))
    return rows, headers
