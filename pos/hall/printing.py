"""Printing receipts after the sale: never inside the sale's transaction, never losing or blocking
a sale, never holding a request thread while a printer takes its time. The till asks for the print
once the sale's 201 has come back; the request records a print job and answers at once
(``request_*``); the printer's worker thread (pos.hall.print_queue) sends the bytes and records the
outcome, which the till asks for (``job_outcome``): a failed print (printer off, 打印机缺纸,
打印机开盖) is reported and the cashier reprints. Reprints are counted on the sale once printed (one
atomic UPDATE) and the paper says 重印.

The drawer: the first print of a sale paid (partly) in cash opens it, once. The sale keeps the fact
(``drawer_kicked_at``), set by a conditional UPDATE in the same transaction that queues the print,
so repeating the "first print" (or two requests at once) can never open it again; every kick, the
sale's or the manager's button, writes an audit event.

The printer URI is checked against the allow-list (pos.hall.printers) when it is set, when a job is
queued (a refused URI fails the job at once, with the reason) and again when the bytes are sent.
The ``print_*`` / ``open_drawer`` / ``test_print`` functions queue a job and wait for it: for
tests and scripts, never for a request.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Optional

from flask import current_app, has_app_context, has_request_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from inventory.audit import record
from inventory.localtime import utcnow
from pos.hall import print_queue
from pos.hall import printers
from pos.core.errors import NotFound, PosError
from pos.sales.escpos import drawer_kick_bytes, render_escpos
from pos.models import Payment, PaymentMethod, PrintJob, PrintJobStatus, Refund, Sale, Till
from pos.sales.receipts import build_receipt, build_refund_receipt
from pos.sales.reading import get_sale

JOB_ID = re.compile(r"[0-9a-f]{32}")
# A job still pending after this long was lost with its process (a restart): it failed.
STALE_AFTER = timedelta(minutes=2)
WAIT_SECONDS = 120  # how long the waiting helpers wait for a job


@dataclass(frozen=True)
class ReceiptPrint:
    ok: bool
    error: Optional[str]
    reprint_count: int


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    status: str  # pending, printed, failed
    ok: Optional[bool]  # None while pending
    error: Optional[str]
    reprint_count: Optional[int]
    kind: str = ""
    till_id: Optional[int] = None


def _till(s: Session, till_id_or_code) -> Till:
    if isinstance(till_id_or_code, int):
        till = s.get(Till, till_id_or_code)
    else:
        till = s.scalar(select(Till).where(Till.code == str(till_id_or_code)))
    if till is None:
        raise NotFound(_l("找不到该收银台"))
    return till


def _blocked(uri: str, policy: printers.PrinterPolicy) -> Optional[str]:
    """Why a job for this printer fails at once (a refused URI, a full queue), or None."""
    refused = printers.refusal(uri, policy)
    if refused:
        return refused
    if print_queue.pending(uri) >= print_queue.MAX_PENDING:
        return printers.message("busy")
    return None


def _has_printer(uri: str) -> bool:
    return printers.parse_uri(uri).scheme != "none"


def _submit(s: Session, *, kind: str, till: Till, data: bytes, user_id: Optional[int],
            policy: printers.PrinterPolicy, blocked: Optional[str], sale_id: Optional[int] = None,
            prefix: bytes = b"", ask_status: bool = True, timeout: float = printers.DEFAULT_TIMEOUT,  # ok-float: seconds
            on_printed: Optional[Callable[[Session], Optional[int]]] = None, job_id: Optional[str] = None
            ) -> tuple[str, Optional[print_queue.Job]]:
    """Record the job and commit (no lock is held while the printer takes its time), then hand it
    to the printer's worker; a blocked job is recorded as failed with its reason."""
    job_id = job_id or uuid.uuid4().hex
    row = PrintJob(id=job_id, kind=kind, till_id=till.id, sale_id=sale_id, created_by_id=user_id,
                   drawer_kick=bool(prefix), status=PrintJobStatus.PENDING, created_at=utcnow())
    if blocked:
        row.status, row.error, row.finished_at = PrintJobStatus.FAILED, blocked[:300], utcnow()
    uri = till.printer_uri
    s.add(row)
    s.commit()
    if blocked:
        return job_id, None
    job = print_queue.Job(
        id=job_id, uri=uri, data=data, prefix=prefix, bind=s.get_bind(), timeout=timeout, policy=policy,
        ask_status=ask_status, on_printed=on_printed,
        app=current_app._get_current_object() if has_app_context() else None, locale=_locale())
    print_queue.enqueue(job)
    return job_id, job


def _locale() -> Optional[str]:
    if not has_request_context():
        return None
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale) if locale else None


def _claim_drawer(s: Session, sale_id: int, *, receipt_no: str, till_code: str, user_id: Optional[int]) -> bool:
    """Mark the sale's drawer as opened, unless it already was: one conditional UPDATE, so of two
    requests at once only one gets the row. Audited."""
    claimed = s.execute(update(Sale).where(Sale.id == sale_id, Sale.drawer_kicked_at.is_(None))
                        .values(drawer_kicked_at=utcnow()).returning(Sale.id)).first()
    if claimed is None:
        return False
    record(s, user_id=user_id, action="sale.drawer_kick", entity="sale", entity_id=sale_id,
           after={"receipt_no": receipt_no, "till": till_code})
    return True


def _count_reprint(sale_id: int, receipt_no: str, user_id: Optional[int]) -> Callable[[Session], int]:
    def count(s: Session) -> int:
        reprints = s.execute(update(Sale).where(Sale.id == sale_id).values(reprint_count=Sale.reprint_count + 1)
                             .returning(Sale.reprint_count)).scalar_one()
        record(s, user_id=user_id, action="sale.reprint", entity="sale", entity_id=sale_id,
               after={"receipt_no": receipt_no, "reprint_count": reprints})
        return reprints

    return count


# --- queueing (what requests call) -----------------------------------------------------------------

def request_receipt(s: Session, receipt_no: str, *, reprint: bool, user_id: Optional[int],
                    timeout: float = printers.DEFAULT_TIMEOUT) -> str:  # ok-float: seconds
    """Queue the print (or reprint) of a committed sale's receipt on its till's printer; the job's
    id. The first print of a sale paid (partly) in cash opens the drawer first, once per sale."""
    return _request_receipt(s, receipt_no, reprint=reprint, user_id=user_id, timeout=timeout)[0]


def _request_receipt(s, receipt_no, *, reprint, user_id, timeout):
    sale = get_sale(s, receipt_no)
    if sale.till_id is None:
        raise NotFound(_l("这笔销售不属于任何收银台"))
    till = _till(s, sale.till_id)
    sale_id = sale.id
    data = render_escpos(build_receipt(s, sale_id, reprint=reprint, columns=till.paper_columns), till.paper_columns)
    policy = printers.current_policy()
    blocked = _blocked(till.printer_uri, policy)
    prefix = b""
    if not reprint and blocked is None and _has_printer(till.printer_uri):
        cash = s.scalar(select(Payment.id).where(Payment.sale_id == sale_id,
                                                 Payment.method == PaymentMethod.CASH).limit(1))
        if cash is not None and _claim_drawer(s, sale_id, receipt_no=receipt_no, till_code=till.code,
                                              user_id=user_id):
            prefix = drawer_kick_bytes()
    return _submit(s, kind="reprint" if reprint else "receipt", till=till, data=data, user_id=user_id,
                   policy=policy, blocked=blocked, sale_id=sale_id, prefix=prefix, timeout=timeout,
                   on_printed=_count_reprint(sale_id, receipt_no, user_id) if reprint else None)


def request_refund_receipt(s: Session, refund_no: str, *, user_id: Optional[int],
                           timeout: float = printers.DEFAULT_TIMEOUT) -> str:  # ok-float: seconds
    """Queue a refund's receipt (naming the original receipt) on the printer of the till where
    the refund was made, or else of the till that sold; after the refund is committed."""
    return _request_refund_receipt(s, refund_no, user_id=user_id, timeout=timeout)[0]


def _request_refund_receipt(s, refund_no, *, user_id, timeout):
    plausible = isinstance(refund_no, str) and len(refund_no) <= 40 and refund_no.isprintable()
    refund = s.scalar(select(Refund).where(Refund.refund_no == refund_no)) if plausible else None
    if refund is None:
        raise NotFound(_l("找不到该退款"))
    till_id = refund.till_id or s.scalar(select(Sale.till_id).where(Sale.id == refund.sale_id))
    if till_id is None:
        raise NotFound(_l("这笔退款不属于任何收银台"))
    till = _till(s, till_id)
    data = render_escpos(build_refund_receipt(s, refund.id, columns=till.paper_columns), till.paper_columns)
    policy = printers.current_policy()
    return _submit(s, kind="refund", till=till, data=data, user_id=user_id, policy=policy,
                   blocked=_blocked(till.printer_uri, policy), sale_id=refund.sale_id, timeout=timeout)


def request_drawer(s: Session, till_code: str, *, user_id: Optional[int],
                   timeout: float = printers.DEFAULT_TIMEOUT) -> str:  # ok-float: seconds
    """Open the till's cash drawer (through its printer) from a manager's button; audited."""
    return _request_drawer(s, till_code, user_id=user_id, timeout=timeout)[0]


def _request_drawer(s, till_code, *, user_id, timeout):
    till = _till(s, till_code)
    policy = printers.current_policy()
    blocked = _blocked(till.printer_uri, policy)
    job_id = uuid.uuid4().hex
    record(s, user_id=user_id, action="till.drawer_open", entity="till", entity_id=till.id,
           after={"till": till.code, "job": job_id, "refused": blocked})
    return _submit(s, kind="drawer", till=till, data=b"", user_id=user_id, policy=policy, blocked=blocked,
                   prefix=drawer_kick_bytes(), ask_status=False, timeout=timeout, job_id=job_id)


def request_test_print(s: Session, till_code: str, *, user_id: Optional[int] = None,
                       timeout: float = printers.DEFAULT_TIMEOUT) -> str:  # ok-float: seconds
    """Queue a test page on the till's printer."""
    return _request_test_print(s, till_code, user_id=user_id, timeout=timeout)[0]


def _request_test_print(s, till_code, *, user_id, timeout):
    till = _till(s, till_code)
    policy = printers.current_policy()
    return _submit(s, kind="test", till=till, data=printers.test_page(till.paper_columns), user_id=user_id,
                   policy=policy, blocked=_blocked(till.printer_uri, policy), timeout=timeout)


def request_labels(s: Session, till_code: str, data: bytes, *, user_id: Optional[int]) -> str:
    """Queue shelf labels (ESC/POS bytes made by pos.hall.labels) on a till's printer."""
    till = _till(s, till_code)
    policy = printers.current_policy()
    return _submit(s, kind="labels", till=till, data=data, user_id=user_id, policy=policy,
                   blocked=_blocked(till.printer_uri, policy))[0]


def job_outcome(s: Session, job_id: str) -> JobOutcome:
    """What became of a print job; NotFound for an unknown id."""
    row = s.get(PrintJob, job_id) if isinstance(job_id, str) and JOB_ID.fullmatch(job_id) else None
    if row is None:
        raise NotFound(_l("找不到该打印任务"))
    status, error = row.status, row.error
    if status == PrintJobStatus.PENDING and row.created_at < utcnow() - STALE_AFTER:
        status, error = PrintJobStatus.FAILED, printers.message("timeout")
    ok = None if status == PrintJobStatus.PENDING else status == PrintJobStatus.PRINTED
    return JobOutcome(row.id, str(status.value), ok, error, row.reprint_count, row.kind, row.till_id)


# --- waiting (tests and scripts; a request never waits) -------------------------------------------

def _finished(s: Session, job_id: str, job: Optional[print_queue.Job]) -> printers.PrintResult:
    if job is not None:
        print_queue.wait(job, WAIT_SECONDS)
        if job.result is not None:
            return job.result
    outcome = job_outcome(s, job_id)
    s.commit()
    return printers.PrintResult(bool(outcome.ok), outcome.error)


def print_receipt(s: Session, receipt_no: str, *, reprint: bool, user_id: Optional[int],
                  timeout: float = printers.DEFAULT_TIMEOUT) -> ReceiptPrint:  # ok-float: seconds
    """``request_receipt`` and wait for the outcome."""
    job_id, job = _request_receipt(s, receipt_no, reprint=reprint, user_id=user_id, timeout=timeout)
    result = _finished(s, job_id, job)
    count = s.scalar(select(Sale.reprint_count).where(Sale.receipt_no == receipt_no))
    s.commit()
    return ReceiptPrint(result.ok, result.error, count)


def print_refund_receipt(s: Session, refund_no: str, *, user_id: Optional[int],
                         timeout: float = printers.DEFAULT_TIMEOUT) -> printers.PrintResult:  # ok-float: seconds
    return _finished(s, *_request_refund_receipt(s, refund_no, user_id=user_id, timeout=timeout))


def open_drawer(s: Session, till_code: str, *, user_id: Optional[int],
                timeout: float = printers.DEFAULT_TIMEOUT) -> printers.PrintResult:  # ok-float: seconds
    return _finished(s, *_request_drawer(s, till_code, user_id=user_id, timeout=timeout))


def test_print(s: Session, till_code: str, *, timeout: float = printers.DEFAULT_TIMEOUT) -> printers.PrintResult:  # ok-float: seconds
    return _finished(s, *_request_test_print(s, till_code, user_id=None, timeout=timeout))


# --- setting a till's printer ----------------------------------------------------------------------

def set_printer(s: Session, till_code: str, *, printer_uri: str, paper_columns: int,
                actor_id: Optional[int]) -> Till:
    """Give a till its printer (a URI, which must pass the allow-list) and paper width (32
    columns: 58 mm; 48: 80 mm); audited."""
    till = _till(s, till_code)
    text = (printer_uri or "").strip() or "none"
    if len(text) > 200:
        raise PosError(_l("打印机地址太长"), "printer_uri")
    try:
        printers.check_uri(text)
    except printers.PrinterUriError as error:
        raise PosError(str(error), "printer_uri") from None
    if paper_columns not in (32, 48):
        raise PosError(_l("纸宽只能是 58 毫米（32 列）或 80 毫米（48 列）"), "paper_columns")
    before = {"printer_uri": till.printer_uri, "paper_columns": till.paper_columns}
    till.printer_uri, till.paper_columns = text, paper_columns
    record(s, user_id=actor_id, action="till.printer", entity="till", entity_id=till.id, before=before,
           after={"printer_uri": text, "paper_columns": paper_columns})
    return till


def printer_refusals(tills) -> dict[str, str]:
    """For the tills page: each till (by code) whose stored printer URI is no longer allowed, and why."""
    policy = printers.current_policy()
    refusals = {}
    for till in tills:
        reason = printers.refusal(till.printer_uri, policy)
        if reason:
            refusals[till.code] = reason
    return refusals


__test__ = False

__all__ = ["ReceiptPrint", "JobOutcome", "request_receipt", "request_refund_receipt", "request_drawer",
           "request_test_print", "request_labels", "job_outcome", "print_receipt", "print_refund_receipt",
           "open_drawer", "set_printer", "test_print", "printer_refusals"]
