"""Refunds: partial or whole, against the original sale's lines, never more than was sold minus
earlier refunds, with a manager's approval. A refund counts on its own local date, with the
original line's certified flag.

A line's refund amount is its net amount × the cumulative refunded share, rounded half up, minus
what was refunded before: so partial refunds never add up to more than the line's net, and the
last one takes the exact remainder (a line refunded in parts returns exactly its net).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventory import ledger
from inventory.audit import record
from inventory.localtime import local_date, utcnow
from inventory.models import LocationKind, MoveReason, Product, StockMove
from inventory.money import format_qty, format_yuan
from pos.accounts.users import active_approver
from pos.core.errors import ApprovalRequired, Conflict, RefundError, ShiftError
from pos.models import Payment, PaymentMethod, Refund, RefundLine, SaleLine, SaleStatus, Shift, ShiftStatus, Till
from pos.payments.attempts import new_out_refund_no
from pos.payments.service import REFUND_PENDING
from pos.sales.offline import OfflineLimits, check_time
from pos.sales.pricing import is_int
from pos.sales.reading import get_sale, refunded_qty_by_line
from pos.sales.service import customer_location, document_number, next_number
from pos.sales.voids import locked_sale


@dataclass(frozen=True)
class RefundResult:
    refund_id: int
    refund_no: str
    total_fen: int
    created: bool = True


def _half_up_share(net_fen: int, qty_milli: int, sold_milli: int) -> int:
    return (2 * net_fen * qty_milli + sold_milli) // (2 * sold_milli)


def _same_request(s: Session, existing: Refund, sale_id: int, wanted: dict[int, tuple[int, bool]],
                  method: Optional[PaymentMethod]) -> bool:
    rows = s.execute(select(RefundLine.sale_line_id, RefundLine.qty_milli, RefundLine.back_to_stock)
                     .where(RefundLine.refund_id == existing.id)).all()
    return (existing.sale_id == sale_id and {r[0]: (r[1], bool(r[2])) for r in rows} == wanted
            and (method is None or existing.method == method))


def _duplicate(s: Session, existing: Refund, sale_id: int, wanted, method) -> RefundResult:
    if not _same_request(s, existing, sale_id, wanted, method):
        raise Conflict(_l("退货编号已用于另一笔内容不同的退货（%(no)s）", no=existing.refund_no))
    return RefundResult(existing.id, existing.refund_no, existing.total_fen, False)


def refund(
    s: Session,
    *,
    receipt_no: str,
    lines: Sequence[tuple[int, int, bool]],
    method: Optional[str],
    reason: str,
    cashier_id: int,
    approved_by_id: Optional[int],
    shift_id: Optional[int] = None,
    client_refund_id: Optional[str] = None,
    refunded_at: Optional[dt.datetime] = None,
    for_group_order: bool = False,
    limits: Optional[OfflineLimits] = None,
) -> RefundResult:
    """Refund ``(sale_line_id, qty_milli, back_to_stock)`` lines of the sale with this receipt.
    ``method`` None = the sale's first payment method. Goods go back to the selling location
    (back_to_stock) or to loss (damaged). Idempotent on ``client_refund_id``.

    ``refunded_at`` (default now) is never before the sale; ``limits`` (a refund the till made
    offline) also bounds it as pos.sales.offline.check_time says: not in the future, not too old,
    not before the refund's own shift opened."""
    # --- validate what was asked, before anything is written
    if active_approver(s, approved_by_id) is None:
        raise ApprovalRequired(_l("退货需要店长授权"), "approved_by_id")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise RefundError(_l("请填写退货原因"), "reason")
    if len(reason) > 200:
        raise RefundError(_l("退货原因最多 200 个字"), "reason")
    if client_refund_id is not None and (not isinstance(client_refund_id, str) or not 0 < len(client_refund_id) <= 64):
        raise RefundError(_l("退货编号必须是 1 到 64 个字符"), "client_refund_id")
    payment_method = None
    if method is not None:
        try:
            payment_method = PaymentMethod(method)
        except ValueError:
            raise RefundError(_l("未知的支付方式：%(method)s", method=str(method)[:20]), "method") from None
    if not isinstance(lines, (list, tuple)) or not lines:
        raise RefundError(_l("请选择要退的商品"), "lines")
    wanted: dict[int, tuple[int, bool]] = {}
    for i, item in enumerate(lines):
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise RefundError(_l("第 %(n)s 行格式不正确", n=i + 1), f"lines-{i}")
        line_id, qty, back = item
        if not is_int(line_id) or not is_int(qty) or qty <= 0:
            raise RefundError(_l("第 %(n)s 行：退货数量必须大于零", n=i + 1), f"lines-{i}-qty_milli")
        if line_id in wanted:
            raise RefundError(_l("第 %(n)s 行：同一商品行重复", n=i + 1), f"lines-{i}")
        wanted[line_id] = (qty, bool(back))
    refunded_at = refunded_at or utcnow()
    if refunded_at.tzinfo is None:
        raise RefundError(_l("退货时间必须带时区"), "refunded_at")

    sale = get_sale(s, receipt_no)
    if client_refund_id is not None:
        existing = s.scalars(select(Refund).where(Refund.client_refund_id == client_refund_id)).first()
        if existing is not None:
            return _duplicate(s, existing, sale.id, wanted, payment_method)
    # Lock the sale (PostgreSQL: SELECT … FOR UPDATE; SQLite: BEGIN IMMEDIATE already serialises
    # writers), then sum the earlier refunds: two refunds of the last unit cannot both pass.
    sale = locked_sale(s, sale.id)
    if client_refund_id is not None:  # a twin may have committed while we waited for the lock
        existing = s.scalars(select(Refund).where(Refund.client_refund_id == client_refund_id)
                             .execution_options(populate_existing=True)).first()
        if existing is not None:
            return _duplicate(s, existing, sale.id, wanted, payment_method)
    if sale.status != SaleStatus.COMPLETED:
        raise RefundError(_l("小票 %(receipt)s 已作废，不能退货", receipt=sale.receipt_no))
    if sale.group_order_id is not None and not for_group_order:
        # Delivered on account: the money is settled on the order (pos.group.delivery.return_goods),
        # never paid out of a till's drawer.
        raise RefundError(_l("%(receipt)s 是团购送货单，请在团购订单中办理退货", receipt=sale.receipt_no), "receipt_no")

    sale_lines = {ln.id: ln for ln in s.scalars(select(SaleLine).where(SaleLine.sale_id == sale.id))}
    products = {p.id: p for p in s.scalars(select(Product).where(
        Product.id.in_({ln.product_id for ln in sale_lines.values()})))}
    earlier = refunded_qty_by_line(s, sale.id)
    planned = []
    for i, (line_id, (qty, back)) in enumerate(wanted.items()):
        line = sale_lines.get(line_id)
        if line is None:
            raise RefundError(_l("第 %(n)s 行不属于小票 %(receipt)s", n=i + 1, receipt=sale.receipt_no), f"lines-{i}")
        done_qty, done_amount = earlier.get(line_id, (0, 0))
        product = products[line.product_id]
        weighed = product.weighed
        left = line.qty_milli - done_qty
        if qty > left:
            raise RefundError(_l("「%(product)s」最多还能退 %(left)s（已售 %(sold)s，已退 %(done)s）",
                                 product=product.name, left=format_qty(left, by_weight=weighed),
                                 sold=format_qty(line.qty_milli, by_weight=weighed),
                                 done=format_qty(done_qty, by_weight=weighed)), f"lines-{i}-qty_milli")
        if not weighed and qty % 1000:
            raise RefundError(_l("「%(product)s」按件销售，退货数量必须是整数件", product=product.name),
                              f"lines-{i}-qty_milli")
        amount = _half_up_share(line.net_fen, done_qty + qty, line.qty_milli) - done_amount
        planned.append((line, qty, back, max(0, min(amount, line.net_fen - done_amount))))
    total = sum(p[3] for p in planned)
    if total <= 0:
        raise RefundError(_l("退货金额为零，无需退款"))

    code_payment = s.execute(select(Payment.method, Payment.attempt_id, Payment.amount_fen)
                             .where(Payment.sale_id == sale.id, Payment.attempt_id.is_not(None))
                             .order_by(Payment.id).limit(1)).first()
    if payment_method is None:
        first = s.scalar(select(Payment.method).where(Payment.sale_id == sale.id).order_by(Payment.id).limit(1))
        payment_method = PaymentMethod(first) if first is not None else PaymentMethod.CASH
        if code_payment is not None:  # paid by a payment code: the money goes back the way it came
            payment_method = PaymentMethod(code_payment.method)
    provider_refund = None
    if code_payment is not None and payment_method == PaymentMethod(code_payment.method):
        # Back through the provider (pos.payments.service.refund, after this transaction commits):
        # never more than the code paid, less what earlier refunds sent back through it.
        earlier_fen = s.scalar(select(func.coalesce(func.sum(Refund.total_fen), 0))
                               .where(Refund.attempt_id == code_payment.attempt_id)) or 0
        left_fen = code_payment.amount_fen - int(earlier_fen)
        if total > left_fen:
            raise RefundError(_l("退款 %(total)s 超过付款码还可退的 %(left)s，请分开退（其余用现金）",
                                 total=format_yuan(total), left=format_yuan(max(0, left_fen))), "method")
        provider_refund = {"attempt_id": code_payment.attempt_id, "provider_state": REFUND_PENDING,
                           "out_refund_no": new_out_refund_no()}

    shift = None
    if shift_id is not None:
        shift = s.get(Shift, shift_id) if is_int(shift_id) else None
        if shift is None:
            raise ShiftError(_l("班次不存在"), "shift_id")
        if shift.status != ShiftStatus.OPEN:
            raise ShiftError(_l("班次已交班，不能在该班次退货"), "shift_id")
    elif sale.till_id is not None:
        # The money comes out of the selling till's drawer, in its open shift if there is one.
        shift = s.scalars(select(Shift).where(Shift.till_id == sale.till_id, Shift.status == ShiftStatus.OPEN)).first()
    if limits is not None:
        refunded_at = check_time(refunded_at, limits, field="refunded_at", shift=shift, sale=sale)
    elif refunded_at < sale.sold_at:
        raise RefundError(_l("退货时间不能早于原销售时间"), "refunded_at")
    till_id = shift.till_id if shift is not None else sale.till_id
    till = s.get(Till, till_id) if till_id is not None else None
    prefix = "R-" + (till.code if till else sale.receipt_no.split("-", 1)[0])
    day = local_date(refunded_at)

    # --- write
    refunds = Refund.__table__
    try:
        with s.begin_nested():
            refund_no = document_number(prefix, day, next_number(s, prefix, day))
            refund_id = s.execute(insert(refunds).returning(refunds.c.id), {
                "refund_no": refund_no, "client_refund_id": client_refund_id, "sale_id": sale.id,
                "shift_id": shift.id if shift else None, "till_id": till_id, "refunded_at": refunded_at,
                "local_date": day, "user_id": cashier_id, "approved_by_id": approved_by_id, "reason": reason,
                "method": payment_method, "total_fen": total, **(provider_refund or {}),
            }).scalar_one()
    except IntegrityError:
        existing = s.scalars(select(Refund).where(Refund.client_refund_id == client_refund_id)).first() \
            if client_refund_id is not None else None
        if existing is None:
            raise
        return _duplicate(s, existing, sale.id, wanted, payment_method)
    s.execute(insert(RefundLine.__table__), [
        {"refund_id": refund_id, "sale_line_id": line.id, "qty_milli": qty, "amount_fen": amount,
         "back_to_stock": back} for line, qty, back, amount in planned])

    customer = customer_location(s)
    loss = None
    for line, qty, back, _ in ledger.by_product(planned, key=lambda plan: plan[0].product_id):  # lock order
        if back:
            target = sale.location_id
        else:
            loss = loss or ledger.virtual_location(s, LocationKind.LOSS).id
            target = loss
        for lot_id, part in _lots_to_return(s, sale.id, line.product_id, qty):
            ledger.move(s, product_id=line.product_id, qty_milli=part, from_location_id=customer,
                        to_location_id=target, reason=MoveReason.REFUND, lot_id=lot_id, ref_type="refund",
                        ref_id=refund_id, user_id=cashier_id,
                        note=None if back else str(_l("退货损坏：%(reason)s", reason=reason))[:200])
    record(s, user_id=cashier_id, action="refund.create", entity="refund", entity_id=refund_id,
           after={"refund_no": refund_no, "receipt_no": sale.receipt_no, "total_fen": total,
                  "method": payment_method.value, "approved_by_id": approved_by_id, "reason": reason,
                  "out_refund_no": provider_refund["out_refund_no"] if provider_refund else None,
                  "lines": [[line.id, qty, back, amount] for line, qty, back, amount in planned]})
    return RefundResult(refund_id, refund_no, total, True)


def _lots_to_return(s: Session, sale_id: int, product_id: int, qty_milli: int) -> list[tuple[Optional[int], int]]:
    """Which lots the returned goods came from: the sale's own moves of the product, less what
    earlier refunds of this sale already brought back, newest lot first; whatever is left
    unlotted."""
    sold = dict(s.execute(
        select(StockMove.lot_id, func.sum(StockMove.qty_milli))
        .where(StockMove.ref_type == "sale", StockMove.ref_id == sale_id, StockMove.product_id == product_id)
        .group_by(StockMove.lot_id)).all())
    back = dict(s.execute(
        select(StockMove.lot_id, func.sum(StockMove.qty_milli))
        .where(StockMove.ref_type == "refund", StockMove.product_id == product_id,
               StockMove.ref_id.in_(select(Refund.id).where(Refund.sale_id == sale_id)))
        .group_by(StockMove.lot_id)).all())
    parts = []
    remaining = qty_milli
    for lot_id in sorted((lot for lot in sold if lot is not None), reverse=True):
        room = int(sold[lot_id]) - int(back.get(lot_id) or 0)
        if remaining <= 0:
            break
        if room > 0:
            take = min(room, remaining)
            parts.append((lot_id, take))
            remaining -= take
    if remaining > 0:
        parts.append((None, remaining))
    return parts


__all__ = ["RefundResult", "refund"]
