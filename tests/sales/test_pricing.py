"""Pricing properties (hypothesis): for any basket, discounts and 抹零 are spread so that the lines'
net amounts add up exactly to the total, which is what is paid less the change; certified +
uncertified = total; rounding only ever goes down, by less than a jiao."""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from inventory.localtime import HALL_TZ
from inventory.money import line_amount_fen
from pos.sales import pricing, reading, service
from pos.core.errors import PosError
from pos.models import Payment, Sale, SaleLine
from pos.sales.pricing import LineIn, _Priced, compute_amounts
from pos.sales.service import PaymentIn, SaleIn
from tests.fixtures.sales import hall  # noqa: F401  (fixture)
from tests.fixtures.stock import engine, s, world  # noqa: F401  (fixtures)

items = st.builds(
    _Priced,
    qty_milli=st.integers(1, 50_000),
    unit_price_fen=st.integers(0, 200_000),
    line_discount_fen=st.just(0),
    certified=st.booleans(),
)


@st.composite
def baskets(draw):
    """Lines with line discounts up to their amount, and an order discount up to what is left."""
    lines = []
    for item in draw(st.lists(items, min_size=1, max_size=12)):
        gross = line_amount_fen(item.unit_price_fen, item.qty_milli)
        lines.append(_Priced(item.qty_milli, item.unit_price_fen, draw(st.integers(0, gross)), item.certified))
    after = sum(line_amount_fen(i.unit_price_fen, i.qty_milli) - i.line_discount_fen for i in lines)
    return lines, draw(st.integers(0, after)), draw(st.booleans())


@given(baskets())
@settings(max_examples=400)
def test_lines_add_up_to_the_total_and_rounding_only_goes_down(basket):
    lines, order_discount, rounding_on = basket
    amounts, subtotal, discount, rounding = compute_amounts(lines, order_discount_fen=order_discount,
                                                            rounding_to_jiao=rounding_on)
    total = subtotal - discount - rounding
    assert sum(net for _, _, net in amounts) == total
    assert all(gross - disc == net and net >= 0 and disc >= 0 for gross, disc, net in amounts)
    assert subtotal == sum(gross for gross, _, _ in amounts)
    assert discount == order_discount + sum(i.line_discount_fen for i in lines)
    assert 0 <= rounding < 10
    if rounding_on:
        assert total % 10 == 0
        assert rounding == (subtotal - discount) % 10  # only down, never up
    else:
        assert rounding == 0
    # every line keeps at least its own line discount: shares never take from the customer
    assert all(disc >= i.line_discount_fen for (_, disc, _), i in zip(amounts, lines))
    certified = sum(net for (_, _, net), i in zip(amounts, lines) if i.certified)
    assert certified + (total - certified) == total and 0 <= certified <= total


@given(baskets())
@settings(max_examples=200)
def test_the_order_discount_is_spread_pro_rata(basket):
    lines, order_discount, _ = basket
    amounts, _, _, _ = compute_amounts(lines, order_discount_fen=order_discount)
    after = [line_amount_fen(i.unit_price_fen, i.qty_milli) - i.line_discount_fen for i in lines]
    total_after = sum(after)
    for (_, disc, _), i, a in zip(amounts, lines, after):
        share = disc - i.line_discount_fen
        if total_after:
            # rounded down pro rata, the remainder (< number of lines) to the largest lines
            assert order_discount * a // total_after <= share <= order_discount * a // total_after + len(lines)


PRODUCTS = st.sampled_from(["tea_id", "honey_id", "pork_id"])


@st.composite
def till_baskets(draw):
    lines = []
    for name in draw(st.lists(PRODUCTS, min_size=1, max_size=5)):
        qty = draw(st.integers(1, 3000)) if name == "pork_id" else 1000 * draw(st.integers(1, 5))
        lines.append((name, qty, draw(st.integers(0, 300))))
    return lines, draw(st.integers(0, 500)), draw(st.booleans()), draw(st.integers(0, 10_000)), draw(st.booleans())


@given(basket=till_baskets())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_recorded_sale_adds_up(hall, s, basket):
    """Through record_sale on the database: Σ net == total == Σ payments − change, certified +
    uncertified == total, rounding < 10 fen, and the running total (price_basket) agrees."""
    spec, order_discount, rounding_on, extra_cash, split = basket
    lines = [LineIn(getattr(hall, name), qty, line_discount_fen=min(d, line_amount_fen(
        {"tea_id": 16800, "honey_id": 5800, "pork_id": 3800}[name], qty))) for name, qty, d in spec]
    sold_at = dt.datetime(2026, 11, 26, 10, 15, tzinfo=HALL_TZ)
    # 抹零 applies only to a sale paid wholly in cash: the split (WeChat + cash) is priced to the fen
    try:
        preview = pricing.price_basket(s, lines, order_discount_fen=order_discount,
                                     rounding_to_jiao=rounding_on and not split, sold_at=sold_at)
    except PosError:
        s.rollback()
        return  # an order discount larger than the basket: refused, nothing to check
    total = preview.total_fen
    if total == 0:
        payments = []
    elif split and total == 1:
        payments, extra_cash = [PaymentIn("wechat", 1)], 0
    elif split:
        payments = [PaymentIn("wechat", total // 2), PaymentIn("cash", total - total // 2, total - total // 2 + extra_cash)]
    else:
        payments = [PaymentIn("cash", total, total + extra_cash)]
    result = service.record_sale(s, SaleIn(
        channel="hall", location_id=None, lines=lines, payments=payments, order_discount_fen=order_discount,
        till_id=hall.till_id, cashier_id=hall.cashier_id, sold_at=sold_at, rounding_to_jiao=rounding_on,
        approved_by_id=hall.manager_id))
    sale = s.get(Sale, result.sale_id)
    net_sum = s.scalar(select(func.sum(SaleLine.net_fen)).where(SaleLine.sale_id == sale.id))
    paid = s.scalar(select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(Payment.sale_id == sale.id))
    tendered = sum(p.tendered_fen if p.tendered_fen is not None else p.amount_fen for p in payments)
    assert net_sum == sale.total_fen == result.total_fen == paid == tendered - result.change_fen == total
    assert result.change_fen == extra_cash if total else result.change_fen == 0
    assert 0 <= sale.rounding_fen < 10 and sale.subtotal_fen - sale.discount_fen - sale.rounding_fen == sale.total_fen
    view = reading.sale_view(s, sale.id)
    assert view["certified_fen"] + view["uncertified_fen"] == sale.total_fen == preview.total_fen
    assert view["certified_fen"] == preview.certified_fen
    s.rollback()
