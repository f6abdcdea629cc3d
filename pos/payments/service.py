"""The payment-code state machine (issue 15), as both providers document it.

A call to the provider is NEVER made inside a database transaction: the attempt is written and
committed first (state pending), then the provider is called, then its answer and the event are
recorded in a new short transaction. So these functions commit the session they are given, step
by step; the caller passes a session holding nothing it needs kept open (the request's session
after its reads, or a session of its own).

- pay → success | userpaying | failed | unknown. unknown (no answer: a timeout, a 5xx, a bad
  signature) is never a failure: the order is queried at once and again at every step.
- userpaying → the till polls (``advance``: one query per poll, at most every POLL seconds);
  once WAIT seconds have passed since the pay call and it is still not paid, the order is
  reversed (撤销) and the cashier told so.
- a reverse that is not answered leaves the attempt "reversing", retried by the next poll and by
  the tick until the provider answers.
- ``finish_unfinished`` (the tick) does the same for every attempt left in the middle, and
  retries refunds the provider has not confirmed (``retry_refund``).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Callable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.localtime import utcnow
from pos.core.errors import Conflict, PosError
from pos.models import Refund
from pos.payments.attempts import (
    UNFINISHED,
    AttemptState,
    PaymentAttempt,
    PaymentAttemptEvent,
    mask_code,
    new_out_trade_no,
)
from pos.payments.providers import Answer, PayState, Provider, RefundAnswer, RefundState

log = logging.getLogger(__name__)

ProviderLookup = Callable[[str], Optional[Provider]]

REFUND_PENDING, REFUND_SUCCESS = "pending", "success"

MESSAGES = {
    AttemptState.PENDING: "正在确认支付结果…",
    AttemptState.UNKNOWN: "正在确认支付结果…",
    AttemptState.SUCCESS: "收款成功",
    AttemptState.USERPAYING: "等待顾客输入密码",
    AttemptState.FAILED: "支付失败",
    AttemptState.REVERSING: "正在撤销订单…",
    AttemptState.REVERSED: "订单已撤销，未收款",
}


@dataclass(frozen=True)
class Timing:
    wait_seconds: float = 30.0   # ok-float: seconds. userpaying this long after the pay call → reverse
    poll_seconds: float = 2.0    # ok-float: seconds. at most one query per attempt this often

    @classmethod
    def from_config(cls, config) -> "Timing":
        return cls(float(config.get("PAYMENT_CODE_WAIT_SECONDS", 30)),  # ok-float: seconds
                   float(config.get("PAYMENT_CODE_POLL_SECONDS", 2)))  # ok-float: seconds


# --- recording answers --------------------------------------------------------------------------

def _raw(raw) -> str:
    try:
        return json.dumps(raw or {}, ensure_ascii=False, sort_keys=True, default=str)[:20000]
    except (TypeError, ValueError):
        return "{}"


def _event(s: Session, attempt_id: int, action: str, state: str, raw) -> None:
    s.add(PaymentAttemptEvent(attempt_id=attempt_id, action=action, state=str(state), raw=_raw(raw), at=utcnow()))


def _ask(call: Callable[[], Answer], what: str, out_trade_no: str) -> Answer:
    """The provider's answer; anything raised is no answer (UNKNOWN), logged without its content."""
    try:
        answer = call()
    except Exception as error:  # an adapter's bug or a network error must not lose the attempt
        log.warning("payment %s %s: no answer (%s)", what, out_trade_no, type(error).__name__)
        return Answer(PayState.UNKNOWN, message="支付渠道无应答")
    if not isinstance(answer, Answer):
        return Answer(PayState.UNKNOWN)
    return answer


def _ask_refund(call: Callable[[], RefundAnswer], out_refund_no: str) -> RefundAnswer:
    try:
        answer = call()
    except Exception as error:
        log.warning("refund %s: no answer (%s)", out_refund_no, type(error).__name__)
        return RefundAnswer(RefundState.UNKNOWN, message="支付渠道无应答")
    return answer if isinstance(answer, RefundAnswer) else RefundAnswer(RefundState.UNKNOWN)


def _locked(s: Session, attempt_id: int) -> Optional[PaymentAttempt]:
    return s.scalars(select(PaymentAttempt).where(PaymentAttempt.id == attempt_id).with_for_update()
                     .execution_options(populate_existing=True)).first()


def _record(s: Session, attempt_id: int, action: str, answer: Answer, *, now: Optional[dt.datetime] = None) -> PaymentAttempt:
    """The answer and its event, in one short transaction (committed)."""
    now = now or utcnow()
    attempt = _locked(s, attempt_id)
    _event(s, attempt.id, action, answer.state, answer.raw)
    if action == "query":
        attempt.last_query_at = now
    state = answer.state
    new = attempt.state
    if attempt.state in (AttemptState.SUCCESS, AttemptState.REVERSED, AttemptState.FAILED) and action != "reverse":
        new = attempt.state  # final already (a late answer does not undo it)
    elif state == PayState.SUCCESS:
        new = AttemptState.SUCCESS
        attempt.transaction_id = answer.transaction_id or attempt.transaction_id
    elif state in (PayState.USERPAYING, PayState.NOTPAY):
        new = AttemptState.USERPAYING if attempt.state != AttemptState.REVERSING else AttemptState.REVERSING
    elif state == PayState.REVERSED:
        new = AttemptState.REVERSED
    elif state == PayState.FAILED:
        new = AttemptState.FAILED if action == "pay" else attempt.state
    elif state == PayState.UNKNOWN:
        if attempt.state == AttemptState.PENDING:
            new = AttemptState.UNKNOWN
    if new != attempt.state:
        attempt.state = new
        failed = new == AttemptState.FAILED and answer.message
        attempt.message = (answer.message if failed else MESSAGES[new])[:200]
    attempt.updated_at = now
    s.commit()
    return attempt


# --- the till's steps ---------------------------------------------------------------------------

def start(s: Session, provider: Provider, *, till_id: int, till_code: str, cashier_id: Optional[int],
          client_sale_id: str, amount_fen: int, code: str, description: str = "梵净山珍·松桃馆") -> PaymentAttempt:
    """Take a payment code: write the attempt (committed), call pay, record the answer. An answer
    of no answer is queried at once. Refused (Conflict) while another code payment of the same
    sale is unfinished or paid and unused: the till finishes or cancels that one first."""
    busy = s.scalars(select(PaymentAttempt).where(
        PaymentAttempt.client_sale_id == client_sale_id, PaymentAttempt.sale_id.is_(None),
        PaymentAttempt.state.in_(UNFINISHED + (AttemptState.SUCCESS,)))).first()
    if busy is not None:
        s.rollback()
        raise Conflict(f"本单已有一笔付款码收款（{MESSAGES[busy.state]}），请先完成或撤销它（编号 {busy.id}）",
                       "client_sale_id")
    now = utcnow()
    attempt = PaymentAttempt(provider=provider.name, out_trade_no=new_out_trade_no(till_code, now=now),
                             auth_code=mask_code(code), till_id=till_id, cashier_id=cashier_id,
                             client_sale_id=client_sale_id, amount_fen=amount_fen, state=AttemptState.PENDING,
                             message=MESSAGES[AttemptState.PENDING], created_at=now, updated_at=now)
    s.add(attempt)
    s.commit()
    attempt_id, out_trade_no = attempt.id, attempt.out_trade_no
    answer = _ask(lambda: provider.pay(out_trade_no=out_trade_no, auth_code=code, amount_fen=amount_fen,
                                       description=description), "pay", out_trade_no)
    attempt = _record(s, attempt_id, "pay", answer)
    if attempt.state == AttemptState.UNKNOWN:
        attempt = _query(s, provider, attempt)
    return attempt


def _query(s: Session, provider: Provider, attempt: PaymentAttempt) -> PaymentAttempt:
    out_trade_no = attempt.out_trade_no
    s.commit()
    answer = _ask(lambda: provider.query(out_trade_no=out_trade_no), "query", out_trade_no)
    return _record(s, attempt.id, "query", answer)


def _reverse(s: Session, provider: Provider, attempt: PaymentAttempt) -> PaymentAttempt:
    """Reverse (撤销): REVERSED when done; unanswered → stays "reversing" (retried); refused →
    the order is queried: paid after all → success, else failed."""
    attempt = _locked(s, attempt.id)
    if attempt.state in (AttemptState.REVERSED, AttemptState.FAILED) or attempt.sale_id is not None:
        s.commit()
        return attempt
    attempt.state = AttemptState.REVERSING
    attempt.message = MESSAGES[AttemptState.REVERSING]
    attempt.updated_at = utcnow()
    s.commit()
    out_trade_no = attempt.out_trade_no
    answer = _ask(lambda: provider.reverse(out_trade_no=out_trade_no), "reverse", out_trade_no)
    if answer.state == PayState.REVERSED:
        return _record(s, attempt.id, "reverse", answer)
    if answer.state == PayState.FAILED:
        _event_only(s, attempt.id, "reverse", answer)
        query = _ask(lambda: provider.query(out_trade_no=out_trade_no), "query", out_trade_no)
        attempt = _locked(s, attempt.id)
        _event(s, attempt.id, "query", query.state, query.raw)
        attempt.last_query_at = utcnow()
        if query.state == PayState.SUCCESS:
            attempt.state = AttemptState.SUCCESS
            attempt.transaction_id = query.transaction_id or attempt.transaction_id
            attempt.message = MESSAGES[AttemptState.SUCCESS]
        elif query.state in (PayState.REVERSED, PayState.FAILED, PayState.NOTPAY):
            attempt.state = AttemptState.REVERSED if query.state == PayState.REVERSED else AttemptState.FAILED
            attempt.message = (answer.message or MESSAGES[attempt.state])[:200]
        attempt.updated_at = utcnow()
        s.commit()
        return attempt
    _event_only(s, attempt.id, "reverse", answer)  # no answer: still reversing, retried
    return _locked_commit(s, attempt.id)


def _event_only(s: Session, attempt_id: int, action: str, answer: Answer) -> None:
    attempt = _locked(s, attempt_id)
    _event(s, attempt_id, action, answer.state, answer.raw)
    attempt.updated_at = utcnow()
    s.commit()


def _locked_commit(s: Session, attempt_id: int) -> PaymentAttempt:
    attempt = s.get(PaymentAttempt, attempt_id, populate_existing=True)
    s.commit()
    return attempt


def advance(s: Session, provider: Provider, attempt_id: int, timing: Timing = Timing(), *,
            force: bool = False, now: Optional[dt.datetime] = None) -> PaymentAttempt:
    """One step of an unfinished attempt (a till's poll, or the tick with ``force``): a reverse
    not answered is asked again; otherwise one query (at most every ``poll_seconds`` unless
    forced) and, once ``wait_seconds`` have passed since the pay call without the money, a
    reverse."""
    attempt = s.get(PaymentAttempt, attempt_id, populate_existing=True)
    if attempt is None:
        raise PosError("付款记录不存在", "attempt_id")
    if attempt.state not in UNFINISHED:
        s.commit()
        return attempt
    if attempt.state == AttemptState.REVERSING:
        return _reverse(s, provider, attempt)
    now = now or utcnow()
    if (not force and attempt.last_query_at is not None
            and (now - attempt.last_query_at).total_seconds() < timing.poll_seconds):
        s.commit()
        return attempt
    attempt = _query(s, provider, attempt)
    if attempt.state in (AttemptState.SUCCESS, AttemptState.REVERSED, AttemptState.FAILED):
        return attempt
    expired = (utcnow() - attempt.created_at).total_seconds() >= timing.wait_seconds
    if expired:
        return _reverse(s, provider, attempt)
    return attempt


def cancel(s: Session, provider: Provider, attempt_id: int) -> PaymentAttempt:
    """The cashier gives up: reverse now (also an attempt paid but not used by any sale)."""
    attempt = s.get(PaymentAttempt, attempt_id, populate_existing=True)
    if attempt is None:
        raise PosError("付款记录不存在", "attempt_id")
    if attempt.sale_id is not None:
        s.rollback()
        raise Conflict("该笔付款已记入销售，请办理退货退款", "attempt_id")
    if attempt.state in (AttemptState.REVERSED, AttemptState.FAILED):
        s.commit()
        return attempt
    return _reverse(s, provider, attempt)


# --- refunds --------------------------------------------------------------------------------------

def refund(s: Session, provider: Provider, refund_id: int, *, reason: str = "退货") -> str:
    """Send a recorded refund (provider_state pending) back through the provider; "success" when
    the provider confirms it, else it stays "pending" (retried by the tick)."""
    row = s.get(Refund, refund_id, populate_existing=True)
    attempt = s.get(PaymentAttempt, row.attempt_id) if row is not None and row.attempt_id else None
    if row is None or attempt is None or row.provider_state != REFUND_PENDING:
        s.commit()
        return row.provider_state if row is not None else ""
    args = dict(out_trade_no=attempt.out_trade_no, out_refund_no=row.out_refund_no, refund_fen=row.total_fen,
                total_fen=attempt.amount_fen, reason=reason[:80])
    s.commit()
    answer = _ask_refund(lambda: provider.refund(**args), args["out_refund_no"])
    return _record_refund(s, refund_id, "refund", answer)


def retry_refund(s: Session, provider: Provider, refund_id: int) -> str:
    """A pending refund: asked about first; sent again (same out_refund_no, so at most once at
    the provider) when the provider has no record of it or refused it."""
    row = s.get(Refund, refund_id, populate_existing=True)
    attempt = s.get(PaymentAttempt, row.attempt_id) if row is not None and row.attempt_id else None
    if row is None or attempt is None or row.provider_state != REFUND_PENDING:
        s.commit()
        return row.provider_state if row is not None else ""
    out_trade_no, out_refund_no = attempt.out_trade_no, row.out_refund_no
    s.commit()
    answer = _ask_refund(lambda: provider.refund_query(out_trade_no=out_trade_no, out_refund_no=out_refund_no),
                         out_refund_no)
    state = _record_refund(s, refund_id, "refund_query", answer)
    if state == REFUND_PENDING and answer.state in (RefundState.FAILED, RefundState.UNKNOWN):
        return refund(s, provider, refund_id)
    return state


def _record_refund(s: Session, refund_id: int, action: str, answer: RefundAnswer) -> str:
    row = s.scalars(select(Refund).where(Refund.id == refund_id).with_for_update()
                    .execution_options(populate_existing=True)).first()
    _event(s, row.attempt_id, action, answer.state, answer.raw)
    if answer.state == RefundState.SUCCESS:
        row.provider_state = REFUND_SUCCESS
    state = row.provider_state
    s.commit()
    return state


# --- the tick -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UpkeepResult:
    finished: int = 0     # attempts brought to a final state
    unfinished: int = 0   # still in the middle (a provider without an answer, a till still polling)
    refunds_done: int = 0
    refunds_pending: int = 0

    def describe(self) -> str:
        return (f"付款码：完成 {self.finished} 笔，未完成 {self.unfinished} 笔；"
                f"退款确认 {self.refunds_done} 笔，待确认 {self.refunds_pending} 笔")


def finish_unfinished(s: Session, providers: ProviderLookup, timing: Timing = Timing()) -> UpkeepResult:
    """Every attempt left in the middle (a crash between pay and query, a till that stopped
    polling, a reverse without an answer) queried and, past the wait, reversed; every pending
    refund asked about and sent again when needed."""
    finished = unfinished = done = pending = 0
    ids = s.scalars(select(PaymentAttempt.id).where(PaymentAttempt.state.in_(UNFINISHED))
                    .order_by(PaymentAttempt.id)).all()
    refund_ids = s.scalars(select(Refund.id).where(Refund.provider_state == REFUND_PENDING).order_by(Refund.id)).all()
    s.commit()
    for attempt_id in ids:
        attempt = s.get(PaymentAttempt, attempt_id)
        provider = providers(attempt.provider)
        if provider is None:
            s.commit()
            unfinished += 1
            continue
        attempt = advance(s, provider, attempt_id, timing, force=True)
        if attempt.state in UNFINISHED:
            unfinished += 1
        else:
            finished += 1
    for refund_id in refund_ids:
        row = s.get(Refund, refund_id)
        attempt = s.get(PaymentAttempt, row.attempt_id) if row.attempt_id else None
        provider = providers(attempt.provider) if attempt is not None else None
        if provider is None:
            s.commit()
            pending += 1
            continue
        if retry_refund(s, provider, refund_id) == REFUND_SUCCESS:
            done += 1
        else:
            pending += 1
    return UpkeepResult(finished, unfinished, done, pending)


def view(attempt: PaymentAttempt) -> dict:
    """The till's body for an attempt: states in the middle show as "unknown" (keep polling) or
    "userpaying"; pending and reversing are the server's own business."""
    state = attempt.state
    shown = {AttemptState.PENDING: "unknown", AttemptState.REVERSING: "unknown"}.get(state, state.value)
    return {"attempt_id": attempt.id, "state": shown, "provider": attempt.provider,
            "transaction_id": attempt.transaction_id if state == AttemptState.SUCCESS else None,
            "message": attempt.message or MESSAGES[state], "amount_fen": attempt.amount_fen,
            "sale_id": attempt.sale_id}


__all__ = ["Timing", "start", "advance", "cancel", "refund", "retry_refund", "finish_unfinished", "view",
           "UpkeepResult", "MESSAGES", "REFUND_PENDING", "REFUND_SUCCESS"]
