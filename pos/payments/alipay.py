"""Alipay 当面付 (``alipay.trade.pay`` with ``scene=bar_code``) through ``python-alipay-sdk`` (RSA2).

The library signs each request (RSA2 over the sorted parameters with the app's private key) and
verifies each answer's ``sign`` over the ``<method>_response`` object with Alipay's public key: an
answer that does not verify, an unsigned answer, a timeout, a connection error and a 5xx are all
UNKNOWN here. The base URL is the app's ``ALIPAY_URL`` (the library's gateway attribute).

Amounts are yuan strings ("12.34") made from integer fen and read back to fen without floats."""
from __future__ import annotations

import datetime as dt
from typing import Optional
from urllib.error import HTTPError, URLError
from urllib.request import urlopen

from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from alipay.utils import AliPayConfig

from pos.payments.common import fen, scrub, yuan
from pos.payments.providers import ALIPAY, Answer, PayState, ProviderError, RefundAnswer, RefundState

REAL_URL = "https://openapi.alipay.com/gateway.do"

_MESSAGES = {
    PayState.SUCCESS: "支付成功", PayState.USERPAYING: "等待顾客输入密码", PayState.FAILED: "支付失败",
    PayState.UNKNOWN: "支付结果未知，正在查询", PayState.REVERSED: "交易已撤销", PayState.NOTPAY: "顾客未付款",
}
_TRADE_STATES = {"TRADE_SUCCESS": PayState.SUCCESS, "TRADE_FINISHED": PayState.SUCCESS,
                 "WAIT_BUYER_PAY": PayState.USERPAYING, "TRADE_CLOSED": PayState.REVERSED}
# 40004 sub-codes that are no final answer: query (or retry) before anything else.
_UNKNOWN_SUB_CODES = {"ACQ.SYSTEM_ERROR", "ACQ.TRADE_HAS_SUCCESS_BUT_PAY_FAIL"}
_REFUND_MESSAGES = {RefundState.SUCCESS: "退款成功", RefundState.PROCESSING: "退款处理中",
                    RefundState.FAILED: "退款失败", RefundState.UNKNOWN: "退款结果未知，稍后查询"}


class _NoAnswer(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _amount(value) -> Optional[int]:
    try:
        return fen(value) if value not in (None, "") else None
    except ValueError:
        return None


class AlipayProvider:
    name = ALIPAY

    def __init__(self, credentials: dict, *, base_url: Optional[str] = None, timeout: float = 10.0):  # ok-float: seconds
        try:
            self._ali = AliPay(appid=str(credentials["app_id"]),
                               app_private_key_string=credentials["app_private_key_pem"],
                               alipay_public_key_string=credentials["alipay_public_key_pem"],
                               sign_type="RSA2", config=AliPayConfig(timeout=timeout))
        except (ValueError, IndexError, TypeError):
            raise ValueError("支付宝应用密钥无法读取") from None
        self._ali._gateway = base_url or REAL_URL  # the library's one base-URL setting

    def _call(self, api, *args, **kwargs) -> dict:
        """The verified ``<method>_response`` object; raises _NoAnswer when there is none."""
        try:
            return api(*args, **kwargs)
        except AliPayValidationError:
            raise _NoAnswer("signature") from None
        except AliPayException:  # an unsigned answer (or an error_response): nothing to trust
            raise _NoAnswer("unsigned") from None
        except HTTPError as error:
            raise _NoAnswer(f"http {error.code}") from None
        except TimeoutError:
            raise _NoAnswer("timeout") from None
        except URLError as error:
            raise _NoAnswer("timeout" if isinstance(error.reason, TimeoutError) else "network") from None
        except OSError:
            raise _NoAnswer("network") from None
        except ValueError:
            raise _NoAnswer("malformed") from None

    def _trade_answer(self, body: dict, *, paying: bool) -> Answer:
        raw = scrub(body)
        code, sub_code = str(body.get("code") or ""), str(body.get("sub_code") or "")
        amount = _amount(body.get("total_amount"))
        if code == "10000":
            if paying:
                state = PayState.SUCCESS
            else:
                state = _TRADE_STATES.get(str(body.get("trade_status") or ""), PayState.UNKNOWN)
            return Answer(state, transaction_id=body.get("trade_no") or None, amount_fen=amount,
                          message=_MESSAGES[state], raw=raw)
        if code == "10003":
            return Answer(PayState.USERPAYING, transaction_id=body.get("trade_no") or None, amount_fen=amount,
                          message=_MESSAGES[PayState.USERPAYING], raw=raw)
        if code == "40004" and sub_code == "ACQ.TRADE_NOT_EXIST":
            return Answer(PayState.NOTPAY, message="没有这笔交易", raw=raw)
        if code in ("40004", "40002", "40001", "40006") and sub_code not in _UNKNOWN_SUB_CODES:
            return Answer(PayState.FAILED, message=str(body.get("sub_msg") or body.get("msg") or "支付失败")[:200], raw=raw)
        return Answer(PayState.UNKNOWN, message=_MESSAGES[PayState.UNKNOWN], raw=raw)

    @staticmethod
    def _no_answer(error: _NoAnswer) -> Answer:
        return Answer(PayState.UNKNOWN, message=_MESSAGES[PayState.UNKNOWN], raw={"error": error.reason})

    def pay(self, *, out_trade_no: str, auth_code: str, amount_fen: int, description: str) -> Answer:
        try:
            body = self._call(self._ali.api_alipay_trade_pay, out_trade_no, "bar_code", auth_code,
                              description or "商品", total_amount=yuan(int(amount_fen)))
        except _NoAnswer as error:
            return self._no_answer(error)
        return self._trade_answer(body, paying=True)

    def query(self, *, out_trade_no: str) -> Answer:
        try:
            body = self._call(self._ali.api_alipay_trade_query, out_trade_no=out_trade_no)
        except _NoAnswer as error:
            return self._no_answer(error)
        return self._trade_answer(body, paying=False)

    def reverse(self, *, out_trade_no: str) -> Answer:
        try:
            body = self._call(self._ali.api_alipay_trade_cancel, out_trade_no=out_trade_no)
        except _NoAnswer as error:
            return self._no_answer(error)
        raw = scrub(body)
        code = str(body.get("code") or "")
        if code == "10000" and body.get("retry_flag", "N") != "Y":
            return Answer(PayState.REVERSED, transaction_id=body.get("trade_no") or None,
                          message=_MESSAGES[PayState.REVERSED], raw=raw)
        if code == "10000" or code == "20000" or body.get("retry_flag") == "Y" or \
                str(body.get("sub_code") or "") in _UNKNOWN_SUB_CODES:
            return Answer(PayState.UNKNOWN, message="撤销结果未知，稍后重试", raw=raw)
        return Answer(PayState.FAILED, message=str(body.get("sub_msg") or body.get("msg") or "撤销被拒绝")[:200], raw=raw)

    def _refund_failure(self, body: dict) -> RefundAnswer:
        raw = scrub(body)
        code, sub_code = str(body.get("code") or ""), str(body.get("sub_code") or "")
        if code.startswith("400") and sub_code not in _UNKNOWN_SUB_CODES:
            return RefundAnswer(RefundState.FAILED, message=str(body.get("sub_msg") or "退款失败")[:200], raw=raw)
        return RefundAnswer(RefundState.UNKNOWN, message=_REFUND_MESSAGES[RefundState.UNKNOWN], raw=raw)

    def refund(self, *, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
               reason: str) -> RefundAnswer:
        extra = {"out_request_no": out_refund_no}
        if reason:
            extra["refund_reason"] = reason
        try:
            body = self._call(self._ali.api_alipay_trade_refund, yuan(int(refund_fen)), out_trade_no=out_trade_no, **extra)
        except _NoAnswer as error:
            return RefundAnswer(RefundState.UNKNOWN, message=_REFUND_MESSAGES[RefundState.UNKNOWN],
                                raw={"error": error.reason})
        if str(body.get("code")) != "10000":
            return self._refund_failure(body)
        # fund_change Y: this request moved the money; N: an earlier one did, or it is still on its
        # way (Alipay's advice: ask alipay.trade.fastpay.refund.query).
        state = RefundState.SUCCESS if body.get("fund_change") == "Y" else RefundState.PROCESSING
        return RefundAnswer(state, refund_id=out_refund_no, message=_REFUND_MESSAGES[state], raw=scrub(body))

    def refund_query(self, *, out_trade_no: str, out_refund_no: str) -> RefundAnswer:
        try:
            body = self._call(self._ali.api_alipay_trade_fastpay_refund_query, out_refund_no,
                              out_trade_no=out_trade_no)
        except _NoAnswer as error:
            return RefundAnswer(RefundState.UNKNOWN, message=_REFUND_MESSAGES[RefundState.UNKNOWN],
                                raw={"error": error.reason})
        if str(body.get("code")) != "10000":
            return self._refund_failure(body)
        if not body.get("out_request_no") and not body.get("refund_amount"):
            # Alipay answers an empty success for a refund it never took
            return RefundAnswer(RefundState.FAILED, message="没有这笔退款", raw=scrub(body))
        status = body.get("refund_status") or "REFUND_SUCCESS"
        state = RefundState.SUCCESS if status == "REFUND_SUCCESS" else RefundState.PROCESSING
        return RefundAnswer(state, refund_id=out_refund_no, message=_REFUND_MESSAGES[state], raw=scrub(body))

    def download_bill(self, day: dt.date) -> bytes:
        """The trade bill's ZIP: its URL from the signed, verified
        ``alipay.data.dataservice.bill.downloadurl.query`` answer, then the file itself."""
        try:
            body = self._call(self._ali.server_api, "alipay.data.dataservice.bill.downloadurl.query",
                              biz_content={"bill_type": "trade", "bill_date": day.isoformat()})
        except _NoAnswer as error:
            raise ProviderError(f"支付宝账单无法获取（{error.reason}）") from None
        if str(body.get("code")) != "10000" or not body.get("bill_download_url"):
            raise ProviderError(f"支付宝账单无法获取：{str(body.get('sub_msg') or body.get('msg') or '')[:100]}")
        try:
            with urlopen(body["bill_download_url"], timeout=self._ali._config.timeout) as response:
                return response.read()
        except (URLError, TimeoutError, OSError):
            raise ProviderError("支付宝账单无法下载（网络）") from None

