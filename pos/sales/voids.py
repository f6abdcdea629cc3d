"""Voids: a sale cancelled while its shift is still open, and the lock that voids and refunds of
one sale take turns on."""
from __future__ import annotations

from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inventory import ledger
from inventory.audit import record
from inventory.localtime import utcnow
from inventory.models import MoveReason, StockMove
from pos.accounts.users import active_approver
from pos.core.errors import ApprovalRequired, NotFound, PosError, ShiftError
from pos.models import Refund, Sale, SaleStatus, Shift, ShiftStatus
from pos.sales import daily_figures
from pos.sales.pricing import is_int


def void_sale(s: Session, sale_id: int, *, actor_id: Optional[int], approved_by_id: Optional[int],
              reason: str) -> Sale:
    """Cancel a sale while its shift is still open (a mistake at the till, before the drawer is
    counted): reverses its stock moves and marks it voided. Later, a refund is the way back."""
    if active_approver(s, approved_by_id) is None:
        raise ApprovalRequired(_l("作废销售需要店长授权"), "approved_by_id")
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise PosError(_l("请填写作废原因"), "reason")
    sale = locked_sale(s, sale_id)
    if sale.status != SaleStatus.COMPLETED:
        raise PosError(_l("小票 %(receipt)s 已作废", receipt=sale.receipt_no))
    shift = s.get(Shift, sale.shift_id) if sale.shift_id is not None else None
    if shift is None or shift.status != ShiftStatus.OPEN or sale.after_shift_closed:
        raise ShiftError(_l("只能作废本班次内的销售；交班后请办理退货"))
    if s.scalar(select(func.count()).select_from(Refund).where(Refund.sale_id == sale.id)):
        raise PosError(_l("小票 %(receipt)s 已有退货，不能作废", receipt=sale.receipt_no))

    moves = s.execute(select(StockMove.product_id, StockMove.lot_id, StockMove.qty_milli, StockMove.from_location_id,
                             StockMove.to_location_id)
                      .where(StockMove.ref_type == "sale", StockMove.ref_id == sale.id,
                             StockMove.reason == MoveReason.SALE)
                      .order_by(StockMove.product_id, StockMove.id)).all()  # the ledger's lock order
    ledger.post_moves(s, [
        ledger.MoveIn(product_id=m.product_id, qty_milli=m.qty_milli, from_location_id=m.to_location_id,
                      to_location_id=m.from_location_id, reason=MoveReason.REFUND, lot_id=m.lot_id,
                      ref_type="sale_void", ref_id=sale.id, user_id=actor_id, note=reason[:200])
        for m in moves])
    daily_figures.remove_sale(s, sale.id)  # the reports' daily aggregate, in this transaction
    sale.status = SaleStatus.VOIDED
    sale.voided_at = utcnow()
    sale.voided_by_id = actor_id
    record(s, user_id=actor_id, action="sale.void", entity="sale", entity_id=sale.id,
           before={"status": SaleStatus.COMPLETED.value, "receipt_no": sale.receipt_no, "total_fen": sale.total_fen},
           after={"status": SaleStatus.VOIDED.value, "approved_by_id": approved_by_id, "reason": reason})
    s.flush()
    return sale


def locked_sale(s: Session, sale_id) -> Sale:
    """The sale row, locked FOR UPDATE (PostgreSQL) so that voids and refunds of one sale take
    turns; on SQLite every write transaction already begins IMMEDIATE."""
    sale = s.scalars(select(Sale).where(Sale.id == sale_id).with_for_update()
                     .execution_options(populate_existing=True)).first() if is_int(sale_id) else None
    if sale is None:
        raise NotFound(_l("找不到该销售"))
    return sale
