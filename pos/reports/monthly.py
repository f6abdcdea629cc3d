"""The monthly sales summary (月度销售汇总: channels, payment methods, categories, top products,
tills, cashiers, shifts, counters, margin, the month before and a year before) and the
manager's daily summary, by SQL aggregation over the one shape of rows (``pos.reports.figures``).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, select
from sqlalchemy.orm import Session

from inventory.localtime import format_local, local_days_to_utc_range, local_today, utcnow
from inventory.models import Category, MoveReason, Product, StockMove, Unit
from pos.models import (
    Channel,
    DailyFigure,
    Payment,
    PaymentMethod,
    Refund,
    RefundLine,
    Sale,
    SaleLine,
    SaleStatus,
    Shift,
    Till,
    User,
)
from pos.hall.settings import hall_settings
from pos.reports.figures import (
    CURRENCY, FIGURE_KEYS, ON_ACCOUNT, ON_ACCOUNT_LABEL, add_figures, add_months, change_percent, collaboration,
    enum_text, figure_sums, month_bounds, movements, parse_month, percent, zero_figures,
)


# --- monthly summary and daily summary -------------------------------------------------------------

TOP_N = 10


def _period_totals(s: Session, first: dt.date, last: dt.date, paired: str) -> dict[str, int]:
    """total_fen, certified_fen, songtao_fen, refunds_fen (netted as in collaboration) and sales,
    from the daily aggregate (pos.sales.daily_figures)."""
    d = DailyFigure
    net = d.sales_fen - d.refunds_fen
    total, certified, songtao, refunds, sales = s.execute(
        select(func.sum(net), func.sum(case((d.certified.is_(True), net), else_=0)),
               func.sum(case((d.county_code == paired, net), else_=0)), func.sum(d.refunds_fen), func.sum(d.sales_n))
        .where(d.local_date >= first, d.local_date <= last)).one()
    out = zero_figures()
    add_figures(out, total, certified, songtao, refunds)
    out["sales"] = int(sales or 0)
    return out


def _compare(now: dict[str, int], before: dict[str, int], month: dt.date) -> dict[str, Any]:
    return {
        "month": f"{month:%Y-%m}",
        "total_fen": before["total_fen"], "certified_fen": before["certified_fen"], "sales": before["sales"],
        "total_change_percent": change_percent(now["total_fen"], before["total_fen"]),
        "certified_change_percent": change_percent(now["certified_fen"], before["certified_fen"]),
        "sales_change_percent": change_percent(now["sales"], before["sales"]),
    }


def monthly_summary(s: Session, *, month: str) -> dict[str, Any]:
    """The monthly sales summary for ``month`` ("YYYY-MM"), every part an SQL aggregation:

    - the month's figures (as ``collaboration``: total_fen … refunds_fen) and certified_percent;
    - by_channel (as collaboration);
    - by_day: every day of the month, zero-filled: date, total_fen, certified_fen, sales, refunds_fen;
    - by_payment: method, label, sales_fen (payments of the month's completed sales; group orders'
      deliveries as one "on_account" row), refunds_fen
      (refunds of the month by their method), net_fen; Σ net_fen = total_fen;
    - by_reconcile: per provider (wechat, alipay): method, label, reconciled_fen (已对账: the month's
      payments on days whose bill was imported and checked without an unexplained difference),
      unreconciled_fen (未对账: the rest);
    - by_category (the product's current category): category_id, category, total_fen,
      certified_fen, and the quantity per unit, never added across units: piece_qty_milli
      (products sold by the piece) and kg_qty_milli (by the kilogram); top_products / bottom_products (10 each, by net amount):
      product_id, sku, name, qty_milli, total_fen, certified_fen;
    - by_till, by_cashier (hall): sales, sales_fen, refunds_fen (refunds made at the till / by the
      user), total_fen, shifts (opened in the month), difference_fen (Σ counted − expected of the
      closed ones); shifts: each shift opened in the month;
    - by_kiosk: every counter ranked by takings: rank, kiosk_id, code, site_name, town, sales,
      total_fen, refill_moves / refill_visits (stock moves with reason refill into the counter in
      the month / distinct routes), fill_percent (today, from kiosks.fleet);
    - margin: over lines whose cost was known at sale time (refunds netted, their cost pro rata):
      sales_fen, cost_fen, margin_fen, margin_percent, covered_percent (share of total_fen);
    - previous_month / last_year: month, total_fen, certified_fen, sales and the % changes.
    """
    first, last = month_bounds(parse_month(month))
    return _monthly(s, first, last)


# by_category's quantity columns, one per unit of sale (kg are never added to pieces)
CATEGORY_QTY_KEYS = {Unit.PIECE: "piece_qty_milli", Unit.KG: "kg_qty_milli"}


def _monthly(s: Session, first: dt.date, last: dt.date) -> dict[str, Any]:
    paired = hall_settings(s).paired_county_code
    collab = collaboration(s, first=first, last=last)
    figures = {k: collab[k] for k in FIGURE_KEYS}
    m = movements(s, first, last, paired)
    in_month = and_(Sale.status == SaleStatus.COMPLETED, Sale.local_date >= first, Sale.local_date <= last)
    refunds_in_month = and_(Refund.local_date >= first, Refund.local_date <= last)
    start_utc, end_utc = local_days_to_utc_range(first, last)

    # by day
    days = {first + dt.timedelta(days=i): {"total_fen": 0, "certified_fen": 0, "sales": 0, "refunds_fen": 0}
            for i in range((last - first).days + 1)}
    d = DailyFigure
    net = d.sales_fen - d.refunds_fen
    for day, t_, c_, r_, n in s.execute(
        select(d.local_date, func.sum(net), func.sum(case((d.certified.is_(True), net), else_=0)),
               func.sum(d.refunds_fen), func.sum(d.sales_n))
        .where(d.local_date >= first, d.local_date <= last).group_by(d.local_date)
    ):
        days[day].update(total_fen=int(t_), certified_fen=int(c_), refunds_fen=int(r_), sales=int(n))
    by_day = [{"date": d.isoformat(), **v} for d, v in sorted(days.items())]

    # by payment method
    from pos.sales.reading import payment_label  # the one table of method names

    methods: dict[str, dict[str, int]] = {}
    for method, amount in s.execute(select(Payment.method, func.sum(Payment.amount_fen))
                                    .join(Sale, Sale.id == Payment.sale_id).where(in_month).group_by(Payment.method)):
        methods.setdefault(enum_text(method), {"sales_fen": 0, "refunds_fen": 0})["sales_fen"] = int(amount)
    # Group orders are delivered on account (their money arrives as order payments, pos.group.payments):
    # their deliveries and returns make one row of their own, so that the rows add up to the takings.
    on_account = Sale.group_order_id.is_not(None)
    method_of_refund = case((on_account, ON_ACCOUNT), else_=Refund.method)
    for method, amount in s.execute(select(method_of_refund, func.sum(Refund.total_fen))
                                    .join(Sale, Sale.id == Refund.sale_id).where(refunds_in_month)
                                    .group_by(method_of_refund)):
        methods.setdefault(enum_text(method), {"sales_fen": 0, "refunds_fen": 0})["refunds_fen"] = int(amount)
    delivered = s.scalar(select(func.sum(Sale.total_fen)).where(in_month, on_account))
    if delivered:
        methods.setdefault(ON_ACCOUNT, {"sales_fen": 0, "refunds_fen": 0})["sales_fen"] = int(delivered)
    order = [p.value for p in PaymentMethod] + [ON_ACCOUNT]
    by_payment = [{"method": k, "label": str(ON_ACCOUNT_LABEL) if k == ON_ACCOUNT else payment_label(k), **v,
                   "net_fen": v["sales_fen"] - v["refunds_fen"]}
                  for k, v in sorted(methods.items(), key=lambda kv: order.index(kv[0]))]

    by_reconcile = _reconciliation(s, in_month)

    # by product, folded into categories (on the lines: the aggregate has no product)
    total, certified, _, _ = figure_sums(m)
    products = s.execute(
        select(m.c.product_id, Product.sku, Product.name, Product.category_id, Category.name, Product.unit,
               func.sum(m.c.qty_milli), total, certified)
        .join(Product, Product.id == m.c.product_id)
        .outerjoin(Category, Category.id == Product.category_id)
        .group_by(m.c.product_id, Product.sku, Product.name, Product.category_id, Category.name, Product.unit)
    ).all()
    categories: dict[Any, dict] = {}
    product_rows = []
    for product_id, sku, name, category_id, category, unit, qty, t_, c_ in products:
        # quantities are added up per unit only: kilograms are never added to pieces
        row = categories.setdefault(category_id, {"category_id": category_id, "category": category,
                                                  "total_fen": 0, "certified_fen": 0,
                                                  **{CATEGORY_QTY_KEYS[u]: 0 for u in Unit}})
        row["total_fen"] += int(t_)
        row["certified_fen"] += int(c_)
        row[CATEGORY_QTY_KEYS[Unit(enum_text(unit))]] += int(qty)
        product_rows.append({"product_id": product_id, "sku": sku, "name": name, "qty_milli": int(qty),
                             "total_fen": int(t_), "certified_fen": int(c_)})
    by_category = sorted(categories.values(), key=lambda r: (-r["total_fen"], str(r["category"])))
    ranked = sorted(product_rows, key=lambda r: (-r["total_fen"], r["sku"]))
    top = ranked[:TOP_N]
    bottom = sorted(product_rows, key=lambda r: (r["total_fen"], r["sku"]))[:TOP_N]

    # tills, cashiers and shifts (hall)
    hall_sales = and_(in_month, Sale.channel == Channel.HALL)
    shift_rows = s.execute(
        select(Shift.id, Shift.till_id, Till.code, Shift.cashier_id, User.display_name, Shift.status,
               Shift.opened_at, Shift.closed_at, Shift.expected_cash_fen, Shift.counted_cash_fen)
        .join(Till, Till.id == Shift.till_id).join(User, User.id == Shift.cashier_id)
        .where(Shift.opened_at >= start_utc, Shift.opened_at < end_utc)
        .order_by(Shift.opened_at, Shift.id)
    ).all()
    shifts = []
    for sid, till_id, code, cashier_id, cashier, status, opened, closed, expected, counted in shift_rows:
        diff = counted - expected if counted is not None and expected is not None else None
        shifts.append({"shift_id": sid, "till_id": till_id, "till": code, "cashier_id": cashier_id,
                       "cashier": cashier, "status": enum_text(status), "opened_at_local": format_local(opened),
                       "closed_at_local": format_local(closed), "expected_cash_fen": expected,
                       "counted_cash_fen": counted, "difference_fen": diff})

    def people(key_col, name_col, join_model, refund_key):
        rows: dict[Any, dict] = {}
        for key, name, n, amount in s.execute(
            select(key_col, name_col, func.count(Sale.id), func.sum(Sale.total_fen))
            .outerjoin(join_model, join_model.id == key_col).where(hall_sales).group_by(key_col, name_col)
        ):
            rows[key] = {"id": key, "name": name, "sales": int(n), "sales_fen": int(amount), "refunds_fen": 0}
        for key, name, amount in s.execute(
            select(refund_key, name_col, func.sum(Refund.total_fen))
            .outerjoin(join_model, join_model.id == refund_key)
            .join(Sale, Sale.id == Refund.sale_id)
            .where(refunds_in_month, Sale.channel == Channel.HALL).group_by(refund_key, name_col)
        ):
            rows.setdefault(key, {"id": key, "name": name, "sales": 0, "sales_fen": 0, "refunds_fen": 0})
            rows[key]["refunds_fen"] = int(amount)
        for row in rows.values():
            row["total_fen"] = row["sales_fen"] - row["refunds_fen"]
            row["shifts"] = 0
            row["difference_fen"] = 0
        return rows

    tills = people(Sale.till_id, Till.code, Till, Refund.till_id)
    cashiers = people(Sale.cashier_id, User.display_name, User, Refund.user_id)
    for sh in shifts:
        for rows, key, name in ((tills, sh["till_id"], sh["till"]), (cashiers, sh["cashier_id"], sh["cashier"])):
            row = rows.setdefault(key, {"id": key, "name": name, "sales": 0, "sales_fen": 0, "refunds_fen": 0,
                                        "total_fen": 0, "shifts": 0, "difference_fen": 0})
            row["shifts"] += 1
            row["difference_fen"] += sh["difference_fen"] or 0
    by_till = [{"till_id": r.pop("id"), "till": r.pop("name"), **r}
               for r in sorted(tills.values(), key=lambda r: str(r["name"]))]
    by_cashier = [{"cashier_id": r.pop("id"), "cashier": r.pop("name"), **r}
                  for r in sorted(cashiers.values(), key=lambda r: (-r["total_fen"], str(r["name"])))]

    # counters
    by_kiosk = _kiosks(s, first, last, start_utc, end_utc)

    # gross margin where the cost was known at sale time; a refund takes back its share of cost
    has_cost = SaleLine.cost_fen.is_not(None)
    sold_net, sold_cost = s.execute(
        select(func.coalesce(func.sum(SaleLine.net_fen), 0), func.coalesce(func.sum(SaleLine.cost_fen), 0))
        .join(Sale, Sale.id == SaleLine.sale_id).where(in_month, has_cost)).one()
    big = cast(SaleLine.cost_fen, BigInteger) * RefundLine.qty_milli
    back_net, back_cost = s.execute(
        select(func.coalesce(func.sum(RefundLine.amount_fen), 0),
               func.coalesce(func.sum((2 * big + SaleLine.qty_milli) / (2 * SaleLine.qty_milli)), 0))
        .select_from(RefundLine).join(Refund, Refund.id == RefundLine.refund_id)
        .join(SaleLine, SaleLine.id == RefundLine.sale_line_id).where(refunds_in_month, has_cost)).one()
    m_sales, m_cost = int(sold_net) - int(back_net), int(sold_cost) - int(back_cost)
    margin = {"sales_fen": m_sales, "cost_fen": m_cost, "margin_fen": m_sales - m_cost,
              "margin_percent": percent(m_sales - m_cost, m_sales) if m_sales > 0 else None,
              "covered_percent": percent(m_sales, figures["total_fen"]) if figures["total_fen"] > 0 else None}

    prev_first = add_months(first, -1)
    year_first = add_months(first, -12)
    previous = _period_totals(s, *month_bounds(prev_first), paired)
    last_year = _period_totals(s, *month_bounds(year_first), paired)

    return {
        "month": f"{first:%Y-%m}",
        "from": first.isoformat(),
        "to": last.isoformat(),
        "currency": CURRENCY,
        **figures,
        "certified_percent": percent(figures["certified_fen"], figures["total_fen"])
        if figures["total_fen"] > 0 else None,
        "by_channel": collab["by_channel"],
        "by_day": by_day,
        "by_payment": by_payment,
        "by_reconcile": by_reconcile,
        "by_category": by_category,
        "top_products": top,
        "bottom_products": bottom,
        "by_till": by_till,
        "by_cashier": by_cashier,
        "shifts": shifts,
        "by_kiosk": by_kiosk,
        "margin": margin,
        "previous_month": _compare(figures, previous, prev_first),
        "last_year": _compare(figures, last_year, year_first),
    }


def _reconciliation(s: Session, in_month) -> list[dict]:
    """已对账 / 未对账 per provider: the month's WeChat Pay / Alipay payments on days whose bill was
    imported and checked with no unexplained difference left (pos.payments.reconcile), and the rest."""
    from pos.payments.bill_models import BILL_PROVIDERS, ProviderBill
    from pos.sales.reading import payment_label

    done = and_(ProviderBill.id.is_not(None), ProviderBill.checked_at.is_not(None), ProviderBill.open_items == 0)
    found = {enum_text(method): (int(yes or 0), int(no or 0)) for method, yes, no in s.execute(
        select(Payment.method, func.sum(case((done, Payment.amount_fen), else_=0)),
               func.sum(case((done, 0), else_=Payment.amount_fen)))
        .join(Sale, Sale.id == Payment.sale_id)
        .outerjoin(ProviderBill, and_(ProviderBill.provider == Payment.method, ProviderBill.bill_date == Sale.local_date))
        .where(in_month, Payment.method.in_(BILL_PROVIDERS)).group_by(Payment.method))}
    return [{"method": m, "label": payment_label(m), "reconciled_fen": found.get(m, (0, 0))[0],
             "unreconciled_fen": found.get(m, (0, 0))[1]} for m in BILL_PROVIDERS]


def _kiosks(s: Session, first: dt.date, last: dt.date, start_utc: dt.datetime, end_utc: dt.datetime) -> list[dict]:
    """Every counter, ranked by the month's takings (sales − refunds of its sales), with refills in
    the month and today's fill level."""
    from kiosks.fleet import fleet_overview  # optional part: the counters' fleet
    from kiosks.models import Kiosk

    kiosks = s.execute(select(Kiosk.id, Kiosk.code, Kiosk.site_name, Kiosk.town, Kiosk.location_id)
                       .order_by(Kiosk.code)).all()
    if not kiosks:
        return []
    sales = {k: (int(n), int(a)) for k, n, a in s.execute(
        select(Sale.kiosk_id, func.count(Sale.id), func.sum(Sale.total_fen))
        .where(Sale.status == SaleStatus.COMPLETED, Sale.channel == Channel.KIOSK,
               Sale.local_date >= first, Sale.local_date <= last)
        .group_by(Sale.kiosk_id))}
    refunds = {k: int(a) for k, a in s.execute(
        select(Sale.kiosk_id, func.sum(Refund.total_fen)).join(Sale, Sale.id == Refund.sale_id)
        .where(Refund.local_date >= first, Refund.local_date <= last, Sale.channel == Channel.KIOSK)
        .group_by(Sale.kiosk_id))}
    refills = {loc: (int(n), int(v)) for loc, n, v in s.execute(
        select(StockMove.to_location_id, func.count(StockMove.id), func.count(func.distinct(StockMove.ref_id)))
        .where(StockMove.reason == MoveReason.REFILL, StockMove.moved_at >= start_utc, StockMove.moved_at < end_utc,
               StockMove.to_location_id.in_([k.location_id for k in kiosks]))
        .group_by(StockMove.to_location_id))}
    fill = {r["id"]: r["fill_percent"] for r in fleet_overview(s, today=local_today(), now=utcnow())}
    rows = []
    for k in kiosks:
        n, amount = sales.get(k.id, (0, 0))
        moves, visits = refills.get(k.location_id, (0, 0))
        back = refunds.get(k.id, 0)
        rows.append({"kiosk_id": k.id, "code": k.code, "site_name": k.site_name, "town": k.town, "sales": n,
                     "sales_fen": amount, "refunds_fen": back, "total_fen": amount - back, "refill_moves": moves,
                     "refill_visits": visits, "fill_percent": fill.get(k.id)})
    rows.sort(key=lambda r: (-r["total_fen"], r["code"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def daily_summary(s: Session, *, day: dt.date) -> dict[str, Any]:
    """Today so far, by channel: {"day", total_fen … refunds_fen, "certified_percent",
    "by_channel": {"hall": {...}, "kiosk": {...}, "group": {...}}} (the collaboration keys)."""
    collab = collaboration(s, first=day, last=day)
    return {"day": day.isoformat(), **{k: collab[k] for k in FIGURE_KEYS},
            "certified_percent": percent(collab["certified_fen"], collab["total_fen"])
            if collab["total_fen"] > 0 else None,
            "by_channel": collab["by_channel"]}
