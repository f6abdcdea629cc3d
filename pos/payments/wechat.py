"""WeChat Pay API v3 付款码支付 through the ``wechatpayv3`` library (public-key mode: the 微信支付公钥
and its id, so no platform-certificate download).

The library signs every request (``Authorization: WECHATPAY2-SHA256-RSA2048 …`` over
"METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n" with the merchant's private key) and verifies every 2xx
answer's ``Wechatpay-Signature`` with the WeChat Pay public key; an answer that does not verify
raises, and is UNKNOWN here, as are a timeout, a connection error and a 5xx. The base URL is the
app's ``WECHATPAY_URL`` (the library's gateway attribute; the signed URL is the path, as WeChat
Pay signs it).

Amounts are integer fen, as the API takes them."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Optional

import requests
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.type import RequestType

from pos.payments.common import scrub
from pos.payments.providers import WECHAT, Answer, PayState, ProviderError, RefundAnswer, RefundState

REAL_URL = "https://api.mch.weixin.qq.com"

# Error codes (both the v3 and the older spellings) that mean "no final answer yet: query".
_UNKNOWN_CODES = {"SYSTEMERROR", "SYSTEM_ERROR", "BANKERROR", "BANK_ERROR", "FREQUENCY_LIMITED",
                  "ORDER_PROCESSING"}
_TRADE_STATES = {
    "SUCCESS": PayState.SUCCESS, "REFUND": PayState.SUCCESS, "USERPAYING": PayState.USERPAYING,
    "PAYERROR": PayState.FAILED, "REVOKED": PayState.REVERSED, "CLOSED": PayState.REVERSED,
    "NOTPAY": PayState.NOTPAY,
}
_MESSAGES = {
    PayState.SUCCESS: "支付成功", PayState.USERPAYING: "等待顾客输入密码", PayState.FAILED: "支付失败",
    PayState.UNKNOWN: "支付结果未知，正在查询", PayState.REVERSED: "交易已撤销", PayState.NOTPAY: "顾客未付款",
}
_REFUND_STATES = {"SUCCESS": RefundState.SUCCESS, "PROCESSING": RefundState.PROCESSING,
                  "CLOSED": RefundState.FAILED, "ABNORMAL": RefundState.FAILED}
_REFUND_MESSAGES = {RefundState.SUCCESS: "退款成功", RefundState.PROCESSING: "退款处理中",
                    RefundState.FAILED: "退款失败", RefundState.UNKNOWN: "退款结果未知，稍后查询"}


class _NoAnswer(Exception):
    """Timeout, connection error or an answer whose signature does not verify."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class WechatProvider:
    name = WECHAT

    def __init__(self, credentials: dict, *, base_url: Optional[str] = None, timeout: float = 10.0):  # ok-float: seconds
        self._mchid = str(credentials["mchid"])
        try:
            self._pay = WeChatPay(
                wechatpay_type=WeChatPayType.CODEPAY, mchid=self._mchid,
                private_key=credentials["private_key_pem"], cert_serial_no=credentials["serial_no"],
                appid=credentials["appid"], apiv3_key=credentials["apiv3_key"],
                public_key=credentials["public_key_pem"], public_key_id=credentials["public_key_id"],
                timeout=timeout)
        except Exception:
            raise ValueError("微信支付商户密钥无法读取") from None
        self._base = (base_url or REAL_URL).rstrip("/")
        self._pay._core._gate_way = self._base  # the library's one base-URL setting

    # -- the calls -----------------------------------------------------------------------------

    def _request(self, path: str, method: RequestType = RequestType.GET, data=None, *, call=None):
        """(status, body dict) of a verified answer; raises _NoAnswer when there is none."""
        try:
            if call is not None:
                status, text = call()
            else:
                status, text = self._pay._core.request(path, method=method, data=data)
        except requests.Timeout:
            raise _NoAnswer("timeout") from None
        except requests.RequestException:
            raise _NoAnswer("network") from None
        except Exception:  # the library raises a bare Exception when the answer's signature fails
            raise _NoAnswer("signature") from None
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {"text": text[:200]}
        if not isinstance(body, dict):
            body = {"value": body}
        return status, body

    @staticmethod
    def _raw(status, body, **extra) -> dict:
        return scrub({"http_status": status, **body, **extra})

    def _trade_answer(self, status: int, body: dict, *, paying: bool) -> Answer:
        raw = self._raw(status, body)
        code = str(body.get("code") or "")
        if status >= 500 or code in _UNKNOWN_CODES:
            return Answer(PayState.UNKNOWN, message=_MESSAGES[PayState.UNKNOWN], raw=raw)
        if code == "USERPAYING" or (paying and status == 202):
            return Answer(PayState.USERPAYING, message=_MESSAGES[PayState.USERPAYING], raw=raw)
        if 200 <= status < 300 and body.get("trade_state"):
            state = _TRADE_STATES.get(body["trade_state"], PayState.UNKNOWN)
            amount = (body.get("amount") or {}).get("total")
            message = _MESSAGES[state] if state != PayState.FAILED else (body.get("trade_state_desc") or _MESSAGES[state])
            return Answer(state, transaction_id=body.get("transaction_id"),
                          amount_fen=amount if isinstance(amount, int) else None, message=message, raw=raw)
        if status in (404,) or code in ("ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"):
            return Answer(PayState.NOTPAY, message="没有这笔交易", raw=raw)
        if status == 429:
            return Answer(PayState.UNKNOWN, message=_MESSAGES[PayState.UNKNOWN], raw=raw)
        if 400 <= status < 500:
            return Answer(PayState.FAILED, message=str(body.get("message") or _MESSAGES[PayState.FAILED])[:200], raw=raw)
        return Answer(PayState.UNKNOWN, message=_MESSAGES[PayState.UNKNOWN], raw=raw)

    @staticmethod
    def _no_answer(error: _NoAnswer) -> Answer:
        return Answer(PayState.UNKNOWN, message=_MESSAGES[PayState.UNKNOWN], raw={"error": error.reason})

    def pay(self, *, out_trade_no: str, auth_code: str, amount_fen: int, description: str) -> Answer:
        try:
            status, body = self._request("", call=lambda: self._pay.pay(
                description=description or "商品", out_trade_no=out_trade_no,
                amount={"total": int(amount_fen), "currency": "CNY"}, payer={"auth_code": auth_code},
                scene_info={"store_info": {"out_id": "SONGTAO"}}, pay_type=WeChatPayType.CODEPAY))
        except _NoAnswer as error:
            return self._no_answer(error)
        return self._trade_answer(status, body, paying=True)

    def query(self, *, out_trade_no: str) -> Answer:
        try:
            status, body = self._request("", call=lambda: self._pay.query(out_trade_no=out_trade_no))
        except _NoAnswer as error:
            return self._no_answer(error)
        return self._trade_answer(status, body, paying=False)

    def reverse(self, *, out_trade_no: str) -> Answer:
        try:
            status, body = self._request("", call=lambda: self._pay.codepay_reverse(out_trade_no=out_trade_no))
        except _NoAnswer as error:
            return self._no_answer(error)
        code = str(body.get("code") or "")
        raw = self._raw(status, body)
        if 200 <= status < 300:
            return Answer(PayState.REVERSED, message=_MESSAGES[PayState.REVERSED], raw=raw)
        if status >= 500 or status == 429 or code in _UNKNOWN_CODES or code == "USERPAYING":
            return Answer(PayState.UNKNOWN, message="撤销结果未知，稍后重试", raw=raw)
        return Answer(PayState.FAILED, message=str(body.get("message") or "撤销被拒绝")[:200], raw=raw)

    def _refund_answer(self, status: int, body: dict) -> RefundAnswer:
        raw = self._raw(status, body)
        code = str(body.get("code") or "")
        if 200 <= status < 300 and body.get("status"):
            state = _REFUND_STATES.get(body["status"], RefundState.UNKNOWN)
            return RefundAnswer(state, refund_id=body.get("refund_id"), message=_REFUND_MESSAGES[state], raw=raw)
        if status >= 500 or status == 429 or code in _UNKNOWN_CODES or not (400 <= status < 500):
            return RefundAnswer(RefundState.UNKNOWN, message=_REFUND_MESSAGES[RefundState.UNKNOWN], raw=raw)
        return RefundAnswer(RefundState.FAILED, message=str(body.get("message") or "退款失败")[:200], raw=raw)

    def refund(self, *, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
               reason: str) -> RefundAnswer:
        try:
            status, body = self._request("", call=lambda: self._pay.refund(
                out_refund_no=out_refund_no, out_trade_no=out_trade_no, reason=reason or None,
                amount={"refund": int(refund_fen), "total": int(total_fen), "currency": "CNY"}))
        except _NoAnswer as error:
            return RefundAnswer(RefundState.UNKNOWN, message=_REFUND_MESSAGES[RefundState.UNKNOWN],
                                raw={"error": error.reason})
        return self._refund_answer(status, body)

    def refund_query(self, *, out_trade_no: str, out_refund_no: str) -> RefundAnswer:
        try:
            status, body = self._request("", call=lambda: self._pay.query_refund(out_refund_no=out_refund_no))
        except _NoAnswer as error:
            return RefundAnswer(RefundState.UNKNOWN, message=_REFUND_MESSAGES[RefundState.UNKNOWN],
                                raw={"error": error.reason})
        return self._refund_answer(status, body)

    def download_bill(self, day: dt.date) -> bytes:
        """The trade bill (bill_type=ALL, uncompressed): the download URL from the signed, verified
        tradebill answer, then the file, checked against the answer's SHA1."""
        try:
            status, body = self._request(f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL")
        except _NoAnswer as error:
            raise ProviderError(f"微信支付账单无法获取（{_reason(error.reason)}）") from None
        if status != 200 or not body.get("download_url"):
            raise ProviderError(f"微信支付账单无法获取：{str(body.get('message') or status)[:100]}")
        url = body["download_url"]
        try:
            status, content = self._pay.download_bill(url)
        except requests.RequestException:
            raise ProviderError("微信支付账单无法下载（网络）") from None
        if status != 200:
            raise ProviderError(f"微信支付账单无法下载（{status}）")
        if isinstance(content, str):
            content = content.encode("utf-8")
        if body.get("hash_type", "SHA1").upper() == "SHA1" and body.get("hash_value"):
            if hashlib.sha1(content).hexdigest().lower() != str(body["hash_value"]).lower():
                raise ProviderError("微信支付账单校验值不符")
        return content


def _reason(reason: str) -> str:
    return {"timeout": "超时", "network": "网络错误", "signature": "应答签名无效"}.get(reason, reason)
