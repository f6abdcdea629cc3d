"""Manager pages for the catalogue: products, barcodes, scale-label rules, suppliers,
certificates, import and export. Thin: parse (catalogue_forms), call inventory's services, render.

A refused change answers 400 with the reason on the page; the request's session is rolled back
for every answer of 400 or more (pos.core.db), so a refusal never leaves half a change behind.
Access (manager and admin) is attached by the app factory (pos.core.web.protect_blueprint).
"""
from __future__ import annotations

import inspect
import io
import json
import re
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session as flask_session,
    url_for,
)
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from . import catalogue, catalogue_io, suppliers
from .base import Base
from .catalogue_forms import (
    BarcodeForm,
    CertificateForm,
    EmptyForm,
    ImportConfirmForm,
    ImportForm,
    PhotoForm,
    ProductForm,
    ScaleRuleForm,
    ScanForm,
    SupplierForm,
    TryCodeForm,
    strip_control,
)
from .certification import certified_product_ids
from .errors import InventoryError, NotFound
from .localtime import local_today
from .models import Certificate, Product, Supplier
from .money import format_plain_yuan, format_yuan, line_amount_fen
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
    return render_template("pos/error.html", code=413, title=_("上传的内容太大"), message=message), 413


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
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                product = catalogue.create_product(s, actor_id=_actor(), **_product_values(s, form))
                flash(_("已新建商品 %(name)s", name=product.name), "success")
                return redirect(url_for("catalogue.product", product_id=product.id))
            except InventoryError as error:
                _refuse(error, form, PRODUCT_FIELD_MAP)
        else:
            _form_errors_flash(form)
        status = 400
    return render_template("inventory/product_form.html", form=form, product=None), status


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
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                catalogue.update_product(s, product.id, actor_id=_actor(), **_product_values(s, form))
                flash(_("已保存商品 %(name)s", name=product.name), "success")
                return redirect(url_for("catalogue.product", product_id=product.id))
            except InventoryError as error:
                _refuse(error, form, PRODUCT_FIELD_MAP)
        else:
            _form_errors_flash(form)
        status = 400
    return render_template("inventory/product_form.html", form=form, product=product), status


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
        if not product.photo_path:
            abort(404)
        return _send_instance_file(product.photo_path)
    form = PhotoForm(prefix="photo")
    if form.validate_on_submit():
        upload = form.photo.data
        try:
            catalogue.set_photo(s, product.id, upload.filename or "", upload.read(),
                                current_app.instance_path, actor_id=_actor())
            flash(_("照片已更新"), "success")
            return redirect(url_for("catalogue.product", product_id=product.id))
        except InventoryError as error:
            form.photo.errors = list(form.photo.errors) + [str(error)]
    flash(_("照片未上传：%(reason)s", reason="；".join(str(e) for e in form.photo.errors)), "error")
    return _render_product(s, product.id, status=400, photo_form=form)


def _send_instance_file(relative: str):
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


# --- suppliers --------------------------------------------------------------------------------------

SUPPLIER_FIELDS = ("name", "credit_code", "province", "origin_county", "origin_county_code",
                   "origin_township", "origin_village", "contact_name", "contact_phone")


@bp.route("/suppliers")
def suppliers_list():
    s = get_session()
    return render_template("inventory/suppliers.html", suppliers=suppliers.list_suppliers(s))


def _supplier_values(form: SupplierForm) -> dict:
    return {name: (form[name].data or "").strip() or None for name in SUPPLIER_FIELDS}


@bp.route("/suppliers/new", methods=["GET", "POST"])
def supplier_new():
    s = get_session()
    form = SupplierForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                supplier = suppliers.create_supplier(s, actor_id=_actor(), **_supplier_values(form))
                flash(_("已新建供应商 %(name)s", name=supplier.name), "success")
                return redirect(url_for("catalogue.suppliers_list"))
            except InventoryError as error:
                _refuse(error, form)
        else:
            _form_errors_flash(form)
        status = 400
    return render_template("inventory/supplier_form.html", form=form, supplier=None), status


@bp.route("/suppliers/<id:supplier_id>", methods=["GET", "POST"])
def supplier_edit(supplier_id: int):
    s = get_session()
    supplier = s.get(Supplier, supplier_id) or abort(404)
    form = SupplierForm() if request.method == "POST" else SupplierForm(
        data={name: getattr(supplier, name) or "" for name in SUPPLIER_FIELDS})
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                suppliers.update_supplier(s, supplier.id, actor_id=_actor(), **_supplier_values(form))
                flash(_("已保存供应商 %(name)s", name=supplier.name), "success")
                return redirect(url_for("catalogue.suppliers_list"))
            except InventoryError as error:
                _refuse(error, form)
        else:
            _form_errors_flash(form)
        status = 400
    certificates = suppliers.list_certificates(s, supplier_id=supplier.id)
    return render_template("inventory/supplier_form.html", form=form, supplier=supplier,
                           certificates=certificates), status


# --- certificates -----------------------------------------------------------------------------------

@bp.route("/certificates")
def certificates():
    s = get_session()
    today = local_today()
    return render_template(
        "inventory/certificates.html", certificates=suppliers.list_certificates(s), today=today,
        expiring_count=len(suppliers.expiring_certificates(s, today=today, within_days=EXPIRING_DAYS)),
        view="all",
    )


@bp.route("/certificates/expiring")
def certificates_expiring():
    s = get_session()
    today = local_today()
    expiring = suppliers.expiring_certificates(s, today=today, within_days=EXPIRING_DAYS)
    return render_template(
        "inventory/certificates.html", certificates=expiring, today=today,
        expiring_count=len(expiring), view="expiring",
    )


def _certificate_products(s, form: CertificateForm) -> tuple[list[int], list[str]]:
    """Product ids ticked in the list plus those named by sku; unknown skus are reported."""
    ids: list[int] = []
    for raw in request.form.getlist("product_ids"):
        try:
            value = int(raw)
        except ValueError:
            continue
        if 0 < value <= MAX_ID:
            ids.append(value)
    known = {pid for pid in s.scalars(select(Product.id).where(Product.id.in_(ids)))} if ids else set()
    ids = [pid for pid in dict.fromkeys(ids) if pid in known]
    unknown = []
    for sku in form.sku_list():
        try:
            pid = catalogue.get_product_by_sku(s, sku).id
        except NotFound:
            unknown.append(sku)
            continue
        if pid not in ids:
            ids.append(pid)
    return ids, unknown


def _certificate_page(s, form, cert, covered, status):
    return render_template("inventory/certificate_form.html", form=form, cert=cert, covered=covered,
                           scan_form=ScanForm(prefix="scan"), today=local_today()), status


def _save_certificate(s, form: CertificateForm, cert: Certificate | None):
    product_ids, unknown = _certificate_products(s, form)
    covered = list(s.scalars(select(Product).where(Product.id.in_(product_ids)).order_by(Product.sku))) if product_ids else []
    if unknown:
        form.skus.errors = list(form.skus.errors) + [_("找不到这些商品编码：%(skus)s", skus="、".join(unknown))]
        _form_errors_flash(form)
        return _certificate_page(s, form, cert, covered, 400)
    values = dict(
        number=form.number.data.strip(), issuer=form.issuer.data.strip(),
        supplier_id=int(form.supplier_id.data) if form.supplier_id.data else None,
        valid_from=form.valid_from.date, valid_to=form.valid_to.date, product_ids=product_ids,
        note=(form.note.data or "").strip() or None,
    )
    try:
        if cert is None:
            cert = suppliers.create_certificate(s, actor_id=_actor(), **values)
            flash(_("已新建认定证书 %(number)s", number=cert.number), "success")
        else:
            suppliers.update_certificate(s, cert.id, actor_id=_actor(), **values)
            flash(_("已保存认定证书 %(number)s（已售商品的认定记录不变）", number=cert.number), "success")
    except InventoryError as error:
        _refuse(error, form, {"product_ids": "skus"})
        return _certificate_page(s, form, cert, covered, 400)
    return redirect(url_for("catalogue.certificate_edit", cert_id=cert.id))


@bp.route("/certificates/new", methods=["GET", "POST"])
def certificate_new():
    s = get_session()
    form = CertificateForm(suppliers=suppliers.list_suppliers(s))
    if request.method == "POST":
        if form.validate_on_submit():
            return _save_certificate(s, form, None)
        _form_errors_flash(form)
        covered_ids, _unknown = _certificate_products(s, form)
        covered = list(s.scalars(select(Product).where(Product.id.in_(covered_ids)))) if covered_ids else []
        return _certificate_page(s, form, None, covered, 400)
    supplier_id = _int_arg("supplier")
    if supplier_id and s.get(Supplier, supplier_id) is not None:
        form.supplier_id.data = str(supplier_id)
    return _certificate_page(s, form, None, [], 200)


@bp.route("/certificates/<id:cert_id>", methods=["GET", "POST"])
def certificate_edit(cert_id: int):
    s = get_session()
    cert = s.get(Certificate, cert_id) or abort(404)
    if request.method == "POST":
        form = CertificateForm(suppliers=suppliers.list_suppliers(s))
        if form.validate_on_submit():
            return _save_certificate(s, form, cert)
        _form_errors_flash(form)
        covered_ids, _unknown = _certificate_products(s, form)
        covered = list(s.scalars(select(Product).where(Product.id.in_(covered_ids)))) if covered_ids else []
        return _certificate_page(s, form, cert, covered, 400)
    form = CertificateForm(suppliers=suppliers.list_suppliers(s), data=dict(
        number=cert.number, issuer=cert.issuer, supplier_id=str(cert.supplier_id or ""),
        valid_from=cert.valid_from, valid_to=cert.valid_to, note=cert.note or "",
    ))
    return _certificate_page(s, form, cert, sorted(cert.products, key=lambda p: p.sku), 200)


@bp.route("/certificates/<id:cert_id>/scan", methods=["GET", "POST"])
def certificate_scan(cert_id: int):
    s = get_session()
    cert = s.get(Certificate, cert_id) or abort(404)
    if request.method == "GET":
        if not cert.scan_path:
            abort(404)
        return _send_instance_file(cert.scan_path)
    form = ScanForm(prefix="scan")
    if form.validate_on_submit():
        upload = form.scan.data
        try:
            suppliers.set_certificate_scan(s, cert.id, upload.filename or "", upload.read(),
                                           current_app.instance_path, actor_id=_actor())
            flash(_("扫描件已上传"), "success")
            return redirect(url_for("catalogue.certificate_edit", cert_id=cert.id))
        except InventoryError as error:
            form.scan.errors = list(form.scan.errors) + [str(error)]
    flash(_("扫描件未上传：%(reason)s", reason="；".join(str(e) for e in form.scan.errors)), "error")
    cert_form = CertificateForm(suppliers=suppliers.list_suppliers(s), formdata=None, data=dict(
        number=cert.number, issuer=cert.issuer, supplier_id=str(cert.supplier_id or ""),
        valid_from=cert.valid_from, valid_to=cert.valid_to, note=cert.note or "",
    ))
    return render_template("inventory/certificate_form.html", form=cert_form, cert=cert,
                           covered=sorted(cert.products, key=lambda p: p.sku), scan_form=form,
                           today=local_today()), 400


# --- import and export --------------------------------------------------------------------------------
#
# The preview and the confirmation are two requests, and a browser cannot send a chosen file
# again by itself. The uploaded bytes are kept in the instance folder under a random token
# (instance/imports/<token>.bin, with the uploader and file name beside it) and the confirm
# form carries only the token: what is written is exactly the file the manager previewed, not
# whatever is chosen again, and the file never travels back to the browser. Only the uploader
# can confirm it; a confirmed file is deleted, and unconfirmed ones after a day.

def _imports_dir() -> Path:
    return Path(current_app.instance_path) / "imports"


def _keep_upload(filename: str, data: bytes) -> str:
    folder = _imports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in folder.glob("*"):
        try:
            if now - old.stat().st_mtime > IMPORT_KEEP_SECONDS:
                old.unlink()
        except OSError:
            pass
    token = secrets.token_hex(16)
    (folder / f"{token}.bin").write_bytes(data)
    (folder / f"{token}.json").write_text(json.dumps(
        {"filename": filename, "user_id": _actor(), "at": now}, ensure_ascii=False), encoding="utf-8")
    return token


def _kept_upload(token: str) -> tuple[str, bytes] | None:
    if not token or not IMPORT_TOKEN_RE.fullmatch(token):
        return None
    folder = _imports_dir()
    try:
        meta = json.loads((folder / f"{token}.json").read_text(encoding="utf-8"))
        data = (folder / f"{token}.bin").read_bytes()
    except (OSError, ValueError):
        return None
    if meta.get("user_id") != _actor():
        return None
    return meta.get("filename") or "import.csv", data


def _forget_upload(token: str) -> None:
    for suffix in (".bin", ".json"):
        try:
            (_imports_dir() / f"{token}{suffix}").unlink()
        except OSError:
            pass


COLUMN_NOTES = {
    "sku": _l("必填，按它新建或更新"),
    "name": _l("新商品必填"),
    "barcodes": _l("多个用 | 分隔；核对校验位"),
    "category": _l("没有的分类会新建"),
    "unit": _l("piece（件）或 kg（千克，称重销售）"),
    "price_fen": _l("以分为单位的整数：3800 即 ¥38.00"),
    "vat": _l("9、13 或 exempt（免税）"),
    "supplier": _l("按名称匹配，没有的会新建"),
    "origin_county": _l("不填则用供应商的产地"),
    "certificate_no": _l("认定证书编号；留空表示未认定"),
    "certificate_valid_from": _l("YYYY-MM-DD"),
    "certificate_valid_to": _l("YYYY-MM-DD"),
}


def _import_page(status: int = 200, **context):
    context.setdefault("form", ImportForm(prefix="imp", formdata=None))
    context.setdefault("preview", None)
    labels = dict(zip(catalogue_io.COLUMNS, catalogue_io.CHINESE_HEADERS))
    labels.update(zip(catalogue_io.OPTIONAL_COLUMNS, catalogue_io.OPTIONAL_CHINESE))
    columns = [(key, labels[key], COLUMN_NOTES.get(key, "")) for key in catalogue_io.COLUMNS]
    if context["preview"] is not None:
        context.setdefault("counts", {"create": context["preview"].created, "update": context["preview"].updated,
                                      "unchanged": context["preview"].unchanged})
    shown = dict(labels, price_fen=_("售价"))  # the preview shows prices in yuan
    return render_template("inventory/import.html", columns=columns, column_labels=shown, **context), status


@bp.route("/import", methods=["GET", "POST"])
def import_upload():
    s = get_session()
    if request.method == "GET":
        return _import_page()
    form = ImportForm(prefix="imp")
    if not form.validate_on_submit():
        flash(_("未导入：%(reason)s", reason="；".join(str(e) for e in form.file.errors) or _("请重试")), "error")
        return _import_page(400, form=form)
    upload = form.file.data
    filename, data = upload.filename or "", upload.read()
    try:
        preview = catalogue_io.preview_import(s, filename, data)
    except InventoryError as error:
        form.file.errors = list(form.file.errors) + [str(error)]
        flash(_("未导入：%(reason)s", reason=str(error)), "error")
        return _import_page(400, form=form)
    s.rollback()  # a preview writes nothing
    if preview.errors:
        flash(_("文件中有 %(n)s 处错误，全部改正后才能导入；本次没有写入任何内容。", n=len(preview.errors)), "error")
        return _import_page(400, preview=preview, filename=filename, confirm_form=None)
    token = _keep_upload(filename, data) if preview.rows else None
    confirm = ImportConfirmForm(prefix="confirm", token=token) if token else None
    return _import_page(preview=preview, filename=filename, confirm_form=confirm)


@bp.route("/import/confirm", methods=["POST"])
def import_confirm():
    s = get_session()
    form = ImportConfirmForm(prefix="confirm")
    kept = _kept_upload(form.token.data or "") if form.validate_on_submit() else None
    if kept is None:
        flash(_("导入文件已失效，请重新上传"), "error")
        return _import_page(400)
    filename, data = kept
    try:
        result = catalogue_io.apply_import(s, filename, data, actor_id=_actor())
    except catalogue_io.ImportRefused as refused:
        s.rollback()
        preview = catalogue_io.preview_import(s, filename, data)
        s.rollback()
        if not preview.errors:  # refused by a rule the preview did not foresee
            preview.errors = list(refused.errors)
        flash(_("未导入：预览之后商品目录有了变化，文件中有 %(n)s 处错误；本次没有写入任何内容。",
                n=len(preview.errors)), "error")
        return _import_page(400, preview=preview, filename=filename, confirm_form=None)
    except InventoryError as error:
        flash(_("未导入：%(reason)s", reason=str(error)), "error")
        return _import_page(400)
    _forget_upload(form.token.data)
    flask_session["catalogue_import_result"] = {
        "filename": filename, "created": result.created, "updated": result.updated, "unchanged": result.unchanged,
        "suppliers": result.suppliers_created, "categories": result.categories_created,
        "certificates": result.certificates_created, "certificates_changed": result.certificates_changed,
    }
    return redirect(url_for("catalogue.import_result"))


@bp.route("/import/result")
def import_result():
    result = flask_session.get("catalogue_import_result")
    if not result:
        return redirect(url_for("catalogue.import_upload"))
    return render_template("inventory/import_result.html", result=result)


EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@bp.route("/export.<fmt>")
def export(fmt: str):
    """The whole catalogue as a file the import reads back. The file name is Chinese for the
    manager (RFC 6266 ``filename*``) with a plain ASCII one for software that knows no better."""
    if fmt not in EXPORT_TYPES:
        abort(404)
    data = catalogue_io.export_catalogue(get_session(), fmt)
    day = f"{local_today():%Y%m%d}"
    response = send_file(io.BytesIO(data), mimetype=EXPORT_TYPES[fmt], max_age=0)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="songtao-catalogue-{day}.{fmt}"; '
        f"filename*=UTF-8''{quote(f'商品目录-{day}.{fmt}')}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("cat_yuan")
def _cat_yuan(fen):
    return "" if fen is None else format_yuan(fen)


UNIT_WORDS = {"piece": _l("件"), "kg": _l("千克")}


@bp.app_template_filter("cat_cell")
def _cat_cell(text, column: str):
    """An import preview's cell as the manager reads it: prices in yuan, units in words."""
    text = "" if text is None else str(text)
    if column == "price_fen" and text.isdigit():
        return format_yuan(int(text))
    if column == "unit" and text in UNIT_WORDS:
        return str(UNIT_WORDS[text])
    return text.replace("|", " | ")
