"""A buyer's group order from their own spreadsheet (XLSX, or CSV in UTF-8 with or without BOM, or
GB18030 as Excel on a Chinese Windows saves it): a preview of order lines, and every problem with
the row number the person sees in Excel. Nothing is written; "create draft" then hands the lines
to ``pos.group.orders.create_order(..., source="import")``.

Buyers' sheets are not our template, so the reading is forgiving where that is safe:

- the header row is found within the first rows (a title, the buyer's name and blank rows may
  come first) by its column names, Chinese or English: 商品编码/编码/货号/SKU, 条码/条形码/barcode,
  品名/商品名称/名称/name, 数量/qty, 单位/unit, 单价/价格/协议价/price. Other columns (序号, 规格,
  金额, 备注 …) are ignored; "(元)", "（公斤）" and the like after a name are read as its unit.
- blank rows, rows with only ignored columns filled (a numbered empty template row) and 合计 /
  total rows are skipped.
- a product is found by its code (sku or barcode, as the till resolves a scan), by the barcode
  column, or, when the row has no code, by its exact name.
- the quantity is in the product's unit: kilograms with up to 3 decimals for weighed goods, whole
  pieces otherwise. The unit column is informational, except that a unit contradicting the
  product's (斤 or 克 for a per-kg product, kg for a piece) is refused rather than converted.
- a price is the agreed price of that line in yuan ("38", "38.00", "¥38.00", a number cell);
  empty means the buyer's agreed price or the list price applies when the order is made.
- the same product on several rows is one line (quantities added) when their prices agree.

Reading the file (size, type, CSV encodings, XLSX cells as the person sees them) is
``inventory.catalogue_sheet``'s; a cell is read as the decimal Excel shows and a price in yuan as fen
by ``inventory.spreadsheets`` (the catalogue import reads its 售价 column the same way), quantities
by ``inventory.money``; a code is
resolved by ``inventory.catalogue.resolve_scan``. No float touches a quantity or a price: a number
cell is taken as the decimal Excel shows (``Decimal(str(value))``).
"""
from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory import catalogue
from inventory.catalogue_sheet import (
    NOT_A_SHEET,
    SCIENTIFIC_RE,
    UNIT_WORDS,
    RowError,
    _cell_text,
    _csv_records,
    _header_key,
    _parse_barcodes,
    _RowProblem,
    _xlsx_records,
)
from inventory.errors import ValidationError
from inventory.ledger import MAX_QTY_MILLI
from inventory.models import Product, Unit
from inventory.money import AmountError, format_yuan, parse_qty_milli
from inventory.spreadsheets import decimal_text as _decimal_text, yuan_cell_fen
from pos.group.buyers import get_buyer
from pos.group.orders import MAX_LINES, MAX_PRICE_FEN, GroupOrderError, OrderLineIn, check_lines

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ROWS = 2000            # order rows below the header (blank and total rows not counted)
HEADER_SEARCH_ROWS = 10    # the header is among the first 10 non-blank rows
MAX_ERRORS = 200           # listed in ``errors``; every row still carries its own

# The columns we read, and the names buyers give them. A name is compared after NFKC, without
# spaces, lowercase, and without a unit in brackets or after a slash ("单价(元)", "数量/公斤").
COLUMN_NAMES = {
    "code": ("商品编码", "编码", "货号", "sku", "商品货号", "商品代码", "产品编码", "商品编号"),
    "barcode": ("条码", "条形码", "商品条码", "barcode", "ean", "国际条码"),
    "name": ("品名", "商品名称", "名称", "name", "商品名", "产品名称", "货品名称", "product"),
    "qty": ("数量", "qty", "quantity", "订购数量", "订货数量", "采购数量", "需求数量", "订单数量"),
    "unit": ("单位", "unit", "计量单位"),
    "price": ("单价", "价格", "协议价", "price", "协议单价", "含税单价", "unitprice"),
}
_COLUMN_OF = {_header_key(name): column for column, names in COLUMN_NAMES.items() for name in names}
_HINTED = re.compile(r"(?P<base>[^(\[]+)[(\[](?P<hint>[^)\]]*)[)\]]")   # 单价(元/kg)
_SLASHED = re.compile(r"(?P<base>[^/]+)/(?P<hint>.+)")                  # 数量/公斤

# Weights other than the kilogram: a quantity or price in these is not in the product's unit.
OTHER_WEIGHTS = frozenset({"斤", "市斤", "半斤", "两", "克", "g", "500g", "吨", "t", "mg", "毫克", "磅", "lb"})
_TOTAL = re.compile(r"(合计|总计|小计|共计|总合计).*|(sub|grand)?total(amount)?:?|sum:?")
_QTY_WITH_UNIT = re.compile(r"(?P<number>[+-]?[0-9.,]*[0-9.])\s*(?P<unit>[^\d\s.,+-].*)?")
_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+(\.\d*)?")
NAME_MAX_LEN = Product.__table__.c.name.type.length
SHOWN = 40                 # characters of a cell quoted back in a message
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # .xls, and password-protected workbooks


@dataclass
class SheetRow:
    """One order row of the sheet, as read: what the person wrote, what it was understood as, and
    what is wrong with it (``error`` is None for a good row)."""

    row_no: int                          # as Excel shows it
    code: str                            # the sku or barcode as written ("" when none)
    name: str                            # the name as written
    qty_text: str
    price_text: str
    product_id: Optional[int] = None
    product_name: Optional[str] = None   # the catalogue's name of the product found
    qty_milli: Optional[int] = None
    unit_price_fen: Optional[int] = None  # the row's agreed price; None: not given
    error: Optional[str] = None


@dataclass
class SheetPreview:
    rows: list[SheetRow]
    lines: list[OrderLineIn]
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Lines to order and nothing wrong anywhere in the file."""
        return bool(self.lines) and not self.errors


# --- reading the file --------------------------------------------------------------------------

def _records(filename: str, data: bytes) -> list[tuple[int, list[Any]]]:
    """(row number, raw cell values) of every row of the first sheet; ValidationError for a file
    that is not a spreadsheet we can read."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValidationError(_l("文件是空的"), "file")
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(_l("文件不能超过 2 MB"), "file")
    data = bytes(data)
    if data[:4] == b"PK\x03\x04":
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise ValidationError(NOT_A_SHEET, "file")
        return _xlsx_records(data)
    if data[:8] == _OLE_MAGIC or (filename or "").lower().endswith(".xls"):
        raise ValidationError(_l("不支持旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 CSV"), "file")
    return _csv_records(data)


def _column(text: str) -> tuple[Optional[str], str]:
    """(the column a header cell names, or None; the unit written with it, normalised)."""
    key = _header_key(text).strip("*:")
    column = _COLUMN_OF.get(key)
    if column is not None:
        return column, ""
    for pattern in (_HINTED, _SLASHED):
        match = pattern.fullmatch(key)
        if match and match.group("base").strip("*:") in _COLUMN_OF:
            return _COLUMN_OF[match.group("base").strip("*:")], match.group("hint").strip()
    return None, ""


@dataclass
class _Header:
    row_no: int
    index: dict[str, int]     # column -> position in the row
    names: dict[str, str]     # column -> its name in the file
    hints: dict[str, str]     # column -> the unit in its name ("kg" of "数量(kg)")


def _find_header(records: list[tuple[int, list[str]]]) -> _Header:
    """The first of the top rows that names a quantity column and a code or name column."""
    best: Optional[_Header] = None
    for row_no, texts in records[:HEADER_SEARCH_ROWS]:
        header, repeated = _Header(row_no, {}, {}, {}), None
        for position, text in enumerate(texts):
            column, hint = _column(text)
            if column is None:
                continue
            if column in header.index:
                repeated = repeated or text
                continue
            header.index[column], header.names[column], header.hints[column] = position, text, hint
        if "qty" in header.index and header.index.keys() & {"code", "barcode", "name"}:
            if repeated:
                raise ValidationError(_l("列名重复：%(name)s", name=repeated), "file")
            return header
        if len(header.index) >= 2 and (best is None or len(header.index) > len(best.index)):
            best = header
    if best is not None and "qty" not in best.index:
        raise ValidationError(_l("第 %(row)s 行的列名中缺少「数量」列", row=best.row_no), "file")
    if best is not None:
        raise ValidationError(_l("第 %(row)s 行的列名中缺少「商品编码」、「条码」或「品名」列", row=best.row_no), "file")
    raise ValidationError(_l(
        "找不到列名：表格开头 %(n)s 行中应有一行列名，包括「商品编码」（或「条码」「品名」）和「数量」",
        n=HEADER_SEARCH_ROWS), "file")


def _check_price_header(header: _Header) -> None:
    """A price column in fen, or per jin, would be off by 100 or by 2 on every row: refuse it."""
    hint = header.hints.get("price", "")
    if not hint:
        return
    name = header.names["price"]
    if "分" in hint:
        raise ValidationError(_l("「%(name)s」：单价请以元为单位填写（例如 38.00），不要以分为单位", name=name), "file")
    per = hint.split("/")[-1]
    if per in OTHER_WEIGHTS:
        raise ValidationError(_l("「%(name)s」：单价请按商品的计量单位填写，称重商品为每千克的价格", name=name), "file")


def _is_total(texts: list[str], cells: dict[str, str]) -> bool:
    """A 合计 / total row: a total word in some cell, and no product named on the row."""
    if not any(_TOTAL.fullmatch(_header_key(t)) for t in texts if t):
        return False
    return all(not cells[c] or _TOTAL.fullmatch(_header_key(cells[c])) for c in ("code", "barcode", "name"))


# --- one row -----------------------------------------------------------------------------------

def _price_fen(value: Any) -> Optional[int]:
    fen = yuan_cell_fen(value)  # the one reading of a price in yuan (the catalogue import's too)
    if fen is not None and fen > MAX_PRICE_FEN:
        raise AmountError(str(_l("单价太大：%(text)s", text=_decimal_text(value)[:20])))
    return fen


def _unit_kind(text: str) -> Optional[str]:
    """'kg', 'piece', 'weight' (a weight other than kg) or None (a word we do not judge: 盒, 袋 …)."""
    key = _header_key(text)
    unit = UNIT_WORDS.get(key)
    if unit is not None:
        return "kg" if unit == Unit.KG else "piece"
    return "weight" if key in OTHER_WEIGHTS else None


def _check_unit(product: Product, unit_text: str, column: str) -> None:
    """A unit that contradicts the product's is refused, never converted (斤 is half a kg)."""
    kind = _unit_kind(unit_text) if unit_text else None
    if kind is None:
        return
    if product.weighed and kind != "kg":
        raise _RowProblem(column, _l("「%(name)s」按千克称重销售，数量请以千克填写（表格中的单位是「%(unit)s」）",
                                  name=product.name, unit=unit_text[:SHOWN]))
    if not product.weighed and kind != "piece":
        raise _RowProblem(column, _l("「%(name)s」按件销售，数量请填件数（表格中的单位是「%(unit)s」）",
                                  name=product.name, unit=unit_text[:SHOWN]))


def _split_qty(value: Any) -> tuple[str, str]:
    """(the number, a unit written after it): "2.5kg" → ("2.5", "kg"), "1,200" → ("1200", "").
    Only a unit we can judge is split off: "3箱" stays as it is (and is refused), never 3 pieces."""
    text = _decimal_text(value)
    match = _QTY_WITH_UNIT.fullmatch(text)
    if match is None:
        return text, ""
    number, unit = match.group("number"), (match.group("unit") or "").strip()
    if unit and _unit_kind(unit) is None:
        return text, ""
    if _THOUSANDS.fullmatch(number):
        number = number.replace(",", "")
    return number, unit


class _Finder:
    """Products by code and by name, each looked up once per file."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.codes: dict[str, Optional[int]] = {}
        self.names: dict[str, list[Product]] = {}

    def by_code(self, code: str) -> Optional[Product]:
        """What the till would make of the code: a barcode, then a sku."""
        if code not in self.codes:
            found = catalogue.resolve_scan(self.s, code)  # ValidationError for a scale label it cannot use
            self.codes[code] = found.product_id if found is not None else None
        product_id = self.codes[code]
        return self.s.get(Product, product_id) if product_id is not None else None

    def by_name(self, name: str) -> list[Product]:
        if len(name) > NAME_MAX_LEN or any(unicodedata.category(ch) == "Cc" for ch in name):
            return []  # no product is called that (and PostgreSQL refuses a NUL in a query)
        if name not in self.names:
            self.names[name] = list(self.s.scalars(select(Product).where(Product.name == name).order_by(Product.id)))
        return self.names[name]


def _product(finder: _Finder, cells: dict[str, str]) -> Product:
    code, barcode, name = cells["code"], cells["barcode"], cells["name"]
    found: dict[str, Product] = {}
    for column, text in (("code", code), ("barcode", barcode)):
        if not text:
            continue
        if SCIENTIFIC_RE.fullmatch(text) or column == "barcode":
            codes = _parse_barcodes(text, column)  # says so when Excel made it 6.90123E+12, or a digit is wrong
            text = codes[0] if len(codes) == 1 else text
        try:
            product = finder.by_code(text)
        except ValidationError as error:
            raise _RowProblem(column, error) from None
        if product is None:
            message = _l("找不到商品编码 %(sku)s", sku=text[:SHOWN]) if column == "code" else \
                _l("找不到条码「%(code)s」", code=text[:SHOWN])
            raise _RowProblem(column, message)
        found[column] = product
    if len(found) == 2 and found["code"].id != found["barcode"].id:
        raise _RowProblem("barcode", _l("商品编码「%(code)s」与条码「%(barcode)s」不是同一商品", code=code[:SHOWN],
                                           barcode=barcode[:SHOWN]))
    if found:
        return next(iter(found.values()))
    if not name:
        raise _RowProblem("", _l("请填写商品编码、条码或品名"))
    named = finder.by_name(name)
    active = [p for p in named if p.active]
    if len(active) > 1:
        raise _RowProblem("name", _l("有 %(n)s 个商品名为「%(name)s」，请填写商品编码", n=len(active), name=name[:SHOWN]))
    if active or named:
        return (active or named)[0]
    raise _RowProblem("name", _l("找不到商品「%(name)s」，请填写商品编码或条码", name=name[:SHOWN]))


def _read_row(finder: _Finder, row: SheetRow, cells: dict[str, str], raw: dict[str, Any],
              header: _Header) -> list[_RowProblem]:
    """Fill ``row`` with the product, quantity and price; the problems found (all of them)."""
    problems: list[_RowProblem] = []
    try:
        price = _price_fen(raw["price"])
        row.unit_price_fen = price
    except AmountError as error:
        problems.append(_RowProblem("price", error))
    product = None
    try:
        product = _product(finder, cells)
        row.product_id, row.product_name = product.id, product.name
        if not product.active:
            raise _RowProblem("", _l("「%(name)s」已停售，不能订购", name=product.name))
    except _RowProblem as problem:
        problems.append(problem)
    if not cells["qty"]:
        problems.append(_RowProblem("qty", _l("请输入数量")))
        return problems
    number, written_unit = _split_qty(raw["qty"])
    try:
        if product is None:  # say what is wrong with the quantity too, whatever the product turns out to be
            parse_qty_milli(number, by_weight=True)
            return problems
        qty = parse_qty_milli(number, by_weight=product.weighed)
        if qty > MAX_QTY_MILLI:
            raise AmountError(str(_l("数量太大")))
        if cells["unit"]:
            _check_unit(product, cells["unit"], "unit")
        if written_unit or not cells["unit"]:  # "2.5kg" in the cell; else "数量(kg)" above it
            _check_unit(product, written_unit or header.hints.get("qty", ""), "qty")
        row.qty_milli = qty
    except AmountError as error:
        problems.append(_RowProblem("qty", error))
    except _RowProblem as problem:
        problems.append(problem)
    return problems


# --- the file ----------------------------------------------------------------------------------

def parse_order_sheet(s: Session, *, buyer_id: int, data: bytes, filename: str) -> SheetPreview:
    """The order lines of a buyer's spreadsheet, row by row, with every problem found. Writes
    nothing. ``ok`` only when there are lines and no problem at all; the lines are then accepted
    by ``create_order`` as they are. NotFound for an unknown buyer."""
    buyer = get_buyer(s, buyer_id)
    errors: list[str] = []
    if not buyer.active:
        errors.append(str(_l("买方单位「%(name)s」已停用", name=buyer.name)))
    try:
        records = [(n, cells, [_cell_text(v) for v in cells]) for n, cells in _records(filename, data)]
        records = [r for r in records if any(r[2])]
        if not records:
            raise ValidationError(_l("表格是空的"), "file")
        header = _find_header([(n, texts) for n, _cells, texts in records])
        _check_price_header(header)
    except ValidationError as error:
        return SheetPreview(rows=[], lines=[], errors=errors + [str(error)])

    body = []
    for row_no, values, texts in records:
        if row_no <= header.row_no:
            continue
        cells = {c: (texts[i] if i < len(texts) else "") for c, i in header.index.items()}
        raw = {c: (values[i] if i < len(values) else None) for c, i in header.index.items()}
        for column in COLUMN_NAMES:
            cells.setdefault(column, "")
            raw.setdefault(column, None)
        if not any(cells.values()) or _is_total(texts, cells):
            continue  # a template row with only 序号 / 备注, or the 合计 row
        body.append((row_no, cells, raw))
    if len(body) > MAX_ROWS:
        return SheetPreview(rows=[], lines=[], errors=errors + [
            str(_l("一次最多导入 %(n)s 行，请分批导入", n=MAX_ROWS))])

    finder = _Finder(s)
    rows: list[SheetRow] = []
    row_errors: list[RowError] = []
    merged: dict[int, tuple[SheetRow, list[int]]] = {}   # product id -> (first row, [qty_milli])
    for row_no, cells, raw in body:
        row = SheetRow(row_no=row_no, code=cells["code"] or cells["barcode"], name=cells["name"],
                       qty_text=cells["qty"], price_text=cells["price"])
        problems = _read_row(finder, row, cells, raw, header)
        if not problems:
            first = merged.get(row.product_id)
            if first is None:
                merged[row.product_id] = (row, [row.qty_milli])
            elif first[0].unit_price_fen != row.unit_price_fen:
                problems.append(_RowProblem("price", _l(
                    "「%(name)s」在第 %(row)s 行已出现，单价不同（%(first)s / %(this)s），请合并为一行或统一单价",
                    name=row.product_name, row=first[0].row_no, first=_show_price(first[0].unit_price_fen),
                    this=_show_price(row.unit_price_fen))))
            elif sum(first[1]) + row.qty_milli > MAX_QTY_MILLI:
                problems.append(_RowProblem("qty", _l("「%(name)s」合计数量太大", name=row.product_name)))
            else:
                first[1].append(row.qty_milli)
        if problems:
            row.error = "；".join(p.message for p in problems)
            row_errors.extend(RowError(row_no, header.names.get(p.column, ""), p.message) for p in problems)
        rows.append(row)

    lines = [OrderLineIn(product_id=pid, qty_milli=sum(qtys), unit_price_fen=first.unit_price_fen)
             for pid, (first, qtys) in merged.items()]
    errors += [e.describe() for e in row_errors[:MAX_ERRORS]]
    if len(row_errors) > MAX_ERRORS:
        errors.append(str(_l("另有 %(n)s 处错误未列出，请先改正以上错误", n=len(row_errors) - MAX_ERRORS)))
    if not rows:
        errors.append(str(_l("文件中没有可以导入的商品行")))
    elif len(lines) > MAX_LINES:
        errors.append(str(_l("一张订单最多 %(n)s 行", n=MAX_LINES)))
    elif lines and not errors:
        try:  # the order's own rules (its total among them), exactly as create_order applies them
            check_lines(s, buyer.id, lines)
        except GroupOrderError as error:
            errors.append(str(error))
    return SheetPreview(rows=rows, lines=lines, errors=errors)


def _show_price(fen: Optional[int]) -> str:
    return format_yuan(fen) if fen is not None else str(_l("未填单价"))
