"""The till's JSON API under /api/v1: product lookup and quick keys, the running total, sales,
voids, refunds and shifts. Thin handlers: parse (pydantic models, pos.core.openapi), call the domain
function (pos.sales.service, pos.sales.refunds, pos.hall.shifts), answer JSON. Domain errors become 4xx answers
(pos.core.openapi.register_error_handlers) and the request's unit of work is rolled back, so a refused
request changes nothing.

Session-authenticated: the cashier is ``current_user``; every POST carries the page's CSRF token
in the ``X-CSRFToken`` header (CSRFProtect is global). Money is integer fen, quantities integer
qty_milli; the server prices everything itself.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Literal, Optional

from flask import Blueprint, current_app, jsonify
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import Field
from sqlalchemy import func, select

from inventory.catalogue import get_product, resolve_scan, search_products
from inventory.certification import certified_product_ids
from inventory.localtime import local_today, utcnow
from inventory.models import Product, Unit
from inventory.expiry import expired_only
from pos.sales import refunds
from pos.sales import service as sales
from pos.hall import shifts
from pos.accounts.users import HashingBusy, LoginRefused, may_approve
from pos.accounts.auth import approver_for_pin
from pos.core.db import get_session
from pos.core.errors import ShiftError
from pos.models import CashMovementKind, PaymentMethod, Sale, SaleLine, SaleStatus, Shift, Till, User
from pos.core.openapi import (
    ApiError,
    ClientId,
    Code,
    Fen,
    Id,
    PositiveFen,
    QtyMilli,
    QueryModel,
    RequestModel,
    ResponseModel,
    Text,
    Whole,
    bearer_may_read_document,
    build_document,
    json_body,
    limit_body,
    operation,
    query_args,
    register_error_handlers,
)
from pos.sales.links import receipt_no_from_scan
from pos.hall.settings import hall_settings
from pos.hall.till import recent_receipts
from pos.core.web import requires

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Domain arguments named in errors, as the request fields they come from.
register_error_handlers(bp, {"approved_by_id": "approval_pin", "till_id": "till"})

MAX_BODY_BYTES = 256 * 1024   # 200 lines of a sale are ~20 KB
MAX_SALE_LINES = 200
MAX_PAYMENTS = 10
QUICK_KEYS = 12
QUICK_DAYS = 30
SEARCH_PER_PAGE = 20


@bp.before_request
def _limit_body():
    limit_body(MAX_BODY_BYTES)


# --- request and response models ------------------------------------------------------------------

Method = Literal[tuple(m.value for m in PaymentMethod)]  # type: ignore[valid-type]
Denomination = Literal[tuple(str(v) for v in shifts.DENOMINATIONS)]  # type: ignore[valid-type]
Reason = Text(200, 1)
Ref = Text(80)
Pin = Text(20)
Count = Whole(ge=0, le=100_000)


class LookupQuery(QueryModel):
    code: str = Field(min_length=1, max_length=200, description="A scanned or typed barcode, scale label or sku")
    till: Optional[Code] = Field(None, description="The till scanning (its location's stock decides `warning`)")


class SearchQuery(QueryModel):
    q: str = Field("", max_length=120, description="Barcode, sku prefix, name or pinyin initials (mjc)")
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(SEARCH_PER_PAGE, ge=1, le=100)


class TillQuery(QueryModel):
    till: Code = Field(description="The till's code, e.g. H1")


class ScanQuery(QueryModel):
    code: str = Field(min_length=1, max_length=500,
                      description="A receipt number, or the receipt's QR code (its public URL …/r/<number>?t=<token>)")


class RecentQuery(QueryModel):
    till: Code = Field(description="The till's code, e.g. H1")
    limit: int = Field(10, ge=1, le=50)


class RecentSaleOut(ResponseModel):
    receipt_no: str
    sold_at: str = Field(description="ISO 8601, UTC")
    sold_at_local: str
    total_fen: int
    status: Literal["completed", "voided"]
    reprint_count: int
    cashier: Optional[str]


class RecentOut(ResponseModel):
    till: str
    items: list[RecentSaleOut]


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


class LineIn(RequestModel):
    product_id: Id
    qty_milli: QtyMilli = Field(description="Thousandths of the unit: 1 piece = 1000, 523 g of a per-kg product = 523")
    line_discount_fen: Fen = 0


class BasketIn(RequestModel):
    lines: list[LineIn] = Field(max_length=MAX_SALE_LINES)
    order_discount_fen: Fen = 0
    paid_in_cash: bool = Field(False, description="Price as paid wholly in cash (抹零 applies, when on); "
                                                  "false: as paid by WeChat, Alipay, card … (never rounded)")
    rounding_to_jiao: Optional[bool] = Field(None, description="抹零 (cash only); null = the hall setting")


class PricedLineOut(ResponseModel):
    product_id: int
    sku: str
    name: str
    unit: str
    sold_by_weight: bool
    qty_milli: int
    unit_price_fen: int
    gross_fen: int
    line_discount_fen: int
    discount_fen: int = Field(description="Line discount + its share of the order discount and of 抹零")
    net_fen: int
    certified: bool
    certificate_no: Optional[str]
    slot: Optional[str] = None


class BasketOut(ResponseModel):
    lines: list[PricedLineOut]
    subtotal_fen: int
    discount_fen: int
    rounding_fen: int
    total_fen: int
    certified_fen: int
    uncertified_fen: int
    rounding_to_jiao: bool = Field(description="抹零 was applied to these figures (paid wholly in cash, 抹零 on)")
    cash_rounding_fen: int = Field(description="抹零 if the customer pays wholly in cash (0 when 抹零 is off)")
    cash_total_fen: int = Field(description="What the customer pays wholly in cash: total before 抹零 − cash_rounding_fen")


class PaymentIn(RequestModel):
    method: Method
    amount_fen: PositiveFen = Field(description="What counts towards the sale")
    tendered_fen: Optional[Fen] = Field(None, description="Cash handed over (default: the amount); change = tendered − amount")
    ref: Optional[Ref] = None


class SaleIn(RequestModel):
    client_sale_id: ClientId = Field(description="Made by the till (a uuid); sending it again records nothing new")
    till: Code
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_SALE_LINES)
    order_discount_fen: Fen = 0
    payments: list[PaymentIn] = Field([], max_length=MAX_PAYMENTS)
    rounding_to_jiao: Optional[bool] = Field(None, description="抹零 (applied only when every payment is cash); "
                                                               "null = the hall setting")
    approval_pin: Optional[Pin] = Field(None, description="A manager's PIN, for a discount over the hall's limit")


class SaleLineOut(ResponseModel):
    id: int
    line_no: int
    product_id: int
    sku: str
    name: str
    unit: str
    sold_by_weight: bool
    qty_milli: int
    unit_price_fen: int
    gross_fen: int
    discount_fen: int
    net_fen: int
    certified: bool
    certificate_no: Optional[str]
    supplier_name: Optional[str]
    origin_county: Optional[str]
    refunded_qty_milli: int
    refundable_qty_milli: int


class PaymentOut(ResponseModel):
    method: str
    amount_fen: int
    tendered_fen: Optional[int]
    change_fen: int
    ref: Optional[str]


class SaleRefundOut(ResponseModel):
    refund_no: str
    refunded_at_local: str
    total_fen: int
    method: str


class SaleView(ResponseModel):
    id: int
    receipt_no: str
    channel: str
    status: Literal["completed", "voided"]
    till: Optional[str]
    cashier: Optional[str]
    sold_at: str = Field(description="ISO 8601, UTC")
    sold_at_local: str = Field(description="YYYY-MM-DD HH:MM, Asia/Shanghai")
    local_date: str
    subtotal_fen: int
    discount_fen: int
    rounding_fen: int
    total_fen: int
    certified_fen: int
    uncertified_fen: int
    change_fen: int
    after_shift_closed: bool
    lines: list[SaleLineOut]
    payments: list[PaymentOut]
    refunds: list[SaleRefundOut]


class SaleOut(ResponseModel):
    receipt_no: str
    total_fen: int
    change_fen: int
    sale: SaleView


class VoidIn(RequestModel):
    reason: Reason
    approval_pin: Optional[Pin] = None


class RefundLineIn(RequestModel):
    sale_line_id: Id
    qty_milli: QtyMilli
    back_to_stock: bool = Field(True, description="false: damaged, written off to LOSS")


class RefundIn(RequestModel):
    client_refund_id: Optional[ClientId] = None
    receipt_no: Code
    lines: list[RefundLineIn] = Field(min_length=1, max_length=MAX_SALE_LINES)
    method: Optional[Method] = Field(None, description="null: the original sale's first payment method")
    reason: Reason
    approval_pin: Optional[Pin] = None
    till: Optional[Code] = Field(None, description="The till refunding; its open shift counts the refund")


class RefundOut(ResponseModel):
    refund_id: int
    refund_no: str
    total_fen: int
    sale: SaleView


class ShiftOpenIn(RequestModel):
    till: Code
    opening_float_fen: Fen


class ShiftOut(ResponseModel):
    id: int
    till: str
    till_name: str
    status: Literal["open", "closed"]
    cashier_id: int
    cashier: Optional[str]
    opened_at: str
    opening_float_fen: int
    closed_at: Optional[str]


class CurrentShiftOut(ResponseModel):
    till: str
    shift: Optional[ShiftOut]


class CashIn(RequestModel):
    kind: Literal["in", "out"]
    amount_fen: PositiveFen
    reason: Reason
    approval_pin: Optional[Pin] = Field(None, description="A manager's PIN: needed on another cashier's shift")


class CashOut(ResponseModel):
    shift_id: int
    kind: Literal["in", "out"]
    amount_fen: int
    reason: str


class ShiftReportOut(ResponseModel):
    shift: ShiftOut
    sales_count: int
    voids_count: int
    takings_by_method: dict[str, int]
    refunds_by_method: dict[str, int]
    cash_sales_fen: int
    cash_refunds_fen: int
    cash_in_fen: int
    cash_out_fen: int
    opening_float_fen: int
    expected_cash_fen: int
    counted_cash_fen: Optional[int]
    difference_fen: Optional[int]
    certified_fen: int
    total_fen: int
    refunds_count: int
    refunds_total_fen: int
    late_sales_count: int = Field(description="Sales that arrived after the close: shown apart, never in the figures")
    closed: bool
    denominations: dict[str, int] = Field(description="Counted at close: fen value → count")


class CloseIn(RequestModel):
    denominations: dict[Denomination, Count] = Field(
        min_length=1, description='Counted notes and coins: fen value → count, e.g. {"10000": 3, "50": 2}; '
                                  'required (a blank count is refused)')
    approval_pin: Optional[Pin] = Field(None, description="A manager's PIN: needed on another cashier's shift, "
                                                          "and for a difference over the hall's limit")


class HandoverIn(RequestModel):
    approval_pin: Optional[Pin] = Field(None, description="A manager's PIN (not needed when a manager takes over)")


# --- helpers -----------------------------------------------------------------------------------------

def _till(code: str, *, status: int = 422, field: Optional[str] = "till") -> Till:
    till = get_session().scalar(select(Till).where(Till.code == code))
    if till is None or not till.active:
        raise ApiError(status, _("收银台 %(code)s 不存在或已停用", code=code), field)
    return till


def _sale(receipt_no: str) -> Sale:
    return sales.get_sale(get_session(), receipt_no)


def _approver(pin: Optional[str], *, till_code: Optional[str], purpose: str) -> Optional[int]:
    """The manager approving by PIN (throttled by till and by cashier, see pos.accounts.auth); a manager
    or admin at the till approves as themselves."""
    if pin:
        try:
            approver = approver_for_pin(pin, till_code=till_code, purpose=purpose)
        except LoginRefused as refused:
            raise ApiError(429, str(refused), "approval_pin") from None
        except HashingBusy as busy:
            raise ApiError(503, str(busy), "approval_pin") from None
        if approver is None:
            raise ApiError(403, _("店长密码不正确"), "approval_pin")
        return approver
    if may_approve(current_user):
        return current_user.id
    return None


def _shift_approver(shift_id: int, pin: Optional[str], purpose: str) -> Optional[int]:
    """The approver of an action on a shift (404 when there is no such shift), throttled by the
    shift's till and by the cashier asking, as every approval is."""
    return _approver(pin, till_code=_till_code(_shift(shift_id).till_id), purpose=purpose)


def _till_code(till_id: Optional[int]) -> Optional[str]:
    return get_session().scalar(select(Till.code).where(Till.id == till_id)) if till_id else None


def _approver_and_shift(till: Till, body) -> Optional[int]:
    """The sale's approver (as _approver), once the cashier may sell on the till's open shift:
    their own, or another's with a manager's approval (pos.hall.shifts.check_may_sell)."""
    approver = _approver(body.approval_pin, till_code=till.code, purpose="discount")
    shifts.check_may_sell(get_session(), till.id, actor_id=current_user.id, approved_by_id=approver,
                          client_sale_id=body.client_sale_id)
    return approver


def _products_out(products: list[Product]) -> list[dict]:
    certs = certified_product_ids(get_session(), [p.id for p in products], local_today())
    return [_product_out(p, certs[p.id].certified) for p in products]


def _product_out(p: Product, certified: bool) -> dict:
    return {"product_id": p.id, "sku": p.sku, "name": p.name, "unit": p.unit.value,
            "sold_by_weight": bool(p.sold_by_weight), "price_fen": p.price_fen, "certified": certified}


def _iso(moment: Optional[dt.datetime]) -> Optional[str]:
    return moment.isoformat() if moment is not None else None


def _shift_out(shift: Shift) -> dict:
    s = get_session()
    till = shift.till if shift.till is not None else s.get(Till, shift.till_id)
    cashier = s.get(User, shift.cashier_id)
    return {"id": shift.id, "till": till.code, "till_name": till.name, "status": shift.status.value,
            "cashier_id": shift.cashier_id, "cashier": cashier.display_name if cashier else None,
            "opened_at": _iso(shift.opened_at), "opening_float_fen": shift.opening_float_fen,
            "closed_at": _iso(shift.closed_at)}


def _shift(shift_id: int) -> Shift:
    shift = get_session().get(Shift, shift_id)
    if shift is None:
        raise ApiError(404, _("班次不存在"))
    return shift


def _report_out(report) -> dict:
    return {
        "shift": _shift_out(report.shift),
        "sales_count": report.sales_count,
        "voids_count": report.voids_count,
        "takings_by_method": {str(k): v for k, v in report.takings_by_method.items()},
        "refunds_by_method": {str(k): v for k, v in report.refunds_by_method.items()},
        "cash_sales_fen": report.cash_sales_fen,
        "cash_refunds_fen": report.cash_refunds_fen,
        "cash_in_fen": report.cash_in_fen,
        "cash_out_fen": report.cash_out_fen,
        "opening_float_fen": report.opening_float_fen,
        "expected_cash_fen": report.expected_cash_fen,
        "counted_cash_fen": report.counted_cash_fen,
        "difference_fen": report.difference_fen,
        "certified_fen": report.certified_fen,
        "total_fen": report.total_fen,
        "refunds_count": report.refunds_count,
        "refunds_total_fen": report.refunds_total_fen,
        "late_sales_count": report.late_sales_count,
        "closed": report.closed,
        "denominations": dict(report.denominations),
    }


def _created(body: dict, created: bool = True):
    response = jsonify(body)
    response.status_code = 201 if created else 200
    return response


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
    if args.till is not None and expired_only(s, location_id=_till(args.till).location_id, product_id=product.id):
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
    s = get_session()
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
    out = {p.id: row for p, row in zip(most_sold + weighed, _products_out(most_sold + weighed))}
    return jsonify({"most_sold": [out[p.id] for p in most_sold], "weighed": [out[p.id] for p in weighed]})


# --- the running total and sales -------------------------------------------------------------------

@bp.post("/baskets/price")
@requires("till")
@operation("Price a basket as a sale would be priced (the till's running total, with its certified part)",
           body=BasketIn, responses={200: BasketOut}, tags=("sales",))
def price_basket():
    body = json_body(BasketIn)
    s = get_session()
    hall_rounding = hall_settings(s).rounding_to_jiao if body.rounding_to_jiao is None else body.rounding_to_jiao

    def applies(method: PaymentMethod) -> bool:  # the one rule: 抹零 only for a sale paid wholly in cash
        return sales.cash_rounding_applies(hall_rounding, [sales.PaymentIn(method=method.value, amount_fen=0)])

    cash_rounding = applies(PaymentMethod.CASH)
    rounding = cash_rounding if body.paid_in_cash else applies(PaymentMethod.WECHAT)
    if not body.lines:  # an emptied basket: nothing to ask the catalogue
        return jsonify({"lines": [], "subtotal_fen": 0, "discount_fen": 0, "rounding_fen": 0, "total_fen": 0,
                        "certified_fen": 0, "uncertified_fen": 0, "rounding_to_jiao": rounding,
                        "cash_rounding_fen": 0, "cash_total_fen": 0})
    lines = [sales.LineIn(product_id=ln.product_id, qty_milli=ln.qty_milli, line_discount_fen=ln.line_discount_fen)
             for ln in body.lines]
    basket = sales.price_basket(s, lines, order_discount_fen=body.order_discount_fen, rounding_to_jiao=rounding)
    if cash_rounding == rounding:
        cash_basket = basket
    else:
        cash_basket = sales.price_basket(s, lines, order_discount_fen=body.order_discount_fen,
                                         rounding_to_jiao=cash_rounding)
    return jsonify({**asdict(basket), "rounding_to_jiao": rounding,
                    "cash_rounding_fen": cash_basket.rounding_fen, "cash_total_fen": cash_basket.total_fen})


@bp.post("/sales")
@requires("till")
@operation("Record a hall sale (idempotent on client_sale_id)", body=SaleIn,
           responses={201: SaleOut, 200: SaleOut}, errors=(403, 409, 422, 429, 503), tags=("sales",),
           description="201 when recorded; 200 with the same body when the same client_sale_id was "
                       "recorded before with the same content; 409 when with different content.")
def record_sale():
    body = json_body(SaleIn)
    s = get_session()
    till = _till(body.till)
    result = sales.record_sale(s, sales.SaleIn(
        channel="hall",
        location_id=till.location_id,
        till_id=till.id,
        cashier_id=current_user.id,
        client_sale_id=body.client_sale_id,
        lines=[sales.LineIn(product_id=ln.product_id, qty_milli=ln.qty_milli, line_discount_fen=ln.line_discount_fen)
               for ln in body.lines],
        payments=[sales.PaymentIn(method=p.method, amount_fen=p.amount_fen, tendered_fen=p.tendered_fen, ref=p.ref)
                  for p in body.payments],
        order_discount_fen=body.order_discount_fen,
        rounding_to_jiao=body.rounding_to_jiao,
        approved_by_id=_approver_and_shift(till, body),
    ))
    return _created({"receipt_no": result.receipt_no, "total_fen": result.total_fen,
                     "change_fen": result.change_fen, "sale": sales.sale_view(s, result.sale_id)},
                    created=result.created)


@bp.get("/sales/lookup")
@requires("till")
@operation("The sale of a scanned receipt QR code or a typed receipt number (the till's refund box)",
           query=ScanQuery, responses={200: SaleView}, errors=(404, 422), tags=("sales",),
           description="A receipt URL counts only when it is this server's signed link; anything else "
                       "that is no receipt number answers 404.")
def lookup_sale():
    args = query_args(ScanQuery)
    receipt_no = receipt_no_from_scan(current_app.config["SECRET_KEY"], args.code)
    if receipt_no is None:
        raise ApiError(404, _("找不到小票：%(receipt)s", receipt=args.code.strip()[:64]))
    return jsonify(sales.sale_view(get_session(), _sale(receipt_no).id))


@bp.get("/sales/recent")
@requires("till")
@operation("A till's last sales, newest first (its 最近小票 list, for a reprint at any time)", query=RecentQuery,
           responses={200: RecentOut}, errors=(404, 422), tags=("sales",))
def recent_sales():
    args = query_args(RecentQuery)
    till = _till(args.till, status=404, field=None)
    return jsonify({"till": till.code, "items": recent_receipts(get_session(), till.id, limit=args.limit)})


@bp.get("/sales/<receipt_no>")
@requires("till")
@operation("A sale as on its receipt, with what is still refundable per line", responses={200: SaleView},
           errors=(404,), tags=("sales",))
def get_sale(receipt_no: str):
    return jsonify(sales.sale_view(get_session(), _sale(receipt_no).id))


@bp.post("/sales/<receipt_no>/void")
@requires("till")
@operation("Void a sale of the still open shift (a manager approves by PIN)", body=VoidIn,
           responses={200: SaleView}, errors=(403, 404, 422, 429, 503), tags=("sales",))
def void_sale(receipt_no: str):
    body = json_body(VoidIn)
    s = get_session()
    sale = _sale(receipt_no)
    approver = _approver(body.approval_pin, till_code=_till_code(sale.till_id), purpose="void")
    sales.void_sale(s, sale.id, actor_id=current_user.id, approved_by_id=approver,
                    reason=body.reason)
    return jsonify(sales.sale_view(s, sale.id))


class ApprovalIn(RequestModel):
    till: Code
    approval_pin: Pin
    purpose: Literal["discount", "void", "refund", "drawer", "reprint", "cash", "close", "handover"] = "discount"


class ApprovalOut(ResponseModel):
    approver_id: int
    approver: str


@bp.post("/approvals")
@requires("till")
@operation("Check a manager's PIN before the till shows 店长已授权 (throttled by till and cashier; the "
           "request that needs the approval sends the PIN again and is checked again)",
           body=ApprovalIn, responses={200: ApprovalOut}, errors=(403, 422, 429, 503), tags=("sales",))
def check_approval():
    body = json_body(ApprovalIn)
    approver_id = _approver(body.approval_pin, till_code=body.till, purpose=body.purpose)
    if approver_id is None:  # no PIN typed, by a cashier
        raise ApiError(403, _("需要店长授权"), "approval_pin")
    approver = get_session().get(User, approver_id)
    return jsonify({"approver_id": approver.id, "approver": approver.display_name})


# --- refunds -----------------------------------------------------------------------------------------

@bp.post("/refunds")
@requires("till")
@operation("Refund some lines of a sale (a manager approves by PIN; idempotent on client_refund_id)",
           body=RefundIn, responses={201: RefundOut, 200: RefundOut}, errors=(403, 404, 409, 422, 429, 503),
           tags=("refunds",))
def refund():
    body = json_body(RefundIn)
    s = get_session()
    approver = _approver(body.approval_pin, till_code=body.till, purpose="refund")
    shift_id = None
    if body.till is not None:
        open_shift = shifts.current_shift(s, _till(body.till).id)
        shift_id = open_shift.id if open_shift is not None else None
    result = refunds.refund(
        s, receipt_no=body.receipt_no,
        lines=[(ln.sale_line_id, ln.qty_milli, ln.back_to_stock) for ln in body.lines],
        method=body.method, reason=body.reason, cashier_id=current_user.id,
        approved_by_id=approver, shift_id=shift_id, client_refund_id=body.client_refund_id,
    )
    sale = sales.get_sale(s, body.receipt_no)
    return _created({"refund_id": result.refund_id, "refund_no": result.refund_no, "total_fen": result.total_fen,
                     "sale": sales.sale_view(s, sale.id)}, created=getattr(result, "created", True))


# --- shifts ------------------------------------------------------------------------------------------

@bp.post("/shifts")
@requires("till")
@operation("Open a shift at a till (one open shift per till)", body=ShiftOpenIn, responses={201: ShiftOut},
           errors=(409, 422), tags=("shifts",))
def open_shift():
    body = json_body(ShiftOpenIn)
    s = get_session()
    till = _till(body.till)
    try:
        shift = shifts.open_shift(s, till_id=till.id, cashier_id=current_user.id,
                                  opening_float_fen=body.opening_float_fen)
    except ShiftError as error:
        if shifts.current_shift(s, till.id) is not None:
            raise ApiError(409, str(error), "till") from None
        raise
    return _created(_shift_out(shift))


@bp.get("/shifts/current")
@requires("till")
@operation("The open shift of a till (shift is null when none is open)", query=TillQuery,
           responses={200: CurrentShiftOut}, errors=(404,), tags=("shifts",))
def current_shift():
    args = query_args(TillQuery)
    till = _till(args.till, status=404, field=None)
    shift = shifts.current_shift(get_session(), till.id)
    return jsonify({"till": till.code, "shift": _shift_out(shift) if shift is not None else None})


@bp.post("/shifts/<int(max=2147483647):shift_id>/cash")
@requires("till")
@operation("Put cash into or take it out of the drawer during a shift (another cashier's: a manager approves)",
           body=CashIn, responses={201: CashOut}, errors=(403, 404, 422, 429, 503), tags=("shifts",))
def cash(shift_id: int):
    body = json_body(CashIn)
    approver = _shift_approver(shift_id, body.approval_pin, "cash")
    shifts.cash_movement(get_session(), shift_id, kind=CashMovementKind(body.kind).value, amount_fen=body.amount_fen,
                         reason=body.reason, user_id=current_user.id, approved_by_id=approver)
    return _created({"shift_id": shift_id, "kind": body.kind, "amount_fen": body.amount_fen, "reason": body.reason})


@bp.get("/shifts/<int(max=2147483647):shift_id>/report")
@requires("till")
@operation("The shift's X report (open) or Z report (closed): its own cashier's, or a manager's",
           responses={200: ShiftReportOut}, errors=(403, 404), tags=("shifts",))
def shift_report(shift_id: int):
    shifts.check_shift_access(get_session(), _shift(shift_id), actor_id=current_user.id, action="report")
    return jsonify(_report_out(shifts.shift_report(get_session(), shift_id)))


@bp.post("/shifts/<int(max=2147483647):shift_id>/close")
@requires("till")
@operation("Close a shift with the counted cash; returns the Z report", body=CloseIn,
           responses={200: ShiftReportOut}, errors=(403, 404, 422, 429, 503), tags=("shifts",),
           description="403 when it is another cashier's shift, or the difference is over the hall's limit, "
                       "without a manager's approval.")
def close_shift(shift_id: int):
    body = json_body(CloseIn)
    approver = _shift_approver(shift_id, body.approval_pin, "close")
    report = shifts.close_shift(get_session(), shift_id,
                                denominations={int(value): count for value, count in body.denominations.items()},
                                closed_by_id=current_user.id, approved_by_id=approver)
    return jsonify(_report_out(report))


@bp.post("/shifts/<int(max=2147483647):shift_id>/handover")
@requires("till")
@operation("接班: take over another cashier's open shift, with a manager's approval (audited)", body=HandoverIn,
           responses={200: ShiftOut}, errors=(403, 404, 422, 429, 503), tags=("shifts",),
           description="The shift, its drawer and its sales so far pass to the caller, who answers for the "
                       "whole shift at its close.")
def handover(shift_id: int):
    body = json_body(HandoverIn)
    approver = _shift_approver(shift_id, body.approval_pin, "handover")
    shift = shifts.hand_over(get_session(), shift_id, to_user_id=current_user.id, approved_by_id=approver)
    return jsonify(_shift_out(shift))


# --- the document --------------------------------------------------------------------------------------

def _document():
    document = current_app.extensions.get("songtao.openapi")
    if document is None:  # built once: the url_map does not change after start-up
        document = current_app.extensions["songtao.openapi"] = build_document(current_app)
    return jsonify(document)


_document_for_users = requires("account")(_document)


@bp.get("/openapi.json")
@operation("This OpenAPI 3.1 document", responses={200: {"type": "object"}}, tags=("meta",),
           auth="session_or_bearer",
           description="For logged-in users, and for counter integrators with a counter's bearer token.")
def openapi_document():
    if bearer_may_read_document():
        return _document()
    return _document_for_users()


openapi_document.required_area = "account"  # or a counter's token (tests/test_roles.py)


__all__ = ["bp"]
