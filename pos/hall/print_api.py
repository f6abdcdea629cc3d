"""Printing over the JSON API: the till asks for a sale's receipt once the sale's 201 has come back
(and again for a reprint); a manager opens the cash drawer or prints a test page. Thin handlers
over pos.hall.printing. A print is queued for the printer's worker thread: the request answers 202 at
once with the job, and the till asks ``GET /print-jobs/<id>`` until it is printed or failed. A
printer that fails is a failed job (ok=false, with the reason), never an error status, since the
sale itself is safe."""
from __future__ import annotations

from typing import Literal, Optional

from flask import Blueprint, jsonify
from flask_login import current_user
from pydantic import Field, StrictBool

from pos.hall import printing
from pos.hall.api.base import required_manager
from pos.core.db import get_session
from pos.core.openapi import RequestModel, ResponseModel, Text, json_body, limit_body, operation, \
    register_error_handlers
from pos.core.web import requires

bp = Blueprint("print_api", __name__, url_prefix="/api/v1")
register_error_handlers(bp)


@bp.before_request
def _limit_body():
    limit_body(4 * 1024)


class PrintIn(RequestModel):
    reprint: StrictBool = Field(False, description="True for a reprint: counted on the sale, marked 重印")


class PrintJobOut(ResponseModel):
    job_id: str = Field(description="Ask GET /api/v1/print-jobs/{job_id} for the outcome")
    status: Literal["pending", "printed", "failed"]
    ok: Optional[bool] = Field(description="null while pending; false when the printer failed (reprint)")
    error: Optional[str] = Field(description="Why the printer failed (打印机缺纸, 打印机开盖, …); null when ok")
    reprint_count: Optional[int] = Field(description="The sale's reprints once a reprint has printed")


class ManagerIn(RequestModel):
    approval_pin: Optional[Text(20)] = Field(None, description="A manager's PIN, when a cashier asks")  # type: ignore[valid-type]


def _manager(purpose: str, till_code: Optional[str] = None) -> int:
    body = json_body(ManagerIn)
    return required_manager(body.approval_pin, till_code=till_code, purpose=purpose)


def _job(job_id: str):
    outcome = printing.job_outcome(get_session(), job_id)
    return jsonify({"job_id": outcome.job_id, "status": outcome.status, "ok": outcome.ok, "error": outcome.error,
                    "reprint_count": outcome.reprint_count})


@bp.post("/sales/<receipt_no>/print")
@requires("till")
@operation("Queue the print (or reprint) of a sale's receipt on its till's printer", body=PrintIn,
           responses={202: PrintJobOut}, errors=(404, 422), tags=("printing",),
           description="Call after the sale is recorded; answers at once with the print job: ask GET "
                       "/api/v1/print-jobs/{job_id} until it is printed or failed. A failed job (printer off, out "
                       "of paper, cover open) keeps the sale, which can be reprinted. The first print of a cash "
                       "sale opens the drawer, once per sale.")
def print_sale(receipt_no: str):
    body = json_body(PrintIn)
    job_id = printing.request_receipt(get_session(), receipt_no, reprint=body.reprint, user_id=current_user.id)
    return _job(job_id), 202


@bp.get("/print-jobs/<job_id>")
@requires("till")
@operation("The outcome of a print job: pending, printed or failed (with the reason)",
           responses={200: PrintJobOut}, errors=(404,), tags=("printing",))
def print_job(job_id: str):
    return _job(job_id)


@bp.post("/refunds/<refund_no>/print")
@requires("till")
@operation("Queue a refund's receipt (it names the original receipt) on its till's printer",
           responses={202: PrintJobOut}, errors=(404,), tags=("printing",))
def print_refund(refund_no: str):
    job_id = printing.request_refund_receipt(get_session(), refund_no, user_id=current_user.id)
    return _job(job_id), 202


@bp.post("/tills/<code>/drawer")
@requires("till")
@operation("Open a till's cash drawer (a manager, or a cashier with a manager's PIN); audited", body=ManagerIn,
           responses={202: PrintJobOut}, errors=(403, 404, 422, 429, 503), tags=("printing",))
def open_drawer(code: str):
    manager_id = _manager("drawer", code)
    job_id = printing.request_drawer(get_session(), code, user_id=manager_id)
    return _job(job_id), 202


@bp.post("/tills/<code>/test-print")
@requires("dashboard")
@operation("Queue a test page on a till's printer (managers)", responses={202: PrintJobOut}, errors=(403, 404),
           tags=("printing",))
def test_print(code: str):
    job_id = printing.request_test_print(get_session(), code, user_id=current_user.id)
    return _job(job_id), 202


__all__ = ["bp"]
