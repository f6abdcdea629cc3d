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

Planning lives in ``kiosks.refill_plans`` (which counters need a visit, the load plans and the pick
list), the visit at a counter in ``kiosks.refill_visits``; this module holds the route itself:
reading it, loading the van, cancelling, finishing, and the small rules they share.

Every change of stock goes through ``inventory.ledger.move``; each operation is all or nothing
(a savepoint), so a refusal leaves nothing half-written, and is audited. Functions take a session
and plain values, never commit, and raise ``InventoryError``s whose text is for the person.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Iterable, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from inventory.audit import record
from inventory.errors import InventoryError, NotFound, ValidationError
from inventory.ledger import InsufficientStock, move
from inventory.localtime import utcnow
from inventory.models import Lot, LotLevel, MoveReason, Product, StockLevel, first_expiry_first
from kiosks.models import (
    PullReason,
    RefillLine,
    RefillPick,
    RefillRoute,
    RefillStatus,
    RefillStop,
    StopStatus,
)

__all__ = [
    "load_van", "finish_route", "cancel_route", "get_route", "list_routes", "pick_list", "route_shortages",
    "stop_sheet", "van_contents", "route_stop", "lock_route", "route_summary", "iter_stop_codes", "pieces", "PIECE",
]

PIECE = 1000
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


def route_stop(route: RefillRoute, *, stop_id: Optional[int] = None, kiosk_code: Optional[str] = None) -> RefillStop:
    for stop in route.stops:
        if (stop_id is not None and stop.id == stop_id) or (kiosk_code is not None and stop.kiosk.code == kiosk_code):
            return stop
    raise NotFound(_l("路线中没有这个专柜"))


def stop_sheet(s: Session, route_id: int, stop_id: int) -> dict:
    """What the stop page shows: per slot the product, par, recorded on hand (now, or as recorded
    at the visit), the load plan, what the van holds, and the product's lots at the counter with
    the planned pulls."""
    route = get_route(s, route_id)
    stop = route_stop(route, stop_id=stop_id)
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

def lock_route(s: Session, route_id: Any, expected: RefillStatus, to: RefillStatus, **values: Any) -> RefillRoute:
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
            route = lock_route(s, route_id, RefillStatus.PLANNED, RefillStatus.LOADED,
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
    route = lock_route(s, route_id, RefillStatus.PLANNED, RefillStatus.CANCELLED,
                        finished_at=utcnow(), finished_by_id=actor_id)
    record(s, user_id=actor_id, action="refill.cancel", entity="refill_route", entity_id=route.id)
    return route


# --- back at the base -----------------------------------------------------------------------------

def finish_route(s: Session, route_id: int, *, actor_id: Optional[int]) -> dict:
    """End a loaded route: everything still in the van goes back to the base, lot by lot (goods
    without a lot as such). Stops not visited stay pending (skipped)."""
    try:
        with s.begin_nested():
            route = lock_route(s, route_id, RefillStatus.LOADED, RefillStatus.DONE,
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
