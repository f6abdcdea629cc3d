"""The till's offline scan and search (static/js/till_offline.js) answer as the server does: the
same codes — a barcode, its UPC-A twin, weight and price scale labels, a label with a wrong check
digit, a label of zero grams, a label for nobody's scale code, a sku in lower case, an unknown code — and the
same searches give the same products from the browser's catalogue as from /products/lookup and
/products/search, in real Chromium. The hall is tests/fixtures/till_browser.py's, plus a price
label rule and a UPC-A product."""
from __future__ import annotations

import pytest

from sqlalchemy import select

from inventory import catalogue
from inventory.barcodes import gs1_check_digit
from inventory.scale import encode
from inventory.localtime import local_today, utcnow
from inventory.models import Location, Product
from pos.core.db import session_scope
from pos.models import Sale, SaleLine
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


def sell(s, product_id: int, times: int) -> None:
    """Completed hall sales of the last days: the search's "most sold" order (quick_keys.popular offline)."""
    hall_id = s.scalar(select(Location.id).where(Location.code == "HALL"))
    for n in range(times):
        sale = Sale(receipt_no=f"POP-{product_id}-{n}", channel="hall", content_hash="0" * 64, location_id=hall_id,
                    sold_at=utcnow(), local_date=local_today(), subtotal_fen=100, total_fen=100)
        sale.lines = [SaleLine(line_no=1, product_id=product_id, qty_milli=1000, unit_price_fen=100, gross_fen=100,
                               net_fen=100, vat="9", certified=False)]
        s.add(sale)


def test_offline_scan_and_search_answer_as_the_server(live_server, page, app, hall):
    app.config["SEARCH_POPULAR_SECONDS"] = 0
    with session_scope(app) as s:
        catalogue.add_barcode_rule(s, name="金额 23", pattern=PRICE13)
        catalogue.create_product(s, sku="UPC1", name="进口试样", price_fen=990, barcodes=[UPC])
        # every rank of inventory.search, and the most sold first within one (MJ3 sells, MJ1 does not)
        for sku, name in [("MJ1", "梅江茶"), ("MJ2", "红梅江茶"), ("MJ3", "美酒茶叶"), ("mj", "小写货号")]:
            catalogue.create_product(s, sku=sku, name=name, price_fen=500)
        s.flush()
        sell(s, s.scalar(select(Product.id).where(Product.sku == "MJ3")), 2)
    open_till(page, live_server)
    page.wait_for_function("self.SongtaoOffline.catalogue.byId.size === 9")

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

    for q in ("mjlj", "mj", "ST00", "st004", "蜂蜜", "梵净山", TEA_EAN, "0" + UPC, "xyz", "（散称）",
              "mjc", "MJ", "梅江", "梅江茶", "hmj", "hmjc", "茶", "m", "%"):
        server = page.evaluate(
            """async (q) => (await (await fetch('/api/v1/products/search?q=' + encodeURIComponent(q),
                                              {credentials: 'same-origin'})).json()).items.map((p) => p.product_id)""", q)
        browser = page.evaluate("(q) => self.SongtaoOffline.search(q, 20).map((p) => p.product_id)", q)
        assert browser == server, q
    mjc = page.evaluate("self.SongtaoOffline.search('mjc', 20).map((p) => p.sku)")
    assert mjc == ["MJ3", "MJ1", "MJ2"]  # initials mjcy (sold twice) before mjc, then the fragment hmjc
