"""The finance staff's queue of electronic invoice requests (filed from the public receipt page):
mark a request issued with its invoice number, or rejected with a reason. Both are audited by
pos.hall.invoices. The hall's finance staff are its managers: every view requires("dashboard").
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from inventory.web import Page, get_session, page_arg
from pos.hall import invoices
from pos.core.errors import PosError
from pos.models import InvoiceRequest, InvoiceStatus, Sale, User
from pos.core.web import client_ip, requires

bp = Blueprint("invoices", __name__, url_prefix="/invoices")

PER_PAGE = 30


def _status_arg() -> InvoiceStatus | None:
    value = request.args.get("status", InvoiceStatus.REQUESTED.value)
    if value == "all":
        return None
    try:
        return InvoiceStatus(value)
    except ValueError:
        return InvoiceStatus.REQUESTED


@bp.route("")
@requires("dashboard")
def index():
    s = get_session()
    status = _status_arg()
    where = [] if status is None else [InvoiceRequest.status == status]
    total = s.scalar(select(func.count()).select_from(InvoiceRequest).where(*where))
    page_no = page_arg()
    # the oldest open request first: it has waited longest; handled ones newest first
    order = InvoiceRequest.id.asc() if status == InvoiceStatus.REQUESTED else InvoiceRequest.id.desc()
    rows = s.execute(
        select(InvoiceRequest, Sale.receipt_no, Sale.total_fen, User.display_name)
        .join(Sale, Sale.id == InvoiceRequest.sale_id)
        .outerjoin(User, User.id == InvoiceRequest.handled_by_id)
        .where(*where).order_by(order).limit(PER_PAGE).offset((page_no - 1) * PER_PAGE)
    ).all()
    open_count = s.scalar(select(func.count()).select_from(InvoiceRequest)
                          .where(InvoiceRequest.status == InvoiceStatus.REQUESTED))
    return render_template("pos/hall/invoices.html", page=Page(items=rows, total=total, page=page_no, per_page=PER_PAGE),
                           status=status.value if status else "all", open_count=open_count,
                           status_label=invoices.status_label, statuses=list(InvoiceStatus))


def _mark(mark, request_id: int, done: str, **values):
    """Mark a request (invoices.mark_issued / mark_rejected) and go back to the queue, with the
    refusal's message when the rules refuse."""
    s = get_session()
    try:
        mark(s, request_id, user_id=current_user.id, ip=client_ip(), **values)
    except PosError as exc:
        s.rollback()
        flash(str(exc), "error")
    else:
        flash(done, "success")
    return redirect(url_for("invoices.index"))


@bp.route("/<int:request_id>/issue", methods=["POST"])
@requires("dashboard")
def issue(request_id: int):
    return _mark(invoices.mark_issued, request_id, _("已标记为已开具"), invoice_no=request.form.get("invoice_no", ""))


@bp.route("/<int:request_id>/reject", methods=["POST"])
@requires("dashboard")
def reject(request_id: int):
    return _mark(invoices.mark_rejected, request_id, _("已驳回该发票申请"), reason=request.form.get("note", ""))
