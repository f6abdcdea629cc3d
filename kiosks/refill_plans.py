"""Planning refill routes: which counters need a visit (``refill_candidates``), what each stop
should get (per slot: par − what is on hand and stays, in whole pieces) and the route's pick list
from the logistics base, first expiry first out (``plan_preview``), stored as a planned route
(``plan_route``). The life of a route after that: ``kiosks.refills``."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory import fields
from inventory.audit import record
from inventory.base import Base
from inventory.errors import ValidationError
from inventory.ledger import level
from inventory.reservations import available
from inventory.localtime import utcnow
from inventory.models import Location, LocationKind, Lot, LotLevel, Product, first_expiry_first
from inventory.transfers import logistics_base
from kiosks.fleet import expiring_at_kiosks, fill_percent, is_offline, slot_levels, slot_stock_milli
from kiosks.models import (
    Kiosk,
    KioskStatus,
    RefillLine,
    RefillPick,
    RefillPull,
    RefillRoute,
    RefillStatus,
    RefillStop,
    StopStatus,
)
from kiosks.refills import PIECE, pieces

__all__ = ["refill_candidates", "plan_preview", "plan_route", "towns", "vans", "DEFAULT_EXPIRING_DAYS",
           "MAX_EXPIRING_DAYS", "MAX_STOPS"]

DEFAULT_EXPIRING_DAYS = 3
MAX_EXPIRING_DAYS = 30
MAX_STOPS = 40


# --- choosing counters ----------------------------------------------------------------------------

def refill_candidates(s: Session, *, today: dt.date, now: dt.datetime, town: Optional[str] = None,
                      empty_slots: bool = False, fill_below_percent: Optional[int] = None,
                      expiring_within_days: Optional[int] = None, offline: bool = False) -> list[dict]:
    """Active counters that need a visit, most urgent first. With no criterion every active
    counter (of the town) is listed; with criteria a counter is listed when it meets any of them:
    an empty slot, fill below the percentage, a lot expired or expiring within the days, offline
    (fill and offline as the fleet's dashboard counts them: kiosks.fleet.fill_percent, is_offline;
    a counter without planogram has no fill, so it is never "below")."""
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
    per_kiosk: dict[int, dict] = {k.id: {"slots": 0, "empty": 0, "par": 0, "stock_milli": 0, "need": 0}
                                  for k in kiosks}
    for row in slot_levels(s, ids):
        agg = per_kiosk[row.kiosk_id]
        have = min(pieces(row.on_hand_milli), row.par)
        agg["slots"] += 1
        agg["par"] += row.par
        agg["stock_milli"] += slot_stock_milli(row.on_hand_milli)
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
        fill = fill_percent(agg["stock_milli"], agg["par"] * PIECE)
        low = fill_below_percent is not None and fill is not None and fill < fill_below_percent
        offline_now = is_offline(k.status, k.last_heartbeat_at, now)
        reasons = []
        if agg["empty"]:
            reasons.append("empty")
        if low:
            reasons.append("fill")
        if expiring[k.id]:
            reasons.append("expiring")
        if offline_now:
            reasons.append("offline")
        if wanted and not (
            (empty_slots and agg["empty"])
            or low
            or (expiring_within_days and expiring[k.id])
            or (offline and offline_now)
        ):
            continue
        urgency = (agg["empty"] * 10 + (max(0, 100 - fill) if fill is not None else 0) + expiring[k.id] * 15
                   + (20 if offline_now else 0))
        rows.append({
            "kiosk_id": k.id, "code": k.code, "site_name": k.site_name, "town": k.town, "address": k.address,
            "slots": agg["slots"], "empty_slots": agg["empty"], "fill_percent": fill,
            "need_pieces": agg["need"], "expiring_lots": expiring[k.id], "offline": offline_now,
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
