"""A sale's payment-code payments (issue 15): a WeChat Pay or Alipay payment that names the
attempt that took the money (``attempt_id``, pos.payments.attempts).

The attempt must be confirmed (success), of the same till and the same ``client_sale_id``, for the
same amount and provider, and not used by another sale; the payment row then gets the provider's
transaction id as its ``ref`` and the attempt is marked as used (``sale_id``) in the sale's own
transaction.

Without merchant credentials a provider's method stays a manual tender, as before. With them, a
WeChat / Alipay payment at a hall till must carry a confirmed attempt: the money recorded under
that method is then exactly the money the provider confirmed, so the daily bill check ties up.
A hall that still takes that provider's money on another device (a separate terminal, a printed
收款码) must either leave that provider's credentials unset (its method then stays a manual tender)
or record such money under another method; this is the documented choice (README, payment codes).
Counter sales and group orders are not affected (``SaleIn.code_methods`` is empty for them)."""
from __future__ import annotations

from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from inventory.money import format_yuan
from pos.core.errors import PaymentError
from pos.models import PaymentMethod
from pos.payments.attempts import AttemptState, PaymentAttempt
from pos.sales.pricing import is_int

CODE_METHODS = (PaymentMethod.WECHAT, PaymentMethod.ALIPAY)
NAMES = {PaymentMethod.WECHAT: _l("微信支付"), PaymentMethod.ALIPAY: _l("支付宝")}


def checked_attempt(s: Session, *, index: int, method: PaymentMethod, amount_fen: int, attempt_id,
                    till_id: Optional[int], client_sale_id: Optional[str],
                    code_methods: frozenset) -> Optional[PaymentAttempt]:
    """The confirmed attempt a payment names (locked), or None for a manual tender; PaymentError
    when the payment may not be recorded as it is."""
    field = f"payments-{index}-attempt_id"
    if attempt_id is None:
        if method in CODE_METHODS and method.value in code_methods:
            raise PaymentError(_l("已配置%(name)s商户：请扫顾客付款码收款（缺少 attempt_id）", name=NAMES[method]), field)
        return None
    if method not in CODE_METHODS:
        raise PaymentError(_l("只有微信支付和支付宝付款可以带付款码记录"), field)
    attempt = s.scalars(select(PaymentAttempt).where(PaymentAttempt.id == attempt_id).with_for_update()
                        .execution_options(populate_existing=True)).first() if is_int(attempt_id) else None
    if attempt is None:
        raise PaymentError(_l("付款记录 %(id)s 不存在", id=str(attempt_id)[:20]), field)
    if attempt.provider != method.value:
        raise PaymentError(_l("付款记录 %(id)s 不是%(name)s付款", id=attempt.id, name=NAMES[method]), field)
    if attempt.state != AttemptState.SUCCESS:
        raise PaymentError(_l("付款记录 %(id)s 尚未收款成功", id=attempt.id), field)
    if attempt.till_id != till_id or attempt.client_sale_id != client_sale_id:
        raise PaymentError(_l("付款记录 %(id)s 属于另一笔销售", id=attempt.id), field)
    if attempt.amount_fen != amount_fen:
        raise PaymentError(_l("付款记录 %(id)s 的金额是 %(paid)s，不是 %(amount)s", id=attempt.id,
                              paid=format_yuan(attempt.amount_fen), amount=format_yuan(amount_fen)),
                           f"payments-{index}-amount_fen")
    if attempt.sale_id is not None:
        raise PaymentError(_l("付款记录 %(id)s 已用于另一笔销售", id=attempt.id), field)
    return attempt


def mark_used(s: Session, attempt_ids: list[int], sale_id: int) -> None:
    """The attempts are this sale's now (in the sale's transaction)."""
    if attempt_ids:
        s.execute(update(PaymentAttempt).where(PaymentAttempt.id.in_(attempt_ids), PaymentAttempt.sale_id.is_(None))
                  .values(sale_id=sale_id))


__all__ = ["CODE_METHODS", "checked_attempt", "mark_used"]
