"""The public receipt page a customer reaches from the receipt's QR code: no login, a phone-sized
page with the items, the traceability of each certified item (supplier, origin village / township
/ county, certificate number — from the sale line's snapshot, never from today's catalogue), the
totals, and a form to request an electronic invoice.

The URL carries an HMAC of the receipt number (pos.sales.links); a missing or wrong token gets
the same 404 as a number that does not exist, so the page never tells whether a number exists.
These two views are the only pages without ``requires`` besides the login (tests/accounts/test_roles.py).
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, StringField
from wtforms.validators import Length

from pos.hall import invoices
from pos.core.db import get_session
from pos.core.errors import NotFound
from pos.models import SaleLine
from pos.sales.links import check_receipt_token
from pos.sales.reading import get_sale, payment_label, sale_view
from pos.hall.settings import hall_settings
from pos.core.web import client_ip

bp = Blueprint("public", __name__)


def mask_email(email: str | None) -> str:
    """An address as the public page shows it: the first character of the name and the whole
    domain, z***@qq.com. Anyone holding the receipt's link sees the page, so the requester's
    address itself is never on it."""
    if not email:
        return ""
    name, at, domain = email.strip().rpartition("@")
    if not at:  # not an address at all: show nothing of it
        return "***"
    return f"{name[:1]}***@{domain}"


class InvoiceRequestForm(FlaskForm):
    title = StringField(_l("发票抬头"), validators=[Length(max=invoices.TITLE_MAX)])
    tax_id = StringField(_l("纳税人识别号（个人可不填）"), validators=[Length(max=40)])
    email = EmailField(_l("接收发票的电子邮箱"), validators=[Length(max=invoices.EMAIL_MAX)])


def _checked_sale(receipt_no: str):
    """The sale of a correctly signed link, else 404 — the same 404 whether or not it exists."""
    if not check_receipt_token(current_app.config["SECRET_KEY"], receipt_no, request.args.get("t")):
        abort(404)
    try:
        return get_sale(get_session(), receipt_no)
    except NotFound:
        abort(404)


def _traceability(s, sale_id: int) -> dict[int, dict]:
    """line id → the snapshot of origin kept on the sale line."""
    rows = s.execute(select(SaleLine.id, SaleLine.supplier_name, SaleLine.origin_village, SaleLine.origin_township,
                            SaleLine.origin_county, SaleLine.certificate_no)
                     .where(SaleLine.sale_id == sale_id)).all()
    return {r.id: {"supplier": r.supplier_name, "village": r.origin_village, "township": r.origin_township,
                   "county": r.origin_county, "certificate_no": r.certificate_no} for r in rows}


def _render(sale, form: InvoiceRequestForm, status: int = 200):
    s = get_session()
    view = sale_view(s, sale.id)
    trace = _traceability(s, sale.id)
    for line in view["lines"]:
        line["trace"] = trace.get(line["id"], {})
    return render_template(
        "pos/public_receipt.html", sale=view, form=form, token=request.args.get("t", ""),
        invoice=invoices.latest_request(s, sale.id), status_label=invoices.status_label,
        method_label=lambda m: payment_label(m), hall=hall_settings(s), mask_email=mask_email,
    ), status


@bp.route("/r/<receipt_no>")
def receipt(receipt_no: str):
    sale = _checked_sale(receipt_no)
    return _render(sale, InvoiceRequestForm())


@bp.route("/r/<receipt_no>/invoice", methods=["POST"])
def request_invoice(receipt_no: str):
    sale = _checked_sale(receipt_no)
    form = InvoiceRequestForm()
    if form.validate_on_submit():
        try:
            filed = invoices.file_request(get_session(), sale_id=sale.id, title=form.title.data,
                                          tax_id=form.tax_id.data, email=form.email.data, ip=client_ip())
        except invoices.InvoiceError as exc:
            field = getattr(form, exc.field or "", None)
            if field is not None:
                field.errors = [*field.errors, str(exc)]
            else:
                flash(str(exc), "error")
            return _render(sale, form, 400)
        if filed.created:
            flash(_("发票申请已提交，开具后将发送到 %(email)s", email=mask_email(filed.request.email)), "success")
        else:
            flash(_("此小票已有发票申请，无需重复提交"), "info")
        return redirect(url_for("public.receipt", receipt_no=receipt_no, t=request.args.get("t")), 303)
    return _render(sale, form, 400)
