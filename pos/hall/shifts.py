"""Till shifts: open with a float, cash in and out, the X report while open, close by counting
the drawer by denominations (the Z report, fixed at close).

A shift belongs to the cashier who opened it. Anyone else — reading its report, taking cash in or
out, selling on it, closing it — needs a manager's approval: a manager or admin acting themself, or
a manager's PIN checked by the server (``check_shift_access``). Handing a shift over (接班) is the
usual way: a manager approves, the open shift passes to the new cashier with its drawer and
everything in it, and the change is audited (``hand_over``).

Closing needs a count (a blank one is refused), and a difference between counted and expected
cash over the hall's ``shift_difference_limit_fen`` needs a manager's approval too.

Expected cash = opening float + cash sales − cash refunds + cash in − cash out. Every figure is
computed by the database (SUM … GROUP BY), never by looping over rows in Python; a closed shift's
report is read from the figures fixed at close, so a sale that arrives late never changes a Z
report (it is kept and flagged for the manager instead).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventory.audit import record
from inventory.localtime import format_local, utcnow
from inventory.models import Alert, AlertKind, AuditEvent
from inventory.money import format_yuan
from pos.accounts.roles import allowed
from pos.accounts.users import active_approver
from pos.core.errors import ApprovalRequired, NotFound, ShiftError
from pos.models import (
    CashMovement,
    CashMovementKind,
    Payment,
    PaymentMethod,
    Refund,
    Sale,
    SaleLine,
    SaleStatus,
    Shift,
    ShiftStatus,
    Till,
    User,
)

from pos.hall.settings import hall_settings
from pos.sales.offline import shift_at
from pos.sales.pricing import is_int

MAX_FEN = 1_000_000_000
# Renminbi notes and coins, in fen (100 元 … 1 分).
DENOMINATIONS = (10000, 5000, 2000, 1000, 500, 200, 100, 50, 20, 10, 5, 2, 1)
CASH = PaymentMethod.CASH.value


@dataclass(frozen=True)
class ShiftReport:
    shift: Shift
    sales_count: int
    takings_by_method: dict[str, int]
    refunds_by_method: dict[str, int]
    cash_sales_fen: int
    cash_refunds_fen: int
    cash_in_fen: int
    cash_out_fen: int
    opening_float_fen: int
    expected_cash_fen: int
    counted_cash_fen: Optional[int]
    difference_fen: Optional[int]       # counted − expected (negative: short)
    certified_fen: int
    total_fen: int                      # takings of the shift's completed sales
    voids_count: int
    refunds_count: int = 0
    refunds_total_fen: int = 0
    late_sales_count: int = 0           # sales that arrived after the close, not in these figures
    closed: bool = False
    denominations: dict[str, int] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        """Everything but the shift itself: what totals_json keeps, and what the API returns."""
        data = asdict(self)
        data.pop("shift")
        return data

    def as_dict(self) -> dict[str, Any]:
        till = self.shift.till
        return {
            "shift_id": self.shift.id, "till": till.code if till else None, "status": self.shift.status.value,
            "cashier_id": self.shift.cashier_id,
            "opened_at_local": format_local(self.shift.opened_at), "closed_at_local": format_local(self.shift.closed_at),
            **self.figures(),
        }


def _shift(s: Session, shift_id, *, lock: bool = False) -> Shift:
    if not is_int(shift_id):
        raise NotFound(_l("班次不存在"))
    query = select(Shift).where(Shift.id == shift_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    shift = s.scalars(query).first()
    if shift is None:
        raise NotFound(_l("班次不存在"))
    return shift


def open_shift(s: Session, *, till_id: int, cashier_id: int, opening_float_fen: int) -> Shift:
    till = s.get(Till, till_id) if is_int(till_id) else None
    if till is None or not till.active:
        raise ShiftError(_l("收银台不存在或已停用"), "till_id")
    if not is_int(cashier_id) or s.get(User, cashier_id) is None:
        raise ShiftError(_l("收银员不存在"), "cashier_id")
    if not is_int(opening_float_fen) or opening_float_fen < 0 or opening_float_fen > MAX_FEN:
        raise ShiftError(_l("备用金必须是不小于零的整数（分）"), "opening_float_fen")
    if current_shift(s, till.id) is not None:
        raise ShiftError(_l("该收银台已有未交班的班次"), "till_id")
    shift = Shift(till_id=till.id, cashier_id=cashier_id, status=ShiftStatus.OPEN, opened_at=utcnow(),
                  opening_float_fen=opening_float_fen)
    try:
        # The partial unique index allows one open shift per till, whoever opens it at the same moment.
        with s.begin_nested():
            s.add(shift)
            s.flush()
    except IntegrityError:
        raise ShiftError(_l("该收银台已有未交班的班次"), "till_id") from None
    record(s, user_id=cashier_id, action="shift.open", entity="shift", entity_id=shift.id,
           after={"till": till.code, "opening_float_fen": opening_float_fen})
    return shift


def _approver(s: Session, *user_ids) -> Optional[User]:
    """The first of these users who may approve (pos.accounts.users.active_approver)."""
    return next((user for user in (active_approver(s, user_id) for user_id in user_ids) if user is not None), None)


def _owner_name(s: Session, shift: Shift) -> str:
    owner = s.get(User, shift.cashier_id)
    return owner.display_name if owner is not None else str(shift.cashier_id)


def check_shift_access(s: Session, shift: Shift, *, actor_id: int, approved_by_id: Optional[int] = None,
                       action: str) -> Optional[int]:
    """May ``actor_id`` act on ``shift`` (``action``: "report", "cash", "sale", "close")?

    The cashier who owns the shift may. Anyone else needs a manager's approval: ``actor_id``
    being an active manager or admin, or ``approved_by_id`` (a manager whose PIN the caller
    checked). Returns the approving manager's id when someone else's shift is used (a cashier
    approved by PIN is audited as "shift.override"), None when the owner acts; raises
    ApprovalRequired otherwise."""
    if shift.cashier_id == actor_id:
        return None
    if _approver(s, actor_id) is not None:  # a manager or admin acting themself (their own audit rows name them)
        return actor_id
    approver = _approver(s, approved_by_id)
    if approver is None:
        raise ApprovalRequired(_l("班次 #%(id)s 属于收银员 %(name)s，其他人使用需要店长授权（可由店长授权接班）",
                                  id=shift.id, name=_owner_name(s, shift)), "approved_by_id")
    record(s, user_id=actor_id, action="shift.override", entity="shift", entity_id=shift.id,
           after={"action": action, "owner_id": shift.cashier_id, "approved_by_id": approver.id})
    return approver.id


def check_may_sell(s: Session, till_id: int, *, actor_id: int, approved_by_id: Optional[int] = None,
                   client_sale_id: Optional[str] = None, sold_at: Optional[dt.datetime] = None) -> Optional[int]:
    """A sale at a till is made on its open shift: by its owner, or with a manager's approval.
    (With no open shift the sale is kept as a late sale, as before; a sale already recorded under
    ``client_sale_id`` is a resend, answered as before whoever holds the shift now. A sale made
    offline at ``sold_at`` is judged on the shift it counts in (pos.sales.offline.shift_at): one
    closed meanwhile takes it as a late sale, never refused.)"""
    if client_sale_id is not None and s.scalar(select(Sale.id).where(Sale.client_sale_id == client_sale_id)):
        return None
    shift = current_shift(s, till_id)
    if shift is not None and sold_at is not None:
        counted_in = shift_at(s, till_id, sold_at)
        if counted_in is not None and counted_in.id != shift.id:
            return None
    if shift is None:
        return None
    return check_shift_access(s, shift, actor_id=actor_id, approved_by_id=approved_by_id, action="sale")


def hand_over(s: Session, shift_id: int, *, to_user_id: int, approved_by_id: Optional[int]) -> Shift:
    """接班: the open shift passes to another cashier, with a manager's approval (``approved_by_id``,
    or the new holder being a manager or admin). The drawer, its float and every sale so far stay
    with the shift: the new holder answers for the whole shift at its close. Audited as
    "shift.handover" (from whom, to whom, approved by whom)."""
    shift = _shift(s, shift_id, lock=True)
    if shift.status != ShiftStatus.OPEN:
        raise ShiftError(_l("该班次已交班，不能接班"))
    to_user = s.get(User, to_user_id) if is_int(to_user_id) else None
    if to_user is None or not to_user.active or not allowed(to_user.role, "till"):
        raise ShiftError(_l("接班的收银员不存在或已停用"), "to_user_id")
    if shift.cashier_id == to_user.id:
        raise ShiftError(_l("这已是你的班次，无需接班"))
    approver = _approver(s, approved_by_id, to_user.id)
    if approver is None:
        raise ApprovalRequired(_l("接班需要店长授权"), "approved_by_id")
    before = shift.cashier_id
    shift.cashier_id = to_user.id
    s.flush()
    record(s, user_id=to_user.id, action="shift.handover", entity="shift", entity_id=shift.id,
           before={"cashier_id": before}, after={"cashier_id": to_user.id, "approved_by_id": approver.id})
    return shift


def handovers(s: Session, shift_id: int) -> list[dict[str, Any]]:
    """The shift's handovers (接班), oldest first, from their audit events: when, from whom, to
    whom, approved by whom (user ids)."""
    rows = s.execute(select(AuditEvent.at, AuditEvent.before, AuditEvent.after)
                     .where(AuditEvent.entity == "shift", AuditEvent.entity_id == str(shift_id),
                            AuditEvent.action == "shift.handover")
                     .order_by(AuditEvent.at, AuditEvent.id)).all()
    out = []
    for at, before, after in rows:
        before, after = json.loads(before or "{}"), json.loads(after or "{}")
        out.append({"at": at, "from_id": before.get("cashier_id"), "to_id": after.get("cashier_id"),
                    "approved_by_id": after.get("approved_by_id")})
    return out


def current_shift(s: Session, till_id: int) -> Optional[Shift]:
    if not is_int(till_id):
        return None
    return s.scalars(select(Shift).where(Shift.till_id == till_id, Shift.status == ShiftStatus.OPEN)).first()


def cash_movement(s: Session, shift_id: int, *, kind: str, amount_fen: int, reason: str,
                  user_id: int, approved_by_id: Optional[int] = None) -> CashMovement:
    """Cash put into the drawer (change from the safe) or taken out (to the safe, a supplier …),
    by the shift's owner or with a manager's approval (check_shift_access)."""
    try:
        kind = CashMovementKind(kind)
    except ValueError:
        raise ShiftError(_l("现金存取类型只能是存入或取出"), "kind") from None
    if not is_int(amount_fen) or amount_fen <= 0 or amount_fen > MAX_FEN:
        raise ShiftError(_l("金额必须是大于零的整数（分）"), "amount_fen")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise ShiftError(_l("请填写原因"), "reason")
    if len(reason) > 200:
        raise ShiftError(_l("原因最多 200 个字"), "reason")
    shift = _shift(s, shift_id, lock=True)
    if shift.status != ShiftStatus.OPEN:
        raise ShiftError(_l("班次已交班，不能再存取现金"))
    approver = check_shift_access(s, shift, actor_id=user_id, approved_by_id=approved_by_id, action="cash")
    if kind == CashMovementKind.CASH_OUT:
        expected = _figures(s, shift)["expected_cash_fen"]
        if amount_fen > expected:
            raise ShiftError(_l("取出金额 %(amount)s 超过钱箱应有现金 %(expected)s",
                                amount=format_yuan(amount_fen), expected=format_yuan(expected)), "amount_fen")
    movement = CashMovement(shift_id=shift.id, kind=kind, amount_fen=amount_fen, reason=reason, user_id=user_id,
                            at=utcnow())
    s.add(movement)
    s.flush()
    record(s, user_id=user_id, action=f"shift.cash_{kind.value}", entity="shift", entity_id=shift.id,
           after={"amount_fen": amount_fen, "reason": reason, "approved_by_id": approver})
    return movement


def _figures(s: Session, shift: Shift) -> dict[str, Any]:
    """The shift's figures, computed by the database."""
    counted_sale = and_(Sale.shift_id == shift.id, Sale.status == SaleStatus.COMPLETED,
                        Sale.after_shift_closed.is_(False))
    takings = {str(PaymentMethod(m).value): int(t) for m, t in s.execute(
        select(Payment.method, func.sum(Payment.amount_fen)).join(Sale, Sale.id == Payment.sale_id)
        .where(counted_sale).group_by(Payment.method))}
    sales_count, total = s.execute(
        select(func.count(Sale.id), func.coalesce(func.sum(Sale.total_fen), 0)).where(counted_sale)).one()
    certified = s.scalar(select(func.coalesce(func.sum(SaleLine.net_fen), 0)).join(Sale, Sale.id == SaleLine.sale_id)
                         .where(counted_sale, SaleLine.certified.is_(True)))
    voids = s.scalar(select(func.count(Sale.id)).where(Sale.shift_id == shift.id, Sale.status == SaleStatus.VOIDED))
    late = s.scalar(select(func.count(Sale.id)).where(Sale.shift_id == shift.id, Sale.after_shift_closed.is_(True)))
    refund_rows = s.execute(select(Refund.method, func.count(Refund.id), func.sum(Refund.total_fen))
                            .where(Refund.shift_id == shift.id).group_by(Refund.method)).all()
    refunds = {str(PaymentMethod(m).value): int(t) for m, _, t in refund_rows}
    cash = {CashMovementKind(k).value: int(t) for k, t in s.execute(
        select(CashMovement.kind, func.sum(CashMovement.amount_fen)).where(CashMovement.shift_id == shift.id)
        .group_by(CashMovement.kind))}
    cash_sales, cash_refunds = takings.get(CASH, 0), refunds.get(CASH, 0)
    cash_in, cash_out = cash.get("in", 0), cash.get("out", 0)
    return {
        "sales_count": int(sales_count),
        "takings_by_method": takings,
        "refunds_by_method": refunds,
        "cash_sales_fen": cash_sales,
        "cash_refunds_fen": cash_refunds,
        "cash_in_fen": cash_in,
        "cash_out_fen": cash_out,
        "opening_float_fen": shift.opening_float_fen,
        "expected_cash_fen": shift.opening_float_fen + cash_sales - cash_refunds + cash_in - cash_out,
        "certified_fen": int(certified),
        "total_fen": int(total),
        "voids_count": int(voids),
        "refunds_count": sum(int(c) for _, c, _ in refund_rows),
        "refunds_total_fen": sum(refunds.values()),
        "late_sales_count": int(late),
    }


def shift_report(s: Session, shift_id: int) -> ShiftReport:
    """The X report of an open shift (live), or the Z report of a closed one (as fixed at close)."""
    shift = _shift(s, shift_id)
    if shift.status == ShiftStatus.CLOSED and shift.totals_json:
        fixed = json.loads(shift.totals_json)
        # Late sales may still arrive after the close: counted live, shown apart, never in the figures.
        fixed["late_sales_count"] = s.scalar(select(func.count(Sale.id)).where(
            Sale.shift_id == shift.id, Sale.after_shift_closed.is_(True)))
        return ShiftReport(shift=shift, **fixed)
    return ShiftReport(shift=shift, counted_cash_fen=None, difference_fen=None, closed=False, **_figures(s, shift))


def _denominations(denominations: Mapping) -> dict[int, int]:
    if not isinstance(denominations, Mapping) or not denominations:  # a blank count is no count
        raise ShiftError(_l("请按面额清点现金后再交班"), "denominations")
    counts: dict[int, int] = {}
    for key, count in denominations.items():
        value = int(key) if isinstance(key, str) and key.isdigit() else key
        if not is_int(value) or value not in DENOMINATIONS:
            raise ShiftError(_l("不认识的面额：%(value)s", value=str(key)[:12]), "denominations")
        if not is_int(count) or count < 0 or count > 1_000_000:
            raise ShiftError(_l("面额 %(value)s 的张数必须是不小于零的整数", value=format_yuan(value)), "denominations")
        counts[value] = counts.get(value, 0) + count
    return counts


def close_shift(s: Session, shift_id: int, *, denominations: Mapping[int, int], closed_by_id: int,
                approved_by_id: Optional[int] = None) -> ShiftReport:
    """Close the shift: count the drawer by denominations, compare with the expected cash, and fix
    the figures (totals_json) so the Z report never changes afterwards.

    The count is required (at least one denomination given; zeros typed are a count). Closing
    someone else's shift, or with a difference over the hall's ``shift_difference_limit_fen``,
    needs a manager's approval (``approved_by_id``, or ``closed_by_id`` being a manager)."""
    # FOR UPDATE: a sale in flight holds the row FOR SHARE, so the close waits for it to be
    # counted; a sale that starts after the close waits and then sees the shift closed.
    shift = _shift(s, shift_id, lock=True)
    if shift.status != ShiftStatus.OPEN:
        raise ShiftError(_l("该班次已交班"))
    counts = _denominations(denominations)
    counted = sum(value * count for value, count in counts.items())
    if counted > MAX_FEN:
        raise ShiftError(_l("清点金额太大"), "denominations")
    approver = check_shift_access(s, shift, actor_id=closed_by_id, approved_by_id=approved_by_id, action="close")
    figures = _figures(s, shift)
    difference = counted - figures["expected_cash_fen"]
    limit = hall_settings(s).shift_difference_limit_fen
    if abs(difference) > limit:
        manager = _approver(s, approved_by_id, closed_by_id)
        if manager is None:
            raise ApprovalRequired(_l(
                "清点 %(counted)s，应有 %(expected)s，差额 %(diff)s 超过 %(limit)s，需要店长授权才能交班",
                counted=format_yuan(counted), expected=format_yuan(figures["expected_cash_fen"]),
                diff=format_yuan(difference), limit=format_yuan(limit)), "approved_by_id")
        approver = manager.id
    figures.update(counted_cash_fen=counted, difference_fen=counted - figures["expected_cash_fen"], closed=True,
                   denominations={str(v): counts[v] for v in sorted(counts, reverse=True)})
    figures["late_sales_count"] = 0
    shift.status = ShiftStatus.CLOSED
    shift.closed_at = utcnow()
    shift.closed_by_id = closed_by_id
    shift.expected_cash_fen = figures["expected_cash_fen"]
    shift.counted_cash_fen = counted
    shift.denominations = json.dumps(figures["denominations"], sort_keys=True)
    shift.totals_json = json.dumps(figures, ensure_ascii=False, sort_keys=True)
    s.flush()
    record(s, user_id=closed_by_id, action="shift.close", entity="shift", entity_id=shift.id,
           before={"status": ShiftStatus.OPEN.value},
           after={"status": ShiftStatus.CLOSED.value, "expected_cash_fen": figures["expected_cash_fen"],
                  "counted_cash_fen": counted, "difference_fen": figures["difference_fen"],
                  "approved_by_id": approver})
    return ShiftReport(shift=shift, **figures)


def late_sales(s: Session, *, limit: int = 200) -> list[dict[str, Any]]:
    """Sales that reached the server after their till's shift had closed (or with no open shift),
    newest first, with the alert the manager resolves when reviewed."""
    rows = s.execute(
        select(Sale.id, Sale.receipt_no, Sale.sold_at, Sale.recorded_at, Sale.total_fen, Sale.shift_id,
               Sale.status, Till.code, User.display_name, Alert.id, Alert.resolved_at)
        .outerjoin(Till, Till.id == Sale.till_id)
        .outerjoin(User, User.id == Sale.cashier_id)
        .outerjoin(Alert, and_(Alert.kind == AlertKind.LATE_SALE, Alert.ref_type == "sale", Alert.ref_id == Sale.id))
        .where(Sale.after_shift_closed.is_(True))
        .order_by(Sale.sold_at.desc(), Sale.id.desc())
        .limit(limit)
    ).all()
    return [{
        "sale_id": r[0], "receipt_no": r[1], "sold_at": r[2].isoformat(), "sold_at_local": format_local(r[2]),
        "recorded_at_local": format_local(r[3]), "total_fen": r[4], "shift_id": r[5],
        "status": SaleStatus(r[6]).value, "till": r[7], "cashier": r[8], "alert_id": r[9],
        "reviewed": r[9] is None or r[10] is not None,
    } for r in rows]


__all__ = ["ShiftReport", "open_shift", "current_shift", "cash_movement", "shift_report", "close_shift",
           "late_sales", "check_shift_access", "check_may_sell", "hand_over", "handovers", "DENOMINATIONS"]
