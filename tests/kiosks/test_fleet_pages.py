"""The manager's counter pages over HTTP: the fleet dashboard (table, filter, sort, town
grouping, offline alerts), a counter's page (registry edit, token issue/revoke), the planogram
editor (set, remove, copy) and who may see them. Bad input gets a Chinese message, status 400 and
changes nothing. A browser test screenshots the dashboard and a counter page at 1366×768."""
from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from sqlalchemy import func, select

from inventory import ledger
from inventory.localtime import utcnow
from inventory.models import Alert, AlertKind, AuditEvent, Location, Lot, MoveReason, Product, Supplier, Unit
from kiosks import registry
from kiosks.models import PlanogramSlot
from pos.sales import service
from pos.core.db import session_scope
from pos.demo.build import LOCATIONS
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn
from tests.conftest import csrf_token, screenshot

TOWNS = ("虎门", "虎门", "虎门", "沙田", "麻涌", "中堂", "滨海湾")


def read(app, fn):
    with session_scope(app) as s:
        return fn(s)


@pytest.fixture
def counters(app):
    """Seven counters in five towns (K001–K007), two products, K001 with a planogram, stock, a
    refill, two sales today and a heartbeat two hours ago; K002 heard from a minute ago."""
    now = utcnow()
    with session_scope(app) as s:
        for code, name, kind in LOCATIONS:
            s.add(Location(code=code, name=name, kind=kind, active=True))
        supplier = Supplier(name="松桃梵净山茶业合作社", origin_county="松桃苗族自治县", origin_county_code="520628")
        s.add(supplier)
        s.flush()
        tea = Product(sku="ST-TEA-001", name="松桃绿茶 250g", pinyin_initials="stlc", unit=Unit.PIECE, price_fen=3800,
                      shelf_life_days=365, supplier_id=supplier.id)
        tea2 = Product(sku="ST-TEA-002", name="松桃红茶 250g", pinyin_initials="sthc", unit=Unit.PIECE,
                       price_fen=4800, shelf_life_days=365, supplier_id=supplier.id)
        honey = Product(sku="ST-HONEY-01", name="寨英土蜂蜜 500g", pinyin_initials="zytfm", unit=Unit.PIECE,
                        price_fen=5800, supplier_id=supplier.id)
        rice = Product(sku="ST-RICE-KG", name="孟溪红米（散装）", pinyin_initials="mxhm", unit=Unit.KG,
                       sold_by_weight=True, price_fen=1280, supplier_id=supplier.id)
        s.add_all([tea, tea2, honey, rice])
        s.flush()
        for n, town in enumerate(TOWNS, start=1):
            registry.create_kiosk(s, code=f"K{n:03d}", site_name=f"{town}第{n}站", host_org=f"{town}某单位{n}",
                                  town=town, address=f"{town}大道 {n} 号", latitude=22.8 + n * 0.04,
                                  longitude=113.6 + (n % 3) * 0.04)
        registry.set_slot(s, "K001", "A1", product_id=tea.id, par=10, price_fen=3800, actor_id=None)
        registry.set_slot(s, "K001", "A2", product_id=honey.id, par=5, price_fen=5800, actor_id=None)
        k1 = registry.get_kiosk(s, "K001")
        loc = {code: s.scalar(select(Location.id).where(Location.code == code)) for code, _n, _k in LOCATIONS}
        lot = Lot(product_id=tea.id, lot_no="L2611", expires_on=dt.date.today() + dt.timedelta(days=200))
        s.add(lot)
        s.flush()
        ledger.move(s, product_id=tea.id, qty_milli=6000, from_location_id=loc["SUPPLIER"], to_location_id=loc["BASE"],
                    reason=MoveReason.RECEIPT, lot_id=lot.id)
        ledger.move(s, product_id=tea.id, qty_milli=6000, from_location_id=loc["BASE"],
                    to_location_id=k1.location_id, reason=MoveReason.REFILL, lot_id=lot.id)
        for n in (1, 2):
            service.record_sale(s, SaleIn(
                channel="kiosk", location_id=k1.location_id, kiosk_id=k1.id, txn_id=f"T{n}",
                receipt_prefix="K001", sold_at=now - dt.timedelta(seconds=n),  # today, even just after midnight
                lines=[LineIn(tea.id, 1000, unit_price_fen=3800, slot="A1")],
                payments=[PaymentIn("wechat", 3800, ref=f"wx{n}")]))
        k1.last_heartbeat_at = now - dt.timedelta(hours=2)
        registry.get_kiosk(s, "K002").last_heartbeat_at = now - dt.timedelta(minutes=1)
        return {"tea": tea.id, "tea2": tea2.id, "honey": honey.id, "rice": rice.id}


@pytest.fixture
def manager(client, auth, make_user, counters):
    make_user("wumei", "manager", display_name="吴梅")
    assert auth.login("wumei").status_code == 302
    return counters


def post(client, path, data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, path.split("?")[0])})


def kiosk_row(html: str, code: str) -> str:
    match = re.search(rf'<tr class="flt-row[^"]*" data-code="{code}">(.*?)</tr>', html, re.S)
    assert match, code
    return match.group(1)


# --- who may see them -----------------------------------------------------------------------

@pytest.mark.parametrize("role,status", [("manager", 200), ("admin", 200), ("cashier", 403),
                                         ("restocker", 403), ("auditor", 403)])
def test_only_managers_and_admins_see_the_counter_pages(client, auth, make_user, counters, role, status):
    make_user("u1", role)
    auth.login("u1")
    for path in ("/fleet/", "/fleet/K001", "/fleet/K001/planogram"):
        assert client.get(path).status_code == status, path
    if status == 403:
        token = csrf_token(client, "/account")
        assert client.post("/fleet/K001", data={"action": "issue_token", "csrf_token": token}).status_code == 403


def test_logged_out_is_sent_to_login(client, counters):
    response = client.get("/fleet/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- the dashboard --------------------------------------------------------------------------

def test_dashboard_table_groups_by_town_and_opens_offline_alerts(app, client, manager):
    html = client.get("/fleet/").get_data(as_text=True)
    assert html.count('class="flt-row') == 7
    towns = re.findall(r'<tbody class="flt-town" data-town="([^"]+)"', html)
    assert towns == sorted(set(TOWNS))
    k1 = kiosk_row(html, "K001")
    # 2 × ¥38 today; 6 tea in, 2 sold, no honey: 4 of 10 + 5 pieces
    assert "¥76.00" in k1 and "离线" in k1 and "26%" in k1
    assert "离线" not in kiosk_row(html, "K002")
    # K001 is offline, and so are K003…K007 which never sent a heartbeat (active counters)
    open_offline = read(app, lambda s: s.scalar(select(func.count(Alert.id)).where(
        Alert.kind == AlertKind.KIOSK_OFFLINE, Alert.resolved_at.is_(None))))
    assert open_offline == 6
    client.get("/fleet/")  # a second load opens no duplicates
    assert read(app, lambda s: s.scalar(select(func.count(Alert.id)).where(Alert.kind == AlertKind.KIOSK_OFFLINE))) == 6
    assert '<svg viewBox="0 0 360 300"' in html and html.count("<circle") == 7


def test_dashboard_filters_and_sorts(client, manager):
    html = client.get("/fleet/?town=虎门").get_data(as_text=True)
    assert re.findall(r'data-code="(K\d+)"', html) == ["K001", "K002", "K003"]
    html = client.get("/fleet/?status=offline&group=none").get_data(as_text=True)
    assert "K002" not in re.findall(r'data-code="(K\d+)"', html) and "K001" in html
    html = client.get("/fleet/?sort=today_fen&dir=desc&group=none").get_data(as_text=True)
    assert re.findall(r'data-code="(K\d+)"', html)[0] == "K001"
    html = client.get("/fleet/?sort=code&dir=desc&group=none").get_data(as_text=True)
    assert re.findall(r'data-code="(K\d+)"', html) == [f"K{n:03d}" for n in range(7, 0, -1)]
    # nonsense parameters fall back to the defaults, never a 500
    assert client.get("/fleet/?sort=drop&dir=x&town=<b>&status=zzz").status_code == 200


# --- one counter ----------------------------------------------------------------------------

def test_counter_page_shows_slots_sales_and_refills(client, manager):
    html = client.get("/fleet/K001").get_data(as_text=True)
    slots = re.search(r'<table class="table" id="slots">(.*?)</table>', html, re.S).group(1)
    assert "松桃绿茶 250g" in slots and "寨英土蜂蜜 500g" in slots
    sales_table = re.search(r'<table class="table" id="sales">(.*?)</table>', html, re.S).group(1)
    assert sales_table.count("<tr") == 3 and "K001-" in sales_table and "微信" in sales_table
    refills = re.search(r'<table class="table" id="refills">(.*?)</table>', html, re.S).group(1)
    assert "L2611" in refills and "6" in refills
    assert client.get("/fleet/K999").status_code == 404
    assert client.get("/fleet/nonsense").status_code == 404


def test_edit_validates_with_chinese_messages_and_is_audited(app, client, manager):
    base = {"action": "edit", "site_name": "虎门镇行政服务中心", "host_org": "虎门镇人民政府", "site_type": "government",
            "town": "虎门", "address": "虎门镇银龙路 1 号", "latitude": "22.8213", "longitude": "113.6711",
            "food_filing_no": "YB24419001234567", "status": "paused"}
    for field, value, message in (("latitude", "95", "坐标不正确"), ("site_name", "", "请填写站点名称"),
                                  ("status", "broken", "专柜状态不正确")):
        response = post(client, "/fleet/K001", {**base, field: value})
        assert response.status_code == 400 and message in response.get_data(as_text=True), field
    assert read(app, lambda s: registry.get_kiosk(s, "K001").site_name) == "虎门第1站"
    response = post(client, "/fleet/K001", base)
    assert response.status_code == 302
    kiosk = read(app, lambda s: registry.get_kiosk(s, "K001"))
    assert (kiosk.site_name, kiosk.status.value, kiosk.latitude) == ("虎门镇行政服务中心", "paused", 22.8213)
    events = read(app, lambda s: s.scalars(select(AuditEvent.action).where(AuditEvent.entity_id == "K001")).all())
    assert "kiosk.update" in events


def test_token_is_shown_once_and_stored_hashed(app, client, manager):
    response = post(client, "/fleet/K001", {"action": "issue_token"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    token = re.search(r'<code class="flt-token-value" id="token-value">([^<]+)</code>', response.get_data(as_text=True)).group(1)
    stored = read(app, lambda s: registry.get_kiosk(s, "K001").token_hash)
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in client.get("/fleet/K001").get_data(as_text=True)
    again = post(client, "/fleet/K001", {"action": "issue_token"})
    new_token = re.search(r'id="token-value">([^<]+)<', again.get_data(as_text=True)).group(1)
    assert new_token != token and read(app, lambda s: registry.get_kiosk(s, "K001").token_hash) != stored
    assert post(client, "/fleet/K001", {"action": "revoke_token"}).status_code == 302
    assert read(app, lambda s: registry.get_kiosk(s, "K001").token_hash) is None


# --- the planogram editor ---------------------------------------------------------------------

def slots_of(app, code):
    def fn(s):
        kiosk = registry.get_kiosk(s, code)
        return {r.slot: (r.product_id, r.par, r.price_fen) for r in
                s.scalars(select(PlanogramSlot).where(PlanogramSlot.kiosk_id == kiosk.id))}
    return read(app, fn)


def test_set_a_slot_by_sku_or_search_with_a_price_in_yuan(app, client, manager):
    ids = manager
    response = post(client, "/fleet/K001/planogram", {"action": "set", "slot": "b3", "product": "ST-HONEY-01",
                                                      "par": "6", "price": "59.9"})
    assert response.status_code == 302
    assert slots_of(app, "K001")["B3"] == (ids["honey"], 6, 5990)
    # an ambiguous search offers the candidates and changes nothing; picking one sets it
    response = post(client, "/fleet/K001/planogram", {"action": "set", "slot": "B4", "product": "松桃", "par": "4", "price": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "请选择一个商品" in html and 'name="pick" value="ST-TEA-002"' in html
    assert "B4" not in slots_of(app, "K001")
    response = post(client, "/fleet/K001/planogram", {"action": "set", "slot": "B4", "product": "松桃", "pick": "ST-TEA-002",
                                                      "par": "4", "price": ""})
    assert response.status_code == 302 and slots_of(app, "K001")["B4"] == (ids["tea2"], 4, 4800)  # catalogue price
    # a unique search match is enough
    assert post(client, "/fleet/K001/planogram", {"action": "set", "slot": "B5", "product": "zytfm", "par": "2",
                                                  "price": "58"}).status_code == 302


@pytest.mark.parametrize("data,message", [
    ({"slot": "A1", "product": "ST-TEA-001", "par": "0", "price": "38"}, "容量必须是"),
    ({"slot": "A1", "product": "ST-TEA-001", "par": "abc", "price": "38"}, "容量必须是"),
    ({"slot": "A1", "product": "ST-TEA-001", "par": "", "price": "38"}, "请填写容量"),
    ({"slot": "A1", "product": "ST-TEA-001", "par": "5", "price": "-3"}, "金额不能为负数"),
    ({"slot": "A1", "product": "ST-TEA-001", "par": "5", "price": "3.456"}, "金额最多两位小数"),
    ({"slot": "A1", "product": "ST-TEA-001", "par": "5", "price": "abc"}, "金额格式不正确"),
    ({"slot": "第一", "product": "ST-TEA-001", "par": "5", "price": "38"}, "货道编号格式"),
    ({"slot": "A1", "product": "没有这个", "par": "5", "price": "38"}, "找不到商品"),
    ({"slot": "A1", "product": "", "par": "5", "price": "38"}, "请填写商品"),
    ({"slot": "A1", "product": "ST-RICE-KG", "par": "5", "price": "38"}, "按重量销售"),
])
def test_bad_slot_input_gets_a_message_and_changes_nothing(app, client, manager, data, message):
    before = slots_of(app, "K001")
    response = post(client, "/fleet/K001/planogram", {"action": "set", **data})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert slots_of(app, "K001") == before


def test_remove_a_slot(app, client, manager):
    assert post(client, "/fleet/K001/planogram", {"action": "remove", "slot": "A2"}).status_code == 302
    assert set(slots_of(app, "K001")) == {"A1"}
    response = post(client, "/fleet/K001/planogram", {"action": "remove", "slot": "A2"})
    assert response.status_code == 302  # already gone: a warning, not an error
    assert post(client, "/fleet/K001/planogram", {"action": "remove", "slot": "??"}).status_code == 400


def test_copy_to_a_town_after_a_confirmation_that_counts_the_counters(app, client, manager):
    response = post(client, "/fleet/K001/planogram", {"action": "copy_preview", "town": "虎门", "codes": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "替换 2 个专柜的货道表" in html
    assert slots_of(app, "K002") == {}  # nothing changed by the preview
    codes = re.search(r'name="codes" value="([^"]+)"', html).group(1)
    assert codes == "K002 K003"
    response = post(client, "/fleet/K001/planogram", {"action": "copy", "codes": codes, "expected": "2"})
    assert response.status_code == 302
    assert slots_of(app, "K002") == slots_of(app, "K001") == slots_of(app, "K003")
    assert slots_of(app, "K004") == {}


def test_copy_to_a_list_of_codes_and_bad_codes(app, client, manager):
    response = post(client, "/fleet/K001/planogram", {"action": "copy_preview", "town": "", "codes": "k004, K005、K001"})
    assert "替换 2 个专柜的货道表" in response.get_data(as_text=True)
    response = post(client, "/fleet/K001/planogram", {"action": "copy_preview", "codes": "K004 K999"})
    assert response.status_code == 400 and "专柜不存在" in response.get_data(as_text=True)
    response = post(client, "/fleet/K001/planogram", {"action": "copy", "codes": "K004 K999", "expected": "2"})
    assert response.status_code == 400 and slots_of(app, "K004") == {}
    response = post(client, "/fleet/K001/planogram", {"action": "copy_preview", "codes": "", "town": ""})
    assert response.status_code == 400 and "请选择镇街或填写专柜编号" in response.get_data(as_text=True)
    # a confirmation whose count no longer matches shows the preview again instead of copying
    response = post(client, "/fleet/K001/planogram", {"action": "copy", "codes": "K004 K005", "expected": "3"})
    assert response.status_code == 200 and slots_of(app, "K004") == {}
    assert post(client, "/fleet/K001/planogram", {"action": "copy", "codes": "K004 K005", "expected": "2"}).status_code == 302
    assert slots_of(app, "K005") == slots_of(app, "K001")


# --- in a real browser ------------------------------------------------------------------------

def test_dashboard_and_counter_page_in_chromium(live_server, page, make_user, counters):
    make_user("wumei", "manager", display_name="吴梅")
    page.goto(f"{live_server}/login")
    page.get_by_label("用户名", exact=True).fill("wumei")
    page.get_by_label("密码", exact=True).fill("correct-horse-9")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live_server}/dashboard")
    page.get_by_role("link", name="专柜", exact=True).click()
    page.wait_for_url(f"{live_server}/fleet/")
    assert page.locator("tr.flt-row").count() == 7
    assert page.locator("#total-today").inner_text() == "¥76.00"
    screenshot(page, "fleet-dashboard")
    page.locator("select[name=town]").select_option("虎门")
    page.get_by_role("button", name="查看").click()
    assert page.locator("tr.flt-row").count() == 3
    page.get_by_role("link", name="K001").first.click()
    page.wait_for_url(f"{live_server}/fleet/K001")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="签发令牌").click()
    assert len(page.locator("#token-value").inner_text()) >= 40
    screenshot(page, "fleet-counter")
    page.get_by_role("link", name="编辑货道表").click()
    page.wait_for_url(f"{live_server}/fleet/K001/planogram")
    screenshot(page, "fleet-planogram")
