"""The products a catalogue file names, as the database has them: plain snapshots read with three
Core queries per file (the products' columns, their barcodes, their certificates), not ORM objects.

Planning a re-import of 20,000 products through the ORM (an object and an identity-map entry per
product and per barcode, ``selectinload`` of two collections) was most of its time; the plan only
reads these products and the writer (``inventory.catalogue_import_write``) changes them with bulk
statements, so nothing needs them mapped. A snapshot answers what the plan and the writer ask of a
product: its columns, ``category`` and ``supplier`` (the session's few ORM objects), ``barcodes``
(id, code) in id order as ``Product.barcodes``, ``certificates`` (id, number, dates) and ``origin()``
— the mapped product's own rule, not a copy.
"""
from __future__ import annotations

import datetime as dt
from typing import NamedTuple, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .bulk_rows import key_filters
from .models import Barcode, Certificate, Product, Supplier, certificate_products
from .product_rules import LABELS

# The product's own columns the import reads and writes (every field of a product row but its barcodes).
COLUMNS = tuple(key for key in LABELS if key != "barcodes")


class KnownCode(NamedTuple):
    id: int
    code: str


class KnownCertificate(NamedTuple):
    id: int
    number: str
    valid_from: dt.date
    valid_to: dt.date


class KnownProduct:
    """One product of the catalogue as the file's plan sees it (read-only by convention)."""

    __slots__ = ("id", "sku", "active", "pinyin_initials", *(c for c in COLUMNS if c != "sku"),
                 "category", "supplier", "barcodes", "certificates")

    # The product's effective origin, by Product's own rule (its own, else its supplier's): the
    # function reads only the columns and ``supplier``, which a snapshot has.
    origin = Product.origin

    def __repr__(self) -> str:
        return f"<KnownProduct {self.id} {self.sku}>"


def load_known(s: Session, skus: set, categories_by_id: dict) -> dict[str, KnownProduct]:
    """sku -> snapshot of every product of the catalogue with one of ``skus``.
    ``categories_by_id``: the session's categories (a handful, read once per file)."""
    table = Product.__table__
    names = ("id", "sku", "active", "pinyin_initials", *(c for c in COLUMNS if c != "sku"))
    columns = [table.c[name] for name in names]
    found: dict[str, KnownProduct] = {}
    by_id: dict[int, KnownProduct] = {}
    for where in key_filters(s, table.c.sku, skus):
        for values in s.execute(select(*columns).where(where)):
            product = KnownProduct()
            for name, value in zip(names, values):
                setattr(product, name, value)
            product.barcodes, product.certificates = [], []
            found[product.sku] = by_id[product.id] = product
    if not by_id:
        return found
    barcodes, certificates = Barcode.__table__, Certificate.__table__
    for where in key_filters(s, barcodes.c.product_id, by_id):
        for code_id, product_id, code in s.execute(
                select(barcodes.c.id, barcodes.c.product_id, barcodes.c.code)
                .where(where).order_by(barcodes.c.id)):
            by_id[product_id].barcodes.append(KnownCode(code_id, code))
    for where in key_filters(s, certificate_products.c.product_id, by_id):
        for product_id, cert_id, number, valid_from, valid_to in s.execute(
                select(certificate_products.c.product_id, certificates.c.id, certificates.c.number,
                       certificates.c.valid_from, certificates.c.valid_to)
                .join(certificates, certificates.c.id == certificate_products.c.certificate_id)
                .where(where)):
            by_id[product_id].certificates.append(KnownCertificate(cert_id, number, valid_from, valid_to))
    supplier_ids = set()
    for product in by_id.values():
        product.category = categories_by_id.get(product.category_id)
        supplier_ids.add(product.supplier_id)
    suppliers_by_id: dict[Optional[int], Supplier] = {}
    for where in key_filters(s, Supplier.id, supplier_ids - {None}):
        suppliers_by_id.update((sup.id, sup) for sup in s.scalars(select(Supplier).where(where)))
    for product in by_id.values():
        product.supplier = suppliers_by_id.get(product.supplier_id)
    return found
