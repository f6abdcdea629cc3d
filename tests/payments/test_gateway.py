"""The fake gateway checks signatures as the real services do and signs its answers; it serves the
daily bills in the providers' formats (issue 15). Through ``songtao fake-gateway`` as a process."""
import csv
import datetime as dt
import io
import json
import os
import stat
import time
import uuid
import zipfile

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pos.payments import fake_gateway as gateway
from pos.payments.providers import ALIPAY, WECHAT, PayState, build_provider
from tests.fixtures.payments import code, fake_gateway  # noqa: F401  (fixture)

PROVIDERS = (WECHAT, ALIPAY)
WECHAT_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
                 "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
                 "手续费,费率,订单金额,申请退款金额,费率备注")
WECHAT_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
                 "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
                 "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


def other_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def provider(gw, name, credentials=None):
    url = gw["wechat_url"] if name == WECHAT else gw["alipay_url"]
    return build_provider(name, credentials or gw["credentials"][name], base_url=url, timeout=gw["timeout"])


def trade_no() -> str:
    return "G" + uuid.uuid4().hex[:24].upper()


# -- requests signed with the wrong key are refused ---------------------------------------------

@pytest.mark.parametrize("name", PROVIDERS)
def test_a_request_signed_with_another_key_is_refused_and_takes_no_money(fake_gateway, name):  # noqa: F811
    private, _ = other_key()
    wrong = dict(fake_gateway["credentials"][name])
    wrong["private_key_pem" if name == WECHAT else "app_private_key_pem"] = private
    no = trade_no()
    answer = provider(fake_gateway, name, wrong).pay(out_trade_no=no, auth_code=code(name, "0001"), amount_fen=100,
                                                     description="茶")
    assert answer.state == PayState.FAILED
    if name == WECHAT:
        assert (answer.raw["http_status"], answer.raw["code"]) == (401, "SIGN_ERROR")
    else:
        assert (answer.raw["code"], answer.raw["sub_code"]) == ("40002", "isv.invalid-signature")
    assert provider(fake_gateway, name).query(out_trade_no=no).state == PayState.NOTPAY


def test_wechat_refuses_a_forged_authorization_header_over_http(fake_gateway):  # noqa: F811
    creds = fake_gateway["credentials"][WECHAT]
    body = json.dumps({"appid": creds["appid"], "mchid": creds["mchid"], "description": "茶", "out_trade_no": trade_no(),
                       "amount": {"total": 100, "currency": "CNY"}, "payer": {"auth_code": code(WECHAT, "0001")}})
    url = fake_gateway["wechat_url"] + "/v3/pay/transactions/codepay"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    unsigned = requests.post(url, data=body, headers=headers, timeout=5)
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "SIGN_ERROR")
    forged = requests.post(url, data=body, timeout=5, headers={**headers, "Authorization": (
        f'WECHATPAY2-SHA256-RSA2048 mchid="{creds["mchid"]}",nonce_str="ABC",signature="AAAA",'
        f'timestamp="{int(time.time())}",serial_no="{creds["serial_no"]}"')})
    assert (forged.status_code, forged.json()["code"]) == (401, "SIGN_ERROR")
    other_mch = requests.post(url, data=body, timeout=5, headers={**headers, "Authorization": (
        f'WECHATPAY2-SHA256-RSA2048 mchid="1900000999",nonce_str="ABC",signature="AAAA",'
        f'timestamp="{int(time.time())}",serial_no="{creds["serial_no"]}"')})
    assert other_mch.status_code == 401


def test_alipay_refuses_a_tampered_parameter(fake_gateway):  # noqa: F811
    """The signature covers every parameter: the amount changed after signing is refused."""
    from alipay import AliPay

    creds = fake_gateway["credentials"][ALIPAY]
    client = AliPay(appid=creds["app_id"], app_private_key_string=creds["app_private_key_pem"],
                    alipay_public_key_string=creds["alipay_public_key_pem"], sign_type="RSA2")
    biz = {"out_trade_no": trade_no(), "scene": "bar_code", "auth_code": code(ALIPAY, "0001"), "subject": "茶",
           "total_amount": "1.00"}
    signed = client.sign_data(client.build_body("alipay.trade.pay", biz))
    tampered = signed.replace("1.00", "0.01")
    answer = requests.get(fake_gateway["alipay_url"] + "?" + tampered, timeout=5).json()
    assert answer["alipay_trade_pay_response"]["sub_code"] == "isv.invalid-signature"
    good = requests.get(fake_gateway["alipay_url"] + "?" + signed, timeout=5).json()
    assert good["alipay_trade_pay_response"]["code"] == "10000" and good["sign"]


# -- answers signed with the wrong key are not believed ------------------------------------------

@pytest.mark.parametrize("name", PROVIDERS)
def test_an_answer_that_does_not_verify_is_unknown_never_success(fake_gateway, name):  # noqa: F811
    """Credentials holding another platform public key: the gateway's genuine answers do not verify
    with it, so the adapter knows nothing (UNKNOWN), though the payment did go through."""
    _, public = other_key()
    wrong = dict(fake_gateway["credentials"][name])
    wrong["public_key_pem" if name == WECHAT else "alipay_public_key_pem"] = public
    no = trade_no()
    answer = provider(fake_gateway, name, wrong).pay(out_trade_no=no, auth_code=code(name, "0001"), amount_fen=100,
                                                     description="茶")
    assert answer.state == PayState.UNKNOWN and answer.transaction_id is None
    assert answer.raw == {"error": "signature"}
    assert provider(fake_gateway, name, wrong).query(out_trade_no=no).state == PayState.UNKNOWN
    assert provider(fake_gateway, name).query(out_trade_no=no).state == PayState.SUCCESS


def test_wechat_answers_carry_the_platform_signature_headers(fake_gateway):  # noqa: F811
    answer = requests.get(fake_gateway["wechat_url"] + "/v3/pay/transactions/out-trade-no/X?mchid=1", timeout=5)
    assert answer.status_code == 401
    assert answer.headers["Wechatpay-Serial"] == fake_gateway["credentials"][WECHAT]["public_key_id"]
    assert answer.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert answer.headers["Wechatpay-Signature"] and answer.headers["Wechatpay-Nonce"]


# -- bills ---------------------------------------------------------------------------------------

def _day_of(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


def test_the_wechat_trade_bill_lists_payments_refunds_and_reversals(fake_gateway):  # noqa: F811
    p = provider(fake_gateway, WECHAT)
    paid, refunded, reversed_ = trade_no(), trade_no(), trade_no()
    first = p.pay(out_trade_no=paid, auth_code=code(WECHAT, "0001"), amount_fen=1234, description="翠峰茶")
    p.pay(out_trade_no=refunded, auth_code=code(WECHAT, "0001"), amount_fen=5000, description="茶")
    p.refund(out_trade_no=refunded, out_refund_no=refunded + "R", refund_fen=2000, total_fen=5000, reason="退货")
    p.pay(out_trade_no=reversed_, auth_code=code(WECHAT, "0001"), amount_fen=700, description="茶")
    p.reverse(out_trade_no=reversed_)
    day = _day_of(first.raw["success_time"])  # the bill's day is the payment's, in Asia/Shanghai
    lines = p.download_bill(day).decode("utf-8").splitlines()
    assert lines[0] == WECHAT_HEADER
    summary_at = lines.index(WECHAT_SUMMARY)
    rows = [[field.removeprefix("`") for field in line.split(",")] for line in lines[1:summary_at]]
    assert all(line.split(",")[i].startswith("`") for line in lines[1:summary_at] for i in range(27))
    by = {(r[6], r[9]): r for r in rows}
    assert by[(paid, "SUCCESS")][5] == first.transaction_id
    assert (by[(paid, "SUCCESS")][12], by[(paid, "SUCCESS")][24]) == ("12.34", "12.34")
    assert by[(paid, "SUCCESS")][0].startswith(day.isoformat())
    refund_row = by[(refunded, "REFUND")]
    assert (refund_row[15], refund_row[16]) == (refunded + "R", "20.00")
    assert (by[(reversed_, "SUCCESS")][12], by[(reversed_, "REVOKED")][16]) == ("7.00", "7.00")
    totals = [v.removeprefix("`") for v in lines[summary_at + 1].split(",")]
    assert int(totals[0]) == len(rows)
    settled = sum(int(r[12].replace(".", "")) for r in rows)
    assert totals[1] == f"{settled // 100}.{settled % 100:02d}"


def test_the_alipay_trade_bill_is_a_zip_of_a_gbk_csv(fake_gateway):  # noqa: F811
    p = provider(fake_gateway, ALIPAY)
    paid, refunded = trade_no(), trade_no()
    first = p.pay(out_trade_no=paid, auth_code=code(ALIPAY, "0001"), amount_fen=1234, description="翠峰茶")
    p.pay(out_trade_no=refunded, auth_code=code(ALIPAY, "0001"), amount_fen=5000, description="茶")
    p.refund(out_trade_no=refunded, out_refund_no=refunded + "R", refund_fen=2000, total_fen=5000, reason="退货")
    day = _day_of(first.raw["gmt_payment"])
    archive = zipfile.ZipFile(io.BytesIO(p.download_bill(day)))
    (detail,) = [n for n in archive.namelist() if n.endswith("_业务明细.csv")]
    text = archive.read(detail).decode("gbk")
    lines = text.splitlines()
    assert lines[0].startswith("#") and lines[-1].startswith("#")
    data = [line for line in lines if not line.startswith("#")]
    assert data[0] == ALIPAY_HEADER
    rows = list(csv.reader(data[1:]))
    by = {(r[1], r[2]): r for r in rows}
    trade = by[(paid, "交易")]
    assert (trade[0], trade[3], trade[11], trade[12]) == (first.transaction_id, "翠峰茶", "12.34", "12.34")
    refund = by[(refunded, "退款")]
    assert (refund[11], refund[12], refund[21]) == ("-20.00", "-20.00", refunded + "R")
    assert by[(refunded, "交易")][11] == "50.00"


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_bill_of_another_day_holds_none_of_todays_trades(fake_gateway, name):  # noqa: F811
    p = provider(fake_gateway, name)
    no = trade_no()
    first = p.pay(out_trade_no=no, auth_code=code(name, "0001"), amount_fen=100, description="茶")
    day = _day_of(first.raw["success_time" if name == WECHAT else "gmt_payment"]) - dt.timedelta(days=1)
    content = p.download_bill(day)
    if name == ALIPAY:
        archive = zipfile.ZipFile(io.BytesIO(content))
        content = b"".join(archive.read(n) for n in archive.namelist())
    assert no.encode() not in content


# -- keys -----------------------------------------------------------------------------------------

def test_keys_are_made_once_private_to_their_owner_and_match_the_credentials(tmp_path):
    gateway.ensure_keys(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    gateway.ensure_keys(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in tmp_path.iterdir())
    creds = gateway.rehearsal_credentials(tmp_path)
    assert set(creds["wechat"]) == {"mchid", "appid", "serial_no", "private_key_pem", "apiv3_key", "public_key_pem",
                                    "public_key_id"}
    assert set(creds["alipay"]) == {"app_id", "app_private_key_pem", "alipay_public_key_pem"}
    assert len(creds["wechat"]["serial_no"]) == 40 and len(creds["wechat"]["apiv3_key"]) == 32
    assert "PRIVATE" not in creds["wechat"]["public_key_pem"] + creds["alipay"]["alipay_public_key_pem"]


def test_the_command_prints_the_urls_to_set_and_refuses_a_port_in_use(fake_gateway, tmp_path):  # noqa: F811
    import subprocess
    import sys
    from pathlib import Path
    from urllib.parse import urlsplit

    root = Path(__file__).resolve().parents[2]
    port = urlsplit(fake_gateway["wechat_url"]).port
    env = dict(os.environ, PYTHONPATH=str(root))
    taken = subprocess.run([sys.executable, "-m", "pos.cli", "fake-gateway", "--port", str(port), "--keys", str(tmp_path)],
                           cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert taken.returncode != 0
    assert f"SONGTAO_WECHATPAY_URL=http://127.0.0.1:{port}" in taken.stdout
    assert f"SONGTAO_ALIPAY_URL=http://127.0.0.1:{port}/alipay/gateway.do" in taken.stdout
    assert f"127.0.0.1:{port}" in taken.stderr and "Traceback" not in taken.stderr
