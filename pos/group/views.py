"""The manager's group-purchase pages (团购): buyer organisations and their agreed prices, orders
(entered by hand or imported from the buyer's spreadsheet), the order page with its actions
(confirm, pick, deliver, close, cancel, return, payments), the printable order confirmation and
delivery note (送货单), and the open balances per buyer.

Thin: parse what a person typed, call pos.group.buyers / pos.group.orders / pos.group.order_import, render.
Every figure comes from those modules; this one adds none of its own. A mistake is answered with
the page again, a Chinese message (at the top and on the field) and status 422, and the request's
session is rolled back, so nothing is written. Every action is a POST with the CSRF token
(CSRFProtect guards every form) and ends in a redirect (post/redirect/get). Managers and admins
only: every view requires("dashboard").
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any, Mapping, Optional

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, FieldList, Form, FormField, HiddenField, SelectField, TextAreaField

from inventory.errors import InventoryError
from inventory.localtime import HALL_TZ, local_today, parse_local_date, to_local, utcnow
from inventory.models import Product, is_weighed
from inventory.money import AmountError, format_plain_yuan, format_qty, format_yuan, parse_qty_milli, parse_yuan
from inventory.stock_forms import StringField, clean_text, find_product, form_errors, parse_qty, product_hint
from inventory.web import Page, get_session, page_arg
from pos.group import buyers as buyer_service
from pos.group import orders
from pos.core.errors import NotFound, PosError
from pos.core.forms import choice
from pos.group.models import Buyer, GroupOrder, GroupOrderStatus
from pos.models import BuyerType, Sale
from pos.sales.reading import payment_label
from pos.core.web import requires

bp = Blueprint("group", __name__, url_prefix="/group")

PER_PAGE = 30
MAX_ID = 2**31 - 1  # integer keys are 32-bit on PostgreSQL
MAX_REASON = 200
MAX_REF = 80
_ZERO = re.compile(r"0*(\.0*)?")

# What a domain function or a parser may refuse with; str() is the message for the person.
REFUSALS = (PosError, InventoryError, AmountError)

# The actions of the order page, in the order their forms are shown.
ACTIONS = ("confirm", "pick", "deliver", "close", "cancel", "return", "pay", "repay")


@bp.context_processor
def _helpers():
    return {
        "group_status_label": _status_label,
        "buyer_type_label": buyer_service.buyer_type_label,
        "payment_label": payment_label,
        "weighed": _weighed,
        "unit_label": _unit_label,
        "plain_yuan": format_plain_yuan,
        "STATUSES": list(GroupOrderStatus),
        "BUYER_TYPES": list(BuyerType),
    }


def _value(enum_or_text):
    return getattr(enum_or_text, "value", enum_or_text)


def _status_label(status) -> str:
    try:
        return str(orders.STATUS_LABELS[GroupOrderStatus(_value(status))])
    except (ValueError, KeyError):
        return str(_value(status))


def _weighed(line: Mapping) -> bool:
    """A line of order_view / delivery_note: kept in kg with three decimals?"""
    return is_weighed(_value(line.get("unit")), line.get("sold_by_weight"))


def _unit_label(unit) -> str:
    return "kg" if _value(unit) == "kg" else _("件")


def _actor() -> int:
    return current_user.id


def _id_or_404(ident: int) -> int:
    if not 0 < ident <= MAX_ID:
        abort(404)
    return ident


def _refuse(template: str, messages, status: int = 422, **context):
    """The page again with the messages, and nothing of this request written."""
    get_session().rollback()
    if isinstance(messages, (str, Exception)) or not hasattr(messages, "__iter__"):
        messages = [messages]
    for message in dict.fromkeys(str(m) for m in messages if m):
        flash(message, "error")
    return render_template(template, **context), status


def _add_error(field, message) -> None:
    if not isinstance(field.errors, list):
        field.errors = list(field.errors or [])
    field.errors.append(str(message))


def _attach(form, exc: PosError) -> None:
    """A domain refusal on the form field it names (``PosError.field``), when the form has it."""
    name = getattr(exc, "field", None)
    if name and name in getattr(form, "_fields", {}):
        _add_error(form[name], exc)


def _text(field, limit: int, message) -> Optional[str]:
    value = clean_text(field.data).strip()
    if len(value) > limit:
        _add_error(field, message)
        raise ValueError(value)
    return value or None


def _new_client_id() -> str:
    return uuid.uuid4().hex


def _client_id(text: Optional[str]) -> Optional[str]:
    """A client-made id as sent back by a form: 8–64 letters, digits or dashes, else none."""
    text = (text or "").strip()
    if 8 <= len(text) <= 64 and all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in text):
        return text
    return None


def _parse_local_datetime(text: str) -> dt.datetime:
    """2026-11-26T14:30 as a datetime-local input sends it, in the hall's time zone."""
    text = (text or "").strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PosError(_("送货时间格式应为 YYYY-MM-DD HH:MM"), "delivered_at") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=HALL_TZ)
    return moment


def _now_local_input() -> str:
    return to_local(utcnow()).strftime("%Y-%m-%dT%H:%M")


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
            choice(t.value, buyer_service.BUYER_TYPE_LABELS[t]) for t in BuyerType]

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
        self.buyer_type.data = _value(buyer.buyer_type)
        self.active.data = bool(buyer.active)


def _get_buyer(buyer_id: int) -> Buyer:
    try:
        return buyer_service.get_buyer(get_session(), _id_or_404(buyer_id))
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
        return _refuse("pos/group/buyer_form.html", form_errors(form) or [_("请重试")], form=form, buyer=buyer)
    try:
        if buyer is None:
            saved = buyer_service.create_buyer(s, form.values(), actor_id=_actor())
        else:
            saved = buyer_service.update_buyer(s, buyer.id, form.values(), actor_id=_actor())
        s.flush()
    except REFUSALS as exc:
        _attach(form, exc)
        if buyer is not None:
            s.rollback()
            buyer = _get_buyer(buyer.id)
        return _refuse("pos/group/buyer_form.html", exc, form=form, buyer=buyer)
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
    rows, total = orders.list_orders(s, buyer_id=buyer.id, page=1, per_page=PER_PAGE)
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
        buyer_service.set_buyer_price(s, buyer.id, product_id=product_id, unit_price_fen=price_fen, actor_id=_actor())
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


# --- orders: the list ----------------------------------------------------------------------------


@bp.route("")
@requires("dashboard")
def index():
    s = get_session()
    status = request.args.get("status", "").strip()
    if status not in {st.value for st in GroupOrderStatus}:
        status = ""
    buyer_id = request.args.get("buyer", "").strip()
    buyer_id = int(buyer_id) if buyer_id.isdigit() and 0 < int(buyer_id) <= MAX_ID else None
    q = clean_text(request.args.get("q", "")).strip()[:60]
    due = "1" if request.args.get("due") == "1" else ""   # the dashboard's "to deliver by today"
    page_no = page_arg()
    rows, total = orders.list_orders(s, status=status or None, buyer_id=buyer_id, q=q or None, page=page_no,
                                     per_page=PER_PAGE, due_by=local_today() if due else None)
    page = Page(items=rows, total=total, page=page_no, per_page=PER_PAGE)
    all_buyers = buyer_service.list_buyers(s, include_inactive=True)
    filters = {k: v for k, v in (("status", status), ("buyer", buyer_id), ("q", q), ("due", due)) if v}
    return render_template("pos/group/orders.html", page=page, status=status, buyer_id=buyer_id, q=q,
                           buyers=all_buyers, filters=filters, due=due)


# --- orders: new, edit ---------------------------------------------------------------------------


class OrderLineForm(Form):
    product = StringField(_l("商品"))
    qty = StringField(_l("数量"))
    price = StringField(_l("协议单价（元）"))


class OrderForm(FlaskForm):
    client_order_id = HiddenField(filters=[clean_text])
    buyer_id = SelectField(_l("买方单位"), choices=[], validate_choice=False)
    delivery_date = StringField(_l("送货日期"))
    delivery_address = StringField(_l("送货地址"))
    contact = StringField(_l("收货联系人及电话"))
    note = StringField(_l("备注"))
    lines = FieldList(FormField(OrderLineForm), min_entries=6, max_entries=200)

    def __init__(self, session, *args, current_buyer: Optional[Buyer] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        active = buyer_service.list_buyers(session)
        if current_buyer is not None and current_buyer not in active:
            active.append(current_buyer)  # a draft of a buyer made inactive since
        self.buyer_choices = active
        self.buyer_id.choices = [choice("", _("请选择买方单位"))] + [
            choice(str(b.id), f"{b.name}（{buyer_service.buyer_type_label(b.buyer_type)}）") for b in active]
        self.values: dict = {}
        self.extra_errors: list[str] = []

    def _rows(self):
        for entry in self.lines.entries:
            row = entry.form
            if any(clean_text(getattr(row, name).data).strip() for name in ("product", "qty", "price")):
                yield row

    def parse(self) -> bool:
        """Fill ``self.values`` with what create_order / update_order take; False (with messages
        on the fields) when anything is wrong."""
        if not self.validate():
            return False
        ok = True
        buyer_text = (self.buyer_id.data or "").strip()
        buyer = next((b for b in self.buyer_choices if str(b.id) == buyer_text), None)
        if buyer is None:
            _add_error(self.buyer_id, _("请选择买方单位"))
            ok = False
        date_text = clean_text(self.delivery_date.data).strip()
        delivery_date = None
        if not date_text:
            _add_error(self.delivery_date, _("请填写送货日期"))
            ok = False
        else:
            try:
                delivery_date = parse_local_date(date_text)
            except ValueError:
                _add_error(self.delivery_date, _("日期格式应为 YYYY-MM-DD：%(text)s", text=date_text[:20]))
                ok = False
        head = {}
        for name, limit, message in (("delivery_address", 200, _("送货地址最多 200 个字")),
                                     ("contact", 80, _("联系人最多 80 个字")),
                                     ("note", 500, _("备注最多 500 个字"))):
            try:
                head[name] = _text(getattr(self, name), limit, message)
            except ValueError:
                ok = False
        lines = []
        seen: dict[int, Any] = {}
        for row in self._rows():
            product = qty = None
            line_ok = True
            try:
                product = find_product(self.session, row.product.data)
            except InventoryError as exc:
                _add_error(row.product, exc)
                line_ok = False
            if product is not None:
                row.hint_text = product_hint(product)
                try:
                    qty = parse_qty(row.qty.data, product)
                except AmountError as exc:
                    _add_error(row.qty, exc)
                    line_ok = False
                if product.id in seen:
                    _add_error(row.product, _("%(name)s 已在上面一行，请合并为一行", name=product.name))
                    line_ok = False
                seen[product.id] = row
            elif clean_text(row.qty.data).strip():
                try:
                    parse_qty_milli(clean_text(row.qty.data).strip(), by_weight=True)
                except AmountError as exc:
                    _add_error(row.qty, exc)
            price_fen = None
            price_text = clean_text(row.price.data).strip()
            if price_text:
                try:
                    price_fen = parse_yuan(price_text)
                except AmountError as exc:
                    _add_error(row.price, exc)
                    line_ok = False
            if line_ok and product is not None and qty is not None:
                lines.append(orders.OrderLineIn(product_id=product.id, qty_milli=qty, unit_price_fen=price_fen))
            ok = ok and line_ok
        if ok and not lines:
            self.extra_errors.append(_("请至少填写一行商品"))
            ok = False
        if ok:  # an empty address or contact: the buyer's (create_order fills them in)
            self.values = {"buyer_id": buyer.id, "lines": lines, "delivery_date": delivery_date, **head}
        return ok

    def fill_from(self, order: GroupOrder) -> None:
        """Show a draft's lines for editing; an agreed or list price is left empty (it is looked
        up again when saved), a price typed by hand is shown."""
        self.buyer_id.data = str(order.buyer_id)
        self.delivery_date.data = order.delivery_date.isoformat()
        self.delivery_address.data = order.delivery_address or ""
        self.contact.data = order.contact or ""
        self.note.data = order.note or ""
        while len(self.lines.entries):
            self.lines.pop_entry()
        for line in order.lines:
            product = self.session.get(Product, line.product_id)
            self.lines.append_entry()
            row = self.lines.entries[-1].form
            row.product.data = product.sku
            row.hint_text = product_hint(product)
            row.qty.data = format_qty(line.qty_milli, by_weight=product.weighed)
            row.price.data = format_plain_yuan(line.unit_price_fen) if line.price_source == "manual" else ""
        for _i in range(max(2, 6 - len(order.lines))):
            self.lines.append_entry()

    def preset(self, buyer: Optional[Buyer]) -> None:
        self.client_order_id.data = _new_client_id()
        self.delivery_date.data = (local_today() + dt.timedelta(days=1)).isoformat()
        if buyer is not None:
            self.buyer_id.data = str(buyer.id)
            self.delivery_address.data = buyer.address or ""
            self.contact.data = " ".join(x for x in (buyer.contact_name, buyer.contact_phone) if x)


def _buyer_arg(s) -> Optional[Buyer]:
    text = request.args.get("buyer", "").strip()
    if text.isdigit() and 0 < int(text) <= MAX_ID:
        found = s.get(Buyer, int(text))
        if found is not None and found.active:
            return found
    return None


@bp.route("/new", methods=["GET", "POST"])
@requires("dashboard")
def order_new():
    s = get_session()
    form = OrderForm(s)
    if request.method == "GET":
        form.preset(_buyer_arg(s))
        return render_template("pos/group/order_form.html", form=form, order=None)
    if not form.parse():
        return _refuse("pos/group/order_form.html", form_errors(form), form=form, order=None)
    try:
        order = orders.create_order(s, **form.values, actor_id=_actor(),
                                    client_order_id=_client_id(form.client_order_id.data))
        s.flush()
    except REFUSALS as exc:
        _attach_line_error(form, exc)
        return _refuse("pos/group/order_form.html", exc, form=form, order=None)
    flash(_("订单 %(no)s 已保存为草稿，核对无误后请确认订单。", no=order.order_no), "success")
    return redirect(url_for("group.order", order_id=order.id))


def _attach_line_error(form: OrderForm, exc) -> None:
    """A refusal naming ``lines-N-…`` goes on that line's row; others on the head field."""
    name = getattr(exc, "field", None) or ""
    if name.startswith("lines-"):
        parts = name.split("-", 2)
        rows = list(form._rows())
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(rows):
            row = rows[int(parts[1])]
            sub = {"product_id": "product", "qty_milli": "qty", "unit_price_fen": "price"}.get(parts[2], parts[2])
            if hasattr(row, sub):
                _add_error(getattr(row, sub), exc)
        return
    _attach(form, exc)


def _get_order(order_id: int) -> GroupOrder:
    order = get_session().get(GroupOrder, _id_or_404(order_id))
    if order is None:
        abort(404)
    return order


@bp.route("/<int:order_id>/edit", methods=["GET", "POST"])
@requires("dashboard")
def order_edit(order_id: int):
    s = get_session()
    order = _get_order(order_id)
    if _value(order.status) != GroupOrderStatus.DRAFT.value:
        flash(_("只有草稿订单可以修改"), "error")
        return redirect(url_for("group.order", order_id=order.id))
    form = OrderForm(s, current_buyer=order.buyer)
    if request.method == "GET":
        form.fill_from(order)
        return render_template("pos/group/order_form.html", form=form, order=order)
    if not form.parse():
        return _refuse("pos/group/order_form.html", form_errors(form), form=form, order=_get_order(order_id))
    values = dict(form.values)
    if values.pop("buyer_id") != order.buyer_id:
        _add_error(form.buyer_id, _("草稿订单不能更换买方单位；请取消后重新下单"))
        return _refuse("pos/group/order_form.html", form_errors(form), form=form, order=_get_order(order_id))
    try:
        orders.update_order(s, order.id, **values, actor_id=_actor())
        s.flush()
    except REFUSALS as exc:
        _attach_line_error(form, exc)
        return _refuse("pos/group/order_form.html", exc, form=form, order=_get_order(order_id))
    flash(_("草稿已保存"), "success")
    return redirect(url_for("group.order", order_id=order.id))


# --- orders: import from the buyer's spreadsheet -------------------------------------------------


class ImportForm(FlaskForm):
    buyer_id = SelectField(_l("买方单位"), choices=[], validate_choice=False)
    file = FileField(_l("订货表（XLSX 或 CSV）"))

    def __init__(self, session, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buyer_choices = buyer_service.list_buyers(session)
        self.buyer_id.choices = [choice("", _("请选择买方单位"))] + [
            choice(str(b.id), f"{b.name}（{buyer_service.buyer_type_label(b.buyer_type)}）") for b in self.buyer_choices]


@bp.route("/import", methods=["GET", "POST"])
@requires("dashboard")
def order_import():
    s = get_session()
    form = ImportForm(s)
    if request.method == "GET":
        buyer = _buyer_arg(s)
        if buyer is not None:
            form.buyer_id.data = str(buyer.id)
        return render_template("pos/group/import.html", form=form, preview=None)
    form.validate()
    buyer = next((b for b in form.buyer_choices if str(b.id) == (form.buyer_id.data or "").strip()), None)
    upload = form.file.data
    if buyer is None:
        _add_error(form.buyer_id, _("请选择买方单位"))
    if upload is None or not getattr(upload, "filename", ""):
        _add_error(form.file, _("请选择要上传的订货表文件"))
    if buyer is None or upload is None or not getattr(upload, "filename", ""):
        return _refuse("pos/group/import.html", form_errors(form), form=form, preview=None)
    from pos.group import order_import as group_import  # written beside this module; imported when used

    filename = upload.filename
    try:
        preview = group_import.parse_order_sheet(s, buyer_id=buyer.id, data=upload.read(), filename=filename)
    except REFUSALS as exc:
        _add_error(form.file, exc)
        return _refuse("pos/group/import.html", exc, form=form, preview=None)
    s.rollback()  # a preview writes nothing
    confirm = _import_confirm_context(s, buyer, preview)
    context = {"form": form, "preview": preview, "filename": filename, "buyer": buyer, "confirm": confirm}
    if not preview.ok:
        if not preview.errors:
            preview.errors.append(_("文件中没有可以导入的商品行"))
        # the problems are listed under the preview, each with its row
        return _refuse("pos/group/import.html", _("订货表中有错误，改正后重新上传；本次没有写入任何内容。"), **context)
    return render_template("pos/group/import.html", **context)


def _import_confirm_context(s, buyer: Buyer, preview) -> dict:
    """What the confirm form carries: the parsed lines (as hidden inputs), a new client order id,
    and the head fields with their defaults."""
    return {
        "client_order_id": _new_client_id(),
        "lines": [{"product_id": line.product_id, "qty_milli": line.qty_milli,
                   "unit_price_fen": "" if line.unit_price_fen is None else line.unit_price_fen}
                  for line in preview.lines],
        "delivery_date": (local_today() + dt.timedelta(days=1)).isoformat(),
        "delivery_address": buyer.address or "",
        "contact": " ".join(x for x in (buyer.contact_name, buyer.contact_phone) if x),
        "note": "",
        "errors": {},
    }


def _int_field(text: Any, *, minimum: int = 0) -> Optional[int]:
    text = str(text or "").strip()
    if not text.isdigit() or len(text) > 12:
        return None
    value = int(text)
    return value if minimum <= value <= MAX_ID else None


@bp.route("/import/confirm", methods=["POST"])
@requires("dashboard")
def order_import_confirm():
    """Create the draft from the previewed lines the confirm form carries back."""
    s = get_session()
    form = request.form
    buyer = s.get(Buyer, _int_field(form.get("buyer_id"), minimum=1) or 0)
    if buyer is None or not buyer.active:
        flash(_("请选择买方单位"), "error")
        return redirect(url_for("group.order_import"))
    lines = []
    index = 0
    while f"lines-{index}-product_id" in form and index < 500:
        product_id = _int_field(form.get(f"lines-{index}-product_id"), minimum=1)
        qty = _int_field(form.get(f"lines-{index}-qty_milli"), minimum=1)
        price_text = (form.get(f"lines-{index}-unit_price_fen") or "").strip()
        price = _int_field(price_text) if price_text else None
        if product_id is None or qty is None or (price_text and price is None):
            flash(_("导入内容已损坏，请重新上传订货表"), "error")
            return redirect(url_for("group.order_import", buyer=buyer.id))
        lines.append(orders.OrderLineIn(product_id=product_id, qty_milli=qty, unit_price_fen=price))
        index += 1
    confirm = {
        "client_order_id": _client_id(form.get("client_order_id")) or _new_client_id(),
        "lines": [{"product_id": l.product_id, "qty_milli": l.qty_milli,
                   "unit_price_fen": "" if l.unit_price_fen is None else l.unit_price_fen} for l in lines],
        "delivery_date": clean_text(form.get("delivery_date", "")).strip(),
        "delivery_address": clean_text(form.get("delivery_address", "")).strip(),
        "contact": clean_text(form.get("contact", "")).strip(),
        "note": clean_text(form.get("note", "")).strip(),
        "errors": {},
    }
    errors = confirm["errors"]
    try:
        delivery_date = parse_local_date(confirm["delivery_date"])
    except ValueError:
        delivery_date = None
        errors["delivery_date"] = _("日期格式应为 YYYY-MM-DD：%(text)s", text=confirm["delivery_date"][:20])
    for name, limit, message in (("delivery_address", 200, _("送货地址最多 200 个字")),
                                 ("contact", 80, _("联系人最多 80 个字")), ("note", 500, _("备注最多 500 个字"))):
        if len(confirm[name]) > limit:
            errors[name] = message
    if not lines:
        errors["lines"] = _("没有可以导入的商品行")
    preview = _ConfirmPreview(s, lines)
    context = {"form": ImportForm(s, formdata=None), "preview": preview, "filename": form.get("filename", ""),
               "buyer": buyer, "confirm": confirm}
    if errors:
        return _refuse("pos/group/import.html", list(errors.values()), **context)
    try:
        order = orders.create_order(
            s, buyer_id=buyer.id, lines=lines, delivery_date=delivery_date,
            delivery_address=confirm["delivery_address"] or None, contact=confirm["contact"] or None,
            note=confirm["note"] or None, actor_id=_actor(), client_order_id=confirm["client_order_id"],
            source="import")
        s.flush()
    except REFUSALS as exc:
        if getattr(exc, "field", None) in ("delivery_date", "delivery_address", "contact", "note"):
            errors[exc.field] = str(exc)
        return _refuse("pos/group/import.html", exc, **context)
    flash(_("已从订货表导入订单 %(no)s（草稿），核对无误后请确认订单。", no=order.order_no), "success")
    return redirect(url_for("group.order", order_id=order.id))


class _ConfirmPreview:
    """The preview table again when the confirm form is refused: the carried lines with their
    products' names (nothing of the file is kept on the server)."""

    def __init__(self, s, lines):
        self.rows = []
        self.lines = lines
        self.errors: list[str] = []
        for n, line in enumerate(lines, start=1):
            product = s.get(Product, line.product_id)
            self.rows.append({"row_no": n, "code": product.sku if product else "", "name": "",
                              "qty_text": format_qty(line.qty_milli, by_weight=product.weighed) if product else "",
                              "price_text": "" if line.unit_price_fen is None else format_plain_yuan(line.unit_price_fen),
                              "product_id": line.product_id, "product_name": product.name if product else "",
                              "qty_milli": line.qty_milli, "unit_price_fen": line.unit_price_fen,
                              "error": None if product else _("商品不存在")})

    @property
    def ok(self) -> bool:
        return bool(self.lines) and all(r["error"] is None for r in self.rows)


# --- one order and its actions -------------------------------------------------------------------


def _order_view(order_id: int) -> dict:
    try:
        return orders.order_view(get_session(), order_id)
    except NotFound:
        abort(404)


def _order_page(order_id: int, status: int = 200, failed: Optional[str] = None, posted: Optional[Mapping] = None):
    view = _order_view(order_id)
    return render_template("pos/group/order.html", **{**view, "actions": set(view["actions"])}, view=view,
                           failed=failed, posted=posted or {}, now_local=_now_local_input(), today=local_today(),
                           client_ids={a: _new_client_id() for a in ("deliver", "return", "pay", "repay")}), status


@bp.route("/<int:order_id>")
@requires("dashboard")
def order(order_id: int):
    return _order_page(_id_or_404(order_id))


def _reason(form: Mapping, *, required_message) -> str:
    reason = clean_text(form.get("reason", "")).strip()
    if not reason:
        raise PosError(required_message, "reason")
    if len(reason) > MAX_REASON:
        raise PosError(_("原因最多 %(n)s 个字", n=MAX_REASON), "reason")
    return reason


def _money(form: Mapping, name: str = "amount") -> int:
    text = clean_text(form.get(name, "")).strip()
    if not text:
        raise PosError(_("请输入金额（元）"), name)
    try:
        fen = parse_yuan(text)
    except AmountError as exc:
        raise PosError(str(exc), name) from None
    if fen <= 0:
        raise PosError(_("金额必须大于零"), name)
    return fen


def _ref(form: Mapping) -> str:
    ref = clean_text(form.get("ref", "")).strip()
    if not ref:
        raise PosError(_("请填写银行转账流水号"), "ref")
    if len(ref) > MAX_REF:
        raise PosError(_("流水号最多 %(n)s 个字", n=MAX_REF), "ref")
    return ref


def _day(form: Mapping, name: str) -> dt.date:
    text = clean_text(form.get(name, "")).strip()
    if not text:
        raise PosError(_("请填写日期"), name)
    try:
        return parse_local_date(text)
    except ValueError:
        raise PosError(_("日期格式应为 YYYY-MM-DD：%(text)s", text=text[:20]), name) from None


def _typed_zero(text: str) -> bool:
    return bool(_ZERO.fullmatch(text)) and text != "."


def _deliver_quantities(view: dict, form: Mapping) -> dict[int, int]:
    """{order_line_id: qty_milli} from the deliver form's per-line inputs (qty-<line id>), in the
    line's unit; an empty or zero input delivers nothing of that line. Whether the quantities can
    be delivered is the domain's to say."""
    quantities: dict[int, int] = {}
    for line in view["lines"]:
        text = clean_text(form.get(f"qty-{line['id']}", "")).strip()
        if not text or _typed_zero(text):
            continue
        try:
            quantities[line["id"]] = parse_qty_milli(text, by_weight=_weighed(line))
        except AmountError as exc:
            raise PosError(_("%(name)s：%(error)s", name=line["name"], error=str(exc)), f"qty-{line['id']}") from None
    return quantities


def _return_lines(view: dict, form: Mapping) -> tuple[str, list[tuple[int, int, bool]]]:
    """The delivery (送货单号) being returned against and its lines (sale_line_id, qty, back to stock)."""
    receipt_no = clean_text(form.get("receipt_no", "")).strip()
    delivery = next((d for d in view["deliveries"] if d["receipt_no"] == receipt_no), None)
    if delivery is None:
        raise PosError(_("请选择要退货的送货单"), "receipt_no")
    out = []
    for line in delivery["lines"]:
        sale_line_id = line["sale_line_id"]
        text = clean_text(form.get(f"qty-{sale_line_id}", "")).strip()
        if not text or _typed_zero(text):
            continue
        try:
            qty = parse_qty_milli(text, by_weight=_weighed(line))
        except AmountError as exc:
            raise PosError(_("%(name)s：%(error)s", name=line["name"], error=str(exc)), f"qty-{sale_line_id}") from None
        out.append((sale_line_id, qty, form.get(f"restock-{sale_line_id}") == "1"))
    if not out:
        raise PosError(_("请至少填写一个商品的退货数量"), "qty")
    return receipt_no, out


@bp.route("/<int:order_id>/<any(confirm, pick, deliver, close, cancel, return, pay, repay):action>", methods=["POST"])
@requires("dashboard")
def order_action(order_id: int, action: str):
    s = get_session()
    order = _get_order(order_id)
    order_no = order.order_no
    form = request.form
    try:
        if action == "confirm":
            orders.confirm_order(s, order.id, actor_id=_actor())
            done = _("订单 %(no)s 已确认，物流基地已预留库存。", no=order_no)
        elif action == "pick":
            orders.pick_order(s, order.id, actor_id=_actor())
            done = _("订单 %(no)s 已拣货出库（先到期先出）。", no=order_no)
        elif action == "deliver":
            view = orders.order_view(s, order.id)
            quantities = _deliver_quantities(view, form)
            at_text = clean_text(form.get("delivered_at", "")).strip()
            delivered_at = _parse_local_datetime(at_text) if at_text else None
            received_by = clean_text(form.get("received_by", "")).strip() or None
            result = orders.deliver(s, order.id, quantities=quantities, delivered_at=delivered_at,
                                    received_by=received_by, actor_id=_actor(),
                                    client_delivery_id=_client_id(form.get("client_id")))
            done = (_("已送货：送货单 %(no)s，金额 %(amount)s。", no=result.receipt_no,
                       amount=format_yuan(result.total_fen)) if result.created
                    else _("这次送货已经登记过（送货单 %(no)s），没有重复记录。", no=result.receipt_no))
        elif action == "close":
            orders.close_remainder(s, order.id, reason=_reason(form, required_message=_("请填写结束原因")),
                                   actor_id=_actor())
            done = _("订单 %(no)s 剩余未送的货品已退回物流基地，订单已结束。", no=order_no)
        elif action == "cancel":
            orders.cancel_order(s, order.id, reason=_reason(form, required_message=_("请填写取消原因")),
                                actor_id=_actor())
            done = _("订单 %(no)s 已取消，预留的库存已释放。", no=order_no)
        elif action == "return":
            view = orders.order_view(s, order.id)
            receipt_no, lines = _return_lines(view, form)
            result = orders.return_goods(s, order.id, receipt_no=receipt_no, lines=lines,
                                         reason=_reason(form, required_message=_("请填写退货原因")), actor_id=_actor(),
                                         client_refund_id=_client_id(form.get("client_id")))
            done = _("已登记退货 %(no)s，金额 %(amount)s。", no=result.refund_no, amount=format_yuan(result.total_fen))
        elif action == "pay":
            amount = _money(form)
            orders.record_payment(s, order.id, amount_fen=amount, ref=_ref(form),
                                  received_on=_day(form, "received_on"), actor_id=_actor(),
                                  note=clean_text(form.get("note", "")).strip()[:200] or None,
                                  client_payment_id=_client_id(form.get("client_id")))
            done = _("已登记收款 %(amount)s。", amount=format_yuan(amount))
        else:  # repay
            amount = _money(form)
            orders.record_repayment(s, order.id, amount_fen=amount, ref=_ref(form), paid_on=_day(form, "paid_on"),
                                    actor_id=_actor(), note=clean_text(form.get("note", "")).strip()[:200] or None,
                                    client_payment_id=_client_id(form.get("client_id")))
            done = _("已登记退还货款 %(amount)s。", amount=format_yuan(amount))
        s.flush()
    except REFUSALS as exc:
        s.rollback()
        flash(str(exc), "error")
        return _order_page(order_id, 422, failed=action, posted=form)
    flash(done, "success")
    return redirect(url_for("group.order", order_id=order_id))


# --- printable pages ------------------------------------------------------------------------------


@bp.route("/<int:order_id>/confirmation")
@requires("dashboard")
def confirmation(order_id: int):
    view = _order_view(_id_or_404(order_id))
    return render_template("pos/group/confirmation.html", **view, view=view, printed_at=_printed_at())


@bp.route("/deliveries/<int:sale_id>")
@requires("dashboard")
def delivery_note(sale_id: int):
    s = get_session()
    _id_or_404(sale_id)
    sale = s.get(Sale, sale_id)
    if sale is None or sale.group_order_id is None:
        abort(404)
    try:
        note = orders.delivery_note(s, sale_id)
    except NotFound:
        abort(404)
    return render_template("pos/group/delivery_note.html", **note, note=note, printed_at=_printed_at())


def _printed_at() -> str:
    return to_local(utcnow()).strftime("%Y-%m-%d %H:%M")


# --- open balances --------------------------------------------------------------------------------


@bp.route("/balances")
@requires("dashboard")
def balances():
    rows = orders.open_balances(get_session())
    totals = {key: sum(r[key] for r in rows) for key in ("delivered_fen", "returned_fen", "paid_fen", "balance_fen")}
    return render_template("pos/group/balances.html", rows=rows, totals=totals)
