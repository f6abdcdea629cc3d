"""A buyer's order spreadsheet (XLSX, CSV in UTF-8 with or without BOM, GB18030) read into order
lines: the header found among the top rows by its Chinese or English names, products by code,
barcode or name, quantities in the product's unit, agreed prices in yuan to the fen exactly, the
same product merged only when its prices agree, and every problem with its Excel row number.
Nothing is written."""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from openpyxl import Workbook
from PIL import Image
from sqlalchemy import func, select

from inventory import catalogue
from inventory.models import AuditEvent, Unit
from inventory.money import format_plain_yuan, format_yuan
from pos.group import buyers
from pos.group import orders as group_orders
from pos.core.errors import NotFound
from pos.group.order_import import MAX_ROWS, SheetPreview, SheetRow, parse_order_sheet
from pos.group.models import Buyer, GroupOrder, GroupOrderLine
from pos.group.orders import OrderLineIn

TEA_EAN = "6901234567892"
HEADER = ["商品编码", "品名", "数量", "单价"]


# --- building files -------------------------------------------------------------------------------

def xlsx_bytes(rows) -> bytes:
    """A workbook whose first sheet has ``rows`` from row 1 (``[]`` is a blank row); cells keep
    their Python types (int, float, str) as Excel would store them."""
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(rows, *, encoding="utf-8", bom=False) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    text = buffer.getvalue()
    return (("\ufeff" if bom else "") + text).encode(encoding)


def sheet(rows, fmt="xlsx") -> tuple[str, bytes]:
    if fmt == "xlsx":
        return "订货单.xlsx", xlsx_bytes(rows)
    return "订货单.csv", csv_bytes([["" if v is None else v for v in row] for row in rows])


@pytest.fixture
def shop(session):
    """A canteen that buys, and the catalogue it orders from: tea (pieces, with a barcode), rice
    (pieces), pork (per kg), a product no longer sold, and two products of the same name."""
    canteen = buyers.create_buyer(session, buyers.BuyerIn(name="虎门镇政府机关饭堂", buyer_type="canteen"),
                                  actor_id=None)
    made = {
        "tea": catalogue.create_product(session, sku="ST0001", name="梅江茶 250g", price_fen=3800,
                                        barcodes=[TEA_EAN]),
        "rice": catalogue.create_product(session, sku="ST0002", name="松桃红米 2.5kg", price_fen=6800),
        "pork": catalogue.create_product(session, sku="ST0003", name="松桃腊肉", price_fen=9800, unit=Unit.KG,
                                         sold_by_weight=True),
        "old": catalogue.create_product(session, sku="ST0009", name="旧款绿茶", price_fen=2000),
        "egg1": catalogue.create_product(session, sku="ST0004", name="土鸡蛋", price_fen=1500),
        "egg2": catalogue.create_product(session, sku="ST0005", name="土鸡蛋", price_fen=1600),
    }
    catalogue.set_active(session, made["old"].id, False)
    session.commit()

    class Shop:
        buyer_id = canteen.id
        ids = {key: p.id for key, p in made.items()}

        def parse(self, rows, fmt="xlsx") -> SheetPreview:
            filename, data = sheet(rows, fmt)
            return parse_order_sheet(session, buyer_id=canteen.id, data=data, filename=filename)

        def lines(self, preview) -> list[tuple[str, int, int | None]]:
            by_id = {v: k for k, v in self.ids.items()}
            return [(by_id[ln.product_id], ln.qty_milli, ln.unit_price_fen) for ln in preview.lines]

    return Shop()


def only_error(preview: SheetPreview) -> str:
    assert not preview.ok
    assert len(preview.errors) == 1, preview.errors
    return preview.errors[0]


# --- the header ---------------------------------------------------------------------------------

@pytest.mark.parametrize("header, code", [
    (["商品编码", "品名", "数量", "单价"], "ST0001"),
    (["编码", "商品名称", "数量", "价格"], "ST0001"),
    (["货号", "名称", "数量", "协议价"], "ST0001"),
    (["SKU", "Name", "Qty", "Price"], "ST0001"),
    (["sku", "name", "quantity", "price"], "ST0001"),
    (["条码", "品名", "数量", "单价"], TEA_EAN),
    (["条形码", "品名", "数量", "单价"], TEA_EAN),
    (["Barcode", "品名", "QTY", "单价"], TEA_EAN),
    ([" 商品编码 ", "品 名", "数量（件）", "单价(元)"], "ST0001"),      # spaces, units in full-width brackets
    (["*商品编码", "品名", "订购数量", "协议单价"], "ST0001"),
])
@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_header_synonyms(shop, header, code, fmt):
    preview = shop.parse([header, [code, "梅江茶", 3, "36.00"]], fmt)
    assert preview.ok, preview.errors
    assert shop.lines(preview) == [("tea", 3000, 3600)]


def test_a_name_column_alone_finds_the_product_by_its_exact_name(shop):
    preview = shop.parse([["品名", "数量"], ["梅江茶 250g", 2], ["松桃腊肉", "1.5"]])
    assert shop.lines(preview) == [("tea", 2000, None), ("pork", 1500, None)]
    assert preview.ok


def test_header_below_a_title_and_blank_rows_and_row_numbers_as_excel_shows_them(shop):
    preview = shop.parse([
        ["虎门镇政府机关饭堂 11 月团购订货单"],
        ["订货单位：", "虎门镇政府机关饭堂", "联系人：", "陈师傅"],
        [],
        ["序号", "商品编码", "品名", "规格", "单位", "数量", "单价(元)", "金额", "备注"],
        [1, "ST0001", "梅江茶", "250g", "盒", 10, 36, 360, ""],
        [],
        [2, "ST0003", "腊肉", "", "kg", 2.5, None, None, "周五前送"],
        [3, "NOPE-1", "不知道", "", "", 1, None, None, ""],
        [4, None, None, None, None, None, None, None, None],       # a numbered empty template row
    ])
    assert shop.lines(preview) == [("tea", 10000, 3600), ("pork", 2500, None)]
    assert [r.row_no for r in preview.rows] == [5, 7, 8]
    assert preview.errors == ["第 8 行「商品编码」：找不到商品编码 NOPE-1"]
    assert not preview.ok
    first = preview.rows[0]
    assert first == SheetRow(row_no=5, code="ST0001", name="梅江茶", qty_text="10", price_text="36",
                             product_id=shop.ids["tea"], product_name="梅江茶 250g", qty_milli=10000,
                             unit_price_fen=3600, error=None)
    assert preview.rows[2].error == "找不到商品编码 NOPE-1" and preview.rows[2].product_id is None


@pytest.mark.parametrize("rows, fragment", [
    ([["梅江茶订货单"], ["你好"], ["ST0001", 3]], "找不到列名"),
    ([["商品编码", "品名", "单价"], ["ST0001", "梅江茶", 36]], "第 1 行的列名中缺少「数量」列"),
    ([["数量", "单价", "备注"], [3, 36, ""]], "缺少「商品编码」、「条码」或「品名」列"),
    ([["编码", "商品编码", "数量"], ["ST0001", "ST0001", 3]], "列名重复：商品编码"),
    ([["商品编码", "数量", "单价(分)"], ["ST0001", 3, 3600]], "不要以分为单位"),
    ([["商品编码", "数量", "单价（元/斤）"], ["ST0003", 3, 20]], "每千克的价格"),
    ([*([["标题"]] * 10), HEADER, ["ST0001", "梅江茶", 3, 36]], "找不到列名"),   # not within the top 10 rows
])
def test_no_usable_header(shop, rows, fragment):
    preview = shop.parse(rows)
    assert fragment in only_error(preview)
    assert preview.rows == [] and preview.lines == []


def test_a_header_below_nine_other_rows_is_still_found(shop):
    preview = shop.parse([*([["标题"]] * 9), HEADER, ["ST0001", "梅江茶", 3, 36]])
    assert preview.ok and preview.rows[0].row_no == 11


# --- encodings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding, bom", [("utf-8", True), ("utf-8", False), ("gb18030", False)])
def test_csv_encodings(shop, session, encoding, bom):
    rows = [["团购订货单（松桃馆）"], HEADER, ["", "梅江茶 250g", "3", "¥36.00"], ["ST0003", "腊肉", "1.250", ""],
            ["", "苗家酸汤", "1", ""]]
    data = csv_bytes(rows, encoding=encoding, bom=bom)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")  # really GB18030, not UTF-8 that happens to fit
    preview = parse_order_sheet(session, buyer_id=shop.buyer_id, data=data, filename="order.csv")
    assert shop.lines(preview) == [("tea", 3000, 3600), ("pork", 1250, None)]
    assert preview.errors == ["第 5 行「品名」：找不到商品「苗家酸汤」，请填写商品编码或条码"]


# --- quantities and prices --------------------------------------------------------------------------

@pytest.mark.parametrize("cells, expected", [
    (["ST0003", "1.250", ""], ("pork", 1250, None)),          # text, kg with 3 decimals
    (["ST0003", 1.25, None], ("pork", 1250, None)),           # a number cell
    (["ST0003", "2.5kg", None], ("pork", 2500, None)),        # the unit written in the cell
    (["ST0003", "0.005", None], ("pork", 5, None)),           # 5 g
    (["ST0001", 12, None], ("tea", 12000, None)),
    (["ST0001", 12.0, None], ("tea", 12000, None)),           # a whole number stored as a float
    (["ST0001", "1,200", None], ("tea", 1200000, None)),      # thousands separators
    (["ST0001", "12", 12.5], ("tea", 12000, 1250)),           # a float price cell: exactly 1250 fen
    (["ST0001", "12", 0.1], ("tea", 12000, 10)),
    (["ST0001", "12", 19.99], ("tea", 12000, 1999)),
    (["ST0001", "12", "¥38.00"], ("tea", 12000, 3800)),
    (["ST0001", "12", "￥1,280.50"], ("tea", 12000, 128050)),
    (["ST0001", "12", "38元"], ("tea", 12000, 3800)),
    (["ST0001", "12", 38], ("tea", 12000, 3800)),
    (["ST0001", "12", "0"], ("tea", 12000, 0)),
])
@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_quantities_and_prices(shop, cells, expected, fmt):
    preview = shop.parse([["商品编码", "数量", "单价"], cells], fmt)
    assert preview.ok, preview.errors
    assert shop.lines(preview) == [expected]
    assert preview.rows[0].qty_milli == expected[1] and preview.rows[0].unit_price_fen == expected[2]


@pytest.mark.parametrize("cells, fragment", [
    (["ST0001", "2.5", None], "按件销售的商品数量必须是整数"),
    (["ST0001", 2.5, None], "按件销售的商品数量必须是整数"),
    (["ST0003", "1.2345", None], "数量最多三位小数"),
    (["ST0001", "0", None], "数量必须大于零"),
    (["ST0001", "-3", None], "数量必须大于零"),
    (["ST0001", "", None], "请输入数量"),
    (["ST0001", "3箱", None], "数量格式不正确"),               # a case of how many? refused, not 3 pieces
    (["ST0001", "1e3", None], "数量格式不正确"),
    (["ST0001", "3", "12.345"], "金额最多两位小数"),
    (["ST0001", "3", 12.345], "金额最多两位小数"),
    (["ST0001", "3", "0.30000000000000004"], "金额最多两位小数"),  # text is what the person sees
    (["ST0001", "3", "-5"], "金额不能为负数"),
    (["ST0001", "3", "三十"], "金额格式不正确"),
    (["ST0001", "3", "1000001"], "单价太大"),
    (["ST0003", "3斤", None], "按千克称重销售"),                # 斤 is half a kilogram: refused, not converted
    (["ST0001", "3kg", None], "按件销售，数量请填件数"),
])
@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_bad_quantities_and_prices(shop, cells, fragment, fmt):
    preview = shop.parse([["商品编码", "数量", "单价"], cells], fmt)
    message = only_error(preview)
    assert message.startswith("第 2 行") and fragment in message, message
    assert preview.lines == [] and preview.rows[0].error and fragment in preview.rows[0].error


def excel_saved(data: bytes, cells: dict[str, str]) -> bytes:
    """The workbook as Excel saves it: number cells with all 17 digits of the double (openpyxl
    writes 16, which hides the binary noise of a formula's result)."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                for short, full in cells.items():
                    assert f"<v>{short}</v>".encode() in content
                    content = content.replace(f"<v>{short}</v>".encode(), f"<v>{full}</v>".encode())
            target.writestr(item, content)
    return out.getvalue()


def test_number_cells_are_read_as_excel_shows_them(shop, session):
    """=3*1.1 is saved as 3.3000000000000003 and shown as 3.30: 330 fen; =0.1*3 kg is 0.3 kg.
    A price really typed with three decimals is still refused."""
    data = excel_saved(xlsx_bytes([["商品编码", "数量", "单价"], ["ST0001", 2, 3.3], ["ST0003", 0.3, 12.5]]),
                       {"3.3": "3.3000000000000003", "0.3": "0.30000000000000004"})
    preview = parse_order_sheet(session, buyer_id=shop.buyer_id, data=data, filename="x.xlsx")
    assert preview.ok, preview.errors
    assert shop.lines(preview) == [("tea", 2000, 330), ("pork", 300, 1250)]
    data = excel_saved(xlsx_bytes([["商品编码", "数量", "单价"], ["ST0001", 2, 3.3]]), {"3.3": "3.345"})
    preview = parse_order_sheet(session, buyer_id=shop.buyer_id, data=data, filename="x.xlsx")
    assert "金额最多两位小数" in only_error(preview)


@pytest.mark.parametrize("unit, fragment", [
    ("斤", "按千克称重销售"), ("克", "按千克称重销售"), ("g", "按千克称重销售"), ("件", "按千克称重销售"),
    ("kg", None), ("公斤", None), ("千克", None), ("", None),
])
def test_the_unit_column_is_informational_but_a_contradicting_unit_is_refused(shop, unit, fragment):
    preview = shop.parse([["商品编码", "单位", "数量"], ["ST0003", unit, "2"]])
    if fragment is None:
        assert preview.ok and shop.lines(preview) == [("pork", 2000, None)]
    else:
        assert fragment in only_error(preview) and "「单位」" in preview.errors[0]


def test_a_unit_in_the_quantity_header_applies_to_its_rows(shop):
    preview = shop.parse([["商品编码", "数量(斤)"], ["ST0003", 4]])
    assert "按千克称重销售" in only_error(preview)
    preview = shop.parse([["商品编码", "数量(kg)"], ["ST0003", 4]])
    assert shop.lines(preview) == [("pork", 4000, None)]
    preview = shop.parse([["商品编码", "数量", "单位"], ["ST0001", 4, "盒"]])   # a word we do not judge
    assert shop.lines(preview) == [("tea", 4000, None)]
    preview = shop.parse([["商品编码", "数量(kg)", "单位"], ["ST0001", 4, "件"]])   # the row's own unit wins
    assert shop.lines(preview) == [("tea", 4000, None)]
    preview = shop.parse([["商品编码", "数量", "单位"], ["ST0003", "3斤", "袋"]])  # what the cell says counts too
    assert only_error(preview).startswith("第 2 行「数量」：「松桃腊肉」按千克称重销售")


# --- finding products ----------------------------------------------------------------------------

@pytest.mark.parametrize("header, cells, column, fragment", [
    (HEADER, ["NOPE-1", "梅江茶", 3, None], "商品编码", "找不到商品编码 NOPE-1"),
    (["条码", "数量"], ["6901234567885", 3], "条码", "找不到条码「6901234567885」"),
    (["条码", "数量"], ["6901234567890", 3], "条码", "校验位错误"),
    (["条码", "数量"], ["6.90123E+12", 3], "条码", "科学计数法"),
    (HEADER, ["6.90123E+12", "梅江茶", 3, None], "商品编码", "科学计数法"),
    (["品名", "数量"], ["梅江茶", 3], "品名", "找不到商品「梅江茶」"),            # a name must be exact
    (["品名", "数量"], ["土鸡蛋", 3], "品名", "有 2 个商品名为「土鸡蛋」"),
    (["商品编码", "条码", "数量"], ["ST0002", TEA_EAN, 3], "条码", "不是同一商品"),
    (["商品编码", "品名", "数量"], ["", "", 3], "", "请填写商品编码、条码或品名"),
    (HEADER, ["ST0009", "旧款绿茶", 3, None], "", "「旧款绿茶」已停售"),
    (["品名", "数量"], ["旧款绿茶", 3], "", "「旧款绿茶」已停售"),
])
def test_products_that_cannot_be_ordered(shop, header, cells, column, fragment):
    preview = shop.parse([header, cells])
    message = only_error(preview)
    assert fragment in message
    assert message.startswith(f"第 2 行「{column}」：" if column else "第 2 行：")


@pytest.mark.parametrize("header, cells", [
    (HEADER, [TEA_EAN, "", 3, None]),                  # a barcode in the code column, as buyers do
    (HEADER, ["st0001", "", 3, None]),                 # as the till: a sku in any case
    (HEADER, ["ＳＴ０００１", "", 3, None]),            # typed with a Chinese input method
    (["条码", "数量"], ["6 901234 567892", 3]),         # as printed under the bars
    (["商品编码", "条码", "品名", "数量"], ["ST0001", TEA_EAN, "某个别名", 3]),   # the sheet's own name is only shown
])
def test_codes_as_buyers_write_them(shop, header, cells):
    preview = shop.parse([header, cells])
    assert preview.ok, preview.errors
    assert shop.lines(preview) == [("tea", 3000, None)]


@pytest.mark.parametrize("name", ["梅江茶\x00 250g", "梅江茶\x07 250g"])
def test_a_control_character_anywhere_in_a_csv_refuses_the_file(shop, session, name):
    """Not text a person typed (and a NUL would never reach PostgreSQL, which refuses it)."""
    rows = [["品名", "数量"]] + [["梅江茶 250g", 1]] * 500 + [[name, 2]]
    preview = parse_order_sheet(session, buyer_id=shop.buyer_id, data=csv_bytes(rows), filename="x.csv")
    assert only_error(preview) == "文件不是 CSV 或 Excel 表格" and not preview.lines


def test_a_name_longer_than_any_product_is_not_found(shop, session):
    rows = [["品名", "数量"]] + [["梅江茶 250g", 1]] * 500 + [["梅" * 500, 2]]
    preview = parse_order_sheet(session, buyer_id=shop.buyer_id, data=csv_bytes(rows), filename="x.csv")
    assert "第 502 行「品名」：找不到商品" in only_error(preview)
    assert shop.lines(preview) == [("tea", 500_000, None)]


def test_a_code_in_a_number_cell(shop):
    preview = shop.parse([["条码", "数量"], [int(TEA_EAN), 3]])
    assert shop.lines(preview) == [("tea", 3000, None)]


# --- the same product twice, totals --------------------------------------------------------------

def test_the_same_product_twice_is_one_line_when_the_prices_agree(shop):
    preview = shop.parse([
        HEADER,
        ["ST0001", "梅江茶", 2, 36],
        ["ST0003", "腊肉", "1.5", None],
        [TEA_EAN, "梅江茶（另一部门）", 3, "36.00"],
        ["", "松桃腊肉", "0.25", ""],
    ])
    assert preview.ok, preview.errors
    assert shop.lines(preview) == [("tea", 5000, 3600), ("pork", 1750, None)]
    assert [r.qty_milli for r in preview.rows] == [2000, 1500, 3000, 250]


@pytest.mark.parametrize("first, second, shown", [
    (36, 38, "¥36.00 / ¥38.00"),
    (36, None, "¥36.00 / 未填单价"),
    (None, 36, "未填单价 / ¥36.00"),
])
def test_the_same_product_at_different_prices_is_refused(shop, first, second, shown):
    preview = shop.parse([HEADER, ["ST0001", "", 2, first], ["ST0002", "", 1, None], ["ST0001", "", 3, second]])
    message = only_error(preview)
    assert message.startswith("第 4 行「单价」：「梅江茶 250g」在第 2 行已出现") and shown in message
    assert preview.rows[2].error and preview.rows[0].error is None


@pytest.mark.parametrize("total_row", [
    ["", "合计", 5, 180],
    ["合计：", "", "", "¥180.00"],
    ["总计", None, None, None],
    ["", "Total", 5, None],
    ["", "合计(大写)：壹佰捌拾元整", None, None],
])
@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_the_total_row_is_skipped(shop, total_row, fmt):
    preview = shop.parse([HEADER, ["ST0001", "", 2, 36], ["ST0001", "", 3, 36], total_row, [], [""]], fmt)
    assert preview.ok, preview.errors
    assert shop.lines(preview) == [("tea", 5000, 3600)] and len(preview.rows) == 2


def test_a_product_row_that_mentions_a_total_is_not_skipped(shop):
    preview = shop.parse([["商品编码", "数量", "备注"], ["ST0001", 2, "合计送两次"], ["合计", 2, ""]])
    assert shop.lines(preview) == [("tea", 2000, None)]


# --- files that are not order sheets ---------------------------------------------------------------

def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2, 2)).save(out, format="PNG")
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("hello.txt", "hi")
    return out.getvalue()


@pytest.mark.parametrize("filename, data, fragment", [
    ("photo.png", _png(), "文件不是 CSV 或 Excel 表格"),
    ("archive.zip", _zip(), "文件不是 CSV 或 Excel 表格"),
    ("fake.xlsx", b"PK\x03\x04 not really a zip", "文件不是 CSV 或 Excel 表格"),
    ("data.bin", bytes(range(256)) * 4, "文件不是 CSV 或 Excel 表格"),
    ("notes.txt", "今天天气很好\n我们去爬梵净山\n".encode(), "找不到列名"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, ".xls"),
    ("empty.csv", b"", "文件是空的"),
    ("blank.csv", b"\xef\xbb\xbf\r\n,,\r\n", "表格是空的"),
    ("huge.csv", b"a" * (2 * 1024 * 1024 + 1), "2 MB"),
    ("header-only.xlsx", xlsx_bytes([HEADER]), "没有可以导入的商品行"),
])
def test_files_that_are_not_order_sheets(shop, session, filename, data, fragment):
    preview = parse_order_sheet(session, buyer_id=shop.buyer_id, data=data, filename=filename)
    assert fragment in only_error(preview)
    assert preview.rows == [] and preview.lines == []


@pytest.mark.parametrize("extra, refused", [(0, False), (1, True)])
def test_at_most_2000_rows(shop, session, extra, refused):
    rows = [["序号", "商品编码", "数量"]] + [[n, "ST0001", 1] for n in range(MAX_ROWS + extra)] + [["合计", "", 2000]]
    data = csv_bytes(rows)
    preview = parse_order_sheet(session, buyer_id=shop.buyer_id, data=data, filename="big.csv")
    if refused:
        assert "一次最多导入 2000 行" in only_error(preview)
        assert preview.lines == []
    else:
        assert preview.ok, preview.errors[:3]
        assert shop.lines(preview) == [("tea", MAX_ROWS * 1000, None)]


def test_more_products_than_an_order_may_have(shop, session):
    for n in range(group_orders.MAX_LINES):
        catalogue.create_product(session, sku=f"X{n:04d}", name=f"试销品 {n}", price_fen=100)
    session.commit()
    rows = [["商品编码", "数量"], ["ST0001", 1]] + [[f"X{n:04d}", 1] for n in range(group_orders.MAX_LINES)]
    preview = shop.parse(rows, "csv")
    assert f"一张订单最多 {group_orders.MAX_LINES} 行" in only_error(preview)


def test_an_order_total_the_order_would_refuse(shop):
    preview = shop.parse([["商品编码", "数量", "单价"], ["ST0001", 1_000_000, "999999.99"]])
    assert only_error(preview) == "订单金额太大"


# --- what the preview is for ------------------------------------------------------------------------

def test_many_row_errors_are_all_on_their_rows_and_listed_up_to_200(shop):
    rows = [["商品编码", "数量"]] + [[f"NOPE-{n}", 1] for n in range(250)]
    preview = shop.parse(rows, "csv")
    assert len(preview.rows) == 250 and all(r.error for r in preview.rows)
    assert len(preview.errors) == 201 and "另有 50 处错误" in preview.errors[-1]


def test_a_preview_writes_nothing_and_its_lines_make_the_order(shop, session):
    def counts():
        return [session.scalar(select(func.count()).select_from(m)) for m in (GroupOrder, GroupOrderLine, AuditEvent)]

    before = counts()
    preview = shop.parse([HEADER, ["ST0001", "", 2, 36], ["ST0003", "", "1.25", None], [TEA_EAN, "", 1, "36"]])
    assert preview.ok and all(isinstance(ln, OrderLineIn) for ln in preview.lines)
    assert not (session.new or session.dirty or session.deleted)
    session.rollback()
    assert counts() == before

    order = group_orders.create_order(session, buyer_id=shop.buyer_id, lines=preview.lines,
                                      delivery_date=dt.date.today() + dt.timedelta(days=1), actor_id=None,
                                      source="import")
    session.flush()
    assert [(ln.product_id, ln.qty_milli, ln.unit_price_fen, ln.price_source) for ln in order.lines] == [
        (shop.ids["tea"], 3000, 3600, "manual"), (shop.ids["pork"], 1250, 9800, "list")]
    assert order.source == "import"


def test_an_unknown_buyer(shop, session):
    with pytest.raises(NotFound):
        parse_order_sheet(session, buyer_id=999_999, data=xlsx_bytes([HEADER]), filename="x.xlsx")


def test_a_buyer_no_longer_active(shop, session):
    buyer = session.get(Buyer, shop.buyer_id)
    buyer.active = False
    session.flush()
    preview = shop.parse([HEADER, ["ST0001", "", 2, 36]])
    assert "已停用" in only_error(preview) and preview.lines


# --- prices to the fen, whatever the cell ----------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fen=st.integers(min_value=0, max_value=group_orders.MAX_PRICE_FEN))
def test_any_price_in_yuan_comes_back_to_the_fen(shop, fen):
    """A buyer writes a price as yuan: a number cell (which Excel stores as a float; ``fen / 100``
    is exactly what Excel holds for 12.5 or 0.07) or text in the forms people type."""
    number = fen // 100 if fen % 100 == 0 else fen / 100
    forms = [number, format_plain_yuan(fen), format_yuan(fen), format_yuan(fen, symbol="￥"),
             f"{format_plain_yuan(fen)}元"]
    codes = ["ST0001", "ST0002", "ST0003", "ST0004", "ST0005"]
    for fmt in ("xlsx", "csv"):
        rows = [["商品编码", "数量", "单价"]] + [[code, 1, price] for code, price in zip(codes, forms)]
        preview = shop.parse(rows, fmt)
        assert [ln.unit_price_fen for ln in preview.lines] == [fen] * len(forms), (fmt, forms, preview.errors)
        assert preview.ok
