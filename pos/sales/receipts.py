"""The receipt (小票) as one plain document, built once from a sale (or a refund) and rendered two
ways: ESC/POS bytes for the printer and HTML for the screen (pos.sales.escpos.text_lines is the one
layout both use, so they never disagree).

Amounts stay integer fen in the document; the renderers format them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from flask import has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from inventory.localtime import format_local
from inventory.models import Product
from inventory.money import format_qty
from pos.core.errors import NotFound
from pos.models import Refund, RefundLine, Sale, SaleLine, Till, User
from pos.sales.reading import payment_label, sale_view
from pos.hall.settings import hall_settings

HALL_NAME = "梵净山珍·松桃馆"
CERT_MARK = "★"
LEGEND = _l("★ 为认定的扶贫产品")
FOOTER = _l("凭小票七日内退换，谢谢惠顾！")
QR_HINT = _l("扫码查看产地溯源、申请电子发票")


@dataclass(frozen=True)
class ReceiptLine:
    name: str
    qty_text: str           # "3" for pieces, "0.523kg" for weighed goods
    unit_price_fen: int
    amount_fen: int         # gross (before discounts), as the customer checks qty × price
    certified: bool


@dataclass(frozen=True)
class Receipt:
    kind: str                                  # "sale" | "refund"
    receipt_no: str
    hall_name: str
    hall_address: str
    meta: list[tuple[str, str]]                # (label, value): 收银台, 收银员, 小票号, 时间 …
    lines: list[ReceiptLine]
    totals: list[tuple[str, int]]              # (label, signed fen); the last one is the total
    payments: list[tuple[str, int]]            # (label, fen tendered)
    change_fen: int
    certified_fen: int
    reprint: bool = False
    voided: bool = False
    original_receipt_no: Optional[str] = None  # a refund names the sale it refunds
    notes: list[str] = field(default_factory=list)
    legend: str = ""
    footer: str = ""
    qr_payload: str = ""
    columns: int = 48

    @property
    def total_fen(self) -> int:
        return self.totals[-1][1] if self.totals else 0


def public_url(receipt_no: str) -> str:
    """The signed public receipt URL (the QR payload); empty outside a request/app or before the
    public page exists."""
    if not has_app_context():
        return ""
    from pos.sales.links import receipt_url
    try:
        return receipt_url(receipt_no)
    except (BuildError, RuntimeError):
        return ""


def _qty_text(qty_milli: int, sold_by_weight: bool, unit: str) -> str:
    text = format_qty(qty_milli, by_weight=sold_by_weight)
    return f"{text}{unit}" if sold_by_weight else text


def build_receipt(s: Session, sale_id: int, *, reprint: bool = False, columns: int = 48,
                  qr_payload: Optional[str] = None) -> Receipt:
    """The receipt of a sale. ``qr_payload`` None = the signed public URL (pos.sales.links)."""
    view = sale_view(s, sale_id)
    hall = hall_settings(s)
    meta = [(str(_l("小票号")), view["receipt_no"]), (str(_l("时间")), view["sold_at_local"])]
    if view["till"]:
        meta.append((str(_l("收银台")), view["till"]))
    if view["cashier"]:
        meta.append((str(_l("收银员")), view["cashier"]))
    lines = [ReceiptLine(ln["name"], _qty_text(ln["qty_milli"], ln["sold_by_weight"], ln["unit"]),
                         ln["unit_price_fen"], ln["gross_fen"], bool(ln["certified"]))
             for ln in view["lines"]]
    totals = [(str(_l("小计")), view["subtotal_fen"])]
    if view["discount_fen"]:
        totals.append((str(_l("优惠")), -view["discount_fen"]))
    if view["rounding_fen"]:
        totals.append((str(_l("抹零")), -view["rounding_fen"]))
    totals.append((str(_l("合计")), view["total_fen"]))
    payments = [(payment_label(p["method"]), p["tendered_fen"] or p["amount_fen"]) for p in view["payments"]]
    notes = [f'{_l("退款")} {r["refund_no"]} {r["refunded_at_local"]}' for r in view["refunds"]]
    return Receipt(
        kind="sale", receipt_no=view["receipt_no"], hall_name=hall.hall_name, hall_address=hall.hall_address,
        meta=meta, lines=lines, totals=totals, payments=payments, change_fen=view["change_fen"],
        certified_fen=view["certified_fen"], reprint=reprint, voided=view["status"] == "voided", notes=notes,
        legend=str(LEGEND), footer=str(FOOTER),
        qr_payload=public_url(view["receipt_no"]) if qr_payload is None else qr_payload, columns=columns)


def build_refund_receipt(s: Session, refund_id: int, *, reprint: bool = False, columns: int = 48,
                         qr_payload: Optional[str] = None) -> Receipt:
    """The receipt of a refund: names the original sale's receipt; amounts are what was paid back."""
    refund = s.get(Refund, refund_id) if isinstance(refund_id, int) else None
    if refund is None:
        raise NotFound(_l("找不到该退款"))
    sale = s.get(Sale, refund.sale_id)
    hall = hall_settings(s)
    rows = s.execute(
        select(RefundLine.qty_milli, RefundLine.amount_fen, SaleLine.unit_price_fen, SaleLine.certified,
               Product.name, Product.sold_by_weight, Product.unit)
        .join(SaleLine, SaleLine.id == RefundLine.sale_line_id).join(Product, Product.id == SaleLine.product_id)
        .where(RefundLine.refund_id == refund.id).order_by(RefundLine.id)).all()
    lines = [ReceiptLine(name, _qty_text(q, bool(w), unit.value), price, amount, bool(cert))
             for q, amount, price, cert, name, w, unit in rows]
    till = s.get(Till, refund.till_id) if refund.till_id else None
    user = s.get(User, refund.user_id)
    meta = [(str(_l("退款单号")), refund.refund_no), (str(_l("原小票号")), sale.receipt_no),
            (str(_l("时间")), format_local(refund.refunded_at))]
    if till:
        meta.append((str(_l("收银台")), till.code))
    if user:
        meta.append((str(_l("收银员")), user.display_name))
    return Receipt(
        kind="refund", receipt_no=refund.refund_no, hall_name=hall.hall_name, hall_address=hall.hall_address,
        meta=meta, lines=lines, totals=[(str(_l("退款合计")), refund.total_fen)],
        payments=[(payment_label(refund.method), refund.total_fen)], change_fen=0,
        certified_fen=sum(ln.amount_fen for ln in lines if ln.certified), reprint=reprint,
        original_receipt_no=sale.receipt_no, legend=str(LEGEND), footer=str(FOOTER),
        qr_payload=public_url(sale.receipt_no) if qr_payload is None else qr_payload, columns=columns)


__all__ = ["Receipt", "ReceiptLine", "build_receipt", "build_refund_receipt", "public_url", "HALL_NAME"]
