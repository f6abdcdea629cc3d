"""A protocol-faithful stand-in for WeChat Pay API v3 and the Alipay open gateway (issue 15), for the
tests, the demo and rehearsals: ``songtao fake-gateway [--port P] [--keys DIR] [--slow-seconds S]``.

It answers the same paths with the same JSON as the real services for the calls the adapters make,
checks each request's signature as they do, refuses a bad one (WeChat: 401 SIGN_ERROR; Alipay: code
40002 isv.invalid-signature), and signs its answers (WeChat: the Wechatpay-Signature/Timestamp/
Nonce/Serial headers with the platform key whose id is ``public_key_id``; Alipay: ``sign`` over the
``<method>_response`` object), so the adapters verify them exactly as they verify the real ones.

Layout on one port: WeChat Pay at the root (``SONGTAO_WECHATPAY_URL=http://127.0.0.1:P``), Alipay at
``/alipay/gateway.do`` (``SONGTAO_ALIPAY_URL=http://127.0.0.1:P/alipay/gateway.do``).

Keys: ``ensure_keys(folder)`` writes four RSA-2048 key pairs once (the WeChat merchant's, the WeChat
Pay platform's, the Alipay app's, Alipay's) and the APIv3 key; ``rehearsal_credentials(folder)`` gives
the merchant credentials that match the gateway serving that folder. Behaviour by the payment code's
last four digits: see ``pos.payments.fake_ledger``."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, Response, request

from pos.payments import fake_ledger
from pos.payments.common import fen, yuan
from pos.payments.fake_ledger import ALIPAY_APP_ID, SHANGHAI, WECHAT_APPID, WECHAT_MCHID, Ledger

KEY_NAMES = ("wechat_merchant", "wechat_platform", "alipay_app", "alipay_platform")
SIGN_TYPE = "WECHATPAY2-SHA256-RSA2048"
_AUTH_PART = re.compile(r'(\w+)="([^"]*)"')


def ensure_keys(folder) -> None:
    """Write the gateway's key pairs (RSA 2048, PKCS#8 PEM, mode 600) and APIv3 key into ``folder``
    once; existing keys are kept."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in KEY_NAMES:
        path = folder / f"{name}.pem"
        if path.exists():
            continue
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        _write_secret(path, pem)
    apiv3 = folder / "wechat_apiv3.key"
    if not apiv3.exists():
        _write_secret(apiv3, secrets.token_hex(16).encode("ascii"))


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _private(folder: Path, name: str):
    return serialization.load_pem_private_key((folder / f"{name}.pem").read_bytes(), password=None)


def _pem(key, private: bool = False) -> str:
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode("ascii")
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _fingerprint(key) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha1(der).hexdigest().upper()


def merchant_serial(folder) -> str:
    """The merchant certificate serial number the gateway expects (40 hex digits, from the key)."""
    return _fingerprint(_private(Path(folder), "wechat_merchant"))


def public_key_id(folder) -> str:
    """The id of the WeChat Pay public key that signs the gateway's answers."""
    return "PUB_KEY_ID_0119000001092026" + _fingerprint(_private(Path(folder), "wechat_platform"))[:16]


def rehearsal_credentials(folder) -> dict:
    """{"wechat": {...}, "alipay": {...}}: merchant credentials that match the gateway using ``folder``."""
    folder = Path(folder)
    ensure_keys(folder)
    return {
        "wechat": {
            "mchid": WECHAT_MCHID, "appid": WECHAT_APPID, "serial_no": merchant_serial(folder),
            "private_key_pem": _pem(_private(folder, "wechat_merchant"), private=True),
            "apiv3_key": (folder / "wechat_apiv3.key").read_text(encoding="ascii").strip(),
            "public_key_pem": _pem(_private(folder, "wechat_platform")),
            "public_key_id": public_key_id(folder),
        },
        "alipay": {
            "app_id": ALIPAY_APP_ID,
            "app_private_key_pem": _pem(_private(folder, "alipay_app"), private=True),
            "alipay_public_key_pem": _pem(_private(folder, "alipay_platform")),
        },
    }


def _rsa_sign(key, message: str) -> str:
    return base64.b64encode(key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def _rsa_verify(public_key, message: str, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def create_app(folder, *, slow_seconds: float = 15) -> Flask:  # ok-float: seconds
    """The gateway's WSGI app over the keys in ``folder``; trades are kept in this process."""
    folder = Path(folder)
    ensure_keys(folder)
    keys = {name: _private(folder, name) for name in KEY_NAMES}
    serial, pub_id = merchant_serial(folder), public_key_id(folder)
    ledger = Ledger()
    tokens: dict[str, tuple[str, date]] = {}
    app = Flask("songtao_fake_gateway")

    # -- WeChat Pay API v3 ------------------------------------------------------------------------

    def wx_answer(status: int, body=None) -> Response:
        text = "" if body is None else json.dumps(body, ensure_ascii=False)
        stamp, nonce = str(int(time.time())), uuid.uuid4().hex.upper()
        signature = _rsa_sign(keys["wechat_platform"], f"{stamp}\n{nonce}\n{text}\n")
        response = Response(text, status=status, content_type="application/json; charset=utf-8")
        response.headers.update({"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce,
                                 "Wechatpay-Signature": signature, "Wechatpay-Serial": pub_id,
                                 "Wechatpay-Signature-Type": SIGN_TYPE, "Request-ID": uuid.uuid4().hex})
        return response

    def wx_error(status: int, code: str, message: str) -> Response:
        return wx_answer(status, {"code": code, "message": message})

    def wx_refused():
        """None when the request's Authorization verifies; else the 401 SIGN_ERROR answer."""
        header = request.headers.get("Authorization", "")
        if not header.startswith(SIGN_TYPE + " "):
            return wx_error(401, "SIGN_ERROR", "Authorization 不合法")
        parts = dict(_AUTH_PART.findall(header))
        if parts.get("mchid") != WECHAT_MCHID:
            return wx_error(401, "SIGN_ERROR", "商户号与 Authorization 不符")
        if parts.get("serial_no", "").upper() != serial:
            return wx_error(401, "SIGN_ERROR", "商户证书序列号有误")
        try:
            if abs(time.time() - int(parts.get("timestamp", ""))) > 300:
                return wx_error(401, "SIGN_ERROR", "时间戳超出有效期")
        except ValueError:
            return wx_error(401, "SIGN_ERROR", "时间戳不合法")
        url = quote(request.environ.get("PATH_INFO", ""), safe="/-_.~")
        query = request.environ.get("QUERY_STRING", "")
        if query:
            url += "?" + query
        message = f"{request.method}\n{url}\n{parts['timestamp']}\n{parts.get('nonce_str', '')}\n" \
                  f"{request.get_data(as_text=True)}\n"
        if not _rsa_verify(keys["wechat_merchant"].public_key(), message, parts.get("signature", "")):
            return wx_error(401, "SIGN_ERROR", "签名错误")
        return None

    def wx_trade(trade) -> dict:
        state = {"REVOKED": "REVOKED"}.get(trade.state, trade.state)
        if trade.state == "SUCCESS" and trade.refunds:
            state = "REFUND"
        body = {"appid": WECHAT_APPID, "mchid": WECHAT_MCHID, "out_trade_no": trade.out_trade_no,
                "trade_type": "MICROPAY", "trade_state": state,
                "trade_state_desc": {"SUCCESS": "支付成功", "USERPAYING": "需要用户输入支付密码", "PAYERROR": "用户账户余额不足",
                                     "REVOKED": "已撤销", "REFUND": "转入退款"}.get(state, state),
                "amount": {"total": trade.amount_fen, "currency": "CNY"}}
        if trade.was_paid:
            body["transaction_id"] = trade.transaction_id
            body.update({"bank_type": "OTHERS", "success_time": trade.paid_at.astimezone(SHANGHAI).isoformat(),
                         "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                         "amount": {"total": trade.amount_fen, "payer_total": trade.amount_fen, "currency": "CNY",
                                    "payer_currency": "CNY"}})
        return body

    @app.post("/v3/pay/transactions/codepay")
    def wx_codepay():
        if (refused := wx_refused()) is not None:
            return refused
        data = request.get_json(silent=True) or {}
        code = str((data.get("payer") or {}).get("auth_code") or "")
        total = (data.get("amount") or {}).get("total")
        if data.get("mchid") != WECHAT_MCHID or data.get("appid") != WECHAT_APPID:
            return wx_error(403, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        if not data.get("out_trade_no") or not isinstance(total, int) or total <= 0 or not code:
            return wx_error(400, "PARAM_ERROR", "参数错误")
        if not (len(code) == 18 and code.isdigit() and 10 <= int(code[:2]) <= 15):
            return wx_error(400, "INVALID_REQUEST", "101 每个二维码仅限使用一次，请刷新再试")
        trade, outcome = ledger.pay("wechat", data["out_trade_no"], code, total, str(data.get("description") or ""))
        if outcome == "refused":
            return wx_error(403, "NOT_ENOUGH", "用户账户余额不足")
        if outcome == "used":
            return wx_error(403, "ORDER_CLOSED", "订单已关闭")
        if outcome == "userpaying":
            return wx_error(202, "USERPAYING", "用户支付中，需要输入密码")
        if outcome == "error":
            return wx_error(500, "SYSTEM_ERROR", "系统错误")
        if outcome == "slow":
            time.sleep(slow_seconds)
        return wx_answer(200, wx_trade(trade))

    @app.get("/v3/pay/transactions/out-trade-no/<out_trade_no>")
    def wx_query(out_trade_no):
        if (refused := wx_refused()) is not None:
            return refused
        if request.args.get("mchid") != WECHAT_MCHID:
            return wx_error(400, "PARAM_ERROR", "mchid 参数错误")
        trade = ledger.query("wechat", out_trade_no)
        if trade is None:
            return wx_error(404, "ORDER_NOT_EXIST", "订单不存在")
        return wx_answer(200, wx_trade(trade))

    @app.post("/v3/pay/transactions/out-trade-no/<out_trade_no>/reverse")
    def wx_reverse(out_trade_no):
        if (refused := wx_refused()) is not None:
            return refused
        data = request.get_json(silent=True) or {}
        if data.get("mchid") != WECHAT_MCHID or data.get("appid") != WECHAT_APPID:
            return wx_error(403, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        _, outcome = ledger.reverse("wechat", out_trade_no)
        if outcome == "refused":
            return wx_error(403, "TRADE_ERROR", "订单已退款，不能撤销")
        return wx_answer(204)

    def wx_refund_body(trade, refund) -> dict:
        return {"refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
                "transaction_id": trade.transaction_id, "out_trade_no": trade.out_trade_no, "channel": "ORIGINAL",
                "user_received_account": "支付用户零钱", "status": "SUCCESS",
                "success_time": refund.at.astimezone(SHANGHAI).isoformat(),
                "create_time": refund.at.astimezone(SHANGHAI).isoformat(), "funds_account": "AVAILABLE",
                "amount": {"total": trade.amount_fen, "refund": refund.amount_fen, "payer_total": trade.amount_fen,
                           "payer_refund": refund.amount_fen, "settlement_refund": refund.amount_fen,
                           "settlement_total": trade.amount_fen, "discount_refund": 0, "currency": "CNY"}}

    @app.post("/v3/refund/domestic/refunds")
    def wx_refund():
        if (refused := wx_refused()) is not None:
            return refused
        data = request.get_json(silent=True) or {}
        amount = data.get("amount") or {}
        if not data.get("out_trade_no") or not data.get("out_refund_no") or not isinstance(amount.get("refund"), int):
            return wx_error(400, "PARAM_ERROR", "参数错误")
        trade, refund, outcome = ledger.refund("wechat", data["out_trade_no"], data["out_refund_no"],
                                               amount["refund"], amount.get("total"))
        if outcome == "no_trade":
            return wx_error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if outcome == "not_paid":
            return wx_error(403, "INVALID_REQUEST", "订单未支付或已撤销，不能退款")
        if outcome == "bad_total":
            return wx_error(400, "PARAM_ERROR", "订单金额与原订单不符")
        if outcome == "too_much":
            return wx_error(403, "NOT_ENOUGH", "申请退款金额超过订单可退金额")
        return wx_answer(200, wx_refund_body(trade, refund))

    @app.get("/v3/refund/domestic/refunds/<out_refund_no>")
    def wx_refund_query(out_refund_no):
        if (refused := wx_refused()) is not None:
            return refused
        trade, refund = ledger.find_refund("wechat", out_refund_no)
        if refund is None:
            return wx_error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return wx_answer(200, wx_refund_body(trade, refund))

    @app.get("/v3/bill/tradebill")
    def wx_tradebill():
        if (refused := wx_refused()) is not None:
            return refused
        try:
            day = date.fromisoformat(request.args.get("bill_date", ""))
        except ValueError:
            return wx_error(400, "PARAM_ERROR", "账单日期格式不正确")
        if day > datetime.now(SHANGHAI).date():
            return wx_error(400, "INVALID_REQUEST", "账单日期不能晚于今天")
        token = secrets.token_urlsafe(16)
        tokens[token] = ("wechat", day)
        content = fake_ledger.wechat_bill(ledger, day)
        return wx_answer(200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(content).hexdigest(),
                               "download_url": request.host_url.rstrip("/") + f"/v3/billdownload/file?token={token}"})

    @app.get("/v3/billdownload/file")
    def wx_billdownload():
        if (refused := wx_refused()) is not None:
            return refused
        found = tokens.get(request.args.get("token", ""))
        if not found or found[0] != "wechat":
            return wx_error(400, "INVALID_REQUEST", "下载地址无效")
        return Response(fake_ledger.wechat_bill(ledger, found[1]), content_type="text/csv; charset=utf-8")

    # -- Alipay open gateway ----------------------------------------------------------------------

    def ali_answer(method: str, body: dict) -> Response:
        inner = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        sign = _rsa_sign(keys["alipay_platform"], inner)
        name = method.replace(".", "_") + "_response"
        return Response(f'{{"{name}":{inner},"sign":"{sign}"}}', content_type="application/json;charset=utf-8")

    def ali_fail(method: str, code: str, msg: str, sub_code: str, sub_msg: str, **extra) -> Response:
        return ali_answer(method, {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg, **extra})

    @app.route("/alipay/gateway.do", methods=["GET", "POST"])
    def ali_gateway():
        params = {k: v for k, v in request.values.items()}
        method = params.get("method", "")
        if params.get("app_id") != ALIPAY_APP_ID:
            return ali_fail(method, "40002", "Invalid Arguments", "isv.invalid-app-id", "无效的AppID参数")
        if params.get("sign_type") != "RSA2":
            return ali_fail(method, "40002", "Invalid Arguments", "isv.invalid-signature-type", "无效的签名类型")
        signature = params.pop("sign", "")
        message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if v != "")
        if not _rsa_verify(keys["alipay_app"].public_key(), message, signature):
            return ali_fail(method, "40002", "Invalid Arguments", "isv.invalid-signature",
                            "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配")
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            return ali_fail(method, "40002", "Invalid Arguments", "isv.invalid-parameter", "biz_content 不是 JSON")
        handler = ALIPAY_METHODS.get(method)
        if handler is None:
            return ali_fail(method, "40004", "Business Failed", "isv.invalid-method", "不存在的方法名")
        return handler(method, biz)

    def ali_trade(trade, **extra) -> dict:
        body = {"code": "10000", "msg": "Success", "trade_no": trade.transaction_id,
                "out_trade_no": trade.out_trade_no, "buyer_logon_id": "159****5620",
                "total_amount": yuan(trade.amount_fen), "buyer_user_id": "2088102177846880"}
        if trade.was_paid:
            body.update({"receipt_amount": yuan(trade.amount_fen), "buyer_pay_amount": yuan(trade.amount_fen),
                         "gmt_payment": trade.paid_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")})
        body.update(extra)
        return body

    def ali_pay(method, biz):
        code = str(biz.get("auth_code") or "")
        try:
            amount = fen(biz.get("total_amount"))
        except ValueError:
            return ali_fail(method, "40004", "Business Failed", "ACQ.INVALID_PARAMETER", "total_amount 不合法")
        if biz.get("scene") != "bar_code" or not biz.get("out_trade_no") or amount <= 0:
            return ali_fail(method, "40004", "Business Failed", "ACQ.INVALID_PARAMETER", "参数无效")
        if not (16 <= len(code) <= 24 and code.isdigit() and 25 <= int(code[:2]) <= 30):
            return ali_fail(method, "40004", "Business Failed", "ACQ.PAYMENT_AUTH_CODE_INVALID", "支付失败，获取顾客账户信息失败")
        trade, outcome = ledger.pay("alipay", biz["out_trade_no"], code, amount, str(biz.get("subject") or ""))
        if outcome == "refused":
            return ali_fail(method, "40004", "Business Failed", "ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足")
        if outcome == "used":
            return ali_fail(method, "40004", "Business Failed", "ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        if outcome == "userpaying":
            return ali_answer(method, ali_trade(trade, code="10003", msg="Order success pay inprocess"))
        if outcome == "error":
            return ali_fail(method, "20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")
        if outcome == "slow":
            time.sleep(slow_seconds)
        return ali_answer(method, ali_trade(trade))

    def ali_query(method, biz):
        trade = ledger.query("alipay", str(biz.get("out_trade_no") or ""))
        if trade is None:
            return ali_fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade.state == "PAYERROR":
            return ali_fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
        status = {"SUCCESS": "TRADE_SUCCESS", "USERPAYING": "WAIT_BUYER_PAY", "REVOKED": "TRADE_CLOSED"}[trade.state]
        if trade.state == "SUCCESS" and trade.refunded_fen == trade.amount_fen:
            status = "TRADE_CLOSED"
        return ali_answer(method, ali_trade(trade, trade_status=status))

    def ali_cancel(method, biz):
        trade, outcome = ledger.reverse("alipay", str(biz.get("out_trade_no") or ""))
        if outcome == "refused":
            return ali_fail(method, "40004", "Business Failed", "ACQ.REASON_TRADE_BEEN_FREEZEN", "交易已有退款，不能撤销",
                            retry_flag="N")
        return ali_answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.transaction_id,
                                   "out_trade_no": trade.out_trade_no, "retry_flag": "N",
                                   "action": "refund" if outcome == "refunded" else "close"})

    def ali_refund(method, biz):
        try:
            amount = fen(biz.get("refund_amount"))
        except ValueError:
            return ali_fail(method, "40004", "Business Failed", "ACQ.INVALID_PARAMETER", "refund_amount 不合法")
        request_no = str(biz.get("out_request_no") or biz.get("out_trade_no") or "")
        trade, refund, outcome = ledger.refund("alipay", str(biz.get("out_trade_no") or ""), request_no, amount, None)
        if outcome == "no_trade":
            return ali_fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
        if outcome == "not_paid":
            return ali_fail(method, "40004", "Business Failed", "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if outcome == "too_much":
            return ali_fail(method, "40004", "Business Failed", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        return ali_answer(method, ali_trade(trade, fund_change="Y" if outcome == "done" else "N",
                                            refund_fee=yuan(trade.refunded_fen), send_back_fee=yuan(refund.amount_fen)))

    def ali_refund_query(method, biz):
        trade = ledger.get("alipay", str(biz.get("out_trade_no") or ""))
        if trade is None:
            return ali_fail(method, "40004", "Business Failed", "ACQ.TRADE_NOT_EXIST", "交易不存在")
        refund = trade.refunds.get(str(biz.get("out_request_no") or ""))
        if refund is None:  # Alipay answers an empty success for a refund it never took
            return ali_answer(method, {"code": "10000", "msg": "Success"})
        return ali_answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.transaction_id,
                                   "out_trade_no": trade.out_trade_no, "out_request_no": refund.out_refund_no,
                                   "total_amount": yuan(trade.amount_fen), "refund_amount": yuan(refund.amount_fen),
                                   "refund_status": "REFUND_SUCCESS",
                                   "gmt_refund_pay": refund.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")})

    def ali_bill_url(method, biz):
        try:
            day = date.fromisoformat(str(biz.get("bill_date") or ""))
        except ValueError:
            return ali_fail(method, "40004", "Business Failed", "isp.bill_date_error", "账单日期格式不正确")
        if biz.get("bill_type") != "trade":
            return ali_fail(method, "40004", "Business Failed", "isp.bill_type_error", "账单类型不支持")
        token = secrets.token_urlsafe(16)
        tokens[token] = ("alipay", day)
        return ali_answer(method, {"code": "10000", "msg": "Success",
                                   "bill_download_url": request.host_url.rstrip("/") + f"/alipay/bill/{token}.zip"})

    @app.get("/alipay/bill/<token>.zip")
    def ali_bill(token):
        found = tokens.get(token)
        if not found or found[0] != "alipay":
            return Response("not found", status=404, content_type="text/plain")
        return Response(fake_ledger.alipay_bill(ledger, found[1]), content_type="application/zip")

    ALIPAY_METHODS = {"alipay.trade.pay": ali_pay, "alipay.trade.query": ali_query, "alipay.trade.cancel": ali_cancel,
                      "alipay.trade.refund": ali_refund, "alipay.trade.fastpay.refund.query": ali_refund_query,
                      "alipay.data.dataservice.bill.downloadurl.query": ali_bill_url}

    @app.get("/")
    def index():
        return {"gateway": "songtao fake payment gateway", "wechatpay": request.host_url.rstrip("/"),
                "alipay": request.host_url.rstrip("/") + "/alipay/gateway.do",
                "now": datetime.now(timezone.utc).isoformat()}

    return app


def urls(host: str, port: int) -> dict:
    base = f"http://{host}:{port}"
    return {"SONGTAO_WECHATPAY_URL": base, "SONGTAO_ALIPAY_URL": base + "/alipay/gateway.do"}


def serve(*, host: str = "127.0.0.1", port: int = 8765, keys="instance/fake-gateway",
          slow_seconds: float = 15, echo=print) -> None:  # ok-float: seconds
    """Serve the gateway with waitress until interrupted, after printing the settings to use."""
    import waitress

    app = create_app(keys, slow_seconds=slow_seconds)
    for name, value in urls(host, port).items():
        echo(f"{name}={value}")
    echo(f"排练用的商户凭据：pos.payments.fake_gateway.rehearsal_credentials({str(keys)!r})")
    echo("付款码尾号：0001 立即成功，0002 输密码后成功，0003 余额不足，0004 一直等待（须撤销），0005 应答超时但已付款，"
         "0009 应答系统错误但已付款")
    waitress.serve(app, host=host, port=port, threads=8, ident="songtao-fake-gateway", _quiet=True)
