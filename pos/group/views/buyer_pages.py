"""The buyer organisations' pages: the list, a buyer's form, a buyer's page with its orders and its
agreed prices.
"""
from __future__ import annotations

from typing import Optional

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, TextAreaField

from inventory.models import Product
from inventory.money import parse_yuan
from inventory.stock_forms import StringField, clean_text, find_product, form_errors
from inventory.web import get_session
from pos.group import buyers as buyer_service
from pos.group import documents
from pos.core.errors import NotFound, PosError
from pos.core.forms import choice
from pos.group.models import Buyer
from pos.models import BuyerType
from pos.core.web import requires
from pos.group.views import bp
from pos.group.views.common import (
    MAX_ID, PER_PAGE, REFUSALS, attach_refusal, current_actor, enum_value, id_or_404, refuse,
)
from pos.group.labels import BUYER_TYPE_LABELS


# --- buyers ---------------------------------------------------------------------------------------


class BuyerForm(FlaskForm):
    name = StringField(_l("单位名称"))
    buyer_type = SelectField(_l("单位类型"), choices=[], validate_choice=False)
    uscc = StringField(_l("统一社会信用代码"))
    town = StringField(_l("镇街"))
    address = StringField(_l("地址（默认送货地址）"))
    contact_name = StringField(_l("联系人"))
    contact_phone = StringField(_l("联系电话"))
    invoice_title = StringField(_l("发票抬头"))
    tax_id = StringField(_l("纳税人识别号"))
    note = TextAreaField(_l("备注"), filters=[lambda v: None if v is None else str(v).replace("\x00", "")])
    active = BooleanField(_l("启用（可以下单）"), default=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buyer_type.choices = [choice("", _("请选择"))] + [
            choice(t.value, BUYER_TYPE_LABELS[t]) for t in BuyerType]

    def values(self) -> buyer_service.BuyerIn:
        def text(field):
            return clean_text(field.data).strip() or None

        return buyer_service.BuyerIn(
            name=clean_text(self.name.data).strip(), buyer_type=(self.buyer_type.data or "").strip(),
            uscc=text(self.uscc), town=text(self.town), address=text(self.address),
            contact_name=text(self.contact_name), contact_phone=text(self.contact_phone),
            invoice_title=text(self.invoice_title), tax_id=text(self.tax_id),
            note=(self.note.data or "").strip() or None, active=bool(self.active.data))

    def fill_from(self, buyer: Buyer) -> None:
        for name in ("name", "uscc", "town", "address", "contact_name", "contact_phone", "invoice_title", "tax_id",
                     "note"):
            getattr(self, name).data = getattr(buyer, name) or ""
        self.buyer_type.data = enum_value(buyer.buyer_type)
        self.active.data = bool(buyer.active)


def _get_buyer(buyer_id: int) -> Buyer:
    try:
        return buyer_service.get_buyer(get_session(), id_or_404(buyer_id))
    except NotFound:
        abort(404)


@bp.route("/buyers")
@requires("dashboard")
def buyers():
    s = get_session()
    q = clean_text(request.args.get("q", "")).strip()[:60]
    buyer_type = request.args.get("type", "").strip()
    if buyer_type not in {t.value for t in BuyerType}:
        buyer_type = ""
    rows = buyer_service.list_buyers(s, q=q or None, buyer_type=buyer_type or None, include_inactive=True)
    return render_template("pos/group/buyers.html", buyers=rows, q=q, buyer_type=buyer_type)


@bp.route("/buyers/new", methods=["GET", "POST"])
@requires("dashboard")
def buyer_new():
    return _buyer_form(None)


@bp.route("/buyers/<int:buyer_id>/edit", methods=["GET", "POST"])
@requires("dashboard")
def buyer_edit(buyer_id: int):
    return _buyer_form(_get_buyer(buyer_id))


def _buyer_form(buyer: Optional[Buyer]):
    s = get_session()
    form = BuyerForm()
    if request.method == "GET":
        if buyer is not None:
            form.fill_from(buyer)
        return render_template("pos/group/buyer_form.html", form=form, buyer=buyer)
    if not form.validate():  # only the CSRF token can fail here; CSRFProtect answers first
        return refuse("pos/group/buyer_form.html", form_errors(form) or [_("请重试")], form=form, buyer=buyer)
    try:
        if buyer is None:
            saved = buyer_service.create_buyer(s, form.values(), actor_id=current_actor())
        else:
            saved = buyer_service.update_buyer(s, buyer.id, form.values(), actor_id=current_actor())
        s.flush()
    except REFUSALS as exc:
        attach_refusal(form, exc)
        if buyer is not None:
            s.rollback()
            buyer = _get_buyer(buyer.id)
        return refuse("pos/group/buyer_form.html", exc, form=form, buyer=buyer)
    flash(_("买方单位 %(name)s 已保存", name=saved.name), "success")
    return redirect(url_for("group.buyer", buyer_id=saved.id))


@bp.route("/buyers/<int:buyer_id>")
@requires("dashboard")
def buyer(buyer_id: int):
    return _buyer_page(_get_buyer(buyer_id))


def _buyer_page(buyer: Buyer, status: int = 200, price_code: str = "", price_text: str = "",
                price_error: Optional[str] = None):
    s = get_session()
    prices = buyer_service.buyer_prices(s, buyer.id)
    rows, total = documents.list_orders(s, buyer_id=buyer.id, page=1, per_page=PER_PAGE)
    return render_template("pos/group/buyer.html", buyer=buyer, prices=prices, orders=rows, orders_total=total,
                           price_code=price_code, price_text=price_text, price_error=price_error), status


@bp.route("/buyers/<int:buyer_id>/prices", methods=["POST"])
@requires("dashboard")
def buyer_price(buyer_id: int):
    """Agree a price with the buyer for a product (typed as code or barcode), change it, or drop
    it (the remove button, or an empty price)."""
    s = get_session()
    buyer = _get_buyer(buyer_id)
    code = clean_text(request.form.get("product", "")).strip()
    price_text = clean_text(request.form.get("price", "")).strip()
    remove = request.form.get("remove") == "1"
    try:
        product_id = _product_id_arg(s, request.form.get("product_id"), code)
        price_fen = None if remove or not price_text else parse_yuan(price_text)
        if price_fen is None and not remove:
            raise PosError(_("请输入协议价格（元）"), "price")
        buyer_service.set_buyer_price(s, buyer.id, product_id=product_id, unit_price_fen=price_fen, actor_id=current_actor())
        s.flush()
        product = s.get(Product, product_id)
    except REFUSALS as exc:
        s.rollback()
        flash(str(exc), "error")
        return _buyer_page(_get_buyer(buyer_id), 422, price_code=code, price_text=price_text, price_error=str(exc))
    if price_fen is None:
        flash(_("已删除 %(name)s 的协议价，按目录价供货", name=product.name), "success")
    else:
        flash(_("%(name)s 的协议价已保存", name=product.name), "success")
    return redirect(url_for("group.buyer", buyer_id=buyer.id) + "#prices")


def _product_id_arg(s, product_id_text: Optional[str], code: str) -> int:
    """The product of a price row's own form (its id), else the one a typed code or barcode means."""
    if product_id_text:
        try:
            product_id = int(product_id_text)
        except ValueError:
            product_id = 0
        if not 0 < product_id <= MAX_ID or s.get(Product, product_id) is None:
            raise PosError(_("商品不存在"), "product")
        return product_id
    return find_product(s, code).id
