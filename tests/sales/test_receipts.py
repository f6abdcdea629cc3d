"""The receipt document and its two renderers: the HTML twin shows the very lines the printer
gets (a sale with a weighed item, a discount, a certified and an uncertified line and a split
payment), and on 32- and 48-column paper no printed line is wider than the paper whatever mix of
Chinese and Latin the names are (hypothesis)."""
from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos.sales.escpos import FS_CHINESE_ON, gb18030, render_escpos, text_lines, width
from pos.models import Till
from pos.sales.receipts import HALL_NAME, Receipt, ReceiptLine, build_receipt
from pos.sales.pricing import LineIn
from pos.sales.reading import get_sale
from pos.sales.service import PaymentIn, SaleIn, record_sale
from tests.fixtures.sales import SOLD_AT, hall  # noqa: F401  (fixture)
from tests.fixtures.stock import engine, world  # noqa: F401  (fixtures)

LINE = re.compile(r'<span class="rl">(.*?)</span>', re.S)


def mixed_sale(hall, s, till_id=None) -> str:
    """Tea (certified) ×2, honey (not certified), 0.523 kg of pork; ¥10 off the order; WeChat + cash."""
    lines = [LineIn(hall.tea_id, 2000), LineIn(hall.honey_id, 1000), LineIn(hall.pork_id, 523)]
    total = 33600 + 5800 + 1987 - 1000
    result = record_sale(s, SaleIn(
        channel="hall", location_id=None, lines=lines, order_discount_fen=1000,
        payments=[PaymentIn("wechat", 20000, ref="wx-1"), PaymentIn("cash", total - 20000, 30000)],
        till_id=till_id or hall.till_id, cashier_id=hall.cashier_id, sold_at=SOLD_AT))
    s.commit()
    return result.receipt_no


def twin_lines(page: str) -> list[str]:
    return [html.unescape(line) for line in LINE.findall(page)]


@pytest.mark.parametrize("columns", [48, 32])
def test_the_html_twin_matches_the_printed_receipt_line_for_line(app, client, auth, make_user, hall, columns):
    make_user("c1", "cashier", display_name="龙小燕")
    with hall.session() as s:
        s.get(Till, hall.till_id).paper_columns = columns
        s.commit()
        receipt_no = mixed_sale(hall, s)
    auth.login("c1")
    page = client.get(f"/till/receipts/{receipt_no}?fragment=1").get_data(as_text=True)
    with app.test_request_context(), hall.session() as s:
        receipt = build_receipt(s, get_sale(s, receipt_no).id, columns=columns)
        printed = render_escpos(receipt, columns)
    lines = text_lines(receipt, columns)
    assert twin_lines(page) == lines
    # what the printer gets is those lines, in GB18030, in Chinese mode
    assert printed.index(FS_CHINESE_ON) < printed.index(gb18030(lines[0]))
    assert b"\n".join(gb18030(line) for line in lines) in printed
    text = "\n".join(lines)
    for expected in (HALL_NAME, receipt_no, "龙燕", "H1", "★梵净山翠峰茶 250g", "  松桃土蜂蜜 500g", "0.523kg",
                     "2 x ￥168.00", "￥336.00", "0.523kg x ￥38.00", "￥19.87", "优惠", "-￥10.00", "合计",
                     "￥403.87", "微信支付", "￥200.00", "现金", "￥300.00", "找零", "￥96.13",
                     "本单扶贫产品金额", "★ 为认定的扶贫产品"):
        assert expected in text, expected
    assert all(width(line) <= columns for line in lines)
    assert "重印" not in text
    # the certified subtotal is the tea's net (its share of the discount taken off)
    certified_line = next(line for line in lines if line.startswith("本单扶贫产品金额"))
    assert certified_line.endswith(f"￥{receipt.certified_fen // 100}.{receipt.certified_fen % 100:02d}")
    assert 0 < receipt.certified_fen < 33600
    assert receipt.qr_payload and "/r/" + receipt_no in receipt.qr_payload and "<svg" in page


def test_a_reprint_is_marked_and_a_refund_receipt_names_the_original(app, hall):
    from pos.sales.refunds import refund
    from pos.sales.receipts import build_refund_receipt

    with app.test_request_context(), hall.session() as s:
        receipt_no = mixed_sale(hall, s)
        sale = get_sale(s, receipt_no)
        assert "*** 重印 ***" in "\n".join(text_lines(build_receipt(s, sale.id, reprint=True), 32))
        honey_line = next(ln for ln in sale.lines if ln.product_id == hall.honey_id)
        result = refund(s, receipt_no=receipt_no, lines=[(honey_line.id, 1000, True)], method="cash",
                        reason="破损", cashier_id=hall.cashier_id, approved_by_id=hall.manager_id)
        s.commit()
        doc = build_refund_receipt(s, result.refund_id, columns=32)
    text = "\n".join(text_lines(doc, 32))
    assert doc.original_receipt_no == receipt_no and "原小票号" in text and receipt_no in text
    assert "退款单" in text and "松桃土蜂蜜 500g" in text


# --- widths ---------------------------------------------------------------------------------

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
LATIN = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -/().%")
OTHER = st.sampled_from("·★（）【】，。：ＡＢ１２éü—～")
NAME = st.text(st.one_of(CJK, LATIN, OTHER), min_size=1, max_size=80)
FEN = st.integers(min_value=0, max_value=99_999_999)


@st.composite
def receipts(draw):
    lines = draw(st.lists(st.builds(ReceiptLine, name=NAME,
                                    qty_text=st.sampled_from(["1", "12", "0.523kg", "999.999kg", "1000"]),
                                    unit_price_fen=FEN, amount_fen=FEN, certified=st.booleans()),
                          min_size=1, max_size=6))
    return Receipt(
        kind=draw(st.sampled_from(["sale", "refund"])), receipt_no="H1-20261126-0001", hall_name=HALL_NAME,
        hall_address=draw(NAME), meta=[("小票号", "H1-20261126-0001"), ("收银员", draw(NAME))],
        lines=lines, totals=[("小计", draw(FEN)), ("优惠", -draw(FEN)), ("合计", draw(FEN))],
        payments=[(draw(NAME), draw(FEN))], change_fen=draw(FEN), certified_fen=draw(FEN),
        reprint=draw(st.booleans()), notes=[draw(NAME)], legend="★ 为认定的扶贫产品",
        footer=draw(NAME), qr_payload="https://pos.example.cn/r/H1-20261126-0001?t=abc")


@pytest.mark.parametrize("columns", [32, 48])
@settings(max_examples=150, deadline=None)
@given(receipt=receipts())
def test_no_printed_line_is_wider_than_the_paper(columns, receipt):
    lines = text_lines(receipt, columns)
    assert all(width(line) <= columns for line in lines), [line for line in lines if width(line) > columns]
    # every name is printed whole (wrapped, never cut off)
    flat = "".join(line.replace(" ", "") for line in lines)
    for ln in receipt.lines:
        assert ln.name.replace(" ", "") in flat
    # and the bytes are exactly those lines in GB18030
    assert b"\n".join(gb18030(line) for line in lines) in render_escpos(receipt, columns)


def test_gb18030_measures_full_width_characters_as_two_columns():
    assert width("松桃 tea") == 8 and width("￥12.80") == 7 and width("★") == 2
    assert gb18030("￥") == b"\xa3\xa4" and gb18030("松桃") == "松桃".encode("gb18030")
