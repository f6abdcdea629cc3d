"""Issue 14, "Done means": a sale the till made offline at 23:59 on the last day of a month and sent
after midnight counts in THAT month — in the consumption-collaboration statistics and in the
monthly summary, to the fen — its receipt number carries that day, and a product whose certificate
lapsed at that midnight (valid_to = the last day) is counted certified on it. Through the real API
(the till's, then the reports'), on SQLite and on PostgreSQL (TEST_DATABASE_URL).

The month is the one before the server's current local month, so the sale is always sent after
its midnight; the age limit is configured to reach it.
"""
from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update

from inventory import catalogue, suppliers
from inventory.localtime import HALL_TZ, local_today
from pos.core.db import session_scope
from pos.models import Sale, Shift
from tests.fixtures.till import hall, login, till  # noqa: F401  (fixtures)

LAST_DAY = local_today().replace(day=1) - dt.timedelta(days=1)   # the last day of last month
FIRST_DAY = LAST_DAY.replace(day=1)
NEXT_DAY = LAST_DAY + dt.timedelta(days=1)                        # the first of this month
SOLD_AT = dt.datetime.combine(LAST_DAY, dt.time(23, 59), tzinfo=HALL_TZ)
JUICE_PRICE = 4580
HONEY_PRICE = 3800


def _lapsing_product(app) -> int:
    """A juice whose certificate is valid to LAST_DAY inclusive: it lapsed at that midnight."""
    with session_scope(app) as s:
        coop = suppliers.create_supplier(s, name="松桃苗族自治县刺梨专业合作社", origin_county="松桃苗族自治县",
                                         origin_county_code="520628")
        juice = catalogue.create_product(s, sku="CILI", name="刺梨原汁 500ml", price_fen=JUICE_PRICE,
                                         supplier_id=coop.id)
        suppliers.create_certificate(s, number="GZ-520628-CILI-01", issuer="松桃苗族自治县农业农村局",
                                     valid_from=LAST_DAY - dt.timedelta(days=365), valid_to=LAST_DAY,
                                     supplier_id=coop.id, product_ids=[juice.id])
        return juice.id


def test_a_sale_made_at_2359_on_the_last_day_and_sent_after_midnight_counts_in_that_month(app, client, auth,
                                                                                          till, hall):
    juice = _lapsing_product(app)
    app.config["OFFLINE_MAX_AGE_DAYS"] = 40  # last month's last day may be up to 31 days ago
    opened = till.post("/api/v1/shifts", {"till": "H1", "opening_float_fen": 0})
    assert opened.status_code == 201
    with session_scope(app) as s:  # the shift was opened that evening, before the network dropped
        s.execute(update(Shift).where(Shift.id == opened.get_json()["id"])
                  .values(opened_at=(SOLD_AT - dt.timedelta(hours=3)).astimezone(dt.timezone.utc)))

    # 2 juices and a honey, 抹零 off: 2 × 45.80 + 38.00 = 129.60
    total = 2 * JUICE_PRICE + HONEY_PRICE
    body = {"client_sale_id": str(uuid.uuid4()), "till": "H1", "sold_at": SOLD_AT.isoformat(),
            "rounding_to_jiao": False,
            "lines": [{"product_id": juice, "qty_milli": 2000}, {"product_id": hall.honey, "qty_milli": 1000}],
            "payments": [{"method": "cash", "amount_fen": total, "tendered_fen": 15000}]}
    response = till.post("/api/v1/sales", body)
    assert response.status_code == 201, response.get_json()
    sale = response.get_json()
    assert sale["receipt_no"] == f"H1-{LAST_DAY:%Y%m%d}-0001"
    assert sale["sale"]["local_date"] == LAST_DAY.isoformat() and sale["sale"]["after_shift_closed"] is False
    assert [(ln["product_id"], ln["certified"], ln["net_fen"]) for ln in sale["sale"]["lines"]] == [
        (juice, True, 2 * JUICE_PRICE), (hall.honey, False, HONEY_PRICE)]
    assert sale["sale"]["certified_fen"] == 2 * JUICE_PRICE
    with session_scope(app) as s:
        recorded = s.scalar(select(Sale))
        assert recorded.local_date == LAST_DAY and recorded.recorded_at.astimezone(HALL_TZ).date() >= NEXT_DAY

    # The same juice sold online now: its certificate has lapsed, so it is not certified
    now_sale = till.post("/api/v1/sales", {"client_sale_id": str(uuid.uuid4()), "till": "H1",
                                           "lines": [{"product_id": juice, "qty_milli": 1000}],
                                           "payments": [{"method": "cash", "amount_fen": JUICE_PRICE}]})
    assert now_sale.status_code == 201, now_sale.get_json()
    assert now_sale.get_json()["sale"]["lines"][0]["certified"] is False
    assert now_sale.get_json()["sale"]["local_date"] == local_today().isoformat()

    # The auditor's figures: last month holds the offline sale, to the fen; this month does not
    auth.logout()
    login(client, auth, "boss")
    collab = client.get("/api/v1/reports/collaboration",
                        query_string={"from": FIRST_DAY.isoformat(), "to": LAST_DAY.isoformat()})
    assert collab.status_code == 200, collab.get_json()
    figures = collab.get_json()
    assert (figures["total_fen"], figures["certified_fen"], figures["uncertified_fen"]) == (
        total, 2 * JUICE_PRICE, HONEY_PRICE)
    assert figures["by_channel"]["hall"]["total_fen"] == total and figures["by_channel"]["hall"]["sales"] == 1
    assert figures["songtao_fen"] == 2 * JUICE_PRICE  # the juice's supplier is in the paired county

    monthly = client.get("/api/v1/reports/monthly", query_string={"month": f"{LAST_DAY:%Y-%m}"})
    assert monthly.status_code == 200, monthly.get_json()
    month = monthly.get_json()
    assert (month["total_fen"], month["certified_fen"], month["sales"]) == (total, 2 * JUICE_PRICE, 1)
    last_day = next(d for d in month["by_day"] if d["date"] == LAST_DAY.isoformat())
    assert (last_day["total_fen"], last_day["certified_fen"], last_day["sales"]) == (total, 2 * JUICE_PRICE, 1)
    assert sum(d["total_fen"] for d in month["by_day"]) == total
    assert {p["method"]: p["sales_fen"] for p in month["by_payment"] if p["sales_fen"]} == {"cash": total}

    this_month = client.get("/api/v1/reports/monthly", query_string={"month": f"{NEXT_DAY:%Y-%m}"}).get_json()
    assert (this_month["total_fen"], this_month["certified_fen"], this_month["sales"]) == (JUICE_PRICE, 0, 1)
