"""The till's pages on the server side: who may open the cashier screen, what it hands its script,
and the receipt preview rendered from pos.sales.reading.sale_view (a fragment for the till, a page on its own,
404 for a receipt that does not exist)."""
from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from inventory import catalogue
from inventory.models import Location, LocationKind, Setting
from pos.sales import pricing, service
from pos.core.db import session_scope
from pos.models import Till
from tests.fixtures.till import page_config

TILL_ROLES = {"cashier": 200, "manager": 200, "admin": 200, "restocker": 403, "auditor": 403}


@pytest.fixture
def hall(app):
    with session_scope(app) as s:
        for code, kind in (("HALL", LocationKind.HALL_FLOOR), ("CUSTOMER", LocationKind.CUSTOMER),
                           ("LOSS", LocationKind.LOSS)):
            s.add(Location(code=code, name=code, kind=kind))
        s.flush()
        hall_id = s.scalar(select(Location.id).where(Location.code == "HALL"))
        s.add_all([
            Till(code="H1", name="1号收银台", location_id=hall_id, printer_uri="none", paper_columns=48),
            Till(code="H2", name="2号收银台", location_id=hall_id, printer_uri="none", paper_columns=48),
            Till(code="H9", name="停用的收银台", location_id=hall_id, printer_uri="none", paper_columns=48, active=False),
            Setting(key="discount_limit_percent", value="15"),
            Setting(key="rounding_to_jiao", value="true"),
            Setting(key="hall_address", value="广东省东莞市虎门镇连升中路 88 号"),
        ])
        tea = catalogue.create_product(s, sku="TEA250", name="梵净山翠峰茶 250g", price_fen=16800)
        s.flush()
        return {"hall_id": hall_id, "tea": tea.id}


def record(app, hall, cashier_id) -> str:
    with session_scope(app) as s:
        till_id = s.scalar(select(Till.id).where(Till.code == "H1"))
        result = service.record_sale(s, service.SaleIn(
            channel="hall", location_id=hall["hall_id"], till_id=till_id, cashier_id=cashier_id,
            client_sale_id=str(uuid.uuid4()),
            lines=[pricing.LineIn(product_id=hall["tea"], qty_milli=2000)],
            payments=[service.PaymentIn(method="cash", amount_fen=33600, tendered_fen=40000)],
        ))
        return result.receipt_no


@pytest.mark.parametrize("role,status", list(TILL_ROLES.items()))
def test_who_may_open_the_till(client, auth, make_user, hall, role, status):
    make_user(f"{role}1", role)
    auth.login(f"{role}1")
    response = client.get("/till")
    assert response.status_code == status
    if status == 200:
        assert "<h1" in response.get_data(as_text=True) and "收银台" in response.get_data(as_text=True)


def test_anonymous_is_sent_to_login(client, hall):
    response = client.get("/till")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    response = client.get("/till/receipts/H1-20260101-0001")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_page_hands_the_script_tills_settings_and_the_csrf_token(client, auth, make_user, hall):
    make_user("c1", "cashier", display_name="龙小燕")
    auth.login("c1")
    html = client.get("/till?till=H2").get_data(as_text=True)
    assert re.search(r'<meta name="csrf-token" content="[^"]+"', html)
    assert "js/till.js" in html and "css/till.css" in html
    config = page_config(html)
    assert [t["code"] for t in config["tills"]] == ["H1", "H2"]  # the retired till is not offered
    assert config["till"] == "H2"
    assert config["discount_limit_percent"] == 15 and config["rounding_to_jiao"] is True
    assert [m["code"] for m in config["methods"]] == ["cash", "wechat", "alipay", "unionpay", "union_card", "voucher"]
    assert [m["label"] for m in config["methods"]] == ["现金", "微信支付", "支付宝", "银联卡", "工会卡", "代金券"]
    assert [d["fen"] for d in config["denominations"]] == [10000, 5000, 2000, 1000, 500, 200, 100, 50, 20, 10]  # 抹零 on: no 分
    assert config["user"]["name"] == "龙小燕"
    # every shortcut is written on the screen
    for key in ("F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F12", "Esc", "Del"):
        assert f"<kbd>{key}</kbd>" in html, key


def test_a_cashier_lands_on_the_till(client, auth, make_user, hall):
    make_user("c1", "cashier")
    response = auth.login("c1")
    assert response.headers["Location"].endswith("/till")


def test_receipt_preview_of_a_sale(client, auth, make_user, app, hall):
    cashier = make_user("c1", "cashier", display_name="龙小燕")
    receipt_no = record(app, hall, cashier)
    auth.login("c1")
    fragment = client.get(f"/till/receipts/{receipt_no}?fragment=1")
    assert fragment.status_code == 200
    html = fragment.get_data(as_text=True)
    assert "<html" not in html  # a fragment for the till's dialog
    assert f'data-receipt="{receipt_no}"' in html
    for text in ("梵净山翠峰茶 250g", "¥336.00", "¥400.00", "找零", "¥64.00", "其中扶贫产品", "现金",
                 "广东省东莞市虎门镇连升中路 88 号", "龙小燕"):
        assert text in html, text
    page = client.get(f"/till/receipts/{receipt_no}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "<html" in body and f'data-receipt="{receipt_no}"' in body and "打印" in body


@pytest.mark.parametrize("receipt_no", ["H1-20260101-9999", "nothing", "%00"])
def test_receipt_preview_of_an_unknown_receipt_is_404(client, auth, make_user, hall, receipt_no):
    make_user("c1", "cashier")
    auth.login("c1")
    assert client.get(f"/till/receipts/{receipt_no}").status_code == 404
    assert client.get(f"/till/receipts/{receipt_no}?fragment=1").status_code == 404


def test_only_till_roles_see_receipts(client, auth, make_user, app, hall):
    cashier = make_user("c1", "cashier")
    receipt_no = record(app, hall, cashier)
    make_user("r1", "restocker")
    auth.login("r1")
    assert client.get(f"/till/receipts/{receipt_no}").status_code == 403
