"""The manager's catalogue pages over HTTP: who may open them, the products list, creating and
editing a product (prices kept as history), the product page with its barcodes and photo, and the
scale-label rules.

Every page opens for a manager (and an admin) and is refused to a cashier; every mistake a person
can make on a form gets a message in Chinese, status 400, and changes nothing. Suppliers and
certificates are in tests/inventory/test_supplier_pages.py, import and export in
tests/inventory/test_catalogue_import_pages.py; the world (``shop``, ``manager``) is in
tests/fixtures/catalogue.py.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from sqlalchemy import select

from inventory import catalogue, suppliers
from inventory.documents import BarcodeRule
from inventory.localtime import local_today
from inventory.models import AuditEvent, Barcode, Category, PriceChange, Product
from pos.core.db import session_scope
from tests.conftest import csrf_token
from tests.fixtures.catalogue import (  # noqa: F401  (instance_folder, manager, shop: fixtures)
    BAD_EAN,
    GOOD_EAN,
    cert_form,
    count,
    html,
    instance_folder,
    location_path,
    manager,
    png_bytes,
    post,
    product_by_sku,
    read,
    shop,
    supplier_form,
    text_of,
)


# --- who may open the pages --------------------------------------------------------------------

PAGES = [
    "/catalogue/products",
    "/catalogue/products?q=mjc",
    "/catalogue/products/new",
    "/catalogue/products/{tea}",
    "/catalogue/products/{tea}/edit",
    "/catalogue/scale-rules",
    "/catalogue/suppliers",
    "/catalogue/suppliers/new",
    "/catalogue/suppliers/{supplier}",
    "/catalogue/certificates",
    "/catalogue/certificates/expiring",
    "/catalogue/certificates/new",
    "/catalogue/import",
]


def test_every_catalogue_page_opens_for_a_manager(client, manager, shop):
    for path in PAGES:
        response = client.get(path.format(**shop))
        assert response.status_code == 200, path
        assert '<html lang="zh-CN">' in html(response), path


def test_an_admin_may_use_the_catalogue_too(client, auth, make_user, shop):
    make_user("root", "admin")
    auth.login("root")
    assert client.get("/catalogue/products").status_code == 200


@pytest.mark.parametrize("role", ["cashier", "restocker", "auditor"])
def test_other_roles_are_turned_away(client, auth, make_user, shop, role):
    make_user("someone", role)
    auth.login("someone")
    for path in PAGES + ["/catalogue/export.csv", "/catalogue/products/lookup?q=m"]:
        response = client.get(path.format(**shop))
        assert response.status_code == 403, path
        if "lookup" not in path:
            assert "无权访问" in html(response)
    # and a form posted anyway changes nothing
    token = csrf_token(client, "/account")
    response = client.post(f"/catalogue/products/{shop['tea']}/active", data={"csrf_token": token, "active": "0"})
    assert response.status_code == 403
    assert product_by_sku(client.application, "ST0001").active


def test_a_visitor_is_sent_to_the_login(client, shop):
    response = client.get("/catalogue/products")
    assert response.status_code == 302 and location_path(response) == "/login"


# --- the products list -------------------------------------------------------------------------

def test_search_by_pinyin_initials_sku_and_barcode(client, manager, shop):
    page = html(client.get("/catalogue/products?q=mjc"))
    assert "梅江翠茶 250g" in page and "苗家腊肉" not in page
    assert "梅江翠茶 250g" in html(client.get("/catalogue/products?q=ST00"))
    assert "苗家腊肉" in html(client.get("/catalogue/products?q=ST0032"))
    page = html(client.get("/catalogue/products?q=6974587045218"))
    assert "梅江翠茶 250g" in page and "苗家腊肉" not in page
    assert "没有符合条件的商品" in html(client.get("/catalogue/products?q=zzzz"))


def test_list_shows_price_in_yuan_category_filter_and_certified_mark(app, client, manager, shop):
    today = local_today()
    with session_scope(app) as s:
        suppliers.create_certificate(s, number="黔扶认〔2025〕520628-0031", issuer="松桃县扶贫办",
                                     supplier_id=shop["supplier"], valid_from=today - dt.timedelta(days=10),
                                     valid_to=today + dt.timedelta(days=300), product_ids=[shop["tea"]])
    page = html(client.get("/catalogue/products"))
    tea_row = re.search(r'<tr[^>]*data-sku="ST0001".*?</tr>', page, re.S).group(0)
    pork_row = re.search(r'<tr[^>]*data-sku="ST0032".*?</tr>', page, re.S).group(0)
    assert "¥168.00" in tea_row and "★" in tea_row
    assert "¥98.00" in pork_row and "★" not in pork_row and "称重" in pork_row
    filtered = html(client.get(f"/catalogue/products?category={shop['category']}"))
    assert "梅江翠茶" in filtered and "苗家腊肉" not in filtered
    # nonsense in the query string is no error
    assert client.get("/catalogue/products?category=abc&page=-3&status=whatever").status_code == 200
    assert client.get("/catalogue/products?category=99999999999999999999&supplier=-1").status_code == 200


def test_retired_products_leave_the_default_list(app, client, manager, shop):
    with session_scope(app) as s:
        catalogue.set_active(s, shop["pork"], False)
    assert "苗家腊肉" not in html(client.get("/catalogue/products"))
    everything = html(client.get("/catalogue/products?status=all"))
    assert "苗家腊肉" in everything and "已停售" in everything
    from inventory.catalogue_views import CAN_LIST_RETIRED
    if CAN_LIST_RETIRED:
        retired = html(client.get("/catalogue/products?status=retired"))
        assert "苗家腊肉" in retired and "梅江翠茶" not in retired


def test_the_list_pages(app, client, manager):
    with session_scope(app) as s:
        for n in range(1, 121):
            catalogue.create_product(s, sku=f"P{n:04d}", name=f"测试商品{n}", price_fen=100 + n)
    first = html(client.get("/catalogue/products"))
    assert "P0001" in first and "P0051" not in first and "第 1 / 3 页" in first
    third = html(client.get("/catalogue/products?page=3"))
    assert "P0120" in third and "P0001" not in third


# --- creating and editing a product ------------------------------------------------------------

def product_form(**fields) -> dict:
    data = {
        "sku": "ST0100", "name": "松桃红薯粉 1kg", "category_id": "", "new_category": "", "supplier_id": "",
        "unit": "piece", "price": "29.8", "cost": "", "vat": "9", "vat_exemption_code": "", "tax_code": "",
        "shelf_life_days": "365", "scale_plu": "", "origin_county": "", "origin_county_code": "",
        "origin_township": "", "origin_village": "", "barcodes": GOOD_EAN,
    }
    data.update(fields)
    return data


def test_manager_creates_a_product_with_the_price_in_yuan(app, client, manager, shop):
    response = post(client, "/catalogue/products/new",
                    product_form(category_id=str(shop["category"]), supplier_id=str(shop["supplier"]),
                                 cost="19.50", new_category=""))
    assert response.status_code == 302
    product = product_by_sku(app, "ST0100")
    assert location_path(response) == f"/catalogue/products/{product.id}"
    assert product.price_fen == 2980 and product.cost_fen == 1950
    assert product.pinyin_initials.startswith("sthsf")
    assert [b.code for b in product.barcodes] == [GOOD_EAN]
    page = html(client.get(location_path(response)))
    assert "已新建商品 松桃红薯粉 1kg" in page and "¥29.80" in page


def test_a_new_category_can_be_typed_in(app, client, manager):
    response = post(client, "/catalogue/products/new", product_form(new_category="调味酱料", barcodes=""),
                    form_page="/catalogue/products/new")
    assert response.status_code == 302
    assert read(app, lambda s: s.scalar(select(Product).where(Product.sku == "ST0100")).category.name) == "调味酱料"


@pytest.mark.parametrize("fields, message", [
    ({"price": "abc"}, "金额格式不正确"),
    ({"price": "-5"}, "金额不能为负数"),
    ({"price": "1.234"}, "金额最多两位小数"),
    ({"price": ""}, "请输入售价"),
    ({"shelf_life_days": "一年"}, "请输入整数"),
    ({"shelf_life_days": "-3"}, "不能小于 1"),
    ({"scale_plu": "12.5"}, "请输入整数"),
    ({"sku": ""}, "请输入商品编码"),
    ({"sku": "ST0001"}, "已被「梅江翠茶 250g」使用"),
    ({"barcodes": BAD_EAN}, "条码校验位错误"),
    ({"barcodes": "6974587045218"}, "已属于商品「梅江翠茶 250g」"),
    ({"unit": "piece", "sold_by_weight": "y"}, "称重销售的商品单位必须是千克"),
    ({"unit": "box"}, "请从列表中选择"),
    ({"supplier_id": "99999"}, "请从列表中选择"),
    ({"origin_county_code": "52062"}, "行政区划代码为 6 位数字"),
    ({"tax_code": "123"}, "税收分类编码应为 19 位数字"),
])
def test_mistakes_on_the_product_form_are_explained_and_change_nothing(app, client, manager, shop, fields, message):
    products_before = count(app, Product)
    events_before = count(app, AuditEvent)
    response = post(client, "/catalogue/products/new", product_form(**fields))
    assert response.status_code == 400
    assert message in html(response)
    assert 'class="flash flash-error"' in html(response)
    assert count(app, Product) == products_before
    assert count(app, AuditEvent) == events_before
    assert count(app, Category) == 2


def test_a_refused_new_category_is_not_kept_either(app, client, manager, shop):
    response = post(client, "/catalogue/products/new", product_form(new_category="新分类", price="abc"))
    assert response.status_code == 400
    response = post(client, "/catalogue/products/new", product_form(new_category="新分类", sku="ST0001"))
    assert response.status_code == 400
    assert count(app, Category) == 2


def test_a_price_change_on_the_edit_form_is_kept_as_history(app, client, manager, shop):
    path = f"/catalogue/products/{shop['tea']}/edit"
    form_html = html(client.get(path))
    assert 'value="168.00"' in form_html and 'value="6974587045218"' not in form_html  # barcodes in a textarea
    assert "6974587045218" in form_html
    data = product_form(sku="ST0001", name="梅江翠茶 250g", category_id=str(shop["category"]),
                        supplier_id=str(shop["supplier"]), price="158", shelf_life_days="540",
                        barcodes="6974587045218")
    response = post(client, path, data)
    assert response.status_code == 302
    history = read(app, lambda s: s.scalars(select(PriceChange).where(PriceChange.product_id == shop["tea"])).all())
    assert [(h.old_price_fen, h.new_price_fen, h.changed_by_id) for h in history] == [(16800, 15800, manager)]
    events = read(app, lambda s: s.scalars(select(AuditEvent).where(AuditEvent.action == "product.price_change")).all())
    assert len(events) == 1 and json.loads(events[0].after) == {"price_fen": 15800}
    page = client.get(f"/catalogue/products/{shop['tea']}")
    prices = re.search(r'id="prices".*?</section>', html(page), re.S).group(0)
    assert "吴梅" in prices and "¥168.00" in prices and "→ ¥158.00" in prices
    # saving again without a change writes no more history
    assert post(client, path, data).status_code == 302
    assert count(app, PriceChange) == 1


def test_a_refused_edit_keeps_the_old_values(app, client, manager, shop):
    path = f"/catalogue/products/{shop['tea']}/edit"
    response = post(client, path, product_form(sku="ST0001", name="改了名字", price="十二块"))
    assert response.status_code == 400 and "金额格式不正确" in html(response)
    assert 'value="改了名字"' in html(response)  # what was typed stays in the form
    product = product_by_sku(app, "ST0001")
    assert product.name == "梅江翠茶 250g" and product.price_fen == 16800
    assert count(app, PriceChange) == 0


def test_unknown_products_are_404_pages(client, manager, shop):
    for path in ("/catalogue/products/99999", "/catalogue/products/99999/edit", "/catalogue/products/99999/photo",
                 "/catalogue/products/abc", "/catalogue/products/99999999999999999999",
                 "/catalogue/suppliers/99999", "/catalogue/certificates/99999"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "页面不存在" in html(response)
    response = post(client, "/catalogue/products/99999/barcodes", {"bc-code": GOOD_EAN},
                    form_page="/catalogue/products", prefix="bc-")
    assert response.status_code == 404


# --- the product page --------------------------------------------------------------------------

def test_product_page_shows_details_certification_and_stock(app, client, manager, shop):
    from inventory.models import Location, LocationKind, StockLevel

    today = local_today()
    with session_scope(app) as s:
        suppliers.create_certificate(s, number="黔扶认〔2025〕520628-0031", issuer="松桃县扶贫办",
                                     supplier_id=shop["supplier"], valid_from=today,
                                     valid_to=today + dt.timedelta(days=200), product_ids=[shop["tea"]])
        hall = Location(code="HALL", name="卖场", kind=LocationKind.HALL_FLOOR)
        s.add(hall)
        s.flush()
        s.add(StockLevel(location_id=hall.id, product_id=shop["tea"], qty_milli=13000))
    page = html(client.get(f"/catalogue/products/{shop['tea']}"))
    assert "梅江翠茶 250g" in page and "¥168.00" in page and "茶叶" in page
    assert "今日为认定的扶贫产品" in page and "黔扶认〔2025〕520628-0031" in page
    assert f"有效至 {today + dt.timedelta(days=200)}" in page
    assert "松桃苗族自治县 正大镇 清水村" in page  # the supplier's origin
    stock = re.search(r'id="stock".*?</section>', page, re.S).group(0)
    assert "卖场" in stock and ">13<" in stock
    assert "6974587045218" in page and "EAN-13" in page
    pork = html(client.get(f"/catalogue/products/{shop['pork']}"))
    assert "今日未认定" in pork and "秤码 101" in pork


def test_ledger_link_only_when_the_stock_page_exists(app, client, manager, shop):
    page = html(client.get(f"/catalogue/products/{shop['tea']}"))
    if "stock.product_ledger" in app.view_functions:
        assert f'/stock/products/{shop["tea"]}' in page or "库存台账" in page
    else:
        assert "库存台账" not in page


def test_add_and_remove_a_barcode(app, client, manager, shop):
    path = f"/catalogue/products/{shop['tea']}"
    response = post(client, f"{path}/barcodes", {"bc-code": " 6901234567892 "}, form_page=path, prefix="bc-")
    assert response.status_code == 302
    assert sorted(b.code for b in product_by_sku(app, "ST0001").barcodes) == ["6901234567892", "6974587045218"]
    assert "已添加条码 6901234567892" in html(client.get(path))
    internal = post(client, f"{path}/barcodes", {"bc-code": "st-tea-01"}, form_page=path, prefix="bc-")
    assert internal.status_code == 302
    assert "ST-TEA-01" in [b.code for b in product_by_sku(app, "ST0001").barcodes]

    barcode_id = read(app, lambda s: s.scalar(select(Barcode.id).where(Barcode.code == "6901234567892")))
    response = post(client, f"{path}/barcodes/{barcode_id}/remove", {}, form_page=path)
    assert response.status_code == 302
    assert "6901234567892" not in [b.code for b in product_by_sku(app, "ST0001").barcodes]
    # a barcode of another product cannot be removed through this product's page
    pork_path = f"/catalogue/products/{shop['pork']}"
    tea_code = read(app, lambda s: s.scalar(select(Barcode.id).where(Barcode.code == "6974587045218")))
    assert post(client, f"{pork_path}/barcodes/{tea_code}/remove", {}, form_page=pork_path).status_code == 404
    assert count(app, Barcode, Barcode.code == "6974587045218") == 1


@pytest.mark.parametrize("code, message", [
    (BAD_EAN, "条码校验位错误：6901234567891（最后一位应为 2"),
    ("6974587045218", "已有条码"),
    ("", "请输入条码"),
    ("12", "条码只能包含字母、数字和连字符"),
    ("条码", "条码只能包含字母、数字和连字符"),
])
def test_bad_barcodes_are_refused_in_chinese(app, client, manager, shop, code, message):
    path = f"/catalogue/products/{shop['tea']}"
    before = count(app, Barcode)
    response = post(client, f"{path}/barcodes", {"bc-code": code}, form_page=path, prefix="bc-")
    assert response.status_code == 400
    assert message in html(response)
    assert count(app, Barcode) == before


def test_a_barcode_of_another_product_is_refused(app, client, manager, shop):
    path = f"/catalogue/products/{shop['pork']}"
    response = post(client, f"{path}/barcodes", {"bc-code": "6974587045218"}, form_page=path, prefix="bc-")
    assert response.status_code == 400
    assert "已属于商品「梅江翠茶 250g」" in html(response)


def test_retire_and_reactivate(app, client, manager, shop):
    path = f"/catalogue/products/{shop['tea']}"
    response = post(client, f"{path}/active", {"active": "0"}, form_page=path)
    assert response.status_code == 302 and not product_by_sku(app, "ST0001").active
    page = html(client.get(path))
    assert "已停售" in page and "恢复在售" in page
    assert post(client, f"{path}/active", {"active": "1"}, form_page=path).status_code == 302
    assert product_by_sku(app, "ST0001").active
    actions = read(app, lambda s: s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "product")).all())
    assert "product.retire" in actions and "product.reactivate" in actions


def test_nonsense_in_any_field_is_never_a_500(app, client, manager, shop):
    path = f"/catalogue/products/{shop['tea']}"
    junk = ["", "abc", "-1", "0", "99999999999999999999", "1e9", "１２", "<script>", "\x00", "🍵" * 50]
    for value in junk:
        for target, data, prefix in [
            (f"{path}/active", {"active": value}, ""),
            (f"{path}/barcodes", {"bc-code": value}, "bc-"),
            ("/catalogue/products/new", product_form(price=value, shelf_life_days=value, scale_plu=value,
                                                     category_id=value, supplier_id=value, unit=value, vat=value), ""),
            ("/catalogue/products/new", product_form(sku=value, name=value, barcodes=value, new_category=value), ""),
            ("/catalogue/suppliers/new", supplier_form(name=value, credit_code=value, contact_phone=value), ""),
            ("/catalogue/certificates/new", {**cert_form(valid_from=value, supplier_id=value), "product_ids": value}, ""),
            ("/catalogue/certificates/new", cert_form(number=value, issuer=value, skus=value), ""),
            ("/catalogue/scale-rules", {"rule-name": value, "rule-pattern": value, "rule-priority": value}, "rule-"),
        ]:
            response = post(client, target, data, form_page=path, prefix=prefix)
            assert response.status_code in (302, 400), (target, value, response.status_code)
        assert client.get("/catalogue/scale-rules", query_string={"code": value}).status_code in (200, 400)
        ok = 400 if "\x00" in value else 200  # a control character in a query is refused (issue 18.10a)
        assert client.get("/catalogue/products", query_string={"q": value, "page": value, "category": value}).status_code == ok
        assert client.get("/catalogue/products/lookup", query_string={"q": value}).status_code == ok


def test_control_characters_are_refused_in_chinese(app, client, manager, shop):
    response = post(client, "/catalogue/products/new", product_form(name="红薯粉\x00"))
    assert response.status_code == 400 and "不能包含控制字符" in html(response)
    response = client.get("/catalogue/scale-rules", query_string={"code": "2001\x0001005236"})
    assert response.status_code == 400 and "不能包含控制字符" in html(response)


def test_a_form_without_its_csrf_token_is_refused(app, client, manager, shop):
    response = client.post(f"/catalogue/products/{shop['tea']}/active", data={"active": "0"})
    assert response.status_code == 400
    assert "表单已过期" in html(response)
    assert product_by_sku(app, "ST0001").active


def test_photo_upload_takes_only_images(app, client, manager, shop, instance_folder):
    path = f"/catalogue/products/{shop['tea']}"
    response = post(client, f"{path}/photo", {"photo-photo": (io.BytesIO(png_bytes()), "tea.png")},
                    form_page=path, prefix="photo-", content_type="multipart/form-data")
    assert response.status_code == 302
    photo_path = product_by_sku(app, "ST0001").photo_path
    assert photo_path and (instance_folder / photo_path).is_file()
    with client.get(f"{path}/photo") as served:
        assert served.status_code == 200 and served.data == png_bytes()
        assert served.mimetype == "image/png"
    assert f'src="{path}/photo"' in html(client.get(path))

    for name, data, message in [
        ("notes.txt", b"hello", "照片只能是 JPG、PNG、GIF 或 WebP 图片"),
        ("fake.png", b"not really a png", "文件不是可以打开的图片"),
    ]:
        response = post(client, f"{path}/photo", {"photo-photo": (io.BytesIO(data), name)},
                        form_page=path, prefix="photo-", content_type="multipart/form-data")
        assert response.status_code == 400, name
        assert message in html(response), name
        assert product_by_sku(app, "ST0001").photo_path == photo_path
    response = post(client, f"{path}/photo", {}, form_page=path, prefix="photo-", content_type="multipart/form-data")
    assert response.status_code == 400 and "请选择一张照片" in html(response)


def test_an_upload_over_the_limit_gets_a_chinese_page(app, client, manager, shop):
    path = f"/catalogue/products/{shop['tea']}"
    # A smaller limit than the real 5 MB keeps the test client's body in memory (a large one goes
    # to a temporary file that nobody closes when the server refuses to read it).
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    big = b"\0" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = post(client, f"{path}/photo", {"photo-photo": (io.BytesIO(big), "big.png")},
                    form_page=path, prefix="photo-", content_type="multipart/form-data")
    assert response.status_code == 413
    assert "文件太大：最大 256 KB" in html(response)


# --- scale-label rules -------------------------------------------------------------------------

def test_scale_rules_add_try_and_toggle(app, client, manager, shop):
    response = post(client, "/catalogue/scale-rules",
                    {"rule-name": "金额秤签", "rule-pattern": "21{PPPPP}{$$$$$}C", "rule-priority": "5"},
                    prefix="rule-")
    assert response.status_code == 302
    page = html(client.get("/catalogue/scale-rules"))
    assert "21{PPPPP}{$$$$$}C" in page and "2{PPPPP}{WWWWW}C" in page

    # a weight label: PLU 101, 523 g → 523 g of 腊肉 at ¥98.00/kg = ¥51.25 (51.254)
    from inventory.scale import encode
    label = encode("2{PPPPP}{WWWWW}C", plu=101, value=523)
    tried = client.get(f"/catalogue/scale-rules?code={label}")
    assert tried.status_code == 200
    result = text_of(tried)
    assert "苗家腊肉（散称）" in result and "秤签（重量）" in result and "0.523 千克" in result and "¥51.25" in result
    price_label = encode("21{PPPPP}{$$$$$}C", plu=101, value=4900)
    result = text_of(client.get(f"/catalogue/scale-rules?code={price_label}"))
    assert "秤签（金额）" in result and "0.500 千克" in result and "¥49.00" in result
    result = text_of(client.get("/catalogue/scale-rules?code=6974587045218"))
    assert "梅江翠茶 250g" in result and "商品条码" in result
    unknown = client.get("/catalogue/scale-rules?code=1234567")
    assert unknown.status_code == 200 and "未识别" in html(unknown)

    rule_id = read(app, lambda s: s.scalar(select(BarcodeRule.id).where(BarcodeRule.pattern == "2{PPPPP}{WWWWW}C")))
    response = post(client, f"/catalogue/scale-rules/{rule_id}/active", {"active": "0"}, form_page="/catalogue/scale-rules")
    assert response.status_code == 302
    assert not read(app, lambda s: s.get(BarcodeRule, rule_id).active)
    assert "未识别" in html(client.get(f"/catalogue/scale-rules?code={label}"))


@pytest.mark.parametrize("pattern, message", [
    ("2{PPPPP}{WWWWW}", "规则必须以校验位 C 结尾"),
    ("{PPPPPP}{WWWWWW}C", "数字前缀"),
    ("2{PPPP}{WWWW}C", "此规则为 10 位"),
    ("2{PPPPP}{WWWWW}C", "已有相同的规则"),
    ("", "请输入条码格式"),
])
def test_bad_scale_rules_are_refused(app, client, manager, shop, pattern, message):
    before = count(app, BarcodeRule)
    response = post(client, "/catalogue/scale-rules",
                    {"rule-name": "新规则", "rule-pattern": pattern, "rule-priority": "0"}, prefix="rule-")
    assert response.status_code == 400
    assert message in html(response)
    assert count(app, BarcodeRule) == before


def test_a_rule_priority_must_be_a_number(app, client, manager, shop):
    response = post(client, "/catalogue/scale-rules",
                    {"rule-name": "新规则", "rule-pattern": "22{PPPPP}{WWWWW}C", "rule-priority": "高"}, prefix="rule-")
    assert response.status_code == 400 and "请输入整数" in html(response)
    assert count(app, BarcodeRule) == 1


def test_trying_an_empty_code_says_so(client, manager, shop):
    response = client.get("/catalogue/scale-rules?code=")
    assert response.status_code == 400 and "请输入条码" in html(response)
