"""Printing receipts after the sale: never inside the sale's transaction, never losing or blocking
a sale. The till asks for the print once the sale's 201 has come back; a failed print is reported
(ok=false) and the cashier reprints when the printer is back. Reprints are counted on the sale
(one atomic UPDATE) and the paper says 重印.

These functions end the session's transaction (commit) before talking to a printer, so no database
lock is held while a slow printer keeps us waiting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from inventory.audit import record
from pos import printers
from pos.errors import NotFound, PosError
from pos.escpos_render import drawer_kick_bytes, render_escpos
from pos.models import Payment, PaymentMethod, Refund, Sale, Till
from pos.receipts import build_receipt, build_refund_receipt
from pos.sales import get_sale


@dataclass(frozen=True)
class ReceiptPrint:
    ok: bool
    error: Optional[str]
    reprint_count: int


def _till(s: Session, till_id_or_code) -> Till:
    if isinstance(till_id_or_code, int):
        till = s.get(Till, till_id_or_code)
    else:
        till = s.scalar(select(Till).where(Till.code == str(till_id_or_code)))
    if till is None:
        raise NotFound(_l("找不到该收银台"))
    return till


def print_receipt(s: Session, receipt_no: str, *, reprint: bool, user_id: Optional[int],
                  timeout: float = printers.DEFAULT_TIMEOUT) -> ReceiptPrint:  # ok-float: seconds
    """Print (or reprint) the receipt of a committed sale on its till's printer. The first print
    of a sale paid (partly) in cash opens the drawer first."""
    sale = get_sale(s, receipt_no)
    if sale.till_id is None:
        raise NotFound(_l("这笔销售不属于任何收银台"))
    till = _till(s, sale.till_id)
    uri, columns, sale_id, count = till.printer_uri, till.paper_columns, sale.id, sale.reprint_count
    receipt = build_receipt(s, sale_id, reprint=reprint, columns=columns)
    data = render_escpos(receipt, columns)
    if not reprint:
        cash = s.scalar(select(Payment.id).where(Payment.sale_id == sale_id,
                                                 Payment.method == PaymentMethod.CASH).limit(1))
        if cash is not None:
            data = drawer_kick_bytes() + data
    s.commit()  # end the read transaction: no lock is held while the printer takes its time
    result = printers.send(uri, data, timeout=timeout)
    if result.ok and reprint:
        count = s.execute(update(Sale).where(Sale.id == sale_id).values(reprint_count=Sale.reprint_count + 1)
                          .returning(Sale.reprint_count)).scalar_one()
        record(s, user_id=user_id, action="sale.reprint", entity="sale", entity_id=sale_id,
               after={"receipt_no": receipt_no, "reprint_count": count})
        s.commit()
    return ReceiptPrint(result.ok, result.error, count)


def print_refund_receipt(s: Session, refund_no: str, *, user_id: Optional[int],
                         timeout: float = printers.DEFAULT_TIMEOUT) -> printers.PrintResult:  # ok-float: seconds
    """Print a refund's receipt (naming the original receipt) on the printer of the till where the
    refund was made, or else of the till that sold; after the refund is committed, like a sale's."""
    plausible = isinstance(refund_no, str) and len(refund_no) <= 40 and refund_no.isprintable()
    refund = s.scalar(select(Refund).where(Refund.refund_no == refund_no)) if plausible else None
    if refund is None:
        raise NotFound(_l("找不到该退款"))
    till_id = refund.till_id or s.scalar(select(Sale.till_id).where(Sale.id == refund.sale_id))
    if till_id is None:
        raise NotFound(_l("这笔退款不属于任何收银台"))
    till = _till(s, till_id)
    uri, columns = till.printer_uri, till.paper_columns
    data = render_escpos(build_refund_receipt(s, refund.id, columns=columns), columns)
    s.commit()  # no lock is held while the printer takes its time
    return printers.send(uri, data, timeout=timeout)


def open_drawer(s: Session, till_code: str, *, user_id: Optional[int],
                timeout: float = printers.DEFAULT_TIMEOUT) -> printers.PrintResult:  # ok-float: seconds
    """Open the till's cash drawer (through its printer) from a manager's button; audited."""
    till = _till(s, till_code)
    uri, till_id, code = till.printer_uri, till.id, till.code
    s.commit()
    result = printers.send(uri, drawer_kick_bytes(), timeout=timeout)
    record(s, user_id=user_id, action="till.drawer_open", entity="till", entity_id=till_id,
           after={"till": code, "ok": result.ok, "error": result.error})
    s.commit()
    return result


def set_printer(s: Session, till_code: str, *, printer_uri: str, paper_columns: int,
                actor_id: Optional[int]) -> Till:
    """Give a till its printer (a URI) and paper width (32 columns: 58 mm; 48: 80 mm); audited."""
    till = _till(s, till_code)
    text = (printer_uri or "").strip() or "none"
    if len(text) > 200:
        raise PosError(_l("打印机地址太长"), "printer_uri")
    try:
        printers.parse_uri(text)
    except printers.PrinterUriError as error:
        raise PosError(str(error), "printer_uri") from None
    if paper_columns not in (32, 48):
        raise PosError(_l("纸宽只能是 58 毫米（32 列）或 80 毫米（48 列）"), "paper_columns")
    before = {"printer_uri": till.printer_uri, "paper_columns": till.paper_columns}
    till.printer_uri, till.paper_columns = text, paper_columns
    record(s, user_id=actor_id, action="till.printer", entity="till", entity_id=till.id, before=before,
           after={"printer_uri": text, "paper_columns": paper_columns})
    return till


def test_print(s: Session, till_code: str, *, timeout: float = printers.DEFAULT_TIMEOUT) -> printers.PrintResult:  # ok-float: seconds
    till = _till(s, till_code)
    uri, columns = till.printer_uri, till.paper_columns
    s.commit()
    return printers.send(uri, printers.test_page(columns), timeout=timeout)


__test__ = False

__all__ = ["ReceiptPrint", "print_receipt", "print_refund_receipt", "open_drawer", "set_printer", "test_print"]
