"""The demo's payment codes (pos.demo.payments): rehearsal keys under the instance folder, the
matching merchant credentials through the credentials store (file mode 600, never over other
credentials), the fake gateway as a child process that stops with the demo, and the adapters
pointed at it — so each rehearsal code gives its outcome through the real adapters."""
from __future__ import annotations

import stat
import uuid

import pytest

from pos.demo import payments as demo_payments
from pos.payments import credentials, fake_gateway
from pos.payments.providers import PayState


@pytest.fixture
def demo_app(app, tmp_path, monkeypatch):
    app.config["PAYMENT_CREDENTIALS_DIR"] = str(tmp_path / "instance" / "payment_credentials")
    # rehearse() points the environment at the gateway for anything the server starts: put it back
    monkeypatch.setenv("SONGTAO_WECHATPAY_URL", "unset")
    monkeypatch.setenv("SONGTAO_ALIPAY_URL", "unset")
    return app


def out_trade_no() -> str:
    return "T" + uuid.uuid4().hex[:24]


def test_the_demo_rehearses_every_code_through_the_real_adapters(demo_app, tmp_path):
    gateway, used = demo_payments.rehearse(demo_app, tmp_path / "instance")
    try:
        assert used == ["wechat", "alipay"]
        assert demo_app.config["WECHATPAY_URL"] == gateway.url
        assert demo_app.config["ALIPAY_URL"] == gateway.alipay_url == gateway.url + "/alipay/gateway.do"
        assert gateway.url.startswith("http://127.0.0.1:")
        for name in ("wechat", "alipay"):
            path = credentials.folder(demo_app) / f"{name}.json"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert any((tmp_path / "instance" / demo_payments.KEYS_FOLDER).iterdir())

        wechat = credentials.provider_for(demo_app, "wechat")
        alipay = credentials.provider_for(demo_app, "alipay")
        paid = wechat.pay(out_trade_no=out_trade_no(), auth_code="134567890123450001", amount_fen=1580, description="演示")
        assert paid.state == PayState.SUCCESS and paid.transaction_id
        refused = alipay.pay(out_trade_no=out_trade_no(), auth_code="2845678901230003", amount_fen=1580, description="演示")
        assert refused.state == PayState.FAILED and refused.message
        waiting = alipay.pay(out_trade_no=out_trade_no(), auth_code="2845678901230002", amount_fen=1580, description="演示")
        assert waiting.state == PayState.USERPAYING

        printed = "\n".join(demo_payments.describe(gateway, used))
        assert gateway.url in printed
        for wechat_code, alipay_code, _what in demo_payments.REHEARSAL_CODES:
            assert wechat_code in printed and alipay_code in printed
        assert [c[0][-4:] for c in demo_payments.REHEARSAL_CODES] == ["0001", "0002", "0003", "0004", "0005"]
    finally:
        gateway.stop()
    assert gateway.process.poll() is not None  # the gateway stops with the demo


def test_the_demo_never_replaces_other_credentials(demo_app, tmp_path):
    other_keys = tmp_path / "other"
    fake_gateway.ensure_keys(other_keys)
    others = fake_gateway.rehearsal_credentials(other_keys)
    credentials.write(demo_app, "wechat", others["wechat"])
    before = (credentials.folder(demo_app) / "wechat.json").read_bytes()

    used = demo_payments.install_rehearsal_credentials(demo_app, tmp_path / "instance" / demo_payments.KEYS_FOLDER)
    assert used == ["alipay"]
    assert (credentials.folder(demo_app) / "wechat.json").read_bytes() == before
    # the same rehearsal keys a second time (a second `songtao demo`): used again, nothing rewritten
    again = demo_payments.install_rehearsal_credentials(demo_app, tmp_path / "instance" / demo_payments.KEYS_FOLDER)
    assert again == ["alipay"]


def test_a_gateway_that_cannot_start_is_reported(tmp_path):
    not_a_folder = tmp_path / "keys"
    not_a_folder.write_text("a file where the key folder should be")
    with pytest.raises(RuntimeError, match="测试网关"):
        demo_payments.start_gateway(not_a_folder, wait_seconds=15)
