"""The lines behind a figure of the consumption-collaboration statistics (the drill-down): the
sale and refund lines of a period, filtered as the figure's row says, paged or streamed, and
their totals (which are the figure's).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from inventory.localtime import format_local
from inventory.models import Location, Product
from inventory.web import Page
from pos.models import Refund, Sale, SaleLine, Till
from pos.hall.settings import hall_settings
from pos.reports.figures import (
    BUYER_TYPES, CHANNELS, EXPORT_CHUNK, ReportError, enum_text, month_bounds, movements, parse_month, parse_period,
)


# --- the lines behind a figure ---------------------------------------------------------------------

def _lines_query(s: Session, *, first, last, channel=None, buyer_type=None, certified=None, songtao=None,
                 supplier_id=None, county_code=None, township=None, month=None, kind=None):
    first, last = parse_period(first, last)
    if month:
        m_first, m_last = month_bounds(parse_month(month))
        first, last = max(first, m_first), min(last, m_last)
    paired = hall_settings(s).paired_county_code
    m = movements(s, first, last, paired)
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
    d["channel"], d["buyer_type"] = enum_text(d["channel"]), enum_text(d["buyer_type"])
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
