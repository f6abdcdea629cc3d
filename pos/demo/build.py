"""Demo data for `songtao demo`: the 梵净山珍·松桃馆 hall in Humen, its logistics base, 126
consumption counters and about 80 products from Songtao and elsewhere in Guizhou. This module
builds the hall (locations, settings, tills, users), its stock and the whole demo in order; the
catalogue is ``pos.demo.catalogue``, the counters ``pos.demo.counters`` and their history
``pos.demo.counter_history``, the hall's own history ``pos.demo.history``.

Everything is drawn from ``random.Random(seed)``, so one seed always gives the same shop; dates
are relative to today's Asia/Shanghai date, so certificates and lots look current whenever the
demo is built. Catalogue rows are bulk-inserted; every unit of stock goes through
``inventory.ledger.move``, the only writer of stock.
"""
from __future__ import annotations

import datetime as dt
import os
import random
from dataclasses import dataclass
from typing import NamedTuple, Optional

from flask import current_app, has_app_context
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from inventory.catalogue import ensure_default_barcode_rule
from inventory.ledger import MoveIn, by_product, post_moves
from inventory.localtime import local_today, utcnow
from inventory.models import Location, LocationKind, Lot, MoveReason, Setting
from pos.accounts import users as accounts
from pos.demo import history as demo_history
from pos.demo import group_history as demo_group_history
from pos.core.db import make_engine, normalise_url
from pos.models import Till
from pos.demo.catalogue import (
    DemoProduct, P, build_categories, build_certificates, build_products, build_suppliers, ids_by,
)
from pos.demo.counter_history import build_counter_history
from pos.demo.counters import DemoSlot, build_kiosks, build_planograms


DEFAULT_SEED = 20261126

# --- the hall, its base and its virtual locations -------------------------------------------

LOCATIONS = (
    ("HALL", "梵净山珍·松桃馆 卖场", LocationKind.HALL_FLOOR),
    ("HALL-STORE", "梵净山珍·松桃馆 仓库", LocationKind.HALL_STORE),
    ("BASE", "黔货出山大湾区物流基地", LocationKind.BASE),
    ("DISPATCH", "团购待发区（物流基地）", LocationKind.DISPATCH),
    ("SUPPLIER", "供应商（虚拟）", LocationKind.SUPPLIER),
    ("CUSTOMER", "顾客（虚拟）", LocationKind.CUSTOMER),
    ("LOSS", "损耗（虚拟）", LocationKind.LOSS),
    ("COUNT-ADJ", "盘点差异（虚拟）", LocationKind.COUNT_ADJUSTMENT),
)

VANS = (  # the restockers' vans: stock on the road between the base and the counters
    ("VAN1", "补货车 1", LocationKind.VAN),
    ("VAN2", "补货车 2", LocationKind.VAN),
)

SETTINGS = (
    ("paired_county_name", "松桃苗族自治县"),
    ("paired_county_code", "520628"),
    ("rounding_to_jiao", "false"),
    ("discount_limit_percent", "10"),
    ("hall_address", "广东省东莞市虎门镇连升中路 88 号"),
)

TILLS = (  # code, name, paper columns
    ("H1", "1号收银台", 48),
    ("H2", "2号收银台", 48),
    ("H3", "3号收银台（服务台）", 32),
)

# role, username, password, PIN, display name
DEMO_USERS = (
    ("admin", "admin", "songtao-admin", None, "系统管理员"),
    ("manager", "manager", "songtao-manager", "2468", "吴梅"),
    ("cashier", "cashier", "songtao-cashier", "1357", "龙小燕"),
    ("restocker", "restocker", "songtao-restocker", None, "石建军"),
    ("auditor", "auditor", "songtao-auditor", None, "杨帆"),
)
del P
# The hall's own history (pos.demo.history): None = from the first of the previous month until
# yesterday, so that the reports have a whole demo month; a number = that many days (tests).
HALL_HISTORY_DAYS: Optional[int] = None


# --- has_data / wipe -------------------------------------------------------------------------

_DATA_TABLES = ("users", "products", "locations")


def _sqlite_path(url: str) -> Optional[str]:
    """The file of a SQLite URL, None for an in-memory database."""
    database = make_url(url).database
    return None if not database or database == ":memory:" else database


def has_data(url: str) -> bool:
    """Does the database hold data (a user, product or location)? A missing file or an empty or
    unmigrated database holds none."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is None or not os.path.exists(path):
            return False
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            for table in _DATA_TABLES:
                if table in present and conn.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first():
                    return True
        return False
    finally:
        engine.dispose()


def wipe(url: str) -> None:
    """Empty the database so that migrations can build it again."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is None:
            return
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


# --- build -----------------------------------------------------------------------------------


def build(session: Session, *, seed: int = DEFAULT_SEED, app=None, now: Optional[dt.datetime] = None) -> list[dict]:
    """Build the demo in a migrated, empty database; return the demo logins.

    With ``app`` (the Flask app on the same database; by default the current app, if any) the
    counters' history over the same period until ``now`` is added at the end by the fleet
    simulator (pos.demo.counter_history: in process, then the last day through the app's counter
    API): that commits the session (the parts of the counters' batches commit on their own).
    The hall's own history (pos.demo.history: shifts, sales, refunds, group purchases, from the
    first of the previous month until yesterday) comes first, with or without ``app``.
    ``now``: where the histories end (default: the clock)."""
    rng = random.Random(seed)
    today = local_today()
    logins, user_ids = build_users(session)
    locations = build_locations(session)
    build_settings(session)
    build_tills(session, locations["HALL"])
    suppliers = build_suppliers(session, rng)
    categories = build_categories(session)
    products = build_products(session, rng, suppliers, categories)
    ensure_default_barcode_rule(session)   # the weighed goods' scale labels: 2{PPPPP}{WWWWW}C
    build_certificates(session, rng, today, suppliers, products)
    kiosks = build_kiosks(session, rng)
    slots = build_planograms(session, rng, kiosks, products)
    build_stock(session, rng, today, products, slots, locations, user_ids)
    session.flush()
    now = now or utcnow()
    demo_history.build_hall_history(session, seed=seed, now=now, days=HALL_HISTORY_DAYS)
    demo_group_history.build_open_group_orders(session, seed=seed, now=now)
    if app is None and has_app_context():
        app = current_app._get_current_object()
    if app is not None:
        first, _ = demo_history.history_span(now, HALL_HISTORY_DAYS)
        build_counter_history(session, app, seed=seed, now=now, first=first)
    return logins


def build_users(session: Session) -> tuple[list[dict], dict[str, int]]:
    logins, ids = [], {}
    for role, username, password, pin, display_name in DEMO_USERS:
        user = accounts.create_user(session, username=username, role=role, password=password,
                                    display_name=display_name, pin=pin)
        ids[role] = user.id
        logins.append({"role": role, "username": username, "password": password, "pin": pin})
    return logins, ids


def build_locations(session: Session) -> dict[str, int]:
    session.execute(insert(Location), [
        {"code": code, "name": name, "kind": kind, "active": True} for code, name, kind in LOCATIONS + VANS
    ])
    return ids_by(session, Location.code)


def build_settings(session: Session) -> None:
    session.execute(insert(Setting), [{"key": k, "value": v} for k, v in SETTINGS])


def build_tills(session: Session, hall_id: int) -> None:
    session.execute(insert(Till), [
        {"code": code, "name": name, "location_id": hall_id, "printer_uri": "none",
         "paper_columns": columns, "active": True}
        for code, name, columns in TILLS
    ])


# --- stock -----------------------------------------------------------------------------------


class _Receipt(NamedTuple):
    product: DemoProduct
    lot: Optional[dict]  # the Lot row to create; None for goods without lots (handicrafts)
    qty_milli: int
    near_expiry: bool = False


@dataclass
class _BaseLot:
    lot_id: int
    expires_on: dt.date
    qty_milli: int
    near_expiry: bool


class _BaseLots:
    """What one product's lots still hold at the base while the moves are planned: first expiry
    first out, and a near-expiry lot goes only to the hall floor, never out to a counter."""

    def __init__(self) -> None:
        self.lots: list[_BaseLot] = []

    def take(self, qty_milli: int, *, near_ok: bool) -> list[tuple[int, int]]:
        candidates = [lot for lot in self.lots if near_ok or not lot.near_expiry]
        parts = []
        for lot in sorted(candidates, key=lambda lot: (not lot.near_expiry, lot.expires_on)):
            used = min(qty_milli, lot.qty_milli)
            if used:
                lot.qty_milli -= used
                qty_milli -= used
                parts.append((lot.lot_id, used))
        if qty_milli:
            raise AssertionError("demo stock plan is short")  # a bug in this module, not a user error
        return parts


def _destinations(rng: random.Random, p: DemoProduct) -> tuple[int, int, int]:
    """qty_milli for the hall floor, the hall storeroom and what stays at the base."""
    if p.row.weighed:  # to the gram
        floor, store, rest = rng.randint(8000, 30000), rng.randint(20000, 60000), rng.randint(20000, 150000)
    elif not p.lotted:  # handicrafts: a few on display, a few in reserve
        floor, store, rest = rng.randint(2, 6) * 1000, rng.randint(0, 10) * 1000, rng.randint(0, 8) * 1000
    else:
        floor, store, rest = rng.randint(6, 24) * 1000, rng.randint(6, 48) * 1000, rng.randint(12, 120) * 1000
    if p.lotted and rng.random() < 0.3:
        store = 0  # not every product is kept in the hall's storeroom
    return floor, store, rest


def _receipts(rng: random.Random, today: dt.date, p: DemoProduct, needed: int, near_expiry: bool) -> list[_Receipt]:
    """The deliveries that bring ``needed`` to the base: one per lot, in round numbers (pieces by
    the dozen, weighed goods by 5 kg), plus a small near-expiry lot for a few products."""
    if not p.lotted:
        return [_Receipt(p, None, needed)]
    step = 5000 if p.row.weighed else 12000
    total = -(-needed // step) * step
    cases = total // step
    cuts = sorted(rng.sample(range(1, cases), min(rng.randint(0, 2), cases - 1)))
    bounds = [0] + [c * step for c in cuts] + [total]
    shelf = p.row.shelf_life_days
    receipts = []
    for k, (lo, hi) in enumerate(zip(bounds, bounds[1:]), 1):
        produced = today - dt.timedelta(days=rng.randint(shelf // 20 + 1, shelf // 3 + 1))
        receipts.append(_Receipt(p, _lot_row(p, produced, k), hi - lo))
    if near_expiry:
        produced = today - dt.timedelta(days=shelf - rng.randint(3, 25))
        receipts.append(_Receipt(p, _lot_row(p, produced, len(receipts) + 1), step, near_expiry=True))
    return receipts


def _lot_row(p: DemoProduct, produced: dt.date, k: int) -> dict:
    return {"product_id": p.id, "lot_no": f"{produced:%Y%m%d}-{k:02d}", "produced_on": produced,
            "expires_on": produced + dt.timedelta(days=p.row.shelf_life_days)}


def build_stock(session: Session, rng: random.Random, today: dt.date, products: list[DemoProduct],
                slots: list[DemoSlot], locations: dict[str, int], user_ids: dict[str, int]) -> None:
    """Receive every product at the base in lots, transfer some to the hall, fill the counters:
    every unit through the ledger."""
    for_counters = {p.id: 0 for p in products}
    for slot in slots:
        for_counters[slot.product.id] += slot.on_hand * 1000
    destinations = {p.id: _destinations(rng, p) for p in products}
    near_expiry = set(rng.sample([p.id for p in products if p.lotted and p.row.shelf_life_days >= 120], 4))
    receipts = [r for p in products for r in _receipts(
        rng, today, p, sum(destinations[p.id]) + for_counters[p.id], p.id in near_expiry)]

    session.execute(insert(Lot), [r.lot for r in receipts if r.lot])
    lot_ids = {(pid, no): lid for lid, pid, no in session.execute(select(Lot.id, Lot.product_id, Lot.lot_no))}
    base, manager, restocker = locations["BASE"], user_ids["manager"], user_ids["restocker"]
    at_base = {p.id: _BaseLots() for p in products}
    delivered = []
    for r in receipts:
        lot_id = lot_ids[(r.product.id, r.lot["lot_no"])] if r.lot else None
        delivered.append(MoveIn(product_id=r.product.id, qty_milli=r.qty_milli, from_location_id=locations["SUPPLIER"],
                                to_location_id=base, reason=MoveReason.RECEIPT, lot_id=lot_id, user_id=manager))
        if lot_id is not None:
            at_base[r.product.id].lots.append(_BaseLot(lot_id, r.lot["expires_on"], r.qty_milli, r.near_expiry))
    post_moves(session, by_product(delivered))

    sent = []

    def send(p: DemoProduct, qty_milli: int, to: int, reason: MoveReason, user_id: int, near_ok: bool) -> None:
        if not qty_milli:
            return
        parts = at_base[p.id].take(qty_milli, near_ok=near_ok) if p.lotted else [(None, qty_milli)]
        sent.extend(MoveIn(product_id=p.id, qty_milli=part, from_location_id=base, to_location_id=to,
                           reason=reason, lot_id=lot_id, user_id=user_id) for lot_id, part in parts)

    for p in products:
        floor, store, _ = destinations[p.id]
        send(p, floor, locations["HALL"], MoveReason.TRANSFER, manager, near_ok=True)
        send(p, store, locations["HALL-STORE"], MoveReason.TRANSFER, manager, near_ok=False)
    for slot in slots:
        send(slot.product, slot.on_hand * 1000, slot.location_id, MoveReason.REFILL, restocker, near_ok=False)
    # One batch (a product's moves keep their order): the ledger checks each move against the
    # level it leaves.
    post_moves(session, by_product(sent))
