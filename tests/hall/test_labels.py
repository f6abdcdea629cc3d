"""Shelf labels (明码标价): the products chosen by category, search or ids; the A4 sheet with name,
price and unit, origin, the EAN-13 barcode as SVG and the ★ of certified produce (judged today);
the ESC/POS label sent to a till's printer over a real TCP socket."""
from __future__ import annotations

import datetime as dt
import re
import socket
import threading
from dataclasses import dataclass

import pytest

from inventory.barcodes import ean13
from inventory.localtime import local_today
from inventory.models import Barcode, BarcodeKind, Category, Certificate, Unit
from pos.hall import labels
from pos.models import Till
from tests.conftest import free_port
from tests.fixtures.stock import engine, s, world  # noqa: F401  (fixtures)

TEA_EAN = ean13("697458704521")
PORK_EAN = ean13("694438803901")


@dataclass
class Shelf:
    tea: int
    pork: int
    honey: int
    tea_category: int


@pytest.fixture
def shelf(world, s) -> Shelf:
    tea_cat, meat_cat = Category(name="茶叶"), Category(name="腊肉")
    s.add_all([tea_cat, meat_cat])
    s.flush()
    tea = world.product(s, "梵净山翠峰茶 250g", price_fen=16800)
    tea.category_id = tea_cat.id
    tea.origin_county, tea.origin_township, tea.origin_village = "松桃苗族自治县", "正大镇", "清水村"
    pork = world.product(s, "松桃黑猪腊肉", unit=Unit.KG, sold_by_weight=True, price_fen=3800)
    pork.category_id = meat_cat.id
    honey = world.product(s, "松桃土蜂蜜 500g", price_fen=5800)
    s.add_all([Barcode(product_id=tea.id, code=TEA_EAN, kind=BarcodeKind.EAN13),
               Barcode(product_id=pork.id, code=PORK_EAN, kind=BarcodeKind.EAN13)])
    today = local_today()
    s.add(Certificate(number="黔扶认〔2026〕0001", issuer="贵州省扶贫办", supplier_id=world.supplier_id,
                      valid_from=today - dt.timedelta(days=10), valid_to=today + dt.timedelta(days=300),
                      products=[tea]))
    s.add(Certificate(number="黔扶认〔2020〕0009", issuer="贵州省扶贫办", supplier_id=world.supplier_id,
                      valid_from=dt.date(2020, 1, 1), valid_to=dt.date(2020, 12, 31), products=[honey]))
    s.commit()
    return Shelf(tea.id, pork.id, honey.id, tea_cat.id)


# --- the documents ------------------------------------------------------------------------------

def test_labels_carry_price_unit_origin_barcode_and_todays_certification(s, shelf):
    tea, pork, honey = labels.shelf_labels(s, [shelf.tea, shelf.pork, shelf.honey], local_today())
    assert (tea.name, tea.price_fen, tea.ean13, tea.certified) == ("梵净山翠峰茶 250g", 16800, TEA_EAN, True)
    assert tea.origin == "松桃苗族自治县 · 正大镇 · 清水村" and tea.certificate_no == "黔扶认〔2026〕0001"
    assert pork.origin == "松桃苗族自治县"  # the supplier's, the product has none of its own
    assert pork.unit == "千克" and tea.unit == "件" and not pork.certified
    assert honey.ean13 is None and not honey.certified  # its certificate ran out in 2020


def test_products_are_found_by_ids_category_search_and_barcode(s, shelf):
    assert labels.find_products(s) == []
    assert labels.find_products(s, category_id=shelf.tea_category) == [shelf.tea]
    assert set(labels.find_products(s, q="松桃")) == {shelf.pork, shelf.honey}
    assert labels.find_products(s, q=PORK_EAN) == [shelf.pork]
    assert labels.find_products(s, ids=[shelf.honey, 2**40, -1]) == [shelf.honey]


def test_ean13_svg_is_the_code_itself():
    svg = labels.ean13_svg(TEA_EAN)
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "<?xml" not in svg
    assert TEA_EAN[0] in svg and TEA_EAN[1:7] in svg and TEA_EAN[7:] in svg  # the human-readable digits
    wrong_check = TEA_EAN[:12] + str((int(TEA_EAN[12]) + 1) % 10)
    assert labels.ean13_svg(wrong_check) is None
    assert labels.ean13_svg("12345") is None and labels.ean13_svg(None) is None


@pytest.mark.parametrize("columns", [32, 48])
def test_label_escpos_is_gb18030_text_the_ean13_command_and_a_cut(s, shelf, columns):
    tea, _pork, honey = labels.shelf_labels(s, [shelf.tea, shelf.pork, shelf.honey], local_today())
    data = labels.label_escpos(tea, columns)
    assert data.startswith(b"\x1b@") and b"\x1c&" in data
    assert "★ 梵净山翠峰茶 250g".encode("gb18030") in data
    assert "￥168.00/件".encode("gb18030") in data
    assert "产地：松桃苗族自治县".encode("gb18030") in data
    assert b"\x1dkC\x0d" + TEA_EAN.encode() in data or b"\x1dk\x02" + TEA_EAN.encode() in data  # GS k EAN13
    assert b"\x1dV" in data  # cut
    text = [ln.decode("gb18030") for ln in data.split(b"\n") if b"\x1b" not in ln and b"\x1d" not in ln]
    assert all(sum(1 if ord(c) < 0x80 else 2 for c in ln) <= columns for ln in text)
    plain = labels.label_escpos(honey, columns)
    assert b"\x1dk" not in plain and honey.sku.encode() in plain and "★".encode("gb18030") not in plain


# --- the pages ----------------------------------------------------------------------------------

@pytest.mark.parametrize("role,status", [("manager", 200), ("admin", 200), ("cashier", 403), ("auditor", 403)])
def test_label_pages_are_for_the_catalogue_keepers(client, auth, make_user, role, status):
    make_user("u1", role)
    auth.login("u1")
    assert client.get("/labels").status_code == status
    assert client.get("/labels/sheet?ids=1").status_code == status


def test_the_chooser_and_the_a4_sheet(client, auth, make_user, shelf):
    make_user("mgr", "manager")
    auth.login("mgr")
    chooser = client.get(f"/labels?category={shelf.tea_category}").get_data(as_text=True)
    assert "梵净山翠峰茶 250g" in chooser and "松桃黑猪腊肉" not in chooser
    assert "没有找到商品" in client.get("/labels?q=不存在的东西").get_data(as_text=True)
    sheet = client.get(f"/labels/sheet?ids={shelf.tea}&ids={shelf.pork}&ids={shelf.honey}")
    assert sheet.status_code == 200
    body = sheet.get_data(as_text=True)
    assert "size: A4" in body
    articles = {int(pid): html for html, pid in
                re.findall(r'(<article class="label" data-product-id="(\d+)".*?</article>)', body, re.S)}
    assert len(re.findall(r'<article class="label"', body)) == 3
    tea, pork, honey = articles[shelf.tea], articles[shelf.pork], articles[shelf.honey]
    assert "data-certified" in tea and "★" in tea and "¥168.00" in tea and "/件" in tea
    assert "松桃苗族自治县 · 正大镇 · 清水村" in tea and f'data-ean13="{TEA_EAN}"' in tea and "<svg" in tea
    assert "★" not in pork and "¥38.00" in pork and "/千克" in pork and "<svg" in pork
    assert "★" not in honey and "<svg" not in honey
    for query in ("", "?ids=abc", "?ids=99999999999", "?category=x&q=" + "长" * 500):
        assert client.get("/labels/sheet" + query).status_code == 200


def test_print_to_a_tills_printer_over_tcp(client, auth, make_user, s, shelf, world):
    port = free_port()
    received = bytearray()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)

    def accept():
        conn, _addr = server.accept()
        with conn:
            conn.settimeout(5)
            while chunk := conn.recv(65536):
                received.extend(chunk)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    s.add(Till(code="H1", name="1号收银台", location_id=world.loc["HALL"], printer_uri=f"tcp://127.0.0.1:{port}",
               paper_columns=32))
    s.commit()
    make_user("mgr", "manager")
    auth.login("mgr")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/labels").get_data(as_text=True)).group(1)
    response = client.post("/labels/print", data={"csrf_token": token, "till": "H1", "ids": [shelf.tea, shelf.honey]},
                           follow_redirects=True)
    assert "已发送 2 张标签到 H1 的打印机" in response.get_data(as_text=True)
    thread.join(timeout=5)
    server.close()
    assert "梵净山翠峰茶 250g".encode("gb18030") in received and "松桃土蜂蜜 500g".encode("gb18030") in received
    assert received.count(b"\x1dV") == 2
    # no till, no products: a message, nothing sent
    assert "请选择收银台的打印机" in client.post("/labels/print", data={"csrf_token": token, "till": "Z9"},
                                              follow_redirects=True).get_data(as_text=True)
