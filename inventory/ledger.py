"""The stock ledger: the only writer of stock.

A move takes a quantity of a product (and lot) from one location to another. The stock-level
tables are kept in the same transaction with single-statement atomic increments
(``UPDATE … SET qty_milli = qty_milli + :d``), never read-add-write in Python, so concurrent
tills and counters cannot lose an update. Every move credits one location and debits another,
so per product all locations add up to zero.

A real location (base, hall, storeroom, counter, van) never goes below zero, except by a sale
(the goods are already in the customer's hand) or a count adjustment (the count is the truth);
a level that does raises a discrepancy alert. Virtual locations (supplier, customer, loss, count
adjustment) go negative by design.

Concurrency (PostgreSQL deadlocked here once): virtual locations keep NO level rows. Every sale
of a product would otherwise update the one (customer, product) row, a hot row that serialises
every till and counter and, taken in basket order, deadlocks them; a virtual location's level is
the sum of its moves instead (``level``). Level rows are locked in one global order: by product
(callers post a document's lines sorted by product id, see ``by_product``), then by location id
within a move, then the product level before the lot level at a location.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, case, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .alerts import raise_negative_stock_alert
from .errors import InventoryError
from .localtime import utcnow
from .models import (
    VIRTUAL_LOCATION_KINDS,
    Location,
    LocationKind,
    Lot,
    LotLevel,
    MoveReason,
    Product,
    StockLevel,
    StockMove,
)
from .money import format_qty

# Integer columns are 32-bit on PostgreSQL.
MAX_QTY_MILLI = 2_000_000_000

# Only these reasons may take a real location below zero (and only when asked to).
NEGATIVE_ALLOWED_REASONS = frozenset({MoveReason.SALE, MoveReason.COUNT_ADJUSTMENT})


class StockError(InventoryError):
    """A move the rules refuse; the message is for the person who asked for it."""


class InsufficientStock(StockError):
    pass


@dataclass(frozen=True)
class MoveResult:
    move_id: Optional[int]  # None from post_moves when no level went below zero
    from_level_milli: Optional[int]   # None for a virtual location (it keeps no level row)
    to_level_milli: Optional[int]


class _NoSavepoint:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


_NO_SAVEPOINT = _NoSavepoint()


def by_product(items, key=lambda item: item.product_id):
    """``items`` in the global lock order (product id): post a document's lines in this order so
    that two transactions touching the same products never wait for each other in a circle."""
    return sorted(items, key=key)


_LEVEL_STATEMENTS: dict = {}


def _level_statements(session: Session, table, keys: tuple[str, ...]):
    """The two statements that change a level table, built once per dialect (building a
    statement costs far more than running it):

    - debit: ``UPDATE … SET qty_milli = qty_milli + :delta WHERE <keys> AND qty_milli + :delta
      >= :floor [+ reserved_milli] RETURNING qty_milli`` (stock reserved for group orders is not
      taken by guarded moves)
    - upsert: ``INSERT … ON CONFLICT (<keys>) DO UPDATE SET qty_milli = qty_milli +
      excluded.qty_milli RETURNING qty_milli``, which creates a missing row in the same atomic
      statement, so two transactions cannot race to create it.

    Core statements on the table: no ORM bulk-update machinery, and no level objects in the
    session to synchronise.
    """
    dialect = session.get_bind().dialect.name
    cached = _LEVEL_STATEMENTS.get((dialect, table))
    if cached is None:
        t = table.__table__
        match = [t.c[k] == bindparam(f"key_{k}") for k in keys]
        # What a guarded debit must leave behind: the floor, plus what is reserved (product levels).
        keep = bindparam("floor") + t.c.reserved_milli if "reserved_milli" in t.c else bindparam("floor")
        debit = (
            update(t)
            .where(*match, t.c.qty_milli + bindparam("delta") >= keep)
            .values(qty_milli=t.c.qty_milli + bindparam("delta"))
            .returning(t.c.qty_milli)
        )
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        new = dialect_insert(t).values({**{k: bindparam(f"key_{k}") for k in keys}, "qty_milli": bindparam("delta")})
        upsert = new.on_conflict_do_update(
            index_elements=[t.c[k] for k in keys],
            set_={"qty_milli": t.c.qty_milli + new.excluded.qty_milli},
        ).returning(t.c.qty_milli)
        cached = _LEVEL_STATEMENTS[(dialect, table)] = (debit, upsert)
    return cached


def _add(session: Session, table, keys: dict, delta: int, *, floor: Optional[int] = None) -> Optional[int]:
    """Atomically add ``delta`` to the row of ``table`` at ``keys``; return the new quantity.

    Without ``floor`` the row is created when missing. With ``floor`` the row must exist and the
    update only happens if the result stays >= floor; None when it would not (nothing is written).
    """
    debit, upsert = _level_statements(session, table, tuple(keys))
    params = {**{f"key_{k}": v for k, v in keys.items()}, "delta": delta}
    if floor is None:
        return session.execute(upsert, params).scalar_one()
    row = session.execute(debit, {**params, "floor": floor}).first()
    return None if row is None else row[0]


_MOVE_INSERT = insert(StockMove.__table__).returning(StockMove.__table__.c.id)


def move(
    session: Session,
    *,
    product_id: int,
    qty_milli: int,
    from_location_id: int,
    to_location_id: int,
    reason: MoveReason,
    lot_id: Optional[int] = None,
    ref_type: Optional[str] = None,
    ref_id: Optional[int] = None,
    note: Optional[str] = None,
    user_id: Optional[int] = None,
    allow_negative_source: bool = False,
) -> MoveResult:
    """Post one move. A real source location may not go below zero unless
    ``allow_negative_source`` (sales: the goods are already in the customer's hand; count
    adjustments: the count is the truth), in which case a negative level raises a discrepancy
    alert instead. A refused move writes nothing and raises ``StockError`` (``InsufficientStock``
    when the source has too little)."""
    if not isinstance(qty_milli, int) or isinstance(qty_milli, bool) or qty_milli <= 0:
        raise StockError(_l("数量必须是正数"))
    if qty_milli > MAX_QTY_MILLI:
        raise StockError(_l("数量太大"))
    try:
        reason = MoveReason(reason)
    except ValueError:
        raise StockError(_l("未知的库存变动原因：%(reason)s", reason=str(reason)[:30])) from None
    if allow_negative_source and reason not in NEGATIVE_ALLOWED_REASONS:
        raise StockError(_l("只有销售和盘点调整可以使账面库存为负"))
    if from_location_id == to_location_id:
        raise StockError(_l("调出和调入位置不能相同"))
    source = session.get(Location, from_location_id)
    target = session.get(Location, to_location_id)
    if source is None or target is None:
        raise StockError(_l("位置不存在"))
    if lot_id is not None and _lot_product(session, lot_id) != product_id:
        product = session.get(Product, product_id)
        raise StockError(_l("批次不属于商品「%(product)s」", product=product.name if product else product_id))
    if note is not None and len(note) > 200:
        note = note[:200]
    guard = not source.kind.is_virtual and not allow_negative_source
    floor = 0 if guard else None

    # Lock the two locations' rows in location-id order (the global order: product, then location).
    # When the target comes first and the source's debit is guarded, a refusal must also undo the
    # target's credit, so both run in a savepoint; as do two guarded debits (product, then lot),
    # so that a refusal of the second leaves nothing of the first in the caller's transaction.
    target_first = not target.kind.is_virtual and not source.kind.is_virtual and target.id < source.id
    savepoint = guard and (target_first or lot_id is not None)
    with session.begin_nested() if savepoint else _NO_SAVEPOINT:
        if target_first:
            to_level = _credit(session, target, product_id, lot_id, qty_milli)
        from_level = _debit(session, source, product_id, lot_id, qty_milli, floor)
        if not target_first:
            to_level = _credit(session, target, product_id, lot_id, qty_milli)

    move_id = session.execute(
        _MOVE_INSERT,
        {
            "product_id": product_id,
            "lot_id": lot_id,
            "from_location_id": from_location_id,
            "to_location_id": to_location_id,
            "qty_milli": qty_milli,
            "reason": reason,
            "ref_type": ref_type,
            "ref_id": ref_id,
            "note": note,
            "user_id": user_id,
            "moved_at": utcnow(),
        },
    ).scalar_one()

    if from_level is not None and from_level < 0:
        # The level row is locked by the update above until commit, so two sales of the same
        # product at the same place cannot both find no open alert.
        raise_negative_stock_alert(session, source, _product(session, product_id), from_level, move_id=move_id)
    return MoveResult(move_id, from_level, to_level)


def level(session: Session, location_id: int, product_id: int) -> int:
    """A product's level at a location: its level row for a real location, the sum of its moves
    for a virtual one (which keeps no row, see the module's docstring)."""
    location = session.get(Location, location_id)
    if location is not None and location.kind.is_virtual:
        return _sum_of_moves(session, location_id, StockMove.product_id == product_id)
    return session.scalar(
        select(StockLevel.qty_milli).where(
            StockLevel.location_id == location_id, StockLevel.product_id == product_id
        )
    ) or 0


def lot_level(session: Session, location_id: int, lot_id: int) -> int:
    location = session.get(Location, location_id)
    if location is not None and location.kind.is_virtual:
        return _sum_of_moves(session, location_id, StockMove.lot_id == lot_id)
    return session.scalar(
        select(LotLevel.qty_milli).where(LotLevel.location_id == location_id, LotLevel.lot_id == lot_id)
    ) or 0


def _sum_of_moves(session: Session, location_id: int, condition) -> int:
    """What has moved into a location minus what has moved out, by one SQL aggregation."""
    signed = case((StockMove.to_location_id == location_id, StockMove.qty_milli), else_=-StockMove.qty_milli)
    return int(session.scalar(
        select(func.coalesce(func.sum(signed), 0)).where(
            condition, or_(StockMove.to_location_id == location_id, StockMove.from_location_id == location_id))
    ))


def unbalanced(session: Session) -> list[tuple[int, int, int, int]]:
    """Where the books disagree with themselves: (location, product, level row, sum of moves) for
    every real location whose level row differs from what its moves add up to. Empty when every
    product's locations add up to zero (the virtual ones being the sums of their moves). One SQL
    aggregation; the checks of the demo and of the tests call it."""
    m = StockMove.__table__
    signed = select(m.c.to_location_id.label("loc"), m.c.product_id, m.c.qty_milli.label("d")).union_all(
        select(m.c.from_location_id.label("loc"), m.c.product_id, (-m.c.qty_milli).label("d"))).subquery()
    moved = (select(signed.c.loc, signed.c.product_id, func.sum(signed.c.d).label("q"))
             .group_by(signed.c.loc, signed.c.product_id).subquery())
    real = select(Location.id).where(Location.kind.not_in(list(VIRTUAL_LOCATION_KINDS)))
    stored = select(StockLevel.location_id.label("loc"), StockLevel.product_id, StockLevel.qty_milli.label("q")) \
        .where(StockLevel.location_id.in_(real)).subquery()
    keys = select(stored.c.loc, stored.c.product_id).union(
        select(moved.c.loc, moved.c.product_id).where(moved.c.loc.in_(real))).subquery()
    have = func.coalesce(stored.c.q, 0)
    should = func.coalesce(moved.c.q, 0)
    rows = session.execute(
        select(keys.c.loc, keys.c.product_id, have, should)
        .outerjoin(stored, and_(stored.c.loc == keys.c.loc, stored.c.product_id == keys.c.product_id))
        .outerjoin(moved, and_(moved.c.loc == keys.c.loc, moved.c.product_id == keys.c.product_id))
        .where(have != should))
    return [tuple(row) for row in rows]


def virtual_location(session: Session, kind: LocationKind) -> Location:
    """The single virtual location of a kind (supplier, customer, loss, count adjustment)."""
    loc = session.scalars(select(Location).where(Location.kind == kind).order_by(Location.id)).first()
    if loc is None:
        raise StockError(_l("缺少虚拟位置：%(kind)s", kind=kind.value))
    return loc


def _lot_memory(session: Session) -> dict:
    """lot → product, remembered for the current (sub)transaction only: a lot never changes
    product, but a lot created in a savepoint that is rolled back is gone, and on SQLite its id
    may be given to the next lot."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    cached = session.info.get("ledger.lot_products")
    if cached is None or cached[0] is not transaction:
        cached = session.info["ledger.lot_products"] = (transaction, {})
    return cached[1]


def remember_lots(session: Session, pairs) -> None:
    """(lot, product) pairs just read with the lots (FEFO reads them): moves of those lots then
    need no query to check that each lot is its product's."""
    _lot_memory(session).update(pairs)


def _lot_product(session: Session, lot_id: int) -> Optional[int]:
    """The product a lot belongs to (see ``_lot_memory``)."""
    known = _lot_memory(session)
    if lot_id not in known:
        owner = session.scalar(select(Lot.product_id).where(Lot.id == lot_id))
        if owner is None:
            return None
        known[lot_id] = owner
    return known[lot_id]


def _product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise StockError(_l("商品不存在"))
    return product


def _debit(session: Session, source: Location, product_id: int, lot_id: Optional[int], qty_milli: int,
           floor: Optional[int]) -> Optional[int]:
    """Take the quantity out of the source's product level (and lot level); raise when refused.
    A virtual source keeps no level rows: nothing to take, None."""
    if source.kind.is_virtual:
        return None
    from_level = _add(session, StockLevel, {"location_id": source.id, "product_id": product_id}, -qty_milli, floor=floor)
    if from_level is None:
        raise insufficient(session, source, product_id, qty_milli)
    if lot_id is not None:
        if _add(session, LotLevel, {"location_id": source.id, "lot_id": lot_id}, -qty_milli, floor=floor) is None:
            product = _product(session, product_id)
            lot = session.get(Lot, lot_id)
            raise InsufficientStock(_l(
                "%(location)s的「%(product)s」批次 %(lot)s 库存不足",
                location=source.name, product=product.name, lot=lot.lot_no if lot else lot_id,
            ))
    return from_level


def _credit(session: Session, target: Location, product_id: int, lot_id: Optional[int], qty_milli: int
            ) -> Optional[int]:
    """Add the quantity to the target's product level, then its lot level (rows created when
    missing); a virtual target keeps no level rows: None."""
    if target.kind.is_virtual:
        return None
    to_level = _add(session, StockLevel, {"location_id": target.id, "product_id": product_id}, qty_milli)
    if lot_id is not None:
        _add(session, LotLevel, {"location_id": target.id, "lot_id": lot_id}, qty_milli)
    return to_level


def insufficient(session: Session, source: Location, product_id: int, qty_milli: int) -> InsufficientStock:
    """The refusal of a guarded debit or a reservation: what is on the books, what of it is
    reserved, and what was asked for."""
    product = _product(session, product_id)
    weighed = product.weighed
    have, held = session.execute(
        select(StockLevel.qty_milli, StockLevel.reserved_milli)
        .where(StockLevel.location_id == source.id, StockLevel.product_id == product_id)
    ).first() or (0, 0)
    if held:
        return InsufficientStock(_l(
            "%(location)s的「%(product)s」库存不足：账面 %(have)s，其中 %(held)s 已为团购订单预留，需要 %(need)s",
            location=source.name, product=product.name, have=format_qty(have, by_weight=weighed),
            held=format_qty(held, by_weight=weighed), need=format_qty(qty_milli, by_weight=weighed),
        ))
    return InsufficientStock(_l(
        "%(location)s的「%(product)s」库存不足：账面 %(have)s，需要 %(need)s",
        location=source.name, product=product.name, have=format_qty(have, by_weight=weighed),
        need=format_qty(qty_milli, by_weight=weighed),
    ))


# --- many moves at once ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MoveIn:
    """One move for ``post_moves``: the arguments of ``move``."""
    product_id: int
    qty_milli: int
    from_location_id: int
    to_location_id: int
    reason: MoveReason
    lot_id: Optional[int] = None
    ref_type: Optional[str] = None
    ref_id: Optional[int] = None
    note: Optional[str] = None
    user_id: Optional[int] = None
    allow_negative_source: bool = False


_PLACE_IDS = Location.id.in_(bindparam("ids", expanding=True))
_PLACES = select(Location.id, Location.kind, Location.name).where(_PLACE_IDS)
_PLACES_AND_VIRTUAL = select(Location.id, Location.kind, Location.name).where(
    or_(_PLACE_IDS, Location.kind.in_(sorted(VIRTUAL_LOCATION_KINDS, key=lambda k: k.value))))


def locations(session: Session, ids) -> dict:
    """Locations by id (rows with ``id``, ``kind``, ``name``), with every virtual location, read
    with one query per (sub)transaction and then only for ids not seen yet (a location's kind and
    name do not change within one)."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    cached = session.info.get("ledger.locations")
    if cached is None or cached[0] is not transaction:
        cached = session.info["ledger.locations"] = (transaction, {}, [False])
    known, primed = cached[1], cached[2]
    missing = {i for i in ids if i not in known}
    if missing or not primed[0]:
        statement = _PLACES if primed[0] else _PLACES_AND_VIRTUAL
        primed[0] = True
        for row in session.execute(statement, {"ids": sorted(missing)}):
            known[row.id] = row
    return known


def virtual_location_id(session: Session, kind: LocationKind) -> int:
    """The id of the single virtual location of a kind, from ``locations``' memory."""
    found = [i for i, row in locations(session, ()).items() if row.kind == kind]
    if not found:
        raise StockError(_l("缺少虚拟位置：%(kind)s", kind=kind.value))
    return min(found)


_locations = locations


_LOT_OWNERS = select(Lot.id, Lot.product_id).where(Lot.id.in_(bindparam("ids", expanding=True)))


def _lot_products(session: Session, lot_ids) -> None:
    """Fill ``_lot_product``'s memory for many lots with one query."""
    known = _lot_memory(session)
    missing = sorted({i for i in lot_ids if i not in known})
    if missing:
        known.update(session.execute(_LOT_OWNERS, {"ids": missing}).all())


_UPSERTS: dict = {}


def _upsert_many(session: Session, table, keys: tuple[str, str], deltas: dict, order) -> dict:
    """Add each delta to its row (created when missing) with ONE statement, rows in key order (the
    lock order); returns key → (new quantity, what of it is reserved: 0 for a lot level)."""
    dialect = session.get_bind().dialect.name
    stmt = _UPSERTS.get((dialect, table))
    if stmt is None:
        t = table.__table__
        new = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t)
        reserved = t.c.reserved_milli if "reserved_milli" in t.c else literal(0)
        stmt = _UPSERTS[(dialect, table)] = new.on_conflict_do_update(
            index_elements=[t.c[k] for k in keys], set_={"qty_milli": t.c.qty_milli + new.excluded.qty_milli},
        ).returning(t.c[keys[0]], t.c[keys[1]], t.c.qty_milli, reserved)
    ordered = sorted(deltas, key=order)
    rows = [{keys[0]: k[0], keys[1]: k[1], "qty_milli": deltas[k]} for k in ordered]
    if len(rows) == 1:
        return {(r[0], r[1]): (r[2], r[3]) for r in session.execute(stmt, rows[0])}
    return {(r[0], r[1]): (r[2], r[3]) for r in session.execute(stmt, rows)}


def _levels_after_each(moves: list[MoveIn], keys: list[tuple], final: dict) -> list[tuple]:
    """Each move's (source, target) level just after it, as posting the moves one after the other
    would have left them: walked back from the ``final`` levels. ``keys``: per move, its (source,
    target) key in ``final``, None for a location that keeps no row."""
    after: list = [None] * len(moves)
    running = {key: qty for key, (qty, _) in final.items()}
    for i in range(len(moves) - 1, -1, -1):
        qty, (src, dst) = moves[i].qty_milli, keys[i]
        after[i] = (running[src] if src else None, running[dst] if dst else None)
        if src:
            running[src] += qty
        if dst:
            running[dst] -= qty
    return after


def post_moves(session: Session, moves: list[MoveIn]) -> list[MoveResult]:
    """Post many moves as ``move`` would, one after the other, but with a few statements: the
    locations and lots read once, each level table changed by one upsert of the summed deltas
    (rows in the global lock order: product, then location; every product level before the lot
    levels, which always follow their product level), the moves inserted by one statement.

    A guarded move (out of a real location that may not go below zero; reserved stock is not
    taken) is checked against the level it would have left, walked back from the final levels.
    If any would be refused, the batch is undone (it ran in a savepoint) and the moves are posted
    one by one through ``move``, so that the refusal, its message and what was written before it
    are exactly ``move``'s; pass them in the lock order (``by_product``).

    The results' ``move_id`` is None unless a level went below zero (then the moves are inserted
    one by one, so that the alert names the move that did it)."""
    if not moves:
        return []
    for m in moves:
        if not isinstance(m.qty_milli, int) or isinstance(m.qty_milli, bool) or m.qty_milli <= 0:
            raise StockError(_l("数量必须是正数"))
        if m.qty_milli > MAX_QTY_MILLI:
            raise StockError(_l("数量太大"))
        try:
            reason = MoveReason(m.reason)
        except ValueError:
            raise StockError(_l("未知的库存变动原因：%(reason)s", reason=str(m.reason)[:30])) from None
        if m.allow_negative_source and reason not in NEGATIVE_ALLOWED_REASONS:
            raise StockError(_l("只有销售和盘点调整可以使账面库存为负"))
        if m.from_location_id == m.to_location_id:
            raise StockError(_l("调出和调入位置不能相同"))
    locations = _locations(session, {m.from_location_id for m in moves} | {m.to_location_id for m in moves})
    if any(locations.get(m.from_location_id) is None or locations.get(m.to_location_id) is None for m in moves):
        raise StockError(_l("位置不存在"))
    _lot_products(session, {m.lot_id for m in moves if m.lot_id is not None})
    owners = _lot_memory(session)  # taken now: the savepoint below would start a memory of its own
    for m in moves:
        if m.lot_id is not None and owners.get(m.lot_id) != m.product_id:
            product = session.get(Product, m.product_id)
            raise StockError(_l("批次不属于商品「%(product)s」", product=product.name if product else m.product_id))
    guarded = [not locations[m.from_location_id].kind.is_virtual and not m.allow_negative_source for m in moves]
    if not any(guarded):
        return _post_batch(session, moves, locations, owners, guarded)
    savepoint = session.begin_nested()
    try:
        results = _post_batch(session, moves, locations, owners, guarded)
    except BaseException:
        savepoint.rollback()
        raise
    if results is None:
        savepoint.rollback()
        return [move(session, **m.__dict__) for m in moves]
    savepoint.commit()
    return results


def _post_batch(session: Session, moves: list[MoveIn], locations: dict, owners: dict,
                guarded: list[bool]) -> Optional[list[MoveResult]]:
    """``post_moves``' few statements; None, before any move is written, when a guarded move
    would have been refused (the caller undoes the level changes)."""
    levels: dict = {}
    lot_deltas: dict = {}
    touched: list[tuple] = []      # per move: (source key, target key) of its product level
    lots_touched: list[tuple] = []  # … and of its lot level
    for m in moves:
        source, target = locations[m.from_location_id], locations[m.to_location_id]
        keys, lot_keys = [], []
        for loc, sign in ((source, -1), (target, 1)):
            if loc.kind.is_virtual:
                keys.append(None)
                lot_keys.append(None)
                continue
            key = (loc.id, m.product_id)
            levels[key] = levels.get(key, 0) + sign * m.qty_milli
            keys.append(key)
            if m.lot_id is None:
                lot_keys.append(None)
            else:
                lot_key = (loc.id, m.lot_id)
                lot_deltas[lot_key] = lot_deltas.get(lot_key, 0) + sign * m.qty_milli
                lot_keys.append(lot_key)
        touched.append(tuple(keys))
        lots_touched.append(tuple(lot_keys))
    # Rows in the lock order: product, then location (a lot's rows: its product, location, lot).
    final = _upsert_many(session, StockLevel, ("location_id", "product_id"), levels,
                         lambda k: (k[1], k[0])) if levels else {}
    lot_final = _upsert_many(session, LotLevel, ("location_id", "lot_id"), lot_deltas,
                             lambda k: (owners[k[1]], k[0], k[1])) if lot_deltas else {}
    after = _levels_after_each(moves, touched, final)
    if any(guarded):
        lots_after = _levels_after_each(moves, lots_touched, lot_final)
        for i, m in enumerate(moves):
            if guarded[i] and (after[i][0] < final[touched[i][0]][1]
                               or (lots_after[i][0] is not None and lots_after[i][0] < 0)):
                return None

    now = utcnow()
    t = StockMove.__table__
    rows = [{"product_id": m.product_id, "lot_id": m.lot_id, "from_location_id": m.from_location_id,
             "to_location_id": m.to_location_id, "qty_milli": m.qty_milli, "reason": MoveReason(m.reason),
             "ref_type": m.ref_type, "ref_id": m.ref_id,
             "note": m.note[:200] if m.note is not None and len(m.note) > 200 else m.note,
             "user_id": m.user_id, "moved_at": now} for m in moves]
    if all(a[0] is None or a[0] >= 0 for a in after):
        session.execute(insert(t), rows)  # one executemany; no ids needed
        return [MoveResult(None, a[0], a[1]) for a in after]
    ids = [session.execute(_MOVE_INSERT, row).scalar_one() for row in rows]
    for i, m in enumerate(moves):  # the alert names the first move that took a level below zero
        from_level = after[i][0]
        if from_level is not None and from_level < 0:
            raise_negative_stock_alert(session, locations[m.from_location_id], _product(session, m.product_id),
                                       from_level, move_id=ids[i])
    return [MoveResult(move_id, a[0], a[1]) for move_id, a in zip(ids, after)]
