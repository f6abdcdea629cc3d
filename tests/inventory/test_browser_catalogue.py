"""The catalogue pages in a real headless Chromium, as a manager uses them on the hall office PC
(1366×768) and on a 10-inch tablet: import a supplier's spreadsheet (preview, then confirm), find
a product by its pinyin initials, open it and add a barcode; scale-label rules, certificates.

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest

from inventory.localtime import local_today
from tests.conftest import screenshot
from tests.fixtures.browser import heading, login_by_password, no_horizontal_scroll

pytestmark = pytest.mark.browser

HEADER = "商品编码,名称,条码,分类,单位,售价(分),税率,供应商,产地县,产地乡镇,产地村,认定证书编号,证书生效日期,证书失效日期"


def catalogue_file() -> bytes:
    today = local_today()
    valid = (today - dt.timedelta(days=30)).isoformat(), (today + dt.timedelta(days=335)).isoformat()
    soon = (today - dt.timedelta(days=300)).isoformat(), (today + dt.timedelta(days=20)).isoformat()
    rows = [
        HEADER,
        f"ST0001,梅江翠芽茶 250g,6974587045218,茶叶,piece,16800,9,松桃梵净山翠峰茶业有限公司,松桃苗族自治县,正大镇,清水村,黔扶认〔2025〕520628-0031,{valid[0]},{valid[1]}",
        f"ST0002,梵净山红茶 200g,6974587045225,茶叶,piece,9800,9,松桃梵净山翠峰茶业有限公司,松桃苗族自治县,正大镇,清水村,黔扶认〔2025〕520628-0031,{valid[0]},{valid[1]}",
        f"ST0013,松桃红米 2.5kg,6944388039013,粮油米面,piece,6800,9,松桃县孟溪镇红米种植农民专业合作社,松桃苗族自治县,孟溪镇,,黔扶认〔2024〕520628-0107,{soon[0]},{soon[1]}",
        "ST0023,散装松桃红米,,粮油米面,kg,1680,9,松桃县孟溪镇红米种植农民专业合作社,松桃苗族自治县,孟溪镇,,,,",
        "ST0030,湘西腊肉 500g,6967471020514,腊味肉制品,piece,5800,13,花垣县食品有限公司,花垣县,,,,,",
        "ST0045,梵净山蜂蜜 500g,6913828035816,蜂蜜,piece,6800,9,松桃县寨英镇中蜂养殖农民专业合作社,松桃苗族自治县,寨英镇,,,,",
    ]
    return ("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8")


@pytest.fixture
def manager_page(live_server, page, make_user, app, tmp_path):
    app.instance_path = str(tmp_path / "instance")
    make_user("wumei", "manager", display_name="吴梅")
    login_by_password(page, live_server, "wumei")
    return page


def upload_catalogue(page, data: bytes, name: str = "松桃供应商商品表.csv") -> None:
    page.get_by_label("商品表格（CSV 或 Excel .xlsx）").set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
    with page.expect_navigation():
        page.get_by_role("button", name="上传并预览").click()


def test_manager_imports_finds_and_adds_a_barcode(live_server, manager_page):
    page = manager_page
    base = live_server

    # 商品 in the main menu, then the import tab
    with page.expect_navigation():
        page.locator("nav.mainnav").get_by_role("link", name="商品", exact=True).click()
    assert heading(page) == "商品"
    assert page.get_by_text("共 0 个商品").is_visible()
    with page.expect_navigation():
        page.get_by_role("link", name="导入表格").click()
    assert heading(page) == "导入导出"
    assert no_horizontal_scroll(page)
    screenshot(page, "catalogue-import")

    # a file with a mistake first: refused with the row number, nothing to confirm
    bad = catalogue_file().replace(b"6974587045225", b"6974587045226")
    upload_catalogue(page, bad)
    errors = page.locator("#import-errors")
    assert errors.is_visible()
    assert "第 3 行" in errors.inner_text() and "条码校验位错误" in errors.inner_text()
    assert page.get_by_role("button", name="确认导入").count() == 0
    assert no_horizontal_scroll(page)
    screenshot(page, "catalogue-import-refused")

    # the corrected file: a preview, then confirm
    upload_catalogue(page, catalogue_file())
    assert page.locator(".cat-counts").inner_text().split() == ["新建", "6", "更新", "0", "不变", "0"]
    preview = page.locator("#import-preview tbody tr")
    assert preview.count() == 6
    assert "梅江翠芽茶 250g" in preview.first.inner_text()
    assert page.get_by_text("将新建供应商：").is_visible()
    assert no_horizontal_scroll(page)
    screenshot(page, "catalogue-import-preview")
    with page.expect_navigation():
        page.get_by_role("button", name="确认导入").click()
    assert heading(page) == "导入完成"
    assert page.locator('[data-count="created"]').inner_text() == "6"
    screenshot(page, "catalogue-import-result")

    # find 梅江翠芽茶 by the initials of its name
    with page.expect_navigation():
        page.get_by_role("link", name="查看商品").click()
    assert page.locator("#products tbody tr").count() == 6
    search = page.get_by_placeholder("名称、拼音首字母（如 mjc）、商品编码或条码")
    assert page.evaluate("document.activeElement.name") == "q"  # the cursor waits in the search box
    search.press_sequentially("mjc", delay=30)
    with page.expect_navigation():
        search.press("Enter")
    rows = page.locator("#products tbody tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert "梅江翠芽茶 250g" in row and "¥168.00" in row and "★" in row
    assert no_horizontal_scroll(page)
    screenshot(page, "catalogue-search-mjc")

    # open it and add a barcode: a misread one first
    with page.expect_navigation():
        page.get_by_role("link", name="梅江翠芽茶 250g").click()
    assert "梅江翠芽茶 250g" in heading(page)
    assert page.get_by_text("今日为认定的扶贫产品").first.is_visible()
    assert page.get_by_text("黔扶认〔2025〕520628-0031").first.is_visible()
    code = page.get_by_label("新条码")
    code.press_sequentially("6901234567891", delay=15)
    with page.expect_navigation():
        code.press("Enter")
    assert page.locator(".flash-error").is_visible()
    assert "条码校验位错误" in page.locator("#barcodes").inner_text()
    assert "最后一位应为 2" in page.locator("#barcodes").inner_text()
    assert page.get_by_label("新条码").input_value() == "6901234567891"  # kept, to correct one digit
    screenshot(page, "catalogue-barcode-refused")
    field = page.get_by_label("新条码")
    field.fill("6901234567892")
    with page.expect_navigation():
        page.get_by_role("button", name="添加条码").click()
    barcodes = page.locator("#barcodes table").inner_text()
    assert "6974587045218" in barcodes and "6901234567892" in barcodes
    assert page.get_by_text("已添加条码 6901234567892").is_visible()
    assert no_horizontal_scroll(page)
    screenshot(page, "catalogue-product")

    # the new barcode finds it in the list too
    page.goto(f"{base}/catalogue/products?q=6901234567892")
    assert page.locator("#products tbody tr").count() == 1


def test_price_change_and_history_in_the_browser(live_server, manager_page):
    page = manager_page
    page.goto(f"{live_server}/catalogue/import")
    upload_catalogue(page, catalogue_file())
    with page.expect_navigation():
        page.get_by_role("button", name="确认导入").click()
    page.goto(f"{live_server}/catalogue/products?q=ST0045")
    with page.expect_navigation():
        page.get_by_role("link", name="梵净山蜂蜜 500g").click()
    with page.expect_navigation():
        page.get_by_role("link", name="编辑", exact=True).click()
    assert heading(page) == "编辑商品"
    assert no_horizontal_scroll(page)
    price = page.get_by_label("售价（元）")
    assert price.input_value() == "68.00"
    price.fill("六十")
    with page.expect_navigation():
        page.get_by_role("button", name="保存").click()
    assert "金额格式不正确" in page.locator("main").inner_text()
    screenshot(page, "catalogue-edit-refused")
    page.get_by_label("售价（元）").fill("72.5")
    with page.expect_navigation():
        page.get_by_role("button", name="保存").click()
    history = page.locator("#prices tbody tr").first.inner_text()
    assert "吴梅" in history and "¥68.00" in history and "¥72.50" in history
    assert page.locator(".cat-price").inner_text().startswith("¥72.50")

    # retiring asks first; saying no changes nothing
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="停售").click()
    page.wait_for_timeout(300)
    assert "在售" in page.locator("main h1 small").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="停售").click()
    assert "已停售" in page.locator("main h1 small").inner_text()
    assert page.get_by_role("button", name="恢复在售").is_visible()


def test_scale_rules_and_certificates_pages(live_server, manager_page):
    page = manager_page
    page.goto(f"{live_server}/catalogue/import")
    upload_catalogue(page, catalogue_file())
    with page.expect_navigation():
        page.get_by_role("button", name="确认导入").click()

    # give the loose red rice a scale code, then a rule, then scan a label
    page.goto(f"{live_server}/catalogue/products?q=ST0023")
    with page.expect_navigation():
        page.get_by_role("link", name="散装松桃红米").click()
    with page.expect_navigation():
        page.get_by_role("link", name="编辑", exact=True).click()
    page.get_by_label("秤码 PLU").fill("23")
    with page.expect_navigation():
        page.get_by_role("button", name="保存").click()
    assert page.get_by_text("秤码 23").is_visible()

    with page.expect_navigation():
        page.get_by_role("link", name="← 商品").click()
    with page.expect_navigation():
        page.get_by_role("link", name="秤签规则").click()
    page.get_by_label("规则名称").fill("称重秤签")
    page.get_by_label("条码格式").fill("2{PPPPP}{WWWWW}C")
    with page.expect_navigation():
        page.get_by_role("button", name="添加", exact=True).click()
    assert page.locator("#rules").get_by_text("2{PPPPP}{WWWWW}C").is_visible()
    from inventory.scale import encode
    label = encode("2{PPPPP}{WWWWW}C", plu=23, value=1250)
    page.get_by_label("扫描或输入条码").fill(label)
    with page.expect_navigation():
        page.get_by_role("button", name="识别").click()
    result = page.locator(".cat-try-result").inner_text()
    assert "散装松桃红米" in result and "1.250 千克" in result and "¥21.00" in result
    assert no_horizontal_scroll(page)
    screenshot(page, "catalogue-scale-rules")

    # certificates: the one lapsing in 20 days is on the expiring list
    with page.expect_navigation():
        page.locator(".cat-tabs").get_by_role("link", name="认定证书").click()
    assert no_horizontal_scroll(page)
    screenshot(page, "catalogue-certificates")
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile(r"30 天内到期（1）")).click()
    assert page.get_by_text("黔扶认〔2024〕520628-0107").is_visible()
    assert page.get_by_text("还剩 20 天").is_visible()

    # a new certificate, covering a product picked by searching
    with page.expect_navigation():
        page.get_by_role("link", name="新建认定证书").click()
    page.get_by_label("证书编号").fill("黔扶认〔2026〕520628-0200")
    page.get_by_label("认定机构").fill("松桃苗族自治县扶贫开发办公室")
    today = local_today()
    page.get_by_label("生效日期").fill(today.isoformat())
    page.get_by_label("失效日期").fill((today + dt.timedelta(days=365)).isoformat())
    picker = page.get_by_label("搜索商品添加")
    picker.press_sequentially("fjsfm", delay=30)
    pick = page.get_by_role("button", name=re.compile("梵净山蜂蜜 500g"))
    pick.wait_for()
    pick.click()
    assert page.locator('#covered input[name="product_ids"]:checked').count() == 1
    assert no_horizontal_scroll(page)
    screenshot(page, "catalogue-certificate-new")
    with page.expect_navigation():
        page.get_by_role("button", name="保存证书").click()
    assert page.get_by_text("已新建认定证书").is_visible()
    page.goto(f"{live_server}/catalogue/products?q=ST0045")
    assert "★" in page.locator("#products tbody tr").first.inner_text()

    with page.expect_navigation():
        page.locator(".cat-tabs").get_by_role("link", name="供应商").click()
    assert page.locator("#suppliers tbody tr").count() == 4
    assert no_horizontal_scroll(page)
    screenshot(page, "catalogue-suppliers")


def test_product_page_on_the_tablet(live_server, tablet_page, make_user, app, tmp_path):
    page = tablet_page
    app.instance_path = str(tmp_path / "instance")
    make_user("wumei", "manager", display_name="吴梅")
    login_by_password(page, live_server, "wumei")
    page.goto(f"{live_server}/catalogue/import")
    upload_catalogue(page, catalogue_file())
    with page.expect_navigation():
        page.get_by_role("button", name="确认导入").click()
    page.goto(f"{live_server}/catalogue/products?q=ST0013")
    with page.expect_navigation():
        page.get_by_role("link", name="松桃红米 2.5kg").click()
    assert no_horizontal_scroll(page)
    for control in page.locator("main button, main input:not([type=hidden]), main .button").all():
        if control.is_visible():
            assert control.bounding_box()["height"] >= 36, control.evaluate("e => e.outerHTML")[:80]
    screenshot(page, "tablet-catalogue-product")
