"""Opening stock: what a place holds on the day the hall starts using the system
(``songtao import-stock FILE --location CODE``).

One row per product (and lot), CSV or XLSX, with the columns ``sku`` or ``barcode`` (商品编码 /
条码), ``qty`` (数量: pieces, or kilograms with up to three decimals for weighed goods), and
optionally ``lot`` (批号), ``expires_on`` (到期日, YYYY-MM-DD) and ``unit_cost`` (进价, in yuan;
empty: the product's last cost, or 0).

The whole file becomes ONE stock document, posted through the ledger: a goods receipt from the
bookkeeping supplier location into the place, under the supplier record 期初库存 (kept inactive,
so no one picks it for an ordinary delivery), noted as the opening count with the file's name.
As the catalogue import: every row is checked first and every problem of every row is reported;
nothing is written unless all rows are valid (and the posting itself is all or nothing).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import InventoryError, ValidationError
from .localtime import local_today, parse_local_date
from .locations import get_location
from .models import Barcode, Location, LocationKind, Product, Supplier
from .money import AmountError, format_qty, parse_qty_milli
from .spreadsheets import SheetError, decimal_text, header_key, read_sheet, yuan_cell_fen
from .receiving import post_receipt, receive

COLUMNS = ("sku", "barcode", "qty", "lot", "expires_on", "unit_cost")
CHINESE = ("商品编码", "条码", "数量", "批号", "到期日", "进价")
ALIASES = {"商品条码": "barcode", "库存": "qty", "期初数量": "qty", "quantity": "qty", "lot_no": "lot",
           "有效期至": "expires_on", "expiry": "expires_on", "单位成本": "unit_cost", "cost": "unit_cost",
           "进价(元)": "unit_cost"}
HEADER_MAP = {header_key(n): c for names in (COLUMNS, CHINESE) for n, c in zip(names, COLUMNS)}
HEADER_MAP.update({header_key(k): v for k, v in ALIASES.items()})
OPENING_SUPPLIER = "期初库存"
RECEIVING_KINDS = (LocationKind.HALL_FLOOR, LocationKind.HALL_STORE, LocationKind.BASE, LocationKind.VAN,
                   LocationKind.KIOSK)
MAX_ROWS = 20_000
MAX_ERRORS = 200
MAX_COST_FEN = 100_000_000


@dataclass(frozen=True)
class RowError:
    row_no: int       # the header is row 1; 0 for the file as a whole
    column: str
    message: str

    def describe(self) -> str:
        if not self.row_no:
            return self.message
        if self.column:
            return str(_l("第 %(row)s 行「%(column)s」：%(message)s", row=self.row_no, column=self.column,
                          message=self.message))
        return str(_l("第 %(row)s 行：%(message)s", row=self.row_no, message=self.message))


class StockRefused(ValidationError):
    """The file has errors; nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(_l("导入被拒绝：%(n)s 处错误，未写入任何数据", n=len(errors)), "file")
        self.errors = errors


@dataclass(frozen=True)
class OpeningResult:
    receipt_id: int
    number: str
    lines: int
    location: str


def _location(s: Session, code: Any) -> Location:
    loc = get_location(s, code)
    if loc.kind not in RECEIVING_KINDS:
        raise ValidationError(_l("「%(name)s」不能存放货物", name=loc.name), "location")
    if not loc.active:
        raise ValidationError(_l("「%(name)s」已停用", name=loc.name), "location")
    return loc


def _opening_supplier(s: Session) -> Supplier:
    supplier = s.scalar(select(Supplier).where(Supplier.name == OPENING_SUPPLIER))
    if supplier is None:
        supplier = Supplier(name=OPENING_SUPPLIER, province="—", active=False)
        s.add(supplier)
        s.flush()
    return supplier


def plan_lines(s: Session, filename: str, data: bytes, *, today: Optional[dt.date] = None
               ) -> tuple[list[dict], list[RowError]]:
    """The receipt lines the file asks for (product_id, qty_milli, cost_fen, lot_no, expires_on),
    and every problem of every row."""
    today = today or local_today()
    try:
        rows, headers = read_sheet(filename, data, HEADER_MAP, max_rows=MAX_ROWS)
    except SheetError as error:
        return [], [RowError(0, "", str(error))]
    errors: list[RowError] = []
    if "sku" not in headers and "barcode" not in headers:
        return [], [RowError(0, "", str(_l("表格缺少「商品编码」（sku）或「条码」（barcode）列")))]
    if "qty" not in headers:
        return [], [RowError(0, "", str(_l("表格缺少「数量」（qty）列")))]
    skus = {r.get("sku", "").strip() for r in rows} - {""}
    codes = {r.get("barcode", "").strip() for r in rows} - {""}
    by_sku = {p.sku: p for p in s.scalars(select(Product).where(Product.sku.in_(skus)))} if skus else {}
    by_code = {code: p for code, p in s.execute(select(Barcode.code, Product).join(Product, Product.id == Barcode.product_id)
                                               .where(Barcode.code.in_(codes)))} if codes else {}
    lines: list[dict] = []
    seen: dict[tuple, int] = {}
    for raw in rows:
        n = raw["_row"]

        def problem(column: str, message: Any) -> None:
            errors.append(RowError(n, headers.get(column, column), str(message)))

        sku, code = raw.get("sku", "").strip(), raw.get("barcode", "").strip()
        product = by_sku.get(sku) if sku else by_code.get(code) if code else None
        if not sku and not code:
            problem("sku" if "sku" in headers else "barcode", _l("请填写商品编码或条码"))
        elif product is None:
            problem("sku" if sku else "barcode", _l("找不到商品：%(code)s", code=(sku or code)[:32]))
        elif sku and code and by_code.get(code) is not product:
            problem("barcode", _l("条码 %(code)s 不是商品 %(sku)s 的条码", code=code[:32], sku=sku[:32]))
        elif not product.active:
            problem("sku" if sku else "barcode", _l("「%(product)s」已停用", product=product.name))
        qty = None
        text = raw.get("qty", "").strip()
        if not text:
            problem("qty", _l("请填写数量"))
        elif product is not None:
            try:
                qty = parse_qty_milli(decimal_text(text), by_weight=product.weighed)
            except AmountError as error:
                problem("qty", str(error))
        lot = raw.get("lot", "").strip() or None
        if lot is not None and len(lot) > 40:
            problem("lot", _l("批号最多 40 个字符"))
        expires = None
        if raw.get("expires_on", "").strip():
            try:
                expires = parse_local_date(raw["expires_on"].strip().replace("/", "-"))
            except ValueError:
                problem("expires_on", _l("到期日应为日期（YYYY-MM-DD）：%(text)s", text=raw["expires_on"][:20]))
            else:
                if expires < today:
                    problem("expires_on", _l("已于 %(date)s 过期，过期商品不能入库，请报损处理", date=expires.isoformat()))
        cost = None
        if raw.get("unit_cost", "").strip():
            try:
                cost = yuan_cell_fen(raw["unit_cost"])
            except AmountError as error:
                problem("unit_cost", str(error))
            else:
                if cost is not None and cost > MAX_COST_FEN:
                    problem("unit_cost", _l("进价太大"))
        if product is not None:
            key = (product.id, lot)
            if key in seen:
                problem("", _l("与第 %(first)s 行重复（同一商品、同一批号）", first=seen[key]))
            else:
                seen[key] = n
        if product is not None and qty is not None:
            lines.append({"product_id": product.id, "qty_milli": qty, "lot_no": lot, "expires_on": expires,
                          "cost_fen": cost if cost is not None else (product.cost_fen or 0),
                          "_show": f"{product.sku} {product.name} {format_qty(qty, by_weight=product.weighed)}"})
        if len(errors) >= MAX_ERRORS:
            errors.append(RowError(0, "", str(_l("错误太多，只列出前 %(n)s 处", n=MAX_ERRORS))))
            break
    if not rows and not errors:
        errors.append(RowError(0, "", str(_l("表格里没有商品"))))
    return lines, errors


def import_opening_stock(s: Session, filename: str, data: bytes, *, location: Any,
                         actor_id: Optional[int] = None) -> OpeningResult:
    """Post the file as one opening-stock document into the place named by ``location`` (its
    code). StockRefused (every row's errors) or ValidationError (the place) write nothing."""
    loc = _location(s, location)
    lines, errors = plan_lines(s, filename, data)
    if errors:
        raise StockRefused(errors)
    with s.begin_nested():
        supplier = _opening_supplier(s)
        try:
            receipt = receive(s, supplier_id=supplier.id, location_id=loc.id,
                              lines=[{k: v for k, v in line.items() if not k.startswith("_")} for line in lines],
                              supplier_ref=filename[:60] or None, note=f"期初库存导入：{filename}"[:500],
                              actor_id=actor_id)
            post_receipt(s, receipt.id, actor_id=actor_id)
        except InventoryError as error:
            raise StockRefused([RowError(0, "", str(error))]) from None
    return OpeningResult(receipt_id=receipt.id, number=receipt.number, lines=len(lines), location=loc.code)


__all__ = ["COLUMNS", "CHINESE", "OPENING_SUPPLIER", "RowError", "StockRefused", "OpeningResult", "plan_lines",
           "import_opening_stock"]
