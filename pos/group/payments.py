"""Money on a group order: payments and repayments on account, and the balance (delivered −
returned − paid) for one order, per buyer and in all, computed by one rule (``balance``).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from inventory.audit import record
from inventory.localtime import local_today
from inventory.money import format_yuan
from pos.group.models import Buyer, GroupOrder, GroupOrderStatus, GroupPayment
from pos.models import PaymentMethod, Refund, Sale, SaleStatus
from pos.group.orders import (
    GroupOrderError, MAX_ORDER_FEN, client_id_arg, is_int, locked_order, require_status, sent_before, text_arg,
)


PAYMENT_METHODS = (PaymentMethod.BANK_TRANSFER, PaymentMethod.WECHAT, PaymentMethod.ALIPAY, PaymentMethod.CASH)


def _money_arg(value: Any, field: str) -> int:
    if not is_int(value) or value <= 0:
        raise GroupOrderError(_l("金额必须大于零"), field)
    if value > MAX_ORDER_FEN:
        raise GroupOrderError(_l("金额太大"), field)
    return value


def _payment(s: Session, order_id: int, *, amount_fen: int, method: Any, ref: Any, on: Any, note: Any,
             actor_id: Optional[int], client_payment_id: Any, repay: bool) -> GroupPayment:
    client_payment_id = client_id_arg(client_payment_id, "client_payment_id")
    amount = _money_arg(amount_fen, "amount_fen")
    try:
        method = PaymentMethod(method)
    except ValueError:
        method = None
    if method not in PAYMENT_METHODS:
        raise GroupOrderError(_l("请选择收款方式"), "method")
    ref = text_arg(ref, 80, _l("流水号"), "ref")
    if method == PaymentMethod.BANK_TRANSFER and not ref:
        raise GroupOrderError(_l("银行转账请填写转账流水号"), "ref")
    if not isinstance(on, dt.date) or isinstance(on, dt.datetime):
        raise GroupOrderError(_l("请填写日期"), "received_on")
    if on > local_today():
        raise GroupOrderError(_l("日期不能晚于今天"), "received_on")
    note = text_arg(note, 200, _l("备注"), "note")
    order = locked_order(s, order_id)
    done = sent_before(s, order, GroupPayment.client_payment_id, client_payment_id, GroupPayment.order_id,
                       _l("收款编号已用于另一张订单"), "client_payment_id")
    if done is not None:
        return done
    require_status(order, GroupOrderStatus.PICKED, GroupOrderStatus.DELIVERED, GroupOrderStatus.PAID)
    balance = order_figures(s, order.id)["balance_fen"]
    if not repay and amount > balance:
        raise GroupOrderError(_l("收款 %(amount)s 超过应收余额 %(balance)s",
                                 amount=format_yuan(amount), balance=format_yuan(max(balance, 0))), "amount_fen")
    if repay and amount > -balance:
        raise GroupOrderError(_l("退还 %(amount)s 超过应退金额 %(credit)s",
                                 amount=format_yuan(amount), credit=format_yuan(max(-balance, 0))), "amount_fen")
    payment = GroupPayment(order_id=order.id, client_payment_id=client_payment_id, method=method, ref=ref,
                           amount_fen=-amount if repay else amount, received_on=on, note=note,
                           recorded_by_id=actor_id)
    s.add(payment)
    s.flush()
    settle(s, order)
    record(s, user_id=actor_id, action="group_order.repay" if repay else "group_order.payment",
           entity="group_order", entity_id=order.id,
           after={"order_no": order.order_no, "amount_fen": payment.amount_fen, "method": method.value,
                  "ref": ref, "on": on.isoformat()})
    return payment


def record_payment(s: Session, order_id: int, *, amount_fen: int, ref: Optional[str], received_on: dt.date,
                   actor_id: Optional[int], method: str = PaymentMethod.BANK_TRANSFER.value,
                   note: Optional[str] = None, client_payment_id: Optional[str] = None) -> GroupPayment:
    """Money received on account (at most what is owed for the goods delivered)."""
    return _payment(s, order_id, amount_fen=amount_fen, method=method, ref=ref, on=received_on, note=note,
                    actor_id=actor_id, client_payment_id=client_payment_id, repay=False)


def record_repayment(s: Session, order_id: int, *, amount_fen: int, ref: Optional[str], paid_on: dt.date,
                     actor_id: Optional[int], method: str = PaymentMethod.BANK_TRANSFER.value,
                     note: Optional[str] = None, client_payment_id: Optional[str] = None) -> GroupPayment:
    """Money paid back to the buyer after a return (at most the buyer's credit on the order)."""
    return _payment(s, order_id, amount_fen=amount_fen, method=method, ref=ref, on=paid_on, note=note,
                    actor_id=actor_id, client_payment_id=client_payment_id, repay=True)


def settle(s: Session, order: GroupOrder) -> None:
    """Delivered with nothing owed either way → paid; a paid order that a return put in credit →
    delivered again (until the money is paid back)."""
    balance = order_figures(s, order.id)["balance_fen"]
    if order.status == GroupOrderStatus.DELIVERED and balance == 0:
        order.status = GroupOrderStatus.PAID
    elif order.status == GroupOrderStatus.PAID and balance != 0:
        order.status = GroupOrderStatus.DELIVERED
    s.flush()


# --- figures -----------------------------------------------------------------------------------------

def _delivered_q():
    return (select(Sale.group_order_id.label("order_id"), func.sum(Sale.total_fen).label("fen"))
            .where(Sale.group_order_id.is_not(None), Sale.status == SaleStatus.COMPLETED)
            .group_by(Sale.group_order_id))


def _returned_q():
    return (select(Sale.group_order_id.label("order_id"), func.sum(Refund.total_fen).label("fen"))
            .join(Sale, Sale.id == Refund.sale_id).where(Sale.group_order_id.is_not(None))
            .group_by(Sale.group_order_id))


def _paid_q():
    return (select(GroupPayment.order_id.label("order_id"), func.sum(GroupPayment.amount_fen).label("fen"))
            .group_by(GroupPayment.order_id))


def balance(delivered, returned, paid):
    """The one rule for what a buyer owes on goods delivered: delivered − returned − paid (below
    zero: owed back to the buyer). For an order, a buyer or every order; on integers and on SQL
    expressions alike."""
    return delivered - returned - paid


def _sums(s: Session, order_id: Optional[int] = None) -> tuple[int, int, int]:
    """Delivered, returned and paid in fen: of one order, or (None) of every group order."""
    of_sale = Sale.group_order_id == order_id if order_id is not None else Sale.group_order_id.is_not(None)
    of_payment = [GroupPayment.order_id == order_id] if order_id is not None else []
    delivered = s.scalar(select(func.coalesce(func.sum(Sale.total_fen), 0))
                         .where(of_sale, Sale.status == SaleStatus.COMPLETED))
    returned = s.scalar(select(func.coalesce(func.sum(Refund.total_fen), 0))
                        .join(Sale, Sale.id == Refund.sale_id).where(of_sale))
    paid = s.scalar(select(func.coalesce(func.sum(GroupPayment.amount_fen), 0)).where(*of_payment))
    return int(delivered), int(returned), int(paid)


class OrderMoney(NamedTuple):
    """Each order's money as SQL columns (0 where nothing is recorded), for a statement over
    orders: ``join(stmt)`` outer-joins the per-order sums to ``GroupOrder``."""
    delivered: Any
    returned: Any
    paid: Any
    balance: Any
    subqueries: tuple

    def join(self, stmt):
        for sums in self.subqueries:
            stmt = stmt.outerjoin(sums, sums.c.order_id == GroupOrder.id)
        return stmt


def order_money() -> OrderMoney:
    subqueries = tuple(q.subquery() for q in (_delivered_q(), _returned_q(), _paid_q()))
    delivered, returned, paid = (func.coalesce(sums.c.fen, 0) for sums in subqueries)
    return OrderMoney(delivered, returned, paid, balance(delivered, returned, paid), subqueries)


def order_figures(s: Session, order_id: int) -> dict[str, int]:
    """Delivered, returned, paid and the balance of one order, in fen."""
    delivered, returned, paid = _sums(s, order_id)
    return {"delivered_fen": delivered, "returned_fen": returned, "paid_fen": paid,
            "balance_fen": balance(delivered, returned, paid)}


def open_balances(s: Session) -> list[dict[str, Any]]:
    """Per buyer, what is owed on its orders (or owed back to it), largest first."""
    money = order_money()
    first_delivery = (select(Sale.group_order_id.label("order_id"), func.min(Sale.local_date).label("day"))
                      .where(Sale.group_order_id.is_not(None), Sale.status == SaleStatus.COMPLETED)
                      .group_by(Sale.group_order_id)).subquery()
    owed = money.balance
    rows = s.execute(
        money.join(
            select(Buyer.id, Buyer.name, Buyer.buyer_type, func.sum(money.delivered), func.sum(money.returned),
                   func.sum(money.paid), func.sum(owed), func.sum(case((owed != 0, 1), else_=0)),
                   func.min(case((owed > 0, first_delivery.c.day), else_=None)))
            .join(GroupOrder, GroupOrder.buyer_id == Buyer.id))
        .outerjoin(first_delivery, first_delivery.c.order_id == GroupOrder.id)
        .where(GroupOrder.status != GroupOrderStatus.CANCELLED)
        .group_by(Buyer.id, Buyer.name, Buyer.buyer_type)
        .having(func.sum(case((owed != 0, 1), else_=0)) > 0)
    ).all()
    out = [{"buyer_id": bid, "name": name, "buyer_type": btype.value, "delivered_fen": int(d),
            "returned_fen": int(r), "paid_fen": int(p), "balance_fen": int(b), "orders": int(n),
            "oldest_delivery": oldest}
           for bid, name, btype, d, r, p, b, n, oldest in rows]
    out.sort(key=lambda row: (-row["balance_fen"], row["name"]))
    return out


def dashboard_figures(s: Session, today: dt.date) -> dict[str, int]:
    """For the manager's dashboard: drafts to confirm, orders due for delivery by ``today`` (or
    late), and what buyers owe in all."""
    due = s.scalar(select(func.count()).select_from(GroupOrder).where(
        GroupOrder.status.in_((GroupOrderStatus.CONFIRMED, GroupOrderStatus.PICKED)),
        GroupOrder.delivery_date <= today)) or 0
    drafts = s.scalar(select(func.count()).select_from(GroupOrder)
                      .where(GroupOrder.status == GroupOrderStatus.DRAFT)) or 0
    return {"due": int(due), "drafts": int(drafts), "balance_fen": balance(*_sums(s))}
