"""Printing over the JSON API: the till asks for a sale's receipt once the sale's 201 has come back
(and again for a reprint); a manager opens the cash drawer or prints a test page. Thin handlers
over pos.printing: a printer that fails answers 200 with ok=false, never an error status, since
the sale itself is safe."""
from __future__ import annotations

from typing import Optional

from flask import Blueprint, jsonify
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import Field, StrictBool

from pos import printing
from pos.api import _approver
from pos.db import get_session
from pos.openapi import ApiError, RequestModel, ResponseModel, Text, json_body, limit_body, operation, \
    register_error_handlers
from pos.web import requires

bp = Blueprint("print_api", __name__, url_prefix="/api/v1")
register_error_handlers(bp)


@bp.before_request
def _limit_body():
    limit_body(4 * 1024)


class PrintIn(RequestModel):
    reprint: StrictBool = Field(False, description="True for a reprint: counted on the sale, marked 重印")


class PrintOut(ResponseModel):
    ok: bool
    error: Optional[str] = Field(description="Why the printer refused; null when ok")
    reprint_count: int


class ManagerIn(RequestModel):
    approval_pin: Optional[Text(20)] = Field(None, description="A manager's PIN, when a cashier asks")  # type: ignore[valid-type]


class PrinterOut(ResponseModel):
    ok: bool
    error: Optional[str]


def _manager(purpose: str, till_code: Optional[str] = None) -> int:
    body = json_body(ManagerIn)
    approver = _approver(body.approval_pin, till_code=till_code, purpose=purpose)
    if approver is None:
        raise ApiError(403, _("需要店长授权"), "approval_pin")
    return approver


@bp.post("/sales/<receipt_no>/print")
@requires("till")
@operation("Print (or reprint) a sale's receipt on its till's printer", body=PrintIn, responses={200: PrintOut},
           errors=(404, 422), tags=("printing",),
           description="Call after the sale is recorded. ok=false when the printer is off or out of paper: the "
                       "sale is kept and can be reprinted.")
def print_sale(receipt_no: str):
    body = json_body(PrintIn)
    result = printing.print_receipt(get_session(), receipt_no, reprint=body.reprint, user_id=current_user.id)
    return jsonify({"ok": result.ok, "error": result.error, "reprint_count": result.reprint_count})


@bp.post("/refunds/<refund_no>/print")
@requires("till")
@operation("Print a refund's receipt (it names the original receipt) on its till's printer",
           responses={200: PrinterOut}, errors=(404,), tags=("printing",))
def print_refund(refund_no: str):
    result = printing.print_refund_receipt(get_session(), refund_no, user_id=current_user.id)
    return jsonify({"ok": result.ok, "error": result.error})


@bp.post("/tills/<code>/drawer")
@requires("till")
@operation("Open a till's cash drawer (a manager, or a cashier with a manager's PIN); audited", body=ManagerIn,
           responses={200: PrinterOut}, errors=(403, 404, 422, 429, 503), tags=("printing",))
def open_drawer(code: str):
    manager_id = _manager("drawer", code)
    result = printing.open_drawer(get_session(), code, user_id=manager_id)
    return jsonify({"ok": result.ok, "error": result.error})


@bp.post("/tills/<code>/test-print")
@requires("dashboard")
@operation("Print a test page on a till's printer (managers)", responses={200: PrinterOut}, errors=(403, 404),
           tags=("printing",))
def test_print(code: str):
    result = printing.test_print(get_session(), code)
    return jsonify({"ok": result.ok, "error": result.error})


__all__ = ["bp"]
