"""static/js/pricing.js against the running server on a real database: certification of an offline
sale (``certifiedOn`` + ``localDate``) decides as ``inventory.certification`` does on the boundary
days and moments, and a basket priced in Chromium from the catalogue's data is exactly what
``POST /api/v1/baskets/price`` answers — figures and, for a bad basket, the message."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from inventory import catalogue, suppliers
from inventory.certification import certification_at, certification_on, certified_product_ids
from inventory.localtime import local_date
from inventory.models import Certificate, Product, certificate_products
from pos.core.db import session_scope
from tests.fixtures.pricing_js import pricing_page, same  # noqa: F401  (pricing_page is a fixture)
from tests.fixtures.till import hall, login, till  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

D = dt.date.fromisoformat

CERTIFICATES = [  # (number, valid_from, valid_to) of one product
    ("GZ-B", "2026-10-01", "2026-11-30"),
    ("GZ-A", "2026-11-15", "2026-11-30"),  # same last day as GZ-B: the smaller number is chosen
    ("GZ-C", "2026-12-02", "2027-01-31"),  # a gap on 1 December
    ("GZ-D", "2027-01-01", "2027-01-01"),  # one day, inside GZ-C, which is valid longer
]

DAYS = ["2026-09-30", "2026-10-01", "2026-11-14", "2026-11-15", "2026-11-30", "2026-12-01", "2026-12-02",
        "2027-01-01", "2027-01-31", "2027-02-01"]

MOMENTS = [  # (moment, its Asia/Shanghai date)
    ("2026-11-30T15:59:59Z", "2026-11-30"),        # 23:59:59 +08:00 on the certificates' last day
    ("2026-11-30T16:00:00Z", "2026-12-01"),        # 00:00 +08:00 the day after: lapsed
    ("2026-11-30T23:59:59+08:00", "2026-11-30"),
    ("2026-12-01T00:00:00+08:00", "2026-12-01"),
    ("2026-12-01T16:00:00+00:00", "2026-12-02"),
    ("2026-09-30T16:00:00.000Z", "2026-10-01"),    # 00:00 +08:00 on the first day
    ("2026-09-30T15:59:59.999Z", "2026-09-30"),
    ("2026-10-01T07:59:59-08:00", "2026-10-01"),   # 23:59:59 in Shanghai, given in another zone
    ("2027-01-31T15:59:59Z", "2027-01-31"),
    ("2027-01-31T16:00:00Z", "2027-02-01"),
    ("2027-01-31 16:00:00+00:00", "2027-02-01"),   # a space for the T, as Python writes it
]


@pytest.fixture
def certified_product(session):
    product = catalogue.create_product(session, sku="CERT", name="松桃苗绣挂件", price_fen=8800)
    plain = catalogue.create_product(session, sku="PLAIN", name="外地商品", price_fen=100)
    for number, first, last in CERTIFICATES:
        suppliers.create_certificate(session, number=number, issuer="松桃苗族自治县农业农村局", valid_from=D(first),
                                     valid_to=D(last), product_ids=[product.id])
    session.commit()
    return product.id, plain.id


def test_certified_on_a_local_date_decides_as_the_server_on_the_boundaries(session, certified_product, pricing_page):
    product, plain = certified_product
    certs = [{"certificate_no": n, "valid_from": f, "valid_to": t} for n, f, t in CERTIFICATES]
    js = pricing_page.evaluate("([certs, days]) => days.map((d) => [SongtaoPricing.certifiedOn(certs, d),"
                               " SongtaoPricing.certifiedOn([], d)])", [certs, DAYS])
    expected = []
    for day in DAYS:
        one, many = certification_on(session, product, D(day)), certified_product_ids(session, [product, plain], D(day))
        assert (one.certified, one.certificate_no) == (many[product].certified, many[product].certificate_no)
        assert not many[plain].certified
        expected.append([{"certified": one.certified, "certificate_no": one.certificate_no},
                         {"certified": False, "certificate_no": None}])
    assert js == expected
    # what the table says, in words: inclusive bounds, the gap, the longest valid, the smaller number
    assert [row[0]["certificate_no"] for row in js] == [None, "GZ-B", "GZ-B", "GZ-A", "GZ-A", None, "GZ-C", "GZ-C",
                                                         "GZ-C", None]


def test_an_offline_moment_is_certified_on_its_shanghai_date(session, certified_product, pricing_page):
    product, _ = certified_product
    certs = [{"certificate_no": n, "valid_from": f, "valid_to": t} for n, f, t in CERTIFICATES]
    js = pricing_page.evaluate(
        "([certs, moments]) => moments.map((m) => { const day = SongtaoPricing.localDate(m);"
        " return [day, SongtaoPricing.certifiedOn(certs, day), SongtaoPricing.localDate(new Date(m))]; })",
        [certs, [m for m, _ in MOMENTS]])
    for (moment, day), (js_day, js_cert, js_day_of_date) in zip(MOMENTS, js):
        at = dt.datetime.fromisoformat(moment)
        server = certification_at(session, product, at)
        assert js_day == js_day_of_date == day == local_date(at).isoformat(), moment
        assert js_cert == {"certified": server.certified, "certificate_no": server.certificate_no}, moment
    # a sale at 23:59:59 on a certificate's last day stays certified; one second later it is not
    assert js[0][1]["certified"] and not js[1][1]["certified"]


def test_a_moment_without_its_offset_is_refused_as_the_server_refuses_it(pricing_page):
    with pytest.raises(ValueError):
        local_date(dt.datetime(2026, 11, 30, 23, 59))
    errors = pricing_page.evaluate(
        "(values) => values.map((v) => { try { SongtaoPricing.localDate(v); return null; }"
        " catch (e) { return e.message; } })", ["2026-11-30T23:59:00", "2026-11-30", "not a time", "2026-13-01T00:00Z"])
    assert all(errors), errors


# --- the API's running total --------------------------------------------------------------------------

def catalogue_lines(app, product_ids) -> dict:
    """What the till keeps offline for each product: its catalogue fields and certificates."""
    with session_scope(app) as s:
        out = {}
        for p in s.scalars(select(Product).where(Product.id.in_(product_ids))):
            certs = s.execute(select(Certificate.number, Certificate.valid_from, Certificate.valid_to)
                              .join(certificate_products, certificate_products.c.certificate_id == Certificate.id)
                              .where(certificate_products.c.product_id == p.id)).all()
            out[p.id] = {"product_id": p.id, "sku": p.sku, "name": p.name, "unit": p.unit.value,
                         "sold_by_weight": p.sold_by_weight, "price_fen": p.price_fen,
                         "certificates": [{"certificate_no": n, "valid_from": f.isoformat(), "valid_to": t.isoformat()}
                                          for n, f, t in certs]}
        return out


JS_PRICE_FROM_CATALOGUE = """([catalogue, body]) => {
    const P = self.SongtaoPricing, today = P.localDate(new Date());
    const lines = body.lines.map((l) => {
        const c = catalogue[l.product_id], cert = P.certifiedOn(c.certificates, today);
        return {...c, qty_milli: l.qty_milli, line_discount_fen: l.line_discount_fen,
                certified: cert.certified, certificate_no: cert.certificate_no};
    });
    try {
        return JSON.stringify(P.priceBasket(lines, {orderDiscountFen: body.order_discount_fen,
            roundingToJiaoSetting: body.rounding_to_jiao, paidInCash: body.paid_in_cash}));
    } catch (e) { return JSON.stringify({error: e.message}); }
}"""


@st.composite
def api_baskets(draw, hall):
    from inventory.money import line_amount_fen
    prices = {hall.tea: 16800, hall.honey: 3800, hall.pork: 3800}
    lines = []
    for product in draw(st.lists(st.sampled_from([hall.tea, hall.honey, hall.pork]), min_size=1, max_size=6)):
        qty = draw(st.integers(1, 50_000)) if product == hall.pork else 1000 * draw(st.integers(1, 9))
        gross = line_amount_fen(prices[product], qty)
        lines.append({"product_id": product, "qty_milli": qty,
                      "line_discount_fen": draw(st.one_of(st.just(0), st.integers(0, gross)))})
    after = sum(line_amount_fen(prices[ln["product_id"]], ln["qty_milli"]) - ln["line_discount_fen"] for ln in lines)
    return {"lines": lines, "order_discount_fen": draw(st.one_of(st.just(0), st.integers(0, after))),
            "rounding_to_jiao": draw(st.booleans()), "paid_in_cash": draw(st.booleans())}


def test_a_basket_priced_in_chromium_is_what_the_api_answers(app, hall, till, pricing_page):
    catalogue_data = catalogue_lines(app, [hall.tea, hall.honey, hall.pork])
    compared = []

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(api_baskets(hall))
    def priced_alike(body):
        response = till.post("/api/v1/baskets/price", body)
        assert response.status_code == 200, response.get_data(as_text=True)
        js = json.loads(pricing_page.evaluate(JS_PRICE_FROM_CATALOGUE, [catalogue_data, body]))
        assert same(js) == same(response.get_json())
        compared.append(js)

    priced_alike()
    assert len(compared) >= 60
    assert any(b["rounding_fen"] for b in compared) and any(b["cash_rounding_fen"] and not b["rounding_to_jiao"]
                                                            for b in compared)
    assert any(0 < b["certified_fen"] < b["total_fen"] for b in compared)  # the tea is certified, the rest not


@pytest.mark.parametrize("lines, order_discount", [
    ([{"qty_milli": 1500, "line_discount_fen": 0}], 0),                       # half a tea
    ([{"qty_milli": 1000, "line_discount_fen": 16801}], 0),                   # discount above the line
    ([{"qty_milli": 1000, "line_discount_fen": 800}], 16001),                 # order discount above the rest
])
def test_a_bad_basket_gets_the_apis_message_in_chromium_too(app, hall, till, pricing_page, lines, order_discount):
    body = {"lines": [{"product_id": hall.tea, **ln} for ln in lines], "order_discount_fen": order_discount,
            "rounding_to_jiao": False, "paid_in_cash": True}
    response = till.post("/api/v1/baskets/price", body)
    assert response.status_code == 422, response.get_data(as_text=True)
    js = json.loads(pricing_page.evaluate(JS_PRICE_FROM_CATALOGUE,
                                          [catalogue_lines(app, [hall.tea]), body]))
    assert js == {"error": response.get_json()["error"]}


def test_the_till_page_loads_the_pricing_script_before_its_own(till, hall):
    html = till.get("/till").get_data(as_text=True)
    assert html.index("js/pricing.js") < html.index("js/till.js")
