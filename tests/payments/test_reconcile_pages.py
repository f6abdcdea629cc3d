"""The bill check's pages in the test client: who may use them (table-driven), uploading a bill (read
in memory, whatever its file name), the outcome grouped with counts and totals, a note that turns an
item into 已说明, a malformed upload answered with its reason and nothing stored, and the monthly
summary's 已对账 / 未对账 line."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from inventory.models import AuditEvent
from pos.core.db import session_scope
from pos.payments.bill_models import ProviderBill, ProviderBillLine, ReconcileNote
from tests.conftest import csrf_token
from tests.fixtures.bills import DAY, books, provider_bill  # noqa: F401  (books: a fixture)

PAGE = f"/reconcile?provider=wechat&day={DAY.isoformat()}"


def count(app, model) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).select_from(model))


def upload(client, data: bytes, *, provider="wechat", name="tradebill.csv", day=DAY.isoformat()):
    token = csrf_token(client, "/reconcile")
    return client.post("/reconcile/import", data={"csrf_token": token, "provider": provider, "day": day,
                                                  "bill": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def outcome_counts(page: str) -> dict[str, int]:
    return {o: int(n) for o, n in re.findall(r'<tr data-outcome="(\w+)" data-count="(\d+)">', page)}


@pytest.mark.parametrize("role, allowed", [
    ("admin", True), ("manager", True), ("auditor", True), ("cashier", False), ("restocker", False),
])
def test_who_may_use_the_bill_check(app, client, auth, books, role, allowed):
    assert auth.login(f"u-{role}").status_code == 302
    page = client.get(PAGE)
    assert page.status_code == (200 if allowed else 403)
    home = client.get("/account").get_data(as_text=True)
    assert ('href="/reconcile"' in home) == allowed
    if not allowed:
        token = csrf_token(client, "/account")
        refused = client.post("/reconcile/import", data={"csrf_token": token, "provider": "wechat",
                                                         "day": DAY.isoformat(),
                                                         "bill": (io.BytesIO(provider_bill("wechat", books)), "b.csv")},
                              content_type="multipart/form-data")
        assert refused.status_code == 403 and count(app, ProviderBill) == 0


def test_without_login_the_page_asks_for_it(client, books):
    answer = client.get(PAGE)
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


@pytest.mark.parametrize("provider, name", [("wechat", "../../etc/passwd"), ("alipay", "账单.zip")])
def test_upload_then_the_outcome_grouped_and_a_note(app, client, auth, books, provider, name):
    auth.login("u-auditor")
    answer = upload(client, provider_bill(provider, books), provider=provider, name=name)
    assert answer.status_code == 302
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "已导入 2026-12-04 的账单（8 行）" in page
    assert outcome_counts(page) == {"matched": 4, "long": 1, "short": 1, "differs": 1}
    assert 'data-open-items="3"' in page and 'data-paired="1"' in page
    assert "¥25.00" in page and "¥38.00" in page and "¥99.00" in page

    key = re.search(r'<tr data-key="([^"]+)" data-outcome="short" data-explained="0">', page).group(1)
    token = csrf_token(client, "/reconcile")
    answer = client.post("/reconcile/note", data={"csrf_token": token, "provider": provider, "day": DAY.isoformat(),
                                                  "key": key, "note": "收银员误选了支付方式"})
    assert answer.status_code == 302
    page = client.get(f"/reconcile?provider={provider}&day={DAY.isoformat()}").get_data(as_text=True)
    row = page.split(f'<tr data-key="{key}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-explained="1"' in row and "已说明" in row and "收银员误选了支付方式" in row
    assert 'data-open-items="2"' in page and outcome_counts(page)["short"] == 1   # still listed
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "reconcile.explain")) == 1


@pytest.mark.parametrize("data, reason", [
    (b"not,a,bill\n1,2,3\n", "不是微信支付交易账单的表头"),
    (b"", "请选择账单文件"),
    ("\xef\xbb\xbf交易时间".encode() + b"\xff\xfe garbage", "账单未导入"),
])
def test_a_malformed_upload_is_answered_with_its_reason_and_nothing_is_stored(app, client, auth, books, data, reason):
    auth.login("u-manager")
    answer = upload(client, data)
    assert answer.status_code == 422
    assert reason in answer.get_data(as_text=True)
    assert (count(app, ProviderBill), count(app, ProviderBillLine), count(app, ReconcileNote)) == (0, 0, 0)
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.entity == "provider_bill")) == 0


def test_a_truncated_bill_replaces_nothing(app, client, auth, books):
    auth.login("u-manager")
    assert upload(client, provider_bill("wechat", books)).status_code == 302
    whole = provider_bill("wechat", books, extra=False).decode()
    cut = "\r\n".join(whole.split("\r\n")[:3] + whole.split("\r\n")[-3:])   # lines lost, totals kept
    answer = upload(client, cut.encode())
    assert answer.status_code == 422 and "文件不完整" in answer.get_data(as_text=True)
    assert count(app, ProviderBillLine) == 8


def test_bad_parameters_are_answered_not_crashed(client, auth, books):
    auth.login("u-auditor")
    assert client.get("/reconcile?provider=paypal").status_code == 400
    assert client.get("/reconcile?day=2026-13-45").status_code == 400
    assert client.get("/reconcile").status_code == 200


def test_monthly_page_shows_reconciled_and_not(client, auth, books):
    auth.login("u-auditor")
    page = client.get("/reports/monthly?month=2026-12").get_data(as_text=True)
    table = page.split('id="reconcile-table"', 1)[1].split("</table>", 1)[0]
    assert 'data-method="wechat"' in table and 'data-method="alipay"' in table
    assert 'data-reconciled="0"' in table and 'data-unreconciled="43200"' in table
    csv_text = client.get("/reports/monthly.csv?month=2026-12").get_data(as_text=True)
    assert "已对账（元）" in csv_text and "432.00" in csv_text
