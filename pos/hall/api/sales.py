"""The till's sale endpoints: the running total, recording a sale, finding one (by receipt
number, QR code or the till's recent list), voids, a manager's approval by PIN, and refunds."""
from __future__ import annotations

from dataclasses import asdict
from typing import Literal, Optional

from flask import current_app, jsonify
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import Field

from pos.core.db import get_session
from pos.core.openapi import (
    ApiError,
    ClientId,
    Code,
    Fen,
    Id,
    Moment,
    PositiveFen,
    QtyMilli,
    QueryModel,
    RequestModel,
    ResponseModel,
    json_body,
    operation,
    query_args,
)
from pos.core.web import requires
from pos.hall import shifts
from pos.hall.api.base import (
    MAX_PAYMENTS,
    MAX_SALE_LINES,
    Method,
    Pin,
    Reason,
    Ref,
    approving_manager,
    bp,
    created_response,
    find_till,
    required_manager,
    till_code,
)
from pos.hall.settings import hall_settings
from pos.hall.till import recent_receipts
from pos.models import PaymentMethod, Sale, Till, User
from pos.models import Refund
from pos.payments import credentials
from pos.payments import service as payments_service
from pos.payments.attempts import PaymentAttempt
from pos.sales import pricing, reading, refunds, service, voids
from pos.sales.offline import OfflineLimits
from pos.sales.links import receipt_no_from_scan


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
    ref: Optional[Ref] = Field(None, description="A manual tender's reference; for a payment code the server "
                                                   "sets the provider's transaction id")
    attempt_id: Optional[Id] = Field(None, description="wechat / alipay: the confirmed payment code "
                                                       "(POST /payment-codes) of this till and client_sale_id, "
                                                       "same amount, not used by another sale. Required for a "
                                                       "method whose merchant credentials are set")


class SaleLineIn(LineIn):
    unit_price_fen: Optional[Fen] = Field(
        None, description="Only with sold_at: the price the till charged offline. When it is not the catalogue's "
                          "price the sale is recorded at it anyway and flagged for the manager (price_differs)")


class SaleIn(RequestModel):
    client_sale_id: ClientId = Field(description="Made by the till (a uuid); sending it again records nothing new")
    till: Code
    sold_at: Optional[Moment] = Field(
        None, description="When the till made the sale offline (ISO 8601 with offset). It decides the day, the "
                          "month, the shift and certification; at most 5 minutes ahead of the server, not before the "
                          "shift opened, not older than OFFLINE_MAX_AGE_DAYS (7). null: now")
    lines: list[SaleLineIn] = Field(min_length=1, max_length=MAX_SALE_LINES)
    order_discount_fen: Fen = 0
    payments: list[PaymentIn] = Field([], max_length=MAX_PAYMENTS)
    rounding_to_jiao: Optional[bool] = Field(None, description="抹零 (applied only when every payment is cash); "
                                                               "null = the hall setting")
    approval_pin: Optional[Pin] = Field(None, description="A manager's PIN, for a discount over the hall's limit")
    receipt_no: Optional[Code] = Field(None, description="A number of a block this till reserved for the sale's "
                                                         "local day (POST /receipt-blocks), not used by another "
                                                         "sale; null: the server numbers the sale")


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
    list_price_fen: Optional[int] = Field(description="The catalogue price when recorded, when the till charged "
                                                      "another (unit_price_fen)")


class PaymentOut(ResponseModel):
    method: str
    amount_fen: int
    tendered_fen: Optional[int]
    change_fen: int
    ref: Optional[str] = Field(description="A payment code's: the provider's transaction id")
    attempt_id: Optional[int] = Field(None, description="The payment code (POST /payment-codes) that paid it")


class SaleRefundOut(ResponseModel):
    refund_no: str
    refunded_at_local: str
    total_fen: int
    method: str
    provider_state: Optional[Literal["pending", "success"]] = Field(
        None, description="Sent back through the payment provider: pending until it confirms (retried)")


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
    price_differs: bool = Field(description="Made offline and recorded at the price the till charged, "
                                            "not the catalogue's: the manager checks it")
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
    refunded_at: Optional[Moment] = Field(
        None, description="When the till made the refund (ISO 8601 with offset): never before the sale, at most "
                          "5 minutes ahead, not before the shift opened, not older than OFFLINE_MAX_AGE_DAYS. null: now")


class RefundOut(ResponseModel):
    refund_id: int
    refund_no: str
    total_fen: int
    provider_state: Optional[Literal["pending", "success"]] = Field(
        None, description="A sale paid by a payment code: the refund goes back through the provider; pending "
                          "until it confirms (the tick retries), success once it does. null: no provider")
    sale: SaleView


def _sale(receipt_no: str) -> Sale:
    return reading.get_sale(get_session(), receipt_no)


def _approver_and_shift(till: Till, body) -> Optional[int]:
    """The sale's approver (as approving_manager), once the cashier may sell on the till's open shift:
    their own, or another's with a manager's approval (pos.hall.shifts.check_may_sell)."""
    approver = approving_manager(body.approval_pin, till_code=till.code, purpose="discount")
    shifts.check_may_sell(get_session(), till.id, actor_id=current_user.id, approved_by_id=approver,
                          client_sale_id=body.client_sale_id, sold_at=body.sold_at)
    return approver


def _limits(moment) -> Optional[OfflineLimits]:
    """The bounds of a sale's or refund's own time, when the till gives one."""
    return OfflineLimits.from_config(current_app.config) if moment is not None else None


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
        return pricing.cash_rounding_applies(hall_rounding, [service.PaymentIn(method=method.value, amount_fen=0)])

    cash_rounding = applies(PaymentMethod.CASH)
    rounding = cash_rounding if body.paid_in_cash else applies(PaymentMethod.WECHAT)
    if not body.lines:  # an emptied basket: nothing to ask the catalogue
        return jsonify({"lines": [], "subtotal_fen": 0, "discount_fen": 0, "rounding_fen": 0, "total_fen": 0,
                        "certified_fen": 0, "uncertified_fen": 0, "rounding_to_jiao": rounding,
                        "cash_rounding_fen": 0, "cash_total_fen": 0})
    lines = [pricing.LineIn(product_id=ln.product_id, qty_milli=ln.qty_milli, line_discount_fen=ln.line_discount_fen)
             for ln in body.lines]
    basket = pricing.price_basket(s, lines, order_discount_fen=body.order_discount_fen, rounding_to_jiao=rounding)
    if cash_rounding == rounding:
        cash_basket = basket
    else:
        cash_basket = pricing.price_basket(s, lines, order_discount_fen=body.order_discount_fen,
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
    if body.sold_at is None:  # an online sale is priced by the server
        for i, ln in enumerate(body.lines):
            if ln.unit_price_fen is not None:
                where = f"lines[{i}].unit_price_fen"
                raise ApiError(422, _("%(field)s：在线销售按目录价格计价，只有离线销售（带 sold_at）可以给出单价",
                                      field=where), where)
    till = find_till(body.till)
    result = service.record_sale(s, service.SaleIn(
        channel="hall",
        location_id=till.location_id,
        till_id=till.id,
        cashier_id=current_user.id,
        client_sale_id=body.client_sale_id,
        lines=[pricing.LineIn(product_id=ln.product_id, qty_milli=ln.qty_milli, line_discount_fen=ln.line_discount_fen,
                              unit_price_fen=ln.unit_price_fen)
               for ln in body.lines],
        payments=[service.PaymentIn(method=p.method, amount_fen=p.amount_fen, tendered_fen=p.tendered_fen, ref=p.ref,
                                    attempt_id=p.attempt_id)
                  for p in body.payments],
        code_methods=frozenset(name for name, ready in credentials.configured(current_app).items() if ready),
        order_discount_fen=body.order_discount_fen,
        rounding_to_jiao=body.rounding_to_jiao,
        approved_by_id=_approver_and_shift(till, body),
        receipt_no=body.receipt_no,
        sold_at=body.sold_at,
        offline=_limits(body.sold_at),
    ))
    return created_response({"receipt_no": result.receipt_no, "total_fen": result.total_fen,
                     "change_fen": result.change_fen, "sale": reading.sale_view(s, result.sale_id)},
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
    return jsonify(reading.sale_view(get_session(), _sale(receipt_no).id))


@bp.get("/sales/recent")
@requires("till")
@operation("A till's last sales, newest first (its 最近小票 list, for a reprint at any time)", query=RecentQuery,
           responses={200: RecentOut}, errors=(404, 422), tags=("sales",))
def recent_sales():
    args = query_args(RecentQuery)
    till = find_till(args.till, status=404, field=None)
    return jsonify({"till": till.code, "items": recent_receipts(get_session(), till.id, limit=args.limit)})


@bp.get("/sales/<receipt_no>")
@requires("till")
@operation("A sale as on its receipt, with what is still refundable per line", responses={200: SaleView},
           errors=(404,), tags=("sales",))
def get_sale(receipt_no: str):
    return jsonify(reading.sale_view(get_session(), _sale(receipt_no).id))


@bp.post("/sales/<receipt_no>/void")
@requires("till")
@operation("Void a sale of the still open shift (a manager approves by PIN)", body=VoidIn,
           responses={200: SaleView}, errors=(403, 404, 422, 429, 503), tags=("sales",))
def void_sale(receipt_no: str):
    body = json_body(VoidIn)
    s = get_session()
    sale = _sale(receipt_no)
    approver = approving_manager(body.approval_pin, till_code=till_code(sale.till_id), purpose="void")
    voids.void_sale(s, sale.id, actor_id=current_user.id, approved_by_id=approver,
                    reason=body.reason)
    return jsonify(reading.sale_view(s, sale.id))


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
    approver = get_session().get(User, required_manager(body.approval_pin, till_code=body.till, purpose=body.purpose))
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
    approver = approving_manager(body.approval_pin, till_code=body.till, purpose="refund")
    shift_id = None
    if body.till is not None:
        open_shift = shifts.current_shift(s, find_till(body.till).id)
        shift_id = open_shift.id if open_shift is not None else None
    result = refunds.refund(
        s, receipt_no=body.receipt_no,
        lines=[(ln.sale_line_id, ln.qty_milli, ln.back_to_stock) for ln in body.lines],
        method=body.method, reason=body.reason, cashier_id=current_user.id,
        approved_by_id=approver, shift_id=shift_id, client_refund_id=body.client_refund_id,
        refunded_at=body.refunded_at, limits=_limits(body.refunded_at),
    )
    provider_state = _through_provider(s, result.refund_id, body.reason)
    sale = reading.get_sale(s, body.receipt_no)
    return created_response({"refund_id": result.refund_id, "refund_no": result.refund_no, "total_fen": result.total_fen,
                             "provider_state": provider_state, "sale": reading.sale_view(s, sale.id)},
                            created=getattr(result, "created", True))


def _through_provider(s, refund_id: int, reason: str) -> Optional[str]:
    """A refund of a payment code: committed first (so it is kept, pending, whatever happens), then
    sent back through the provider outside any transaction; unconfirmed → the tick retries it."""
    row = s.get(Refund, refund_id)
    if row is None or row.provider_state is None:
        return None
    if row.provider_state != payments_service.REFUND_PENDING:
        return row.provider_state
    attempt = s.get(PaymentAttempt, row.attempt_id)
    s.commit()
    provider = credentials.provider_for(current_app, attempt.provider)
    if provider is None:  # credentials removed meanwhile: kept pending until they are set again
        return payments_service.REFUND_PENDING
    return payments_service.refund(s, provider, refund_id, reason=reason)
