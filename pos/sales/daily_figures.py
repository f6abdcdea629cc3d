"""The reports' daily aggregate (``pos.models.DailyFigure``), kept in the same transaction as the
lines it sums: ``add_sale`` (pos.sales.service.record_sale), ``remove_sale`` (pos.sales.voids) and
``add_refund`` (pos.sales.refunds) each run ONE statement, INSERT … SELECT … GROUP BY … ON CONFLICT
DO UPDATE, computing the deltas from the rows just written; ``rebuild`` recomputes dates from the
lines (``songtao rebuild-aggregates``).

The key carries the sale's source (its till, counter or group order; a refund's own till), so two
tills never update the same row: no hot row per day. Sale counts (see pos.reports.figures): within
one sale, its lines are grouped by the key and ordered by it; the first group counts the sale in
sales_n, the first of each supplier in supplier_sales, the first of each (county code, township) in
origin_sales. A sale has one date, channel, buyer type and source, so these sums are exact numbers
of distinct sales at every grouping the reports show.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import String, bindparam, case, cast, delete, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from pos.models import DailyFigure, Refund, RefundLine, Sale, SaleLine, SaleStatus

KEY = ("local_date", "channel", "buyer_type", "source_kind", "source_id", "certified",
       "county_code", "township", "county", "supplier_id", "supplier_name")
LINE_KEY = ("certified", "county_code", "township", "county", "supplier_id", "supplier_name")
VALUES = ("sales_fen", "refunds_fen", "sales_n", "supplier_sales", "origin_sales", "n_lines")


def _text(column, length=None):
    return func.coalesce(cast(column, String(length)), literal_column("''"))


def _sale_source():
    kind = case((Sale.till_id.is_not(None), literal_column("'till'")),
                (Sale.kiosk_id.is_not(None), literal_column("'kiosk'")),
                (Sale.group_order_id.is_not(None), literal_column("'group'")), else_=literal_column("'none'"))
    return kind, func.coalesce(Sale.till_id, Sale.kiosk_id, Sale.group_order_id, literal_column("0"))


def _line_keys():
    return [SaleLine.certified.label("certified"),
            func.coalesce(SaleLine.origin_county_code, literal_column("''")).label("county_code"),
            func.coalesce(SaleLine.origin_township, literal_column("''")).label("township"),
            func.coalesce(SaleLine.origin_county, literal_column("''")).label("county"),
            func.coalesce(SaleLine.supplier_id, literal_column("0")).label("supplier_id"),
            func.coalesce(SaleLine.supplier_name, literal_column("''")).label("supplier_name")]


def _sale_level():
    kind, source = _sale_source()
    return [Sale.local_date.label("local_date"), _text(Sale.channel, 8).label("channel"),
            _text(Sale.buyer_type, 12).label("buyer_type"), kind.label("source_kind"), source.label("source_id")]


def sale_deltas(*where, sign: int = 1):
    """Σ of the sale lines of the sales matched by ``where`` (on Sale / SaleLine), grouped by KEY,
    with the sale counts (module docstring); every value times ``sign``."""
    sale_keys, line_keys = _sale_level(), _line_keys()
    order = list(line_keys)
    first = literal_column("1")
    inner = (
        select(Sale.id.label("sale_id"), *sale_keys, *line_keys,
               func.sum(SaleLine.net_fen).label("net"), func.count().label("lines"),
               func.row_number().over(partition_by=Sale.id, order_by=order).label("rn_sale"),
               func.row_number().over(partition_by=[Sale.id, line_keys[4]], order_by=order).label("rn_supplier"),
               func.row_number().over(partition_by=[Sale.id, line_keys[1], line_keys[2]], order_by=order)
               .label("rn_origin"))
        .join(Sale, Sale.id == SaleLine.sale_id)
        .where(*where)
        .group_by(Sale.id, *sale_keys, *line_keys)
        .subquery("per_sale")
    )
    keys = [inner.c[k] for k in KEY]
    sg = literal_column(str(int(sign)))

    def counted(rn):
        return func.sum(case((rn == first, sg), else_=literal_column("0")))

    return select(*keys, (sg * func.sum(inner.c.net)).label("sales_fen"), literal_column("0").label("refunds_fen"),
                  counted(inner.c.rn_sale).label("sales_n"), counted(inner.c.rn_supplier).label("supplier_sales"),
                  counted(inner.c.rn_origin).label("origin_sales"), (sg * func.sum(inner.c.lines)).label("n_lines")) \
        .group_by(*keys)


def refund_deltas(*where):
    """Σ of the refund lines of the refunds matched by ``where``, dated by the refund, with the
    original line's keys; the source is the refund's own till, else the sale's."""
    kind, source = _sale_source()
    kind = case((Refund.till_id.is_not(None), literal_column("'till'")), else_=kind)
    source = func.coalesce(Refund.till_id, source)
    keys = [Refund.local_date.label("local_date"), _text(Sale.channel, 8).label("channel"),
            _text(Sale.buyer_type, 12).label("buyer_type"), kind.label("source_kind"), source.label("source_id"),
            *_line_keys()]
    zero = literal_column("0")
    return (select(*keys, zero.label("sales_fen"), func.sum(RefundLine.amount_fen).label("refunds_fen"),
                   zero.label("sales_n"), zero.label("supplier_sales"), zero.label("origin_sales"),
                   func.count().label("n_lines"))
            .select_from(RefundLine)
            .join(Refund, Refund.id == RefundLine.refund_id)
            .join(SaleLine, SaleLine.id == RefundLine.sale_line_id)
            .join(Sale, Sale.id == SaleLine.sale_id)
            .where(*where)
            .group_by(*keys))


def _upsert_statement(query, dialect_name: str):
    table = DailyFigure.__table__
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table).from_select([*KEY, *VALUES], query)
    return stmt.on_conflict_do_update(index_elements=[table.c[k] for k in KEY],
                                      set_={v: table.c[v] + stmt.excluded[v] for v in VALUES})


def _dialect_name(s) -> str:
    return s.dialect.name if hasattr(s, "dialect") else s.get_bind().dialect.name  # a Session or a Connection


def _upsert(s: Session, query) -> None:
    s.execute(_upsert_statement(query, _dialect_name(s)))


_BUILT: dict = {}
_IDS = bindparam("ids", expanding=True)


def _built(s: Session, name: str):
    """The statements of add_sale, remove_sale and add_refund, built once per dialect with the ids
    as a parameter: building this INSERT … SELECT costs several times what running it does."""
    dialect = _dialect_name(s)
    stmt = _BUILT.get((dialect, name))
    if stmt is None:
        query = {"add_sale": lambda: sale_deltas(SaleLine.sale_id.in_(_IDS)),
                 "remove_sale": lambda: sale_deltas(SaleLine.sale_id.in_(_IDS), sign=-1),
                 "add_refund": lambda: refund_deltas(RefundLine.refund_id.in_(_IDS))}[name]()
        stmt = _BUILT[(dialect, name)] = _upsert_statement(query, dialect)
    return stmt


def _ids(ids: int | Iterable[int]) -> list[int]:
    return [ids] if isinstance(ids, int) else sorted(set(ids))


def add_sale(s: Session | Connection, sale_ids: int | Iterable[int]) -> None:
    """Recorded sales' lines into the aggregate (one statement for all of them: record_sale's
    batch of a counter's sales passes their ids together), on a Session or on its Connection."""
    ids = _ids(sale_ids)
    if ids:
        s.execute(_built(s, "add_sale"), {"ids": ids})


def remove_sale(s: Session, sale_id: int) -> None:
    """A voided sale's lines out of the aggregate (one statement): the same rows, negated."""
    s.execute(_built(s, "remove_sale"), {"ids": _ids(sale_id)})


def add_refund(s: Session, refund_id: int) -> None:
    """A refund's lines into the aggregate, on the refund's own date (one statement)."""
    s.execute(_built(s, "add_refund"), {"ids": _ids(refund_id)})


def rebuild(s, first: dt.date | None = None, last: dt.date | None = None) -> dict:
    """Delete and recompute the aggregate's rows of the local dates first..last (all when None)
    from the lines, in the caller's transaction (a Session or a Connection): {"deleted", "rows"}."""
    table = DailyFigure.__table__
    on = []
    sale_on = [Sale.status == SaleStatus.COMPLETED]
    refund_on = []
    if first is not None:
        on.append(table.c.local_date >= first)
        sale_on.append(Sale.local_date >= first)
        refund_on.append(Refund.local_date >= first)
    if last is not None:
        on.append(table.c.local_date <= last)
        sale_on.append(Sale.local_date <= last)
        refund_on.append(Refund.local_date <= last)
    deleted = s.execute(delete(table).where(*on)).rowcount
    _upsert(s, sale_deltas(*sale_on))
    _upsert(s, refund_deltas(*refund_on))
    rows = s.scalar(select(func.count()).select_from(table).where(*on))
    return {"deleted": int(deleted or 0), "rows": int(rows or 0)}


__all__ = ["add_sale", "remove_sale", "add_refund", "rebuild", "sale_deltas", "refund_deltas", "KEY", "VALUES"]
