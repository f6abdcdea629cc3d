"""Receipt numbers without the server (issue 14, point 4), over the till's API: a till reserves a
block of receipt numbers for today or tomorrow (POST /api/v1/receipt-blocks), a sale made offline
brings one as ``receipt_no`` (POST /api/v1/sales), and GET /api/v1/receipt-blocks lists the unused
ones again. Reserved numbers come from the counter the server's own receipts use, so they never
collide across tills or with the sales the server numbers."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from inventory.localtime import local_today
from pos.core.db import session_scope
from pos.hall.api.receipt_blocks import ReceiptBlockOut, ReceiptBlocksOut
from pos.models import ReceiptBlock, Sale, Till
from pos.sales.receipt_blocks import MAX_UNUSED_PER_DAY
from tests.fixtures.till import assert_error, count, hall, sale_body, till  # noqa: F401  (fixtures)


def _add_till(app, code: str, *, active: bool = True) -> None:
    with session_scope(app) as s:
        h1 = s.scalar(select(Till).where(Till.code == "H1"))
        s.add(Till(code=code, name=f"{code} 收银台", location_id=h1.location_id, printer_uri="none",
                   paper_columns=48, active=active))


def _reserve(till, code="H1", day=None, count_=None) -> list[str]:
    body = {"till": code, "day": (day or local_today()).isoformat()}
    if count_ is not None:
        body["count"] = count_
    answer = till.post("/api/v1/receipt-blocks", body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    block = ReceiptBlockOut.model_validate(answer.get_json())
    assert (block.till, block.day) == (code, body["day"])
    return block.numbers


def _sell(api, hall, **overrides) -> dict:
    answer = api.post("/api/v1/sales", sale_body(hall, **overrides))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()


def _listed(till, code="H1") -> dict[str, list[str]]:
    answer = till.get("/api/v1/receipt-blocks", till=code)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    listed = ReceiptBlocksOut.model_validate(answer.get_json())
    assert listed.till == code
    return {block.day: block.numbers for block in listed.blocks}


def test_a_block_is_consecutive_numbers_of_the_tills_day_counter(till, hall):
    today = f"{local_today():%Y%m%d}"
    first = _sell(till, hall)["receipt_no"]
    assert first == f"H1-{today}-0001"

    assert _reserve(till) == [f"H1-{today}-{n:04d}" for n in range(2, 22)]  # 20 by default
    assert _reserve(till, count_=3) == [f"H1-{today}-{n:04d}" for n in (22, 23, 24)]
    assert _sell(till, hall)["receipt_no"] == f"H1-{today}-0025"  # the server's own numbers go on after them


def test_reserved_numbers_are_unique_across_tills_and_against_ordinary_sales(app, till, hall):
    _add_till(app, "H2")
    given: list[str] = []
    for round_ in range(3):  # reservations and sales of two tills, interleaved
        given += _reserve(till, "H1", count_=4 + round_)
        given.append(_sell(till, hall)["receipt_no"])
        given += _reserve(till, "H2", count_=5)
        given.append(_sell(till, hall, till="H2")["receipt_no"])
        given += _reserve(till, "H1", day=local_today() + dt.timedelta(days=1), count_=2)
        given.append(_sell(till, hall)["receipt_no"])

    assert len(given) == len(set(given))
    today, tomorrow = f"{local_today():%Y%m%d}", f"{local_today() + dt.timedelta(days=1):%Y%m%d}"
    h1_today = sorted(int(n.rsplit("-", 1)[1]) for n in given if n.startswith(f"H1-{today}-"))
    assert h1_today == list(range(1, len(h1_today) + 1))  # no gap, no repeat: one counter
    h2 = sorted(int(n.rsplit("-", 1)[1]) for n in given if n.startswith("H2-"))
    assert h2 == list(range(1, 3 * 6 + 1))
    assert sum(n.startswith(f"H1-{tomorrow}-") for n in given) == 6

    # a sale using each till's own reserved number keeps everything unique
    h1_block, h2_block = _reserve(till, "H1", count_=2), _reserve(till, "H2", count_=2)
    used = [_sell(till, hall, receipt_no=h1_block[1])["receipt_no"],
            _sell(till, hall, till="H2", receipt_no=h2_block[0])["receipt_no"],
            _sell(till, hall)["receipt_no"]]
    assert used[:2] == [h1_block[1], h2_block[0]]
    assert used[2] not in given + h1_block + h2_block
    with session_scope(app) as s:
        numbers = list(s.scalars(select(Sale.receipt_no)))
        assert len(numbers) == len(set(numbers)) == 3 * 3 + 3


def test_a_sale_carries_its_reserved_number_and_its_resend_is_the_duplicate(app, till, hall):
    numbers = _reserve(till, count_=5)
    body = sale_body(hall, receipt_no=numbers[2])
    first = till.post("/api/v1/sales", body)
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.get_json()["receipt_no"] == numbers[2] == first.get_json()["sale"]["receipt_no"]

    again = till.post("/api/v1/sales", body)  # the till resends after a timeout
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["receipt_no"] == numbers[2]
    assert count(app, Sale) == 1

    # the same id with another receipt number is not the same sale
    assert_error(till.post("/api/v1/sales", {**body, "receipt_no": numbers[3]}), 409)
    assert count(app, Sale) == 1


def test_a_used_number_is_refused_to_another_sale(app, till, hall):
    numbers = _reserve(till, count_=2)
    _sell(till, hall, receipt_no=numbers[0])
    assert_error(till.post("/api/v1/sales", sale_body(hall, receipt_no=numbers[0])), 422, "小票号", numbers[0],
                 field="receipt_no")
    assert count(app, Sale) == 1
    assert _sell(till, hall, receipt_no=numbers[1])["receipt_no"] == numbers[1]


def test_a_number_of_another_tills_block_is_refused_and_nothing_recorded(app, till, hall):
    _add_till(app, "H2")
    theirs = _reserve(till, "H2", count_=3)
    _reserve(till, "H1", count_=3)
    answer = till.post("/api/v1/sales", sale_body(hall, receipt_no=theirs[0]))
    body = assert_error(answer, 422, "小票号", theirs[0], field="receipt_no")
    assert body["error"].startswith("小票号")
    assert count(app, Sale) == 0
    # nor a number nobody reserved, nor one the server gave an ordinary sale, nor a made-up one
    today = f"{local_today():%Y%m%d}"
    ordinary = _sell(till, hall)["receipt_no"]
    for number in (f"H1-{today}-0999", ordinary, f"H1-{today}-2", f"H1-{today}-00002", "H1", "x-1-1"):
        assert_error(till.post("/api/v1/sales", sale_body(hall, receipt_no=number)), 422, "小票号",
                     field="receipt_no")
    assert count(app, Sale) == 1


def test_a_block_for_tomorrow_is_refused_to_a_sale_today(app, till, hall):
    tomorrow = local_today() + dt.timedelta(days=1)
    numbers = _reserve(till, day=tomorrow, count_=2)
    assert numbers[0] == f"H1-{tomorrow:%Y%m%d}-0001"
    assert_error(till.post("/api/v1/sales", sale_body(hall, receipt_no=numbers[0])), 422, "小票号", numbers[0],
                 local_today().isoformat(), field="receipt_no")
    assert count(app, Sale) == 0
    # today's sales are numbered from today's counter, tomorrow's from tomorrow's
    assert _sell(till, hall)["receipt_no"] == f"H1-{local_today():%Y%m%d}-0001"


def test_the_list_shows_only_unused_numbers_by_day(app, till, hall):
    today, tomorrow = local_today(), local_today() + dt.timedelta(days=1)
    assert _listed(till) == {}
    first = _reserve(till, count_=4)
    later = _reserve(till, day=tomorrow, count_=2)
    second = _reserve(till, count_=2)
    _sell(till, hall)  # an ordinary sale between: its number is in no block
    _sell(till, hall, receipt_no=first[1])
    _sell(till, hall, receipt_no=second[0])

    assert _listed(till) == {today.isoformat(): [first[0], first[2], first[3], second[1]],
                             tomorrow.isoformat(): later}
    # a block of a past day is not listed any more
    with session_scope(app) as s:
        s.execute(ReceiptBlock.__table__.update().where(ReceiptBlock.first_no == 1, ReceiptBlock.day == today)
                  .values(day=today - dt.timedelta(days=1)))
    assert _listed(till) == {today.isoformat(): [second[1]], tomorrow.isoformat(): later}


def test_reservations_are_refused_outside_today_and_tomorrow_and_for_unknown_or_retired_tills(app, till, hall):
    _add_till(app, "H9", active=False)
    today = local_today()
    for day in (today - dt.timedelta(days=1), today + dt.timedelta(days=2), dt.date(2000, 1, 1)):
        assert_error(till.post("/api/v1/receipt-blocks", {"till": "H1", "day": day.isoformat()}), 422, field="day")
    for bad in ("2026-02-30", "2026-13-01", "0000-01-01", "20261205", "２０２６-12-05"):
        assert_error(till.post("/api/v1/receipt-blocks", {"till": "H1", "day": bad}), 422, field="day")
    for n in (0, 101, -1, "20", 2.5, True):
        assert_error(till.post("/api/v1/receipt-blocks", {"till": "H1", "day": today.isoformat(), "count": n}),
                     422, field="count")
    for code in ("H7", "H9"):
        assert_error(till.post("/api/v1/receipt-blocks", {"till": code, "day": today.isoformat()}), 422, code,
                     field="till")
        assert_error(till.get("/api/v1/receipt-blocks", till=code), 422, field="till")
    assert_error(till.post("/api/v1/receipt-blocks", {"till": "H1", "day": today.isoformat(), "tills": 1}), 422)
    assert count(app, ReceiptBlock) == 0
    assert _sell(till, hall)["receipt_no"].endswith("-0001")  # nothing was taken from the counter


def test_a_till_holds_at_most_500_unused_numbers_a_day(app, till, hall):
    assert MAX_UNUSED_PER_DAY == 500
    for _ in range(5):
        _reserve(till, count_=100)
    answer = till.post("/api/v1/receipt-blocks", {"till": "H1", "day": local_today().isoformat(), "count": 1})
    assert_error(answer, 422, "500", field="count")
    # the refused reservation burned no number; using one frees a place
    assert _sell(till, hall)["receipt_no"].endswith("-0501")
    assert _sell(till, hall, receipt_no=f"H1-{local_today():%Y%m%d}-0100")["receipt_no"].endswith("-0100")
    assert len(_reserve(till, count_=1)) == 1
    # tomorrow is another day
    assert len(_reserve(till, day=local_today() + dt.timedelta(days=1), count_=100)) == 100
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ReceiptBlock)) == 7


def test_reservations_need_a_login(client, hall):
    answer = client.post("/api/v1/receipt-blocks", json={"till": "H1", "day": local_today().isoformat()})
    assert answer.status_code in (400, 401)
    assert client.get("/api/v1/receipt-blocks?till=H1").status_code == 401
