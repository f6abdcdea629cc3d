"""The till's product search at any catalogue size: a scanned or typed barcode, a sku, the start or
a fragment of a name, pinyin initials (``mjc`` finds 梅江茶) — best matches first, capped.

Ranking (static/js/till_offline.js ``search`` ranks the browser's catalogue the same way):

0. the exact code: the sku (any case) or a barcode (or its UPC-A/EAN-13 twin);
1. skus starting with the query;
2. pinyin initials starting with the query (only Latin letters and digits typed);
3. names starting with the query;
4. from three characters on: names or initials containing the query.

Within a rank the most sold first (sale lines in the last 30 days, ``sold``: the caller's counts,
pos.hall.popular), then by sku (case-folded, then as written). At most ``CAP`` results.

Every rank is read through an index (inventory.search_index): prefix ranges on btrees in code-point
order, fragments through FTS5 trigram (SQLite) or pg_trgm (PostgreSQL), barcodes through their
unique index — one statement, each part cut at ``CAP`` rows in rank order, never a scan of the
catalogue. That cut keeps the answer exact: the most sold products are ranked in Python from their
own rows (at most a few hundred, by primary key), and the rest of each rank comes in sku order, so
the first ``CAP`` of every rank are always among what was read.

Latin queries under three characters only match the start of a sku, a name or the initials (and an
exact code): a fragment that short has no trigram to look up. One or two Chinese characters (茶,
蜂蜜) still find names containing them, by reading every name (bench.search measures it).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Mapping, Optional

from sqlalchemy import Integer, and_, any_, bindparam, column, func, literal, select, table, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from . import barcodes as barcode_rules
from .models import Barcode, Product
from .search_index import FTS_TABLE

CAP = 200
FRAGMENT_MIN = 3  # characters: below this only prefixes match
_TOP = "\U0010ffff"  # sorts after every character: q <= x < q + _TOP is "x starts with q"

_fts = table(FTS_TABLE, column("rowid"), column("name"), column("pinyin_initials"))


@dataclass(frozen=True)
class Query:
    lowered: str                 # NFKC, lower case: for codes and initials
    names: tuple[str, ...]       # what was typed and its NFKC form, lower case: for names
    codes: tuple[str, ...]       # barcode forms to look up exactly
    initials: str                # '' unless only Latin letters, digits (and spaces) were typed


def parse(q) -> Optional[Query]:
    typed = (q if isinstance(q, str) else "").strip()[:120]
    typed = "".join(ch for ch in typed if ord(ch) >= 0x20 and ord(ch) != 0x7F)  # PostgreSQL refuses NUL
    text = unicodedata.normalize("NFKC", typed)  # full-width letters and digits
    if not text:
        return None
    lowered = text.lower()
    names = tuple(sorted({typed.lower(), lowered}))
    codes = tuple(barcode_rules.scan_variants(text.replace(" ", "").upper()))
    squeezed = lowered.replace(" ", "")
    initials = squeezed if squeezed.isascii() and squeezed.isalnum() else ""
    return Query(lowered, names, codes, initials)


def is_fragment(text: str) -> bool:
    """Whether names are searched for ``text`` anywhere in them, not only at the start: from three
    characters, or any Chinese (non-ASCII) text — 茶 or 蜂蜜 alone is a common search."""
    return len(text) >= FRAGMENT_MIN or not text.isascii()


def rank_of(query: Query, sku: str, name: str, initials: str, barcode_hit: bool = False) -> Optional[int]:
    """The rank of one product for ``query`` (None: no match) — the rules above, in Python."""
    sku_l, name_l, initials = sku.lower(), name.lower(), initials or ""
    if sku_l == query.lowered or barcode_hit:
        return 0
    if sku_l.startswith(query.lowered):
        return 1
    if query.initials and initials.startswith(query.initials):
        return 2
    if any(name_l.startswith(t) for t in query.names):
        return 3
    if any(is_fragment(t) and t in name_l for t in query.names):
        return 4
    if len(query.initials) >= FRAGMENT_MIN and query.initials in initials:
        return 4
    return None


def sort_key(rank: int, sold: int, sku: str) -> tuple:
    return rank, -sold, sku.lower(), sku


def search_ids(s: Session, q, *, sold: Optional[Mapping[int, int]] = None, cap: int = CAP) -> list[int]:
    """The ids of the products on sale matching ``q``, best first, at most ``cap``."""
    query = parse(q)
    if query is None:
        return []
    sold = sold or {}
    pg = s.get_bind().dialect.name == "postgresql"

    def code_order(expr):
        return expr.collate("C") if pg else expr

    sku_l = code_order(func.lower(Product.sku))
    name_l = code_order(func.lower(Product.name))
    initials = code_order(Product.pinyin_initials)

    def starts(expr, prefix):
        return and_(expr >= prefix, expr < prefix + _TOP)

    def part(rank: int, *where, few: bool = False):
        chosen = select(Product.id, Product.sku, literal(rank).label("rank")).where(Product.active.is_(True), *where)
        # An exact code names a product or two: in sku order with a limit, PostgreSQL would walk the
        # whole sku index looking for them.
        return (chosen if few else chosen.order_by(sku_l, Product.sku).limit(cap)).subquery()

    parts = [
        part(0, sku_l == query.lowered, few=True),
        part(0, Product.id.in_(select(Barcode.product_id).where(Barcode.code.in_(query.codes))), few=True),
        part(1, starts(sku_l, query.lowered)),
    ]
    if query.initials:
        parts.append(part(2, starts(initials, query.initials)))
    parts += [part(3, starts(name_l, t)) for t in query.names]
    fragments = [t for t in query.names if is_fragment(t)]
    if len(query.initials) >= FRAGMENT_MIN:
        parts.append(part(4, _contains(pg, "pinyin_initials", query.initials)))
    parts += [part(4, _contains(pg, "name", t)) for t in fragments]
    found: dict[int, tuple] = {}
    per_part = [0] * len(parts)
    statement = union_all(*(select(p.c.id, p.c.sku, p.c.rank, literal(i).label("part")) for i, p in enumerate(parts)))
    for pid, sku, rank, n in s.execute(statement):
        per_part[n] += 1
        key = sort_key(rank, sold.get(pid, 0), sku)
        if pid not in found or key < found[pid]:
            found[pid] = key
    if sold and max(per_part) >= cap:
        # A part was cut: a most sold product may lie beyond its cut, and ranks first in its rank.
        # Rank the most sold from their own rows. (No part cut: every match was read.)
        barcode_hits = {pid for pid, key in found.items() if key[0] == 0}  # (or the exact sku)
        ids = list(sold)
        # one array parameter on PostgreSQL, not hundreds (each search would be a new statement to parse)
        popular = (Product.id == any_(bindparam("popular", ids, type_=ARRAY(Integer)))) if pg else Product.id.in_(ids)
        for pid, sku, name, pinyin in s.execute(
                select(Product.id, Product.sku, Product.name, Product.pinyin_initials)
                .where(popular, Product.active.is_(True))):
            rank = rank_of(query, sku, name, pinyin, pid in barcode_hits)
            if rank is not None:
                key = sort_key(rank, sold[pid], sku)
                if pid not in found or key < found[pid]:
                    found[pid] = key
    return sorted(found, key=found.__getitem__)[:cap]


def _contains(pg: bool, column_name: str, fragment: str):
    """``column`` contains ``fragment``: through the trigram index from three characters (below, see inside)."""
    if pg:
        expr = func.lower(Product.name) if column_name == "name" else Product.pinyin_initials
        escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return expr.like(f"%{escaped}%", escape="\\")
    if len(fragment) < FRAGMENT_MIN or any(ch in fragment for ch in "%_\\"):
        # No trigram to look up (一两个汉字), or a LIKE wildcard (FTS5 uses its index for a plain LIKE
        # only): test every name, walking ix_products_lower_sku (it covers active and name) in the
        # part's sku order up to its cut — a common fragment stops early, a rare one reads the index
        # once, never the table. SQLite's lower() folds only ASCII: a fragment without ASCII letters
        # is looked for in the name as it is.
        if column_name != "name":
            return func.instr(Product.pinyin_initials, fragment) > 0
        ascii_letters = any("a" <= ch <= "z" for ch in fragment)
        return func.instr(func.lower(Product.name) if ascii_letters else Product.name, fragment) > 0
    return Product.id.in_(select(_fts.c.rowid).where(_fts.c[column_name].like(f"%{fragment}%")))
