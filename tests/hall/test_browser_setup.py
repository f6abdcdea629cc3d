"""Issue 13: the first-run set-up through the pages, in a real headless Chromium. An admin on a
site without places is led to the first-run page, a bad value is refused with a Chinese message
and nothing is made, then the hall, its places and its first till are made in one go; the site
page afterwards adds, renames and retires (never deletes), at 1366×768 and on a 10-inch tablet.
Screenshots land in screenshots/ for a person to look at."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from inventory.models import AuditEvent, Location, LocationKind
from pos.core.db import session_scope
from pos.hall.settings import hall_settings
from pos.models import Till
from tests.conftest import TEST_PASSWORD, screenshot

pytestmark = pytest.mark.browser


def login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.locator('input[name="pw-username"]').fill(username)
    page.locator('input[name="pw-password"]').fill(TEST_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def places(app) -> dict[str, tuple]:
    with session_scope(app) as s:
        return {loc.code: (loc.kind, loc.name, loc.active) for loc in s.scalars(select(Location))}


def test_first_run_set_up_through_the_pages(app, live_server, page, tablet_page, make_user):
    make_user("boss", "admin")
    login(page, live_server, "boss")
    notice = page.locator("#first-run-notice")
    assert "还不能进货和收银" in notice.inner_text()
    with page.expect_navigation():
        notice.get_by_role("link", name="开始开店设置").click()
    assert page.url.endswith("/setup")
    assert page.locator("#public-url-warning").is_visible()  # no PUBLIC_BASE_URL in this server
    assert "PUBLIC_BASE_URL" in page.locator("#public-url-warning").inner_text()
    assert fits(page)
    screenshot(page, "setup-first-run-1366")

    form = page.locator("#first-run")
    form.locator('input[name="hall_name"]').fill("梵净山珍·松桃馆")
    form.locator('input[name="hall_address"]').fill("广东省东莞市虎门镇连升中路 8 号")
    form.locator('input[name="paired_county_code"]').fill("5206")  # wrong: six digits
    form.locator('input[name="base_name"]').fill("黔货出山大湾区物流基地")
    form.locator('input[name="van2_code"]').fill("")
    form.locator('input[name="van2_name"]').fill("")
    form.locator('input[name="till_printer"]').fill("tcp://8.8.8.8:9100")  # not a printer the hall may reach
    with page.expect_navigation():
        page.get_by_role("button", name="建立门店").click()
    errors = page.locator(".flash-error").all_inner_texts()
    assert any("县级行政区划代码必须是 6 位数字" in e for e in errors), errors
    assert any(e.startswith("收银台：") for e in errors), errors
    assert places(app) == {}  # nothing made: every value is checked, then all or nothing
    assert form.locator('input[name="hall_address"]').input_value() == "广东省东莞市虎门镇连升中路 8 号"  # kept
    screenshot(page, "setup-first-run-errors")

    form.locator('input[name="paired_county_code"]').fill("520628")
    form.locator('input[name="till_printer"]').fill("none")
    form.locator('select[name="till_paper"]').select_option("58")
    with page.expect_navigation():
        page.get_by_role("button", name="建立门店").click()
    assert page.url.endswith("/site"), page.url
    assert "门店已建好" in page.locator(".flash-success").inner_text()
    assert page.locator("#first-run-notice").count() == 0
    made = places(app)
    assert made == {"HALL": (LocationKind.HALL_FLOOR, "梵净山珍·松桃馆 卖场", True),
                    "HALL-STORE": (LocationKind.HALL_STORE, "梵净山珍·松桃馆 仓库", True),
                    "BASE": (LocationKind.BASE, "黔货出山大湾区物流基地", True),
                    "VAN1": (LocationKind.VAN, "补货车 1", True)}
    with session_scope(app) as s:
        till = s.scalar(select(Till))
        assert (till.code, till.name, till.paper_columns, till.printer_uri) == ("H1", "1号收银台", 32, "none")
        assert s.get(Location, till.location_id).code == "HALL"
        assert hall_settings(s).hall_address == "广东省东莞市虎门镇连升中路 8 号"
        assert hall_settings(s).paired_county_code == "520628"
    assert fits(page)
    screenshot(page, "setup-site-1366")

    # the ordinary site page afterwards: add, rename, retire — audited, never deleted
    add = page.locator("#add-place")
    add.locator('input[name="code"]').fill("VAN2")
    add.locator('select[name="kind"]').select_option("van")
    add.locator('input[name="name"]').fill("补货车 2")
    with page.expect_navigation():
        add.get_by_role("button", name="添加").click()
    row = page.locator('#places tr[data-code="VAN1"]')
    row.locator('input[name="name"]').fill("补货车 1（粤S·D1234）")
    with page.expect_navigation():
        row.get_by_role("button", name="改名").click()
    with page.expect_navigation():
        page.locator('#places tr[data-code="VAN2"]').get_by_role("button", name="停用").click()
    with page.expect_navigation():  # a hall floor a till sells from cannot be retired
        page.locator('#places tr[data-code="HALL"]').get_by_role("button", name="停用").click()
    assert "还有 1 台收银台在用" in page.locator(".flash-error").inner_text()
    till_form = page.locator("#add-till")
    till_form.locator('input[name="code"]').fill("H2")
    till_form.locator('input[name="name"]').fill("2号收银台")
    with page.expect_navigation():
        till_form.get_by_role("button", name="添加").click()
    assert page.locator('#site-tills tr[data-code="H2"]').count() == 1
    after = places(app)
    assert after["VAN1"][1] == "补货车 1（粤S·D1234）" and after["VAN2"][2] is False and after["HALL"][2] is True
    with session_scope(app) as s:
        actions = set(s.scalars(select(AuditEvent.action)))
        assert {"location.create", "location.rename", "location.retire", "till.create", "setting.change"} <= actions
        assert s.scalar(select(func.count()).select_from(Till)) == 2

    # the same page on the restocker's 10-inch tablet
    login(tablet_page, live_server, "boss")
    tablet_page.goto(f"{live_server}/site")
    assert tablet_page.locator("#places").is_visible() and fits(tablet_page)
    screenshot(tablet_page, "setup-site-tablet")
    tablet_page.goto(f"{live_server}/fleet/import")
    assert fits(tablet_page)
    screenshot(tablet_page, "fleet-import-tablet")
    page.goto(f"{live_server}/fleet/new")
    assert fits(page)
    screenshot(page, "fleet-new-1366")
