"""Refill routes for the consumption counters: choose counters, plan a route, load the van at the
logistics base, refill counter by counter, bring back what is left.

The life of a route::

    planned ──load_van──▶ loaded ──record_visit (per stop, once)──▶ … ──finish_route──▶ done
       └──cancel_route──▶ cancelled

**The pick list is frozen when the van is loaded, never recomputed at the counter.** Planning
stores each stop's load plan (per slot: par − what is on hand and stays, in whole pieces) and the
route's pick list (per product, the total over the route, base lots first expiry first out, never
a lot that expires on or before the visit day plus the pull horizon: it would be pulled on
arrival). ``load_van`` moves exactly the stored pick rows from the base to the van, lot by lot, and
from then on those rows and the stop plans are history: a planogram changed after loading, or
stock arriving at the base, changes nothing on the route. At the counter the restocker counts and
enters what was actually loaded (prefilled with the stop's plan) and what was pulled; the van's
lots go into the counter first expiry first out. What was not loaded goes back to the base at the
end of the route, lot by lot.

Every change of stock goes through ``inventory.ledger.move``; each operation is all or nothing
(a savepoint), so a refusal leaves nothing half-written, and is audited. Functions take a session
and plain values, never commit, and raise ``InventoryError``s whose text is for the person.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Iterable, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from inventory import fields
from inventory.audit import record
from inventory.base import Base
from inventory.errors import InventoryError, NotFound, ValidationError
from inventory.expiry import allocate_fresh, allocate_removal
from inventory.ledger import MAX_QTY_MILLI, InsufficientStock, available, level, move, virtual_location
from inventory.localtime import utcnow
from inventory.models import Location, LocationKind, Lot, LotLevel, MoveReason, Product, StockLevel, first_expiry_first
from inventory.transfers import logistics_base
from kiosks.fleet import expiring_at_kiosks, slot_levels
from kiosks.models import (
    Kiosk,
    KioskStatus,
    PullReason,
    RefillLine,
    RefillPick,
    RefillPull,
    RefillRoute,
    RefillStatus,
    RefillStop,
    StopStatus,
)

__all__ = [
    "refill_candidates", "plan_preview", "plan_route", "load_van", "record_visit", "finish_route",
    "cancel_route", "get_route", "list_routes", "pick_list", "stop_sheet", "van_contents", "vans",
    "over_capacity", "refused_slot", "DEFAULT_EXPIRING_DAYS", "OFFLINE_AFTER",
]

PIECE = 1000
DEFAULT_EXPIRING_DAYS = 3
MAX_EXPIRING_DAYS = 30
MAX_STOPS = 40
OFFLINE_AFTER = dt.timedelta(hours=1)
REF_ROUTE = "refill_route"
REF_STOP = "refill_stop"

STATUS_LABELS = {
    RefillStatus.PLANNED: _l("待装车"),
    RefillStatus.LOADED: _l("已装车"),
    RefillStatus.DONE: _l("已完成"),
    RefillStatus.CANCELLED: _l("已取消"),
}
PULL_REASON_LABELS = {PullReason.EXPIRED: _l("过期/临期"), PullReason.DAMAGED: _l("破损")}


def pieces(qty_milli: int) -> int:
    """Whole pieces in a quantity (what a slot holds); negative book levels count as none."""
    return max(0, qty_milli) // PIECE


# --- choosing counters ----------------------------------------------------------------------------

def refill_candidates(s: Session, *, today: dt.date, now: dt.datetime, town: Optional[str] = None,
                      empty_slots: bool = False, fill_below_percent: Optional[int] = None,
                      expiring_within_days: Optional[int] = None, offline: bool = False) -> list[dict]:
    """Active counters that need a visit, most urgent first. With no criterion every active
    counter (of the town) is listed; with criteria a counter is listed when it meets any of them:
    an empty slot, fill (Σ on hand / Σ par) below the percentage, a lot expired or expiring within
    the days, no heartbeat for over an hour."""
    if fill_below_percent is not None:
        fill_below_percent = fields.integer(fill_below_percent, field="fill_below", label=_l("填充率"), maximum=100)
    days = DEFAULT_EXPIRING_DAYS if expiring_within_days is None else expiring_within_days
    days = fields.integer(days, field="expiring_days", label=_l("临期天数"), maximum=MAX_EXPIRING_DAYS)
    stmt = select(Kiosk).where(Kiosk.status == KioskStatus.ACTIVE).order_by(Kiosk.code)
    if town:
        stmt = stmt.where(Kiosk.town == town)
    kiosks = s.scalars(stmt).all()
    if not kiosks:
        return []
    ids = [k.id for k in kiosks]
    per_kiosk: dict[int, dict] = {k.id: {"slots": 0, "empty": 0, "par": 0, "on_hand": 0, "need": 0} for k in kiosks}
    for row in slot_levels(s, ids):
        agg = per_kiosk[row.kiosk_id]
        have = min(pieces(row.on_hand_milli), row.par)
        agg["slots"] += 1
        agg["par"] += row.par
        agg["on_hand"] += have
        agg["need"] += row.par - have
        if have == 0:
            agg["empty"] += 1
    expiring: dict[int, int] = defaultdict(int)
    for lot in expiring_at_kiosks(s, today=today, within_days=days, kiosk_ids=ids):
        expiring[lot.kiosk_id] += 1
    wanted = empty_slots or fill_below_percent is not None or bool(expiring_within_days) or offline
    rows = []
    for k in kiosks:
        agg = per_kiosk[k.id]
        fill = 100 if not agg["par"] else agg["on_hand"] * 100 // agg["par"]
        is_offline = k.last_heartbeat_at is None or now - k.last_heartbeat_at > OFFLINE_AFTER
        reasons = []
        if agg["empty"]:
            reasons.append("empty")
        if fill_below_percent is not None and fill < fill_below_percent:
            reasons.append("fill")
        if expiring[k.id]:
            reasons.append("expiring")
        if is_offline:
            reasons.append("offline")
        if wanted and not (
            (empty_slots and agg["empty"])
            or (fill_below_percent is not None and fill < fill_below_percent)
            or (expiring_within_days and expiring[k.id])
            or (offline and is_offline)
        ):
            continue
        urgency = agg["empty"] * 10 + (100 - fill) + expiring[k.id] * 15 + (20 if is_offline else 0)
        rows.append({
            "kiosk_id": k.id, "code": k.code, "site_name": k.site_name, "town": k.town, "address": k.address,
            "slots": agg["slots"], "empty_slots": agg["empty"], "fill_percent": fill,
            "need_pieces": agg["need"], "expiring_lots": expiring[k.id], "offline": is_offline,
            "last_heartbeat_at": k.last_heartbeat_at, "reasons": reasons, "urgency": urgency,
        })
    rows.sort(key=lambda r: (-r["urgency"], r["code"]))
    return rows


def towns(s: Session) -> list[str]:
    return list(s.scalars(select(Kiosk.town).where(Kiosk.status == KioskStatus.ACTIVE).distinct().order_by(Kiosk.town)))


def vans(s: Session) -> list[Location]:
    return list(s.scalars(select(Location).where(Location.kind == LocationKind.VAN, Location.active.is_(True))
                          .order_by(Location.code)))


# --- planning -------------------------------------------------------------------------------------

class _BasePool:
    """What the base can give of one product: lots first expiry first out (lots expiring on or
    before ``last_bad_day`` are left alone: they would be pulled at the counter), then goods
    without a lot."""

    def __init__(self, s: Session, base_id: int, product_id: int, last_bad_day: dt.date) -> None:
        rows = s.execute(
            select(LotLevel.lot_id, LotLevel.qty_milli, Lot.expires_on)
            .join(Lot, Lot.id == LotLevel.lot_id)
            .where(LotLevel.location_id == base_id, Lot.product_id == product_id, LotLevel.qty_milli > 0)
            .order_by(*first_expiry_first(Lot.id))
        ).all()
        lotted = sum(q for _, q, _ in rows)
        self.lots = [[lot_id, qty] for lot_id, qty, expires in rows if expires is None or expires > last_bad_day]
        self.unlotted = max(0, level(s, base_id, product_id) - lotted)
        # Goods reserved for confirmed group orders stay at the base: they are not in the pool.
        # They come off the end (goods without a lot, then the latest expiry), so that counters
        # still get the earliest-expiring lots.
        held = level(s, base_id, product_id) - available(s, base_id, product_id)
        part = min(held, self.unlotted)
        self.unlotted -= part
        held -= part
        for lot in reversed(self.lots):
            part = min(held, lot[1])
            lot[1] -= part
            held -= part

    def available(self) -> int:
        return sum(q for _, q in self.lots) + self.unlotted

    def take(self, qty_milli: int) -> list[tuple[Optional[int], int]]:
        parts = []
        for lot in self.lots:
            if qty_milli <= 0:
                break
            part = min(lot[1], qty_milli)
            if part > 0:
                lot[1] -= part
                qty_milli -= part
                parts.append((lot[0], part))
        if qty_milli > 0 and self.unlotted > 0:
            part = min(self.unlotted, qty_milli)
            self.unlotted -= part
            parts.append((None, part))
        return parts


def _kiosks_in_order(s: Session, kiosk_codes: Any) -> list[Kiosk]:
    if not isinstance(kiosk_codes, (list, tuple)) or not kiosk_codes:
        raise ValidationError(_l("请至少选择一个专柜"), "kiosks")
    if len(kiosk_codes) > MAX_STOPS:
        raise ValidationError(_l("一条路线最多 %(n)s 个专柜", n=MAX_STOPS), "kiosks")
    codes = [fields.clean_code(c) if isinstance(c, str) else c for c in kiosk_codes]
    if not all(isinstance(c, str) and c for c in codes):
        raise ValidationError(_l("专柜编号不正确"), "kiosks")
    if len(set(codes)) != len(codes):
        raise ValidationError(_l("同一个专柜在路线中只能出现一次"), "kiosks")
    found = {k.code: k for k in s.scalars(select(Kiosk).where(Kiosk.code.in_(codes)))}
    for code in codes:
        kiosk = found.get(code)
        if kiosk is None:
            raise ValidationError(_l("专柜 %(code)s 不存在", code=code[:12]), "kiosks")
        if kiosk.status != KioskStatus.ACTIVE:
            raise ValidationError(_l("专柜 %(code)s 未在运营，不能补货", code=code), "kiosks")
    return [found[c] for c in codes]


def plan_preview(s: Session, *, kiosk_codes: Sequence[str], today: dt.date,
                 expiring_within_days: int = DEFAULT_EXPIRING_DAYS) -> dict:
    """The route as it would be planned, as plain values, writing nothing: per stop the load of
    each slot and the lots to pull, and the pick list at the base."""
    today = fields.date(today, field="planned_for", label=_l("补货日期"))
    days = fields.integer(expiring_within_days, field="expiring_days", label=_l("临期天数"), maximum=MAX_EXPIRING_DAYS)
    kiosks = _kiosks_in_order(s, list(kiosk_codes) if isinstance(kiosk_codes, (list, tuple)) else kiosk_codes)
    base = logistics_base(s)
    last_bad_day = today + dt.timedelta(days=days)
    ids = [k.id for k in kiosks]
    slots_by_kiosk: dict[int, list] = defaultdict(list)
    for row in slot_levels(s, ids):
        slots_by_kiosk[row.kiosk_id].append(row)
    pulls_by_kiosk: dict[int, list] = defaultdict(list)
    for lot in expiring_at_kiosks(s, today=today, within_days=days, kiosk_ids=ids):
        pulls_by_kiosk[lot.kiosk_id].append(lot)
    product_ids = {r.product_id for rows in slots_by_kiosk.values() for r in rows}
    product_ids |= {p.product_id for rows in pulls_by_kiosk.values() for p in rows}
    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_(product_ids)))} if product_ids else {}
    lots = {lot.id: lot for lot in s.scalars(select(Lot).where(
        Lot.id.in_({p.lot_id for rows in pulls_by_kiosk.values() for p in rows})))} if pulls_by_kiosk else {}

    pools: dict[int, _BasePool] = {}
    picks: dict[tuple[int, Optional[int]], int] = {}
    stops = []
    for seq, kiosk in enumerate(kiosks, start=1):
        pulled: dict[int, int] = defaultdict(int)
        pulls = []
        for lot in pulls_by_kiosk[kiosk.id]:
            pulled[lot.product_id] += lot.qty_milli
            pulls.append({"product_id": lot.product_id, "product": products[lot.product_id], "lot_id": lot.lot_id,
                          "lot_no": lots[lot.lot_id].lot_no, "expires_on": lot.expires_on,
                          "expired": lot.expires_on < today, "qty_milli": lot.qty_milli})
        # What stays in the counter after the pulls, handed out to the product's slots in order.
        staying = {pid: pieces(on - pulled[pid]) for pid, on in
                   {r.product_id: r.on_hand_milli for r in slots_by_kiosk[kiosk.id]}.items()}
        lines = []
        for row in slots_by_kiosk[kiosk.id]:
            have = min(row.par, staying[row.product_id])
            staying[row.product_id] -= have
            need = (row.par - have) * PIECE
            pool = pools.get(row.product_id)
            if pool is None:
                pool = pools[row.product_id] = _BasePool(s, base.id, row.product_id, last_bad_day)
            load = min(need, pool.available() // PIECE * PIECE)
            for lot_id, part in pool.take(load):
                picks[(row.product_id, lot_id)] = picks.get((row.product_id, lot_id), 0) + part
            lines.append({"slot": row.slot, "product_id": row.product_id, "product": products[row.product_id],
                          "par": row.par, "on_hand_milli": row.on_hand_milli, "need_milli": need,
                          "load_milli": load, "short_milli": need - load})
        stops.append({"seq": seq, "kiosk": kiosk, "code": kiosk.code, "lines": lines, "pulls": pulls,
                      "load_pieces": sum(ln["load_milli"] for ln in lines) // PIECE,
                      "pull_pieces": sum(p["qty_milli"] for p in pulls) // PIECE})
    pick_rows = [{"product_id": pid, "lot_id": lot_id, "qty_milli": qty} for (pid, lot_id), qty in picks.items()]
    shortages: dict[int, int] = defaultdict(int)
    for stop in stops:
        for ln in stop["lines"]:
            if ln["short_milli"]:
                shortages[ln["product_id"]] += ln["short_milli"]
    return {
        "planned_for": today, "expiring_within_days": days, "base": base, "stops": stops, "picks": pick_rows,
        "shortages": [{"product_id": pid, "product": products[pid], "qty_milli": q} for pid, q in shortages.items()],
        "load_pieces": sum(st["load_pieces"] for st in stops), "pull_pieces": sum(st["pull_pieces"] for st in stops),
    }


def _van(s: Session, van_location_id: Any) -> Location:
    van = s.get(Location, van_location_id) if isinstance(van_location_id, int) and not isinstance(van_location_id, bool) else None
    if van is None or van.kind != LocationKind.VAN:
        raise ValidationError(_l("请选择补货车"), "van_location_id")
    if not van.active:
        raise ValidationError(_l("补货车「%(name)s」已停用", name=van.name), "van_location_id")
    return van


def plan_route(s: Session, *, kiosk_codes: Sequence[str], restocker_id: Optional[int], van_location_id: int,
               today: dt.date, expiring_within_days: int = DEFAULT_EXPIRING_DAYS,
               actor_id: Optional[int] = None) -> RefillRoute:
    """Store a planned route: the stops in the order given, each slot's load plan, the lots to
    pull and the pick list. Nothing moves until the van is loaded."""
    van = _van(s, van_location_id)
    if restocker_id is not None:
        users = Base.metadata.tables["users"]  # pos's table, read without importing pos
        if isinstance(restocker_id, bool) or not isinstance(restocker_id, int) or \
                s.scalar(select(users.c.id).where(users.c.id == restocker_id)) is None:
            raise ValidationError(_l("补货员不存在"), "restocker_id")
    plan = plan_preview(s, kiosk_codes=kiosk_codes, today=today, expiring_within_days=expiring_within_days)
    route = RefillRoute(
        planned_for=plan["planned_for"], status=RefillStatus.PLANNED, restocker_id=restocker_id,
        base_location_id=plan["base"].id, van_location_id=van.id, expiring_within_days=plan["expiring_within_days"],
        created_at=utcnow(), created_by_id=actor_id,
        stops=[
            RefillStop(
                seq=st["seq"], kiosk_id=st["kiosk"].id, status=StopStatus.PENDING,
                lines=[RefillLine(slot=ln["slot"], product_id=ln["product_id"], par=ln["par"],
                                  on_hand_milli=ln["on_hand_milli"], need_milli=ln["need_milli"],
                                  planned_load_milli=ln["load_milli"]) for ln in st["lines"]],
                pulls=[RefillPull(product_id=p["product_id"], lot_id=p["lot_id"], planned_qty_milli=p["qty_milli"])
                       for p in st["pulls"]],
            )
            for st in plan["stops"]
        ],
        picks=[RefillPick(**p) for p in plan["picks"]],
    )
    s.add(route)
    s.flush()
    record(s, user_id=actor_id, action="refill.plan", entity="refill_route", entity_id=route.id,
           after={"planned_for": route.planned_for.isoformat(), "van": van.code, "restocker_id": restocker_id,
                  "kiosks": [st["code"] for st in plan["stops"]], "load_pieces": plan["load_pieces"],
                  "pull_pieces": plan["pull_pieces"]})
    return route


# --- reading a route ------------------------------------------------------------------------------

def get_route(s: Session, route_id: Any, *, fresh: bool = False) -> RefillRoute:
    if isinstance(route_id, bool) or not isinstance(route_id, int) or not 0 < route_id < 2**31:
        raise NotFound(_l("补货路线不存在"))
    route = s.scalar(
        select(RefillRoute).where(RefillRoute.id == route_id)
        .options(selectinload(RefillRoute.stops).selectinload(RefillStop.kiosk),
                 selectinload(RefillRoute.stops).selectinload(RefillStop.lines),
                 selectinload(RefillRoute.stops).selectinload(RefillStop.pulls),
                 selectinload(RefillRoute.van_location), selectinload(RefillRoute.base_location))
        .execution_options(populate_existing=fresh)
    )
    if route is None:
        raise NotFound(_l("补货路线不存在"))
    return route


def list_routes(s: Session, *, today: dt.date, restocker_id: Optional[int] = None) -> list[RefillRoute]:
    """Routes still open (planned or loaded) and every route of today, today's and the
    restocker's own first."""
    stmt = (
        select(RefillRoute)
        .where(or_(RefillRoute.status.in_([RefillStatus.PLANNED, RefillStatus.LOADED]),
                   RefillRoute.planned_for == today))
        .options(selectinload(RefillRoute.stops).selectinload(RefillStop.kiosk),
                 selectinload(RefillRoute.van_location))
        .order_by(RefillRoute.planned_for.desc(), RefillRoute.id.desc())
        .limit(200)
    )
    routes = list(s.scalars(stmt))
    routes.sort(key=lambda r: (r.planned_for != today, restocker_id is not None and r.restocker_id != restocker_id))
    return routes


def pick_list(s: Session, route_id: int) -> list[dict]:
    """The stored pick rows, by product and expiry: what was (or is to be) put in the van."""
    route = get_route(s, route_id)
    rows = s.execute(
        select(RefillPick, Product, Lot)
        .join(Product, Product.id == RefillPick.product_id)
        .outerjoin(Lot, Lot.id == RefillPick.lot_id)
        .where(RefillPick.route_id == route.id)
        .order_by(Product.sku, *first_expiry_first(RefillPick.id))
    ).all()
    return [{"product": p, "product_id": p.id, "sku": p.sku, "name": p.name, "lot_id": lot.id if lot else None,
             "lot_no": lot.lot_no if lot else None, "expires_on": lot.expires_on if lot else None,
             "qty_milli": pick.qty_milli, "pieces": pick.qty_milli // PIECE} for pick, p, lot in rows]


def route_shortages(s: Session, route: RefillRoute) -> list[dict]:
    """Products the base could not cover when the route was planned (need − planned load)."""
    rows = s.execute(
        select(Product, func.sum(RefillLine.need_milli - RefillLine.planned_load_milli))
        .join(RefillLine, RefillLine.product_id == Product.id)
        .join(RefillStop, RefillStop.id == RefillLine.stop_id)
        .where(RefillStop.route_id == route.id, RefillLine.need_milli > RefillLine.planned_load_milli)
        .group_by(Product.id).order_by(Product.sku)
    ).all()
    return [{"product": p, "name": p.name, "sku": p.sku, "pieces": int(q) // PIECE} for p, q in rows]


def van_contents(s: Session, van_location_id: int) -> list[dict]:
    rows = s.execute(
        select(Product, StockLevel.qty_milli).join(StockLevel, StockLevel.product_id == Product.id)
        .where(StockLevel.location_id == van_location_id, StockLevel.qty_milli > 0).order_by(Product.sku)
    ).all()
    return [{"product": p, "product_id": p.id, "name": p.name, "sku": p.sku, "qty_milli": q, "pieces": q // PIECE}
            for p, q in rows]


def _stop(route: RefillRoute, *, stop_id: Optional[int] = None, kiosk_code: Optional[str] = None) -> RefillStop:
    for stop in route.stops:
        if (stop_id is not None and stop.id == stop_id) or (kiosk_code is not None and stop.kiosk.code == kiosk_code):
            return stop
    raise NotFound(_l("路线中没有这个专柜"))


def stop_sheet(s: Session, route_id: int, stop_id: int) -> dict:
    """What the stop page shows: per slot the product, par, recorded on hand (now, or as recorded
    at the visit), the load plan, what the van holds, and the product's lots at the counter with
    the planned pulls."""
    route = get_route(s, route_id)
    stop = _stop(route, stop_id=stop_id)
    kiosk = stop.kiosk
    product_ids = sorted({ln.product_id for ln in stop.lines} | {p.product_id for p in stop.pulls})
    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_(product_ids)))} if product_ids else {}
    book = dict(s.execute(select(StockLevel.product_id, StockLevel.qty_milli).where(
        StockLevel.location_id == kiosk.location_id, StockLevel.product_id.in_(product_ids))).all()) if product_ids else {}
    in_van = dict(s.execute(select(StockLevel.product_id, StockLevel.qty_milli).where(
        StockLevel.location_id == route.van_location_id, StockLevel.product_id.in_(product_ids))).all()) if product_ids else {}
    lot_rows = s.execute(
        select(Lot, LotLevel.qty_milli).join(LotLevel, LotLevel.lot_id == Lot.id)
        .where(LotLevel.location_id == kiosk.location_id, LotLevel.qty_milli > 0, Lot.product_id.in_(product_ids))
        .order_by(*first_expiry_first(Lot.id))
    ).all() if product_ids else []
    horizon = route.planned_for + dt.timedelta(days=route.expiring_within_days)
    planned = {(p.product_id, p.lot_id): p for p in stop.pulls}
    lots_by_product: dict[int, list[dict]] = defaultdict(list)
    lotted: dict[int, int] = defaultdict(int)
    seen = set()
    for lot, qty in lot_rows:
        lotted[lot.product_id] += qty
        pull = planned.get((lot.product_id, lot.id))
        seen.add((lot.product_id, lot.id))
        due = lot.expires_on is not None and lot.expires_on <= horizon
        lots_by_product[lot.product_id].append({
            "lot_id": lot.id, "lot_no": lot.lot_no, "expires_on": lot.expires_on, "qty_milli": qty,
            "pieces": qty // PIECE, "expired": lot.expires_on is not None and lot.expires_on < route.planned_for,
            "due": due, "planned_pieces": (pull.planned_qty_milli // PIECE) if pull else 0,
            "pulled_pieces": (pull.pulled_qty_milli or 0) // PIECE if pull and pull.pulled_qty_milli is not None else None,
            "reason": pull.reason.value if pull and pull.reason else ("expired" if due else "damaged"),
            "suggest_pieces": qty // PIECE if due else 0,
        })
    for (pid, lot_id), pull in planned.items():  # pulled at the visit, or gone from the counter since planning
        if (pid, lot_id) in seen:
            continue
        lots_by_product[pid].append({
            "lot_id": lot_id, "lot_no": pull.lot.lot_no if pull.lot else None,
            "expires_on": pull.lot.expires_on if pull.lot else None, "qty_milli": 0, "pieces": 0,
            "expired": bool(pull.lot and pull.lot.expires_on and pull.lot.expires_on < route.planned_for),
            "due": True, "planned_pieces": pull.planned_qty_milli // PIECE,
            "pulled_pieces": (pull.pulled_qty_milli // PIECE) if pull.pulled_qty_milli is not None else None,
            "reason": pull.reason.value if pull.reason else "expired", "suggest_pieces": 0,
        })
    slots = []
    first_slot: set[int] = set()
    for ln in stop.lines:
        product = products[ln.product_id]
        owns_lots = ln.product_id not in first_slot
        first_slot.add(ln.product_id)
        lots = lots_by_product.get(ln.product_id, []) if owns_lots else []
        unlotted = book.get(ln.product_id, 0) - lotted[ln.product_id]
        if owns_lots and unlotted >= PIECE:
            lots = [*lots, {"lot_id": None, "lot_no": None, "expires_on": None, "qty_milli": unlotted,
                            "pieces": unlotted // PIECE, "expired": False, "due": False, "planned_pieces": 0,
                            "pulled_pieces": None, "reason": "damaged", "suggest_pieces": 0}]
        recorded = ln.recorded_milli if stop.status == StopStatus.DONE else book.get(ln.product_id, 0)
        slots.append({
            "line": ln, "slot": ln.slot, "product": product, "name": product.name, "sku": product.sku,
            "par": ln.par, "recorded_pieces": pieces(recorded or 0), "recorded_milli": recorded or 0,
            "planned_pieces": ln.planned_load_milli // PIECE, "need_pieces": ln.need_milli // PIECE,
            "van_pieces": pieces(in_van.get(ln.product_id, 0)),
            "counted_pieces": None if ln.counted_milli is None else ln.counted_milli // PIECE,
            "loaded_pieces": None if ln.loaded_milli is None else ln.loaded_milli // PIECE,
            "lots": lots, "weighed": product.weighed,
        })
    return {"route": route, "stop": stop, "kiosk": kiosk, "slots": slots, "done": stop.status == StopStatus.DONE}


# --- loading the van ------------------------------------------------------------------------------

def _lock_route(s: Session, route_id: Any, expected: RefillStatus, to: RefillStatus, **values: Any) -> RefillRoute:
    """Move a route from one status to the next in one conditional statement (two taps act once);
    refused with a message that says where the route is."""
    route = get_route(s, route_id)
    row = s.execute(
        update(RefillRoute).where(RefillRoute.id == route.id, RefillRoute.status == expected)
        .values(status=to, **values).returning(RefillRoute.id)
    ).first()
    if row is None:
        s.expire(route)
        current = s.scalar(select(RefillRoute.status).where(RefillRoute.id == route.id))
        messages = {
            RefillStatus.PLANNED: _l("路线 #%(id)s 还没有装车", id=route.id),
            RefillStatus.LOADED: _l("路线 #%(id)s 已装车，拣货单已冻结", id=route.id),
            RefillStatus.DONE: _l("路线 #%(id)s 已完成", id=route.id),
            RefillStatus.CANCELLED: _l("路线 #%(id)s 已取消", id=route.id),
        }
        raise ValidationError(messages[RefillStatus(current)], "status")
    return get_route(s, route.id, fresh=True)


def load_van(s: Session, route_id: int, *, actor_id: Optional[int]) -> RefillRoute:
    """Move the stored pick list from the base to the van, lot by lot, and freeze it. Refused
    (nothing moves) when the base no longer holds a pick line, naming the product and lot, or when
    the van is still out on another route."""
    route = get_route(s, route_id)
    busy = s.scalar(select(RefillRoute.id).where(
        RefillRoute.van_location_id == route.van_location_id, RefillRoute.status == RefillStatus.LOADED,
        RefillRoute.id != route.id))
    if busy is not None and route.status == RefillStatus.PLANNED:
        raise ValidationError(_l("补货车「%(van)s」还在执行路线 #%(other)s，请先结束那条路线",
                                 van=route.van_location.name, other=busy), "van_location_id")
    try:
        with s.begin_nested():
            route = _lock_route(s, route_id, RefillStatus.PLANNED, RefillStatus.LOADED,
                                loaded_at=utcnow(), loaded_by_id=actor_id)
            picks = pick_list(s, route.id)
            for pick in sorted(picks, key=lambda p: (p["product_id"], p["lot_id"] or 0)):
                try:
                    move(s, product_id=pick["product_id"], qty_milli=pick["qty_milli"],
                         from_location_id=route.base_location_id, to_location_id=route.van_location_id,
                         reason=MoveReason.REFILL, lot_id=pick["lot_id"], ref_type=REF_ROUTE, ref_id=route.id,
                         user_id=actor_id)
                except InsufficientStock:
                    raise ValidationError(_l(
                        "物流基地库存不足：「%(product)s」批次 %(lot)s 需要 %(n)s 件。请取消此路线后重新规划。",
                        product=pick["name"], lot=pick["lot_no"] or _l("无批次"), n=pick["pieces"]), "picks") from None
            record(s, user_id=actor_id, action="refill.load", entity="refill_route", entity_id=route.id,
                   after={"van_location_id": route.van_location_id,
                          "picks": [{"product_id": p["product_id"], "lot_id": p["lot_id"], "qty_milli": p["qty_milli"]}
                                    for p in picks]})
    except InventoryError:
        s.expire_all()
        raise
    return route


def cancel_route(s: Session, route_id: int, *, actor_id: Optional[int]) -> RefillRoute:
    """A planned route that will not go out (nothing has moved yet)."""
    route = _lock_route(s, route_id, RefillStatus.PLANNED, RefillStatus.CANCELLED,
                        finished_at=utcnow(), finished_by_id=actor_id)
    record(s, user_id=actor_id, action="refill.cancel", entity="refill_route", entity_id=route.id)
    return route


# --- at the counter -------------------------------------------------------------------------------

def _pieces_qty(value: Any, product: Product, *, field: str, label: Any, allow_zero: bool = True) -> int:
    qty = fields.integer(value, field=field, label=label, minimum=0 if allow_zero else 1, maximum=MAX_QTY_MILLI)
    if not product.weighed and qty % PIECE:
        raise ValidationError(_l("%(label)s：「%(product)s」按件计，数量必须是整数件", label=label, product=product.name), field)
    return qty


def _visit_result(stop: RefillStop, *, already: bool, moves: int = 0, over: Sequence[dict] = ()) -> dict:
    return {"stop_id": stop.id, "kiosk": stop.kiosk.code, "already": already, "moves": moves,
            "visited_at": stop.visited_at, "over_capacity": list(over),
            "message": _l("专柜 %(code)s 已确认过，没有重复记账", code=stop.kiosk.code) if already
            else _l("专柜 %(code)s 补货已确认", code=stop.kiosk.code)}


def _parse_visit(s: Session, stop: RefillStop, slots: Any) -> tuple[dict, dict, list]:
    """Validated input: per product counted and loaded (summed over its slots), per slot the
    entries, and the pulls."""
    if not isinstance(slots, (list, tuple)):
        raise ValidationError(_l("补货内容格式不正确"), "slots")
    lines = {ln.slot: ln for ln in stop.lines}
    products = {p.id: p for p in s.scalars(select(Product).where(
        Product.id.in_({ln.product_id for ln in stop.lines})))} if lines else {}
    entries: dict[str, dict] = {}
    pulls = []
    for i, raw in enumerate(slots):
        if not isinstance(raw, dict):
            raise ValidationError(_l("第 %(n)s 个货道格式不正确", n=i + 1), "slots")
        slot = raw.get("slot")
        line = lines.get(slot) if isinstance(slot, str) else None
        if line is None:
            raise ValidationError(_l("货道 %(slot)s 不在这个专柜的补货计划里", slot=str(slot)[:8]), "slots")
        if slot in entries:
            raise ValidationError(_l("货道 %(slot)s 填了两次", slot=slot), f"{slot}-counted")
        product = products[line.product_id]
        label = _l("货道 %(slot)s 清点数量", slot=slot)
        counted = _pieces_qty(raw.get("counted_milli"), product, field=f"{slot}-counted", label=label)
        loaded = _pieces_qty(raw.get("loaded_milli", 0), product, field=f"{slot}-loaded",
                             label=_l("货道 %(slot)s 补入数量", slot=slot))
        entries[slot] = {"line": line, "counted": counted, "loaded": loaded}
        raw_pulls = raw.get("pulled") or []
        if not isinstance(raw_pulls, (list, tuple)):
            raise ValidationError(_l("货道 %(slot)s 的下架内容格式不正确", slot=slot), f"{slot}-pulled")
        for j, p in enumerate(raw_pulls):
            if not isinstance(p, dict):
                raise ValidationError(_l("货道 %(slot)s 的下架内容格式不正确", slot=slot), f"{slot}-pulled")
            qty = _pieces_qty(p.get("qty_milli"), product, field=f"{slot}-pulled-{j}",
                              label=_l("货道 %(slot)s 下架数量", slot=slot))
            if qty == 0:
                continue
            try:
                reason = PullReason(p.get("reason"))
            except ValueError:
                raise ValidationError(_l("货道 %(slot)s：请选择下架原因（过期或破损）", slot=slot), f"{slot}-pulled-{j}") from None
            lot_id = p.get("lot_id")
            if lot_id is not None:
                lot = s.get(Lot, lot_id) if isinstance(lot_id, int) and not isinstance(lot_id, bool) else None
                if lot is None or lot.product_id != product.id:
                    raise ValidationError(_l("货道 %(slot)s：批次不属于「%(product)s」", slot=slot, product=product.name),
                                          f"{slot}-pulled-{j}")
            pulls.append({"slot": slot, "product": product, "lot_id": lot_id, "qty": qty, "reason": reason})
    missing = [slot for slot in lines if slot not in entries]
    if missing:
        raise ValidationError(_l("请填写货道 %(slots)s 的清点数量", slots="、".join(missing)), f"{missing[0]}-counted")
    per_product: dict[int, dict] = {}
    for e in entries.values():
        agg = per_product.setdefault(e["line"].product_id, {"product": products[e["line"].product_id],
                                                            "counted": 0, "loaded": 0, "pulled": 0})
        agg["counted"] += e["counted"]
        agg["loaded"] += e["loaded"]
    for p in pulls:
        per_product[p["product"].id]["pulled"] += p["qty"]
    for pid, agg in per_product.items():
        if agg["pulled"] > agg["counted"]:
            slots_of = _slots_of(entries, pid)
            raise ValidationError(_l("货道 %(slots)s：「%(product)s」下架 %(pulled)s 件，多于清点到的 %(counted)s 件",
                                     slots="、".join(slots_of), product=agg["product"].name,
                                     pulled=agg["pulled"] // PIECE, counted=agg["counted"] // PIECE),
                                  f"{slots_of[0]}-pulled")
    pulled_in: dict[str, int] = defaultdict(int)
    for p in pulls:
        pulled_in[p["slot"]] += p["qty"]
    for slot, e in entries.items():
        e["after"] = e["counted"] - pulled_in[slot] + e["loaded"]
    return per_product, entries, pulls


def _slots_of(entries: dict, product_id: int) -> list[str]:
    """The slots of a visit that hold a product, in the stop's order."""
    return [slot for slot, e in entries.items() if e["line"].product_id == product_id]


def over_capacity(entries: Iterable[dict]) -> list[dict]:
    """Slots that would hold more than their capacity (par) after the visit: counted − pulled +
    loaded > par. The tablet warns before saving; the server accepts the load (the restocker has
    the goods in hand and confirmed) and says so again in its answer and the audit."""
    return [{"slot": e["line"].slot, "after_pieces": e["after"] // PIECE, "par": e["line"].par}
            for e in entries if e["line"].par is not None and e["after"] > e["line"].par * PIECE]


def refused_slot(error: InventoryError, slots: Iterable[str]) -> Optional[str]:
    """The slot a refusal of ``record_visit`` is about (its field is "<slot>-…"), or None."""
    field = getattr(error, "field", None) or ""
    for slot in slots:
        if field.startswith(f"{slot}-"):
            return slot
    return None


def record_visit(s: Session, route_id: int, kiosk_code: str, *, slots: list[dict],
                 actor_id: Optional[int]) -> dict:
    """Confirm one counter of a loaded route, in one all-or-nothing step:

    - the count: counted − recorded on hand (the book level now) moves between COUNT-ADJ and the
      counter (goods found come in without a lot; a shortage leaves first expiry first out, after
      the pulls, so the lots that were pulled stay as named);
    - the pulls: counter → LOSS, lot as named, reason expiry (expired) or write-off (damaged);
    - the loads: van → counter, the van's lots first expiry first out; loading more than the van
      holds is refused.

    The stop is then done. Confirming it again records nothing and says so (``already``). Every
    refusal names the slot it is about (its message, and its ``field`` as "<slot>-…", see
    ``refused_slot``). A slot loaded above its capacity is accepted and listed in
    ``over_capacity`` (the tablet asked first)."""
    route = get_route(s, route_id)
    stop = _stop(route, kiosk_code=kiosk_code if isinstance(kiosk_code, str) else None)
    if stop.status == StopStatus.DONE:
        return _visit_result(stop, already=True)
    if route.status != RefillStatus.LOADED:
        raise ValidationError(_l("请先装车再补货") if route.status == RefillStatus.PLANNED
                              else _l("路线 #%(id)s 已结束，不能再补货", id=route.id), "status")
    per_product, entries, pulls = _parse_visit(s, stop, slots)
    over = over_capacity(entries.values())
    counter = stop.kiosk.location_id
    van = route.van_location_id
    adjust = virtual_location(s, LocationKind.COUNT_ADJUSTMENT)
    loss = virtual_location(s, LocationKind.LOSS)
    moves = 0
    recorded: dict[int, int] = {}
    try:
        with s.begin_nested():
            row = s.execute(
                update(RefillStop).where(RefillStop.id == stop.id, RefillStop.status == StopStatus.PENDING)
                .values(status=StopStatus.DONE, visited_at=utcnow(), visited_by_id=actor_id).returning(RefillStop.id)
            ).first()
            if row is None:  # confirmed meanwhile by another tap
                s.expire(stop)
                return _visit_result(stop, already=True)
            for pid in sorted(per_product):
                agg = per_product[pid]
                product = agg["product"]
                common = dict(product_id=pid, ref_type=REF_STOP, ref_id=stop.id, user_id=actor_id)
                book = recorded[pid] = level(s, counter, pid)
                variance = agg["counted"] - book
                if variance > 0:
                    move(s, qty_milli=variance, from_location_id=adjust.id, to_location_id=counter,
                         reason=MoveReason.COUNT_ADJUSTMENT, note=_note(_l("补货清点")), **common)
                    moves += 1
                for p in (p for p in pulls if p["product"].id == pid):
                    try:
                        move(s, qty_milli=p["qty"], from_location_id=counter, to_location_id=loss.id,
                             reason=MoveReason.EXPIRY if p["reason"] == PullReason.EXPIRED else MoveReason.WRITE_OFF,
                             lot_id=p["lot_id"], note=_note(PULL_REASON_LABELS[p["reason"]]), **common)
                    except InsufficientStock:
                        raise ValidationError(_l("货道 %(slot)s：专柜账面上没有这么多「%(product)s」可下架（%(n)s 件）",
                                                 slot=p["slot"], product=product.name, n=p["qty"] // PIECE),
                                              f"{p['slot']}-pulled") from None
                    moves += 1
                if variance < 0:
                    for lot_id, part in allocate_removal(s, location_id=counter, product_id=pid, qty_milli=-variance):
                        move(s, qty_milli=part, from_location_id=counter, to_location_id=adjust.id, lot_id=lot_id,
                             reason=MoveReason.COUNT_ADJUSTMENT, allow_negative_source=True,
                             note=_note(_l("补货清点")), **common)
                        moves += 1
                if agg["loaded"]:
                    in_van = level(s, van, pid)
                    if agg["loaded"] > in_van:
                        loading = [slot for slot in _slots_of(entries, pid) if entries[slot]["loaded"]]
                        raise ValidationError(_l("货道 %(slots)s：补货车上「%(product)s」只有 %(have)s 件，不能补入 %(n)s 件",
                                                 slots="、".join(loading), product=product.name,
                                                 have=pieces(in_van), n=agg["loaded"] // PIECE),
                                              f"{loading[0]}-loaded")
                    for lot_id, part in allocate_fresh(s, location_id=van, product_id=pid, qty_milli=agg["loaded"]):
                        move(s, qty_milli=part, from_location_id=van, to_location_id=counter, lot_id=lot_id,
                             reason=MoveReason.REFILL, **common)
                        moves += 1
            for e in entries.values():
                e["line"].recorded_milli = recorded[e["line"].product_id]
                e["line"].counted_milli = e["counted"]
                e["line"].loaded_milli = e["loaded"]
            planned = {(p.product_id, p.lot_id): p for p in stop.pulls}
            for pull in stop.pulls:
                pull.pulled_qty_milli = 0
            for p in pulls:
                row = planned.get((p["product"].id, p["lot_id"]))
                if row is None:
                    row = planned[(p["product"].id, p["lot_id"])] = RefillPull(
                        product_id=p["product"].id, lot_id=p["lot_id"], planned_qty_milli=0, pulled_qty_milli=0)
                    stop.pulls.append(row)
                row.pulled_qty_milli = (row.pulled_qty_milli or 0) + p["qty"]
                row.reason = p["reason"]
            s.flush()
            record(s, user_id=actor_id, action="refill.visit", entity="refill_stop", entity_id=stop.id,
                   before={"recorded_milli": {str(pid): q for pid, q in recorded.items()}},
                   after={"route_id": route.id, "kiosk": stop.kiosk.code,
                          "slots": [{"slot": slot, "counted_milli": e["counted"], "loaded_milli": e["loaded"]}
                                    for slot, e in entries.items()],
                          "pulled": [{"product_id": p["product"].id, "lot_id": p["lot_id"], "qty_milli": p["qty"],
                                      "reason": p["reason"].value} for p in pulls],
                          "over_capacity": over})
    except InventoryError:
        s.expire_all()
        raise
    s.refresh(stop)
    return _visit_result(stop, already=False, moves=moves, over=over)


def _note(text: Any) -> str:
    from inventory.alerts import hall_text

    return hall_text(text)


# --- back at the base -----------------------------------------------------------------------------

def finish_route(s: Session, route_id: int, *, actor_id: Optional[int]) -> dict:
    """End a loaded route: everything still in the van goes back to the base, lot by lot (goods
    without a lot as such). Stops not visited stay pending (skipped)."""
    try:
        with s.begin_nested():
            route = _lock_route(s, route_id, RefillStatus.LOADED, RefillStatus.DONE,
                                finished_at=utcnow(), finished_by_id=actor_id)
            van, base = route.van_location_id, route.base_location_id
            returned = []
            lot_rows = s.execute(
                select(Lot.product_id, LotLevel.lot_id, LotLevel.qty_milli).join(Lot, Lot.id == LotLevel.lot_id)
                .where(LotLevel.location_id == van, LotLevel.qty_milli > 0).order_by(Lot.product_id, Lot.id)
            ).all()
            for pid, lot_id, qty in lot_rows:
                move(s, product_id=pid, qty_milli=qty, from_location_id=van, to_location_id=base, lot_id=lot_id,
                     reason=MoveReason.REFILL, ref_type=REF_ROUTE, ref_id=route.id, user_id=actor_id)
                returned.append({"product_id": pid, "lot_id": lot_id, "qty_milli": qty})
            rest = s.execute(select(StockLevel.product_id, StockLevel.qty_milli).where(
                StockLevel.location_id == van, StockLevel.qty_milli > 0).order_by(StockLevel.product_id)).all()
            for pid, qty in rest:
                move(s, product_id=pid, qty_milli=qty, from_location_id=van, to_location_id=base,
                     reason=MoveReason.REFILL, ref_type=REF_ROUTE, ref_id=route.id, user_id=actor_id)
                returned.append({"product_id": pid, "lot_id": None, "qty_milli": qty})
            skipped = [st.kiosk.code for st in route.stops if st.status != StopStatus.DONE]
            record(s, user_id=actor_id, action="refill.finish", entity="refill_route", entity_id=route.id,
                   after={"returned": returned, "skipped": skipped})
    except InventoryError:
        s.expire_all()
        raise
    return {"route_id": route.id, "returned": returned, "skipped": skipped,
            "returned_pieces": sum(r["qty_milli"] for r in returned) // PIECE}


def route_summary(route: RefillRoute) -> dict:
    done = sum(1 for st in route.stops if st.status == StopStatus.DONE)
    return {"stops": len(route.stops), "done": done, "status_label": STATUS_LABELS[route.status],
            "codes": [st.kiosk.code for st in route.stops]}


def iter_stop_codes(route: RefillRoute) -> Iterable[str]:
    return (st.kiosk.code for st in route.stops)
