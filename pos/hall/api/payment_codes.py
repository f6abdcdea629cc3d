"""Payment codes at the till (issue 15): the cashier scans the customer's 付款码 in the payment
dialog, the server takes the money through the provider the code belongs to (WeChat Pay or
Alipay, pos.payments.providers.provider_for_code), and the till then records the sale with the
attempt's id (POST /sales, a payment with ``attempt_id``).

The state machine is pos.payments.service's: no call to a provider is made inside a database
transaction (the request's session is committed before each call). The till polls
GET /payment-codes/<id> every 2–3 s while the answer is "userpaying" (shown as 等待顾客输入密码)
or "unknown"; after PAYMENT_CODE_WAIT_SECONDS (30) without the money the server reverses the
order and answers "reversed". POST …/cancel reverses at once (the cashier gives up)."""
from __future__ import annotations

from typing import Literal, Optional

from flask import current_app, jsonify
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import Field

from pos.core.db import get_session
from pos.core.openapi import ApiError, ClientId, Code, PositiveFen, RequestModel, ResponseModel, Text, json_body, \
    operation
from pos.core.web import requires
from pos.hall.api.base import bp, created_response, find_till
from pos.payments import credentials, service
from pos.payments.attempts import PaymentAttempt
from pos.payments.providers import WECHAT, provider_for_code

MAX_ATTEMPT_ID = 2**31 - 1


class PaymentCodeIn(RequestModel):
    till: Code = Field(description="The till's code, e.g. H1")
    client_sale_id: ClientId = Field(description="The sale this payment is for (the till's uuid of the sale)")
    amount_fen: PositiveFen = Field(description="What the code pays of the sale (the rest: cash)")
    code: Text(40, 1) = Field(description="The scanned payment code: WeChat 18 digits starting 10–15, "  # type: ignore[valid-type]
                                          "Alipay 16–24 digits starting 25–30")


class PaymentCodeOut(ResponseModel):
    attempt_id: int
    state: Literal["success", "userpaying", "failed", "reversed", "unknown"] = Field(
        description="success: paid, record the sale with this attempt_id; userpaying: the customer confirms "
                    "(show 等待顾客输入密码, poll); unknown: no answer yet (poll); failed / reversed: nothing taken")
    provider: Literal["wechat", "alipay"]
    transaction_id: Optional[str] = Field(description="The provider's transaction id, once paid")
    message: str = Field(description="For the cashier")
    amount_fen: int
    sale_id: Optional[int] = Field(description="The sale recorded with it, once one is")


def _provider(name: str):
    provider = credentials.provider_for(current_app, name)
    if provider is None:
        raise ApiError(422, _("未配置微信支付商户") if name == WECHAT else _("未配置支付宝商户"), "code")
    return provider


def _attempt(attempt_id: int) -> PaymentAttempt:
    attempt = get_session().get(PaymentAttempt, attempt_id) if 0 < attempt_id <= MAX_ATTEMPT_ID else None
    if attempt is None:
        raise ApiError(404, _("付款记录不存在"))
    return attempt


@bp.post("/payment-codes")
@requires("till")
@operation("Take a payment code (付款码) for a sale: pay through WeChat Pay or Alipay", body=PaymentCodeIn,
           responses={201: PaymentCodeOut}, errors=(409, 422), tags=("payments",),
           description="The code decides the provider. 422 for a code that is no payment code or a provider "
                       "without merchant credentials; 409 while another code payment of the same sale is "
                       "unfinished or paid and not used by a sale.")
def take_payment_code():
    body = json_body(PaymentCodeIn)
    code = body.code.strip()
    name = provider_for_code(code)
    if name is None:
        raise ApiError(422, _("不是微信或支付宝付款码"), "code")
    provider = _provider(name)
    s = get_session()
    till = find_till(body.till)
    till_id, till_code, cashier_id = till.id, till.code, current_user.id
    s.commit()  # nothing held while the provider answers
    attempt = service.start(s, provider, till_id=till_id, till_code=till_code, cashier_id=cashier_id,
                            client_sale_id=body.client_sale_id, amount_fen=body.amount_fen, code=code,
                            description=current_app.config.get("HALL_NAME") or "梵净山珍·松桃馆")
    return created_response(service.view(attempt))


@bp.get("/payment-codes/<int(max=2147483647):attempt_id>")
@requires("till")
@operation("A payment code's state, after one query to the provider while it is still unfinished",
           responses={200: PaymentCodeOut}, errors=(404,), tags=("payments",),
           description="The till polls every 2–3 s while userpaying or unknown (at most one query every "
                       "PAYMENT_CODE_POLL_SECONDS); after PAYMENT_CODE_WAIT_SECONDS (30) since the pay call "
                       "without the money the order is reversed and the answer is reversed.")
def get_payment_code(attempt_id: int):
    s = get_session()
    attempt = _attempt(attempt_id)
    name = attempt.provider
    s.commit()  # the read-only start of a GET ends here: what follows writes, in short transactions
    provider = credentials.provider_for(current_app, name)
    if provider is not None:
        attempt = service.advance(s, provider, attempt_id, service.Timing.from_config(current_app.config))
    return jsonify(service.view(attempt))


@bp.post("/payment-codes/<int(max=2147483647):attempt_id>/cancel")
@requires("till")
@operation("Give up a payment code: the order is reversed (撤销) now", responses={200: PaymentCodeOut},
           errors=(404, 409, 422), tags=("payments",),
           description="409 once a sale was recorded with it (refund the sale instead). A reverse the "
                       "provider does not answer is retried by the next poll and by the tick.")
def cancel_payment_code(attempt_id: int):
    s = get_session()
    attempt = _attempt(attempt_id)
    provider = _provider(attempt.provider)
    s.commit()
    attempt = service.cancel(s, provider, attempt_id)
    return jsonify(service.view(attempt))
