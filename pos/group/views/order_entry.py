"""Entering group orders: the list of orders, a new or edited draft, and the import of a buyer's
spreadsheet (preview, then confirm).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import FieldList, Form, FormField, HiddenField, SelectField

from inventory.errors import InventoryError
from inventory.localtime import local_today, parse_local_date
from inventory.models import Product
from inventory.money import AmountError, format_plain_yuan, format_qty, parse_qty_milli, parse_yuan
from inventory.stock_forms import StringField, clean_text, find_product, form_errors, parse_qty, product_hint
from inventory.web import Page, get_session, page_arg
from pos.group import buyers as buyer_service
from pos.group import documents, orders
from pos.core.forms import choice
from pos.group.models import Buyer, GroupOrder, GroupOrderStatus
from pos.core.web import requires
from pos.group.views import bp
from pos.group.views.common import (
    MAX_ID, PER_PAGE, REFUSALS, add_error, attach_refusal, client_id_arg, current_actor, enum_value,
    get_order_or_404, new_client_id, refuse, text_field,
)
from pos.group.labels import buyer_type_label


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
    rows, total = documents.list_orders(s, status=status or None, buyer_id=buyer_id, q=q or None, page=page_no,
                                     per_page=PER_PAGE, due_by=local_today() if due else None)
    page = Page(items=rows, total=total, page=page_no, per_page=PER_PAGE)
    all_buyers = buyer_service.list_buyers(s, include_inactive=True)
    filters = {k: v for k, v in (("status", status), ("buyer", buyer_id), ("q", q), ("due", due)) if v}
    return render_template("pos/group/orders.html", page=page, status=status, buyer_id=buyer_id, q=q,
                           buyers=all_buyers, filters=filters, due=due)


# --- orders: new, edit ---------------------------------------------------------------------------


def _buyer_choices(buyers) -> list:
    """The buyer select of the order and import forms: each buyer with its type."""
    return [choice("", _("请选择买方单位"))] + [
        choice(str(b.id), f"{b.name}（{buyer_type_label(b.buyer_type)}）") for b in buyers]


def _carried_lines(lines) -> list[dict]:
    """Parsed order lines as the import's confirm form carries them (hidden inputs; no price: "")."""
    return [{"product_id": line.product_id, "qty_milli": line.qty_milli,
             "unit_price_fen": "" if line.unit_price_fen is None else line.unit_price_fen} for line in lines]


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
        self.buyer_id.choices = _buyer_choices(active)
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
            add_error(self.buyer_id, _("请选择买方单位"))
            ok = False
        date_text = clean_text(self.delivery_date.data).strip()
        delivery_date = None
        if not date_text:
            add_error(self.delivery_date, _("请填写送货日期"))
            ok = False
        else:
            try:
                delivery_date = parse_local_date(date_text)
            except ValueError:
                add_error(self.delivery_date, _("日期格式应为 YYYY-MM-DD：%(text)s", text=date_text[:20]))
                ok = False
        head = {}
        for name, limit, message in (("delivery_address", 200, _("送货地址最多 200 个字")),
                                     ("contact", 80, _("联系人最多 80 个字")),
                                     ("note", 500, _("备注最多 500 个字"))):
            try:
                head[name] = text_field(getattr(self, name), limit, message)
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
                add_error(row.product, exc)
                line_ok = False
            if product is not None:
                row.hint_text = product_hint(product)
                try:
                    qty = parse_qty(row.qty.data, product)
                except AmountError as exc:
                    add_error(row.qty, exc)
                    line_ok = False
                if product.id in seen:
                    add_error(row.product, _("%(name)s 已在上面一行，请合并为一行", name=product.name))
                    line_ok = False
                seen[product.id] = row
            elif clean_text(row.qty.data).strip():
                try:
                    parse_qty_milli(clean_text(row.qty.data).strip(), by_weight=True)
                except AmountError as exc:
                    add_error(row.qty, exc)
            price_fen = None
            price_text = clean_text(row.price.data).strip()
            if price_text:
                try:
                    price_fen = parse_yuan(price_text)
                except AmountError as exc:
                    add_error(row.price, exc)
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
        self.client_order_id.data = new_client_id()
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
        return refuse("pos/group/order_form.html", form_errors(form), form=form, order=None)
    try:
        order = orders.create_order(s, **form.values, actor_id=current_actor(),
                                    client_order_id=client_id_arg(form.client_order_id.data))
        s.flush()
    except REFUSALS as exc:
        _attach_line_error(form, exc)
        return refuse("pos/group/order_form.html", exc, form=form, order=None)
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
                add_error(getattr(row, sub), exc)
        return
    attach_refusal(form, exc)


@bp.route("/<int:order_id>/edit", methods=["GET", "POST"])
@requires("dashboard")
def order_edit(order_id: int):
    s = get_session()
    order = get_order_or_404(order_id)
    if enum_value(order.status) != GroupOrderStatus.DRAFT.value:
        flash(_("只有草稿订单可以修改"), "error")
        return redirect(url_for("group.order", order_id=order.id))
    form = OrderForm(s, current_buyer=order.buyer)
    if request.method == "GET":
        form.fill_from(order)
        return render_template("pos/group/order_form.html", form=form, order=order)
    if not form.parse():
        return refuse("pos/group/order_form.html", form_errors(form), form=form, order=get_order_or_404(order_id))
    values = dict(form.values)
    if values.pop("buyer_id") != order.buyer_id:
        add_error(form.buyer_id, _("草稿订单不能更换买方单位；请取消后重新下单"))
        return refuse("pos/group/order_form.html", form_errors(form), form=form, order=get_order_or_404(order_id))
    try:
        orders.update_order(s, order.id, **values, actor_id=current_actor())
        s.flush()
    except REFUSALS as exc:
        _attach_line_error(form, exc)
        return refuse("pos/group/order_form.html", exc, form=form, order=get_order_or_404(order_id))
    flash(_("草稿已保存"), "success")
    return redirect(url_for("group.order", order_id=order.id))


# --- orders: import from the buyer's spreadsheet -------------------------------------------------


class ImportForm(FlaskForm):
    buyer_id = SelectField(_l("买方单位"), choices=[], validate_choice=False)
    file = FileField(_l("订货表（XLSX 或 CSV）"))

    def __init__(self, session, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buyer_choices = buyer_service.list_buyers(session)
        self.buyer_id.choices = _buyer_choices(self.buyer_choices)


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
        add_error(form.buyer_id, _("请选择买方单位"))
    if upload is None or not getattr(upload, "filename", ""):
        add_error(form.file, _("请选择要上传的订货表文件"))
    if buyer is None or upload is None or not getattr(upload, "filename", ""):
        return refuse("pos/group/import.html", form_errors(form), form=form, preview=None)
    from pos.group import order_import as group_import  # written beside this module; imported when used

    filename = upload.filename
    try:
        preview = group_import.parse_order_sheet(s, buyer_id=buyer.id, data=upload.read(), filename=filename)
    except REFUSALS as exc:
        add_error(form.file, exc)
        return refuse("pos/group/import.html", exc, form=form, preview=None)
    s.rollback()  # a preview writes nothing
    confirm = _import_confirm_context(s, buyer, preview)
    context = {"form": form, "preview": preview, "filename": filename, "buyer": buyer, "confirm": confirm}
    if not preview.ok:
        if not preview.errors:
            preview.errors.append(_("文件中没有可以导入的商品行"))
        # the problems are listed under the preview, each with its row
        return refuse("pos/group/import.html", _("订货表中有错误，改正后重新上传；本次没有写入任何内容。"), **context)
    return render_template("pos/group/import.html", **context)


def _import_confirm_context(s, buyer: Buyer, preview) -> dict:
    """What the confirm form carries: the parsed lines (as hidden inputs), a new client order id,
    and the head fields with their defaults."""
    return {
        "client_order_id": new_client_id(),
        "lines": _carried_lines(preview.lines),
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
        "client_order_id": client_id_arg(form.get("client_order_id")) or new_client_id(),
        "lines": _carried_lines(lines),
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
        return refuse("pos/group/import.html", list(errors.values()), **context)
    try:
        order = orders.create_order(
            s, buyer_id=buyer.id, lines=lines, delivery_date=delivery_date,
            delivery_address=confirm["delivery_address"] or None, contact=confirm["contact"] or None,
            note=confirm["note"] or None, actor_id=current_actor(), client_order_id=confirm["client_order_id"],
            source="import")
        s.flush()
    except REFUSALS as exc:
        if getattr(exc, "field", None) in ("delivery_date", "delivery_address", "contact", "note"):
            errors[exc.field] = str(exc)
        return refuse("pos/group/import.html", exc, **context)
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
