"""Printing off the request threads: one worker thread per printer URI takes that printer's jobs
in order (a printer prints one thing at a time), so a printer that is off, out of paper or stuck
keeps only its own queue waiting, never a request. The request records a ``PrintJob`` row, answers
at once with its id, and the till asks for the job's outcome (pos.hall.printing.job_outcome); the
worker writes the outcome to that row, so any server process can answer.

A worker that has had nothing to do for ``IDLE_SECONDS`` ends; the next job starts a new one. At
most ``MAX_PENDING`` jobs wait per printer: more are refused at once (pos.hall.printing marks them
failed, 打印机忙) rather than piling up behind a dead printer.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from sqlalchemy import update
from sqlalchemy.orm import Session

from inventory.localtime import utcnow
from pos.hall import printers
from pos.models import PrintJob, PrintJobStatus

MAX_PENDING = 20
IDLE_SECONDS = 30.0  # ok-float: seconds

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    id: str
    uri: str
    data: bytes
    bind: Any  # the Engine the job's row lives in
    prefix: bytes = b""
    timeout: float = printers.DEFAULT_TIMEOUT  # ok-float: seconds
    policy: printers.PrinterPolicy = field(default_factory=printers.PrinterPolicy)
    ask_status: bool = True
    # Run in the outcome's transaction once the job printed (a reprint is counted); returns the
    # sale's reprint count, or None.
    on_printed: Optional[Callable[[Session], Optional[int]]] = None
    app: Any = None        # the Flask app, so messages are made in the requester's language
    locale: Optional[str] = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Optional[printers.PrintResult] = None
    reprint_count: Optional[int] = None


class _Worker:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.jobs: "queue.Queue[Job]" = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"songtao-printer-{len(_workers)}")

    def _run(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with _lock:
                    if self.jobs.empty():  # nobody queued meanwhile: end; the next job starts a new worker
                        _workers.pop(self.uri, None)
                        return
                continue
            try:
                _run_job(job)
            finally:
                with _lock:
                    _jobs.pop(job.id, None)
                job.done.set()


_lock = threading.Lock()
_workers: dict[str, _Worker] = {}
_jobs: dict[str, Job] = {}  # queued or running in this process


def pending(uri: str) -> int:
    """How many jobs wait (or run) for this printer in this process."""
    with _lock:
        worker = _workers.get(uri)
        return worker.jobs.qsize() + 1 if worker is not None and worker.thread.is_alive() else 0


def enqueue(job: Job) -> None:
    """Hand a job (its row already committed) to its printer's worker."""
    with _lock:
        _jobs[job.id] = job
        worker = _workers.get(job.uri)
        if worker is None:
            worker = _workers[job.uri] = _Worker(job.uri)
            worker.thread.start()
        worker.jobs.put(job)


def wait(job: Job, timeout: Optional[float] = None) -> bool:  # ok-float: seconds
    """Wait for a job of this process to finish (tests, the CLI); True when it did."""
    return job.done.wait(timeout)


def _run_job(job: Job) -> None:
    try:
        if job.app is not None:
            from flask_babel import force_locale

            with job.app.app_context(), force_locale(job.locale or "zh"):
                _print_and_record(job)
        else:
            _print_and_record(job)
    except Exception:  # noqa: BLE001 — a worker never dies of one job
        log.exception("print job %s: the outcome could not be recorded", job.id)
        if job.result is None:
            job.result = printers.PrintResult(False, printers.message("unreachable"), "unreachable")


def _print_and_record(job: Job) -> None:
    result = printers.send(job.uri, job.data, prefix=job.prefix, timeout=job.timeout, policy=job.policy,
                           ask_status=job.ask_status)
    job.result = result
    if not result.ok:
        log.info("print job %s failed: %s", job.id, result.code)
    with Session(bind=job.bind, expire_on_commit=False) as s:
        count = job.on_printed(s) if result.ok and job.on_printed is not None else None
        s.execute(update(PrintJob).where(PrintJob.id == job.id, PrintJob.status == PrintJobStatus.PENDING).values(
            status=PrintJobStatus.PRINTED if result.ok else PrintJobStatus.FAILED,
            error=(result.error or "")[:300] or None, reprint_count=count, finished_at=utcnow()))
        s.commit()
    job.reprint_count = count


__all__ = ["Job", "enqueue", "pending", "wait", "MAX_PENDING"]
