"""A counter's part written together (issue 16): each sale of a part is judged first, then the
accepted ones are written by one pass of pos.sales.writing, with no savepoint per sale. These tests
hold what that must not change: a rejected sale among good ones leaves nothing behind, later
sales of a part take their lots from what earlier ones left, the books (levels, lot levels, the
daily aggregate) stay exact, a txn_id sent twice in one part is judged against the first, a
refusal at write time rejects only its sale, and two transactions posting the same batch at
once (PostgreSQL) record each sale once.

The fleet is tests.fixtures.counters' ``seed_counters``: K001 sells tea (A1, ¥38.00, certified;
lots T-EARLY 5 and T-LATE 15) and noodles (A2, ¥12.80; lot N-1 10)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from inventory import ledger
from inventory.errors import InventoryError
from inventory.models import Alert, LotLevel, StockMove
from kiosks import ingest as kiosk_ingest
from kiosks import registry
from kiosks.ingest import ingest_sales
from pos.core.db import session_scope
from pos.models import DailyFigure, Payment, Sale, SaleLine
from pos.sales import daily_figures, writing
from tests.conftest import USING_PG
from tests.fixtures.counters import NOODLE, TEA, sale, seed_counters
from tests.fixtures.threads import run_threads

TEA_LINE = {"slot": "A1", "unit_price_fen": 3800}
NOODLE_LINE = {"slot": "A2", "unit_price_fen": 1280}


@pytest.fixture
def fleet(app):
    return seed_counters(app)


def run(app, code: str, sales: list[dict], **kwargs) -> dict:
    with app.test_request_context(), session_scope(app) as s:
        return ingest_sales(s, registry.get_kiosk(s, code), sales, **kwargs)


def lot_levels(s, location_id: int) -> dict[int, int]:
    return dict(s.execute(select(LotLevel.lot_id, LotLevel.qty_milli).where(LotLevel.location_id == location_id)).all())


def assert_books_exact(s) -> None:
    """Levels add up to their moves, and the daily aggregate is what its lines give (rebuilt from
    the lines, it stays the same; its sums are the lines' and the sales')."""
    assert ledger.unbalanced(s) == []
    cols = [DailyFigure.__table__.c[k] for k in (*daily_figures.KEY, *daily_figures.VALUES)]
    kept = sorted(tuple(r) for r in s.execute(select(*cols)))
    sums = s.execute(select(func.sum(DailyFigure.sales_fen), func.sum(DailyFigure.n_lines),
                            func.sum(DailyFigure.sales_n))).one()
    assert tuple(sums) == (s.scalar(select(func.sum(SaleLine.net_fen))),
                           s.scalar(select(func.count()).select_from(SaleLine)),
                           s.scalar(select(func.count()).select_from(Sale)))
    daily_figures.rebuild(s)
    assert sorted(tuple(r) for r in s.execute(select(*cols))) == kept


def test_one_bad_sale_among_good_ones_is_rejected_with_nothing_of_it_written(app, fleet):
    # The bad sale passes the counter's own checks but not the pricing (a line over ¥10,000,000),
    # and it would have raised a price-mismatch alert: it is the part's second sale, so its
    # refusal must name ITS first line, not the third of the part's lines.
    bad = sale("b-2", [{"slot": "A2", "qty": 11, "unit_price_fen": 99_999_999}])
    result = run(app, "K001", [
        sale("b-1", [{**TEA_LINE, "qty": 4}, {**NOODLE_LINE, "qty": 1}]),
        bad,
        sale("b-3", [{**TEA_LINE, "qty": 3}]),
    ], chunk=10)
    assert result["accepted"] == ["b-1", "b-3"] and result["duplicates"] == []
    assert [r["txn_id"] for r in result["rejected"]] == ["b-2"]
    assert result["rejected"][0]["error"].startswith("第 1 行")

    k1 = fleet["locations"]["K001"]
    with app.app_context(), session_scope(app) as s:
        assert s.scalars(select(Sale.txn_id).order_by(Sale.id)).all() == ["b-1", "b-3"]
        assert s.scalar(select(func.count()).select_from(Alert)) == 0  # b-2's price mismatch: not raised
        assert s.scalar(select(func.count()).select_from(Payment)) == 2
        receipts = s.scalars(select(Sale.receipt_no).order_by(Sale.id)).all()
        assert [r[-4:] for r in receipts] == ["0001", "0002"]  # no number lost to the rejected sale
        # FEFO across the part: b-1 takes 4 of the early lot's 5, b-3 the last one and 2 of the late lot.
        b3 = s.scalar(select(Sale.id).where(Sale.txn_id == "b-3"))
        moves = s.execute(select(StockMove.lot_id, StockMove.qty_milli).where(StockMove.ref_id == b3,
                                                                             StockMove.ref_type == "sale")).all()
        assert sorted(moves) == sorted([(fleet["lots"]["T-EARLY"], 1000), (fleet["lots"]["T-LATE"], 2000)])
        assert lot_levels(s, k1) == {fleet["lots"]["T-EARLY"]: 0, fleet["lots"]["T-LATE"]: 13_000,
                                     fleet["lots"]["N-1"]: 9_000}
        assert ledger.level(s, k1, fleet["products"][TEA]) == 13_000
        assert ledger.level(s, k1, fleet["products"][NOODLE]) == 9_000
        assert s.scalar(select(func.sum(Sale.total_fen))) == 7 * 3800 + 1280
        assert_books_exact(s)


def test_a_txn_id_twice_in_one_part_is_judged_against_the_first(app, fleet):
    result = run(app, "K001", [
        sale("d-1", [{**TEA_LINE, "qty": 1}]),
        sale("d-1", [{**TEA_LINE, "qty": 1}]),            # the same bytes: a duplicate
        sale("d-1", [{**NOODLE_LINE, "qty": 1}]),         # other content: a conflict naming the first's receipt
        sale("d-2", [{**NOODLE_LINE, "qty": 2}]),
    ], chunk=10)
    assert result["accepted"] == ["d-1", "d-2"] and result["duplicates"] == ["d-1"]
    with app.app_context(), session_scope(app) as s:
        first = s.scalar(select(Sale.receipt_no).where(Sale.txn_id == "d-1"))
        assert s.scalar(select(func.count()).select_from(Sale)) == 2
    assert [r["txn_id"] for r in result["rejected"]] == ["d-1"]
    assert "内容不同" in result["rejected"][0]["error"] and first in result["rejected"][0]["error"]


def test_a_sale_refused_while_the_part_is_written_rejects_only_that_sale(app, fleet, monkeypatch):
    # A rule that only the write half applies (here a stand-in: the lots of the noodles refused):
    # the part written together is rolled back and run again with each sale written on its own,
    # so the others are accepted and the refused one is rejected with the rule's message.
    real = writing.fefo_allocate_many
    noodle = fleet["products"][NOODLE]

    def refusing(s, *, location_id, items):
        if any(product_id == noodle for product_id, _ in items):
            raise InventoryError("货道 A2 暂停销售")
        return real(s, location_id=location_id, items=items)

    monkeypatch.setattr(writing, "fefo_allocate_many", refusing)
    result = run(app, "K001", [sale("w-1", [{**TEA_LINE, "qty": 1}]), sale("w-2", [{**NOODLE_LINE, "qty": 1}]),
                               sale("w-3", [{**TEA_LINE, "qty": 2}])], chunk=10)
    assert result["accepted"] == ["w-1", "w-3"]
    assert result["rejected"] == [{"txn_id": "w-2", "error": "货道 A2 暂停销售"}]
    with app.app_context(), session_scope(app) as s:
        assert s.scalars(select(Sale.txn_id).order_by(Sale.id)).all() == ["w-1", "w-3"]
        assert ledger.level(s, fleet["locations"]["K001"], noodle) == 10_000
        assert_books_exact(s)


def test_a_batch_of_one_part_in_the_callers_unit_of_work(app, fleet):
    # Without chunk: one part in a savepoint of the caller's transaction, committed by the caller.
    result = run(app, "K001", [sale(f"u-{n}", [{**TEA_LINE, "qty": 1}]) for n in range(12)])
    assert len(result["accepted"]) == 12
    with app.app_context(), session_scope(app) as s:
        assert ledger.level(s, fleet["locations"]["K001"], fleet["products"][TEA]) == 8_000
        assert_books_exact(s)


@pytest.mark.skipif(not USING_PG, reason="two writers at once: PostgreSQL only (SQLite has one writer)")
def test_two_transactions_posting_the_same_batch_at_once_record_each_sale_once(app, fleet, monkeypatch):
    # Both read the part's txn_ids as unknown before either writes (the barrier), so the second's
    # insert meets the first's rows in the unique index: its part is rolled back and run again, and
    # then answers every sale as a duplicate.
    sales = [sale(f"c-{n}", [{**TEA_LINE, "qty": 1}, {**NOODLE_LINE, "qty": 1}]) for n in range(6)]
    both_read = threading.Barrier(2)
    real = kiosk_ingest._known_txns
    waited = threading.local()

    def known_then_wait(s, kiosk_id, part):
        found = real(s, kiosk_id, part)
        if not getattr(waited, "done", False):
            waited.done = True
            both_read.wait(timeout=30)
        return found

    monkeypatch.setattr(kiosk_ingest, "_known_txns", known_then_wait)
    clashes: list[bool] = []
    real_taken = kiosk_ingest._txn_taken
    monkeypatch.setattr(kiosk_ingest, "_txn_taken", lambda error: clashes.append(real_taken(error)) or clashes[-1])
    results: list[dict] = [{}, {}]

    def post(i: int) -> None:
        results[i] = run(app, "K001", sales, chunk=10)

    assert run_threads(post, 2) == []
    assert clashes == [True]  # the second's part was refused by the unique index once, then run again
    txns = [x["txn_id"] for x in sales]
    assert sorted([results[0]["accepted"], results[1]["accepted"]], key=len) == [[], txns]
    assert sorted([results[0]["duplicates"], results[1]["duplicates"]], key=len) == [[], txns]
    assert results[0]["rejected"] == results[1]["rejected"] == []
    with app.app_context(), session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(Sale)) == 6
        k1 = fleet["locations"]["K001"]
        assert ledger.level(s, k1, fleet["products"][TEA]) == 14_000
        assert ledger.level(s, k1, fleet["products"][NOODLE]) == 4_000
        assert_books_exact(s)
