"""The till's product endpoints: what a scanned code is, search, and the quick keys."""
from __future__ import annotations

from typing import Literal, Optional

from flask import jsonify
from flask_babel import gettext as _
from pydantic import Field
from sqlalchemy import select

from inventory.catalogue import get_product, resolve_scan
from inventory.search import CAP as SEARCH_CAP
from inventory.search import search_ids
from inventory.certification import certified_product_ids
from inventory.localtime import local_today
from inventory.models import Product, Unit
from inventory.expiry import expired_only
from pos.core.db import get_session
from pos.core.openapi import ApiError, Code, QueryModel, ResponseModel, operation, query_args
from pos.core.web import requires
from pos.hall import popular
from pos.hall.api.base import bp, find_till
from pos.hall.popular import popular_for_search

QUICK_KEYS = 12
QUICK_DAYS = popular.DAYS
SEARCH_PER_PAGE = 20


class LookupQuery(QueryModel):
    code: str = Field(min_length=1, max_length=200, description="A scanned or typed barcode, scale label or sku")
    till: Optional[Code] = Field(None, description="The till scanning (its location's stock decides `warning`)")


class SearchQuery(QueryModel):
    q: str = Field("", max_length=120, description="Barcode, sku prefix, name or pinyin initials (mjc)")
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(SEARCH_PER_PAGE, ge=1, le=100)


class ProductOut(ResponseModel):
    product_id: int
    sku: str
    name: str
    unit: Literal["piece", "kg"]
    sold_by_weight: bool
    price_fen: int
    certified: bool = Field(description="Covered by a poverty-alleviation certificate valid today (local date)")


class LookupOut(ProductOut):
    qty_milli: Optional[int] = Field(description="From a scale label; null for a barcode or sku (one piece)")
    amount_fen: Optional[int] = Field(description="From a price label; null otherwise")
    source: Literal["barcode", "sku", "scale_weight", "scale_price"]
    warning: Optional[str] = Field(None, description="For the cashier, e.g. the books hold the product at the "
                                                     "till's location only in expired lots (it sells all the same)")


class SearchOut(ResponseModel):
    items: list[ProductOut]
    total: int
    page: int
    per_page: int
    pages: int


class QuickOut(ResponseModel):
    most_sold: list[ProductOut] = Field(description=f"Up to {QUICK_KEYS} products with the most sale lines "
                                                    f"in the last {QUICK_DAYS} days")
    weighed: list[ProductOut] = Field(description=f"Up to {QUICK_KEYS} active products sold by weight")


def products_out(s, ids: list[int]) -> list[dict]:
    """ProductOut rows for ``ids``, in that order: one query for the products, one for their certificates."""
    if not ids:
        return []
    rows = {r.id: r for r in s.execute(
        select(Product.id, Product.sku, Product.name, Product.unit, Product.sold_by_weight, Product.price_fen)
        .where(Product.id.in_(ids)))}
    certs = certified_product_ids(s, list(rows), local_today())
    return [{"product_id": r.id, "sku": r.sku, "name": r.name, "unit": r.unit.value,
             "sold_by_weight": bool(r.sold_by_weight), "price_fen": r.price_fen, "certified": certs[r.id].certified}
            for r in (rows[i] for i in ids if i in rows)]


def _products_out(products: list[Product]) -> list[dict]:
    certs = certified_product_ids(get_session(), [p.id for p in products], local_today())
    return [_product_out(p, certs[p.id].certified) for p in products]


def _product_out(p: Product, certified: bool) -> dict:
    return {"product_id": p.id, "sku": p.sku, "name": p.name, "unit": p.unit.value,
            "sold_by_weight": bool(p.sold_by_weight), "price_fen": p.price_fen, "certified": certified}


# --- products ----------------------------------------------------------------------------------------

@bp.get("/products/lookup")
@requires("till")
@operation("What a scanned or typed code is: barcode, scale label or sku", query=LookupQuery,
           responses={200: LookupOut}, errors=(404, 422), tags=("products",))
def lookup():
    args = query_args(LookupQuery)
    s = get_session()
    scan = resolve_scan(s, args.code)  # ValidationError (422) for a label the product can't be sold by
    product = get_product(s, scan.product_id) if scan is not None else None
    if product is None or not product.active:
        raise ApiError(404, _("未知条码：%(code)s", code=args.code.strip()[:64]))
    body = _products_out([product])[0]
    body.update(qty_milli=scan.qty_milli, amount_fen=scan.amount_fen, source=scan.source, warning=None)
    if args.till is not None and expired_only(s, location_id=find_till(args.till).location_id, product_id=product.id):
        body["warning"] = _("该商品账面只剩过期批次，请检查货架")
    return jsonify(body)


@bp.get("/products/search")
@requires("till")
@operation("Search products on sale by barcode, sku, name or pinyin initials", query=SearchQuery,
           responses={200: SearchOut}, tags=("products",),
           description=f"Best first (inventory.search): the exact code, skus starting with the query, pinyin "
                       f"initials starting with it, names starting with it, then (from 3 characters) names or "
                       f"initials containing it; within each, the most sold in the last {QUICK_DAYS} days first, "
                       f"then by sku. At most {SEARCH_CAP} results in all (`total`), paged.")
def search():
    args = query_args(SearchQuery)
    s = get_session()
    ids = search_ids(s, args.q, sold=popular_for_search(s), cap=SEARCH_CAP)
    start = (args.page - 1) * args.per_page
    page_ids = ids[start:start + args.per_page]
    total = len(ids)
    return jsonify({"items": products_out(s, page_ids), "total": total, "page": args.page,
                    "per_page": args.per_page, "pages": max(1, -(-total // args.per_page))})


@bp.get("/products/quick")
@requires("till")
@operation("Quick keys: the most sold products of the last 30 days and the weighed goods",
           responses={200: QuickOut}, tags=("products",))
def quick():
    s = get_session()
    most_sold, weighed = quick_products(s)
    out = {row["product_id"]: row for row in products_out(s, most_sold + weighed)}
    return jsonify({"most_sold": [out[i] for i in most_sold], "weighed": [out[i] for i in weighed]})


def quick_products(s) -> tuple[list[int], list[int]]:
    """The quick keys (product ids): the most sold products of the last 30 local days (through the
    sales' date index, pos.hall.popular), and the weighed goods."""
    return quick_keys(s, popular.most_sold(s, limit=QUICK_KEYS))


def quick_keys(s, most_sold: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """The quick keys from ``popular.most_sold`` (already read: the catalogue reads it once for both)."""
    weighed = list(s.scalars(
        select(Product.id)
        .where(Product.active.is_(True), Product.sold_by_weight.is_(True), Product.unit == Unit.KG)
        .order_by(Product.sku)
        .limit(QUICK_KEYS)
    ))
    return [pid for pid, _lines in most_sold[:QUICK_KEYS]], weighed
