"""The till's JSON API over HTTP on a real database: lookups, the running total, sales (and their
idempotency), approvals by a manager's PIN, voids, refunds, shifts, and issue 18's cash rounding,
refund by a scanned receipt and the expired-stock warning. Bad requests and who may call are in
tests/hall/test_api_till_requests.py; the hall and the ``Api`` client in tests/fixtures/till.py.

Response bodies are checked against the documented response models (extra fields forbidden), so
the OpenAPI document cannot drift from what the endpoints really send.
"""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from inventory.localtime import local_today
from inventory.models import Location, LocationKind, Setting
from inventory.scale import encode
from pos.hall.api import products as till_products
from pos.hall.api import sales as till_sales
from pos.hall.api import shifts as till_shifts
from pos.core.db import session_scope
from pos.models import Refund, Sale, Shift
from tests.fixtures.till import (  # noqa: F401  (hall, till: fixtures)
    MANAGER_PIN,
    TEA_EAN,
    WEIGHT13,
    assert_error,
    count,
    hall,
    login,
    sale_body,
    till,
)


# --- products -------------------------------------------------------------------------------------

def test_lookup_by_ean13(till, hall):
    response = till.get("/api/v1/products/lookup", code=TEA_EAN)
    assert response.status_code == 200
    body = till_products.LookupOut.model_validate(response.get_json()).model_dump()
    assert body == {"product_id": hall.tea, "sku": "TEA250", "name": "梵净山翠峰茶 250g", "unit": "piece",
                    "sold_by_weight": False, "price_fen": 16800, "certified": True, "qty_milli": None,
                    "amount_fen": None, "source": "barcode", "warning": None}


def test_lookup_by_sku_is_case_insensitive(till, hall):
    body = till.get("/api/v1/products/lookup", code="honey").get_json()
    assert (body["product_id"], body["source"], body["certified"]) == (hall.honey, "sku", False)


def test_lookup_by_scale_label_gives_the_weight(till, hall):
    label = encode(WEIGHT13, plu=101, value=523)
    body = till.get("/api/v1/products/lookup", code=label).get_json()
    assert (body["product_id"], body["qty_milli"], body["source"], body["unit"]) == (hall.pork, 523, "scale_weight", "kg")
    assert body["sold_by_weight"] is True


@pytest.mark.parametrize("code", ["0000000000000", "NOPE", "OLD", "9" * 70])
def test_unknown_or_retired_code_is_404_json(till, hall, code):
    assert_error(till.get("/api/v1/products/lookup", code=code), 404, "未知条码")


def test_a_code_with_a_control_character_is_422(till, hall):  # issue 18.10a: refused, never looked up
    assert_error(till.get("/api/v1/products/lookup", code="\x00"), 422, "控制字符", field="code")


def test_lookup_without_code_is_422(till, hall):
    assert_error(till.get("/api/v1/products/lookup"), 422, "code", field="code")


def test_search_finds_products_on_sale(till, hall):
    response = till.get("/api/v1/products/search", q="茶")
    body = till_products.SearchOut.model_validate(response.get_json())
    assert [p.sku for p in body.items] == ["TEA250"]  # the retired tea is not offered
    assert body.items[0].certified is True
    pinyin = till.get("/api/v1/products/search", q="sttfm").get_json()
    assert [p["sku"] for p in pinyin["items"]] == ["HONEY"]
    assert till.get("/api/v1/products/search", page="x").status_code == 422


def test_quick_keys_are_the_most_sold_and_the_weighed_goods(app, till, hall):
    first = till.get("/api/v1/products/quick").get_json()
    assert first == {"most_sold": [], "weighed": [first["weighed"][0]]}
    assert first["weighed"][0]["product_id"] == hall.pork
    for _ in range(2):
        assert till.post("/api/v1/sales", sale_body(hall, lines=[{"product_id": hall.honey, "qty_milli": 1000}],
                                                    payments=[{"method": "wechat", "amount_fen": 3800}])).status_code == 201
    assert till.post("/api/v1/sales", sale_body(hall)).status_code == 201
    body = till_products.QuickOut.model_validate(till.get("/api/v1/products/quick").get_json())
    assert [p.product_id for p in body.most_sold] == [hall.honey, hall.pork, hall.tea]  # 2 lines, then 1 each by sku
    assert [p.product_id for p in body.weighed] == [hall.pork]


# --- the running total ----------------------------------------------------------------------------

def test_price_a_basket_with_its_certified_part(till, hall):
    response = till.post("/api/v1/baskets/price", {
        "lines": [{"product_id": hall.tea, "qty_milli": 1000}, {"product_id": hall.pork, "qty_milli": 523}],
        "order_discount_fen": 0, "rounding_to_jiao": False})
    assert response.status_code == 200, response.get_json()
    body = till_sales.BasketOut.model_validate(response.get_json())
    assert (body.subtotal_fen, body.total_fen) == (16800 + 1987, 16800 + 1987)
    assert body.certified_fen == 16800 and body.uncertified_fen == 1987
    assert [ln.net_fen for ln in body.lines] == [16800, 1987]


def test_price_with_rounding_and_order_discount(till, hall):
    body = till.post("/api/v1/baskets/price", {
        "lines": [{"product_id": hall.tea, "qty_milli": 1000}, {"product_id": hall.pork, "qty_milli": 523}],
        "order_discount_fen": 100, "rounding_to_jiao": True, "paid_in_cash": True}).get_json()
    assert body["rounding_to_jiao"] is True
    assert body["rounding_fen"] == 7 and body["total_fen"] == 18680
    assert (body["cash_rounding_fen"], body["cash_total_fen"]) == (7, 18680)
    assert sum(ln["net_fen"] for ln in body["lines"]) == body["total_fen"]
    assert body["certified_fen"] + body["uncertified_fen"] == body["total_fen"]


def test_an_emptied_basket_costs_nothing(till, hall):
    body = till.post("/api/v1/baskets/price", {"lines": []}).get_json()
    assert body["total_fen"] == 0 and body["lines"] == []


def test_price_of_an_unknown_product_is_422(till, hall):
    assert_error(till.post("/api/v1/baskets/price", {"lines": [{"product_id": 999999, "qty_milli": 1000}]}),
                 422, "商品不存在", field="lines[0].product_id")


# --- sales --------------------------------------------------------------------------------------

def test_record_a_sale_then_the_same_again_then_a_conflict(app, till, hall):
    body = sale_body(hall)
    first = till.post("/api/v1/sales", body)
    assert first.status_code == 201, first.get_json()
    recorded = till_sales.SaleOut.model_validate(first.get_json())
    assert recorded.total_fen == 18787 and recorded.change_fen == 20000 - 18787
    assert recorded.receipt_no.startswith("H1-") and recorded.sale.receipt_no == recorded.receipt_no
    assert recorded.sale.certified_fen == 16800 and recorded.sale.cashier == "cash"
    assert [ln.refundable_qty_milli for ln in recorded.sale.lines] == [1000, 523]

    again = till.post("/api/v1/sales", body)
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert count(app, Sale) == 1

    changed = dict(body, lines=[{"product_id": hall.tea, "qty_milli": 2000}],
                   payments=[{"method": "cash", "amount_fen": 33600}])
    assert_error(till.post("/api/v1/sales", changed), 409, recorded.receipt_no)
    assert count(app, Sale) == 1

    fetched = till.get(f"/api/v1/sales/{recorded.receipt_no}")
    assert fetched.status_code == 200 and fetched.get_json() == first.get_json()["sale"]


def test_payments_that_do_not_add_up_are_refused(app, till, hall):
    body = sale_body(hall, payments=[{"method": "wechat", "amount_fen": 18000}])
    assert_error(till.post("/api/v1/sales", body), 422, "支付合计", "¥187.87", field="payments")
    assert count(app, Sale) == 0


def test_discount_over_the_limit_needs_a_manager_pin(app, till, hall):
    over = sale_body(hall, lines=[{"product_id": hall.tea, "qty_milli": 1000, "line_discount_fen": 5000}],
                     payments=[{"method": "alipay", "amount_fen": 11800}])
    assert_error(till.post("/api/v1/sales", over), 403, "折扣超过 10%", field="approval_pin")
    assert_error(till.post("/api/v1/sales", dict(over, approval_pin="1111")), 403, "店长密码不正确",
                 field="approval_pin")
    assert count(app, Sale) == 0
    approved = till.post("/api/v1/sales", dict(over, approval_pin=MANAGER_PIN))
    assert approved.status_code == 201, approved.get_json()
    assert approved.get_json()["sale"]["discount_fen"] == 5000


def test_a_manager_at_the_till_approves_their_own_discount(client, auth, hall):
    manager = login(client, auth, "boss")
    over = sale_body(hall, lines=[{"product_id": hall.tea, "qty_milli": 1000}], order_discount_fen=5000,
                     payments=[{"method": "alipay", "amount_fen": 11800}])
    assert manager.post("/api/v1/sales", over).status_code == 201


def test_point9_an_integer_written_as_188_0_is_that_integer(app, till, hall):
    # JSON Schema's "integer" (the document's) includes 1000.0; the API takes it exactly, as 1000
    body = sale_body(hall, lines=[{"product_id": float(hall.tea), "qty_milli": 1000.0}],  # ok-float: whole
                     payments=[{"method": "cash", "amount_fen": 16800.0, "tendered_fen": 20000.0}])  # ok-float
    response = till.post("/api/v1/sales", body)
    assert response.status_code == 201, response.get_json()
    sale = response.get_json()["sale"]
    assert (sale["total_fen"], sale["change_fen"], sale["lines"][0]["qty_milli"]) == (16800, 3200, 1000)
    assert all(type(v) is int for v in (sale["total_fen"], sale["lines"][0]["qty_milli"]))


def test_a_discount_within_the_limit_needs_no_pin(till, hall):
    body = sale_body(hall, lines=[{"product_id": hall.tea, "qty_milli": 1000}], order_discount_fen=800,
                     payments=[{"method": "unionpay", "amount_fen": 16000}])
    assert till.post("/api/v1/sales", body).status_code == 201


def test_unknown_till_is_422_naming_it(app, till, hall):
    assert_error(till.post("/api/v1/sales", sale_body(hall, till="H9")), 422, "H9", field="till")
    assert count(app, Sale) == 0


def test_an_unknown_receipt_is_404(till, hall):
    assert_error(till.get("/api/v1/sales/H1-20260101-9999"), 404, "H1-20260101-9999")
    assert_error(till.get("/api/v1/sales/H1%00"), 404)  # PostgreSQL refuses NUL: never asked
    assert_error(till.post("/api/v1/sales/H1%00/void", {"reason": "x"}), 404)
    assert_error(till.get("/api/v1/shifts/current", till="H1\x00"), 422, field="till")


# --- voids and refunds ------------------------------------------------------------------------------

def test_void_a_sale_of_the_open_shift(app, till, hall):
    assert till.post("/api/v1/shifts", {"till": "H1", "opening_float_fen": 20000}).status_code == 201
    receipt = till.post("/api/v1/sales", sale_body(hall)).get_json()["receipt_no"]
    url = f"/api/v1/sales/{receipt}/void"
    assert_error(till.post(url, {"reason": "扫错了"}), 403)
    assert_error(till.post(url, {"reason": "", "approval_pin": MANAGER_PIN}), 422, field="reason")
    response = till.post(url, {"reason": "扫错了", "approval_pin": MANAGER_PIN})
    assert response.status_code == 200, response.get_json()
    voided = till_sales.SaleView.model_validate(response.get_json())
    assert voided.status == "voided" and all(ln.refundable_qty_milli == 0 for ln in voided.lines)
    assert till.post(url, {"reason": "again", "approval_pin": MANAGER_PIN}).status_code == 422


def test_refund_part_then_refuse_more_than_was_sold(app, till, hall):
    sale = till.post("/api/v1/sales", sale_body(hall)).get_json()
    tea_line = sale["sale"]["lines"][0]["id"]
    body = {"client_refund_id": str(uuid.uuid4()), "receipt_no": sale["receipt_no"],
            "lines": [{"sale_line_id": tea_line, "qty_milli": 1000, "back_to_stock": True}],
            "reason": "顾客不要了", "approval_pin": MANAGER_PIN}
    assert_error(till.post("/api/v1/refunds", dict(body, approval_pin=None)), 403)
    assert count(app, Refund) == 0
    first = till.post("/api/v1/refunds", body)
    assert first.status_code == 201, first.get_json()
    refunded = till_sales.RefundOut.model_validate(first.get_json())
    assert refunded.total_fen == 16800
    assert refunded.sale.lines[0].refundable_qty_milli == 0 and refunded.sale.refunds[0].total_fen == 16800

    again = till.post("/api/v1/refunds", body)  # the same client_refund_id: nothing new
    assert again.status_code == 200 and again.get_json()["refund_no"] == refunded.refund_no

    more = dict(body, client_refund_id=str(uuid.uuid4()))
    assert_error(till.post("/api/v1/refunds", more), 422)
    assert count(app, Refund) == 1


def test_refund_of_an_unknown_receipt_is_404(till, hall):
    assert_error(till.post("/api/v1/refunds", {
        "receipt_no": "H1-20260101-0001", "lines": [{"sale_line_id": 1, "qty_milli": 1000}],
        "reason": "x", "approval_pin": MANAGER_PIN}), 404)


# --- shifts ---------------------------------------------------------------------------------------

def test_a_shift_from_open_to_close(app, till, hall):
    assert till.get("/api/v1/shifts/current", till="H1").get_json() == {"till": "H1", "shift": None}
    opened = till.post("/api/v1/shifts", {"till": "H1", "opening_float_fen": 20000})
    assert opened.status_code == 201, opened.get_json()
    shift = till_shifts.ShiftOut.model_validate(opened.get_json())
    assert (shift.till, shift.status, shift.opening_float_fen, shift.cashier) == ("H1", "open", 20000, "cash")
    assert_error(till.post("/api/v1/shifts", {"till": "H1", "opening_float_fen": 0}), 409, "未交班")
    assert count(app, Shift) == 1
    current = till_shifts.CurrentShiftOut.model_validate(till.get("/api/v1/shifts/current", till="H1").get_json())
    assert current.shift.id == shift.id

    base = f"/api/v1/shifts/{shift.id}"
    cash_in = till.post(f"{base}/cash", {"kind": "in", "amount_fen": 5000, "reason": "备用零钱"})
    assert cash_in.status_code == 201
    till_shifts.CashOut.model_validate(cash_in.get_json())
    assert till.post("/api/v1/sales", sale_body(hall)).status_code == 201  # cash 18787, change 1213

    report = till_shifts.ShiftReportOut.model_validate(till.get(f"{base}/report").get_json())
    assert (report.sales_count, report.cash_sales_fen, report.cash_in_fen) == (1, 18787, 5000)
    assert report.expected_cash_fen == 20000 + 18787 + 5000 and report.closed is False

    closed = till.post(f"{base}/close", {"denominations": {"10000": 4, "1000": 3, "500": 1, "100": 2, "50": 1,
                                                          "10": 3, "5": 1, "2": 1}})
    assert closed.status_code == 200, closed.get_json()
    z = till_shifts.ShiftReportOut.model_validate(closed.get_json())
    assert z.closed and z.counted_cash_fen == 43787 and z.difference_fen == 0
    assert z.shift.status == "closed"
    assert till.get(f"{base}/report").get_json() == closed.get_json()
    assert_error(till.post(f"{base}/close", {"denominations": {}}), 422)
    assert_error(till.post(f"{base}/cash", {"kind": "out", "amount_fen": 100, "reason": "x"}), 422)


def test_shift_errors(till, hall):
    assert_error(till.get("/api/v1/shifts/current", till="H9"), 404, "H9")
    assert_error(till.get("/api/v1/shifts/424242/report"), 404, "班次不存在")
    assert till.get("/api/v1/shifts/99999999999999/report").status_code == 404  # past a 32-bit key
    assert_error(till.post("/api/v1/shifts/1/close", {"denominations": {"30000": 1}}), 422,
                 field="denominations.30000")
    assert_error(till.post("/api/v1/shifts", {"till": "H1", "opening_float_fen": -1}), 422,
                 field="opening_float_fen")


# --- issue 18, point 13: 抹零 for cash only, one name -----------------------------------------------

def _hall_rounding(app, on: bool):
    with session_scope(app) as s:
        s.merge(Setting(key="rounding_to_jiao", value="true" if on else "false"))


@pytest.mark.parametrize("payments,total,rounding", [
    ([{"method": "cash", "amount_fen": 18780, "tendered_fen": 20000}], 18780, 7),
    ([{"method": "wechat", "amount_fen": 18787}], 18787, 0),
    ([{"method": "alipay", "amount_fen": 18787}], 18787, 0),
    ([{"method": "unionpay", "amount_fen": 18787}], 18787, 0),
    ([{"method": "cash", "amount_fen": 10000}, {"method": "wechat", "amount_fen": 8787}], 18787, 0),
], ids=["cash", "wechat", "alipay", "card", "cash+wechat"])
def test_point13_cash_rounding_only_when_paid_wholly_in_cash(app, till, hall, payments, total, rounding):
    _hall_rounding(app, True)
    response = till.post("/api/v1/sales", sale_body(hall, payments=payments))
    assert response.status_code == 201, response.get_json()
    sale = response.get_json()["sale"]
    assert (sale["total_fen"], sale["rounding_fen"]) == (total, rounding)
    # a WeChat payment of the cash total (what the bug took) is refused: it must pay to the fen
    if payments[0]["method"] == "wechat":
        assert_error(till.post("/api/v1/sales", sale_body(hall, payments=[{"method": "wechat", "amount_fen": 18780}])),
                     422, "支付合计", field="payments")


def test_point13_running_total_shows_both_totals_as_the_sale_records_them(app, till, hall):
    _hall_rounding(app, True)
    lines = [{"product_id": hall.tea, "qty_milli": 1000}, {"product_id": hall.pork, "qty_milli": 523}]
    body = till_sales.BasketOut.model_validate(till.post("/api/v1/baskets/price", {"lines": lines}).get_json())
    assert (body.total_fen, body.rounding_fen, body.rounding_to_jiao) == (18787, 0, False)  # WeChat, card …
    assert (body.cash_total_fen, body.cash_rounding_fen) == (18780, 7)                       # wholly in cash
    cash = till_sales.BasketOut.model_validate(till.post("/api/v1/baskets/price", {"lines": lines, "paid_in_cash": True})
                                        .get_json())
    assert (cash.total_fen, cash.rounding_fen, cash.rounding_to_jiao) == (18780, 7, True)
    assert sum(ln.net_fen for ln in cash.lines) == 18780
    # 抹零 off: the cash total is the total
    _hall_rounding(app, False)
    off = till.post("/api/v1/baskets/price", {"lines": lines, "paid_in_cash": True}).get_json()
    assert (off["total_fen"], off["cash_total_fen"], off["cash_rounding_fen"]) == (18787, 18787, 0)
    # the old names are gone from the API (one name: rounding_to_jiao)
    assert_error(till.post("/api/v1/baskets/price", {"lines": lines, "round_to_jiao": True}), 422,
                 field="round_to_jiao")


def test_point13_the_flag_has_one_name_in_code():
    import pathlib
    import re as _re

    root = pathlib.Path(__file__).resolve().parents[2]
    sources = [p for d in ("pos", "inventory", "kiosks", "static/js", "templates") for p in (root / d).rglob("*")
               if p.suffix in (".py", ".js", ".html") and "vendor" not in p.parts]
    stale = sorted(str(p.relative_to(root)) for p in sources
                   if _re.search(r"\b(apply_cash_rounding|round_to_jiao)\b", p.read_text(encoding="utf-8")))
    assert stale == []


# --- issue 18, point 14: refund by the receipt's QR code; recent receipts to reprint ------------------

def _receipt_url(app, receipt_no: str, base_url: str = "http://192.168.1.20:8080") -> str:
    from pos.sales.links import receipt_url

    with app.test_request_context(base_url=base_url):
        return receipt_url(receipt_no)


def test_point14_receipt_no_from_scan_reads_numbers_and_only_our_signed_links(app):
    from pos.sales.links import receipt_no_from_scan, receipt_token

    key = app.config["SECRET_KEY"]
    no = "H1-20261126-0042"
    token = receipt_token(key, no)
    assert receipt_no_from_scan(key, f" {no} ") == no
    for link in (f"http://192.168.1.20:8080/r/{no}?t={token}", f"https://pos.example.cn/hall/r/{no}?t={token}",
                 f"pos.example.cn/r/{no}?t={token}", f"HTTP://POS/r/{no}/?t={token}\n"):
        assert receipt_no_from_scan(key, link) == no, link
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (f"http://pos/r/{no}?t={forged}", f"http://pos/r/{no}", f"http://pos/r/H1-20261126-0043?t={token}",
                f"http://pos/x/{no}?t={token}", "", "   ", None, "a b", "H1\x00", "x" * 600,
                f"http://pos/r/{no}?t={token}&t=x" + "y" * 600):
        assert receipt_no_from_scan(key, bad) is None, bad
    assert receipt_no_from_scan("another key", f"http://pos/r/{no}?t={token}") is None


def test_point14_the_refund_box_finds_a_sale_by_its_scanned_receipt_url(app, till, hall):
    sold = till.post("/api/v1/sales", sale_body(hall)).get_json()
    no = sold["receipt_no"]
    url = _receipt_url(app, no)
    assert url.startswith("http://192.168.1.20:8080/r/")
    for code in (url, no, f"  {no}  "):
        found = till.get("/api/v1/sales/lookup", code=code)
        assert found.status_code == 200, (code, found.get_json())
        assert till_sales.SaleView.model_validate(found.get_json()).receipt_no == no
    # what the till did before: the whole URL looked up as a receipt number finds nothing
    from urllib.parse import quote
    assert_error(till.get("/api/v1/sales/" + quote(url, safe="")), 404)
    assert_error(till.get("/api/v1/sales/lookup", code=url.replace("t=", "t=A")), 404, "找不到小票")
    assert_error(till.get("/api/v1/sales/lookup", code=_receipt_url(app, "H1-20260101-9999")), 404)
    assert_error(till.get("/api/v1/sales/lookup", code="x" * 501), 422, field="code")
    assert_error(till.get("/api/v1/sales/lookup"), 422, field="code")
    # and the refund goes through with the number the lookup gave
    line = found.get_json()["lines"][0]["id"]
    refunded = till.post("/api/v1/refunds", {"receipt_no": found.get_json()["receipt_no"], "reason": "顾客退货",
                                             "lines": [{"sale_line_id": line, "qty_milli": 1000}],
                                             "approval_pin": MANAGER_PIN})
    assert refunded.status_code == 201, refunded.get_json()


def test_point14_recent_receipts_of_a_till_newest_first(app, till, hall):
    first = till.post("/api/v1/sales", sale_body(hall)).get_json()["receipt_no"]
    second = till.post("/api/v1/sales", sale_body(hall, lines=[{"product_id": hall.honey, "qty_milli": 1000}],
                                                  payments=[{"method": "wechat", "amount_fen": 3800}])
                       ).get_json()["receipt_no"]
    response = till.get("/api/v1/sales/recent", till="H1")
    assert response.status_code == 200, response.get_json()
    body = till_sales.RecentOut.model_validate(response.get_json())
    assert [s.receipt_no for s in body.items] == [second, first]
    assert (body.items[0].total_fen, body.items[0].status, body.items[0].reprint_count) == (3800, "completed", 0)
    assert body.items[0].cashier == "cash"
    assert [s["receipt_no"] for s in till.get("/api/v1/sales/recent", till="H1", limit=1).get_json()["items"]] == [second]
    assert_error(till.get("/api/v1/sales/recent", till="H9"), 404, "H9")
    assert_error(till.get("/api/v1/sales/recent", till="H1", limit=0), 422, field="limit")
def test_point11_the_till_is_told_when_only_expired_stock_is_left(app, till, hall):
    """Issue 18, point 11: the lookup warns the cashier when the books hold the product at the
    till's location only in expired lots; the sale still goes through, and the manager is alerted."""
    from sqlalchemy import update

    from inventory import ledger
    from inventory.models import Alert, AlertKind, Lot, MoveReason

    with session_scope(app) as s:
        hall_id = s.scalar(select(Location.id).where(Location.code == "HALL"))
        supplier = Location(code="SUPPLIER", name="供应商", kind=LocationKind.SUPPLIER)
        s.add(supplier)
        lot = Lot(product_id=hall.honey, lot_no="OLD-1", expires_on=local_today() - dt.timedelta(days=2))
        s.add(lot)
        s.flush()
        ledger.move(s, product_id=hall.honey, qty_milli=3000, from_location_id=supplier.id, to_location_id=hall_id,
                    reason=MoveReason.RECEIPT, lot_id=lot.id)
        lot_id = lot.id
    body = till.get("/api/v1/products/lookup", code="HONEY", till="H1").get_json()
    assert body["product_id"] == hall.honey and body["warning"] == "该商品账面只剩过期批次，请检查货架"
    assert till.get("/api/v1/products/lookup", code="HONEY").get_json()["warning"] is None   # no till: no judgement
    assert till.get("/api/v1/products/lookup", code=TEA_EAN, till="H1").get_json()["warning"] is None
    assert_error(till.get("/api/v1/products/lookup", code="HONEY", till="H9"), 422, "H9")

    assert till.post("/api/v1/shifts", {"till": "H1", "opening_float_fen": 0}).status_code == 201
    sale = till.post("/api/v1/sales", sale_body(hall, lines=[{"product_id": hall.honey, "qty_milli": 1000}],
                                                payments=[{"method": "cash", "amount_fen": 3800}]))
    assert sale.status_code == 201                                  # never blocked by stock
    with session_scope(app) as s:
        [alert] = s.scalars(select(Alert).where(Alert.resolved_at.is_(None))).all()
        assert (alert.kind, alert.ref_type, alert.ref_id) == (AlertKind.EXPIRING_LOT, "lot", lot_id)
        assert "只剩过期批次" in alert.message and "售出" in alert.message
        # the expired lot was not "sold": its goods are still to be found and written off
        from inventory.ledger import lot_level
        assert lot_level(s, hall_id, lot_id) == 3000
        # once fresh goods are there, no warning
        s.execute(update(Lot).where(Lot.id == lot_id).values(expires_on=local_today()))
    assert till.get("/api/v1/products/lookup", code="HONEY", till="H1").get_json()["warning"] is None
