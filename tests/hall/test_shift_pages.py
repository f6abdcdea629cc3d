"""The manager's shift pages over HTTP, on a real database: the list of shifts, the X/Z report with
expected and counted cash and the difference, the late sales with their "已核对" button, and the
hall settings form. Shifts are made through the till's own domain functions (pos.hall.shifts,
pos.sales.service), so the pages are checked against what a real shift produces."""
from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from inventory.localtime import format_local, local_today
from inventory.models import (
    Alert,
    AlertKind,
    AuditEvent,
    Certificate,
    Location,
    Product,
    Setting,
    Supplier,
    Unit,
)
from pos.hall import shifts as shift_service
from pos.core.db import session_scope
from pos.demo.build import LOCATIONS
from pos.models import Sale, Shift, Till
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn, record_sale
from pos.hall.settings import hall_settings
from tests.conftest import csrf_token, screenshot

FLOAT = 50_000            # ¥500.00 in the drawer at the start
TEA_PRICE = 6_800         # certified
HONEY_PRICE = 4_550       # not certified
CASH_IN, CASH_OUT = 5_000, 2_000
# ¥100 × 5 + ¥50 × 1 + ¥10 × 4 + ¥1 × 7 = ¥597.00, one yuan short of the expected ¥598.00
COUNT = {10_000: 5, 5_000: 1, 1_000: 4, 100: 7}
EXPECTED = FLOAT + TEA_PRICE + CASH_IN - CASH_OUT      # 59 800
COUNTED = 59_700


def read(app, fn):
    with session_scope(app) as s:
        return fn(s)


def body(response) -> str:
    return response.get_data(as_text=True)


def field(html: str, name: str) -> str:
    """The text of <td data-field="name"> on the report, tags stripped."""
    match = re.search(rf'data-field="{name}">(.*?)</td>', html, re.S)
    assert match, f"no field {name}"
    return re.sub(r"<[^>]+>|\s+", " ", match.group(1)).strip()


@pytest.fixture
def hall(app, make_user):
    """The demo's locations, a certified tea and an uncertified honey, two tills, a cashier and a
    manager."""
    manager_id = make_user("wumei", "manager", display_name="吴梅")
    cashier_id = make_user("longxia", "cashier", display_name="龙霞")
    with session_scope(app) as s:
        locs = {}
        for code, name, kind in LOCATIONS:
            loc = Location(code=code, name=name, kind=kind, active=True)
            s.add(loc)
            s.flush()
            locs[code] = loc.id
        supplier = Supplier(name="松桃梵净山翠峰茶业有限公司", origin_county="松桃苗族自治县", origin_county_code="520628")
        s.add(supplier)
        s.flush()
        tea = Product(sku="ST-TEA-001", name="松桃绿茶 250g", pinyin_initials="stlc", unit=Unit.PIECE,
                      price_fen=TEA_PRICE, supplier_id=supplier.id)
        honey = Product(sku="ST-HONEY-01", name="寨英土蜂蜜", pinyin_initials="zytfm", unit=Unit.PIECE,
                        price_fen=HONEY_PRICE, supplier_id=supplier.id)
        s.add_all([tea, honey])
        s.flush()
        today = local_today()
        s.add(Certificate(number="黔扶认〔2026〕0042", issuer="贵州省扶贫开发办公室", supplier_id=supplier.id,
                          valid_from=today - dt.timedelta(days=100), valid_to=today + dt.timedelta(days=300),
                          products=[tea]))
        h1 = Till(code="H1", name="1号收银台", location_id=locs["HALL"])
        h2 = Till(code="H2", name="2号收银台", location_id=locs["HALL"])
        s.add_all([h1, h2])
        s.flush()
        return SimpleNamespace(manager_id=manager_id, cashier_id=cashier_id, tea=tea.id, honey=honey.id,
                               h1=h1.id, h2=h2.id)


def sell(s, hall, lines, payments, *, till=None, shift_id=None, client_id=None):
    return record_sale(s, SaleIn(
        channel="hall", location_id=None, till_id=till or hall.h1, shift_id=shift_id, cashier_id=hall.cashier_id,
        lines=[LineIn(product_id=p, qty_milli=q) for p, q in lines],
        payments=[PaymentIn(**p) for p in payments], client_sale_id=client_id,
    ))


def open_day(app, hall) -> int:
    """A shift on H1 with a cash sale, a WeChat sale, cash in and cash out; still open."""
    with session_scope(app) as s:
        shift = shift_service.open_shift(s, till_id=hall.h1, cashier_id=hall.cashier_id, opening_float_fen=FLOAT)
        s.flush()
        sell(s, hall, [(hall.tea, 1000)], [{"method": "cash", "amount_fen": TEA_PRICE, "tendered_fen": 10_000}])
        sell(s, hall, [(hall.honey, 2000)], [{"method": "wechat", "amount_fen": 2 * HONEY_PRICE, "ref": "wx-1"}])
        shift_service.cash_movement(s, shift.id, kind="in", amount_fen=CASH_IN, reason="补充零钱",
                                    user_id=hall.manager_id)
        shift_service.cash_movement(s, shift.id, kind="out", amount_fen=CASH_OUT, reason="购买打印纸",
                                    user_id=hall.cashier_id)
        return shift.id


def close(app, hall, shift_id: int, denominations=None) -> None:
    with session_scope(app) as s:
        shift_service.close_shift(s, shift_id, denominations=COUNT if denominations is None else denominations,
                                  closed_by_id=hall.manager_id)


@pytest.fixture
def manager(client, auth, hall):
    assert auth.login("wumei").status_code == 302
    return client


# --- the X and Z report ----------------------------------------------------------------------------


def test_x_report_while_the_shift_is_open(app, manager, hall):
    shift_id = open_day(app, hall)
    html = body(manager.get(f"/shifts/{shift_id}"))
    assert "X 报表（班中）" in html
    assert 'data-status="open"' in html
    assert field(html, "opening_float") == "¥500.00"
    assert field(html, "cash_sales") == "¥68.00"
    assert field(html, "cash_in") == "¥50.00"
    assert field(html, "cash_out") == "¥20.00"
    assert field(html, "expected") == "¥598.00"
    assert field(html, "closed_at") == "未交班"
    assert 'data-field="counted"' not in html and 'data-field="difference"' not in html


def test_z_report_shows_expected_counted_and_the_difference(app, manager, hall):
    shift_id = open_day(app, hall)
    close(app, hall, shift_id)
    response = manager.get(f"/shifts/{shift_id}")
    assert response.status_code == 200
    html = body(response)
    assert "Z 报表（交班）" in html
    shift = read(app, lambda s: s.get(Shift, shift_id))
    # local (Asia/Shanghai) times
    assert field(html, "opened_at") == format_local(shift.opened_at)
    assert field(html, "closed_at") == format_local(shift.closed_at)
    assert "H1 1号收银台" in html and "龙霞" in html and "吴梅" in html
    assert field(html, "sales_count") == "2"
    assert re.search(r'data-takings="cash"><th>现金</th><td>¥68.00</td>', html)
    assert re.search(r'data-takings="wechat"><th>微信支付</th><td>¥91.00</td>', html)
    assert field(html, "total") == "¥159.00"
    assert field(html, "certified") == "¥68.00"            # only the tea is certified
    assert field(html, "expected") == "¥598.00"
    assert field(html, "counted") == "¥597.00"
    assert 'data-difference="-100"' in html and "短款 -¥1.00" in html
    # the cash movements with their reasons, the count by denomination
    assert "补充零钱" in html and "购买打印纸" in html
    assert re.search(r'data-denomination="10000"><th>¥100.00 × 5</th><td>¥500.00</td>', html)
    assert re.search(r'data-denomination="100"><th>¥1.00 × 7</th><td>¥7.00</td>', html)
    # both paper sizes are catered for
    assert "@media print and (max-width: 100mm)" in html and 'data-print="80mm"' in html


def test_a_balanced_drawer_is_not_highlighted(app, manager, hall):
    shift_id = open_day(app, hall)
    close(app, hall, shift_id, {10_000: 5, 5_000: 1, 1_000: 4, 500: 1, 100: 3})   # 59 800
    html = body(manager.get(f"/shifts/{shift_id}"))
    assert field(html, "counted") == "¥598.00"
    assert 'data-difference="0"' in html and "短款" not in html and "长款" not in html
    listing = body(manager.get("/shifts/"))
    assert 'class="shf-off"' not in listing


def test_unknown_shift_is_404(manager, hall):
    assert manager.get("/shifts/999999").status_code == 404
    assert manager.get("/shifts/99999999999").status_code == 404


# --- the list -----------------------------------------------------------------------------------


def test_list_shows_figures_and_highlights_a_difference(app, manager, hall):
    shift_id = open_day(app, hall)
    close(app, hall, shift_id)
    with session_scope(app) as s:
        other = shift_service.open_shift(s, till_id=hall.h2, cashier_id=hall.cashier_id, opening_float_fen=20_000)
        s.flush()
        other_id = other.id
    html = body(manager.get("/shifts/"))
    rows = re.findall(r'<tr data-shift="(\d+)"', html)
    assert rows == [str(other_id), str(shift_id)]            # newest first
    row = html.split(f'data-shift="{shift_id}"')[1].split("</tr>")[0]
    assert "shf-off" in html.split(f'data-shift="{shift_id}"')[1][:40]
    assert "¥159.00" in row and "¥598.00" in row and "¥597.00" in row and "短款 -¥1.00" in row
    open_row = html.split(f'data-shift="{other_id}"')[1].split("</tr>")[0]
    assert "未交班" in open_row and "¥200.00" in open_row    # an open shift's expected cash is its float so far


def test_list_filters_by_till_and_date(app, manager, hall):
    shift_id = open_day(app, hall)
    close(app, hall, shift_id)
    with session_scope(app) as s:
        other = shift_service.open_shift(s, till_id=hall.h2, cashier_id=hall.cashier_id, opening_float_fen=0)
        s.flush()
        other_id = other.id
    by_till = body(manager.get("/shifts/?till=H2"))
    assert re.findall(r'<tr data-shift="(\d+)"', by_till) == [str(other_id)]
    today = local_today()
    on_day = body(manager.get(f"/shifts/?date={today.isoformat()}&till=H1"))
    assert re.findall(r'<tr data-shift="(\d+)"', on_day) == [str(shift_id)]
    yesterday = body(manager.get(f"/shifts/?date={(today - dt.timedelta(days=1)).isoformat()}"))
    assert re.findall(r'<tr data-shift="(\d+)"', yesterday) == []
    bad = manager.get("/shifts/?date=2026-13-45")
    assert bad.status_code == 400 and "日期格式应为 YYYY-MM-DD" in body(bad)
    unknown = manager.get("/shifts/?till=ZZ")
    assert unknown.status_code == 400 and "收银台不存在：ZZ" in body(unknown)


def test_list_is_paged(app, manager, hall):
    with session_scope(app) as s:
        for _ in range(21):
            shift = shift_service.open_shift(s, till_id=hall.h1, cashier_id=hall.cashier_id, opening_float_fen=0)
            s.flush()
            shift_service.close_shift(s, shift.id, denominations={10000: 0}, closed_by_id=hall.manager_id)
            s.flush()
        ids = s.scalars(select(Shift.id).order_by(Shift.id)).all()
    first = body(manager.get("/shifts/"))
    assert len(re.findall(r'<tr data-shift=', first)) == 20
    assert re.findall(r'<tr data-shift="(\d+)"', first)[0] == str(ids[-1])
    assert "第 1 / 2 页，共 21 条" in first
    second = body(manager.get("/shifts/?page=2"))
    assert re.findall(r'<tr data-shift="(\d+)"', second) == [str(ids[0])]
    assert manager.get("/shifts/?page=abc").status_code == 200


# --- late sales ---------------------------------------------------------------------------------


def test_late_sale_is_listed_and_the_review_button_resolves_its_alert(app, client, manager, hall):
    shift_id = open_day(app, hall)
    close(app, hall, shift_id)
    with session_scope(app) as s:   # the till was offline: its sale arrives after the close
        late = sell(s, hall, [(hall.honey, 1000)], [{"method": "cash", "amount_fen": HONEY_PRICE}],
                    shift_id=shift_id, client_id="offline-0001")
    sale = read(app, lambda s: s.get(Sale, late.sale_id))
    assert sale.after_shift_closed

    html = body(manager.get("/shifts/late-sales"))
    row = html.split(f'data-receipt="{late.receipt_no}"')[1].split("</tr>")[0]
    assert "H1" in row and "¥45.50" in row and f'data-meant-for="{shift_id}"' in row
    assert format_local(sale.sold_at) in row
    assert "已核对" in row

    token = csrf_token(client, "/shifts/late-sales")
    response = client.post(f"/shifts/late-sales/{late.sale_id}/review", data={"csrf_token": token})
    assert response.status_code == 302
    alert = read(app, lambda s: s.scalars(select(Alert).where(
        Alert.kind == AlertKind.LATE_SALE, Alert.ref_type == "sale", Alert.ref_id == late.sale_id)).one())
    assert alert.resolved_at is not None and alert.resolved_by_id == hall.manager_id
    audit = read(app, lambda s: s.scalars(select(AuditEvent).where(
        AuditEvent.action == "alert.resolve", AuditEvent.entity_id == str(alert.id))).one())
    assert audit.user_id == hall.manager_id

    assert f'data-receipt="{late.receipt_no}"' not in body(client.get("/shifts/late-sales"))   # none left to review
    reviewed = body(client.get("/shifts/late-sales?show=all"))
    row = reviewed.split(f'data-receipt="{late.receipt_no}"')[1].split("</tr>")[0]
    assert "已核对" in row and "吴梅" in row and "<button" not in row
    # pressing it again changes nothing
    token = csrf_token(client, "/shifts/late-sales")
    again = client.post(f"/shifts/late-sales/{late.sale_id}/review", data={"csrf_token": token},
                        follow_redirects=True)
    assert "已核对过" in body(again)
    assert read(app, lambda s: s.scalar(select(func.count()).select_from(AuditEvent)
                                        .where(AuditEvent.action == "alert.resolve"))) == 1


def test_late_sale_without_an_open_shift_points_to_the_tills_last_shift(app, manager, hall):
    shift_id = open_day(app, hall)
    close(app, hall, shift_id)
    with session_scope(app) as s:
        late = sell(s, hall, [(hall.tea, 1000)], [{"method": "wechat", "amount_fen": TEA_PRICE}])
    html = body(manager.get("/shifts/late-sales"))
    row = html.split(f'data-receipt="{late.receipt_no}"')[1].split("</tr>")[0]
    assert f'data-meant-for="{shift_id}"' in row


def test_review_needs_csrf_and_a_late_sale(app, client, manager, hall):
    shift_id = open_day(app, hall)
    on_time = read(app, lambda s: s.scalars(select(Sale.id).where(Sale.shift_id == shift_id)).first())
    assert client.post(f"/shifts/late-sales/{on_time}/review").status_code == 400     # no CSRF token
    token = csrf_token(client, "/shifts/late-sales")
    assert client.post(f"/shifts/late-sales/{on_time}/review", data={"csrf_token": token}).status_code == 404
    assert client.post("/shifts/late-sales/999999/review", data={"csrf_token": token}).status_code == 404


# --- hall settings ------------------------------------------------------------------------------


def settings_audit(app) -> list[AuditEvent]:
    return read(app, lambda s: s.scalars(select(AuditEvent).where(AuditEvent.action == "setting.change")
                                         .order_by(AuditEvent.id)).all())


@pytest.mark.parametrize("typed", ["150", "-5", "abc", "", "12.5", "1e2", "²"])
def test_bad_discount_limit_is_refused_and_nothing_changes(app, client, manager, typed):
    before = read(app, hall_settings)
    token = csrf_token(client, "/shifts/settings")
    response = client.post("/shifts/settings", data={
        "csrf_token": token, "rounding_to_jiao": "y", "discount_limit_percent": typed})
    assert response.status_code == 400
    html = body(response)
    assert "折扣上限必须是 0 到 100 的整数" in html or "请输入折扣上限" in html
    assert read(app, hall_settings) == before
    assert read(app, lambda s: s.scalar(select(func.count()).select_from(Setting))) == 0
    assert settings_audit(app) == []


def test_good_settings_are_saved_and_audited(app, client, manager, hall):
    page = body(client.get("/shifts/settings"))
    assert 'name="discount_limit_percent"' in page and 'value="10"' in page
    token = csrf_token(client, "/shifts/settings")
    response = client.post("/shifts/settings", data={
        "csrf_token": token, "rounding_to_jiao": "y", "discount_limit_percent": " 15 "})
    assert response.status_code == 302
    saved = read(app, hall_settings)
    assert saved.rounding_to_jiao is True and saved.discount_limit_percent == 15
    events = settings_audit(app)
    assert {e.entity_id for e in events} == {"rounding_to_jiao", "discount_limit_percent"}
    assert all(e.user_id == hall.manager_id for e in events)
    assert "门店设置已保存" in body(client.get("/shifts/settings"))

    # unticking the box turns 抹零 off again; an unchanged limit writes no event
    token = csrf_token(client, "/shifts/settings")
    client.post("/shifts/settings", data={"csrf_token": token, "discount_limit_percent": "15"})
    assert read(app, hall_settings).rounding_to_jiao is False
    assert [e.entity_id for e in settings_audit(app)][2:] == ["rounding_to_jiao"]


def test_settings_form_needs_csrf(app, client, manager):
    response = client.post("/shifts/settings", data={"discount_limit_percent": "20"})
    assert response.status_code == 400
    assert read(app, hall_settings).discount_limit_percent == 10


# --- who may see these pages ---------------------------------------------------------------------

ROLES = ("admin", "manager", "cashier", "restocker", "auditor")
ALLOWED = {"admin": 200, "manager": 200, "cashier": 403, "restocker": 403, "auditor": 403}
PAGES = ("/shifts/", "/shifts/{shift}", "/shifts/late-sales", "/shifts/settings")
CASES = [(role, page, ALLOWED[role]) for role in ROLES for page in PAGES]


@pytest.mark.parametrize("role,page,status", CASES, ids=[f"{r}-{p}" for r, p, _ in CASES])
def test_role_access(app, client, auth, make_user, hall, role, page, status):
    with session_scope(app) as s:
        shift = shift_service.open_shift(s, till_id=hall.h1, cashier_id=hall.cashier_id, opening_float_fen=0)
        s.flush()
        shift_id = shift.id
    make_user(f"{role}9", role)
    assert auth.login(f"{role}9").status_code == 302
    response = client.get(page.format(shift=shift_id))
    assert response.status_code == status
    if status == 403:
        assert "无权访问" in body(response)


@pytest.mark.parametrize("role", ["cashier", "restocker", "auditor"])
def test_other_roles_cannot_post(app, client, auth, make_user, hall, role):
    make_user(f"{role}9", role)
    auth.login(f"{role}9")
    token = csrf_token(client, "/account")
    assert client.post("/shifts/settings", data={"csrf_token": token, "discount_limit_percent": "90"}).status_code == 403
    assert client.post("/shifts/late-sales/1/review", data={"csrf_token": token}).status_code == 403
    assert read(app, hall_settings).discount_limit_percent == 10


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_is_sent_to_login(client, page):
    response = client.get(page.format(shift=1))
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_nav_links_for_managers_only(client, auth, make_user, hall):
    auth.login("wumei")
    page = body(client.get("/shifts/late-sales"))
    nav = page.split('class="mainnav"')[1].split("</nav>")[0]
    # one nav link for the section, marked current on each of its pages; the section's tabs
    # lead to the late sales and the settings
    assert re.search(r'href="/shifts/" aria-current="page">班次<', nav)
    tabs = page.split('class="tabs shf-tabs')[1].split("</nav>")[0]
    assert "补录销售" in tabs and "门店设置" in tabs
    auth.logout()
    auth.login("longxia")
    nav = body(client.get("/account")).split('class="mainnav"')[1].split("</nav>")[0]
    assert "/shifts/" not in nav


# --- the report in a real browser: fits the screen, A4 and 80 mm receipt paper --------------------


@pytest.mark.browser
def test_report_in_chromium_fits_screen_and_receipt_paper(app, live_server, page, hall):
    from tests.fixtures.browser import login_by_password, no_horizontal_scroll

    shift_id = open_day(app, hall)
    close(app, hall, shift_id)
    login_by_password(page, live_server, "wumei")
    page.goto(f"{live_server}/shifts/{shift_id}")
    assert page.locator("[data-field=difference]").inner_text().startswith("短款")
    assert no_horizontal_scroll(page)
    screenshot(page, "shift-z-report")
    # print media at 80 mm (≈302 CSS px): one column, nothing cut off, no navigation
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 302, "height": 1200})
    assert no_horizontal_scroll(page)
    assert page.locator(".topbar").is_hidden() and page.locator(".shf-actions").is_hidden()
    assert page.evaluate("getComputedStyle(document.querySelector('.shf-cols')).display") == "block"
    widest = page.evaluate("Math.max(...[...document.querySelectorAll('#shift-report *')]"
                           ".map(e => e.getBoundingClientRect().right))")
    assert widest <= 302
    screenshot(page, "shift-z-report-80mm")
    # A4 keeps two columns
    page.set_viewport_size({"width": 794, "height": 1123})
    assert page.evaluate("getComputedStyle(document.querySelector('.shf-cols')).display") == "grid"
    assert no_horizontal_scroll(page)
