"""The UI shell in a real headless Chromium: login (password and PIN), each role's landing page,
the Chinese UI, and a layout that fits the till PC (1366×768) and the restocker's tablet.

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import re

import pytest

from tests.conftest import TEST_PASSWORD, screenshot
from tests.fixtures.browser import cjk_renders, heading, login_by_password, no_horizontal_scroll, type_into

pytestmark = pytest.mark.browser

HALL_NAME = "梵净山珍·松桃馆"

# The nav links of the shell and the roles that may use each (the rule in pos.accounts.roles, as a person
# expects it: a cashier sells, a restocker refills, an auditor reads reports).
NAV = {
    "概览": {"manager", "admin"},
    "班次": {"manager", "admin"},
    "商品": {"manager", "admin"},
    "库存": {"manager", "admin"},
    "收银": {"cashier", "manager", "admin"},
    "专柜": {"manager", "admin"},
    "专柜补货": {"restocker", "manager", "admin"},
    "报表": {"auditor", "manager", "admin"},
    "用户": {"admin"},
}

LANDING = {
    "cashier": ("/till", "收银台"),
    "restocker": ("/counters", "专柜补货路线"),
    "manager": ("/dashboard", "店长概览"),
    "auditor": ("/reports", "报表与消费帮扶统计"),
    "admin": ("/dashboard", "店长概览"),
}
LANDING_NAV = {"cashier": "收银", "restocker": "专柜补货", "manager": "概览", "auditor": "报表", "admin": "概览"}
ROLE_NAMES = {"cashier": "收银员", "restocker": "补货员", "manager": "店长", "auditor": "审计/统计", "admin": "系统管理员"}


def nav_labels(page) -> list[str]:
    return [t.strip() for t in page.locator("nav.mainnav a").all_inner_texts()]


def test_login_page_is_chinese(live_server, page):
    page.goto(f"{live_server}/login")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert heading(page) == HALL_NAME
    assert page.get_by_role("button", name="登录").is_visible()
    assert page.get_by_text("密码登录").is_visible()
    assert page.get_by_text("PIN 快速登录").is_visible()
    assert "登录" in page.title() and "松桃馆收银与库存" in page.title()
    # the cursor waits in the username field, for a person at the keyboard
    assert page.evaluate("document.activeElement.name") == "pw-username"
    assert cjk_renders(page, ".login-card h1")
    assert no_horizontal_scroll(page)
    screenshot(page, "login-zh")


@pytest.mark.parametrize("role", list(LANDING))
def test_each_role_lands_on_its_page_in_chinese(live_server, page, make_user, role):
    make_user(f"{role}1", role, display_name=f"测试{role}", pin="4321" if role == "cashier" else None)
    login_by_password(page, live_server, f"{role}1")

    path, expected_heading = LANDING[role]
    assert page.url == f"{live_server}{path}"
    assert heading(page) == expected_heading
    assert page.evaluate("document.documentElement.lang") == "zh-CN"

    labels = nav_labels(page)
    expected = [label for label, roles in NAV.items() if role in roles]
    assert [label for label in labels if label in NAV] == expected
    # the link of the page one is on is marked as such
    current = page.locator('nav.mainnav a[aria-current="page"]')
    assert current.count() == 1 and current.inner_text() == LANDING_NAV[role]
    # whatever else the nav offers (areas added later) this role may open
    for href in page.locator("nav.mainnav a").evaluate_all("links => links.map(a => a.href)"):
        assert page.request.get(href).status == 200, href

    # who is logged in, in the hall's words
    assert page.locator(".who a").inner_text() == f"测试{role} · {ROLE_NAMES[role]}"
    assert page.get_by_role("button", name="退出").is_visible()
    assert cjk_renders(page, "main h1")
    assert no_horizontal_scroll(page)
    screenshot(page, f"landing-{role}")


def test_cashier_logs_in_by_pin(live_server, page, make_user):
    make_user("c007", "cashier", display_name="王芳", pin="2580")
    page.goto(f"{live_server}/login")
    page.get_by_role("tab", name="PIN 快速登录").click()
    page.wait_for_url(re.compile(r"mode=pin"))
    assert page.get_by_role("tab", name="PIN 快速登录").get_attribute("aria-selected") == "true"
    type_into(page, "工号", "c007")
    pin = page.get_by_label("PIN", exact=True)
    assert pin.get_attribute("inputmode") == "numeric"
    assert pin.get_attribute("type") == "password"
    pin.click()
    pin.press_sequentially("2580", delay=20)
    screenshot(page, "login-pin")
    pin.press("Enter")
    page.wait_for_url(f"{live_server}/till")
    assert heading(page) == "收银台"
    assert page.locator(".who a").inner_text() == "王芳 · 收银员"

    page.get_by_role("button", name="退出").click()
    page.wait_for_url(re.compile(r"/login"))
    assert page.get_by_role("status").inner_text() == "已退出登录"


def test_wrong_password_shows_a_chinese_error(live_server, page, make_user):
    make_user("ann", "manager")
    login_by_password(page, live_server, "ann", "not-her-password")
    error = page.locator(".flash-error")
    assert error.inner_text() == "用户名或密码不正确"
    assert page.url.startswith(f"{live_server}/login")
    # still on the form, the name kept, the password not
    assert page.get_by_label("用户名", exact=True).input_value() == "ann"
    assert page.get_by_label("密码", exact=True).input_value() == ""
    # the cursor waits for the password again, and the message sits above the form, not beside it
    assert page.evaluate("document.activeElement.name") == "pw-password"
    message, card = error.bounding_box(), page.locator(".login-card").bounding_box()
    assert message["y"] + message["height"] <= card["y"]
    assert abs(message["x"] - card["x"]) < 1 and abs(message["width"] - card["width"]) < 1
    assert no_horizontal_scroll(page)
    screenshot(page, "login-wrong-password")


def test_wrong_pin_shows_a_chinese_error(live_server, page, make_user):
    make_user("c008", "cashier", pin="2580")
    page.goto(f"{live_server}/login?mode=pin")
    type_into(page, "工号", "c008")
    type_into(page, "PIN", "1111")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator(".flash-error").inner_text() == "工号或 PIN 不正确"
    assert page.get_by_role("tab", name="PIN 快速登录").get_attribute("aria-selected") == "true"


def test_a_cashier_is_turned_away_from_the_dashboard_in_chinese(live_server, page, make_user):
    make_user("c010", "cashier", display_name="赵敏")
    login_by_password(page, live_server, "c010")
    response = page.goto(f"{live_server}/dashboard")
    assert response.status == 403
    assert heading(page) == "无权访问"
    assert "收银员" in page.locator("main").inner_text()
    page.get_by_role("link", name="返回我的首页").click()
    page.wait_for_url(f"{live_server}/till")
    assert heading(page) == "收银台"

    response = page.goto(f"{live_server}/no-such-page")
    assert response.status == 404
    assert heading(page) == "页面不存在"
    assert page.get_by_text("错误代码：404").is_visible()
    assert no_horizontal_scroll(page)
    screenshot(page, "not-found")


def test_tablet_login_fits_and_has_touch_sized_controls(live_server, tablet_page, make_user):
    page = tablet_page
    make_user("r1", "restocker", display_name="李强")
    page.goto(f"{live_server}/login")
    assert no_horizontal_scroll(page)
    button = page.get_by_role("button", name="登录").bounding_box()
    assert button["height"] >= 44
    for label in ("用户名", "密码"):
        assert page.get_by_label(label, exact=True).bounding_box()["height"] >= 44
    tab = page.get_by_role("tab", name="PIN 快速登录").bounding_box()
    assert tab["height"] >= 44
    screenshot(page, "tablet-login")

    page.get_by_label("用户名", exact=True).tap()
    page.keyboard.type("r1")
    page.get_by_label("密码", exact=True).tap()
    page.keyboard.type(TEST_PASSWORD)
    page.get_by_role("button", name="登录").tap()
    page.wait_for_url(f"{live_server}/counters")
    assert heading(page) == "专柜补货路线"
    assert no_horizontal_scroll(page)
    for link in page.locator("nav.mainnav a, .who a, .who button").all():
        assert link.bounding_box()["height"] >= 44, link.inner_text()
    screenshot(page, "tablet-counters")


def test_admin_pages_fit_the_till_screen(live_server, page, make_user):
    make_user("root", "admin", display_name="系统管理员甲")
    make_user("c009", "cashier", display_name="收银员乙", pin="1234")
    login_by_password(page, live_server, "root")
    with page.expect_navigation():
        page.get_by_role("link", name="用户", exact=True).click()
    assert heading(page) == "用户管理"
    assert page.locator("#users tbody tr").count() == 2
    assert no_horizontal_scroll(page)
    screenshot(page, "admin-users")

    with page.expect_navigation():
        page.get_by_role("link", name="c009").click()
    assert "收银员乙" in page.get_by_role("heading", level=1).inner_text()
    assert page.get_by_text("创建用户").first.is_visible()  # the audit log in words, not codes
    assert no_horizontal_scroll(page)
    screenshot(page, "admin-user")

    with page.expect_navigation():
        page.locator(".who a").click()
    assert heading(page) == "我的账号"
    assert no_horizontal_scroll(page)
    screenshot(page, "account")


def test_english_browser_gets_the_english_shell(live_server, chromium, make_user):
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{live_server}/login")
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.get_by_role("button", name="Log in").is_visible()
        assert no_horizontal_scroll(page)
        screenshot(page, "login-en")

        make_user("mgr", "manager", display_name="陈经理")
        page.get_by_label("Username", exact=True).fill("mgr")
        page.get_by_label("Password", exact=True).fill(TEST_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server}/dashboard")
        assert heading(page) == "Manager overview"
        # the shell's own links in English, in order; Shifts and 商品 and 库存 (inventory) sit
        # after Overview
        labels = nav_labels(page)
        shell = ["Overview", "Shifts", "Till", "Counters", "Counter restocking", "Reports", "Bill check"]
        assert [label for label in labels if label in shell] == shell
        assert len(labels) == 10 and labels[0] == "Overview"
        assert not any(re.search(r"[\u4e00-\u9fff]", label) for label in labels), labels
        assert no_horizontal_scroll(page)
        screenshot(page, "dashboard-en")
    finally:
        context.close()
