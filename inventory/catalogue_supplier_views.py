"""Catalogue pages for suppliers and their poverty-alleviation certificates (on the catalogue
blueprint of ``inventory.catalogue_views``: same URLs, same endpoint names)."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from . import catalogue, suppliers
from .catalogue_forms import CertificateForm, ScanForm, SupplierForm
from .catalogue_views import (
    EXPIRING_DAYS,
    MAX_ID,
    _actor,
    _form_errors_flash,
    _int_arg,
    _refuse,
    _form_page,
    _send_instance_file,
    _take_upload,
    bp,
)
from .errors import InventoryError, NotFound
from .localtime import local_today
from .models import Certificate, Product, Supplier
from .web import get_session

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
    return _form_page(form, lambda: suppliers.create_supplier(s, actor_id=_actor(), **_supplier_values(form)),
                      lambda supplier: _("已新建供应商 %(name)s", name=supplier.name), _to_suppliers,
                      "inventory/supplier_form.html", supplier=None)


def _to_suppliers(_supplier) -> str:
    return url_for("catalogue.suppliers_list")


@bp.route("/suppliers/<id:supplier_id>", methods=["GET", "POST"])
def supplier_edit(supplier_id: int):
    s = get_session()
    supplier = s.get(Supplier, supplier_id) or abort(404)
    form = SupplierForm() if request.method == "POST" else SupplierForm(
        data={name: getattr(supplier, name) or "" for name in SUPPLIER_FIELDS})
    return _form_page(form, lambda: suppliers.update_supplier(s, supplier.id, actor_id=_actor(), **_supplier_values(form)),
                      lambda saved: _("已保存供应商 %(name)s", name=saved.name), _to_suppliers,
                      "inventory/supplier_form.html", supplier=supplier,
                      certificates=suppliers.list_certificates(s, supplier_id=supplier.id))


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


def _post_certificate(s, form: CertificateForm, cert: Certificate | None):
    """A certificate's form sent: saved, or the form again (400) with what is wrong."""
    if form.validate_on_submit():
        return _save_certificate(s, form, cert)
    _form_errors_flash(form)
    covered_ids, _unknown = _certificate_products(s, form)
    covered = list(s.scalars(select(Product).where(Product.id.in_(covered_ids)))) if covered_ids else []
    return _certificate_page(s, form, cert, covered, 400)


def _certificate_data(cert: Certificate) -> dict:
    """A certificate's form filled in from the certificate."""
    return dict(number=cert.number, issuer=cert.issuer, supplier_id=str(cert.supplier_id or ""),
                valid_from=cert.valid_from, valid_to=cert.valid_to, note=cert.note or "")


@bp.route("/certificates/new", methods=["GET", "POST"])
def certificate_new():
    s = get_session()
    form = CertificateForm(suppliers=suppliers.list_suppliers(s))
    if request.method == "POST":
        return _post_certificate(s, form, None)
    supplier_id = _int_arg("supplier")
    if supplier_id and s.get(Supplier, supplier_id) is not None:
        form.supplier_id.data = str(supplier_id)
    return _certificate_page(s, form, None, [], 200)


@bp.route("/certificates/<id:cert_id>", methods=["GET", "POST"])
def certificate_edit(cert_id: int):
    s = get_session()
    cert = s.get(Certificate, cert_id) or abort(404)
    if request.method == "POST":
        return _post_certificate(s, CertificateForm(suppliers=suppliers.list_suppliers(s)), cert)
    form = CertificateForm(suppliers=suppliers.list_suppliers(s), data=_certificate_data(cert))
    return _certificate_page(s, form, cert, sorted(cert.products, key=lambda p: p.sku), 200)


@bp.route("/certificates/<id:cert_id>/scan", methods=["GET", "POST"])
def certificate_scan(cert_id: int):
    s = get_session()
    cert = s.get(Certificate, cert_id) or abort(404)
    if request.method == "GET":
        return _send_instance_file(cert.scan_path)
    form = ScanForm(prefix="scan")
    if _take_upload(form, "scan", lambda name, data, folder: suppliers.set_certificate_scan(
            s, cert.id, name, data, folder, actor_id=_actor())):
        flash(_("扫描件已上传"), "success")
        return redirect(url_for("catalogue.certificate_edit", cert_id=cert.id))
    flash(_("扫描件未上传：%(reason)s", reason="；".join(str(e) for e in form.scan.errors)), "error")
    cert_form = CertificateForm(suppliers=suppliers.list_suppliers(s), formdata=None, data=_certificate_data(cert))
    return render_template("inventory/certificate_form.html", form=cert_form, cert=cert,
                           covered=sorted(cert.products, key=lambda p: p.sku), scan_form=form,
                           today=local_today()), 400
