"""The payment-provider contract (issue 15): code recognition, answer states, the interface.

A payment code (付款码) is recognised by its shape alone: WeChat Pay codes are 18 digits starting
10–15, Alipay codes 16–24 digits starting 25–30. Everything else is no payment code (a product
barcode, a typo) and the caller treats it as such.

``PayState.UNKNOWN`` means *no answer*: a timeout, a connection error, a 5xx, or an answer whose
signature does not verify. It is never a failure: the caller queries (and, for a payment that
never completes, reverses) before telling the cashier anything final."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Optional, Protocol

WECHAT, ALIPAY = "wechat", "alipay"  # the PaymentMethod values

_WECHAT_CODE = re.compile(r"1[0-5]\d{16}")
_ALIPAY_CODE = re.compile(r"(2[5-9]|30)\d{14,22}")


def provider_for_code(code: str) -> Optional[str]:
    """WECHAT for 18 digits starting 10–15; ALIPAY for 16–24 digits starting 25–30; else None."""
    if not isinstance(code, str):
        return None
    if not code.isascii():
        return None
    if _WECHAT_CODE.fullmatch(code):
        return WECHAT
    if _ALIPAY_CODE.fullmatch(code):
        return ALIPAY
    return None


class PayState(StrEnum):
    SUCCESS = "success"
    USERPAYING = "userpaying"
    FAILED = "failed"
    UNKNOWN = "unknown"  # no answer (network error, timeout, 5xx, a signature that does not verify)
    REVERSED = "reversed"
    NOTPAY = "notpay"


@dataclass(frozen=True)
class Answer:
    state: PayState
    transaction_id: Optional[str] = None  # the provider's (WeChat transaction_id / Alipay trade_no)
    amount_fen: Optional[int] = None
    message: str = ""  # for the cashier, Chinese; never a secret
    raw: dict = field(default_factory=dict)  # the provider's answer, secrets removed


class RefundState(StrEnum):
    SUCCESS = "success"
    PROCESSING = "processing"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RefundAnswer:
    state: RefundState
    refund_id: Optional[str] = None
    message: str = ""
    raw: dict = field(default_factory=dict)


class ProviderError(Exception):
    """A call that has no usable answer where no state can say so (``download_bill``: no bill, a
    network error, an answer that does not verify). Its message is Chinese and holds no secret."""


class Provider(Protocol):
    name: str

    def pay(self, *, out_trade_no: str, auth_code: str, amount_fen: int, description: str) -> Answer: ...

    def query(self, *, out_trade_no: str) -> Answer: ...

    def reverse(self, *, out_trade_no: str) -> Answer:
        """REVERSED when done; UNKNOWN on timeout (retry); FAILED when refused."""
        ...

    def refund(self, *, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
               reason: str) -> RefundAnswer: ...

    def refund_query(self, *, out_trade_no: str, out_refund_no: str) -> RefundAnswer: ...

    def download_bill(self, day: dt.date) -> bytes:
        """The provider's daily trade bill as it sends it (WeChat: the CSV bytes, UTF-8; Alipay: the
        ZIP holding the GBK CSV); ProviderError when it cannot be had."""
        ...


def build_provider(name: str, credentials: dict, *, base_url: Optional[str] = None,
                   timeout: float = 10.0) -> Provider:  # ok-float: seconds
    """The adapter for ``name`` (WECHAT or ALIPAY) with the merchant's credentials; ``base_url``
    None means the real service (or the app config WECHATPAY_URL / ALIPAY_URL, which the caller
    passes)."""
    if name == WECHAT:
        from pos.payments.wechat import WechatProvider
        return WechatProvider(credentials, base_url=base_url, timeout=timeout)
    if name == ALIPAY:
        from pos.payments.alipay import AlipayProvider
        return AlipayProvider(credentials, base_url=base_url, timeout=timeout)
    raise ValueError(f"unknown payment provider: {name!r}")
