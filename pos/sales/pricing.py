"""Pricing: the arithmetic of a basket, shared by the till's running total and by
``pos.sales.service.record_sale``, with the checks of every line it prices.

The server prices every sale itself and never trusts a client's totals. Every fen paid belongs to
exactly one sale line: order discounts and 抹零 are spread over the lines (pro rata, the remainder
to the largest line), so that the lines' net amounts add up to the total, and certified +
uncertified = total. 抹零 applies only to a sale paid wholly in cash (``cash_rounding_applies``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from inventory import ledger
from inventory.certification import certified_product_ids
from inventory.localtime import local_date, utcnow
from inventory.models import Product, Supplier, Unit, VatRate, is_weighed
from inventory.money import line_amount_fen, round_down_to_jiao, spread_fen
from pos.core.db import read_connection
from pos.core.errors import PosError
from pos.models import PaymentMethod

# Integer columns are 32-bit on PostgreSQL; no amount or quantity may come near that.
MAX_QTY_MILLI = ledger.MAX_QTY_MILLI
MAX_AMOUNT_FEN = 1_000_000_000  # ¥10,000,000: far beyond any basket, far below 2^31
MAX_LINES = 500


@dataclass(frozen=True)
class LineIn:
    product_id: int
    qty_milli: int
    unit_price_fen: Optional[int] = None  # None: the catalogue price; a counter passes what it charged
    line_discount_fen: int = 0
    slot: Optional[str] = None
    # ((lot_id, qty_milli), …) adding up to qty_milli: take exactly these lots (a group delivery
    # hands over the lots picked for its order); empty: first expiry first out at the location.
    lots: tuple[tuple[Optional[int], int], ...] = ()


@dataclass(frozen=True)
class PricedLine:
    product_id: int
    sku: str
    name: str
    unit: str
    sold_by_weight: bool
    qty_milli: int
    unit_price_fen: int
    gross_fen: int
    line_discount_fen: int   # the line's own discount
    discount_fen: int        # line discount + its share of the order discount and of 抹零
    net_fen: int
    certified: bool
    certificate_no: Optional[str]
    slot: Optional[str] = None


@dataclass(frozen=True)
class Basket:
    lines: list[PricedLine]
    subtotal_fen: int        # Σ gross
    discount_fen: int        # line discounts + order discount
    rounding_fen: int        # 抹零, 0–9 fen, only ever down
    total_fen: int           # = Σ net
    certified_fen: int
    uncertified_fen: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_int(value) -> bool:
    """An int that is no bool (True is an int to Python, never a quantity or an id here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def checked_fen(value, label, *, field_name: Optional[str] = None, error=PosError) -> int:
    if not is_int(value) or value < 0:
        raise error(_l("%(label)s必须是不小于零的整数（分）", label=label), field_name)
    if value > MAX_AMOUNT_FEN:
        raise error(_l("%(label)s太大", label=label), field_name)
    return value


# --- pricing ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Priced:
    """One line to price, with everything the arithmetic needs (no database)."""
    qty_milli: int
    unit_price_fen: int
    line_discount_fen: int
    certified: bool


def compute_amounts(items: Sequence[_Priced], *, order_discount_fen: int = 0, rounding_to_jiao: bool = False
                    ) -> tuple[list[tuple[int, int, int]], int, int, int]:
    """The arithmetic of a basket, with no database: per line (gross, discount, net), and
    (subtotal, discount, rounding). The order discount and 抹零 are spread over the lines in
    proportion to their amounts after line discounts, so Σ net == subtotal − discount − rounding."""
    gross = [line_amount_fen(i.unit_price_fen, i.qty_milli) for i in items]
    after_line = [g - i.line_discount_fen for g, i in zip(gross, items)]
    after_discounts = sum(after_line) - order_discount_fen
    total = round_down_to_jiao(after_discounts) if rounding_to_jiao else after_discounts
    rounding = after_discounts - total
    shares = spread_fen(order_discount_fen + rounding, after_line)
    lines = [(g, g - a + sh, a - sh) for g, a, sh in zip(gross, after_line, shares)]
    line_discounts = sum(i.line_discount_fen for i in items)
    return lines, sum(gross), line_discounts + order_discount_fen, rounding


@dataclass(frozen=True)
class SupplierSnapshot:
    """What a sale line keeps of a product's supplier: its name, and its origin (the product's when
    the product has none of its own)."""
    name: str
    origin_county: Optional[str]
    origin_county_code: Optional[str]
    origin_township: Optional[str]
    origin_village: Optional[str]


@dataclass(frozen=True)
class CatalogueProduct:
    """What pricing and a sale line's snapshot read of a product, with its supplier: one row of a
    Core select, not an ORM object (a checkout loads nothing into the session). It answers what a
    Product would for them: ``weighed``, ``origin()``, ``supplier.name``."""
    id: int
    sku: str
    name: str
    unit: Unit
    sold_by_weight: bool
    active: bool
    price_fen: int
    cost_fen: Optional[int]
    vat: VatRate
    supplier_id: Optional[int]
    origin_county: Optional[str]
    origin_county_code: Optional[str]
    origin_township: Optional[str]
    origin_village: Optional[str]
    supplier: Optional[SupplierSnapshot]

    @property
    def weighed(self) -> bool:
        return is_weighed(self.unit, self.sold_by_weight)

    origin = Product.origin  # the one rule (the product's own origin, else its supplier's), on these fields


_P, _S = Product.__table__, Supplier.__table__
_ORIGIN = ("origin_county", "origin_county_code", "origin_township", "origin_village")
# Built once; plain table columns on the session's connection: no ORM load, no autoflush.
_PRODUCTS = (
    select(_P.c.id, _P.c.sku, _P.c.name, _P.c.unit, _P.c.sold_by_weight, _P.c.active, _P.c.price_fen,
           _P.c.cost_fen, _P.c.vat, _P.c.supplier_id, *(_P.c[k] for k in _ORIGIN),
           _S.c.name.label("supplier_name"), *(_S.c[k].label("supplier_" + k) for k in _ORIGIN))
    .select_from(_P.outerjoin(_S, _S.c.id == _P.c.supplier_id))
    .where(_P.c.id.in_(bindparam("ids", expanding=True)))
)


def catalogue_products(s: Session, ids) -> dict[int, CatalogueProduct]:
    """The products of ``ids`` that exist, with their supplier, in one query."""
    out = {}
    for r in read_connection(s).execute(_PRODUCTS, {"ids": sorted(set(ids))}):
        supplier = None if r.supplier_name is None else SupplierSnapshot(
            r.supplier_name, r.supplier_origin_county, r.supplier_origin_county_code, r.supplier_origin_township,
            r.supplier_origin_village)
        out[r.id] = CatalogueProduct(
            r.id, r.sku, r.name, r.unit, bool(r.sold_by_weight), bool(r.active), r.price_fen, r.cost_fen, r.vat,
            r.supplier_id, r.origin_county, r.origin_county_code, r.origin_township, r.origin_village, supplier)
    return out


def price_lines(s: Session, lines: Sequence[LineIn], *, order_discount_fen: int, rounding_to_jiao: bool,
                sold_at: dt.datetime, allow_inactive: bool, use_given_prices: bool
                ) -> tuple[Basket, dict[int, CatalogueProduct], dict]:
    """Check and price the lines (the products read in one query): the basket, the products by id
    and their certification on the sale's local date. PosError, naming the field, for a bad line."""
    if not isinstance(lines, (list, tuple)) or not lines:
        raise PosError(_l("至少要有一件商品"), "lines")
    if len(lines) > MAX_LINES:
        raise PosError(_l("一笔销售最多 %(n)s 行", n=MAX_LINES), "lines")
    for i, line in enumerate(lines):
        if not isinstance(line, LineIn) or not is_int(line.product_id):
            raise PosError(_l("第 %(n)s 行：请选择商品", n=i + 1), f"lines-{i}-product_id")
    products = catalogue_products(s, [line.product_id for line in lines])
    items: list[_Priced] = []
    for i, line in enumerate(lines):
        n = i + 1
        product = products.get(line.product_id)
        if product is None:
            raise PosError(_l("第 %(n)s 行：商品不存在", n=n), f"lines-{i}-product_id")
        if not product.active and not allow_inactive:
            raise PosError(_l("第 %(n)s 行：「%(product)s」已停售", n=n, product=product.name), f"lines-{i}-product_id")
        qty = line.qty_milli
        if not is_int(qty) or qty <= 0:
            raise PosError(_l("第 %(n)s 行：数量必须大于零", n=n), f"lines-{i}-qty_milli")
        if qty > MAX_QTY_MILLI:
            raise PosError(_l("第 %(n)s 行：数量太大", n=n), f"lines-{i}-qty_milli")
        weighed = product.weighed
        if not weighed and qty % 1000:
            raise PosError(_l("第 %(n)s 行：「%(product)s」按件销售，数量必须是整数件", n=n, product=product.name),
                           f"lines-{i}-qty_milli")
        price = line.unit_price_fen if (use_given_prices and line.unit_price_fen is not None) else product.price_fen
        price = checked_fen(price, _l("第 %(n)s 行单价", n=n), field_name=f"lines-{i}-unit_price_fen")
        if price * qty // 1000 > MAX_AMOUNT_FEN:
            raise PosError(_l("第 %(n)s 行：金额太大", n=n), f"lines-{i}-qty_milli")
        discount = checked_fen(line.line_discount_fen, _l("第 %(n)s 行折扣", n=n), field_name=f"lines-{i}-line_discount_fen")
        if discount > line_amount_fen(price, qty):
            raise PosError(_l("第 %(n)s 行：折扣不能超过该行金额", n=n), f"lines-{i}-line_discount_fen")
        if line.slot is not None and (not isinstance(line.slot, str) or len(line.slot) > 8):
            raise PosError(_l("第 %(n)s 行：货道编号不正确", n=n), f"lines-{i}-slot")
        if line.lots and (not isinstance(line.lots, tuple)
                          or any(not is_int(q) or q <= 0 for _, q in line.lots)
                          or sum(q for _, q in line.lots) != qty):
            raise PosError(_l("第 %(n)s 行：批次数量与销售数量不符", n=n), f"lines-{i}-lots")
        items.append(_Priced(qty, price, discount, False))
    order_discount_fen = checked_fen(order_discount_fen, _l("整单折扣"), field_name="order_discount_fen")
    after_line = sum(line_amount_fen(i.unit_price_fen, i.qty_milli) - i.line_discount_fen for i in items)
    if after_line > MAX_AMOUNT_FEN:
        raise PosError(_l("销售金额太大"), "lines")
    if order_discount_fen > after_line:
        raise PosError(_l("整单折扣不能超过应收金额"), "order_discount_fen")

    # Certified means: covered by a certificate valid on the sale's LOCAL date.
    certs = certified_product_ids(read_connection(s), list(products), local_date(sold_at))
    amounts, subtotal, discount, rounding = compute_amounts(
        items, order_discount_fen=order_discount_fen, rounding_to_jiao=rounding_to_jiao)
    priced = []
    for line, item, (gross, line_total_discount, net) in zip(lines, items, amounts):
        product = products[line.product_id]
        cert = certs[product.id]
        priced.append(PricedLine(
            product_id=product.id, sku=product.sku, name=product.name, unit=product.unit.value,
            sold_by_weight=bool(product.sold_by_weight), qty_milli=item.qty_milli,
            unit_price_fen=item.unit_price_fen, gross_fen=gross, line_discount_fen=item.line_discount_fen,
            discount_fen=line_total_discount, net_fen=net, certified=cert.certified,
            certificate_no=cert.certificate_no, slot=line.slot,
        ))
    total = subtotal - discount - rounding
    certified = sum(p.net_fen for p in priced if p.certified)
    basket = Basket(priced, subtotal, discount, rounding, total, certified, total - certified)
    return basket, products, certs


def price_basket(s: Session, lines: Sequence[LineIn], *, order_discount_fen: int = 0, rounding_to_jiao: bool = False,
                 sold_at: Optional[dt.datetime] = None) -> Basket:
    """Price a basket as record_sale would (the till's running total, with its certified part).
    A line's unit price is the catalogue price unless the line gives one (a counter's).
    ``rounding_to_jiao``: apply 抹零 — pass ``cash_rounding_applies(…)`` for the sale's payments."""
    sold_at = sold_at or utcnow()
    basket, _, _ = price_lines(s, lines, order_discount_fen=order_discount_fen,
                               rounding_to_jiao=bool(rounding_to_jiao), sold_at=sold_at,
                               allow_inactive=False, use_given_prices=True)
    return basket


def cash_rounding_applies(rounding_to_jiao: bool, payments: Sequence[Any]) -> bool:
    """抹零 ("现金收款抹零") applies only to a sale paid wholly in cash: a WeChat, Alipay, card or
    voucher payment, alone or beside cash, is charged to the fen. The one place for that rule."""
    def method(p) -> object:
        m = getattr(p, "method", None)
        return getattr(m, "value", m)

    # No payment at all (a basket that rounds to ¥0.00) is no non-cash payment: rounded like cash.
    if not isinstance(payments, (list, tuple)):  # malformed: record_sale's payment check refuses it with a message
        payments = ()
    return bool(rounding_to_jiao) and all(method(p) == PaymentMethod.CASH.value for p in payments)
