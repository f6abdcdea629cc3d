"""The merchant credentials page (issue 15): admin only; set, replace, remove; stored in the
instance folder with mode 600; the page, the audit row and the log never show a value."""
from __future__ import annotations

import logging
import stat

from sqlalchemy import select

from inventory.models import AuditEvent
from pos.core.db import session_scope
from pos.payments import credentials
from tests.conftest import csrf_token

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcSECRETSECRET\n-----END PRIVATE KEY-----"
PUB = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8PUBLICKEYTEXT\n-----END PUBLIC KEY-----"
WECHAT = {"mchid": "1900012301", "appid": "wx8888888888888888", "serial_no": "5157F09EFDC096DE15EBE81A47057A72",
          "private_key_pem": PEM, "apiv3_key": "APIV3KEYAPIV3KEYAPIV3KEYAPIV3KEY", "public_key_pem": PUB,
          "public_key_id": "PUB_KEY_ID_0114232134912410000000000000"}
SECRETS = ("SECRETSECRET", "APIV3KEYAPIV3KEY", "5157F09EFDC096DE15EBE81A47057A72", "PUBLICKEYTEXT", "1900012301")


def post(client, path, data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/settings/payments")})


def test_an_admin_sets_replaces_and_removes_the_wechat_credentials(app, client, auth, make_user, tmp_path, caplog):
    app.config["PAYMENT_CREDENTIALS_DIR"] = str(tmp_path / "payment_credentials")
    make_user("root", "admin")
    auth.login("root")
    caplog.set_level(logging.DEBUG)
    page = client.get("/settings/payments").get_data(as_text=True)
    assert "未配置" in page
    assert credentials.configured(app) == {"wechat": False, "alipay": False}

    assert post(client, "/settings/payments/wechat", {**WECHAT, "action": "save"}).status_code == 302
    path = tmp_path / "payment_credentials" / "wechat.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.read(app, "wechat")["mchid"] == "1900012301"
    assert credentials.configured(app) == {"wechat": True, "alipay": False}
    page = client.get("/settings/payments").get_data(as_text=True)
    assert "已配置" in page and "19000…01" in page
    assert not [s for s in SECRETS if s in page]

    # a replacement missing a field changes nothing
    refused = post(client, "/settings/payments/wechat", {**WECHAT, "apiv3_key": "", "action": "save"})
    assert refused.status_code == 400 and "APIv3" in refused.get_data(as_text=True)
    assert credentials.read(app, "wechat")["apiv3_key"] == WECHAT["apiv3_key"]
    assert post(client, "/settings/payments/wechat", {**WECHAT, "mchid": "1900099999", "action": "save"}).status_code == 302
    assert credentials.read(app, "wechat")["mchid"] == "1900099999"

    assert post(client, "/settings/payments/wechat", {"action": "remove"}).status_code == 302
    assert not path.exists() and credentials.configured(app)["wechat"] is False

    with session_scope(app) as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == "payments.credentials_changed")).all()
        audited = " ".join(f"{r.before} {r.after}" for r in rows)
    assert len(rows) == 3 and '"set"' in audited and '"removed"' in audited
    assert not [s for s in SECRETS + ("1900099999",) if s in audited]
    assert not [s for s in SECRETS if s in caplog.text]


def test_only_an_admin_sees_the_page(app, client, auth, make_user):
    make_user("cash", "cashier")
    make_user("boss", "manager")
    for user in ("cash", "boss"):
        auth.login(user)
        assert client.get("/settings/payments").status_code in (302, 403)
        auth.logout()
