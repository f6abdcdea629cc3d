"""A small hall for the stock tests: the demo's locations (BASE, HALL, HALL-STORE and the virtual
SUPPLIER, CUSTOMER, LOSS, COUNT-ADJ), a supplier, a manager, and products made on demand.

The stock tests need only the database, not the web app: the engine is made by pos.core.db.make_engine
on the fresh database of conftest's ``database_url`` (so SQLite gets BEGIN IMMEDIATE and its busy
timeout, as in production)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from inventory import ledger
from inventory.models import (
    VIRTUAL_LOCATION_KINDS as VIRTUAL_KINDS,
    Location,
    LocationKind,
    LotLevel,
    Product,
    StockLevel,
    StockMove,
    Supplier,
    Unit,
)
from pos.core.db import make_engine
from pos.models import Role, User

LOCATIONS = (
    ("HALL", "卖场", LocationKind.HALL_FLOOR),
    ("HALL-STORE", "仓库", LocationKind.HALL_STORE),
    ("BASE", "物流基地", LocationKind.BASE),
    ("SUPPLIER", "供应商（虚拟）", LocationKind.SUPPLIER),
    ("CUSTOMER", "顾客（虚拟）", LocationKind.CUSTOMER),
    ("LOSS", "损耗（虚拟）", LocationKind.LOSS),
    ("COUNT-ADJ", "盘点差异（虚拟）", LocationKind.COUNT_ADJUSTMENT),
)

_SKUS = itertools.count(1)


@dataclass
class World:
    Session: sessionmaker
    loc: dict[str, int]
    supplier_id: int
    manager_id: int
    products: dict[str, int] = field(default_factory=dict)

    def product(self, s: Session, name: str = "梵净山翠峰茶 250g", *, unit: Unit = Unit.PIECE,
                shelf_life_days: int | None = 540, price_fen: int = 16800, sold_by_weight: bool = False) -> Product:
        n = next(_SKUS)
        p = Product(sku=f"T{n:06d}", name=name, pinyin_initials="", unit=unit, sold_by_weight=sold_by_weight,
                    price_fen=price_fen, shelf_life_days=shelf_life_days, supplier_id=self.supplier_id)
        s.add(p)
        s.flush()
        return p


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def world(engine) -> World:
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    with maker() as s:
        locs = {}
        for code, name, kind in LOCATIONS:
            loc = Location(code=code, name=name, kind=kind)
            s.add(loc)
            s.flush()
            locs[code] = loc.id
        supplier = Supplier(name="松桃梵净山翠峰茶业有限公司", origin_county="松桃苗族自治县", origin_county_code="520628")
        manager = User(username="manager", display_name="吴梅", role=Role.MANAGER, password_hash="x")
        s.add_all([supplier, manager])
        s.commit()
        return World(maker, locs, supplier.id, manager.id)


@pytest.fixture
def s(world):
    session = world.Session()
    yield session
    session.rollback()
    session.close()


# --- what the ledger says, computed by the database -----------------------------------------------

def moves_by_location(s: Session, product_ids) -> dict[tuple[int, int], int]:
    """(location, product) → Σ incoming − Σ outgoing over stock_moves, by SQL aggregation."""
    m = StockMove.__table__
    incoming = select(m.c.to_location_id.label("loc"), m.c.product_id, m.c.qty_milli.label("d"))
    outgoing = select(m.c.from_location_id.label("loc"), m.c.product_id, (-m.c.qty_milli).label("d"))
    u = incoming.union_all(outgoing).subquery()
    rows = s.execute(
        select(u.c.loc, u.c.product_id, func.sum(u.c.d)).where(u.c.product_id.in_(list(product_ids)))
        .group_by(u.c.loc, u.c.product_id)
    )
    return {(loc, pid): int(total) for loc, pid, total in rows if total}


def lot_moves_by_location(s: Session, lot_ids) -> dict[tuple[int, int], int]:
    m = StockMove.__table__
    incoming = select(m.c.to_location_id.label("loc"), m.c.lot_id, m.c.qty_milli.label("d"))
    outgoing = select(m.c.from_location_id.label("loc"), m.c.lot_id, (-m.c.qty_milli).label("d"))
    u = incoming.union_all(outgoing).subquery()
    rows = s.execute(
        select(u.c.loc, u.c.lot_id, func.sum(u.c.d)).where(u.c.lot_id.in_(list(lot_ids)))
        .group_by(u.c.loc, u.c.lot_id)
    )
    return {(loc, lot): int(total) for loc, lot, total in rows if total}


def levels(s: Session, product_ids) -> dict[tuple[int, int], int]:
    """Every location's level of the products: the level rows of real locations, and the sums of
    moves of virtual ones (which keep no rows)."""
    rows = s.execute(select(StockLevel.location_id, StockLevel.product_id, StockLevel.qty_milli)
                     .where(StockLevel.product_id.in_(list(product_ids))))
    found = {(loc, pid): q for loc, pid, q in rows if q}
    virtual = set(s.scalars(select(Location.id).where(Location.kind.in_(VIRTUAL_KINDS))))
    found.update({key: q for key, q in moves_by_location(s, product_ids).items() if key[0] in virtual})
    return found


def lot_levels(s: Session, lot_ids) -> dict[tuple[int, int], int]:
    rows = s.execute(select(LotLevel.location_id, LotLevel.lot_id, LotLevel.qty_milli)
                     .where(LotLevel.lot_id.in_(list(lot_ids))))
    found = {(loc, lot): q for loc, lot, q in rows if q}
    virtual = set(s.scalars(select(Location.id).where(Location.kind.in_(VIRTUAL_KINDS))))
    found.update({key: q for key, q in lot_moves_by_location(s, lot_ids).items() if key[0] in virtual})
    return found


def level_of(s: Session, location_id: int, product_id: int) -> int:
    return ledger.level(s, location_id, product_id)


def move_count(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(StockMove))


# --- goods that expire on the shelf -----------------------------------------------------------------

def receive_fresh_then_age(receive, s: Session, lot: dict):
    """Post a receipt through ``receive(**lot)``. Expired goods cannot be received (issue 18,
    point 11), so a lot whose ``expires_on`` is already past is received while still good and then
    ages on the shelf: its expiry is set afterwards, as time would."""
    import datetime as dt

    from sqlalchemy import update

    from inventory.localtime import local_today
    from inventory.models import Lot

    expires = lot.get("expires_on")
    if expires is None or expires >= local_today():
        return receive(**lot)
    receipt = receive(**{**lot, "expires_on": local_today() + dt.timedelta(days=1)})
    s.execute(update(Lot).where(Lot.id.in_([ln.lot_id for ln in receipt.lines])).values(expires_on=expires))
    s.expire_all()
    return receipt
