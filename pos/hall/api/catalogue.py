"""The catalogue a till sells from when the server cannot be reached (static/js/till_offline.js
keeps it in the browser's IndexedDB): ``GET /api/v1/catalogue?till=H1`` gives everything, with a
cursor; ``&since=<cursor>`` gives only the products changed since (price, name, barcodes, scale
code, certificates) and the ids of products taken off sale. Scale-label rules, quick keys and the
hall's settings are small and come whole every time.

Change tracking is ``products.catalogue_version`` (inventory.catalogue_changes): the cursor is the
last catalogue change committed when the answer was read, and every query here filters on
``catalogue_version > since AND catalogue_version <= cursor``, so a change committed while the answer
is being read comes with the next one. One query per kind (products, barcodes, certificates,
rules, quick keys, settings), whatever the catalogue's size.
"""
from __future__ import annotations

import gc
import json
from typing import Literal, Optional

from flask import Response
from pydantic import Field
from sqlalchemy import String, and_, select, type_coerce

from inventory.catalogue import scale_label_patterns
from inventory.catalogue_changes import current_version
from inventory.localtime import local_today, utcnow
from inventory.models import Barcode, Certificate, Product, certificate_products
from pos.core.db import get_session
from pos.core.openapi import Code, QueryModel, ResponseModel, operation, query_args
from pos.core.web import requires
from pos.hall.api.base import bp, find_till
from pos.hall import popular
from pos.hall.api.products import quick_keys
from pos.hall.settings import hall_settings


class CatalogueQuery(QueryModel):
    till: Optional[Code] = Field(None, description="The till asking (checked to exist and be active)")
    since: Optional[int] = Field(None, ge=0, le=2**62, description="The cursor of the till's last answer; "
                                                                   "absent: the whole catalogue")


class CertificateOut(ResponseModel):
    certificate_no: str
    valid_from: str = Field(description="Local date, inclusive (YYYY-MM-DD)")
    valid_to: str = Field(description="Local date, inclusive (YYYY-MM-DD)")


class CatalogueProductOut(ResponseModel):
    product_id: int
    sku: str
    name: str
    pinyin_initials: str
    unit: Literal["piece", "kg"]
    sold_by_weight: bool
    weighed: bool = Field(description="Sold in thousandths (kg or by weight): any qty_milli, not whole pieces only")
    price_fen: int
    barcodes: list[str]
    scale_plu: Optional[int]
    certificates: list[CertificateOut] = Field(description="Every certificate covering the product; certified on "
                                                           "a local day when one is valid on it")


class QuickKeysOut(ResponseModel):
    most_sold: list[int]
    weighed: list[int]
    popular: list[list[int]] = Field(description=f"[product_id, sale lines in the last {popular.DAYS} days] of the "
                                                 f"up to {popular.POPULAR} most sold products on sale, most first: "
                                                 f"the search's order within a rank (inventory.search)")


class TillSettingsOut(ResponseModel):
    hall_name: str
    rounding_to_jiao: bool
    discount_limit_percent: int


class CatalogueOut(ResponseModel):
    cursor: int = Field(description="Pass as `since` next time")
    full: bool = Field(description="True: the whole catalogue (replace what you hold); false: only changes")
    products: list[CatalogueProductOut] = Field(description="Products on sale, new or changed since the cursor")
    removed: list[int] = Field(description="Products taken off sale since the cursor")
    scale_rules: list[str] = Field(description="Scale-label patterns in the order a scan tries them (inventory.scale)")
    quick_keys: QuickKeysOut
    settings: TillSettingsOut
    refreshed_at: str = Field(description="When this answer was made (ISO 8601, UTC)")
    today: str = Field(description="The hall's local date (Asia/Shanghai)")


def catalogue_delta(s, since: Optional[int]) -> dict:
    """The catalogue, or what changed in it since ``since`` (None: everything)."""
    cursor = current_version(s)
    full = since is None or since > cursor  # a cursor from the future: a restored database; start again
    window = [Product.catalogue_version <= cursor]
    if not full:
        window.append(Product.catalogue_version > since)
    on_sale = and_(*window, Product.active.is_(True))
    # Rows straight to dicts: plain tuples (the unit as its stored text, no enum objects), and no
    # garbage collection passes while 100k small dicts are made (they would find nothing to free).
    conn = s.connection()  # Core rows: no ORM result processing
    collecting = gc.isenabled()
    gc.disable()
    try:
        barcodes: dict[int, list[str]] = {}
        for pid, code in conn.execute(select(Barcode.product_id, Barcode.code)
                                   .join(Product, Product.id == Barcode.product_id)
                                   .where(on_sale).order_by(Barcode.product_id, Barcode.id)):
            if pid in barcodes:
                barcodes[pid].append(code)
            else:
                barcodes[pid] = [code]
        certificates: dict[int, list[dict]] = {}
        for pid, number, valid_from, valid_to in conn.execute(
                select(certificate_products.c.product_id, Certificate.number, Certificate.valid_from,
                       Certificate.valid_to)
                .join(Certificate, Certificate.id == certificate_products.c.certificate_id)
                .join(Product, Product.id == certificate_products.c.product_id)
                .where(on_sale).order_by(certificate_products.c.product_id, Certificate.valid_from,
                                         Certificate.number)):
            certificates.setdefault(pid, []).append(
                {"certificate_no": number, "valid_from": valid_from.isoformat(), "valid_to": valid_to.isoformat()})
        no_codes: list[str] = []
        no_certificates: list[dict] = []
        products = [{
            "product_id": pid, "sku": sku, "name": name, "pinyin_initials": initials or "", "unit": unit,
            "sold_by_weight": bool(by_weight), "weighed": unit == "kg" or bool(by_weight), "price_fen": price,
            "barcodes": barcodes.get(pid, no_codes), "scale_plu": plu, "certificates": certificates.get(pid, no_certificates),
        } for pid, sku, name, initials, unit, by_weight, price, plu in conn.execute(
            select(Product.id, Product.sku, Product.name, Product.pinyin_initials, type_coerce(Product.unit, String),
                   Product.sold_by_weight, Product.price_fen, Product.scale_plu)
            .where(on_sale).order_by(Product.id))]
    finally:
        if collecting:
            gc.enable()
    removed = [] if full else list(s.scalars(
        select(Product.id).where(*window, Product.active.is_(False)).order_by(Product.id)))
    sold = popular.most_sold(s)
    most_sold, weighed = quick_keys(s, sold)
    settings = hall_settings(s)
    return {
        "cursor": cursor, "full": full, "products": products, "removed": removed,
        "scale_rules": scale_label_patterns(s),
        "quick_keys": {"most_sold": most_sold, "weighed": weighed, "popular": [[pid, n] for pid, n in sold]},
        "settings": {"hall_name": settings.hall_name, "rounding_to_jiao": settings.rounding_to_jiao,
                     "discount_limit_percent": settings.discount_limit_percent},
        "refreshed_at": utcnow().isoformat(), "today": local_today().isoformat(),
    }


@bp.get("/catalogue")
@requires("till")
@operation("The catalogue a till sells from offline: everything, or what changed since a cursor",
           query=CatalogueQuery, responses={200: CatalogueOut}, errors=(422,), tags=("products",),
           description="Without `since`: every product on sale (`full` true). With the cursor of the last "
                       "answer: products new or changed since (price, name, barcodes, scale code, "
                       "certificates) and `removed`, the ids taken off sale. Rules, quick keys and settings "
                       "come whole every time.")
def catalogue():
    args = query_args(CatalogueQuery)
    if args.till is not None:
        find_till(args.till)
    # the whole catalogue is the till's biggest answer (100k products: ~15 MB): compact, UTF-8, unsorted
    body = json.dumps(catalogue_delta(get_session(), args.since), ensure_ascii=False, separators=(",", ":"))
    return Response(body, mimetype="application/json")

