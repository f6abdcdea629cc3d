"""The till's shift endpoints: open, the till's open shift, cash in and out, the X/Z report,
close with the counted cash, and 接班 (handover)."""
from __future__ import annotations

from typing import Literal, Optional

from flask import jsonify
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import Field

from pos.core.db import get_session
from pos.core.errors import ShiftError
from pos.core.openapi import (
    ApiError,
    Code,
    Fen,
    PositiveFen,
    QueryModel,
    RequestModel,
    ResponseModel,
    Whole,
    json_body,
    operation,
    query_args,
)
from pos.core.web import requires
from pos.hall import shifts
from pos.hall.api.base import Pin, Reason, approving_manager, bp, created_response, find_till, iso, till_code
from pos.models import CashMovementKind, Shift, Till, User

Denomination = Literal[tuple(str(v) for v in shifts.DENOMINATIONS)]  # type: ignore[valid-type]
Count = Whole(ge=0, le=100_000)


class TillQuery(QueryModel):
    till: Code = Field(description="The till's code, e.g. H1")


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


def _shift_approver(shift_id: int, pin: Optional[str], purpose: str) -> Optional[int]:
    """The approver of an action on a shift (404 when there is no such shift), throttled by the
    shift's till and by the cashier asking, as every approval is."""
    return approving_manager(pin, till_code=till_code(_shift(shift_id).till_id), purpose=purpose)


def _shift_out(shift: Shift) -> dict:
    s = get_session()
    till = shift.till if shift.till is not None else s.get(Till, shift.till_id)
    cashier = s.get(User, shift.cashier_id)
    return {"id": shift.id, "till": till.code, "till_name": till.name, "status": shift.status.value,
            "cashier_id": shift.cashier_id, "cashier": cashier.display_name if cashier else None,
            "opened_at": iso(shift.opened_at), "opening_float_fen": shift.opening_float_fen,
            "closed_at": iso(shift.closed_at)}


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


# --- shifts ------------------------------------------------------------------------------------------

@bp.post("/shifts")
@requires("till")
@operation("Open a shift at a till (one open shift per till)", body=ShiftOpenIn, responses={201: ShiftOut},
           errors=(409, 422), tags=("shifts",))
def open_shift():
    body = json_body(ShiftOpenIn)
    s = get_session()
    till = find_till(body.till)
    try:
        shift = shifts.open_shift(s, till_id=till.id, cashier_id=current_user.id,
                                  opening_float_fen=body.opening_float_fen)
    except ShiftError as error:
        if shifts.current_shift(s, till.id) is not None:
            raise ApiError(409, str(error), "till") from None
        raise
    return created_response(_shift_out(shift))


@bp.get("/shifts/current")
@requires("till")
@operation("The open shift of a till (shift is null when none is open)", query=TillQuery,
           responses={200: CurrentShiftOut}, errors=(404,), tags=("shifts",))
def current_shift():
    args = query_args(TillQuery)
    till = find_till(args.till, status=404, field=None)
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
    return created_response({"shift_id": shift_id, "kind": body.kind, "amount_fen": body.amount_fen, "reason": body.reason})


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
