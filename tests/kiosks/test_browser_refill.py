"""The restocker's route on a 10-inch tablet in a real headless Chromium: plan a route for a
counter, print the pick list, load the van (the pick list freezes), refill the counter with one
expired lot pulled — surviving a page reload half-way — and finish the route. The counter's, the
van's and the base's levels change exactly as entered (asserted in the database).

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from inventory import ledger
from inventory.ledger import move
from inventory.localtime import local_today, utcnow
from inventory.models import Location, LocationKind, Lot, MoveReason, Product
from kiosks.models import Kiosk, PlanogramSlot, RefillRoute, RefillStatus, SiteType
from pos.core.db import session_scope
from tests.conftest import SCREENSHOTS, screenshot
from tests.fixtures.browser import login_by_password, no_horizontal_scroll

pytestmark = pytest.mark.browser

TODAY = local_today()
P = 1000


@pytest.fixture
def counter_world(app, make_user):
    """BASE, a van, the virtual locations, one counter K001 with two slots; tea at the counter
    with an expired lot, tea and rice at the base."""
    make_user("liqiang", "restocker", display_name="李强")
    ids = {}
    with session_scope(app) as s:
        for code, name, kind in (("BASE", "黔货出山大湾区物流基地", LocationKind.BASE),
                                 ("VAN1", "补货车 1（粤S·A1234）", LocationKind.VAN),
                                 ("SUPPLIER", "供应商（虚拟）", LocationKind.SUPPLIER),
                                 ("LOSS", "损耗（虚拟）", LocationKind.LOSS),
                                 ("COUNT-ADJ", "盘点差异（虚拟）", LocationKind.COUNT_ADJUSTMENT),
                                 ("K001", "消费专柜 K001", LocationKind.KIOSK)):
            loc = Location(code=code, name=name, kind=kind)
            s.add(loc)
            s.flush()
            ids[code] = loc.id
        tea = Product(sku="KT0001", name="梵净山翠峰茶 50g", pinyin_initials="FJSCFC", price_fen=3800)
        rice = Product(sku="KT0002", name="孟溪红米 1kg", pinyin_initials="MXHM", price_fen=2600)
        s.add_all([tea, rice])
        s.flush()
        kiosk = Kiosk(code="K001", site_name="虎门镇人民医院门诊楼", host_org="虎门镇人民医院",
                      site_type=SiteType.HOSPITAL, town="虎门", address="虎门镇解放路 1 号",
                      location_id=ids["K001"], last_heartbeat_at=utcnow())
        s.add(kiosk)
        s.flush()
        s.add_all([PlanogramSlot(kiosk_id=kiosk.id, slot="A1", product_id=tea.id, par=8, price_fen=3800),
                   PlanogramSlot(kiosk_id=kiosk.id, slot="A2", product_id=rice.id, par=6, price_fen=2600)])
        lots = {}
        for key, product, lot_no, expires in (("old", tea, "T-OLD", TODAY - dt.timedelta(days=1)),
                                              ("good", tea, "T-GOOD", TODAY + dt.timedelta(days=90)),
                                              ("early", tea, "T-EARLY", TODAY + dt.timedelta(days=40)),
                                              ("late", tea, "T-LATE", TODAY + dt.timedelta(days=200)),
                                              ("rice", rice, "R-1", TODAY + dt.timedelta(days=300))):
            lot = Lot(product_id=product.id, lot_no=lot_no, expires_on=expires)
            s.add(lot)
            s.flush()
            lots[key] = lot.id
        for product, qty, to, lot in ((tea, 2, "K001", "old"), (tea, 3, "K001", "good"), (rice, 1, "K001", None),
                                      (tea, 6, "BASE", "early"), (tea, 30, "BASE", "late"),
                                      (rice, 10, "BASE", "rice")):
            move(s, product_id=product.id, qty_milli=qty * P, from_location_id=ids["SUPPLIER"],
                 to_location_id=ids[to], reason=MoveReason.RECEIPT, lot_id=lots[lot] if lot else None)
        ids.update(tea=tea.id, rice=rice.id, **{f"lot_{k}": v for k, v in lots.items()})
    return ids


def level(app, location_id: int, product_id: int) -> int:
    with session_scope(app) as s:
        return ledger.level(s, location_id, product_id)


def lot_level(app, location_id: int, lot_id: int) -> int:
    with session_scope(app) as s:
        return ledger.lot_level(s, location_id, lot_id)


def big_enough(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["height"] >= 44 and box["width"] >= 44


def test_restocker_refills_a_counter_on_the_tablet(app, live_server, tablet_page, chromium, counter_world):
    w = counter_world
    page = tablet_page
    page.on("dialog", lambda dialog: dialog.accept())  # "按拣货单从物流基地装车？" / "结束路线？"
    login_by_password(page, live_server, "liqiang")
    page.wait_for_url(f"{live_server}/counters")
    assert page.locator("h1").inner_text() == "专柜补货路线"
    assert no_horizontal_scroll(page)
    screenshot(page, "refill_routes_empty")

    # --- planning: the counter is listed by urgency, previewed, created -------------------------
    page.get_by_role("link", name="规划新路线").tap()
    page.wait_for_url(re.compile(r"/counters/plan"))
    page.get_by_label("有临期/过期商品").check()
    with page.expect_navigation():
        page.get_by_role("button", name="筛选").tap()
    candidate = page.locator('[data-kiosk="K001"]')
    expect(candidate).to_contain_text("临期批次 1")
    candidate.tap()
    assert page.locator('input[name="kiosk"][value="K001"]').is_checked()
    with page.expect_navigation():
        page.get_by_role("button", name="预览路线").tap()
    preview = page.locator("#preview")
    expect(preview).to_contain_text("补入 10 件 · 下架 2 件")
    expect(preview).to_contain_text("T-OLD")
    assert no_horizontal_scroll(page)
    screenshot(page, "refill_plan_preview")
    with page.expect_navigation():
        page.get_by_role("button", name="创建路线").tap()
    page.wait_for_url(re.compile(r"/counters/routes/\d+$"))
    route_url = page.url
    route_id = int(route_url.rsplit("/", 1)[1])
    assert "待装车" in page.locator("h1").inner_text()
    screenshot(page, "refill_route_planned")

    # --- the pick list: FEFO at the base, not frozen yet; loading freezes it --------------------
    page.get_by_role("link", name="拣货单").tap()
    page.wait_for_url(re.compile(r"/picks$"))
    rows = page.locator("tr[data-pick]")
    assert [r.inner_text().split("\t")[3] for r in rows.all()] == ["T-EARLY", "R-1"]
    assert page.locator("[data-frozen]").get_attribute("data-frozen") == "0"
    assert big_enough(page.get_by_role("button", name="装车"))
    screenshot(page, "refill_picks_before_loading")
    with page.expect_navigation():
        page.get_by_role("button", name="装车").tap()
    expect(page.locator(".flash-success")).to_contain_text("拣货单已冻结")
    assert level(app, w["VAN1"], w["tea"]) == 5 * P and level(app, w["VAN1"], w["rice"]) == 5 * P
    assert level(app, w["BASE"], w["tea"]) == 31 * P and level(app, w["BASE"], w["rice"]) == 5 * P
    page.get_by_role("link", name="拣货单（已冻结）").tap()
    page.wait_for_url(re.compile(r"/picks$"))
    assert page.locator("[data-frozen]").get_attribute("data-frozen") == "1"
    expect(page.locator(".rf-frozen")).to_contain_text("已冻结")
    assert page.get_by_role("button", name="装车").count() == 0
    screenshot(page, "refill_picks_frozen")

    # --- at the counter: count, pull the expired lot, load; a reload keeps the draft -------------
    page.goto(route_url)
    page.locator('[data-stop="K001"]').get_by_role("link", name="去补货").tap()
    page.wait_for_url(re.compile(r"/stops/\d+$"))
    stop_url = page.url
    assert page.locator("form#visit").get_attribute("data-draft-ready") == "1"
    a1, a2 = page.locator('[data-slot="A1"]'), page.locator('[data-slot="A2"]')
    assert a1.locator("[data-par]").inner_text() == "8" and a1.locator("[data-recorded]").inner_text() == "5"
    assert page.locator('input[name="counted-A1"]').input_value() == ""  # a blind count
    assert page.locator('input[name="loaded-A1"]').input_value() == "5"
    expired = a1.locator('[data-lot="T-OLD"]')
    assert expired.locator('input[name$="-qty"]').input_value() == "2"  # expired: the whole lot, prefilled
    assert expired.locator("select").input_value() == "expired"
    assert a1.locator('[data-lot="T-GOOD"] input[name$="-qty"]').input_value() == "0"
    for button in page.locator(".rf-step").all()[:4]:
        assert big_enough(button)
    assert big_enough(page.get_by_role("button", name="确认补货"))
    # one tea is missing from the slot (counted from the book figure down); one rice fewer is loaded
    a1.get_by_role("button", name="货道 A1 与账面一致").tap()
    assert page.locator('input[name="counted-A1"]').input_value() == "5"
    a1.get_by_role("button", name="减一：货道 A1 清点").tap()
    a2.get_by_role("button", name="减一：货道 A2 补入").tap()
    assert page.locator('input[name="counted-A1"]').input_value() == "4"
    assert page.locator('input[name="loaded-A2"]').input_value() == "4"
    page.reload()
    expect(page.locator("[data-draft-notice]")).to_be_visible()
    assert page.locator('input[name="counted-A1"]').input_value() == "4"
    assert page.locator('input[name="loaded-A2"]').input_value() == "4"
    assert no_horizontal_scroll(page)
    screenshot(page, "refill_stop")

    # a typo is refused in Chinese, nothing is written, the entries stay
    page.locator('input[name="counted-A2"]').fill("一")
    with page.expect_navigation():
        page.get_by_role("button", name="确认补货").tap()
    expect(page.locator(".flash-error")).to_contain_text("货道 A2 清点数量必须是整数")
    assert page.locator('input[name="counted-A1"]').input_value() == "4"
    assert level(app, w["K001"], w["tea"]) == 5 * P
    screenshot(page, "refill_stop_error")
    page.locator('input[name="counted-A2"]').fill("1")
    with page.expect_navigation():
        page.get_by_role("button", name="确认补货").tap()
    expect(page.locator(".flash-success")).to_contain_text("专柜 K001 补货已确认")
    screenshot(page, "refill_stop_done")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('refill:')).length") == 0

    # tea: 5 on the books, 4 counted, 2 expired pulled, 5 loaded → 7; rice: 1 + 4 → 5
    assert level(app, w["K001"], w["tea"]) == 7 * P and level(app, w["K001"], w["rice"]) == 5 * P
    assert lot_level(app, w["K001"], w["lot_old"]) == 0
    assert lot_level(app, w["K001"], w["lot_good"]) == 2 * P
    assert lot_level(app, w["K001"], w["lot_early"]) == 5 * P
    assert level(app, w["LOSS"], w["tea"]) == 2 * P
    assert level(app, w["COUNT-ADJ"], w["tea"]) == 1 * P
    assert level(app, w["VAN1"], w["tea"]) == 0 and level(app, w["VAN1"], w["rice"]) == 1 * P
    assert level(app, w["BASE"], w["tea"]) == 31 * P and level(app, w["BASE"], w["rice"]) == 5 * P

    # the same stop confirmed again (a double tap from a stale tab) records nothing
    with session_scope(app) as s:
        from kiosks import refill_visits

        again = refill_visits.record_visit(s, route_id, "K001", actor_id=None,
                                     slots=[{"slot": "A1", "counted_milli": 0, "loaded_milli": 0},
                                            {"slot": "A2", "counted_milli": 0, "loaded_milli": 0}])
        assert again["already"]
    assert level(app, w["K001"], w["tea"]) == 7 * P

    # --- the same page on a phone ----------------------------------------------------------------
    phone = chromium.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", has_touch=True, is_mobile=True)
    try:
        p2 = phone.new_page()
        login_by_password(p2, live_server, "liqiang")
        p2.goto(route_url)
        assert no_horizontal_scroll(p2)
        screenshot(p2, "refill_route_phone")
        p2.goto(stop_url)
        assert no_horizontal_scroll(p2)
        screenshot(p2, "refill_stop_done_phone")
    finally:
        phone.close()

    # --- finish: the rice left in the van goes back to the base ----------------------------------
    page.goto(route_url)
    expect(page.locator("#van-contents")).to_contain_text("孟溪红米 1kg")
    screenshot(page, "refill_route_loaded")
    with page.expect_navigation():
        page.get_by_role("button", name="结束路线（剩余退回基地）").tap()
    expect(page.locator(".flash-success")).to_contain_text("1 件商品已退回物流基地")
    assert level(app, w["VAN1"], w["rice"]) == 0 and level(app, w["BASE"], w["rice"]) == 6 * P
    assert level(app, w["BASE"], w["tea"]) == 31 * P
    with session_scope(app) as s:
        assert s.get(RefillRoute, route_id).status == RefillStatus.DONE
    screenshot(page, "refill_route_done")


def test_phone_stop_page_fits(app, live_server, chromium, counter_world):
    """The counter page before confirmation on a 390×844 phone: no sideways scrolling, big targets."""
    from kiosks import refill_plans, refills

    with session_scope(app) as s:
        route = refill_plans.plan_route(s, kiosk_codes=["K001"], restocker_id=None, van_location_id=counter_world["VAN1"],
                                   today=TODAY)
        refills.load_van(s, route.id, actor_id=None)
        route_id, stop_id = route.id, route.stops[0].id
    phone = chromium.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", has_touch=True, is_mobile=True)
    try:
        page = phone.new_page()
        login_by_password(page, live_server, "liqiang")
        page.goto(f"{live_server}/counters/routes/{route_id}/stops/{stop_id}")
        assert no_horizontal_scroll(page)
        assert big_enough(page.get_by_role("button", name="确认补货"))
        assert big_enough(page.get_by_role("button", name="加一：货道 A1 补入"))
        screenshot(page, "refill_stop_phone")
        page.goto(f"{live_server}/counters/plan")
        assert no_horizontal_scroll(page)
        screenshot(page, "refill_plan_phone")
        page.goto(f"{live_server}/counters/routes/{route_id}/picks")
        assert no_horizontal_scroll(page)
        screenshot(page, "refill_picks_phone")
    finally:
        phone.close()


def test_point17_blind_count_over_capacity_and_refused_slot_on_the_tablet(app, live_server, tablet_page,
                                                                          counter_world):
    """Issue 18 point 17 on a 10-inch tablet (1280×800): counts start empty (a blind count) until
    "same as book" is tapped for a slot or for all; a slot loaded above its capacity is warned
    beside the slot and asked about before saving (cancel saves nothing, confirm saves); a refusal
    names the slot and the page opens scrolled to that slot, highlighted, even far down."""
    from kiosks import refill_plans, refills

    w = counter_world
    with session_scope(app) as s:
        kiosk = s.scalar(select(Kiosk).where(Kiosk.code == "K001"))
        for i in range(3, 9):  # more slots, so that the last one is well below the fold
            product = Product(sku=f"KT00{i:02d}", name=f"松桃苗绣挂件 {i} 号", pinyin_initials="STMXGJ", price_fen=1500)
            s.add(product)
            s.flush()
            s.add(PlanogramSlot(kiosk_id=kiosk.id, slot=f"A{i}", product_id=product.id, par=4, price_fen=1500))
        route = refill_plans.plan_route(s, kiosk_codes=["K001"], restocker_id=None, van_location_id=w["VAN1"], today=TODAY)
        refills.load_van(s, route.id, actor_id=None)
        stop_url = f"{live_server}/counters/routes/{route.id}/stops/{route.stops[0].id}"
    page = tablet_page
    login_by_password(page, live_server, "liqiang")
    page.goto(stop_url)
    assert page.locator("form#visit").get_attribute("data-draft-ready") == "1"
    counted = page.locator('input[name^="counted-"]')
    assert counted.count() == 8 and all(c.input_value() == "" for c in counted.all())  # blind
    assert page.locator('[data-slot="A1"] [data-recorded]').inner_text() == "5"
    screenshot(page, "refill_point17_blind_count")

    # "same as book" for one slot, then for all
    page.get_by_role("button", name="货道 A2 与账面一致").tap()
    assert page.locator('input[name="counted-A2"]').input_value() == "1"
    assert page.locator('input[name="counted-A1"]').input_value() == ""
    assert big_enough(page.get_by_role("button", name="货道 A2 与账面一致"))
    page.get_by_role("button", name="全部与账面一致").tap()
    assert [c.input_value() for c in counted.all()] == ["5", "1", "0", "0", "0", "0", "0", "0"]

    # rice: 3 found in a slot for 6, with 5 to load → 8: warned beside the slot
    page.locator('input[name="counted-A2"]').fill("3")
    warning = page.locator('[data-slot="A2"] [data-over-warning]')
    expect(warning).to_be_visible()
    expect(warning).to_have_text("货道 A2 补入后共 8 件，超过标准容量 6 件")
    expect(page.locator('[data-slot="A1"] [data-over-warning]')).to_be_hidden()
    screenshot(page, "refill_point17_over_capacity_warning")
    page.locator('[data-slot="A2"]').evaluate("el => el.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(SCREENSHOTS / "refill_point17_over_capacity_warning_tablet.png"))  # as the tablet shows it

    # a typo far down the page: refused, naming the slot; the page opens at that slot, highlighted
    page.locator('input[name="counted-A8"]').fill("一")
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    with page.expect_navigation():
        page.get_by_role("button", name="确认补货").tap()
    assert questions and "货道 A2 补入后共 8 件" in questions[0]
    expect(page.locator(".flash-error")).to_contain_text("货道 A8 清点数量必须是整数")
    a8 = page.locator('[data-slot="A8"]')
    expect(a8).to_have_class(re.compile(r"\brf-slot-refused\b"))
    expect(a8.locator(".rf-slot-error")).to_contain_text("货道 A8")
    expect(a8).to_be_in_viewport()
    expect(page.locator('[data-slot="A1"] .rf-slot-name')).not_to_be_in_viewport()
    assert page.evaluate("document.activeElement.name") == "counted-A8"
    assert page.evaluate("window.scrollY") > 0
    assert page.locator(".rf-slot-refused").count() == 1
    assert level(app, w["K001"], w["rice"]) == 1 * P
    page.screenshot(path=str(SCREENSHOTS / "refill_point17_refused_tablet.png"))  # as the tablet shows it
    screenshot(page, "refill_point17_refused")

    # the over-capacity question, declined: nothing is sent
    page.locator('input[name="counted-A8"]').fill("0")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="确认补货").tap()
    page.wait_for_timeout(300)
    assert page.url == stop_url and level(app, w["K001"], w["rice"]) == 1 * P
    expect(page.locator('[data-slot="A2"]')).to_be_in_viewport()

    # accepted: saved, and the server says so again
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="确认补货").tap()
    expect(page.locator(".flash-success")).to_contain_text("专柜 K001 补货已确认")
    expect(page.locator(".flash-warning")).to_contain_text("货道 A2 补入后共 8 件，超过标准容量 6 件")
    assert level(app, w["K001"], w["rice"]) == 8 * P
    screenshot(page, "refill_point17_saved_over_capacity")
