"""The catalogue's import and export pages over HTTP: a CSV or XLSX previewed then confirmed, a
file with one bad row refused with its row number, files that are not a catalogue, a confirmation
that is not one's own or comes after the catalogue changed, and an export (CSV and XLSX) that
imports back unchanged.

Nothing is written until the preview is confirmed. The world (``shop``, ``manager``) is in
tests/fixtures/catalogue.py."""
from __future__ import annotations

import csv
import io
import re
from urllib.parse import unquote

import pytest
from openpyxl import Workbook, load_workbook

from inventory import catalogue
from inventory.localtime import local_today
from inventory.models import PriceChange, Product
from pos.core.db import session_scope
from tests.fixtures.catalogue import (  # noqa: F401  (instance_folder, manager, shop: fixtures)
    count,
    html,
    instance_folder,
    location_path,
    manager,
    png_bytes,
    post,
    product_by_sku,
    shop,
)


# --- import and export -------------------------------------------------------------------------

HEADER_ZH = "商品编码,名称,条码,分类,单位,售价(分),税率,供应商,产地县,产地乡镇,产地村,认定证书编号,证书生效日期,证书失效日期"


def catalogue_csv(*rows: str, bom: bool = True) -> bytes:
    text = "\r\n".join([HEADER_ZH, *rows]) + "\r\n"
    return ("\ufeff" if bom else "").encode() + text.encode("utf-8")


GOOD_ROWS = (
    "ST0200,梵净山绿茶 100g,6901234567892,茶叶,piece,8800,9,松桃梵净山翠峰茶业有限公司,,,,,,",
    "ST0201,苗家糯米 2.5kg,,粮油米面,piece,6800,9,松桃盘信红米合作社,松桃苗族自治县,盘信镇,,QF-2026-001,2026-01-01,2027-12-31",
    "ST0001,梅江翠茶 250g,6974587045218,茶叶,piece,15800,9,松桃梵净山翠峰茶业有限公司,,,,,,",
)


def upload(client, data: bytes, filename: str = "商品.csv"):
    return post(client, "/catalogue/import", {"imp-file": (io.BytesIO(data), filename)},
                form_page="/catalogue/import", prefix="imp-", content_type="multipart/form-data")


def confirm_token(response) -> str:
    match = re.search(r'name="confirm-token"[^>]*value="([^"]+)"', html(response)) or \
        re.search(r'value="([0-9a-f]{32})"', html(response))
    assert match, "no confirm form"
    return match.group(1)


def test_import_preview_then_confirm(app, client, manager, shop, instance_folder):
    products_before = count(app, Product)
    response = upload(client, catalogue_csv(*GOOD_ROWS))
    assert response.status_code == 200
    page = html(response)
    assert "新建 2" in page and "更新 1" in page
    assert "ST0200" in page and "苗家糯米 2.5kg" in page
    preview_row = re.search(r'<tr class="cat-row-update">.*?</tr>', page, re.S).group(0)
    assert "ST0001" in preview_row and "¥168.00 → ¥158.00" in preview_row
    assert "将新建供应商：松桃盘信红米合作社" in page
    # the preview wrote nothing
    assert count(app, Product) == products_before
    assert product_by_sku(app, "ST0001").price_fen == 16800

    token = confirm_token(response)
    assert (instance_folder / "imports" / f"{token}.bin").is_file()
    response = post(client, "/catalogue/import/confirm", {"confirm-token": token},
                    form_page="/catalogue/import", prefix="confirm-")
    assert response.status_code == 302 and location_path(response) == "/catalogue/import/result"
    result = html(client.get("/catalogue/import/result"))
    assert 'data-count="created">2<' in result and 'data-count="updated">1<' in result
    assert count(app, Product) == products_before + 2
    assert product_by_sku(app, "ST0001").price_fen == 15800
    assert product_by_sku(app, "ST0201").certificates[0].number == "QF-2026-001"
    assert count(app, PriceChange) == 1
    # the kept file is gone, and the same token cannot import twice
    assert not (instance_folder / "imports" / f"{token}.bin").exists()
    again = post(client, "/catalogue/import/confirm", {"confirm-token": token},
                 form_page="/catalogue/import", prefix="confirm-")
    assert again.status_code == 400 and "导入文件已失效，请重新上传" in html(again)


def test_import_xlsx_with_english_headers(app, client, manager, shop):
    book = Workbook()
    sheet = book.active
    sheet.append(["sku", "name", "barcodes", "category", "unit", "price_fen", "vat", "supplier"])
    sheet.append(["ST0300", "松桃红薯粉 1kg", "6901234567892", "粮油米面", "piece", 2980, "9", ""])
    out = io.BytesIO()
    book.save(out)
    response = upload(client, out.getvalue(), "catalogue.xlsx")
    assert response.status_code == 200 and "新建 1" in html(response)
    response = post(client, "/catalogue/import/confirm", {"confirm-token": confirm_token(response)},
                    form_page="/catalogue/import", prefix="confirm-")
    assert response.status_code == 302
    assert product_by_sku(app, "ST0300").price_fen == 2980


def test_import_with_one_bad_row_is_refused_with_its_row_number(app, client, manager, shop):
    rows = list(GOOD_ROWS)
    rows.insert(1, "ST0202,坏条码的商品,6901234567891,茶叶,piece,1000,9,,,,,,,")
    response = upload(client, catalogue_csv(*rows))
    assert response.status_code == 400
    page = html(response)
    errors = re.search(r'id="import-errors".*?</table>', page, re.S).group(0)
    assert "第 3 行" in errors and "条码校验位错误" in errors
    assert "本次没有写入任何内容" in page
    assert 'name="confirm-token"' not in page  # no way to confirm a refused file
    assert product_by_sku(app, "ST0200") is None and product_by_sku(app, "ST0202") is None
    assert product_by_sku(app, "ST0001").price_fen == 16800


@pytest.mark.parametrize("filename, data, message", [
    ("notes.txt", b"hello", "文件不是 CSV 或 Excel 表格"),
    ("photo.csv", png_bytes(), "文件不是 CSV 或 Excel 表格"),
    ("fake.xlsx", b"PK\x03\x04 not really a zip", "文件不是 CSV 或 Excel 表格"),
    ("empty.csv", b"", "文件是空的"),
    ("two-prices.csv", "商品编码,名称,售价,售价(分)\nA1,茶,12.80,1280\n".encode(), "售价只能有一列"),
])
def test_a_file_that_is_not_a_catalogue_is_refused(app, client, manager, shop, filename, data, message):
    before = count(app, Product)
    response = upload(client, data, filename)
    assert response.status_code == 400
    assert message in html(response)
    assert count(app, Product) == before


def test_confirm_refuses_a_token_that_is_not_ones_own(app, client, auth, manager, make_user, shop):
    response = upload(client, catalogue_csv(*GOOD_ROWS))
    token = confirm_token(response)
    auth.logout()
    make_user("mgr2", "manager")
    auth.login("mgr2")
    for bad in (token, "../../secret_key", "0" * 32):
        response = post(client, "/catalogue/import/confirm", {"confirm-token": bad},
                        form_page="/catalogue/import", prefix="confirm-")
        assert response.status_code == 400 and "导入文件已失效" in html(response)
    assert product_by_sku(app, "ST0200") is None


def test_confirm_after_the_catalogue_changed_refuses_and_writes_nothing(app, client, manager, shop):
    response = upload(client, catalogue_csv(*GOOD_ROWS))
    token = confirm_token(response)
    with session_scope(app) as s:  # meanwhile someone gives the new barcode to another product
        catalogue.add_barcode(s, shop["pork"], "6901234567892")
    response = post(client, "/catalogue/import/confirm", {"confirm-token": token},
                    form_page="/catalogue/import", prefix="confirm-")
    assert response.status_code == 400
    assert "已属于商品「苗家腊肉（散称）」" in html(response) and "没有写入任何内容" in html(response)
    assert product_by_sku(app, "ST0200") is None


def filename_of(response) -> str:
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    match = re.search(r"filename\*=UTF-8''([^;]+)", disposition)
    return unquote(match.group(1)) if match else re.search(r'filename="?([^";]+)', disposition).group(1)


def test_export_csv_and_xlsx_download_and_parse(app, client, manager, shop):
    today = local_today().strftime("%Y%m%d")
    response = client.get("/catalogue/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert filename_of(response) == f"商品目录-{today}.csv"
    # and an ASCII name for software that reads only filename=
    assert f'filename="songtao-catalogue-{today}.csv"' in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["商品编码", "名称", "条码"]
    by_sku = {row[0]: row for row in rows[1:]}
    assert by_sku["ST0001"][1] == "梅江翠茶 250g" and by_sku["ST0001"][2] == "6974587045218"
    assert by_sku["ST0032"][4] == "kg" and by_sku["ST0032"][5] == "9800"

    response = client.get("/catalogue/export.xlsx")
    assert response.status_code == 200
    assert filename_of(response) == f"商品目录-{today}.xlsx"
    sheet = load_workbook(io.BytesIO(response.data), read_only=True).worksheets[0]
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "商品编码"
    assert {row[0] for row in values[1:]} == {"ST0001", "ST0032"}

    assert client.get("/catalogue/export.pdf").status_code == 404


def test_an_exported_catalogue_imports_back_unchanged(app, client, manager, shop):
    exported = client.get("/catalogue/export.csv").data
    response = upload(client, exported, "export.csv")
    assert response.status_code == 200
    assert "不变 2" in html(response) and "新建 0" in html(response) and "更新 0" in html(response)
