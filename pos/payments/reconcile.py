"""The daily bill check (对账): one provider's trade bill of one day against the payments and refunds
we recorded with that method — hall payments (through their payment attempt's out_trade_no once
payment attempts exist, and the provider's transaction id in ``payments.ref``) and the counters'
(which carry only the provider's transaction id).

Each side is read with one SQL query for the day (our payments, our refunds, the bill's lines, the
reversed attempts among the bill's order numbers, the neighbouring days' bill lines for what is
left over); the day's rows are then matched here:

- a bill line is matched to our record by out_trade_no (商户订单号) first, else by the provider's
  transaction id; refunds by our refund number (商户退款单号 / 退款请求号), else by the original
  transaction id;
- outcomes: matched, 长款 (on the bill, not in our books), 短款 (in our books, not on the bill),
  金额不符 (on both, amounts differ);
- a reversal (WeChat REVOKED, Alipay's cancellation) is paired off with its payment on the bill or
  with our reversed attempt, and a payment on the bill whose attempt we reversed is paired off
  too: neither is reported;
- a payment made just before midnight may sit on the next day's bill: a record of ours found on a
  neighbouring day's imported bill (or a bill line found among our neighbouring days' records)
  with the same amount counts as matched.

A difference is explained with a note (``explain``, audited); it stays listed, as 已说明. The
bill's ``open_items`` keeps the count of unexplained differences of its last check (on import, on a
note, on 重新核对), which the monthly summary reads.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from inventory.localtime import utcnow
from pos.core.audit import record
from pos.models import Payment, Refund, Sale, SaleStatus
from pos.payments.attempts import AttemptState, PaymentAttempt
from pos.payments.bill_models import BILL_PROVIDERS, ProviderBill, ProviderBillLine, ReconcileNote
from pos.payments.bills import BillError

MATCHED, LONG, SHORT, DIFFERS = "matched", "long", "short", "differs"
OUTCOMES = (MATCHED, LONG, SHORT, DIFFERS)
OUTCOME_LABELS = {MATCHED: _l("已匹配"), LONG: _l("长款"), SHORT: _l("短款"), DIFFERS: _l("金额不符")}
DIFFERENCES = (LONG, SHORT, DIFFERS)
NOTE_MAX = 500


@dataclass
class Record:
    """One side of an item: a bill line, or a payment / refund of ours."""
    kind: str                       # pay | refund | reversed
    amount_fen: int
    out_trade_no: Optional[str]
    transaction_id: Optional[str]
    out_refund_no: Optional[str]
    at: Optional[dt.datetime]
    day: dt.date
    id: int = 0                     # our payment / refund id, or the bill line's number
    doc_no: Optional[str] = None    # our receipt / refund number
    channel: Optional[str] = None   # hall | kiosk | group (ours)


@dataclass
class Item:
    kind: str
    outcome: str
    key: str
    bill: Optional[Record] = None
    ours: Optional[Record] = None
    where: Optional[dt.date] = None   # matched on another day's bill / records
    note: Optional[ReconcileNote] = None

    @property
    def shown(self) -> Record:
        return self.bill or self.ours

    @property
    def bill_fen(self) -> int:
        return self.bill.amount_fen if self.bill else 0

    @property
    def ours_fen(self) -> int:
        return self.ours.amount_fen if self.ours else 0

    @property
    def difference_fen(self) -> int:
        return self.bill_fen - self.ours_fen


@dataclass
class Check:
    provider: str
    day: dt.date
    bill: Optional[ProviderBill]
    items: list[Item] = field(default_factory=list)
    paired_off: list[tuple[Record, Optional[Record]]] = field(default_factory=list)

    def group(self, outcome: str) -> list[Item]:
        return [i for i in self.items if i.outcome == outcome]

    def totals(self, outcome: str) -> dict[str, int]:
        items = self.group(outcome)
        return {"count": len(items), "bill_fen": sum(i.bill_fen for i in items),
                "ours_fen": sum(i.ours_fen for i in items), "difference_fen": sum(i.difference_fen for i in items)}

    @property
    def open_items(self) -> int:
        return sum(1 for i in self.items if i.outcome in DIFFERENCES and i.note is None)


# --- our side ---------------------------------------------------------------------------------------

def _our_payments(s: Session, provider: str, first: dt.date, last: dt.date) -> list[Record]:
    # A hall payment by code is matched by its attempt's out_trade_no; a counter's by the provider's id.
    stmt = (select(Payment.id, Payment.amount_fen, Payment.ref, PaymentAttempt.out_trade_no, Sale.receipt_no,
                   Sale.channel, Sale.sold_at, Sale.local_date)
            .select_from(Payment).join(Sale, Sale.id == Payment.sale_id)
            .outerjoin(PaymentAttempt, PaymentAttempt.id == Payment.attempt_id))
    rows = s.execute(stmt.where(Payment.method == provider, Sale.status == SaleStatus.COMPLETED,
                                Sale.local_date >= first, Sale.local_date <= last)
                     .order_by(Sale.sold_at, Payment.id))
    return [Record("pay", amount, otn or None, ref or None, None, at, day, pid, receipt, _text(channel))
            for pid, amount, ref, otn, receipt, channel, at, day in rows]


def _our_refunds(s: Session, provider: str, first: dt.date, last: dt.date) -> list[Record]:
    original = (select(func.min(Payment.ref)).where(Payment.sale_id == Refund.sale_id, Payment.method == provider)
                .correlate(Refund).scalar_subquery())
    rows = s.execute(select(Refund.id, Refund.total_fen, Refund.out_refund_no, Refund.refund_no, original,
                            Sale.channel, Refund.refunded_at, Refund.local_date)
                     .join(Sale, Sale.id == Refund.sale_id)
                     .where(Refund.method == provider, Refund.local_date >= first, Refund.local_date <= last)
                     .order_by(Refund.refunded_at, Refund.id))
    return [Record("refund", amount, None, txn or None, out_no or None, at, day, rid, refund_no, _text(channel))
            for rid, amount, out_no, refund_no, txn, channel, at, day in rows]


def _reversed_attempts(s: Session, provider: str, out_trade_nos: set[str]) -> set[str]:
    if not out_trade_nos:
        return set()
    return set(s.scalars(select(PaymentAttempt.out_trade_no).where(
        PaymentAttempt.provider == provider, PaymentAttempt.state == AttemptState.REVERSED,
        PaymentAttempt.out_trade_no.in_(sorted(out_trade_nos)))))


def _text(value) -> Optional[str]:
    return None if value is None else getattr(value, "value", value)


# --- the bill's side --------------------------------------------------------------------------------

def bill_of(s: Session, provider: str, day: dt.date) -> Optional[ProviderBill]:
    return s.scalar(select(ProviderBill).where(ProviderBill.provider == provider, ProviderBill.bill_date == day))


def _bill_lines(s: Session, provider: str, days: list[dt.date], keys: Optional[set[str]] = None) -> list[Record]:
    line = ProviderBillLine
    stmt = (select(line.line_no, line.kind, line.amount_fen, line.out_trade_no, line.transaction_id,
                   line.out_refund_no, line.at, ProviderBill.bill_date)
            .join(ProviderBill, ProviderBill.id == line.bill_id)
            .where(ProviderBill.provider == provider, ProviderBill.bill_date.in_(days)))
    if keys is not None:
        if not keys:
            return []
        wanted = sorted(keys)
        stmt = stmt.where(or_(line.out_trade_no.in_(wanted), line.transaction_id.in_(wanted),
                              line.out_refund_no.in_(wanted)))
    rows = s.execute(stmt.order_by(ProviderBill.bill_date, line.line_no))
    return [Record(kind, amount, otn, txn, refund_no, at, day, no)
            for no, kind, amount, otn, txn, refund_no, at, day in rows]


# --- matching ---------------------------------------------------------------------------------------

def _key(kind: str, bill: Optional[Record], ours: Optional[Record]) -> str:
    if bill is not None:
        return f"{kind}:{bill.out_trade_no or ''}:{bill.transaction_id or ''}:{bill.out_refund_no or ''}"
    return f"{kind}:ours:{ours.id}"


def _finder(ours: list[Record], day: dt.date, refunds: bool):
    """find(line) → the first unused record of ours for a bill line: by our number (out_trade_no,
    or for refunds our refund number) first, else by the provider's transaction id; the day's own
    records before the neighbouring days'."""
    ordered = sorted(ours, key=lambda o: o.day != day)
    used: set[int] = set()

    def find(line: Record) -> Optional[Record]:
        ours_no = (lambda o: o.out_refund_no) if refunds else (lambda o: o.out_trade_no)
        line_no = line.out_refund_no if refunds else line.out_trade_no
        candidates = []
        if line_no:
            candidates = [o for o in ordered if ours_no(o) == line_no and o.id not in used]
        if not candidates and line.transaction_id:
            candidates = [o for o in ordered if o.transaction_id == line.transaction_id and o.id not in used]
            if refunds:  # several refunds of one payment: the one of the same amount first
                candidates.sort(key=lambda o: o.amount_fen != line.amount_fen)
        if not candidates:
            return None
        used.add(candidates[0].id)
        return candidates[0]

    return find, used


def check_day(s: Session, provider: str, day: dt.date) -> Check:
    """The bill check of ``provider``'s ``day`` (nothing is written)."""
    if provider not in BILL_PROVIDERS:
        raise BillError("支付渠道应为微信支付或支付宝")
    check = Check(provider, day, bill_of(s, provider, day))
    around = [day - dt.timedelta(days=1), day + dt.timedelta(days=1)]
    lines = _bill_lines(s, provider, [day]) if check.bill is not None else []
    pays_ours = _our_payments(s, provider, around[0], around[1])
    refunds_ours = _our_refunds(s, provider, around[0], around[1])
    reversed_attempts = _reversed_attempts(s, provider, {l.out_trade_no for l in lines if l.out_trade_no})

    pay_lines = [l for l in lines if l.kind == "pay"]
    refund_lines = [l for l in lines if l.kind == "refund"]
    paired: set[int] = set()   # line numbers paired off

    def pair_with_pay(reversal: Record) -> bool:
        for p in pay_lines:
            if p.id not in paired and ((reversal.out_trade_no and p.out_trade_no == reversal.out_trade_no)
                                       or (not reversal.out_trade_no and p.transaction_id == reversal.transaction_id)):
                paired.update({p.id, reversal.id})
                check.paired_off.append((p, reversal))
                return True
        if reversal.out_trade_no in reversed_attempts or (reversal.kind == "reversed" and not reversal.amount_fen):
            # reversed by us, or a reversal of an order never paid (nothing went back)
            paired.add(reversal.id)
            check.paired_off.append((reversal, None))
            return True
        return False

    leftover_bill: list[Record] = []
    for r in (l for l in lines if l.kind == "reversed"):
        if not pair_with_pay(r):
            leftover_bill.append(r)

    for kind, bill_side, ours in (("pay", pay_lines, pays_ours), ("refund", refund_lines, refunds_ours)):
        find, used = _finder(ours, day, refunds=kind == "refund")
        for line in bill_side:
            if line.id in paired:
                continue
            mine = find(line)
            if mine is None:
                if kind == "pay" and line.out_trade_no in reversed_attempts:
                    paired.add(line.id)
                    check.paired_off.append((line, None))
                elif kind == "refund" and line.out_trade_no in reversed_attempts and pair_with_pay(line):
                    pass  # Alipay's refund of a payment it cancelled for our reverse
                else:
                    leftover_bill.append(line)
                continue
            outcome = MATCHED if mine.amount_fen == line.amount_fen else DIFFERS
            check.items.append(Item(kind, outcome, _key(kind, line, mine), line, mine,
                                    where=mine.day if mine.day != day else None))
        for mine in ours:
            if mine.id not in used and mine.day == day:
                check.items.append(Item(kind, SHORT, _key(kind, None, mine), None, mine))

    for line in leftover_bill:
        check.items.append(Item(line.kind, LONG, _key(line.kind, line, None), line, None))

    _across_midnight(s, check, day, around)
    notes = {n.item_key: n for n in s.scalars(select(ReconcileNote).where(
        ReconcileNote.provider == provider, ReconcileNote.bill_date == day))}
    for item in check.items:
        item.note = notes.get(item.key)
    check.items.sort(key=lambda i: (OUTCOMES.index(i.outcome), i.shown.at, i.key))
    return check


def _across_midnight(s: Session, check: Check, day: dt.date, around: list[dt.date]) -> None:
    """Our records of the day missing from its bill: matched when a neighbouring day's imported bill
    has them at the same amount (one query for those lines)."""
    if check.bill is None:
        return
    short = [i for i in check.items if i.outcome == SHORT]
    keys = {k for i in short for k in (i.ours.out_trade_no, i.ours.transaction_id, i.ours.out_refund_no) if k}
    neighbours = _bill_lines(s, check.provider, around, keys)
    taken: set[tuple[dt.date, int]] = set()
    for item in short:
        o = item.ours
        for line in neighbours:
            if (line.day, line.id) in taken or (line.kind == "refund") != (o.kind == "refund"):
                continue
            same = ((o.kind == "refund" and o.out_refund_no and line.out_refund_no == o.out_refund_no)
                    or (o.out_trade_no and line.out_trade_no == o.out_trade_no)
                    or (o.transaction_id and line.transaction_id == o.transaction_id and o.kind == "pay"))
            if same and line.amount_fen == o.amount_fen:
                taken.add((line.day, line.id))
                item.outcome, item.bill, item.where = MATCHED, line, line.day
                break


# --- notes and the stored status --------------------------------------------------------------------

def record_check(s: Session, check: Check) -> None:
    """Keep the check's count of unexplained differences on the bill (the monthly summary reads it)."""
    if check.bill is not None:
        check.bill.open_items = check.open_items
        check.bill.checked_at = utcnow()


def explain(s: Session, *, provider: str, day: dt.date, key: str, note: str, user_id: int,
            ip: Optional[str] = None) -> ReconcileNote:
    """Explain one difference of the day's check with a note (audited); it stays listed as 已说明."""
    text = " ".join((note or "").split())
    if not text:
        raise BillError("请填写说明")
    if len(text) > NOTE_MAX:
        raise BillError(f"说明最多 {NOTE_MAX} 个字")
    check = check_day(s, provider, day)
    item = next((i for i in check.items if i.key == key and i.outcome in DIFFERENCES), None)
    if item is None:
        raise BillError("找不到这一差异项（账单或账目可能已变化），请刷新后再试")
    if item.note is not None:
        raise BillError("这一差异项已有说明")
    saved = ReconcileNote(provider=provider, bill_date=day, item_key=key, outcome=item.outcome, note=text, by_id=user_id)
    s.add(saved)
    s.flush()
    shown = item.shown
    record(s, user_id=user_id, action="reconcile.explain", entity="reconcile_note", entity_id=saved.id, ip=ip,
           after={"provider": provider, "bill_date": day, "item": key, "outcome": item.outcome,
                  "out_trade_no": shown.out_trade_no, "transaction_id": shown.transaction_id,
                  "out_refund_no": shown.out_refund_no, "bill_fen": item.bill_fen if item.bill else None,
                  "ours_fen": item.ours_fen if item.ours else None, "note": text})
    item.note = saved
    record_check(s, check)
    return saved


def reconciled_days(s: Session, provider: str, first: dt.date, last: dt.date) -> dict[dt.date, int]:
    """{day: open items} of the imported bills in the period (for the page's list)."""
    return {d: n for d, n in s.execute(select(ProviderBill.bill_date, ProviderBill.open_items).where(
        and_(ProviderBill.provider == provider, ProviderBill.bill_date >= first, ProviderBill.bill_date <= last)))}
