"""自动获取: a day's bill downloaded through the provider's adapter from ``songtao fake-gateway`` (a
separate process, with a memory of its own), imported and checked: the gateway's payment and refund
are not in our books (长款), its paid-and-reversed order is paired off; a provider that cannot be
reached is a clear refusal with nothing stored."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from pos.core.db import session_scope
from pos.payments import bills, reconcile
from pos.payments.bill_models import ProviderBill
from pos.payments.providers import ALIPAY, WECHAT, build_provider
from tests.conftest import csrf_token, free_port
from tests.fixtures.payments import code, start_fake_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with start_fake_gateway(tmp_path_factory.mktemp("bill-fetch-keys")) as running:
        yield running


def url_of(gw, name: str) -> str:
    return gw["wechat_url"] if name == WECHAT else gw["alipay_url"]


@pytest.mark.parametrize("name", [WECHAT, ALIPAY])
def test_a_downloaded_bill_is_imported_and_checked(app, gateway, name):
    p = build_provider(name, gateway["credentials"][name], base_url=url_of(gateway, name), timeout=gateway["timeout"])
    paid, gone = "F" + uuid.uuid4().hex[:20].upper(), "F" + uuid.uuid4().hex[:20].upper()
    first = p.pay(out_trade_no=paid, auth_code=code(name, "0001"), amount_fen=4321, description="梵净山翠峰茶")
    p.refund(out_trade_no=paid, out_refund_no=paid + "R", refund_fen=321, total_fen=4321, reason="退货")
    p.pay(out_trade_no=gone, auth_code=code(name, "0001"), amount_fen=700, description="松桃土蜂蜜")
    p.reverse(out_trade_no=gone)
    day = dt.date.fromisoformat(str(first.raw.get("success_time") or first.raw.get("gmt_payment"))[:10])
    with session_scope(app) as s:
        done = bills.fetch_bill(s, provider=name, day=day, credentials=gateway["credentials"][name],
                                base_url=url_of(gateway, name), user_id=None, timeout=gateway["timeout"])
        reconcile.record_check(s, reconcile.check_day(s, name, day))
    with session_scope(app) as s:
        bill = reconcile.bill_of(s, name, day)
        assert (bill.id, bill.source) == (done.bill_id, "download")
        check = reconcile.check_day(s, name, day)
        mine = [i for i in check.items if i.shown.out_trade_no in (paid, gone)]
        assert sorted((i.outcome, i.kind, i.bill_fen) for i in mine) == [("long", "pay", 4321), ("long", "refund", 321)]
        assert [a.out_trade_no for a, _ in check.paired_off if a.out_trade_no in (paid, gone)] == [gone]
        assert bill.open_items == check.open_items >= 2


def test_a_provider_out_of_reach_is_a_clear_refusal(app, gateway):
    with session_scope(app) as s:
        with pytest.raises(bills.BillError, match="无法从微信支付获取 2026-12-04 的账单"):
            bills.fetch_bill(s, provider=WECHAT, day=dt.date(2026, 12, 4), credentials=gateway["credentials"][WECHAT],
                             base_url=f"http://127.0.0.1:{free_port()}", user_id=None, timeout=1)
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ProviderBill)) == 0


def test_the_page_offers_fetching_only_with_credentials_and_imports_what_it_fetched(app, client, make_user, auth,
                                                                                   gateway, tmp_path):
    from pos.payments import credentials

    make_user("u-manager", "manager")
    auth.login("u-manager")
    p = build_provider(WECHAT, gateway["credentials"][WECHAT], base_url=gateway["wechat_url"], timeout=gateway["timeout"])
    paid = "P" + uuid.uuid4().hex[:20].upper()
    answer = p.pay(out_trade_no=paid, auth_code=code(WECHAT, "0001"), amount_fen=2580, description="刺梨干")
    day = str(answer.raw.get("success_time"))[:10]

    app.config.update(PAYMENT_CREDENTIALS_DIR=str(tmp_path / "creds"), WECHATPAY_URL=gateway["wechat_url"],
                      PAYMENT_TIMEOUT_SECONDS=gateway["timeout"])
    page = client.get(f"/reconcile?provider=wechat&day={day}").get_data(as_text=True)
    assert 'id="fetch-form"' not in page  # no merchant credentials: upload only
    form = {"csrf_token": csrf_token(client, "/reconcile"), "provider": "wechat", "day": day}
    refused = client.post("/reconcile/fetch", data=form)
    assert refused.status_code == 422 and "未配置微信支付商户" in refused.get_data(as_text=True)

    credentials.write(app, WECHAT, gateway["credentials"][WECHAT])
    assert 'id="fetch-form"' in client.get(f"/reconcile?provider=wechat&day={day}").get_data(as_text=True)
    fetched = client.post("/reconcile/fetch", data=form, follow_redirects=True)
    assert fetched.status_code == 200 and "已从微信支付获取" in fetched.get_data(as_text=True)
    with session_scope(app) as s:
        bill = reconcile.bill_of(s, WECHAT, dt.date.fromisoformat(day))
        assert bill.source == "download"
        check = reconcile.check_day(s, WECHAT, bill.bill_date)
        assert [(i.outcome, i.bill_fen) for i in check.items if i.shown.out_trade_no == paid] == [("long", 2580)]
