"""Group purchases (团购) in a real headless Chromium, as the issue's "done means" says: a manager
creates a government canteen as buyer, enters its order through the new-order form, confirms,
picks, delivers and records the bank transfer, and then finds the order's total in the
consumption-collaboration statistics under 机关饭堂团购 for the delivery's day. The pages fit the
till screen (1366×768) and the 10-inch tablet, and the delivery note prints on A4.

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from inventory.localtime import local_today
from inventory.money import format_yuan
from pos.group.models import Buyer, GroupOrder
from pos.models import Sale
from tests.conftest import screenshot
from tests.fixtures.browser import heading, login_by_password, no_horizontal_scroll
from tests.fixtures.group import GOOD_USCC, RICE, TEA, TEA_BARCODE, hall, level, read  # noqa: F401  (hall: fixture)

pytestmark = pytest.mark.browser

ORDER_TOTAL = 5 * 6800 + 3200    # 5 tea at ¥68.00 and 2.5 kg rice at ¥12.80


@pytest.fixture
def manager_page(live_server, page, make_user, hall):  # noqa: F811
    make_user("wumei", "manager", display_name="吴梅")
    login_by_password(page, live_server, "wumei")
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def submit(page, button_name: str, scope=None) -> None:
    with page.expect_navigation():
        (scope or page).get_by_role("button", name=button_name, exact=True).click()


def success(page) -> str:
    return " ".join(page.locator(".flash-success").all_inner_texts())


def test_a_canteen_order_from_entry_to_the_collaboration_statistics(app, live_server, manager_page, tablet_page, hall):  # noqa: F811
    page = manager_page

    # --- the canteen, through the buyer form -----------------------------------------------------
    page.get_by_role("navigation", name="主菜单").get_by_role("link", name="团购").click()
    page.wait_for_url(f"{live_server}/group")
    assert heading(page) == "团购订单"
    page.get_by_role("link", name="买方单位").first.click()
    page.get_by_role("link", name="新建买方单位").click()
    page.get_by_label("单位名称").fill("东莞市滨海湾新区管委会机关饭堂")
    page.get_by_label("单位类型").select_option(label="机关饭堂")
    page.get_by_label("统一社会信用代码").fill(GOOD_USCC)
    page.get_by_label("镇街").fill("滨海湾新区")
    page.get_by_label("地址（默认送货地址）").fill("滨海湾新区管委会大楼 B 座负一楼厨房")
    page.get_by_label("联系人", exact=True).fill("黄师傅")
    page.get_by_label("联系电话").fill("13922900000")
    page.get_by_label("发票抬头").fill("东莞滨海湾新区管理委员会")
    assert no_horizontal_scroll(page)
    submit(page, "保存")
    assert "已保存" in success(page)
    buyer_id = read(app, lambda s: s.scalar(select(Buyer.id).where(Buyer.name == "东莞市滨海湾新区管委会机关饭堂")))
    assert page.url == f"{live_server}/group/buyers/{buyer_id}"

    # --- the order, through the new-order form --------------------------------------------------
    page.get_by_role("link", name="新建订单").first.click()
    page.wait_for_url(re.compile(r"/group/new\?buyer=\d+$"))
    assert page.get_by_label("买方单位").input_value() == str(buyer_id)
    assert page.get_by_label("送货地址").input_value() == "滨海湾新区管委会大楼 B 座负一楼厨房"
    assert page.get_by_label("送货日期").input_value() == (local_today() + dt.timedelta(days=1)).isoformat()
    # choosing another buyer and back brings that buyer's address along (the field was not typed in)
    page.get_by_label("买方单位").select_option(str(hall.canteen))
    assert page.get_by_label("送货地址").input_value() == "虎门镇银龙路 1 号"
    page.get_by_label("买方单位").select_option(str(buyer_id))
    assert page.get_by_label("送货地址").input_value() == "滨海湾新区管委会大楼 B 座负一楼厨房"
    page.locator('input[name="lines-0-product"]').fill(TEA_BARCODE)
    page.locator('input[name="lines-0-product"]').dispatch_event("change")
    page.locator('input[name="lines-0-qty"]').fill("5")
    page.locator('input[name="lines-1-product"]').fill(RICE)
    page.locator('input[name="lines-1-qty"]').fill("2.5")
    page.wait_for_function("document.querySelectorAll('.stk-hint')[0].textContent.includes('松桃绿茶')")
    # half a box of tea is refused on its line, and nothing is saved
    page.locator('input[name="lines-0-qty"]').fill("5.5")
    submit(page, "保存草稿")
    assert "按件销售的商品数量必须是整数" in page.locator("tr[data-line]").nth(0).inner_text()
    assert read(app, lambda s: s.scalar(select(GroupOrder.id))) is None
    page.locator('input[name="lines-0-qty"]').fill("5")
    assert no_horizontal_scroll(page)
    screenshot(page, "group-order-new")
    submit(page, "保存草稿")
    assert "已保存为草稿" in success(page)
    order = read(app, lambda s: s.scalars(select(GroupOrder)).one())
    assert page.url == f"{live_server}/group/{order.id}"
    expect(page.locator('[data-money="ordered"]')).to_have_text(format_yuan(ORDER_TOTAL))

    # --- confirm, pick, deliver, pay -----------------------------------------------------------------
    submit(page, "确认", page.locator("#confirm-form"))
    assert "已确认" in success(page)
    assert level(app, "BASE", hall.tea) == (24000, 5000)
    submit(page, "拣货出库", page.locator("#pick-form"))
    assert "已拣货出库" in success(page)
    assert level(app, "BASE", hall.tea) == (19000, 0)
    deliver = page.locator("#deliver-form")
    assert deliver.locator('input[name^="qty-"]').nth(1).input_value() == "2.500"
    deliver.get_by_label("收货人").fill("黄师傅")
    assert no_horizontal_scroll(page)
    screenshot(page, "group-order-picked")
    submit(page, "确认送货", deliver)
    assert "已送货" in success(page)
    sale = read(app, lambda s: s.scalars(select(Sale).where(Sale.group_order_id == order.id)).one())
    assert sale.total_fen == ORDER_TOTAL
    expect(page.locator("main h1 [data-status]")).to_have_text("已送达")
    # what the canteen owes now, on the open balances
    page.get_by_role("link", name="应收余额").click()
    owed = page.locator(f'#balances tr[data-buyer="{buyer_id}"]')
    assert owed.locator("[data-balance]").get_attribute("data-balance") == str(ORDER_TOTAL)
    assert no_horizontal_scroll(page)
    screenshot(page, "group-balances")
    page.go_back()
    pay = page.locator("#pay-form")
    assert pay.get_by_label("金额（元）").input_value() == f"{ORDER_TOTAL // 100}.{ORDER_TOTAL % 100:02d}"
    pay.get_by_label("银行转账流水号").fill("ICBC-0769-20261126-001")
    submit(page, "登记收款", pay)
    assert "已登记收款" in success(page)
    expect(page.locator("main h1 [data-status]")).to_have_text("已结清")
    expect(page.locator('[data-money="balance"]')).to_have_text("¥0.00")
    assert page.locator("#payments").get_by_text("ICBC-0769-20261126-001").is_visible()
    assert no_horizontal_scroll(page)
    screenshot(page, "group-order-paid")
    page.goto(f"{live_server}/group")
    assert page.locator(f'#orders tr[data-order="{order.order_no}"] [data-status]').inner_text() == "已结清"
    assert no_horizontal_scroll(page)
    screenshot(page, "group-orders")
    page.goto(f"{live_server}/group/buyers/{buyer_id}")
    assert no_horizontal_scroll(page)
    screenshot(page, "group-buyer")
    page.goto(f"{live_server}/group/{order.id}")

    # --- the printable order confirmation: the certified mark and its legend ----------------------
    page.get_by_role("link", name="订单确认单").click()
    page.wait_for_url(f"{live_server}/group/{order.id}/confirmation")
    sheet = page.locator("#order-confirmation")
    assert "★" in sheet.locator(f'tr[data-sku="{TEA}"]').inner_text()
    assert "★ 认定的扶贫产品" in sheet.inner_text() and "东莞滨海湾新区管理委员会" in sheet.inner_text()
    assert no_horizontal_scroll(page)
    screenshot(page, "group-confirmation")
    page.go_back()

    # --- the order page on the 10-inch tablet ----------------------------------------------------
    login_by_password(tablet_page, live_server, "wumei")
    tablet_page.goto(f"{live_server}/group/{order.id}")
    assert no_horizontal_scroll(tablet_page)
    screenshot(tablet_page, "group-order-tablet")

    # --- the delivery note, on screen and printed on A4 ------------------------------------------
    page.locator("#deliveries").get_by_role("link", name=sale.receipt_no).click()
    page.wait_for_url(f"{live_server}/group/deliveries/{sale.id}")
    note = page.locator("#delivery-note")
    assert sale.receipt_no in note.inner_text() and order.order_no in note.inner_text()
    assert "★" in note.locator(f'tr[data-sku="{TEA}"]').inner_text()
    assert "★" not in note.locator(f'tr[data-sku="{RICE}"]').inner_text()
    assert no_horizontal_scroll(page)
    screenshot(page, "group-delivery-note")
    page.emulate_media(media="print")
    assert not page.locator("header.topbar").is_visible()
    assert not page.get_by_role("button", name="打印").is_visible()
    page.set_viewport_size({"width": 794 - 2 * 45, "height": 1123})   # A4 inside 12 mm margins
    assert no_horizontal_scroll(page)
    screenshot(page, "group-delivery-note-print")
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1366, "height": 768})

    # --- the collaboration statistics: the order under 机关饭堂团购 on the delivery's day ----------
    day = sale.local_date.isoformat()
    page.goto(f"{live_server}/reports/collaboration?from={day}&to={day}")
    row = page.locator('#buyer-table tr[data-buyer-type="canteen"]')
    assert row.locator("th").inner_text() == "机关饭堂团购"
    assert row.locator("td").first.inner_text() == format_yuan(ORDER_TOTAL)
    # of which certified: the tea
    assert row.locator("td").nth(1).inner_text() == format_yuan(5 * 6800)
    assert page.locator('#buyer-table tr[data-buyer-type="union"] td').first.inner_text() == format_yuan(0)
    screenshot(page, "group-collaboration")
