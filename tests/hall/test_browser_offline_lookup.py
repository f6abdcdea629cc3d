"""The till's offline scan and search (static/js/till_offline.js) answer as the server does: the
same codes — a barcode, its UPC-A twin, weight and price scale labels, a label with a wrong check
digit, a label of zero grams, a label for nobody's scale code, a sku in lower case, an unknown code — and the
same searches give the same products from the browser's catalogue as from /products/lookup and
/products/search, in real Chromium. The hall is tests/fixtures/till_browser.py's, plus a price
label rule and a UPC-A product."""
from __future__ import annotations

import pytest

from inventory import catalogue
from inventory.barcodes import gs1_check_digit
from inventory.scale import encode
from pos.core.db import session_scope
from tests.fixtures.till_browser import (  # noqa: F401  (hall is a fixture)
    HONEY_EAN,
    TEA_EAN,
    WEIGHT13,
    hall,
    open_till,
)

pytestmark = pytest.mark.browser

PRICE13 = "23{PPPPP}{$$$$$}C"
UPC = "04" + "1234567890"[:9]
UPC = UPC + gs1_check_digit(UPC)  # 12 digits: scanners may send it as 0 + the 12


def server_lookup(page, code):
    return page.evaluate(
        """async (code) => {
            const r = await fetch('/api/v1/products/lookup?code=' + encodeURIComponent(code), {credentials: 'same-origin'});
            const body = await r.json();
            return r.ok ? [body.product_id, body.qty_milli, body.amount_fen, body.source, body.certified] : (r.status === 404 ? null : 'error');
        }""", code)


def browser_lookup(page, code):
    return page.evaluate(
        """(code) => {
            const r = self.SongtaoOffline.lookup(code, {not_weighed: 'x {name}', zero_label: 'zero'});
            return r == null ? null : (r.error ? 'error' : [r.product_id, r.qty_milli, r.amount_fen, r.source, r.certified]);
        }""", code)


def test_offline_scan_and_search_answer_as_the_server(live_server, page, app, hall):
    with session_scope(app) as s:
        catalogue.add_barcode_rule(s, name="金额 23", pattern=PRICE13)
        catalogue.create_product(s, sku="UPC1", name="进口试样", price_fen=990, barcodes=[UPC])
    open_till(page, live_server)
    page.wait_for_function("self.SongtaoOffline.catalogue.byId.size === 5")

    weight_label = encode(WEIGHT13, plu=101, value=523)
    bad_check = weight_label[:-1] + str((int(weight_label[-1]) + 1) % 10)
    codes = [
        TEA_EAN, HONEY_EAN, " " + TEA_EAN + " ", UPC, "0" + UPC, weight_label, bad_check,
        encode(PRICE13, plu=101, value=1987), encode(WEIGHT13, plu=101, value=0),
        encode(WEIGHT13, plu=999, value=300),  # nobody's PLU
        "ST0045", "st0045", "ＳＴ００４５", "NOPE-1",
    ]
    for code in codes:
        assert browser_lookup(page, code) == server_lookup(page, code), code

    for q in ("mjlj", "mj", "ST00", "st004", "蜂蜜", "梵净山", TEA_EAN, "0" + UPC, "xyz", "（散称）"):
        server = page.evaluate(
            """async (q) => (await (await fetch('/api/v1/products/search?q=' + encodeURIComponent(q),
                                              {credentials: 'same-origin'})).json()).items.map((p) => p.product_id)""", q)
        browser = page.evaluate("(q) => self.SongtaoOffline.search(q, 20).map((p) => p.product_id)", q)
        assert browser == server, q
