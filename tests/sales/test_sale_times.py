"""Issue 14, point 3: a sale (``sold_at``) and a refund (``refunded_at``) the till made offline carry
their own time, and the server bounds it in one place (pos.sales.offline.check_time): at most 5
minutes ahead, not before the shift it counts in opened, not older than OFFLINE_MAX_AGE_DAYS, a
naive time refused, a refund never before its sale. A refused one records nothing. A sale whose
shift was closed meanwhile is kept as a late sale of that shift. Point 2: an offline sale at an
old price is recorded at what the customer paid and flagged for the manager.

Times are taken relative to the server's clock when the test runs; nothing asserts a wall-clock time.
"""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select, update

from inventory.localtime import HALL_TZ
from inventory.models import Alert, AlertKind, StockMove
from pos.core.db import session_scope
from pos.hall import shifts as shift_service
from pos.hall.api import sales as till_sales
from pos.models import Payment, Refund, Sale, SaleLine, Shift
from tests.conftest import csrf_token
from tests.fixtures.till import (  # noqa: F401  (hall, till: fixtures)
    MANAGER_PIN,
    assert_error,
    hall,
    login,
    sale_body,
    till,
)

TOTAL = 16800 + 1987  # the tea and 523 g of pork at the catalogue's prices


def now() -> dt.datetime:
    return dt.datetime.now(HALL_TZ).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def recorded(app) -> tuple[int, int, int, int]:
    """What a refused request must leave unchanged: sales, payments, stock moves, refunds."""
    with session_scope(app) as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Sale, Payment, StockMove, Refund))


def open_shift(app, till, opened_at: dt.datetime) -> int:
    """The cashier opens H1's shift; it is dated back to ``opened_at`` (as if opened then)."""
    response = till.post("/api/v1/shifts", {"till": "H1", "opening_float_fen": 10000})
    assert response.status_code == 201, response.get_json()
    shift_id = response.get_json()["id"]
    with session_scope(app) as s:
        s.execute(update(Shift).where(Shift.id == shift_id).values(opened_at=opened_at.astimezone(dt.timezone.utc)))
    return shift_id


def offline_sale(hall, sold_at, **overrides) -> dict:
    return sale_body(hall, sold_at=iso(sold_at) if isinstance(sold_at, dt.datetime) else sold_at, **overrides)


# --- sold_at: the bounds ------------------------------------------------------------------------------

def test_a_sale_at_most_five_minutes_ahead(app, till, hall):
    open_shift(app, till, now() - dt.timedelta(hours=1))
    before = recorded(app)
    assert_error(till.post("/api/v1/sales", offline_sale(hall, now() + dt.timedelta(minutes=6))), 422,
                 "校准收银台时钟", field="sold_at")
    assert recorded(app) == before
    ahead = now() + dt.timedelta(minutes=4)
    response = till.post("/api/v1/sales", offline_sale(hall, ahead))
    assert response.status_code == 201, response.get_json()
    sale = till_sales.SaleOut.model_validate(response.get_json()).sale
    assert dt.datetime.fromisoformat(sale.sold_at) == ahead and sale.local_date == ahead.date().isoformat()
    assert not sale.after_shift_closed


def test_a_sale_before_its_shift_opened_is_refused(app, till, hall):
    opened = now() - dt.timedelta(hours=1)
    shift_id = open_shift(app, till, opened)
    before = recorded(app)
    body = assert_error(till.post("/api/v1/sales", offline_sale(hall, opened - dt.timedelta(minutes=1))), 422,
                        "开班时间", field="sold_at")
    assert f"#{shift_id}" in body["error"]
    assert recorded(app) == before
    assert till.post("/api/v1/sales", offline_sale(hall, opened + dt.timedelta(minutes=1))).status_code == 201


def test_a_sale_older_than_the_limit_is_refused(app, till, hall):
    open_shift(app, till, now() - dt.timedelta(days=9))
    before = recorded(app)
    assert_error(till.post("/api/v1/sales", offline_sale(hall, now() - dt.timedelta(days=7, minutes=5))), 422,
                 "7 天", field="sold_at")
    assert recorded(app) == before
    six_days = now() - dt.timedelta(days=6)
    response = till.post("/api/v1/sales", offline_sale(hall, six_days))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["sale"]["local_date"] == six_days.date().isoformat()
    assert f"-{six_days:%Y%m%d}-" in response.get_json()["receipt_no"]  # the receipt carries its own day

    app.config["OFFLINE_MAX_AGE_DAYS"] = 2  # configured shorter: three days old is too old now
    before = recorded(app)
    assert_error(till.post("/api/v1/sales", offline_sale(hall, now() - dt.timedelta(days=3))), 422,
                 "2 天", field="sold_at")
    assert recorded(app) == before
    assert till.post("/api/v1/sales", offline_sale(hall, now() - dt.timedelta(days=1))).status_code == 201


@pytest.mark.parametrize("moment, fragment", [
    ("2026-11-30T23:59:00", "时区"),          # naive: whose 23:59?
    ("2026-11-30", "时区"),
    ("30/11/2026 23:59", "ISO 8601"),
    (1764518340, "ISO 8601"),                # seconds since 1970 are no ISO 8601 moment
])
def test_a_time_without_its_offset_is_refused(app, till, hall, moment, fragment):
    open_shift(app, till, now() - dt.timedelta(hours=1))
    before = recorded(app)
    assert_error(till.post("/api/v1/sales", offline_sale(hall, moment)), 422, fragment, field="sold_at")
    assert recorded(app) == before


def test_a_resend_after_the_limit_is_still_the_same_sale(app, till, hall):
    """Bounds judge a new sale; a resend of one recorded before answers as before (200), even
    when its time has become older than the limit meanwhile."""
    open_shift(app, till, now() - dt.timedelta(days=3))
    body = offline_sale(hall, now() - dt.timedelta(days=2))
    first = till.post("/api/v1/sales", body)
    assert first.status_code == 201
    app.config["OFFLINE_MAX_AGE_DAYS"] = 1
    again = till.post("/api/v1/sales", body)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert recorded(app)[0] == 1


def test_a_sale_whose_shift_closed_meanwhile_is_kept_as_a_late_sale_of_that_shift(app, till, hall, client, auth,
                                                                                  make_user):
    """Sold offline in shift A; A was closed (from the office) and another cashier opened B before
    the sale came back: it counts in A, flagged like every late sale (B's owner is not asked: the
    money was taken in A); A's Z report does not change; B is not touched."""
    shift_a = open_shift(app, till, now() - dt.timedelta(hours=3))
    closed = till.post(f"/api/v1/shifts/{shift_a}/close", {"denominations": {"10000": 1}})
    assert closed.status_code == 200, closed.get_json()
    make_user("cash2", "cashier")
    auth.logout()
    other = login(client, auth, "cash2")
    shift_b = other.post("/api/v1/shifts", {"till": "H1", "opening_float_fen": 0}).get_json()["id"]
    auth.logout()
    till = login(client, auth, "cash")

    sold_at = now() - dt.timedelta(hours=2)
    response = till.post("/api/v1/sales", offline_sale(hall, sold_at))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["sale"]["after_shift_closed"] is True
    with session_scope(app) as s:
        sale = s.scalar(select(Sale))
        assert (sale.shift_id, sale.total_fen) == (shift_a, TOTAL)
        assert s.scalar(select(func.count(Alert.id)).where(Alert.kind == AlertKind.LATE_SALE)) == 1
        late = shift_service.late_sales(s)
        assert [(r["receipt_no"], r["shift_id"]) for r in late] == [(sale.receipt_no, shift_a)]
        z = shift_service.shift_report(s, shift_a)
        assert (z.sales_count, z.cash_sales_fen, z.late_sales_count) == (0, 0, 1)
        assert shift_service.shift_report(s, shift_b).sales_count == 0

    # …and the manager sees it on the late-sales page, named for shift A
    auth.logout()
    login(client, auth, "boss")
    page = client.get("/shifts/late-sales").get_data(as_text=True)
    assert response.get_json()["receipt_no"] in page and f'data-meant-for="{shift_a}"' in page


def test_an_online_sale_may_not_name_its_price(app, till, hall):
    before = recorded(app)
    body = sale_body(hall, lines=[{"product_id": hall.tea, "qty_milli": 1000, "unit_price_fen": 100}],
                     payments=[{"method": "cash", "amount_fen": 100}])
    assert_error(till.post("/api/v1/sales", body), 422, "离线", field="lines[0].unit_price_fen")
    assert recorded(app) == before


# --- refunded_at ------------------------------------------------------------------------------------

def _refund(hall, sale, refunded_at, **overrides) -> dict:
    body = {"client_refund_id": str(uuid.uuid4()), "receipt_no": sale["receipt_no"], "till": "H1",
            "lines": [{"sale_line_id": sale["sale"]["lines"][0]["id"], "qty_milli": 1000, "back_to_stock": True}],
            "reason": "顾客不要了", "approval_pin": MANAGER_PIN,
            "refunded_at": refunded_at if isinstance(refunded_at, str) else iso(refunded_at)}
    body.update(overrides)
    return body


def test_refund_times_are_bounded_like_sales_and_never_before_the_sale(app, till, hall):
    opened = now() - dt.timedelta(days=3)
    open_shift(app, till, opened)
    sold_at = now() - dt.timedelta(days=2)
    sale = till.post("/api/v1/sales", offline_sale(hall, sold_at)).get_json()
    before = recorded(app)
    for moment, fragment in ((now() + dt.timedelta(minutes=6), "校准收银台时钟"),
                             (sold_at - dt.timedelta(minutes=1), "早于原销售时间"),
                             (opened - dt.timedelta(minutes=1), "开班时间"),
                             ("2026-11-30T23:59:00", "时区")):
        assert_error(till.post("/api/v1/refunds", _refund(hall, sale, moment)), 422, fragment, field="refunded_at")
        assert recorded(app) == before, moment
    app.config["OFFLINE_MAX_AGE_DAYS"] = 1
    assert_error(till.post("/api/v1/refunds", _refund(hall, sale, sold_at + dt.timedelta(hours=1))), 422,
                 "1 天", field="refunded_at")
    assert recorded(app) == before
    app.config["OFFLINE_MAX_AGE_DAYS"] = 7

    refunded_at = now() + dt.timedelta(minutes=4)
    response = till.post("/api/v1/refunds", _refund(hall, sale, refunded_at))
    assert response.status_code == 201, response.get_json()
    with session_scope(app) as s:
        refund = s.scalar(select(Refund))
        assert refund.refunded_at == refunded_at and refund.local_date == refunded_at.date()
        assert refund.total_fen == sale["sale"]["lines"][0]["net_fen"]
    assert recorded(app)[3] == 1


def test_an_offline_refund_counts_on_its_own_day(app, till, hall):
    open_shift(app, till, now() - dt.timedelta(days=3))
    sale = till.post("/api/v1/sales", offline_sale(hall, now() - dt.timedelta(days=2, hours=1))).get_json()
    refunded_at = now() - dt.timedelta(days=2)
    response = till.post("/api/v1/refunds", _refund(hall, sale, refunded_at))
    assert response.status_code == 201, response.get_json()
    assert f"-{refunded_at:%Y%m%d}-" in response.get_json()["refund_no"]
    with session_scope(app) as s:
        assert s.scalar(select(Refund.local_date)) == refunded_at.date()


# --- issue 14, point 2: an offline sale at an old price -------------------------------------------------

def test_an_offline_sale_at_an_old_price_is_recorded_at_that_price_and_flagged(app, till, hall, client, auth):
    open_shift(app, till, now() - dt.timedelta(hours=2))
    paid = 15800 + 1987  # the till still had the tea at ¥158.00
    body = offline_sale(hall, now() - dt.timedelta(hours=1),
                        lines=[{"product_id": hall.tea, "qty_milli": 1000, "unit_price_fen": 15800},
                               {"product_id": hall.pork, "qty_milli": 523, "unit_price_fen": 3800}],
                        payments=[{"method": "cash", "amount_fen": paid, "tendered_fen": 20000}])
    response = till.post("/api/v1/sales", body)
    assert response.status_code == 201, response.get_json()
    out = till_sales.SaleOut.model_validate(response.get_json())
    assert out.total_fen == paid and out.change_fen == 20000 - paid
    assert out.sale.price_differs is True
    assert [(ln.unit_price_fen, ln.list_price_fen) for ln in out.sale.lines] == [(15800, 16800), (3800, None)]
    assert sum(p.amount_fen for p in out.sale.payments) == out.sale.total_fen == sum(ln.net_fen for ln in out.sale.lines)
    assert out.sale.certified_fen == 15800

    # the till's sale view carries the flag; a resend is the same sale, not a conflict
    assert till.get(f"/api/v1/sales/{out.receipt_no}").get_json()["price_differs"] is True
    again = till.post("/api/v1/sales", body)
    assert again.status_code == 200 and again.get_json() == response.get_json()
    assert_error(till.post("/api/v1/sales", dict(body, lines=[dict(body["lines"][0], unit_price_fen=15000),
                                                              body["lines"][1]])), 409)
    with session_scope(app) as s:
        assert s.scalar(select(func.count(Sale.id))) == 1
        alert = s.scalar(select(Alert).where(Alert.kind == AlertKind.PRICE_MISMATCH))
        assert alert.ref_id == out.sale.id and "¥158.00" in alert.message and "¥168.00" in alert.message

    # the manager's page: the catalogue price beside the price paid, until checked
    auth.logout()
    login(client, auth, "boss")
    page = client.get("/shifts/price-differences").get_data(as_text=True)
    assert f'data-receipt="{out.receipt_no}"' in page
    assert 'data-list-price="16800"' in page and 'data-paid-price="15800"' in page and "¥168.00" in page
    token = csrf_token(client, "/shifts/price-differences")
    reviewed = client.post(f"/shifts/price-differences/{out.sale.id}/review", data={"csrf_token": token})
    assert reviewed.status_code == 302
    row = f'data-receipt="{out.receipt_no}"'
    assert row not in client.get("/shifts/price-differences").get_data(as_text=True)
    assert row in client.get("/shifts/price-differences?show=all").get_data(as_text=True)


def test_an_offline_sale_at_the_catalogue_price_is_not_flagged(app, till, hall):
    open_shift(app, till, now() - dt.timedelta(hours=2))
    body = offline_sale(hall, now() - dt.timedelta(hours=1),
                        lines=[{"product_id": hall.tea, "qty_milli": 1000, "unit_price_fen": 16800}],
                        payments=[{"method": "cash", "amount_fen": 16800}])
    response = till.post("/api/v1/sales", body)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["sale"]["price_differs"] is False
    with session_scope(app) as s:
        assert s.scalar(select(SaleLine.list_price_fen)) is None
        assert s.scalar(select(func.count(Alert.id)).where(Alert.kind == AlertKind.PRICE_MISMATCH)) == 0
