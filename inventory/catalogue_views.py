"""Manager pages for the catalogue: the blueprint and what its pages share, and the pages for
products, barcodes, photos and scale-label rules; suppliers and certificates are in
``catalogue_supplier_views``, import and export in ``catalogue_import_views`` (same blueprint, so the
same URLs and endpoint names). Thin: parse (catalogue_forms), call inventory's services, render.

A refused change answers 400 with the reason on the page; the request's session is rolled back
for every answer of 400 or more (pos.core.db), so a refusal never leaves half a change behind.
Access (manager and admin) is attached by the app factory (pos.core.web.protect_blueprint).
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from . import catalogue, suppliers
from .base import Base
from .catalogue_forms import BarcodeForm, EmptyForm, PhotoForm, ProductForm, ScaleRuleForm, TryCodeForm, strip_control
from .certification import certified_product_ids
from .errors import InventoryError, NotFound
from .localtime import local_today
from .models import Product, Supplier
from .money import format_plain_yuan, line_amount_fen
from .web import get_session, page_arg

bp = Blueprint("catalogue", __name__, url_prefix="/catalogue")
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: a larger one is no id at all (404)


@bp.record_once
def _id_converter(state):
    """``<id:…>``: a positive 32-bit integer, so /products/99999999999999999999 is a 404 page
    rather than a database error."""
    from werkzeug.routing import IntegerConverter

    class IdConverter(IntegerConverter):
        def __init__(self, url_map):
            super().__init__(url_map, min=1, max=MAX_ID)

    state.app.url_map.converters.setdefault("id", IdConverter)

PER_PAGE = 50
EXPIRING_DAYS = 30
IMPORT_TOKEN_RE = re.compile(r"[0-9a-f]{32}")
IMPORT_KEEP_SECONDS = 24 * 3600


def _actor() -> int:
    return current_user.id


def _refuse(error: InventoryError, form=None, field_map: dict | None = None) -> None:
    """Put the service's message beside the field it names, or at the top of the page."""
    field = getattr(error, "field", None)
    name = (field_map or {}).get(field, field)
    if form is not None and name and name in form._fields:
        form[name].errors = list(form[name].errors) + [str(error)]
        flash(_("未保存：%(reason)s", reason=str(error)), "error")
    else:
        flash(str(error), "error")


def _form_errors_flash(form=None) -> None:
    """One line at the top naming what is wrong (the fields themselves are marked too)."""
    problems = []
    for f in (form or ()):
        if f.errors and f.type not in ("CSRFTokenField", "HiddenField"):
            problems.append(f"{f.label.text}：{f.errors[0]}")
    if problems:
        flash(_("未保存：%(problems)s", problems="；".join(problems[:3])), "error")
    else:
        flash(_("未保存：请更正标红的项目"), "error")


def _int_arg(name: str) -> int | None:
    try:
        value = int(request.args.get(name, ""))
    except ValueError:
        return None
    return value if 0 < value <= MAX_ID else None


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error):
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    message = _("文件太大：最大 %(size)s", size=size)
    return render_template("pos/core/error.html", code=413, title=_("上传的内容太大"), message=message), 413


def _form_page(form, save, done, to, template: str, field_map: dict | None = None, **context):
    """A page that creates or changes one thing (a product, a supplier): a valid POST is saved
    (``save()`` returns what was saved), announced (``done(saved)``) and followed by a redirect to
    ``to(saved)``; otherwise the form again (``template`` with ``context``), status 400 after a POST."""
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                saved = save()
                flash(done(saved), "success")
                return redirect(to(saved))
            except InventoryError as error:
                _refuse(error, form, field_map)
        else:
            _form_errors_flash(form)
        status = 400
    return render_template(template, form=form, **context), status


def user_names(s, ids) -> dict[int, str]:
    """Display names of users (price history shows who changed a price). The users table belongs
    to pos; inventory reads it through the shared metadata rather than importing pos."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    users = Base.metadata.tables["users"]
    rows = s.execute(select(users.c.id, users.c.display_name).where(users.c.id.in_(ids)))
    return {row.id: row.display_name for row in rows}


# --- products -------------------------------------------------------------------------------------

# Only retired products needs the service's ``active`` filter; without it the page offers
# "active" and "all" (retired ones greyed, after the active ones).
CAN_LIST_RETIRED = "active" in inspect.signature(catalogue.search_products).parameters


def _status_filters() -> list[tuple[str, str]]:
    filters = [("active", _("在售")), ("all", _("全部（含已停售）"))]
    if CAN_LIST_RETIRED:
        filters.insert(1, ("retired", _("已停售")))
    return filters


def _status_args(status: str) -> dict:
    if status == "active":
        return {"active_only": True}
    if status == "retired":
        return {"active": False}
    return {}


@bp.route("/products")
def products():
    s = get_session()
    q = strip_control(request.args.get("q", "")).strip()[:120]
    filters = _status_filters()
    status = request.args.get("status", "active")
    if status not in dict(filters):
        status = "active"
    category_id = _int_arg("category")
    supplier = s.get(Supplier, _int_arg("supplier")) if _int_arg("supplier") else None
    result = catalogue.search_products(
        s, q, page=page_arg(), per_page=PER_PAGE, category_id=category_id,
        supplier_id=supplier.id if supplier else None, **_status_args(status),
    )
    certified = certified_product_ids(s, [p.id for p in result.items], local_today())
    return render_template(
        "inventory/products.html", result=result, q=q, status=status, status_filters=filters,
        category_id=category_id, supplier=supplier, categories=catalogue.list_categories(s),
        certified=certified,
    )


@bp.route("/products/lookup")
def product_lookup():
    """Products matching ?q= as JSON, for the pickers (certificate coverage)."""
    s = get_session()
    q = strip_control(request.args.get("q", "")).strip()[:120]
    if not q:
        return jsonify({"items": []})
    result = catalogue.search_products(s, q, per_page=20)
    return jsonify({"items": [
        {"id": p.id, "sku": p.sku, "name": p.name, "active": p.active} for p in result.items
    ], "total": result.total})


def _product_form(s, *args, **kwargs) -> ProductForm:
    return ProductForm(*args, categories=catalogue.list_categories(s),
                       suppliers=suppliers.list_suppliers(s), **kwargs)


PRODUCT_FIELD_MAP = {"price_fen": "price", "cost_fen": "cost", "barcode": "barcodes", "name": "name"}


def _product_values(s, form: ProductForm) -> dict:
    category_id = int(form.category_id.data) if form.category_id.data else None
    if form.new_category.data and form.new_category.data.strip():
        category_id = catalogue.create_category(s, form.new_category.data, actor_id=_actor()).id
    return dict(
        sku=form.sku.data,
        name=form.name.data,
        category_id=category_id,
        supplier_id=int(form.supplier_id.data) if form.supplier_id.data else None,
        unit=form.unit.data,
        sold_by_weight=bool(form.sold_by_weight.data),
        price_fen=form.price.fen,
        cost_fen=form.cost.fen,
        vat=form.vat.data,
        vat_exemption_code=form.vat_exemption_code.data or None,
        tax_code=form.tax_code.data or None,
        shelf_life_days=form.shelf_life_days.data,
        scale_plu=form.scale_plu.data,
        origin_county=form.origin_county.data or None,
        origin_county_code=form.origin_county_code.data or None,
        origin_township=form.origin_township.data or None,
        origin_village=form.origin_village.data or None,
        barcodes=form.barcode_list(),
    )


@bp.route("/products/new", methods=["GET", "POST"])
def product_new():
    s = get_session()
    form = _product_form(s)
    return _form_page(form, lambda: catalogue.create_product(s, actor_id=_actor(), **_product_values(s, form)),
                      lambda product: _("已新建商品 %(name)s", name=product.name), _to_product,
                      "inventory/product_form.html", PRODUCT_FIELD_MAP, product=None)


def _to_product(product: Product) -> str:
    return url_for("catalogue.product", product_id=product.id)


def _get_product(s, product_id: int) -> Product:
    try:
        return catalogue.get_product(s, product_id)
    except NotFound:
        abort(404)


@bp.route("/products/<id:product_id>/edit", methods=["GET", "POST"])
def product_edit(product_id: int):
    s = get_session()
    product = _get_product(s, product_id)
    if request.method == "POST":
        form = _product_form(s)
    else:
        form = _product_form(s, data=_product_data(product))
    return _form_page(form, lambda: catalogue.update_product(s, product.id, actor_id=_actor(), **_product_values(s, form)),
                      lambda saved: _("已保存商品 %(name)s", name=saved.name), _to_product,
                      "inventory/product_form.html", PRODUCT_FIELD_MAP, product=product)


def _product_data(product: Product) -> dict:
    return dict(
        sku=product.sku, name=product.name,
        category_id=str(product.category_id or ""), supplier_id=str(product.supplier_id or ""),
        unit=product.unit.value, sold_by_weight=product.sold_by_weight,
        price=format_plain_yuan(product.price_fen),
        cost=format_plain_yuan(product.cost_fen) if product.cost_fen is not None else "",
        vat=product.vat.value, vat_exemption_code=product.vat_exemption_code or "",
        tax_code=product.tax_code or "", shelf_life_days=product.shelf_life_days,
        scale_plu=product.scale_plu, origin_county=product.origin_county or "",
        origin_county_code=product.origin_county_code or "",
        origin_township=product.origin_township or "", origin_village=product.origin_village or "",
        barcodes="\n".join(b.code for b in product.barcodes),
    )


def _render_product(s, product_id: int, *, status: int = 200, barcode_form=None, photo_form=None):
    try:
        detail = catalogue.product_detail(s, product_id)
    except NotFound:
        abort(404)
    ledger_url = None
    if "stock.product_ledger" in current_app.view_functions:
        ledger_url = url_for("stock.product_ledger", product_id=product_id)
    return render_template(
        "inventory/product.html", d=detail, p=detail["product"],
        names=user_names(s, [c.changed_by_id for c in detail["price_history"]]),
        barcode_form=barcode_form or BarcodeForm(prefix="bc"),
        photo_form=photo_form or PhotoForm(prefix="photo"),
        action_form=EmptyForm(), ledger_url=ledger_url, today=local_today(),
    ), status


@bp.route("/products/<id:product_id>")
def product(product_id: int):
    return _render_product(get_session(), product_id)


@bp.route("/products/<id:product_id>/barcodes", methods=["POST"])
def barcode_add(product_id: int):
    s = get_session()
    product = _get_product(s, product_id)
    form = BarcodeForm(prefix="bc")
    if form.validate_on_submit():
        try:
            barcode = catalogue.add_barcode(s, product.id, form.code.data, actor_id=_actor())
            flash(_("已添加条码 %(code)s", code=barcode.code), "success")
            return redirect(url_for("catalogue.product", product_id=product.id) + "#barcodes")
        except InventoryError as error:
            form.code.errors = list(form.code.errors) + [str(error)]
    flash(_("条码未添加：%(reason)s", reason="；".join(str(e) for e in form.code.errors) or _("请重试")), "error")
    return _render_product(s, product.id, status=400, barcode_form=form)


@bp.route("/products/<id:product_id>/barcodes/<id:barcode_id>/remove", methods=["POST"])
def barcode_remove(product_id: int, barcode_id: int):
    s = get_session()
    product = _get_product(s, product_id)
    if not any(b.id == barcode_id for b in product.barcodes):
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    code = next(b.code for b in product.barcodes if b.id == barcode_id)
    catalogue.remove_barcode(s, barcode_id, actor_id=_actor())
    flash(_("已删除条码 %(code)s", code=code), "success")
    return redirect(url_for("catalogue.product", product_id=product.id) + "#barcodes")


@bp.route("/products/<id:product_id>/photo", methods=["GET", "POST"])
def product_photo(product_id: int):
    s = get_session()
    product = _get_product(s, product_id)
    if request.method == "GET":
        return _send_instance_file(product.photo_path)
    form = PhotoForm(prefix="photo")
    if _take_upload(form, "photo", lambda name, data, folder: catalogue.set_photo(s, product.id, name, data, folder,
                                                                                  actor_id=_actor())):
        flash(_("照片已更新"), "success")
        return redirect(url_for("catalogue.product", product_id=product.id))
    flash(_("照片未上传：%(reason)s", reason="；".join(str(e) for e in form.photo.errors)), "error")
    return _render_product(s, product.id, status=400, photo_form=form)


def _take_upload(form, field: str, keep) -> bool:
    """Hand a valid upload in ``form[field]`` (a photo, a scan) to ``keep(filename, data,
    instance_path)``; False, with the reason among the field's errors, when the form or the service
    refuses it."""
    if form.validate_on_submit():
        upload = form[field].data
        try:
            keep(upload.filename or "", upload.read(), current_app.instance_path)
            return True
        except InventoryError as error:
            form[field].errors = list(form[field].errors) + [str(error)]
    return False


def _send_instance_file(relative: str | None):
    """A stored upload (a photo, a scan); 404 when there is none."""
    if not relative:
        abort(404)
    root = Path(current_app.instance_path).resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file():
        abort(404)
    return send_file(path, max_age=3600)


@bp.route("/products/<id:product_id>/active", methods=["POST"])
def product_active(product_id: int):
    s = get_session()
    product = _get_product(s, product_id)
    if not EmptyForm().validate_on_submit() or request.form.get("active") not in ("0", "1"):
        abort(400)
    active = request.form["active"] == "1"
    catalogue.set_active(s, product.id, active, actor_id=_actor())
    flash(_("商品已恢复在售") if active else _("商品已停售：收银台和专柜不再出售，历史记录保留"), "success")
    return redirect(url_for("catalogue.product", product_id=product.id))


# --- scale-label rules ------------------------------------------------------------------------------

SOURCE_LABELS = {
    "barcode": _l("商品条码"),
    "sku": _l("商品编码"),
    "scale_weight": _l("秤签（重量）"),
    "scale_price": _l("秤签（金额）"),
}


@bp.route("/scale-rules", methods=["GET", "POST"])
def scale_rules():
    s = get_session()
    form = ScaleRuleForm(prefix="rule")
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                rule = catalogue.add_barcode_rule(s, name=form.name.data, pattern=form.pattern.data,
                                                  priority=form.priority.data or 0, actor_id=_actor())
                flash(_("已添加规则 %(name)s", name=rule.name), "success")
                return redirect(url_for("catalogue.scale_rules"))
            except InventoryError as error:
                _refuse(error, form)
            except ValueError as error:  # scale.RuleError, if not an InventoryError
                form.pattern.errors = list(form.pattern.errors) + [str(error)]
                flash(_("未保存：%(reason)s", reason=str(error)), "error")
        else:
            _form_errors_flash(form)
        status = 400

    try_form = TryCodeForm(request.args, meta={"csrf": False})
    tried = None
    if "code" in request.args:
        tried = _try_code(s, try_form)
        if tried.get("error"):
            status = 400 if status == 200 else status
    return render_template(
        "inventory/scale_rules.html", rules=catalogue.list_barcode_rules(s), form=form,
        try_form=try_form, tried=tried, toggle_form=EmptyForm(),
    ), status


def _try_code(s, form: TryCodeForm) -> dict:
    if not form.validate():
        return {"error": "；".join(str(e) for e in form.code.errors)}
    code = form.code.data.strip()
    try:
        result = catalogue.resolve_scan(s, code)
    except InventoryError as error:
        return {"error": str(error)}
    if result is None:
        return {"code": code, "unknown": True}
    product = s.get(Product, result.product_id)
    amount = result.amount_fen
    if amount is None and result.qty_milli is not None:
        amount = line_amount_fen(product.price_fen, result.qty_milli)
    return {"code": code, "result": result, "product": product, "amount_fen": amount,
            "source": str(SOURCE_LABELS.get(result.source, result.source))}


@bp.route("/scale-rules/<id:rule_id>/active", methods=["POST"])
def scale_rule_active(rule_id: int):
    s = get_session()
    if not EmptyForm().validate_on_submit() or request.form.get("active") not in ("0", "1"):
        abort(400)
    active = request.form["active"] == "1"
    try:
        rule = catalogue.set_barcode_rule_active(s, rule_id, active, actor_id=_actor())
    except NotFound:
        abort(404)
    except InventoryError as error:
        flash(str(error), "error")
        return render_template(
            "inventory/scale_rules.html", rules=catalogue.list_barcode_rules(s), form=ScaleRuleForm(prefix="rule"),
            try_form=TryCodeForm(meta={"csrf": False}), tried=None, toggle_form=EmptyForm(),
        ), 400
    flash(_("规则 %(name)s 已启用", name=rule.name) if active else _("规则 %(name)s 已停用", name=rule.name), "success")
    return redirect(url_for("catalogue.scale_rules"))


# The blueprint's other pages (their routes join ``bp`` when imported).
from . import catalogue_import_views, catalogue_supplier_views  # noqa: E402, F401
