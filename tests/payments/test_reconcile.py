"""The bill check on a generated bill with one missing, one extra and one differing line shows
exactly those three, for both providers; the counter's payment and the refund are among the matched
ones, a reversed payment is paired off; a note explains a difference (audited, listed as 已说明);
the monthly summary's 已对账 / 未对账 line; a payment just before midnight on the next day's bill."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from inventory.models import AuditEvent
from pos.core.db import session_scope
from pos.payments import bills, reconcile
from pos.payments.bill_files import Row, wechat_bill
from pos.payments.bill_models import ProviderBill, ProviderBillLine
from pos.reports import monthly
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn, record_sale
from tests.fixtures.bills import DAY, PREFIX, at, books, provider_bill  # noqa: F401  (books: a fixture)

PROVIDERS = ("wechat", "alipay")


def import_day(app, books, provider, **kw):
    with session_scope(app) as s:
        bills.import_bill(s, provider=provider, day=DAY, data=provider_bill(provider, books, **kw),
                          user_id=books.users["auditor"])
        reconcile.record_check(s, reconcile.check_day(s, provider, DAY))


def outcome_of(check) -> dict[str, list[tuple]]:
    return {o: sorted((i.kind, (i.bill or i.ours).transaction_id, i.bill_fen, i.ours_fen,
                       i.ours.doc_no if i.ours else None) for i in check.group(o))
            for o in reconcile.OUTCOMES}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_missing_one_extra_one_differing_line_are_exactly_the_differences(app, books, provider):
    x = PREFIX[provider]
    import_day(app, books, provider)
    r = books.receipts
    with session_scope(app) as s:
        check = reconcile.check_day(s, provider, DAY)
        found = outcome_of(check)
        assert found["long"] == [("pay", f"{x}-EXTRA", 2500, 0, None)]
        assert found["short"] == [("pay", f"{x}-PORK", 0, 3800, r[f"{x}-PORK"])]
        assert found["differs"] == [("pay", f"{x}-RICE", 9900, 10000, r[f"{x}-RICE"])]
        assert found["matched"] == sorted([
            ("pay", f"{x}-TEA", 16800, 16800, r[f"{x}-TEA"]),
            ("pay", f"{x}-HONEY", 5800, 5800, r[f"{x}-HONEY"]),
            ("pay", f"{x}-K001", 6800, 6800, r[f"{x}-K001"]),       # the counter's, by transaction id
            ("refund", f"{x}-TEA", 16800, 16800, r[f"{x}-REFUND"]),  # by our refund number
        ])
        assert [i.ours.channel for i in check.group("matched") if i.ours.doc_no == r[f"{x}-K001"]] == ["kiosk"]
        # the reversed payment is paired off, reported nowhere
        assert [(a.kind, b.kind, a.transaction_id) for a, b in check.paired_off] == [("pay", "reversed", f"{x}-GONE")]
        assert not [i for i in check.items if (i.bill or i.ours).transaction_id == f"{x}-GONE"]
        assert check.totals("long")["bill_fen"] == 2500 and check.totals("differs")["difference_fen"] == -100
        assert check.open_items == 3
        bill = reconcile.bill_of(s, provider, DAY)
        assert (bill.open_items, bill.line_count) == (3, 8)
        # the other provider's day is not touched by this bill
        other = "alipay" if provider == "wechat" else "wechat"
        assert reconcile.check_day(s, other, DAY).bill is None


def test_a_complete_bill_matches_everything(app, books):
    import_day(app, books, "wechat", drop=(), differ=(), extra=False)
    with session_scope(app) as s:
        check = reconcile.check_day(s, "wechat", DAY)
        assert [i.outcome for i in check.items] == ["matched"] * 6 and check.open_items == 0


def test_an_order_reversed_before_it_was_paid_is_paired_off_alone(app, books):
    """WeChat lists the REVOKED order with nothing refunded: no money moved, nothing to report."""
    from tests.fixtures.bills import bill_rows

    rows = bill_rows("wechat", books, drop=(), differ=(), extra=False, reversed_pair=False)
    rows.append(Row("reversed", "H1WWAIT", "W-WAIT", 0, at(15, 0)))
    with session_scope(app) as s:
        bills.import_bill(s, provider="wechat", day=DAY, data=wechat_bill(rows), user_id=None)
        check = reconcile.check_day(s, "wechat", DAY)
        assert check.open_items == 0 and [(a.transaction_id, b) for a, b in check.paired_off] == [("W-WAIT", None)]


def test_without_a_bill_our_payments_wait_as_short(app, books):
    with session_scope(app) as s:
        check = reconcile.check_day(s, "alipay", DAY)
        assert check.bill is None and len(check.group("short")) == 6   # five payments and the refund


def test_a_note_explains_a_difference_audited_and_it_stays_listed(app, books):
    import_day(app, books, "wechat")
    with session_scope(app) as s:
        short = reconcile.check_day(s, "wechat", DAY).group("short")[0]
        reconcile.explain(s, provider="wechat", day=DAY, key=short.key, note="  顾客改付现金，收银员  漏改支付方式 ",
                          user_id=books.users["manager"], ip="10.0.0.8")
    with session_scope(app) as s:
        check = reconcile.check_day(s, "wechat", DAY)
        item = next(i for i in check.items if i.key == short.key)
        assert item.outcome == "short" and item.note.note == "顾客改付现金，收银员 漏改支付方式"
        assert check.open_items == 2 and reconcile.bill_of(s, "wechat", DAY).open_items == 2
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "reconcile.explain")).one()
        after = json.loads(event.after)
        assert (event.user_id, event.ip) == (books.users["manager"], "10.0.0.8")
        assert after["outcome"] == "short" and after["ours_fen"] == 3800 and after["transaction_id"] == "W-PORK"
        assert after["note"] == "顾客改付现金，收银员 漏改支付方式"
        with pytest.raises(bills.BillError, match="已有说明"):
            reconcile.explain(s, provider="wechat", day=DAY, key=short.key, note="again", user_id=books.users["manager"])
        matched = check.group("matched")[0]
        for key, note, message in ((matched.key, "x", "找不到"), ("pay:nothing", "x", "找不到"), (short.key, "   ", "请填写说明")):
            with pytest.raises(bills.BillError, match=message):
                reconcile.explain(s, provider="wechat", day=DAY, key=key, note=note, user_id=books.users["manager"])


def test_the_same_file_again_is_refused_another_replaces(app, books):
    import_day(app, books, "wechat")
    with session_scope(app) as s:
        with pytest.raises(bills.BillError, match="已导入过"):
            bills.import_bill(s, provider="wechat", day=DAY, data=provider_bill("wechat", books), user_id=None)
    import_day(app, books, "wechat", drop=(), differ=(), extra=False)
    with session_scope(app) as s:
        assert s.scalar(select(func.count()).select_from(ProviderBill)) == 1
        assert s.scalar(select(func.count()).select_from(ProviderBillLine)) == 8
        assert reconcile.check_day(s, "wechat", DAY).open_items == 0
        assert [e for e, in s.execute(select(AuditEvent.action).where(AuditEvent.entity == "provider_bill")
                                      .order_by(AuditEvent.id))] == ["bill.import", "bill.replace"]


def test_a_bill_of_another_day_is_refused(app, books):
    with session_scope(app) as s:
        with pytest.raises(bills.BillError, match="与所选日期 2026-12-05 不符"):
            bills.import_bill(s, provider="wechat", day=DAY + dt.timedelta(days=1),
                              data=provider_bill("wechat", books), user_id=None)


def test_monthly_summary_reconciled_and_not(app, books):
    with session_scope(app) as s:   # another WeChat payment on the 5th, whose bill is never imported
        record_sale(s, SaleIn(channel="hall", location_id=None, till_id=books.till, cashier_id=books.users["cashier"],
                              sold_at=at(9, 0, DAY + dt.timedelta(days=1)),
                              lines=[LineIn(books.products["HONEY"], 1000)], payments=[PaymentIn("wechat", 5800, ref="W-5")]))
    day_total = 16800 + 5800 + 6800 + 3800 + 10000

    def lines():
        with session_scope(app) as s:
            return {r["method"]: (r["reconciled_fen"], r["unreconciled_fen"])
                    for r in monthly.monthly_summary(s, month="2026-12")["by_reconcile"]}

    assert lines() == {"wechat": (0, day_total + 5800), "alipay": (0, day_total)}
    import_day(app, books, "wechat")
    assert lines()["wechat"] == (0, day_total + 5800)      # imported, but three differences open
    with session_scope(app) as s:
        for item in [i for i in reconcile.check_day(s, "wechat", DAY).items if i.outcome != "matched"]:
            reconcile.explain(s, provider="wechat", day=DAY, key=item.key, note="已核实", user_id=books.users["auditor"])
    assert lines() == {"wechat": (day_total, 5800), "alipay": (0, day_total)}


def test_a_payment_just_before_midnight_on_the_next_days_bill_is_matched_on_both_days(app, books):
    late = DAY + dt.timedelta(days=1)
    with session_scope(app) as s:
        record_sale(s, SaleIn(channel="hall", location_id=None, till_id=books.till, cashier_id=books.users["cashier"],
                              sold_at=at(23, 59), lines=[LineIn(books.products["HONEY"], 1000)],
                              payments=[PaymentIn("wechat", 5800, ref="W-LATE")]))
    import_day(app, books, "wechat")
    with session_scope(app) as s:
        bills.import_bill(s, provider="wechat", day=late, user_id=None, data=wechat_bill(
            [Row("pay", "H1WLATE", "W-LATE", 5800, dt.datetime(2026, 12, 5, 0, 0, 2, tzinfo=at(0, 0).tzinfo))]))
    with session_scope(app) as s:
        on_its_day = next(i for i in reconcile.check_day(s, "wechat", DAY).items if i.shown.transaction_id == "W-LATE")
        assert (on_its_day.outcome, on_its_day.where) == ("matched", late)
        next_day = reconcile.check_day(s, "wechat", late)
        assert [(i.outcome, i.where) for i in next_day.items] == [("matched", DAY)]
