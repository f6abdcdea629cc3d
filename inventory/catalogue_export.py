"""Catalogue export: every product in the import's columns, as CSV or XLSX (through
``inventory.spreadsheets``, so a cell that starts with ``=`` stays text)."""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from .catalogue_sheet import CHINESE_HEADERS, COLUMNS, PIPE
from .errors import ValidationError
from .models import Product
from .spreadsheets import csv_table, xlsx_tables

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
