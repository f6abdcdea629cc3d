"""Electronic invoice requests (电子发票申请): filed by a customer from the public receipt page,
handled by the hall's finance staff (issued with the invoice number, or rejected with a reason).

Plain functions on a Session and plain values; the views only parse and render. One open request
per receipt: a second request while the first is open returns the first (the database backs this
with a partial unique index).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventory.credit_codes import normalise_credit_code
from inventory.errors import ValidationError
from inventory.localtime import utcnow
from pos.core.audit import record
from pos.core.errors import Conflict, NotFound, PosError
from pos.models import InvoiceRequest, InvoiceStatus, Sale, SaleStatus

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
TITLE_MAX = 120
EMAIL_MAX = 254
INVOICE_NO_MAX = 40


class InvoiceError(PosError):
    """A request or a decision the rules refuse; ``field`` names the form field at fault."""


@dataclass(frozen=True)
class Filed:
    request: InvoiceRequest
    created: bool  # False: an earlier request of this receipt is still open, or already issued


def clean_tax_id(raw: Optional[str]) -> Optional[str]:
    """A unified social credit code (统一社会信用代码) in its compact upper-case form, or None when
    empty (individuals need none). Raises InvoiceError when the check digit is wrong."""
    try:
        return normalise_credit_code(raw, field="tax_id")
    except ValidationError:
        raise InvoiceError(_l("纳税人识别号不是有效的统一社会信用代码"), field="tax_id") from None


def clean_request(title: Optional[str], tax_id: Optional[str], email: Optional[str]) -> tuple[str, Optional[str], str]:
    title = (title or "").strip()
    if not title:
        raise InvoiceError(_l("请填写发票抬头"), field="title")
    if len(title) > TITLE_MAX:
        raise InvoiceError(_l("发票抬头太长"), field="title")
    email = (email or "").strip()
    if not EMAIL.match(email) or len(email) > EMAIL_MAX:
        raise InvoiceError(_l("请填写有效的电子邮箱"), field="email")
    return title, clean_tax_id(tax_id), email


def latest_request(s: Session, sale_id: int) -> Optional[InvoiceRequest]:
    return s.scalars(select(InvoiceRequest).where(InvoiceRequest.sale_id == sale_id)
                     .order_by(InvoiceRequest.id.desc()).limit(1)).first()


def file_request(s: Session, *, sale_id: int, title: str, tax_id: Optional[str], email: str,
                 ip: Optional[str] = None) -> Filed:
    """File a request for a sale. While a request is open (or once one is issued) a second one
    files nothing and returns the first; after a rejection the customer may ask again."""
    sale = s.get(Sale, sale_id)
    if sale is None:
        raise NotFound(_l("找不到该销售"))
    if sale.status != SaleStatus.COMPLETED:
        raise InvoiceError(_l("该小票已作废，不能开具发票"))
    title, tax_id, email = clean_request(title, tax_id, email)
    existing = latest_request(s, sale_id)
    if existing is not None and existing.status != InvoiceStatus.REJECTED:
        return Filed(existing, False)
    request = InvoiceRequest(sale_id=sale_id, title=title, tax_id=tax_id, email=email,
                             status=InvoiceStatus.REQUESTED, created_at=utcnow())
    try:
        with s.begin_nested():
            s.add(request)
            s.flush()
    except IntegrityError:  # another request of the same receipt won the race
        return Filed(latest_request(s, sale_id), False)
    record(s, user_id=None, action="invoice.request", entity="invoice_request", entity_id=request.id,
           after={"receipt_no": sale.receipt_no, "title": title, "tax_id": tax_id, "email": email}, ip=ip)
    return Filed(request, True)


def _open_request(s: Session, request_id: int) -> InvoiceRequest:
    # integer keys are 32-bit on PostgreSQL: a larger id from a URL is nobody's request
    plausible = isinstance(request_id, int) and 0 < request_id < 2**31
    request = s.get(InvoiceRequest, request_id) if plausible else None
    if request is None:
        raise NotFound(_l("找不到该发票申请"))
    if request.status != InvoiceStatus.REQUESTED:
        raise Conflict(_l("该发票申请已处理"))
    return request


def _handle(s: Session, request: InvoiceRequest, status: InvoiceStatus, *, user_id: int,
            invoice_no: Optional[str], note: Optional[str], ip: Optional[str]) -> InvoiceRequest:
    before = {"status": request.status.value}
    request.status = status
    request.invoice_no = invoice_no
    request.note = note
    request.handled_by_id = user_id
    request.handled_at = utcnow()
    s.flush()
    record(s, user_id=user_id, action=f"invoice.{status.value}", entity="invoice_request", entity_id=request.id,
           before=before, after={"status": status.value, "invoice_no": invoice_no, "note": note}, ip=ip)
    return request


def mark_issued(s: Session, request_id: int, *, invoice_no: str, user_id: int, ip: Optional[str] = None) -> InvoiceRequest:
    request = _open_request(s, request_id)
    invoice_no = (invoice_no or "").strip()
    if not invoice_no:
        raise InvoiceError(_l("请填写发票号码"), field="invoice_no")
    if len(invoice_no) > INVOICE_NO_MAX:
        raise InvoiceError(_l("发票号码太长"), field="invoice_no")
    return _handle(s, request, InvoiceStatus.ISSUED, user_id=user_id, invoice_no=invoice_no, note=None, ip=ip)


def mark_rejected(s: Session, request_id: int, *, reason: str, user_id: int, ip: Optional[str] = None) -> InvoiceRequest:
    request = _open_request(s, request_id)
    reason = (reason or "").strip()
    if not reason:
        raise InvoiceError(_l("请填写驳回原因"), field="note")
    return _handle(s, request, InvoiceStatus.REJECTED, user_id=user_id, invoice_no=None, note=reason, ip=ip)


STATUS_LABELS = {
    InvoiceStatus.REQUESTED: _l("待开具"),
    InvoiceStatus.ISSUED: _l("已开具"),
    InvoiceStatus.REJECTED: _l("已驳回"),
}


def status_label(status) -> str:
    return str(STATUS_LABELS[InvoiceStatus(getattr(status, "value", status))])


__all__ = ["InvoiceError", "Filed", "clean_tax_id", "clean_request", "latest_request", "file_request",
           "mark_issued", "mark_rejected", "status_label", "STATUS_LABELS"]
