"""The till's product endpoints: what a scanned code is, search, and the quick keys."""
from __future__ import annotations

import datetime as dt
from typing import Literal, Optional

from flask import jsonify
from flask_babel import gettext as _
from pydantic import Field
from sqlalchemy import func, select

from inventory.catalogue import get_product, resolve_scan, search_products
from inventory.certification import certified_product_ids
from inventory.localtime import local_today, utcnow
from inventory.models import Product, Unit
from inventory.expiry import expired_only
from pos.core.db import get_session
from pos.core.openapi import ApiError, Code, QueryModel, ResponseModel, operation, query_args
from pos.core.web import requires
from pos.hall.api.base import bp, find_till
from pos.models import Sale, SaleLine, SaleStatus

QUICK_KEYS = 12
QUICK_DAYS = 30
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
           responses={200: SearchOut}, tags=("products",))
def search():
    args = query_args(SearchQuery)
    page = search_products(get_session(), args.q, page=args.page, per_page=args.per_page, active_only=True)
    return jsonify({"items": _products_out(list(page.items)), "total": page.total, "page": page.page,
                    "per_page": page.per_page, "pages": page.pages})


@bp.get("/products/quick")
@requires("till")
@operation("Quick keys: the most sold products of the last 30 days and the weighed goods",
           responses={200: QuickOut}, tags=("products",))
def quick():
    most_sold, weighed = quick_products(get_session())
    out = {p.id: row for p, row in zip(most_sold + weighed, _products_out(most_sold + weighed))}
    return jsonify({"most_sold": [out[p.id] for p in most_sold], "weighed": [out[p.id] for p in weighed]})


def quick_products(s) -> tuple[list[Product], list[Product]]:
    """The quick keys: the most sold products of the last 30 days, and the weighed goods."""
    since = utcnow() - dt.timedelta(days=QUICK_DAYS)
    lines = func.count(SaleLine.id).label("lines")
    top = (select(SaleLine.product_id, lines)
           .join(Sale, Sale.id == SaleLine.sale_id)
           .where(Sale.sold_at >= since, Sale.status == SaleStatus.COMPLETED)
           .group_by(SaleLine.product_id)
           .subquery())
    most_sold = list(s.scalars(
        select(Product).join(top, top.c.product_id == Product.id)
        .where(Product.active.is_(True))
        .order_by(top.c.lines.desc(), Product.sku)
        .limit(QUICK_KEYS)
    ))
    weighed = list(s.scalars(
        select(Product)
        .where(Product.active.is_(True), Product.sold_by_weight.is_(True), Product.unit == Unit.KG)
        .order_by(Product.sku)
        .limit(QUICK_KEYS)
    ))
    return most_sold, weighed
