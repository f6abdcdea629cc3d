"""What sells: the products with the most completed sale lines in the last 30 local days — the till's
quick keys, and the "most sold" order within a rank of the product search (inventory.search).

Read through two indexes, never a scan of every sale line: ``ix_sales_local_date_status`` finds the
window's completed sales, ``ix_sale_lines_sale_product`` gives their products without reading the
lines (tests/hall/test_search_plans.py checks both databases' plans).

The search asks on every keystroke, so ``popular_for_search`` keeps the answer per database for
``SEARCH_POPULAR_SECONDS`` (app config, default 60 s; 0: always fresh) once the window's sales have
changed — the order of equally good matches may lag a minute behind the newest sales. The quick keys
and the tills' catalogue always read it fresh.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
import weakref

from flask import current_app
from sqlalchemy import and_, func, select

from inventory.localtime import local_today
from inventory.models import Product
from pos.models import Sale, SaleLine, SaleStatus

DAYS = 30
POPULAR = 500  # products ranked by sales; the rest count as not sold
DEFAULT_MAX_AGE = 60

_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def window_start(today: dt.date | None = None) -> dt.date:
    """The first local day of the last 30 (today included)."""
    return (today or local_today()) - dt.timedelta(days=DAYS - 1)


def most_sold(s, *, limit: int = POPULAR, today: dt.date | None = None) -> list[tuple[int, int]]:
    """[(product_id, sale lines)] of the products on sale most sold in the last 30 days, most lines
    first, then by sku; at most ``limit``."""
    # Grouped by product_id + 0, not product_id: otherwise SQLite (without ANALYZE statistics) reads
    # every sale line in ix_sale_lines_product order to save the grouping's sort.
    window = and_(Sale.local_date >= window_start(today), Sale.status == SaleStatus.COMPLETED)
    lines_of_window = [window]
    if s.get_bind().dialect.name == "postgresql":
        # PostgreSQL would hash-join the whole sale_lines table: give it the range of sale ids the window
        # can hold (every sale of the window has an id at least its first's; an index-only read of
        # ix_sales_local_date_status), which it reads from ix_sale_lines_sale_product.
        first = s.scalar(select(func.min(Sale.id)).where(window))
        if first is None:
            return []
        lines_of_window.append(SaleLine.sale_id >= first)
    product = (SaleLine.product_id + 0).label("product_id")
    counts = (select(product, func.count().label("lines"))
              .select_from(Sale)
              .join(SaleLine, SaleLine.sale_id == Sale.id)
              .where(*lines_of_window)
              .group_by(product)
              .subquery())
    return [(pid, lines) for pid, lines in s.execute(
        select(Product.id, counts.c.lines).join(counts, counts.c.product_id == Product.id)
        .where(Product.active.is_(True))
        .order_by(counts.c.lines.desc(), Product.sku)
        .limit(limit))]


def _fingerprint(s, today: dt.date) -> tuple:
    """Changes when the window's sales do (a new sale, a new day; a void or a restored database
    usually too): read from the local_date index, a count and a max."""
    row = s.execute(select(func.count(), func.max(Sale.id))
                    .where(Sale.local_date >= window_start(today), Sale.status == SaleStatus.COMPLETED)).one()
    return today, row[0], row[1]


def popular_for_search(s) -> dict[int, int]:
    """{product_id: sale lines in the last 30 days} for the most sold products (see the module's note)."""
    try:
        max_age = float(current_app.config.get("SEARCH_POPULAR_SECONDS", DEFAULT_MAX_AGE))
    except RuntimeError:  # outside a request: no app, no cache
        max_age = 0
    engine = s.get_bind()
    today = local_today()
    now = time.monotonic()
    with _lock:
        cached = _cache.get(engine)
    if cached is not None and cached[0][0] == today and now - cached[1] < max_age:
        return cached[2]
    fingerprint = _fingerprint(s, today)
    if cached is not None and cached[0] == fingerprint:
        with _lock:
            _cache[engine] = (fingerprint, now, cached[2])
        return cached[2]
    counts = dict(most_sold(s, today=today))
    with _lock:
        _cache[engine] = (fingerprint, now, counts)
    return counts
