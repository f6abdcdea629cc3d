"""Reading sales: a sale by its receipt number, what was refunded of each line, the sale as a
plain dict for receipts and the API, and what each payment method is called."""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from inventory.localtime import format_local
from inventory.models import Product
from pos.core.errors import NotFound
from pos.models import PaymentMethod, Refund, RefundLine, Sale, SaleStatus, Till, User
from pos.sales.pricing import is_int


# What each payment method is called on the till, receipts and reports (one table for all).
PAYMENT_METHOD_LABELS = {
    PaymentMethod.CASH: _l("现金"),
    PaymentMethod.WECHAT: _l("微信支付"),
    PaymentMethod.ALIPAY: _l("支付宝"),
    PaymentMethod.UNIONPAY: _l("银联卡"),
    PaymentMethod.UNION_CARD: _l("工会卡"),
    PaymentMethod.VOUCHER: _l("代金券"),
    PaymentMethod.BANK_TRANSFER: _l("对公转账"),
}


def payment_label(method: Any) -> str:
    """The person-facing name of a payment method (the code itself when unknown)."""
    try:
        return str(PAYMENT_METHOD_LABELS[PaymentMethod(getattr(method, "value", method))])
    except ValueError:
        return str(method)


def get_sale(s: Session, receipt_no: str) -> Sale:
    # A receipt number may come from a URL or a scanned QR code and hold anything; PostgreSQL
    # refuses a NUL in a text parameter, so a number that is not printable is nobody's receipt.
    plausible = isinstance(receipt_no, str) and len(receipt_no) <= 40 and receipt_no.isprintable()
    sale = s.scalars(select(Sale).where(Sale.receipt_no == receipt_no)).first() if plausible else None
    if sale is None:
        raise NotFound(_l("找不到小票：%(receipt)s", receipt=str(receipt_no)[:40]))
    return sale


def refunded_qty_by_line(s: Session, sale_id: int) -> dict[int, tuple[int, int]]:
    """sale_line_id → (quantity refunded so far, amount refunded so far), by SQL aggregation."""
    rows = s.execute(
        select(RefundLine.sale_line_id, func.sum(RefundLine.qty_milli), func.sum(RefundLine.amount_fen))
        .join(Refund, Refund.id == RefundLine.refund_id)
        .where(Refund.sale_id == sale_id)
        .group_by(RefundLine.sale_line_id)
    )
    return {line_id: (int(qty), int(amount)) for line_id, qty, amount in rows}


def sale_view(s: Session, sale_id: int) -> dict[str, Any]:
    """The sale as a plain JSON-able dict, for receipts and the API."""
    sale = s.scalars(select(Sale).where(Sale.id == sale_id)
                     .options(selectinload(Sale.lines), selectinload(Sale.payments))).first() \
        if is_int(sale_id) else None
    if sale is None:
        raise NotFound(_l("找不到该销售"))
    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_({ln.product_id for ln in sale.lines})))}
    refunded = refunded_qty_by_line(s, sale.id)
    till = s.get(Till, sale.till_id) if sale.till_id else None
    cashier = s.get(User, sale.cashier_id) if sale.cashier_id else None
    lines = []
    for ln in sale.lines:
        p = products[ln.product_id]
        done = refunded.get(ln.id, (0, 0))[0]
        lines.append({
            "id": ln.id, "line_no": ln.line_no, "product_id": ln.product_id, "sku": p.sku, "name": p.name,
            "unit": p.unit.value, "sold_by_weight": bool(p.sold_by_weight), "qty_milli": ln.qty_milli,
            "unit_price_fen": ln.unit_price_fen, "gross_fen": ln.gross_fen, "discount_fen": ln.discount_fen,
            "net_fen": ln.net_fen, "certified": ln.certified, "certificate_no": ln.certificate_no,
            "supplier_name": ln.supplier_name, "origin_county": ln.origin_county,
            "refunded_qty_milli": done,
            "refundable_qty_milli": ln.qty_milli - done if sale.status == SaleStatus.COMPLETED else 0,
            "list_price_fen": ln.list_price_fen,
        })
    refunds = s.execute(select(Refund.refund_no, Refund.refunded_at, Refund.total_fen, Refund.method,
                        Refund.provider_state)
                        .where(Refund.sale_id == sale.id).order_by(Refund.id)).all()
    certified = sum(ln.net_fen for ln in sale.lines if ln.certified)
    return {
        "id": sale.id,
        "receipt_no": sale.receipt_no,
        "channel": sale.channel.value,
        "status": sale.status.value,
        "till": till.code if till else None,
        "cashier": cashier.display_name if cashier else None,
        "sold_at": sale.sold_at.isoformat(),
        "sold_at_local": format_local(sale.sold_at),
        "local_date": sale.local_date.isoformat(),
        "subtotal_fen": sale.subtotal_fen,
        "discount_fen": sale.discount_fen,
        "rounding_fen": sale.rounding_fen,
        "total_fen": sale.total_fen,
        "certified_fen": certified,
        "uncertified_fen": sale.total_fen - certified,
        "change_fen": sum(p.change_fen for p in sale.payments),
        "after_shift_closed": sale.after_shift_closed,
        "price_differs": sale.price_differs,
        "lines": lines,
        "payments": [{"method": p.method.value, "amount_fen": p.amount_fen, "tendered_fen": p.tendered_fen,
                      "change_fen": p.change_fen, "ref": p.ref, "attempt_id": p.attempt_id} for p in sale.payments],
        "refunds": [{"refund_no": r.refund_no, "refunded_at_local": format_local(r.refunded_at),
                     "total_fen": r.total_fen, "method": PaymentMethod(r.method).value,
                     "provider_state": r.provider_state} for r in refunds],
    }
