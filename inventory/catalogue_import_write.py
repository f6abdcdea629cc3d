"""Writing a checked catalogue import plan, in bulk: a file of 20,000 products is a few dozen
statements, not tens of thousands of ORM objects.

What it writes is what the catalogue's own writers (``catalogue._new_product``,
``catalogue._change_product``, ``suppliers.create_certificate``) write for each row, row for row:
the products and their barcodes, the price history (``price_changes``), one audit event per
product created, per price change and per change of other fields, the certificates and the
products they cover. Every value was checked by the catalogue's own rules while planning
(``inventory.catalogue_import_plan``).

The catalogue version the tills follow (``inventory.catalogue_changes``): bulk statements bypass
its ORM hook, so the import takes ONE number for the whole file and writes it in every product row
it inserts or changes. Changes to certificates that already exist still go through
``suppliers.update_certificate`` (the hook stamps the products they cover).

The plan reads the file's existing products as snapshots (``inventory.catalogue_import_known``),
not ORM objects; whatever the session held of them from before is expired afterwards (the deleted
barcodes expunged), so the session shows what the database now holds.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import barcodes as barcode_rules
from . import catalogue, search_index, suppliers
from .audit import event_row
from .catalogue_changes import take_version
from .catalogue_import_known import KnownCode, KnownProduct
from .bulk_rows import insert_rows, key_filters, update_rows
from .catalogue_sheet import ImportResult
from .localtime import utcnow
from .models import (
    AuditEvent,
    Barcode,
    Category,
    Certificate,
    PriceChange,
    Product,
    Supplier,
    Unit,
    VatRate,
    certificate_products,
)
from .product_rules import LABELS, plain_value

# Every column a new product row gets (the same for every row, so that one INSERT serves them all).
PRODUCT_COLUMNS = tuple(key for key in LABELS if key != "barcodes")
NEW_DEFAULTS = {"unit": Unit.PIECE, "sold_by_weight": False, "vat": VatRate.AGRICULTURAL_9}
CHUNK = 1000


def _chunks(items: list, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


class _Writes:
    """The statements' rows, gathered row by row of the file and written in bulk."""

    def __init__(self, actor_id: Optional[int]) -> None:
        self.actor_id = actor_id
        self.now = utcnow()
        self.initials: dict[str, str] = {}          # pinyin initials, once per distinct name
        self.gone: list[KnownCode] = []              # barcodes leaving a product
        self.new: list[tuple[dict, list]] = []       # (product row, [(code, kind)])
        self.updates: list[dict] = []                # {"id": …, changed columns …}
        self.barcodes: list[dict] = []               # codes added to existing products
        self.prices: list[dict] = []
        self.events: list[dict] = []                 # audit events of changed products, in row order
        self.touched: set[int] = set()               # ids of the existing products written

    def pinyin(self, name: str) -> str:
        initials = self.initials.get(name)
        if initials is None:
            initials = self.initials[name] = catalogue.pinyin_initials(name)
        return initials

    def event(self, action: str, product_id: int, before: Any, after: Any) -> None:
        self.events.append(event_row(user_id=self.actor_id, action=action, entity="product", entity_id=product_id,
                                     before=before, after=after, at=self.now))

    def take_off(self, product: KnownProduct, wanted: list[str]) -> None:
        """Barcodes that move to another product leave their present owner first (as
        ``_change_product(…, {"barcodes": kept})`` does, audited on their own)."""
        old = [b.code for b in product.barcodes]
        gone = [b for b in product.barcodes if b.code not in wanted]
        if gone:
            self.gone.extend(gone)
            self.touched.add(product.id)
            self.event("product.update", product.id, {"barcodes": old},
                       {"barcodes": [code for code in old if code not in {b.code for b in gone}]})

    def create(self, values: dict) -> None:
        values = dict(values)
        codes = values.pop("barcodes", [])
        unknown = set(values) - set(PRODUCT_COLUMNS)
        if unknown:
            raise TypeError(f"unknown product fields: {sorted(unknown)}")
        row = {key: values.get(key, NEW_DEFAULTS.get(key)) for key in PRODUCT_COLUMNS}
        row.update(pinyin_initials=self.pinyin(row["name"]), active=True, created_at=self.now)
        self.new.append((row, codes))

    def change(self, product: KnownProduct, values: dict) -> None:
        """What ``catalogue._change_product`` does to one product, as rows to write."""
        before, after = {}, {}
        changed: dict[str, Any] = {}
        for key, value in values.items():
            if key in ("barcodes", "price_fen"):
                continue
            old = getattr(product, key)
            if old != value:
                before[key], after[key] = plain_value(old), plain_value(value)
                changed[key] = value
        if "name" in after:
            changed["pinyin_initials"] = self.pinyin(changed["name"])
        if "barcodes" in values:
            wanted = dict(values["barcodes"])
            have = [b.code for b in product.barcodes if b.code in wanted]   # what take_off left
            added = [(code, kind) for code, kind in values["barcodes"] if code not in have]
            self.barcodes.extend({"product_id": product.id, "code": code, "kind": kind} for code, kind in added)
            now_codes = have + [code for code, _kind in added]
            if sorted(have) != sorted(now_codes):
                before["barcodes"], after["barcodes"] = have, now_codes
        if "price_fen" in values and values["price_fen"] != product.price_fen:
            old_price, new_price = product.price_fen, values["price_fen"]
            changed["price_fen"] = new_price
            self.prices.append({"product_id": product.id, "old_price_fen": old_price, "new_price_fen": new_price,
                                "changed_by_id": self.actor_id, "changed_at": self.now})
            self.event("product.price_change", product.id, {"price_fen": old_price}, {"price_fen": new_price})
        if after:
            self.event("product.update", product.id, before, after)
        self.updates.append({"id": product.id, **changed})
        self.touched.add(product.id)


def write_plan(s: Session, plan, actor_id: Optional[int], state: dict) -> ImportResult:
    """Write the checked plan (``inventory.catalogue_import_plan._Plan``); ``state["row"]`` names
    the row being written, for a rule the plan did not foresee (ValidationError)."""
    category_ids = {c.name: c.id for c in s.scalars(select(Category))}
    for name in plan.new_categories:
        category_ids[name] = catalogue.create_category(s, name, actor_id=actor_id).id
    supplier_ids = {sup.name: sup.id for sup in s.scalars(select(Supplier))}
    for name, values in plan.new_suppliers.items():
        supplier_ids[name] = suppliers.create_supplier(s, **values, actor_id=actor_id).id
    s.flush()

    writes = _Writes(actor_id)
    for row in plan.rows:
        state["row"] = row.row_no
        if row.product is not None and row.barcodes is not None:
            writes.take_off(row.product, row.barcodes)

    created = updated = unchanged = 0
    for row in plan.rows:
        state["row"] = row.row_no
        values = dict(row.values)
        if row.barcodes is not None:
            values["barcodes"] = [(code, row.kinds.get(code) or barcode_rules.classify(code)) for code in row.barcodes]
        if row.has_category:
            values["category_id"] = category_ids[row.category] if row.category else None
        if row.has_supplier:
            values["supplier_id"] = supplier_ids[row.supplier] if row.supplier else None
        if row.set_origin:
            own = row.own_origin or (None, None, None)
            values.update(origin_county=own[0], origin_township=own[1], origin_village=own[2],
                          origin_county_code=row.county_code if own[0] else None)
        if row.product is None:
            writes.create(values)
            created += 1
        elif row.changes:
            values.pop("sku", None)
            writes.change(row.product, values)
            updated += 1
        else:
            unchanged += 1
    state["row"] = 0

    ids_by_sku = {row.sku: row.product.id for row in plan.rows if row.product is not None}
    version = take_version(s) if writes.new or writes.updates else None
    products, barcodes = Product.__table__, Barcode.__table__   # Core statements: no ORM object per row
    for chunk in _chunks([b.id for b in writes.gone]):
        s.execute(barcodes.delete().where(barcodes.c.id.in_(chunk)))
    new_rows = [dict(row, catalogue_version=version) for row, _codes in writes.new]
    with search_index.indexed_at_end(s.connection()):
        _insert(s, products, new_rows)   # COPY or executemany, then the ids read back by sku
    new_skus = [row["sku"] for row in new_rows]
    for where in key_filters(s, products.c.sku, new_skus):
        ids_by_sku.update(s.execute(select(products.c.sku, products.c.id).where(where)).all())
    barcode_rows = [{"product_id": ids_by_sku[row["sku"]], "code": code, "kind": kind}
                    for row, codes in writes.new for code, kind in codes] + writes.barcodes
    _insert(s, barcodes, barcode_rows)
    _update_products(s, writes.updates, version)
    _insert(s, PriceChange.__table__, writes.prices)
    created_events = [event_row(user_id=actor_id, action="product.create", entity="product",
                                entity_id=ids_by_sku[row["sku"]], at=writes.now,
                                after=_snapshot(row, [code for code, _kind in codes]))
                      for row, codes in writes.new]
    _insert(s, AuditEvent.__table__, writes.events + created_events)
    certs_created, certs_changed, linked = _write_certificates(s, plan, ids_by_sku, supplier_ids, actor_id)
    _expire_touched(s, writes.touched | set(linked), {b.id for b in writes.gone})
    s.flush()
    return ImportResult(created=created, updated=updated, unchanged=unchanged,
                        categories_created=len(plan.new_categories), suppliers_created=len(plan.new_suppliers),
                        certificates_created=certs_created, certificates_changed=certs_changed)


def _expire_touched(s: Session, product_ids: set[int], barcode_ids: set[int]) -> None:
    """The session as the database now is: the plan read snapshots, not ORM objects, but the
    caller's session may hold some of the products written (or their barcodes, or certificates
    whose products changed) from before the import; those are expired, the deleted barcodes
    expunged."""
    for (cls, ident, _token), obj in list(s.identity_map.items()):   # by key: an expired object's id would load it
        if cls is Product and ident[0] in product_ids:
            s.expire(obj)
        elif cls is Barcode and ident[0] in barcode_ids:
            s.expunge(obj)
        elif cls is Certificate and product_ids:
            s.expire(obj, ["products"])


def _insert(s: Session, table, rows: list[dict]) -> None:
    insert_rows(s, table, rows)


def _update_products(s: Session, updates: list[dict], version: Optional[int]) -> None:
    """One UPDATE per set of changed columns, for all its products (``bulk_rows.update_rows``)."""
    groups: dict[tuple, list[dict]] = {}
    for row in updates:
        groups.setdefault(tuple(sorted(key for key in row if key != "id")), []).append(row)
    for columns, rows in groups.items():
        update_rows(s, Product.__table__, [{"id": row["id"], **{key: row[key] for key in columns}} for row in rows],
                    {"catalogue_version": version})


def _snapshot(row: dict, codes: list[str]) -> dict:
    """``product_rules.product_snapshot`` of a product inserted from ``row``."""
    data = {key: plain_value(row[key]) for key in PRODUCT_COLUMNS}
    data["barcodes"] = codes
    data["active"] = row["active"]
    return data


def _write_certificates(s: Session, plan, ids_by_sku: dict, supplier_ids: dict,
                        actor_id: Optional[int]) -> tuple[int, int, list[int]]:
    """New certificates (checked by ``suppliers._clean_certificate``, their products linked in
    bulk: each is a row of the file created or changed, so stamped with the import's version);
    products added to existing ones in bulk too; other changes to existing ones through
    ``suppliers.update_certificate``. Returns (created, changed, ids of the products linked)."""
    created = changed = 0
    cert_ids = {}
    links = []
    for number, values in plan.new_certs.items():
        values = dict(values)
        supplier_name = values.pop("supplier", None)
        product_ids = list(dict.fromkeys(ids_by_sku[sku] for sku in plan.link.get(number, [])))
        cleaned = suppliers._clean_certificate(s, dict(
            values, supplier_id=supplier_ids.get(supplier_name) if supplier_name else None,
            product_ids=product_ids, note=None), None)
        cleaned.pop("products")
        cert = Certificate(**cleaned)
        s.add(cert)
        s.flush()  # no product named yet: takes no catalogue version
        links.extend({"certificate_id": cert.id, "product_id": pid} for pid in product_ids)
        s.add(AuditEvent(**event_row(user_id=actor_id, action="certificate.create", entity="certificate",
                                     entity_id=cert.id, after={
                                         "number": cert.number, "issuer": cert.issuer, "supplier_id": cert.supplier_id,
                                         "valid_from": cert.valid_from.isoformat(),
                                         "valid_to": cert.valid_to.isoformat(), "product_ids": sorted(product_ids),
                                         "note": cert.note})))
        cert_ids[number] = cert.id
        created += 1
    _insert(s, certificate_products, links)
    for cert_id in cert_ids.values():
        s.expire(s.get(Certificate, cert_id), ["products"])

    touched: dict[int, dict] = {}
    for number, skus in plan.link.items():
        if number in cert_ids:
            continue
        cert = s.scalar(select(Certificate).where(Certificate.number == number))
        ids = list(plan.covered[cert.id]) if cert.id in plan.covered else [p.id for p in cert.products]
        new_ids = ids + list(dict.fromkeys(ids_by_sku[sku] for sku in skus if ids_by_sku[sku] not in ids))
        changes = touched.setdefault(cert.id, {})
        if new_ids != ids:
            changes["product_ids"] = new_ids
        if number in plan.cert_dates:
            changes["valid_from"], changes["valid_to"] = plan.cert_dates[number]
    for cert_id, skus in plan.unlink.items():
        cert = s.get(Certificate, cert_id)
        changes = touched.setdefault(cert_id, {})
        ids = changes.get("product_ids", [p.id for p in cert.products])
        drop = {ids_by_sku[sku] for sku in skus}
        changes["product_ids"] = [pid for pid in ids if pid not in drop]
    more_links = []
    for cert_id, changes in touched.items():
        if not changes:
            continue
        changed += 1
        if set(changes) == {"product_ids"} and cert_id not in plan.unlink and cert_id in plan.covered:
            # Products added, nothing else: linked in bulk, audited as update_certificate does.
            # Each added product is a row of the file with a change, so stamped with the version.
            old = sorted(plan.covered[cert_id])
            more_links.extend({"certificate_id": cert_id, "product_id": pid}
                              for pid in changes["product_ids"] if pid not in plan.covered[cert_id])
            s.add(AuditEvent(**event_row(user_id=actor_id, action="certificate.update", entity="certificate",
                                         entity_id=cert_id, before={"product_ids": old},
                                         after={"product_ids": sorted(changes["product_ids"])})))
            s.expire(s.get(Certificate, cert_id), ["products"])
        else:
            suppliers.update_certificate(s, cert_id, actor_id=actor_id, **changes)
    _insert(s, certificate_products, more_links)
    return created, changed, [link["product_id"] for link in links + more_links]
