"""Catalogue import: preview a file (what it would change, every problem of every row), and apply
it, all or nothing. The format is described in ``inventory.catalogue_sheet``; the plan is made by
``inventory.catalogue_import_plan``."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import barcodes as barcode_rules
from . import catalogue, suppliers
from .audit import record
from .catalogue_import_plan import FIELD_COLUMNS, _Plan, _plan
from .catalogue_sheet import ImportPreview, ImportRefused, ImportResult, RowError
from .errors import ValidationError
from .localtime import local_today
from .models import Category, Certificate, Product, Supplier

# --- public entry points -------------------------------------------------------------------------

def preview_import(s: Session, filename: str, data: bytes, *, today: Optional[dt.date] = None) -> ImportPreview:
    """What importing the file would do, row by row, and every error with its row number.
    Writes nothing. ValidationError for a file that is not a spreadsheet at all."""
    return _plan(s, filename, data, today or local_today()).preview


def apply_import(s: Session, filename: str, data: bytes, *, actor_id: Optional[int] = None,
                 today: Optional[dt.date] = None) -> ImportResult:
    """Import the file: all of it, or nothing (ImportRefused with the row errors)."""
    today = today or local_today()
    plan = _plan(s, filename, data, today)
    if plan.preview.errors:
        raise ImportRefused(plan.preview.errors)
    state = {"row": 0}
    try:
        with s.begin_nested():
            result = _apply(s, plan, actor_id, state)
    except ValidationError as error:  # a rule the plan did not foresee: nothing is kept
        column = FIELD_COLUMNS.get(error.field or "", "")
        raise ImportRefused([RowError(state["row"], plan.headers.get(column, column), str(error))]) from None
    record(s, user_id=actor_id, action="catalogue.import", entity="catalogue", entity_id=None,
           after={"file": (filename or "")[:120], "created": result.created, "updated": result.updated,
                  "unchanged": result.unchanged, "suppliers_created": result.suppliers_created,
                  "categories_created": result.categories_created,
                  "certificates_created": result.certificates_created,
                  "certificates_changed": result.certificates_changed})
    s.flush()
    return result


def _apply(s: Session, plan: _Plan, actor_id, state: dict) -> ImportResult:
    """Write the checked plan. Every value was checked by the catalogue's own rules while planning
    (product_rules.clean_product, barcodes.validate, the supplier and certificate rules); products
    are written through the catalogue's own writers (_new_product / _change_product), in bulk."""
    category_ids = {c.name: c.id for c in s.scalars(select(Category))}
    for name in plan.new_categories:
        category_ids[name] = catalogue.create_category(s, name, actor_id=actor_id).id
    supplier_ids = {sup.name: sup.id for sup in s.scalars(select(Supplier))}
    for name, values in plan.new_suppliers.items():
        supplier_ids[name] = suppliers.create_supplier(s, **values, actor_id=actor_id).id

    # Barcodes that move to another product leave their present owner first.
    for row in plan.rows:
        state["row"] = row.row_no
        if row.product is not None and row.barcodes is not None:
            keep = [(b.code, b.kind) for b in row.product.barcodes if b.code in row.barcodes]
            if len(keep) != len(row.product.barcodes):
                catalogue._change_product(s, row.product, {"barcodes": keep}, actor_id)
    s.flush()

    created = updated = unchanged = 0
    products_by_sku: dict[str, Product] = {}
    new_products: list[Product] = []
    for row in plan.rows:
        state["row"] = row.row_no
        values = dict(row.values)
        if row.barcodes is not None:
            values["barcodes"] = [(code, barcode_rules.classify(code)) for code in row.barcodes]
        if row.has_category:
            values["category_id"] = category_ids[row.category] if row.category else None
        if row.has_supplier:
            values["supplier_id"] = supplier_ids[row.supplier] if row.supplier else None
        if row.set_origin:
            own = row.own_origin or (None, None, None)
            values.update(origin_county=own[0], origin_township=own[1], origin_village=own[2],
                          origin_county_code=row.county_code if own[0] else None)
        if row.product is None:
            product = catalogue._new_product(values)
            s.add(product)
            new_products.append(product)
            created += 1
        else:
            if row.changes:
                values.pop("sku", None)
                catalogue._change_product(s, row.product, values, actor_id)
                updated += 1
            else:
                unchanged += 1
            product = row.product
        products_by_sku[row.sku] = product
    s.flush()  # one batch of INSERTs for the new products and their barcodes
    for product in new_products:
        catalogue._record_created(s, product, actor_id)

    state["row"] = 0
    certs_created = certs_changed = 0
    cert_ids = {}
    for number, values in plan.new_certs.items():
        values = dict(values)
        supplier_name = values.pop("supplier", None)
        skus = plan.link.get(number, [])
        cert = suppliers.create_certificate(
            s, **values, supplier_id=supplier_ids.get(supplier_name) if supplier_name else None,
            product_ids=[products_by_sku[sku].id for sku in skus], actor_id=actor_id)
        cert_ids[number] = cert.id
        certs_created += 1
    touched: dict[int, dict] = {}
    for number, skus in plan.link.items():
        if number in cert_ids:
            continue
        cert = s.scalar(select(Certificate).where(Certificate.number == number))
        ids = [p.id for p in cert.products]
        new_ids = ids + [products_by_sku[sku].id for sku in skus if products_by_sku[sku].id not in ids]
        changes = touched.setdefault(cert.id, {})
        if new_ids != ids:
            changes["product_ids"] = new_ids
        if number in plan.cert_dates:
            changes["valid_from"], changes["valid_to"] = plan.cert_dates[number]
    for cert_id, skus in plan.unlink.items():
        cert = s.get(Certificate, cert_id)
        changes = touched.setdefault(cert_id, {})
        ids = changes.get("product_ids", [p.id for p in cert.products])
        drop = {products_by_sku[sku].id for sku in skus}
        changes["product_ids"] = [pid for pid in ids if pid not in drop]
    for cert_id, changes in touched.items():
        if changes:
            suppliers.update_certificate(s, cert_id, actor_id=actor_id, **changes)
            certs_changed += 1
    s.flush()
    return ImportResult(created=created, updated=updated, unchanged=unchanged,
                        categories_created=len(plan.new_categories), suppliers_created=len(plan.new_suppliers),
                        certificates_created=certs_created, certificates_changed=certs_changed)
