"""Reports' figures: the periods, the one shape of rows every report sums, and the
consumption-collaboration statistics (消费帮扶统计). The lines behind a figure are in
``pos.reports.drilldown``, the monthly sales summary and the manager's daily summary in
``pos.reports.monthly``, the CSV and XLSX downloads in ``pos.reports.exports``. Every figure a sum of sale lines' net amounts, computed by SQL
aggregation (GROUP BY in the database), never by loading lines into Python.

Definitions, for a period [first, last] of Asia/Shanghai local dates (inclusive):

- sales: Σ SaleLine.net_fen of completed sales whose local date is in the period (voided sales
  never count); refunds: Σ RefundLine.amount_fen of refunds whose OWN local date is in the
  period, with the original line's certified flag, supplier, origin, channel and buyer type;
- total_fen = sales − refunds; certified_fen + uncertified_fen = total_fen, always;
- songtao_fen: the part of total_fen whose origin county code is the paired county
  (pos.hall.settings, default 520628 松桃苗族自治县);
- sales: the number of completed sales in the period (in a supplier's or origin's row: the
  number of sales with at least one line of it, so those rows' counts do not add up);
- refunds_fen: shown apart, already netted in total_fen.

One shape of rows throughout: sale lines (+) and refund lines (−, dated by the refund). The
collaboration figures read the daily aggregate those rows are summed into as they are written
(pos.sales.daily_figures, one grouped statement); ``collaboration_on_lines`` computes the same from
the lines (two grouped statements merged on their few rows, ``_grouped``), the reference the tests
and bench.reports hold the aggregate to; the drill-down and the monthly summary's product parts
group a UNION ALL of the lines (``movements``).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, case, cast, extract, func, literal, literal_column, null, select, union_all
from sqlalchemy.orm import Session

from pos.core.errors import PosError
from pos.models import BuyerType, Channel, DailyFigure, Refund, RefundLine, Sale, SaleLine, SaleStatus
from pos.hall.settings import hall_settings


CURRENCY = "CNY"
MAX_SPAN_DAYS = 5 * 366 + 1           # a period longer than five years is refused
FIGURE_KEYS = ("total_fen", "certified_fen", "uncertified_fen", "songtao_fen", "sales", "refunds_fen")
CHANNELS = tuple(c.value for c in Channel)            # hall, kiosk, group
BUYER_TYPES = tuple(b.value for b in BuyerType)       # union, enterprise, canteen, other
EXPORT_CHUNK = 2000

ON_ACCOUNT = "on_account"  # monthly summary: group deliveries and returns, settled by order payments
ON_ACCOUNT_LABEL = _l("团购挂账")
CHANNEL_LABELS = {"hall": _l("专馆"), "kiosk": _l("专柜"), "group": _l("团购")}


class ReportError(PosError):
    """A period or filter the reports cannot use (bad date, from after to, too long)."""


# --- periods ---------------------------------------------------------------------------------------

def parse_day(text: Any, field: str) -> dt.date:
    if isinstance(text, dt.date) and not isinstance(text, dt.datetime):
        return text
    try:
        if not isinstance(text, str) or len(text.strip()) != 10:
            raise ValueError
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(_l("日期格式应为 YYYY-MM-DD"), field) from None


def parse_period(first: Any, last: Any) -> tuple[dt.date, dt.date]:
    """(first, last) local dates from text (YYYY-MM-DD), refusing first > last and spans over
    five years (ReportError with the field)."""
    if first in (None, ""):
        raise ReportError(_l("请填写开始日期"), "from")
    if last in (None, ""):
        raise ReportError(_l("请填写结束日期"), "to")
    a, b = parse_day(first, "from"), parse_day(last, "to")
    if a > b:
        raise ReportError(_l("开始日期不能晚于结束日期"), "from")
    if (b - a).days >= MAX_SPAN_DAYS:
        raise ReportError(_l("统计期间最长五年"), "to")
    return a, b


def parse_month(text: Any) -> dt.date:
    """The first day of a YYYY-MM month (ReportError otherwise)."""
    try:
        if not isinstance(text, str) or len(text.strip()) != 7:
            raise ValueError
        year, month = text.strip().split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return dt.date(int(year), int(month), 1)
    except ValueError:
        raise ReportError(_l("月份格式应为 YYYY-MM"), "month") from None


def month_bounds(first_day: dt.date) -> tuple[dt.date, dt.date]:
    nxt = add_months(first_day, 1)
    return first_day, nxt - dt.timedelta(days=1)


def add_months(day: dt.date, n: int) -> dt.date:
    """The first day of the month n months after ``day``'s month."""
    k = day.year * 12 + day.month - 1 + n
    return dt.date(k // 12, k % 12 + 1, 1)


def months_between(first: dt.date, last: dt.date) -> list[str]:
    out, m = [], first.replace(day=1)
    while m <= last:
        out.append(f"{m:%Y-%m}")
        m = add_months(m, 1)
    return out


def percent(part: int, whole: int) -> Optional[str]:
    """part / whole as a percentage with one decimal, rounded half up ("37.5"); None when whole is
    0. Integer arithmetic only."""
    if not whole:
        return None
    tenths = (2000 * part + whole) // (2 * whole) if whole > 0 else -((2000 * part - whole) // (-2 * whole))
    sign = "-" if tenths < 0 else ""
    tenths = abs(tenths)
    return f"{sign}{tenths // 10}.{tenths % 10}"


def change_percent(now: int, before: int) -> Optional[str]:
    """The change from ``before`` to ``now`` in percent ("12.5", "-3.0"); None when before is 0."""
    return percent(now - before, before) if before > 0 else None


# --- the one shape of rows -----------------------------------------------------------------------

def month_key(column):
    """YYYYMM as an integer, portable to SQLite (strftime) and PostgreSQL (extract)."""
    # literal 100, not a bound parameter: PostgreSQL must see the GROUP BY and SELECT expressions as equal
    return cast(extract("year", column), Integer) * literal_column("100") + cast(extract("month", column), Integer)


def movements(s: Session, first: dt.date, last: dt.date, paired_code: str):
    """Sale lines (+) and refund lines (−) of the period as one subquery, one row per line:
    local_date (the sale's, or the refund's own), channel, buyer_type, certified, songtao (0/1),
    supplier, origin, product_id, qty_milli, amount, certified_amount, songtao_amount,
    refund_amount (positive), sale_id (None on refund rows, for counting sales), of_sale_id (the
    sale either way), kind ("sale"/"refund"), line_id and doc_id (the sale or refund line and
    document), sale_line_id (the sale line either way)."""
    is_songtao = SaleLine.origin_county_code == paired_code
    sold = (
        select(
            Sale.local_date.label("local_date"),
            Sale.channel.label("channel"),
            Sale.buyer_type.label("buyer_type"),
            SaleLine.certified.label("certified"),
            case((is_songtao, 1), else_=0).label("songtao"),
            SaleLine.supplier_id.label("supplier_id"),
            SaleLine.supplier_name.label("supplier_name"),
            SaleLine.origin_county_code.label("county_code"),
            SaleLine.origin_county.label("county"),
            SaleLine.origin_township.label("township"),
            SaleLine.product_id.label("product_id"),
            SaleLine.qty_milli.label("qty_milli"),
            SaleLine.net_fen.label("amount"),
            case((SaleLine.certified.is_(True), SaleLine.net_fen), else_=0).label("certified_amount"),
            case((is_songtao, SaleLine.net_fen), else_=0).label("songtao_amount"),
            literal(0).label("refund_amount"),
            Sale.id.label("sale_id"),
            Sale.id.label("of_sale_id"),
            literal("sale").label("kind"),
            SaleLine.id.label("line_id"),
            Sale.id.label("doc_id"),
            SaleLine.id.label("sale_line_id"),
        )
        .join(Sale, Sale.id == SaleLine.sale_id)
        .where(Sale.status == SaleStatus.COMPLETED, Sale.local_date >= first, Sale.local_date <= last)
    )
    refunded = (
        select(
            Refund.local_date,
            Sale.channel,
            Sale.buyer_type,
            SaleLine.certified,
            case((is_songtao, 1), else_=0),
            SaleLine.supplier_id,
            SaleLine.supplier_name,
            SaleLine.origin_county_code,
            SaleLine.origin_county,
            SaleLine.origin_township,
            SaleLine.product_id,
            -RefundLine.qty_milli,
            -RefundLine.amount_fen,
            case((SaleLine.certified.is_(True), -RefundLine.amount_fen), else_=0),
            case((is_songtao, -RefundLine.amount_fen), else_=0),
            RefundLine.amount_fen,
            cast(null(), Integer),
            Sale.id,
            literal("refund"),
            RefundLine.id,
            Refund.id,
            SaleLine.id,
        )
        .select_from(RefundLine)
        .join(Refund, Refund.id == RefundLine.refund_id)
        .join(SaleLine, SaleLine.id == RefundLine.sale_line_id)
        .join(Sale, Sale.id == SaleLine.sale_id)
        .where(Refund.local_date >= first, Refund.local_date <= last)
    )
    return union_all(sold, refunded).subquery("movements")


def zero_figures() -> dict[str, int]:
    return dict.fromkeys(FIGURE_KEYS, 0)


def add_figures(into: dict[str, int], total: int, certified: int, songtao: int, refunds: int) -> None:
    into["total_fen"] += int(total or 0)
    into["certified_fen"] += int(certified or 0)
    into["songtao_fen"] += int(songtao or 0)
    into["refunds_fen"] += int(refunds or 0)
    into["uncertified_fen"] = into["total_fen"] - into["certified_fen"]


def figure_sums(m):
    return (func.coalesce(func.sum(m.c.amount), 0), func.coalesce(func.sum(m.c.certified_amount), 0),
            func.coalesce(func.sum(m.c.songtao_amount), 0), func.coalesce(func.sum(m.c.refund_amount), 0))


def enum_text(v) -> Optional[str]:
    return None if v is None else getattr(v, "value", v)


def _grouped(s: Session, first: dt.date, last: dt.date, paired: str, keys, *extra) -> dict[tuple, list[int]]:
    """Σ over the period's sale lines (+) and refund lines (−), grouped by ``keys(date_column)``
    (expressions on Sale and SaleLine; the date is the sale's or the refund's own local date):
    key → [total, certified, songtao, refunds, distinct sales, *extra aggregates]. Two grouped
    statements (sale lines; refund lines), merged here on their few grouped rows: a join of two
    tables lets the database pick its best plan, where a UNION subquery would be materialised."""
    songtao = SaleLine.origin_county_code == paired
    certified = SaleLine.certified.is_(True)
    sold_keys = keys(Sale.local_date)
    sold = (
        select(*sold_keys, func.sum(SaleLine.net_fen), func.sum(case((certified, SaleLine.net_fen), else_=0)),
               func.sum(case((songtao, SaleLine.net_fen), else_=0)), func.count(func.distinct(Sale.id)),
               *[e(SaleLine) for e in extra])
        .join(Sale, Sale.id == SaleLine.sale_id)
        .where(Sale.status == SaleStatus.COMPLETED, Sale.local_date >= first, Sale.local_date <= last)
        .group_by(*sold_keys)
    )
    back_keys = keys(Refund.local_date)
    back = (
        select(*back_keys, func.sum(RefundLine.amount_fen), func.sum(case((certified, RefundLine.amount_fen), else_=0)),
               func.sum(case((songtao, RefundLine.amount_fen), else_=0)), *[e(SaleLine) for e in extra])
        .select_from(RefundLine)
        .join(Refund, Refund.id == RefundLine.refund_id)
        .join(SaleLine, SaleLine.id == RefundLine.sale_line_id)
        .join(Sale, Sale.id == SaleLine.sale_id)
        .where(Refund.local_date >= first, Refund.local_date <= last)
        .group_by(*back_keys)
    )
    n = len(sold_keys)
    out: dict[tuple, list] = {}
    for row in s.execute(sold):
        key = tuple(enum_text(v) for v in row[:n])
        total, cert, song, sales = (int(v or 0) for v in row[n:n + 4])
        out[key] = [total, cert, song, 0, sales, *row[n + 4:]]
    for row in s.execute(back):
        key = tuple(enum_text(v) for v in row[:n])
        amount, cert, song = (int(v or 0) for v in row[n:n + 3])
        acc = out.setdefault(key, [0, 0, 0, 0, 0, *row[n + 3:]])
        acc[0] -= amount
        acc[1] -= cert
        acc[2] -= song
        acc[3] += amount
        for i, v in enumerate(row[n + 3:]):  # extra aggregates are names (max): keep one
            acc[5 + i] = acc[5 + i] if acc[5 + i] is not None else v
    return out


def _month_text(key) -> str:
    key = int(key)
    return f"{key // 100:04d}-{key % 100:02d}"


def collaboration(s: Session, *, first: dt.date, last: dt.date) -> dict[str, Any]:
    """The consumption-collaboration statistics for the local dates first..last (inclusive),
    shaped as the API answers them (see the module docstring for the definitions). One grouped
    statement over the daily aggregate (pos.sales.daily_figures, kept with the lines in their own
    transactions) by month, channel, buyer type, supplier and origin, its rows folded into every
    breakdown (the sale counts are exact: see pos.sales.daily_figures)."""
    first, last = parse_period(first, last)
    paired = hall_settings(s).paired_county_code

    totals = zero_figures()
    by_channel = {c: zero_figures() for c in CHANNELS}
    by_buyer = {b: zero_figures() for b in BUYER_TYPES}
    months = {k: zero_figures() for k in months_between(first, last)}
    suppliers: dict[Any, dict] = {}
    names: dict[Any, Optional[str]] = {}
    origins: dict[Any, dict] = {}
    counties: dict[Any, Optional[str]] = {}

    d = DailyFigure
    net = d.sales_fen - d.refunds_fen
    keys = (month_key(d.local_date), d.channel, d.buyer_type, d.supplier_id, d.county_code, d.township)
    lines_supplier: dict[Any, int] = {}
    lines_origin: dict[Any, int] = {}
    # one grouped statement; its few rows (month × channel × buyer type × supplier × origin) folded here
    for (mk, channel, buyer, supplier_id, county_code, township, total, cert, song, refunds, sales, supplier_sales,
         origin_sales, lines, name, county) in s.execute(
        select(*keys, func.sum(net), func.sum(case((d.certified.is_(True), net), else_=0)),
               func.sum(case((d.county_code == paired, net), else_=0)), func.sum(d.refunds_fen),
               func.sum(d.sales_n), func.sum(d.supplier_sales), func.sum(d.origin_sales), func.sum(d.n_lines),
               func.max(case((d.n_lines > 0, d.supplier_name), else_=None)),
               func.max(case((d.n_lines > 0, d.county), else_=None)))
        .where(d.local_date >= first, d.local_date <= last).group_by(*keys)
    ):
        figures = (total, cert, song, refunds)
        month = _month_text(mk)
        for row in (totals, by_channel[channel], months.setdefault(month, zero_figures()),
                    *((by_buyer[buyer or BuyerType.OTHER.value],) if channel == Channel.GROUP.value else ())):
            add_figures(row, *figures)
            row["sales"] += int(sales)
        supplier_id = supplier_id or None
        row = suppliers.setdefault(supplier_id, zero_figures())
        add_figures(row, *figures)
        # a sale has one month, channel and buyer type, and counts once per supplier in supplier_sales
        row["sales"] += int(supplier_sales)
        lines_supplier[supplier_id] = lines_supplier.get(supplier_id, 0) + int(lines)
        names[supplier_id] = max(filter(None, (names.get(supplier_id), name or None)), default=None)
        key = (county_code or None, township or None)
        row = origins.setdefault(key, zero_figures())
        add_figures(row, *figures)
        row["sales"] += int(origin_sales)
        lines_origin[key] = lines_origin.get(key, 0) + int(lines)
        counties[key] = max(filter(None, (counties.get(key), county or None)), default=None)
    # a supplier or origin with only voided sales behind it is not in the lines: not in the report
    for rows, lines_of in ((suppliers, lines_supplier), (origins, lines_origin)):
        for k in [k for k, n in lines_of.items() if n <= 0]:
            del rows[k]

    return _statistics(first, last, totals, by_channel, by_buyer, months, suppliers, names, origins, counties)


def collaboration_on_lines(s: Session, *, first: dt.date, last: dt.date) -> dict[str, Any]:
    """``collaboration`` computed from the lines themselves (the reference the daily aggregate is
    checked against: tests and bench.reports). Three grouped
    passes over the period's lines: (month, channel, buyer type, supplier) for the money and the
    suppliers' sales; (county, township) for the origins; the sales table for the numbers of sales."""
    first, last = parse_period(first, last)
    paired = hall_settings(s).paired_county_code

    totals = zero_figures()
    by_channel = {c: zero_figures() for c in CHANNELS}
    by_buyer = {b: zero_figures() for b in BUYER_TYPES}
    months = {k: zero_figures() for k in months_between(first, last)}
    suppliers: dict[Any, dict] = {}
    names: dict[Any, Optional[str]] = {}
    origins: dict[Any, dict] = {}
    counties: dict[Any, Optional[str]] = {}

    fine = _grouped(s, first, last, paired,
                    lambda day: [month_key(day), Sale.channel, Sale.buyer_type, SaleLine.supplier_id],
                    lambda line: func.max(line.supplier_name))
    for (mk, channel, buyer, supplier_id), (total, cert, song, refunds, sales, name) in fine.items():
        figures = (total, cert, song, refunds)
        add_figures(totals, *figures)
        add_figures(by_channel[channel], *figures)
        if channel == Channel.GROUP.value:
            add_figures(by_buyer[buyer or BuyerType.OTHER.value], *figures)
        add_figures(months.setdefault(_month_text(mk), zero_figures()), *figures)
        row = suppliers.setdefault(supplier_id, zero_figures())
        add_figures(row, *figures)
        # a sale has one month, channel and buyer type: its supplier's counts add up across them
        row["sales"] += sales
        names[supplier_id] = names.get(supplier_id) or name

    for (county_code, township), (total, cert, song, refunds, sales, county) in _grouped(
            s, first, last, paired, lambda day: [SaleLine.origin_county_code, SaleLine.origin_township],
            lambda line: func.max(line.origin_county)).items():
        row = origins[(county_code, township)] = zero_figures()
        add_figures(row, total, cert, song, refunds)
        row["sales"] = sales
        counties[(county_code, township)] = county

    for mk, channel, buyer, n in s.execute(
        select(month_key(Sale.local_date), Sale.channel, Sale.buyer_type, func.count(Sale.id))
        .where(Sale.status == SaleStatus.COMPLETED, Sale.local_date >= first, Sale.local_date <= last)
        .group_by(month_key(Sale.local_date), Sale.channel, Sale.buyer_type)
    ):
        channel, buyer = enum_text(channel), enum_text(buyer)
        totals["sales"] += n
        by_channel[channel]["sales"] += n
        if channel == Channel.GROUP.value:
            by_buyer[buyer or BuyerType.OTHER.value]["sales"] += n
        months.setdefault(_month_text(mk), zero_figures())["sales"] += n

    return _statistics(first, last, totals, by_channel, by_buyer, months, suppliers, names, origins, counties)


def _statistics(first, last, totals, by_channel, by_buyer, months, suppliers, names, origins, counties) -> dict[str, Any]:
    """The collaboration statistics' one shape, whichever source the figures were summed from;
    suppliers and origins largest first."""
    def order(item):
        return (-item[1]["total_fen"], str(item[0]))

    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "currency": CURRENCY,
        **totals,
        "by_channel": by_channel,
        "by_buyer_type": by_buyer,
        "by_month": [{"month": k, **v} for k, v in sorted(months.items())],
        "by_supplier": [{"supplier_id": k, "supplier_name": names.get(k), **v}
                        for k, v in sorted(suppliers.items(), key=order)],
        "by_origin": [{"county_code": k[0], "county": counties.get(k), "township": k[1], **v}
                      for k, v in sorted(origins.items(), key=order)],
    }
