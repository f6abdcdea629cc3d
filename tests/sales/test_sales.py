"""Recording sales: idempotency (also two threads at once), conflicts, certification and origin
snapshots, stock moves first expiry first out, receipt numbers per till and day, late sales kept,
discount approval, voids. On SQLite and PostgreSQL (TEST_DATABASE_URL)."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from inventory.localtime import HALL_TZ
from inventory.models import (
    Alert,
    AlertKind,
    AuditEvent,
    Certificate,
    Product,
    Setting,
    StockMove,
)
from pos.sales import reading, service, voids
from pos.hall import shifts
from pos.core.errors import ApprovalRequired, Conflict, NotFound, PaymentError, PosError, ShiftError
from pos.models import Payment, Sale, SaleLine, SaleStatus, Shift, ShiftStatus
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn
from tests.fixtures.sales import SOLD_AT, cash_sale, hall  # noqa: F401  (fixture)
from tests.fixtures.stock import engine, level_of, s, world  # noqa: F401  (fixtures)


def count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


# --- recording --------------------------------------------------------------------------------

def test_a_cash_sale_is_recorded_whole_with_snapshot_stock_moves_and_change(hall, s):
    result = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 3000), LineIn(hall.pork_id, 523)],
                                            amount=50400 + 1987, tendered=60000, client_sale_id="c-1"))
    s.commit()
    assert result.created and result.total_fen == 52387 and result.change_fen == 60000 - 52387
    assert result.receipt_no == "H1-20261126-0001"
    sale = s.get(Sale, result.sale_id)
    assert (sale.subtotal_fen, sale.discount_fen, sale.rounding_fen) == (52387, 0, 0)
    assert sale.local_date == dt.date(2026, 11, 26) and sale.shift_id == hall.shift_id and not sale.after_shift_closed
    tea, pork = sale.lines
    assert (tea.certified, tea.certificate_no, tea.supplier_name, tea.origin_county_code) == (
        True, "黔扶认〔2026〕0001", "松桃梵净山翠峰茶业有限公司", "520628")
    assert (pork.certified, pork.certificate_no, pork.gross_fen, pork.net_fen) == (False, None, 1987, 1987)
    # first expiry first out: 2 from lot A, 1 from lot B; the weighed goods (no lot, no stock) go negative
    moves = s.execute(select(StockMove.product_id, StockMove.lot_id, StockMove.qty_milli)
                      .where(StockMove.ref_type == "sale", StockMove.ref_id == sale.id).order_by(StockMove.id)).all()
    assert moves == [(hall.tea_id, hall.early_lot, 2000), (hall.tea_id, hall.late_lot, 1000), (hall.pork_id, None, 523)]
    assert level_of(s, hall.hall, hall.tea_id) == 9000 and level_of(s, hall.hall, hall.pork_id) == -523
    view = reading.sale_view(s, sale.id)
    assert view["certified_fen"] == 50400 and view["uncertified_fen"] == 1987
    assert view["till"] == "H1" and view["cashier"] == "龙燕" and view["sold_at_local"] == "2026-11-26 10:15"
    assert view["payments"] == [{"method": "cash", "amount_fen": 52387, "tendered_fen": 60000,
                                 "change_fen": 7613, "ref": None, "attempt_id": None}]
    assert [ln["refundable_qty_milli"] for ln in view["lines"]] == [3000, 523]
    assert reading.get_sale(s, "H1-20261126-0001").id == sale.id


def test_certification_is_judged_on_the_local_date_and_kept(hall, s):
    # 00:30 on 1 December in Humen is still 30 November in UTC: the certificate (to 30 November) no longer covers it.
    late = dt.datetime(2026, 12, 1, 0, 30, tzinfo=HALL_TZ)
    result = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800, sold_at=late))
    on_time = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800,
                                             sold_at=dt.datetime(2026, 11, 30, 23, 59, tzinfo=HALL_TZ)))
    s.commit()
    assert result.receipt_no == "H1-20261201-0001" and on_time.receipt_no == "H1-20261130-0001"
    assert s.get(Sale, result.sale_id).lines[0].certified is False
    assert s.get(Sale, on_time.sale_id).lines[0].certified is True
    # editing the certificate later never rewrites the sale's snapshot
    s.scalars(select(Certificate)).one().valid_to = dt.date(2026, 12, 31)
    s.commit()
    s.expire_all()
    assert s.get(Sale, result.sale_id).lines[0].certified is False


def test_receipt_numbers_run_per_till_and_local_day(hall, s):
    def one(till_id, at):
        return service.record_sale(s, cash_sale(hall, [LineIn(hall.honey_id, 1000)], amount=5800, till_id=till_id,
                                              sold_at=at)).receipt_no
    next_day = SOLD_AT + dt.timedelta(days=1)
    numbers = [one(hall.till_id, SOLD_AT), one(hall.till_id, SOLD_AT), one(hall.till2_id, SOLD_AT),
               one(hall.till_id, next_day), one(hall.till_id, SOLD_AT)]
    assert numbers == ["H1-20261126-0001", "H1-20261126-0002", "H2-20261126-0001", "H1-20261127-0001",
                       "H1-20261126-0003"]


def test_the_same_client_sale_id_twice_records_one_sale(hall, s):
    sale = cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800, tendered=20000, client_sale_id="dup")
    first = service.record_sale(s, sale)
    again = service.record_sale(s, sale)
    s.commit()
    assert first.created and not again.created
    assert (again.sale_id, again.receipt_no, again.total_fen, again.change_fen) == (
        first.sale_id, first.receipt_no, 16800, 3200)
    assert count(s, Sale) == 1 and level_of(s, hall.hall, hall.tea_id) == 11000


def test_the_same_id_with_other_content_is_a_conflict(hall, s):
    service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800, client_sale_id="x"))
    with pytest.raises(Conflict, match="内容不同"):
        service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 2000)], amount=33600, client_sale_id="x"))


def test_two_threads_submitting_the_same_id_at_once_make_one_sale(hall):
    sale = cash_sale(hall, [LineIn(hall.tea_id, 1000), LineIn(hall.honey_id, 2000)], amount=28400,
                     client_sale_id="race-1")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def submit():
        with hall.session() as s:
            try:
                barrier.wait()
                results.append(service.record_sale(s, sale))
                s.commit()
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert sorted(r.created for r in results) == [False, True]
    assert len({r.receipt_no for r in results}) == 1
    with hall.session() as s:
        assert count(s, Sale) == 1 and count(s, Payment) == 1
        assert level_of(s, hall.hall, hall.tea_id) == 11000
        # the loser's receipt number was given back: the next sale takes 0002
        assert service.record_sale(s, cash_sale(hall, [LineIn(hall.honey_id, 1000)], amount=5800)).receipt_no \
            == "H1-20261126-0002"


# --- money rules ----------------------------------------------------------------------------

def test_discounts_and_rounding_are_spread_over_the_lines(hall, s):
    s.get(Setting, "rounding_to_jiao").value = "true"
    s.flush()
    result = service.record_sale(s, cash_sale(
        hall, [LineIn(hall.tea_id, 1000, line_discount_fen=800), LineIn(hall.pork_id, 523)],
        order_discount_fen=500, amount=16000 + 1987 - 500 - 7))
    sale = s.get(Sale, result.sale_id)
    assert (sale.subtotal_fen, sale.discount_fen, sale.rounding_fen, sale.total_fen) == (18787, 1300, 7, 17480)
    assert sum(ln.net_fen for ln in sale.lines) == 17480
    assert all(ln.gross_fen - ln.discount_fen == ln.net_fen for ln in sale.lines)


def test_rounding_can_be_switched_off_per_sale(hall, s):
    s.get(Setting, "rounding_to_jiao").value = "true"
    s.flush()
    result = service.record_sale(s, cash_sale(hall, [LineIn(hall.pork_id, 523)], amount=1987, rounding_to_jiao=False))
    assert result.total_fen == 1987


def test_a_sale_sees_what_its_session_changed_and_did_not_flush(hall, s):
    # The checkout reads Core rows on the session's connection; what the caller left pending is
    # flushed first, as an ORM query's autoflush would: the new price, the new setting, the new shift.
    pork, rounding, shift = s.get(Product, hall.pork_id), s.get(Setting, "rounding_to_jiao"), s.get(Shift, hall.shift_id)
    pork.price_fen, rounding.value, shift.status = 4000, "true", ShiftStatus.CLOSED
    assert set(s.dirty) == {pork, rounding, shift}  # nothing flushed yet
    result = service.record_sale(s, cash_sale(hall, [LineIn(hall.pork_id, 523)], amount=2090))
    sale = s.get(Sale, result.sale_id)
    assert (sale.subtotal_fen, sale.rounding_fen, sale.total_fen) == (2092, 2, 2090)
    assert (sale.shift_id, sale.after_shift_closed) == (None, True)


@pytest.mark.parametrize("payments, message", [
    ([PaymentIn("cash", 16000)], "支付合计 ¥160.00 与应收 ¥168.00 不符"),
    ([PaymentIn("cash", 16800, 10000)], "少于"),
    ([PaymentIn("wechat", 16800, 20000)], "非现金支付不能找零"),
    ([PaymentIn("cash", 8400), PaymentIn("cash", 8400)], "只能有一行现金"),
    ([PaymentIn("bitcoin", 16800)], "未知的支付方式"),
    ([PaymentIn("wechat", -1), PaymentIn("cash", 16801)], "不小于零"),
    ([], "支付合计 ¥0.00 与应收 ¥168.00 不符"),
])
def test_payments_must_add_up_exactly(hall, s, payments, message):
    sale = SaleIn(channel="hall", location_id=None, lines=[LineIn(hall.tea_id, 1000)], payments=payments,
                  till_id=hall.till_id, cashier_id=hall.cashier_id)
    with pytest.raises(PaymentError, match=message):
        service.record_sale(s, sale)
    assert count(s, Sale) == 0


def test_split_payment_with_change_on_the_cash_part(hall, s):
    sale = SaleIn(channel="hall", location_id=None, lines=[LineIn(hall.tea_id, 1000)],
                  payments=[PaymentIn("union_card", 10000, ref="U1"), PaymentIn("cash", 6800, 10000)],
                  till_id=hall.till_id, cashier_id=hall.cashier_id)
    assert service.record_sale(s, sale).change_fen == 3200


@pytest.mark.parametrize("lines, message", [
    ([], "至少要有一件商品"),
    ([LineIn(999999, 1000)], "商品不存在"),
    ([LineIn(1, 0)], "数量必须大于零"),
    ([LineIn(1, 1500)], "数量必须是整数件"),
    ([LineIn(1, 1000, line_discount_fen=20000)], "折扣不能超过"),
])
def test_bad_lines_are_refused_and_nothing_is_written(hall, s, lines, message):
    lines = [LineIn(hall.tea_id if ln.product_id == 1 else ln.product_id, ln.qty_milli,
                    line_discount_fen=ln.line_discount_fen) for ln in lines]
    with pytest.raises(PosError, match=message):
        service.record_sale(s, cash_sale(hall, lines, amount=16800))
    assert count(s, Sale) == count(s, SaleLine) == 0


def test_the_hall_prices_every_sale_itself(hall, s):
    result = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000, unit_price_fen=1)], amount=16800))
    assert result.total_fen == 16800


def test_an_inactive_product_is_refused_at_the_till(hall, s):
    s.get(Product, hall.honey_id).active = False
    with pytest.raises(PosError, match="已停售"):
        service.record_sale(s, cash_sale(hall, [LineIn(hall.honey_id, 1000)], amount=5800))


def test_a_discount_over_the_limit_needs_a_manager(hall, s):
    over = cash_sale(hall, [LineIn(hall.tea_id, 1000)], order_discount_fen=1681, amount=16800 - 1681)
    with pytest.raises(ApprovalRequired, match="折扣超过 10%，需要店长授权"):
        service.record_sale(s, over)
    with pytest.raises(ApprovalRequired):
        service.record_sale(s, SaleIn(**{**over.__dict__, "approved_by_id": hall.cashier_id}))
    result = service.record_sale(s, SaleIn(**{**over.__dict__, "approved_by_id": hall.manager_id}))
    assert result.total_fen == 15119
    assert s.scalar(select(AuditEvent.user_id).where(AuditEvent.action == "sale.discount_approved")) == hall.manager_id
    # at the limit, no approval is needed
    assert service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], order_discount_fen=1680,
                                          amount=15120)).created


def test_a_fully_discounted_sale_needs_no_payment(hall, s):
    result = service.record_sale(s, cash_sale(hall, [LineIn(hall.honey_id, 1000, line_discount_fen=5800)],
                                            approved_by_id=hall.manager_id))
    assert (result.total_fen, result.change_fen) == (0, 0)


# --- shifts and late sales --------------------------------------------------------------------

def test_a_sale_for_a_closed_shift_is_kept_and_flagged(hall, s):
    shifts.close_shift(s, hall.shift_id, denominations={10000: 5}, closed_by_id=hall.manager_id)
    s.commit()
    result = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800,
                                            shift_id=hall.shift_id, client_sale_id="late"))
    no_shift = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800))
    s.commit()
    sale = s.get(Sale, result.sale_id)
    assert sale.after_shift_closed and sale.shift_id == hall.shift_id
    assert s.get(Sale, no_shift.sale_id).after_shift_closed and s.get(Sale, no_shift.sale_id).shift_id is None
    alerts = s.scalars(select(Alert).where(Alert.kind == AlertKind.LATE_SALE).order_by(Alert.id)).all()
    assert [a.ref_id for a in alerts] == [result.sale_id, no_shift.sale_id]
    assert "交班后" in alerts[0].message and alerts[0].location_id == hall.hall
    late = shifts.late_sales(s)
    assert {row["receipt_no"] for row in late} == {result.receipt_no, no_shift.receipt_no}
    assert all(not row["reviewed"] and row["alert_id"] for row in late)
    # the Z report stays as it was fixed at close
    assert shifts.shift_report(s, hall.shift_id).total_fen == 0
    assert shifts.shift_report(s, hall.shift_id).late_sales_count == 1


def test_a_shift_of_another_till_is_refused(hall, s):
    with pytest.raises(ShiftError, match="班次不属于收银台 H2"):
        service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800, till_id=hall.till2_id,
                                       shift_id=hall.shift_id))


# --- other channels ---------------------------------------------------------------------------

def test_a_counter_sale_keeps_the_price_charged_and_an_inactive_product(hall, s):
    s.get(Product, hall.honey_id).active = False
    sale = SaleIn(channel="kiosk", location_id=hall.hall, lines=[LineIn(hall.honey_id, 1000, unit_price_fen=5500,
                                                                        slot="A1")],
                  payments=[PaymentIn("wechat", 5500, ref="wx1")], kiosk_id=None, txn_id="t1", receipt_prefix="K001",
                  sold_at=SOLD_AT)
    with pytest.raises(PosError, match="专柜"):
        service.record_sale(s, sale)


def test_a_group_order_needs_a_buyer_type(hall, s):
    sale = SaleIn(channel="group", location_id=hall.hall, lines=[LineIn(hall.tea_id, 10000)],
                  payments=[PaymentIn("bank_transfer", 168000)], sold_at=SOLD_AT, approved_by_id=hall.manager_id)
    with pytest.raises(PosError, match="购买方类型"):
        service.record_sale(s, sale)
    result = service.record_sale(s, SaleIn(**{**sale.__dict__, "buyer_type": "union"}))
    assert result.receipt_no == "G-20261126-0001"


# --- voids ------------------------------------------------------------------------------------

def test_a_void_in_the_open_shift_reverses_the_stock(hall, s):
    result = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 3000)], amount=50400))
    with pytest.raises(ApprovalRequired):
        voids.void_sale(s, result.sale_id, actor_id=hall.cashier_id, approved_by_id=hall.cashier_id, reason="录错")
    voids.void_sale(s, result.sale_id, actor_id=hall.cashier_id, approved_by_id=hall.manager_id, reason="录错")
    s.commit()
    sale = s.get(Sale, result.sale_id)
    assert sale.status == SaleStatus.VOIDED and sale.voided_by_id == hall.cashier_id
    assert level_of(s, hall.hall, hall.tea_id) == 12000
    assert s.scalar(select(func.count()).select_from(StockMove).where(StockMove.ref_type == "sale_void")) == 2
    with pytest.raises(PosError, match="已作废"):
        voids.void_sale(s, result.sale_id, actor_id=hall.cashier_id, approved_by_id=hall.manager_id, reason="x")
    report = shifts.shift_report(s, hall.shift_id)
    assert (report.voids_count, report.sales_count, report.total_fen) == (1, 0, 0)


def test_a_void_after_the_close_is_refused(hall, s):
    result = service.record_sale(s, cash_sale(hall, [LineIn(hall.tea_id, 1000)], amount=16800))
    shifts.close_shift(s, hall.shift_id, denominations={10000: 0}, closed_by_id=hall.manager_id)
    with pytest.raises(ShiftError, match="交班后请办理退货"):
        voids.void_sale(s, result.sale_id, actor_id=hall.cashier_id, approved_by_id=hall.manager_id, reason="x")


def test_get_sale_of_an_unknown_receipt(hall, s):
    with pytest.raises(NotFound, match="找不到小票：H9-1"):
        reading.get_sale(s, "H9-1")
