"""Till shifts: open with a float, cash in and out, the X report while open, close by counting
the drawer by denominations (the Z report, fixed at close).

Expected cash = opening float + cash sales − cash refunds + cash in − cash out. Every figure is
computed by the database (SUM … GROUP BY), never by looping over rows in Python; a closed shift's
report is read from the figures fixed at close, so a sale that arrives late never changes a Z
report (it is kept and flagged for the manager instead).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventory.audit import record
from inventory.localtime import format_local, utcnow
from inventory.models import Alert, AlertKind
from inventory.money import format_yuan
from pos.errors import NotFound, ShiftError
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


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shift(s: Session, shift_id, *, lock: bool = False) -> Shift:
    if not _is_int(shift_id):
        raise NotFound(_l("班次不存在"))
    query = select(Shift).where(Shift.id == shift_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    shift = s.scalars(query).first()
    if shift is None:
        raise NotFound(_l("班次不存在"))
    return shift


def open_shift(s: Session, *, till_id: int, cashier_id: int, opening_float_fen: int) -> Shift:
    till = s.get(Till, till_id) if _is_int(till_id) else None
    if till is None or not till.active:
        raise ShiftError(_l("收银台不存在或已停用"), "till_id")
    if not _is_int(cashier_id) or s.get(User, cashier_id) is None:
        raise ShiftError(_l("收银员不存在"), "cashier_id")
    if not _is_int(opening_float_fen) or opening_float_fen < 0 or opening_float_fen > MAX_FEN:
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


def current_shift(s: Session, till_id: int) -> Optional[Shift]:
    if not _is_int(till_id):
        return None
    return s.scalars(select(Shift).where(Shift.till_id == till_id, Shift.status == ShiftStatus.OPEN)).first()


def cash_movement(s: Session, shift_id: int, *, kind: str, amount_fen: int, reason: str,
                  user_id: int) -> CashMovement:
    """Cash put into the drawer (change from the safe) or taken out (to the safe, a supplier …)."""
    try:
        kind = CashMovementKind(kind)
    except ValueError:
        raise ShiftError(_l("现金存取类型只能是存入或取出"), "kind") from None
    if not _is_int(amount_fen) or amount_fen <= 0 or amount_fen > MAX_FEN:
        raise ShiftError(_l("金额必须是大于零的整数（分）"), "amount_fen")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise ShiftError(_l("请填写原因"), "reason")
    if len(reason) > 200:
        raise ShiftError(_l("原因最多 200 个字"), "reason")
    shift = _shift(s, shift_id, lock=True)
    if shift.status != ShiftStatus.OPEN:
        raise ShiftError(_l("班次已交班，不能再存取现金"))
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
           after={"amount_fen": amount_fen, "reason": reason})
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
    if not isinstance(denominations, Mapping):
        raise ShiftError(_l("请按面额清点现金"), "denominations")
    counts: dict[int, int] = {}
    for key, count in denominations.items():
        value = int(key) if isinstance(key, str) and key.isdigit() else key
        if not _is_int(value) or value not in DENOMINATIONS:
            raise ShiftError(_l("不认识的面额：%(value)s", value=str(key)[:12]), "denominations")
        if not _is_int(count) or count < 0 or count > 1_000_000:
            raise ShiftError(_l("面额 %(value)s 的张数必须是不小于零的整数", value=format_yuan(value)), "denominations")
        counts[value] = counts.get(value, 0) + count
    return counts


def close_shift(s: Session, shift_id: int, *, denominations: Mapping[int, int], closed_by_id: int) -> ShiftReport:
    """Close the shift: count the drawer by denominations, compare with the expected cash, and fix
    the figures (totals_json) so the Z report never changes afterwards."""
    counts = _denominations(denominations)
    # FOR UPDATE: a sale in flight holds the row FOR SHARE, so the close waits for it to be
    # counted; a sale that starts after the close waits and then sees the shift closed.
    shift = _shift(s, shift_id, lock=True)
    if shift.status != ShiftStatus.OPEN:
        raise ShiftError(_l("该班次已交班"))
    counted = sum(value * count for value, count in counts.items())
    if counted > MAX_FEN:
        raise ShiftError(_l("清点金额太大"), "denominations")
    figures = _figures(s, shift)
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
                  "counted_cash_fen": counted, "difference_fen": figures["difference_fen"]})
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
           "late_sales", "DENOMINATIONS"]
