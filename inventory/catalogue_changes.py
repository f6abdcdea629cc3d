"""What changed in the catalogue a till sells from, and since when: ``products.catalogue_version``.

Every flush that changes a product (price, name, unit, scale code, on sale or retired …), adds,
changes or removes one of its barcodes, or creates, changes or removes a certificate covering it
(its dates, its number, the products it names) takes ONE new number from the catalogue counter
(``inventory.documents.take_number``, kind ``catalogue``) and stamps it on every product it
touched. The tills' delta catalogue (pos.hall.api.catalogue) asks for ``catalogue_version >
cursor``.

Why a counter row and not a timestamp or a sequence: the counter's row stays locked until the
transaction that took the number ends, so numbers are handed out in commit order. A reader that
sees the counter at N (committed) sees every product stamped ≤ N, and a product stamped later gets a
number > N: nothing is skipped however transactions interleave (on PostgreSQL as on SQLite).

It listens to every ORM session (``before_flush``), so every way of editing the catalogue — the
pages, the CLI, the demo — is tracked without each remembering to. Bulk ``INSERT``/``UPDATE``
statements on products, barcodes or certificates bypass it: the only ones are the catalogue
import's (``inventory.catalogue_import_write``), which takes one number with ``take_version`` for
the whole file and writes it in every product row it inserts or changes.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import event, select
from sqlalchemy.orm import Session, attributes

from .models import Barcode, Certificate, Product, certificate_products

COUNTER_KIND = "catalogue"
COUNTER_PREFIX = "products"
COUNTER_DAY = dt.date(2000, 1, 1)  # one counter for all time: the day column is only part of the key


def current_version(s: Session) -> int:
    """The last catalogue change committed (0 before the first)."""
    from .documents import DocumentCounter

    value = s.scalar(select(DocumentCounter.last_no).where(
        DocumentCounter.kind == COUNTER_KIND, DocumentCounter.prefix == COUNTER_PREFIX,
        DocumentCounter.day == COUNTER_DAY))
    return value or 0


def take_version(s: Session) -> int:
    """A new catalogue version, for writes that bypass the ORM (the import's bulk statements)."""
    from .documents import take_number

    return take_number(s, COUNTER_PREFIX, COUNTER_DAY, kind=COUNTER_KIND)



def _changed(s: Session, obj) -> bool:
    return s.is_modified(obj, include_collections=True)


def _history_ids(obj, key: str) -> Iterable[int]:
    """Every product id an attribute names now or named before this flush."""
    hist = attributes.get_history(obj, key)
    for value in [*(hist.added or ()), *(hist.unchanged or ()), *(hist.deleted or ())]:
        if isinstance(value, Product):
            if value.id is not None:
                yield value.id
        elif isinstance(value, int):
            yield value


def _touched(s: Session) -> tuple[set, set[int]]:
    """(product objects, product ids) that this flush changes for a till."""
    objects: set = set()
    ids: set[int] = set()
    new, dirty, deleted = s.new, s.dirty, s.deleted   # each a fresh set: built once, not once per object
    for obj in list(new) + list(dirty) + list(deleted):
        is_new_or_gone = obj in new or obj in deleted
        if isinstance(obj, Product):
            if obj in deleted:
                continue  # a deleted product is gone for the tills by its absence (never happens: retired instead)
            if is_new_or_gone or _changed(s, obj):
                objects.add(obj)
        elif isinstance(obj, Barcode):
            if is_new_or_gone or _changed(s, obj):
                if obj.product is not None and obj not in deleted:
                    objects.add(obj.product)
                ids.update(_history_ids(obj, "product_id"))
                ids.update(_history_ids(obj, "product"))
        elif isinstance(obj, Certificate):
            if is_new_or_gone or _changed(s, obj):
                ids.update(_history_ids(obj, "products"))
                if obj.id is not None:
                    # the covered products as the database has them (also when not loaded)
                    ids.update(s.scalars(select(certificate_products.c.product_id)
                                         .where(certificate_products.c.certificate_id == obj.id)))
    return objects, ids


@event.listens_for(Session, "before_flush")
def _stamp_catalogue_changes(s: Session, flush_context, instances) -> None:
    objects, ids = _touched(s)
    if not objects and not ids:
        return
    version = take_version(s)
    for product in objects:
        product.catalogue_version = version
    deleted = s.deleted
    for pid in ids:
        product = s.get(Product, pid)
        if product is not None and product not in deleted:
            product.catalogue_version = version
