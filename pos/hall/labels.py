"""Shelf labels for 明码标价: name, price and unit, origin, the EAN-13 barcode and the certified ★.

One label document (``ShelfLabel``, plain values) rendered two ways: an A4 sheet in the browser
(templates/pos/hall/labels_sheet.html, the barcode an inline SVG made by python-barcode) and ESC/POS
bytes for a label printer (``label_escpos``), sent through pos.hall.printers like every print.
Certification is judged on the hall's local date, as for a sale.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from io import BytesIO
from typing import Iterable, Optional

from barcode import EAN13
from barcode.writer import SVGWriter
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from inventory.certification import certified_product_ids
from inventory.models import Barcode, BarcodeKind, Product, Unit
from pos.sales.escpos import dummy_printer

CERT_MARK = "★"
MAX_LABELS = 240  # ten A4 sheets of 24
UNIT_LABELS = {Unit.PIECE: _l("件"), Unit.KG: _l("千克")}


@dataclass(frozen=True)
class ShelfLabel:
    product_id: int
    sku: str
    name: str
    price_fen: int
    unit: str          # 件 / 千克, in the current language
    origin: str        # county · township · village, as far as known
    ean13: Optional[str]
    certified: bool
    certificate_no: Optional[str]


def find_products(s: Session, *, category_id: Optional[int] = None, q: str = "",
                  ids: Iterable[int] = ()) -> list[int]:
    """Active products chosen by ids, or by category and/or a search of name, SKU, pinyin initials
    or barcode; in name order, at most MAX_LABELS."""
    ids = [i for i in ids if isinstance(i, int) and 0 < i < 2**31]
    stmt = select(Product.id).where(Product.active.is_(True))
    if ids:
        stmt = stmt.where(Product.id.in_(ids))
    elif category_id is None and not q:
        return []
    if category_id is not None:
        stmt = stmt.where(Product.category_id == category_id)
    q = (q or "").strip()[:60]
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Product.name.ilike(like), Product.sku.ilike(like), Product.pinyin_initials.ilike(like),
                              Product.id.in_(select(Barcode.product_id).where(Barcode.code == q))))
    return list(s.scalars(stmt.order_by(Product.name, Product.id).limit(MAX_LABELS)))


def shelf_labels(s: Session, product_ids: list[int], day: dt.date) -> list[ShelfLabel]:
    """The labels of the products, in the order given; certification on ``day``."""
    if not product_ids:
        return []
    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_(product_ids))
                                           .options(selectinload(Product.barcodes), selectinload(Product.supplier)))}
    certs = certified_product_ids(s, list(products), day)
    labels = []
    for pid in product_ids:
        p = products.get(pid)
        if p is None:
            continue
        origin = p.origin()
        ean = next((b.code for b in p.barcodes if b.kind == BarcodeKind.EAN13), None)
        cert = certs[pid]
        labels.append(ShelfLabel(
            product_id=p.id, sku=p.sku, name=p.name, price_fen=p.price_fen, unit=str(UNIT_LABELS[p.unit]),
            origin=" · ".join(part for part in (origin["county"], origin["township"], origin["village"]) if part),
            ean13=ean, certified=cert.certified, certificate_no=cert.certificate_no,
        ))
    return labels


_SVG_START = re.compile(r"^.*?(?=<svg)", re.S)


def ean13_svg(code: Optional[str]) -> Optional[str]:
    """The EAN-13 barcode as an inline SVG element, or None when ``code`` is no valid EAN-13
    (python-barcode recomputes the check digit, so a wrong one would print another code)."""
    if not code or not re.fullmatch(r"\d{13}", code):
        return None
    symbol = EAN13(code[:12], writer=SVGWriter())
    if symbol.get_fullcode() != code:
        return None
    out = BytesIO()
    symbol.write(out, options={"module_width": 0.26, "module_height": 9.0, "font_size": 7,
                               "text_distance": 3.0, "quiet_zone": 2.0})
    svg = _SVG_START.sub("", out.getvalue().decode("utf-8"), count=1)
    return re.sub(r"<!--.*?-->", "", svg, flags=re.S).strip()


def label_escpos(label: ShelfLabel, columns: int = 32) -> bytes:
    """The label for a label (or receipt) printer: Chinese mode, GB18030 text by display width,
    the printer's own EAN-13 command, cut."""
    from pos.sales.escpos import FS_CHINESE_ON, center, gb18030, money, pair, wrap

    price = f"{money(label.price_fen)}/{label.unit}"
    mark = CERT_MARK + " " if label.certified else ""
    lines = wrap(mark + label.name, columns) + pair(str(_l("价格")), price, columns)
    if label.origin:
        lines += wrap(str(_l("产地：")) + label.origin, columns, indent="  ")
    if label.certified:
        lines += wrap(CERT_MARK + " " + str(_l("认定的扶贫产品")), columns)
    p = dummy_printer()
    p.hw("INIT")
    p._raw(FS_CHINESE_ON)
    for line in lines:
        p._raw(gb18030(line) + b"\n")
    if label.ean13 and ean13_svg(label.ean13):
        p.set(align="center")
        p.barcode(label.ean13, "EAN13", height=60, width=2, pos="BELOW", function_type="A")
        p.set(align="left")
    else:
        for line in center(label.sku, columns):
            p._raw(gb18030(line) + b"\n")
    p.cut()
    return p.output


__all__ = ["ShelfLabel", "find_products", "shelf_labels", "ean13_svg", "label_escpos", "CERT_MARK", "MAX_LABELS"]
