"""The till's offline catalogue (GET /api/v1/catalogue): the whole catalogue with a cursor, then
only what changed since it — a price change, a new barcode, a new and a changed certificate, a
product retired and one put back on sale each show up in the next delta, and nothing else does (a
sale touches no product). The hall is tests/fixtures/till.py's."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import event

from inventory import catalogue, suppliers
from inventory.barcodes import ean13
from inventory.localtime import local_today
from pos.core.db import session_scope
from pos.hall.api.catalogue import CatalogueOut
from tests.fixtures.till import (  # noqa: F401  (hall, till: fixtures)
    TEA_EAN,
    WEIGHT13,
    assert_error,
    hall,
    sale_body,
    till,
)


def fetch(till, **params) -> dict:
    r = till.get("/api/v1/catalogue", till="H1", **params)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    CatalogueOut.model_validate(body)  # the documented shape, no extra fields
    return body


def by_id(body) -> dict[int, dict]:
    return {p["product_id"]: p for p in body["products"]}


def test_the_first_call_gives_everything_on_sale(till, hall):
    body = fetch(till)
    assert body["full"] is True and body["removed"] == []
    products = by_id(body)
    assert set(products) == {hall.tea, hall.honey, hall.pork}  # not the retired one
    tea = products[hall.tea]
    assert tea["sku"] == "TEA250" and tea["price_fen"] == 16800 and tea["barcodes"] == [TEA_EAN]
    assert tea["pinyin_initials"] == "fjscfc250g" and tea["unit"] == "piece" and tea["weighed"] is False
    today = local_today()
    assert tea["certificates"] == [{"certificate_no": "GZ-520628-2026-001",
                                    "valid_from": (today - dt.timedelta(days=30)).isoformat(),
                                    "valid_to": (today + dt.timedelta(days=300)).isoformat()}]
    pork = products[hall.pork]
    assert pork["scale_plu"] == 101 and pork["sold_by_weight"] is True and pork["weighed"] is True
    assert pork["certificates"] == [] and products[hall.honey]["barcodes"] == []
    assert body["scale_rules"] == [WEIGHT13]
    assert hall.pork in body["quick_keys"]["weighed"]
    assert body["settings"] == {"hall_name": "梵净山珍·松桃馆", "rounding_to_jiao": False, "discount_limit_percent": 10}
    assert body["today"] == today.isoformat()
    assert body["cursor"] > 0


def test_nothing_changed_gives_an_empty_delta_and_the_same_cursor(till, hall):
    first = fetch(till)
    again = fetch(till, since=first["cursor"])
    assert again["full"] is False and again["products"] == [] and again["removed"] == []
    assert again["cursor"] == first["cursor"]
    assert again["scale_rules"] == [WEIGHT13] and again["settings"]["discount_limit_percent"] == 10


def test_a_price_change_is_in_the_next_delta(app, till, hall):
    cursor = fetch(till)["cursor"]
    with session_scope(app) as s:
        catalogue.update_product(s, hall.honey, price_fen=4200)
    delta = fetch(till, since=cursor)
    assert list(by_id(delta)) == [hall.honey] and by_id(delta)[hall.honey]["price_fen"] == 4200
    assert delta["cursor"] > cursor
    assert fetch(till, since=delta["cursor"])["products"] == []


def test_a_new_and_a_removed_barcode_are_in_the_next_delta(app, till, hall):
    cursor = fetch(till)["cursor"]
    code = ean13("690123456790")
    with session_scope(app) as s:
        barcode = catalogue.add_barcode(s, hall.honey, code)
        barcode_id = barcode.id
    delta = fetch(till, since=cursor)
    assert list(by_id(delta)) == [hall.honey] and by_id(delta)[hall.honey]["barcodes"] == [code]
    with session_scope(app) as s:
        catalogue.remove_barcode(s, barcode_id)
    later = fetch(till, since=delta["cursor"])
    assert list(by_id(later)) == [hall.honey] and by_id(later)[hall.honey]["barcodes"] == []


def test_a_new_certificate_and_a_changed_one_are_in_the_next_delta(app, till, hall):
    cursor = fetch(till)["cursor"]
    today = local_today()
    with session_scope(app) as s:
        cert = suppliers.create_certificate(s, number="GZ-520628-2026-002", issuer="松桃苗族自治县农业农村局",
                                            valid_from=today, valid_to=today + dt.timedelta(days=10),
                                            product_ids=[hall.honey])
        cert_id = cert.id
    delta = fetch(till, since=cursor)
    assert list(by_id(delta)) == [hall.honey]
    assert [c["certificate_no"] for c in by_id(delta)[hall.honey]["certificates"]] == ["GZ-520628-2026-002"]
    # its validity shortened: the product it covers comes again with the new dates
    with session_scope(app) as s:
        suppliers.update_certificate(s, cert_id, valid_to=today + dt.timedelta(days=1))
    later = fetch(till, since=delta["cursor"])
    assert list(by_id(later)) == [hall.honey]
    assert by_id(later)[hall.honey]["certificates"][0]["valid_to"] == (today + dt.timedelta(days=1)).isoformat()
    # the certificate moved to the pork: both the honey (no longer covered) and the pork come
    with session_scope(app) as s:
        suppliers.update_certificate(s, cert_id, product_ids=[hall.pork])
    moved = fetch(till, since=later["cursor"])
    assert set(by_id(moved)) == {hall.honey, hall.pork}
    assert by_id(moved)[hall.honey]["certificates"] == []
    assert [c["certificate_no"] for c in by_id(moved)[hall.pork]["certificates"]] == ["GZ-520628-2026-002"]


def test_a_retired_product_is_removed_and_one_back_on_sale_comes_again(app, till, hall):
    cursor = fetch(till)["cursor"]
    with session_scope(app) as s:
        catalogue.set_active(s, hall.honey, False)
    delta = fetch(till, since=cursor)
    assert delta["products"] == [] and delta["removed"] == [hall.honey]
    with session_scope(app) as s:
        catalogue.set_active(s, hall.retired, True)
        catalogue.create_product(s, sku="NEW", name="新品米豆腐", price_fen=900)
    later = fetch(till, since=delta["cursor"])
    assert later["removed"] == []
    assert {p["sku"] for p in later["products"]} == {"OLD", "NEW"}


def test_a_sale_changes_no_product(app, till, hall):
    cursor = fetch(till)["cursor"]
    assert till.post("/api/v1/shifts", {"till": "H1", "opening_float_fen": 0}).status_code == 201
    r = till.post("/api/v1/sales", sale_body(hall))
    assert r.status_code == 201, r.get_data(as_text=True)
    delta = fetch(till, since=cursor)
    assert delta["products"] == [] and delta["cursor"] == cursor


def test_a_cursor_from_the_future_starts_again(till, hall):
    body = fetch(till, since=10**9)
    assert body["full"] is True and len(body["products"]) == 3


def test_bad_arguments(till, hall):
    assert_error(till.get("/api/v1/catalogue", till="H9"), 422, field="till")
    assert_error(till.get("/api/v1/catalogue", since="x"), 422)
    assert_error(till.get("/api/v1/catalogue", since="-1"), 422)


def test_one_query_per_kind_whatever_the_size(app, till, hall):
    with session_scope(app) as s:
        for i in range(60):
            catalogue.create_product(s, sku=f"P{i:03d}", name=f"商品{i}", price_fen=100 + i,
                                     barcodes=[ean13(f"69000000{i:04d}")])
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = app.extensions["songtao.engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        small = fetch(till)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(small["products"]) == 63
    catalogue_queries = [q for q in statements if "products" in q or "barcodes" in q or "certificate" in q]
    assert len(statements) < 20, statements
    assert len(catalogue_queries) <= 8, catalogue_queries
