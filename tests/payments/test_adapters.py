"""The two adapters against ``songtao fake-gateway`` running as a separate process (issue 15): each
payment code 0001–0005, reverse, refunds, refund queries; both providers, through the providers'
own libraries (signed requests, verified answers)."""
import json
import uuid

import pytest

from pos.payments.providers import ALIPAY, WECHAT, PayState, RefundState, build_provider
from tests.fixtures.payments import code, fake_gateway  # noqa: F401  (fixture)

PROVIDERS = (WECHAT, ALIPAY)


def provider(gw, name, credentials=None, *, base_url=None):
    url = base_url or (gw["wechat_url"] if name == WECHAT else gw["alipay_url"])
    return build_provider(name, credentials or gw["credentials"][name], base_url=url, timeout=gw["timeout"])


def trade_no() -> str:
    return "T" + uuid.uuid4().hex[:24].upper()


def no_secret(answer, auth_code, gw, name):
    """The answer's raw part holds neither the customer's code, nor a signature, nor a key."""
    text = json.dumps(answer.raw, ensure_ascii=False)
    assert auth_code not in text
    assert '"sign"' not in text and "signature" not in text.lower()
    for value in gw["credentials"][name].values():
        if len(value) > 40:  # the keys (ids such as mchid may well appear)
            assert value not in text
    return True


@pytest.mark.parametrize("name", PROVIDERS)
def test_0001_pays_at_once_with_the_providers_transaction_id(fake_gateway, name):  # noqa: F811
    p, no, auth = provider(fake_gateway, name), trade_no(), code(name, "0001")
    answer = p.pay(out_trade_no=no, auth_code=auth, amount_fen=1234, description="梵净山翠峰茶")
    assert (answer.state, answer.amount_fen) == (PayState.SUCCESS, 1234)
    assert answer.transaction_id and answer.message == "支付成功"
    assert no_secret(answer, auth, fake_gateway, name)
    queried = p.query(out_trade_no=no)
    assert (queried.state, queried.transaction_id, queried.amount_fen) == (PayState.SUCCESS, answer.transaction_id, 1234)


@pytest.mark.parametrize("name", PROVIDERS)
def test_0002_waits_for_the_password_and_the_second_query_finds_it_paid(fake_gateway, name):  # noqa: F811
    p, no, auth = provider(fake_gateway, name), trade_no(), code(name, "0002")
    answer = p.pay(out_trade_no=no, auth_code=auth, amount_fen=5000, description="茶")
    assert answer.state == PayState.USERPAYING and answer.message == "等待顾客输入密码"
    assert no_secret(answer, auth, fake_gateway, name)
    assert p.query(out_trade_no=no).state == PayState.USERPAYING
    paid = p.query(out_trade_no=no)
    assert (paid.state, paid.amount_fen) == (PayState.SUCCESS, 5000)
    assert paid.transaction_id


@pytest.mark.parametrize("name", PROVIDERS)
def test_0003_is_refused_for_insufficient_balance(fake_gateway, name):  # noqa: F811
    p, no, auth = provider(fake_gateway, name), trade_no(), code(name, "0003")
    answer = p.pay(out_trade_no=no, auth_code=auth, amount_fen=990, description="茶")
    assert answer.state == PayState.FAILED and "余额不足" in answer.message
    assert answer.transaction_id is None
    assert no_secret(answer, auth, fake_gateway, name)
    assert p.query(out_trade_no=no).state in (PayState.FAILED, PayState.NOTPAY)  # never paid


@pytest.mark.parametrize("name", PROVIDERS)
def test_0004_waits_until_reversed(fake_gateway, name):  # noqa: F811
    p, no = provider(fake_gateway, name), trade_no()
    assert p.pay(out_trade_no=no, auth_code=code(name, "0004"), amount_fen=2000, description="茶").state == PayState.USERPAYING
    for _ in range(3):
        assert p.query(out_trade_no=no).state == PayState.USERPAYING
    reversed_ = p.reverse(out_trade_no=no)
    assert reversed_.state == PayState.REVERSED and reversed_.message == "交易已撤销"
    assert p.query(out_trade_no=no).state == PayState.REVERSED
    assert p.reverse(out_trade_no=no).state == PayState.REVERSED  # a retried reverse is answered the same


@pytest.mark.parametrize("name", PROVIDERS)
def test_0005_times_out_as_unknown_and_the_query_finds_it_paid(fake_gateway, name):  # noqa: F811
    p, no = provider(fake_gateway, name), trade_no()
    answer = p.pay(out_trade_no=no, auth_code=code(name, "0005"), amount_fen=3300, description="茶")
    assert answer.state == PayState.UNKNOWN and answer.transaction_id is None
    assert answer.raw == {"error": "timeout"}
    queried = p.query(out_trade_no=no)
    assert (queried.state, queried.amount_fen) == (PayState.SUCCESS, 3300)
    assert queried.transaction_id


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_paid_trade_reversed_goes_back(fake_gateway, name):  # noqa: F811
    p, no = provider(fake_gateway, name), trade_no()
    assert p.pay(out_trade_no=no, auth_code=code(name, "0001"), amount_fen=800, description="茶").state == PayState.SUCCESS
    assert p.reverse(out_trade_no=no).state == PayState.REVERSED
    assert p.query(out_trade_no=no).state == PayState.REVERSED


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_reverse_before_the_pay_arrived_closes_the_number(fake_gateway, name):  # noqa: F811
    p, no = provider(fake_gateway, name), trade_no()
    assert p.reverse(out_trade_no=no).state == PayState.REVERSED
    late = p.pay(out_trade_no=no, auth_code=code(name, "0001"), amount_fen=800, description="茶")
    assert late.state == PayState.FAILED


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_query_of_a_trade_never_made_is_notpay(fake_gateway, name):  # noqa: F811
    assert provider(fake_gateway, name).query(out_trade_no=trade_no()).state == PayState.NOTPAY


@pytest.mark.parametrize("name", PROVIDERS)
def test_partial_refunds_then_the_rest_and_their_queries(fake_gateway, name):  # noqa: F811
    p, no = provider(fake_gateway, name), trade_no()
    assert p.pay(out_trade_no=no, auth_code=code(name, "0001"), amount_fen=10000, description="茶").state == PayState.SUCCESS
    first = p.refund(out_trade_no=no, out_refund_no=no + "R1", refund_fen=3000, total_fen=10000, reason="退货")
    assert first.state == RefundState.SUCCESS and first.refund_id
    assert p.refund_query(out_trade_no=no, out_refund_no=no + "R1").state == RefundState.SUCCESS
    too_much = p.refund(out_trade_no=no, out_refund_no=no + "R2", refund_fen=7001, total_fen=10000, reason="退货")
    assert too_much.state == RefundState.FAILED and too_much.message
    assert p.refund_query(out_trade_no=no, out_refund_no=no + "R2").state == RefundState.FAILED  # never taken
    rest = p.refund(out_trade_no=no, out_refund_no=no + "R3", refund_fen=7000, total_fen=10000, reason="退货")
    assert rest.state == RefundState.SUCCESS
    assert p.refund_query(out_trade_no=no, out_refund_no=no + "R3").state == RefundState.SUCCESS
    again = p.refund(out_trade_no=no, out_refund_no=no + "R1", refund_fen=3000, total_fen=10000, reason="退货")
    assert again.state in (RefundState.SUCCESS, RefundState.PROCESSING)  # the same refund, not a second one
    assert p.refund_query(out_trade_no=no, out_refund_no=no + "R1").state == RefundState.SUCCESS


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_full_refund_and_a_refund_of_an_unpaid_trade(fake_gateway, name):  # noqa: F811
    p, no = provider(fake_gateway, name), trade_no()
    assert p.pay(out_trade_no=no, auth_code=code(name, "0001"), amount_fen=4567, description="茶").state == PayState.SUCCESS
    full = p.refund(out_trade_no=no, out_refund_no=no + "F", refund_fen=4567, total_fen=4567, reason="")
    assert full.state == RefundState.SUCCESS
    waiting = trade_no()
    p.pay(out_trade_no=waiting, auth_code=code(name, "0004"), amount_fen=100, description="茶")
    refused = p.refund(out_trade_no=waiting, out_refund_no=waiting + "F", refund_fen=100, total_fen=100, reason="")
    assert refused.state == RefundState.FAILED


@pytest.mark.parametrize("name", PROVIDERS)
def test_no_gateway_listening_is_unknown_never_failed(fake_gateway, name):  # noqa: F811
    from tests.fixtures.payments import _free_port

    port = _free_port()  # nothing listens there
    base = f"http://127.0.0.1:{port}" + ("" if name == WECHAT else "/alipay/gateway.do")
    p = provider(fake_gateway, name, base_url=base)
    assert p.pay(out_trade_no=trade_no(), auth_code=code(name, "0001"), amount_fen=100, description="茶").state == PayState.UNKNOWN
    assert p.reverse(out_trade_no=trade_no()).state == PayState.UNKNOWN
    assert p.refund(out_trade_no=trade_no(), out_refund_no="R", refund_fen=1, total_fen=1, reason="").state == RefundState.UNKNOWN


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_system_error_answer_is_unknown_and_the_query_finds_it_paid(fake_gateway, name):  # noqa: F811
    """0009: the gateway answers WeChat HTTP 500 SYSTEM_ERROR / Alipay 20000, but the money moved."""
    p, no = provider(fake_gateway, name), trade_no()
    answer = p.pay(out_trade_no=no, auth_code=code(name, "0009"), amount_fen=1500, description="茶")
    assert answer.state == PayState.UNKNOWN
    assert answer.raw.get("http_status", answer.raw.get("code")) in (500, "20000")
    assert p.query(out_trade_no=no).state == PayState.SUCCESS
