"""The counter API v1 (DESIGN.md, "The counter API, v1"): a contract with the counters' firmware.

All under ``/api/v1/kiosks/<code>/``, JSON, ``Authorization: Bearer <token>``. Machines, not
people, call it, so its views are not behind ``pos.core.web.requires`` (no login, no role, no CSRF):
each is wrapped by ``machine_api`` instead, which checks the bearer token and marks the view
(``view.machine_api = True``) so that the test that every view is protected knows it on purpose.

- 401: no token, or a token that is nobody's;
- 403: the token of another counter, or the counter is retired ("专柜已停用");
- 404: a valid token and a counter code that does not exist;
- 400 malformed JSON, 413 a body over 5 MB, 422 a refused field (with a Chinese message); a batch
  of more than 500 sales is refused whole (422) and nothing is recorded.
"""
from __future__ import annotations

from functools import wraps
from typing import Annotated, Any, Optional

from flask import Blueprint, jsonify, request
from flask_babel import gettext as _
from pydantic import Field, StrictBool, StringConstraints
from sqlalchemy import select

from kiosks import ingest
from kiosks.models import Kiosk, KioskStatus
from kiosks.registry import kiosk_for_token, planogram_view, valid_code
from pos.core.db import get_session
from pos.core.openapi import (
    ApiError,
    PositiveFen,
    RequestModel,
    ResponseModel,
    API_PREFIX,
    NO_CONTROL,
    Whole,
    json_body,
    limit_body,
    operation,
    register_error_handlers,
    validate,
)
from pos.core.web import csrf

MAX_BODY_BYTES = 5 * 1024 * 1024

bp = Blueprint("kiosk_api", __name__, url_prefix=f"{API_PREFIX}/kiosks/<code>")
csrf.exempt(bp)
register_error_handlers(bp)


@bp.before_request
def _limit_body():
    limit_body(MAX_BODY_BYTES)
    # Refuse a declared oversize body before anything reads it (json_body checks a chunked one).
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise ApiError(413, _("请求内容太大（最多 5 MB）"))


# --- models ---------------------------------------------------------------------------------------

Moment = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=NO_CONTROL),
                   Field(description="ISO 8601 with its UTC offset, e.g. 2026-11-26T10:15:00+08:00",
                         json_schema_extra={"format": "date-time"})]
TxnId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Slot = Annotated[str, StringConstraints(min_length=1, max_length=8, pattern=NO_CONTROL)]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=NO_CONTROL)]
Pieces = Whole(gt=0, le=ingest.MAX_QTY, description="Whole pieces")
PriceFen = Whole(ge=0, le=ingest.MAX_UNIT_PRICE_FEN, description="Charged unit price, fen")


class KioskLineIn(RequestModel):
    slot: Optional[Slot] = Field(None, description="The slot sold from (A1 …); or give sku")
    sku: Optional[Sku] = Field(None, description="The product's sku, when the counter sold by sku")
    qty: Pieces
    unit_price_fen: PriceFen


class KioskPaymentIn(RequestModel):
    method: Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=NO_CONTROL)] = Field(
        description="wechat or alipay (a sale paid otherwise is rejected)")
    amount_fen: PositiveFen
    ref: Optional[Annotated[str, StringConstraints(max_length=80, pattern=NO_CONTROL)]] = Field(
        None, description="Payment reference")


class KioskSaleIn(RequestModel):
    txn_id: TxnId = Field(description="The counter's own id of the sale: sending it again records nothing new")
    sold_at: Moment
    lines: Annotated[list[KioskLineIn], Field(min_length=1, max_length=ingest.MAX_LINES)]
    payment: KioskPaymentIn


class KioskSalesIn(RequestModel):
    # Each sale is checked on its own (against KioskSaleIn): one malformed sale is rejected by its
    # txn_id, never the whole batch, so the envelope takes any objects.
    sales: Annotated[list[Any], Field(
        max_length=ingest.MAX_SALES,
        description="Up to 500 sales, each {txn_id, sold_at, lines: [{slot | sku, qty, unit_price_fen}], "
                    "payment: {method, amount_fen, ref}} (the KioskSaleIn schema). A sale that does not "
                    "follow it is listed in rejected with its txn_id; the others are recorded.")]


class KioskRejectedOut(ResponseModel):
    txn_id: str
    error: str


class KioskSalesOut(ResponseModel):
    accepted: list[str]
    duplicates: list[str]
    rejected: list[KioskRejectedOut]


class KioskSlotOut(ResponseModel):
    slot: str
    sku: str
    name: str
    price_fen: int
    par: int
    on_hand: int = Field(description="Whole pieces at the counter by the books (never below 0)")
    certified: bool = Field(description="Certified poverty-alleviation produce today")


class KioskPlanogramOut(ResponseModel):
    kiosk: str
    slots: list[KioskSlotOut]


class KioskHeartbeatIn(RequestModel):
    at: Optional[Moment] = None
    door_open: StrictBool = False
    temperature_c: Optional[Annotated[float, Field(ge=-60, le=90)]] = None  # ok-float: ℃
    error: Optional[Annotated[str, StringConstraints(max_length=200, pattern=NO_CONTROL)]] = None


# --- authentication -------------------------------------------------------------------------------

def _bearer_token() -> Optional[str]:
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def _unauthorized():
    response = jsonify({"error": _("缺少或无效的专柜令牌")})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="kiosks"'
    return response


def machine_api(view):
    """A view called by a counter with its bearer token: the view gets the authenticated Kiosk
    instead of the code. Marks the view ``machine_api`` (see tests/accounts/test_roles.py)."""

    @wraps(view)
    def wrapped(code: str, **kwargs):
        s = get_session()
        kiosk = kiosk_for_token(s, _bearer_token())
        if kiosk is None:
            return _unauthorized()
        if kiosk.code != code:
            if not valid_code(code) or s.scalar(select(Kiosk.id).where(Kiosk.code == code)) is None:
                raise ApiError(404, _("专柜不存在：%(code)s", code=code[:16]))
            raise ApiError(403, _("该令牌不属于专柜 %(code)s", code=code[:16]))
        if kiosk.status == KioskStatus.RETIRED:
            raise ApiError(403, _("专柜已停用"))
        return view(kiosk, **kwargs)

    wrapped.machine_api = True
    return wrapped


# --- endpoints ------------------------------------------------------------------------------------

@bp.get("/planogram")
@machine_api
@operation("The counter's planogram: slots, prices, par, on hand, certified", responses={200: KioskPlanogramOut},
           errors=(401, 403, 404), tags=("counters",), auth="bearer")
def planogram(kiosk: Kiosk):
    return jsonify(planogram_view(get_session(), kiosk.code))


@bp.post("/sales")
@machine_api
@operation("Report a batch of sales (≤ 500; each recorded whole or not at all, idempotent on txn_id)",
           body=KioskSalesIn, responses={200: KioskSalesOut}, errors=(400, 401, 403, 404, 413, 422),
           tags=("counters",), auth="bearer",
           description="A batch may be partly accepted: each sale is listed in accepted, duplicates (the same "
                       "txn_id with the same content was recorded before) or rejected (with the reason: a "
                       "txn_id reused with different content, an unknown slot or sku, lines that do not add up "
                       "to the payment …). More than 500 sales: 422 and nothing is recorded.")
def sales(kiosk: Kiosk):
    body = json_body(KioskSalesIn)
    # Short transactions of SALES_PER_TRANSACTION sales, each committed (and retried on a
    # deadlock): a batch of 500 never holds the counter's rows, or SQLite's write lock, for long.
    result = ingest.ingest_sales(get_session(), kiosk, body.sales, chunk=SALES_PER_TRANSACTION,
                                 check=_checked_sale)
    return jsonify(result)


SALES_PER_TRANSACTION = 10


def _checked_sale(raw: Any) -> dict:
    """One sale of a batch as KioskSaleIn reads it (188.0 is 188); Rejected, naming the field,
    when it does not follow the schema."""
    try:
        return validate(KioskSaleIn, raw).model_dump()
    except ApiError as error:
        raise ingest.Rejected(str(error.message)) from None


@bp.post("/heartbeat")
@machine_api
@operation("The counter is alive: door, temperature, error", body=KioskHeartbeatIn, responses={204: None},
           errors=(400, 401, 403, 404, 413, 422), tags=("counters",), auth="bearer")
def heartbeat(kiosk: Kiosk):
    body = json_body(KioskHeartbeatIn)
    try:
        ingest.heartbeat(get_session(), kiosk, body.model_dump())
    except ingest.Rejected as error:
        raise ApiError(422, str(error), "at") from None
    return "", 204


__all__ = ["bp", "machine_api", "MAX_BODY_BYTES", "KioskSalesIn", "KioskSalesOut", "KioskPlanogramOut",
           "KioskHeartbeatIn"]
