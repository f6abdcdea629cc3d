"""The manager's supplier and certificate pages over HTTP: creating and editing a supplier (with
its credit code checked), certificates with their products ticked or typed, editing them (audited),
the ones expiring within 30 days, scan uploads, and the product picker.

Every mistake a person can make on a form gets a message in Chinese, status 400, and changes
nothing. The world (``shop``, ``manager``) is in tests/fixtures/catalogue.py."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from sqlalchemy import select

from inventory import suppliers
from inventory.localtime import local_today
from inventory.models import AuditEvent, Certificate, Supplier
from pos.core.db import session_scope
from tests.fixtures.catalogue import (  # noqa: F401  (instance_folder, manager, shop: fixtures)
    BAD_CREDIT,
    GOOD_CREDIT,
    cert_form,
    count,
    html,
    instance_folder,
    location_path,
    manager,
    post,
    read,
    shop,
    supplier_form,
)


# --- suppliers ---------------------------------------------------------------------------------


def test_create_and_edit_a_supplier(app, client, manager, shop):
    response = post(client, "/catalogue/suppliers/new", supplier_form())
    assert response.status_code == 302 and location_path(response) == "/catalogue/suppliers"
    listing = html(client.get("/catalogue/suppliers"))
    assert "松桃县孟溪镇红米种植农民专业合作社" in listing and "93520628MA6DKQ3X15" in listing
    supplier_id = read(app, lambda s: s.scalar(select(Supplier.id).where(Supplier.credit_code == "93520628MA6DKQ3X15")))
    path = f"/catalogue/suppliers/{supplier_id}"
    assert 'value="孟溪镇"' in html(client.get(path))
    response = post(client, path, supplier_form(origin_village="孟溪村", contact_phone="13900000000"))
    assert response.status_code == 302
    supplier = read(app, lambda s: s.get(Supplier, supplier_id))
    assert supplier.origin_village == "孟溪村" and supplier.contact_phone == "13900000000"
    assert count(app, AuditEvent, AuditEvent.action == "supplier.update") == 1


@pytest.mark.parametrize("fields, message", [
    ({"credit_code": BAD_CREDIT}, "统一社会信用代码校验位错误"),
    ({"credit_code": "1234"}, "统一社会信用代码应为 18 位"),
    ({"credit_code": GOOD_CREDIT}, "已属于供应商「松桃梵净山翠峰茶业有限公司」"),
    ({"name": ""}, "请输入供应商名称"),
    ({"name": "松桃梵净山翠峰茶业有限公司"}, "已有同名供应商"),
    ({"origin_county_code": "5206"}, "行政区划代码为 6 位数字"),
    ({"contact_phone": "call me"}, "联系电话格式不正确"),
])
def test_supplier_mistakes_are_explained_and_change_nothing(app, client, manager, shop, fields, message):
    before = count(app, Supplier)
    response = post(client, "/catalogue/suppliers/new", supplier_form(**fields))
    assert response.status_code == 400
    assert message in html(response)
    assert count(app, Supplier) == before


def test_a_bad_credit_code_on_edit_changes_nothing(app, client, manager, shop):
    path = f"/catalogue/suppliers/{shop['supplier']}"
    response = post(client, path, supplier_form(name="改名了", credit_code=BAD_CREDIT))
    assert response.status_code == 400 and "统一社会信用代码校验位错误" in html(response)
    supplier = read(app, lambda s: s.get(Supplier, shop["supplier"]))
    assert supplier.name == "松桃梵净山翠峰茶业有限公司" and supplier.credit_code == GOOD_CREDIT


# --- certificates ------------------------------------------------------------------------------


def test_create_a_certificate_with_products_ticked_and_typed(app, client, manager, shop):
    data = cert_form(supplier_id=str(shop["supplier"]), skus="ST0032")
    data["product_ids"] = [str(shop["tea"])]
    response = post(client, "/catalogue/certificates/new", data)
    assert response.status_code == 302
    cert = read(app, lambda s: s.scalar(select(Certificate).where(Certificate.number == "黔扶认〔2026〕520628-0100")))
    covered = read(app, lambda s: sorted(p.sku for p in s.get(Certificate, cert.id).products))
    assert covered == ["ST0001", "ST0032"]
    assert location_path(response) == f"/catalogue/certificates/{cert.id}"
    edit = html(client.get(location_path(response)))
    assert 'name="product_ids" value="%d" checked' % shop["tea"] in edit
    assert "★" in html(client.get(f"/catalogue/products/{shop['pork']}"))
    listing = html(client.get("/catalogue/certificates"))
    assert "黔扶认〔2026〕520628-0100" in listing and "有效" in listing


def test_editing_a_certificate_unticks_a_product_and_is_audited(app, client, manager, shop):
    today = local_today()
    with session_scope(app) as s:
        cert = suppliers.create_certificate(s, number="C-1", issuer="松桃县扶贫办", valid_from=today,
                                            valid_to=today + dt.timedelta(days=90),
                                            product_ids=[shop["tea"], shop["pork"]])
        cert_id = cert.id
    data = cert_form(number="C-1", issuer="松桃县扶贫办", valid_to=(today + dt.timedelta(days=120)).isoformat())
    data["product_ids"] = [str(shop["tea"])]
    response = post(client, f"/catalogue/certificates/{cert_id}", data)
    assert response.status_code == 302
    covered = read(app, lambda s: [p.sku for p in s.get(Certificate, cert_id).products])
    assert covered == ["ST0001"]
    event = read(app, lambda s: s.scalar(select(AuditEvent).where(AuditEvent.action == "certificate.update")))
    assert json.loads(event.before)["product_ids"] == sorted([shop["tea"], shop["pork"]])
    assert json.loads(event.after)["valid_to"] == (today + dt.timedelta(days=120)).isoformat()


@pytest.mark.parametrize("fields, message", [
    ({"valid_from": "2026-13-01"}, "日期格式应为 YYYY-MM-DD"),
    ({"valid_to": "明年"}, "日期格式应为 YYYY-MM-DD"),
    ({"valid_from": "2026-06-01", "valid_to": "2026-05-01"}, "失效日期不能早于生效日期"),
    ({"number": ""}, "请输入证书编号"),
    ({"issuer": ""}, "请输入认定机构"),
    ({"skus": "ST0001\nNOPE-1"}, "找不到这些商品编码：NOPE-1"),
    ({"supplier_id": "abc"}, "请从列表中选择"),
])
def test_certificate_mistakes_are_explained_and_change_nothing(app, client, manager, shop, fields, message):
    response = post(client, "/catalogue/certificates/new", cert_form(**fields))
    assert response.status_code == 400
    assert message in html(response)
    assert count(app, Certificate) == 0


def test_a_duplicate_certificate_number_is_refused(app, client, manager, shop):
    assert post(client, "/catalogue/certificates/new", cert_form(skus="ST0001")).status_code == 302
    response = post(client, "/catalogue/certificates/new", cert_form(skus="ST0032"))
    assert response.status_code == 400 and "已存在" in html(response)
    assert count(app, Certificate) == 1


def test_certificates_expiring_within_30_days(app, client, manager, shop):
    today = local_today()
    with session_scope(app) as s:
        suppliers.create_certificate(s, number="SOON-1", issuer="松桃县扶贫办", valid_from=today - dt.timedelta(days=300),
                                     valid_to=today + dt.timedelta(days=12), product_ids=[shop["tea"]])
        suppliers.create_certificate(s, number="LATER-1", issuer="松桃县扶贫办", valid_from=today,
                                     valid_to=today + dt.timedelta(days=200), product_ids=[shop["pork"]])
        suppliers.create_certificate(s, number="GONE-1", issuer="松桃县扶贫办", valid_from=today - dt.timedelta(days=400),
                                     valid_to=today - dt.timedelta(days=2), product_ids=[shop["pork"]])
    page = html(client.get("/catalogue/certificates/expiring"))
    assert "SOON-1" in page and "还剩 12 天" in page
    assert "LATER-1" not in page and "GONE-1" not in page
    everything = html(client.get("/catalogue/certificates"))
    assert "30 天内到期（1）" in everything and "已过期" in everything


def test_certificate_scan_upload(app, client, manager, shop, instance_folder):
    today = local_today()
    with session_scope(app) as s:
        cert_id = suppliers.create_certificate(s, number="C-2", issuer="松桃县扶贫办", valid_from=today,
                                               valid_to=today, product_ids=[]).id
    path = f"/catalogue/certificates/{cert_id}"
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    response = post(client, f"{path}/scan", {"scan-scan": (io.BytesIO(pdf), "证书.pdf")}, form_page=path,
                    prefix="scan-", content_type="multipart/form-data")
    assert response.status_code == 302
    with client.get(f"{path}/scan") as scan:
        assert scan.status_code == 200 and scan.data == pdf and scan.mimetype == "application/pdf"
    response = post(client, f"{path}/scan", {"scan-scan": (io.BytesIO(b"MZ\x90\x00"), "virus.exe")}, form_page=path,
                    prefix="scan-", content_type="multipart/form-data")
    assert response.status_code == 400 and "扫描件只能是 PDF 或图片" in html(response)
    response = post(client, f"{path}/scan", {"scan-scan": (io.BytesIO(b"GIF89a...."), "fake.pdf")}, form_page=path,
                    prefix="scan-", content_type="multipart/form-data")
    assert response.status_code == 400 and "扫描件只能是 PDF 或图片" in html(response)
    assert read(app, lambda s: s.get(Certificate, cert_id).scan_path).endswith(".pdf")


def test_product_lookup_for_the_certificate_picker(client, manager, shop):
    data = client.get("/catalogue/products/lookup?q=mjc").get_json()
    assert [item["sku"] for item in data["items"]] == ["ST0001"]
    assert client.get("/catalogue/products/lookup").get_json() == {"items": []}
