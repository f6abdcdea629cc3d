"""Reports: the consumption-collaboration statistics (消费帮扶统计), the monthly sales summary and
the manager's daily summary — every figure a sum of sale lines' net amounts, computed by SQL
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
collaboration figures group the two sides in separate statements and merge the few grouped rows
(``_grouped``: the database keeps its best join plan); the drill-down and the monthly parts group a
UNION ALL of them (``_movements``).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, Integer, and_, case, cast, extract, func, literal, literal_column, null, select, union_all
from sqlalchemy.orm import Session

from inventory.localtime import format_local, local_days_to_utc_range, local_today, utcnow
from inventory.models import Category, Location, MoveReason, Product, StockMove, Unit
from inventory.spreadsheets import Fen, Qty, csv_table, csv_tables, pct, xlsx_tables
from inventory.web import Page
from pos.core.errors import PosError
from pos.models import (
    BuyerType,
    Channel,
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

CURRENCY = "CNY"
MAX_SPAN_DAYS = 5 * 366 + 1           # a period longer than five years is refused
FIGURE_KEYS = ("total_fen", "certified_fen", "uncertified_fen", "songtao_fen", "sales", "refunds_fen")
CHANNELS = tuple(c.value for c in Channel)            # hall, kiosk, group
BUYER_TYPES = tuple(b.value for b in BuyerType)       # union, enterprise, canteen, other
EXPORT_CHUNK = 2000

ON_ACCOUNT = "on_account"  # monthly summary: group deliveries and returns, settled by order payments
ON_ACCOUNT_LABEL = _l("团购挂账")
CHANNEL_LABELS = {"hall": _l("专馆"), "kiosk": _l("专柜"), "group": _l("团购")}
BUYER_TYPE_LABELS = {"union": _l("工会福利"), "enterprise": _l("企业认购"), "canteen": _l("机关饭堂团购"),
                     "other": _l("其他")}


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


def _movements(s: Session, first: dt.date, last: dt.date, paired_code: str):
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


def _zero() -> dict[str, int]:
    return dict.fromkeys(FIGURE_KEYS, 0)


def _add(into: dict[str, int], total: int, certified: int, songtao: int, refunds: int) -> None:
    into["total_fen"] += int(total or 0)
    into["certified_fen"] += int(certified or 0)
    into["songtao_fen"] += int(songtao or 0)
    into["refunds_fen"] += int(refunds or 0)
    into["uncertified_fen"] = into["total_fen"] - into["certified_fen"]


def _sums(m):
    return (func.coalesce(func.sum(m.c.amount), 0), func.coalesce(func.sum(m.c.certified_amount), 0),
            func.coalesce(func.sum(m.c.songtao_amount), 0), func.coalesce(func.sum(m.c.refund_amount), 0))


def _value(v) -> Optional[str]:
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
        key = tuple(_value(v) for v in row[:n])
        total, cert, song, sales = (int(v or 0) for v in row[n:n + 4])
        out[key] = [total, cert, song, 0, sales, *row[n + 4:]]
    for row in s.execute(back):
        key = tuple(_value(v) for v in row[:n])
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
    shaped as the API answers them (see the module docstring for the definitions). Three grouped
    passes over the period's lines: (month, channel, buyer type, supplier) for the money and the
    suppliers' sales; (county, township) for the origins; the sales table for the numbers of sales."""
    first, last = parse_period(first, last)
    paired = hall_settings(s).paired_county_code

    totals = _zero()
    by_channel = {c: _zero() for c in CHANNELS}
    by_buyer = {b: _zero() for b in BUYER_TYPES}
    months = {k: _zero() for k in months_between(first, last)}
    suppliers: dict[Any, dict] = {}
    names: dict[Any, Optional[str]] = {}
    origins: dict[Any, dict] = {}
    counties: dict[Any, Optional[str]] = {}

    fine = _grouped(s, first, last, paired,
                    lambda day: [month_key(day), Sale.channel, Sale.buyer_type, SaleLine.supplier_id],
                    lambda line: func.max(line.supplier_name))
    for (mk, channel, buyer, supplier_id), (total, cert, song, refunds, sales, name) in fine.items():
        figures = (total, cert, song, refunds)
        _add(totals, *figures)
        _add(by_channel[channel], *figures)
        if channel == Channel.GROUP.value:
            _add(by_buyer[buyer or BuyerType.OTHER.value], *figures)
        _add(months.setdefault(_month_text(mk), _zero()), *figures)
        row = suppliers.setdefault(supplier_id, _zero())
        _add(row, *figures)
        # a sale has one month, channel and buyer type: its supplier's counts add up across them
        row["sales"] += sales
        names[supplier_id] = names.get(supplier_id) or name

    for (county_code, township), (total, cert, song, refunds, sales, county) in _grouped(
            s, first, last, paired, lambda day: [SaleLine.origin_county_code, SaleLine.origin_township],
            lambda line: func.max(line.origin_county)).items():
        row = origins[(county_code, township)] = _zero()
        _add(row, total, cert, song, refunds)
        row["sales"] = sales
        counties[(county_code, township)] = county

    for mk, channel, buyer, n in s.execute(
        select(month_key(Sale.local_date), Sale.channel, Sale.buyer_type, func.count(Sale.id))
        .where(Sale.status == SaleStatus.COMPLETED, Sale.local_date >= first, Sale.local_date <= last)
        .group_by(month_key(Sale.local_date), Sale.channel, Sale.buyer_type)
    ):
        channel, buyer = _value(channel), _value(buyer)
        totals["sales"] += n
        by_channel[channel]["sales"] += n
        if channel == Channel.GROUP.value:
            by_buyer[buyer or BuyerType.OTHER.value]["sales"] += n
        months.setdefault(_month_text(mk), _zero())["sales"] += n

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


# --- the lines behind a figure ---------------------------------------------------------------------

def _lines_query(s: Session, *, first, last, channel=None, buyer_type=None, certified=None, songtao=None,
                 supplier_id=None, county_code=None, township=None, month=None, kind=None):
    first, last = parse_period(first, last)
    if month:
        m_first, m_last = month_bounds(parse_month(month))
        first, last = max(first, m_first), min(last, m_last)
    paired = hall_settings(s).paired_county_code
    m = _movements(s, first, last, paired)
    where = []
    if channel:
        if channel not in CHANNELS:
            raise ReportError(_l("渠道不正确"), "channel")
        where.append(m.c.channel == channel)
    if buyer_type:
        if buyer_type not in BUYER_TYPES:
            raise ReportError(_l("团购类型不正确"), "buyer_type")
        where.append(m.c.buyer_type == buyer_type)
    if certified is not None:
        where.append(m.c.certified.is_(bool(certified)))
    if songtao is not None:
        where.append(m.c.songtao == (1 if songtao else 0))
    if supplier_id is not None:
        where.append(m.c.supplier_id.is_(None) if supplier_id == "none" else m.c.supplier_id == int(supplier_id))
    if county_code is not None:
        where.append(m.c.county_code.is_(None) if county_code == "" else m.c.county_code == county_code)
    if township is not None:
        where.append(m.c.township.is_(None) if township == "" else m.c.township == township)
    if kind:
        where.append(m.c.kind == kind)
    return m, where


def _line_rows(s: Session, m, where):
    """Sale lines and refund lines with what a person needs to find them again."""
    from kiosks.models import Kiosk  # the counters' codes; pos.core.db imports kiosks anyway

    is_refund = m.c.kind == "refund"
    refund = Refund.__table__.alias("refund")
    sl = SaleLine.__table__.alias("sl")
    sale = Sale.__table__.alias("sale")
    return (
        select(
            m.c.kind,
            case((is_refund, refund.c.refund_no), else_=sale.c.receipt_no).label("doc_no"),
            sale.c.receipt_no,
            case((is_refund, refund.c.refunded_at), else_=sale.c.sold_at).label("at"),
            m.c.local_date, m.c.channel, m.c.buyer_type,
            func.coalesce(Till.code, Kiosk.code, Location.name).label("location"),
            Product.sku, Product.name.label("product"),
            m.c.supplier_name, sl.c.certificate_no, m.c.certified,
            m.c.county, m.c.township, m.c.qty_milli,
            m.c.amount.label("amount_fen"),
        )
        .select_from(m)
        .join(sale, sale.c.id == m.c.of_sale_id)
        .join(sl, sl.c.id == m.c.sale_line_id)
        .outerjoin(refund, and_(is_refund, refund.c.id == m.c.doc_id))
        .join(Product, Product.id == m.c.product_id)
        .join(Location, Location.id == sale.c.location_id)
        .outerjoin(Till, Till.id == sale.c.till_id)
        .outerjoin(Kiosk, Kiosk.id == sale.c.kiosk_id)
        .where(*where)
        .order_by(m.c.local_date, m.c.kind.desc(), m.c.doc_id, m.c.line_id)
    )


def _line_dict(row) -> dict[str, Any]:
    d = dict(row._mapping)
    d["channel"], d["buyer_type"] = _value(d["channel"]), _value(d["buyer_type"])
    d["at_local"] = format_local(d["at"]) if d["at"] else ""
    d["local_date"] = d["local_date"].isoformat() if d["local_date"] else None
    d["certified"] = bool(d["certified"])
    return d


def collaboration_lines(s: Session, *, first: dt.date, last: dt.date, channel: Optional[str] = None,
                        buyer_type: Optional[str] = None, certified: Optional[bool] = None,
                        songtao: Optional[bool] = None, supplier_id: Any = None, county_code: Optional[str] = None,
                        township: Optional[str] = None, month: Optional[str] = None,
                        page: int = 1, per_page: int = 50) -> Page:
    """The sale lines (and refund lines, negative) behind any figure of ``collaboration``, paged:
    dicts with kind ("sale"/"refund"), doc_no, receipt_no, at, at_local, local_date, channel,
    buyer_type, location, sku, product, supplier_name, certificate_no, certified, county,
    township, qty_milli, amount_fen. Filters as the figure's row: supplier_id="none" and
    county_code=""/township="" select lines without one. The lines of a figure add up to it."""
    m, where = _lines_query(s, first=first, last=last, channel=channel, buyer_type=buyer_type, certified=certified,
                            songtao=songtao, supplier_id=supplier_id, county_code=county_code, township=township,
                            month=month)
    page = max(1, int(page))
    per_page = min(max(1, int(per_page)), 500)
    total = s.scalar(select(func.count()).select_from(m).where(*where)) or 0
    rows = s.execute(_line_rows(s, m, where).limit(per_page).offset((page - 1) * per_page)).all()
    return Page([_line_dict(r) for r in rows], int(total), page, per_page)


def collaboration_lines_total(s: Session, *, first: dt.date, last: dt.date, **filters) -> dict[str, int]:
    """The sum of every line ``collaboration_lines`` lists for the same filters (all pages), as
    one SQL aggregation over the same query: lines, amount_fen (net: refund lines negative, so it
    equals the figure the lines were opened from), certified_fen."""
    m, where = _lines_query(s, first=first, last=last, **filters)
    lines, amount, certified = s.execute(
        select(func.count(), func.coalesce(func.sum(m.c.amount), 0), func.coalesce(func.sum(m.c.certified_amount), 0))
        .select_from(m).where(*where)
    ).one()
    return {"lines": int(lines), "amount_fen": int(amount), "certified_fen": int(certified)}


def iter_collaboration_lines(s: Session, *, first: dt.date, last: dt.date, **filters) -> Iterator[dict[str, Any]]:
    """Every line ``collaboration_lines`` would page through, streamed in chunks (for exports)."""
    m, where = _lines_query(s, first=first, last=last, **filters)
    result = s.execute(_line_rows(s, m, where).execution_options(yield_per=EXPORT_CHUNK))
    for row in result:
        yield _line_dict(row)


# --- monthly summary and daily summary -------------------------------------------------------------

TOP_N = 10


def _period_totals(s: Session, first: dt.date, last: dt.date, paired: str) -> dict[str, int]:
    """total_fen, certified_fen, songtao_fen, refunds_fen (netted as in collaboration) and sales."""
    m = _movements(s, first, last, paired)
    total, certified, songtao, refunds = s.execute(select(*_sums(m))).one()
    sales = s.scalar(select(func.count(Sale.id)).where(
        Sale.status == SaleStatus.COMPLETED, Sale.local_date >= first, Sale.local_date <= last)) or 0
    out = _zero()
    _add(out, total, certified, songtao, refunds)
    out["sales"] = int(sales)
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
    m = _movements(s, first, last, paired)
    in_month = and_(Sale.status == SaleStatus.COMPLETED, Sale.local_date >= first, Sale.local_date <= last)
    refunds_in_month = and_(Refund.local_date >= first, Refund.local_date <= last)
    start_utc, end_utc = local_days_to_utc_range(first, last)

    # by day
    days = {first + dt.timedelta(days=i): {"total_fen": 0, "certified_fen": 0, "sales": 0, "refunds_fen": 0}
            for i in range((last - first).days + 1)}
    total, certified, _, refunds = _sums(m)
    for day, t_, c_, r_ in s.execute(select(m.c.local_date, total, certified, refunds).group_by(m.c.local_date)):
        days[day].update(total_fen=int(t_), certified_fen=int(c_), refunds_fen=int(r_))
    for day, n in s.execute(select(Sale.local_date, func.count(Sale.id)).where(in_month).group_by(Sale.local_date)):
        days[day]["sales"] = int(n)
    by_day = [{"date": d.isoformat(), **v} for d, v in sorted(days.items())]

    # by payment method
    from pos.sales.reading import payment_label  # the one table of method names

    methods: dict[str, dict[str, int]] = {}
    for method, amount in s.execute(select(Payment.method, func.sum(Payment.amount_fen))
                                    .join(Sale, Sale.id == Payment.sale_id).where(in_month).group_by(Payment.method)):
        methods.setdefault(_value(method), {"sales_fen": 0, "refunds_fen": 0})["sales_fen"] = int(amount)
    # Group orders are delivered on account (their money arrives as order payments, pos.group.orders):
    # their deliveries and returns make one row of their own, so that the rows add up to the takings.
    on_account = Sale.group_order_id.is_not(None)
    method_of_refund = case((on_account, ON_ACCOUNT), else_=Refund.method)
    for method, amount in s.execute(select(method_of_refund, func.sum(Refund.total_fen))
                                    .join(Sale, Sale.id == Refund.sale_id).where(refunds_in_month)
                                    .group_by(method_of_refund)):
        methods.setdefault(_value(method), {"sales_fen": 0, "refunds_fen": 0})["refunds_fen"] = int(amount)
    delivered = s.scalar(select(func.sum(Sale.total_fen)).where(in_month, on_account))
    if delivered:
        methods.setdefault(ON_ACCOUNT, {"sales_fen": 0, "refunds_fen": 0})["sales_fen"] = int(delivered)
    order = [p.value for p in PaymentMethod] + [ON_ACCOUNT]
    by_payment = [{"method": k, "label": str(ON_ACCOUNT_LABEL) if k == ON_ACCOUNT else payment_label(k), **v,
                   "net_fen": v["sales_fen"] - v["refunds_fen"]}
                  for k, v in sorted(methods.items(), key=lambda kv: order.index(kv[0]))]

    # by product, folded into categories
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
        row[CATEGORY_QTY_KEYS[Unit(_value(unit))]] += int(qty)
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
                       "cashier": cashier, "status": _value(status), "opened_at_local": format_local(opened),
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


# --- exports: CSV and XLSX -------------------------------------------------------------------------
# Written by inventory.spreadsheets, the one writer of every export: amounts in yuan (CSV as plain
# text "1234.56", XLSX as numbers with the format #,##0.00, so Excel adds them up), counts as
# integers, and a text cell that a spreadsheet would run as a formula (a supplier or product name
# is typed by people) written as text with a leading apostrophe.

_to_csv = csv_tables
_to_xlsx = xlsx_tables


FIGURE_HEADERS = ["合计（元）", "认定扶贫产品（元）", "非认定（元）", "松桃产品（元）", "销售笔数", "退款（元）"]


def _figures_row(d: dict) -> list:
    return [Fen(d["total_fen"]), Fen(d["certified_fen"]), Fen(d["uncertified_fen"]), Fen(d["songtao_fen"]),
            int(d["sales"]), Fen(d["refunds_fen"])]


def collaboration_tables(report: dict) -> list[tuple[str, list[str], list[list]]]:
    """The report as tables (title, header, rows): 汇总, 按渠道, 按团购类型, 按月份, 按供应商, 按产地."""
    period = f"{report['from']} ~ {report['to']}"
    return [
        ("汇总", ["期间", *FIGURE_HEADERS], [[period, *_figures_row(report)]]),
        ("按渠道", ["渠道", *FIGURE_HEADERS],
         [[str(CHANNEL_LABELS[k]), *_figures_row(v)] for k, v in report["by_channel"].items()]),
        ("按团购类型", ["团购类型", *FIGURE_HEADERS],
         [[str(BUYER_TYPE_LABELS[k]), *_figures_row(v)] for k, v in report["by_buyer_type"].items()]),
        ("按月份", ["月份", *FIGURE_HEADERS], [[r["month"], *_figures_row(r)] for r in report["by_month"]]),
        ("按供应商", ["供应商", *FIGURE_HEADERS],
         [[r["supplier_name"] or "（无供应商）", *_figures_row(r)] for r in report["by_supplier"]]),
        ("按产地", ["县级行政区划代码", "县", "乡镇", *FIGURE_HEADERS],
         [[r["county_code"] or "", r["county"] or "", r["township"] or "", *_figures_row(r)]
          for r in report["by_origin"]]),
    ]


def collaboration_csv(report: dict) -> str:
    """The report as CSV text: the six tables one after another (write it with a BOM for Excel)."""
    return _to_csv(collaboration_tables(report))


def collaboration_xlsx(report: dict) -> bytes:
    """The report as XLSX: one sheet per breakdown, amounts in yuan as numbers."""
    return _to_xlsx(collaboration_tables(report))


LINE_HEADERS = ["类型", "单号", "原小票号", "时间", "渠道", "团购类型", "位置", "商品编码", "商品", "供应商",
                "认定证书编号", "认定扶贫产品", "县", "乡镇", "数量", "净额（元）"]


def _line_row(d: dict) -> list:
    return ["退货" if d["kind"] == "refund" else "销售", d["doc_no"], d["receipt_no"], d["at_local"],
            str(CHANNEL_LABELS.get(d["channel"], d["channel"])),
            str(BUYER_TYPE_LABELS[d["buyer_type"]]) if d["buyer_type"] else "", d["location"], d["sku"],
            d["product"], d["supplier_name"], d["certificate_no"], bool(d["certified"]), d["county"], d["township"],
            Qty(d["qty_milli"]), Fen(d["amount_fen"])]


def lines_csv(lines: Iterator[dict]) -> str:
    """Sale and refund lines (from iter_collaboration_lines) as CSV text."""
    return csv_table(LINE_HEADERS, (_line_row(d) for d in lines))


def lines_xlsx(lines: Iterator[dict]) -> bytes:
    """Sale and refund lines as XLSX (one sheet 明细, streamed by openpyxl's write-only mode)."""
    return _to_xlsx([("明细", LINE_HEADERS, (_line_row(d) for d in lines))])


def monthly_tables(summary: dict) -> list[tuple[str, list[str], list[list]]]:
    """The monthly summary as tables: 汇总, 按日, 按支付方式, 按品类, 畅销商品, 滞销商品, 按收银台,
    按收银员, 班次, 按专柜, 毛利, 对比."""
    product_header = ["商品编码", "商品", "数量", "净额（元）", "认定扶贫产品（元）"]
    people_header = ["销售笔数", "销售额（元）", "退款（元）", "净额（元）", "班次数", "长短款（元）"]

    def people(r):
        return [r["sales"], Fen(r["sales_fen"]), Fen(r["refunds_fen"]), Fen(r["total_fen"]), r["shifts"],
                Fen(r["difference_fen"])]

    def opt_fen(v):
        return "" if v is None else Fen(v)

    margin = summary["margin"]
    return [
        ("汇总", ["月份", *FIGURE_HEADERS, "认定占比（%）"],
         [[summary["month"], *_figures_row(summary), pct(summary["certified_percent"])]]),
        ("按渠道", ["渠道", *FIGURE_HEADERS],
         [[str(CHANNEL_LABELS[k]), *_figures_row(v)] for k, v in summary["by_channel"].items()]),
        ("按日", ["日期", "净额（元）", "认定扶贫产品（元）", "销售笔数", "退款（元）"],
         [[r["date"], Fen(r["total_fen"]), Fen(r["certified_fen"]), r["sales"], Fen(r["refunds_fen"])]
          for r in summary["by_day"]]),
        ("按支付方式", ["支付方式", "收款（元）", "退款（元）", "净额（元）"],
         [[r["label"], Fen(r["sales_fen"]), Fen(r["refunds_fen"]), Fen(r["net_fen"])] for r in summary["by_payment"]]),
        ("按品类", ["品类", "数量（件）", "重量（千克）", "净额（元）", "认定扶贫产品（元）"],
         [[r["category"] or "（未分类）", Qty(r["piece_qty_milli"]), Qty(r["kg_qty_milli"]), Fen(r["total_fen"]),
           Fen(r["certified_fen"])] for r in summary["by_category"]]),
        ("畅销商品", product_header,
         [[r["sku"], r["name"], Qty(r["qty_milli"]), Fen(r["total_fen"]), Fen(r["certified_fen"])]
          for r in summary["top_products"]]),
        ("滞销商品", product_header,
         [[r["sku"], r["name"], Qty(r["qty_milli"]), Fen(r["total_fen"]), Fen(r["certified_fen"])]
          for r in summary["bottom_products"]]),
        ("按收银台", ["收银台", *people_header], [[r["till"] or "", *people(r)] for r in summary["by_till"]]),
        ("按收银员", ["收银员", *people_header], [[r["cashier"] or "", *people(r)] for r in summary["by_cashier"]]),
        ("班次", ["收银台", "收银员", "开班", "交班", "应有现金（元）", "实点现金（元）", "长短款（元）"],
         [[r["till"], r["cashier"], r["opened_at_local"], r["closed_at_local"], opt_fen(r["expected_cash_fen"]),
           opt_fen(r["counted_cash_fen"]), opt_fen(r["difference_fen"])] for r in summary["shifts"]]),
        ("按专柜", ["排名", "专柜", "点位", "镇街", "销售笔数", "销售额（元）", "退款（元）", "净额（元）",
                  "补货次数", "补货行数", "今日满柜率（%）"],
         [[r["rank"], r["code"], r["site_name"], r["town"], r["sales"], Fen(r["sales_fen"]), Fen(r["refunds_fen"]),
           Fen(r["total_fen"]), r["refill_visits"], r["refill_moves"],
           pct(None if r["fill_percent"] is None else str(int(r["fill_percent"])))] for r in summary["by_kiosk"]]),
        ("毛利", ["有成本的销售额（元）", "成本（元）", "毛利（元）", "毛利率（%）", "有成本的销售占比（%）"],
         [[Fen(margin["sales_fen"]), Fen(margin["cost_fen"]), Fen(margin["margin_fen"]),
           pct(margin["margin_percent"]), pct(margin["covered_percent"])]]),
        ("对比", ["对比", "月份", "净额（元）", "认定扶贫产品（元）", "销售笔数", "净额变化（%）", "认定变化（%）",
                "笔数变化（%）"],
         [[label, c["month"], Fen(c["total_fen"]), Fen(c["certified_fen"]), c["sales"],
           pct(c["total_change_percent"]), pct(c["certified_change_percent"]), pct(c["sales_change_percent"])]
          for label, c in (("上月", summary["previous_month"]), ("去年同月", summary["last_year"]))]),
    ]


def monthly_csv(summary: dict) -> str:
    return _to_csv(monthly_tables(summary))


def monthly_xlsx(summary: dict) -> bytes:
    return _to_xlsx(monthly_tables(summary))


__all__ = [
    "ReportError", "parse_period", "parse_month", "collaboration", "collaboration_lines", "iter_collaboration_lines",
    "monthly_summary", "daily_summary", "collaboration_lines_total", "percent", "change_percent", "collaboration_csv", "collaboration_xlsx",
    "lines_csv", "lines_xlsx", "monthly_csv", "monthly_xlsx", "collaboration_tables", "monthly_tables",
    "CHANNEL_LABELS", "BUYER_TYPE_LABELS",
]
