"""At the counter: ``record_visit`` records what the restocker loaded into each slot and pulled
out of it (counted and entered on the stop sheet, prefilled with the stop's plan), once per stop;
the van's lots go into the counter first expiry first out. The life of a route: ``kiosks.refills``."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from inventory import fields
from inventory.audit import record
from inventory.errors import InventoryError, ValidationError
from inventory.ledger import MAX_QTY_MILLI, InsufficientStock, level, move, virtual_location
from inventory.localtime import utcnow
from inventory.models import LocationKind, Lot, MoveReason, Product
from inventory.expiry import allocate_fresh, allocate_removal
from kiosks.models import (
    PullReason,
    RefillPull,
    RefillStatus,
    RefillStop,
    StopStatus,
)
from kiosks.refills import PIECE, PULL_REASON_LABELS, REF_STOP, get_route, pieces, route_stop

__all__ = ["record_visit", "over_capacity", "refused_slot"]


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
    stop = route_stop(route, kiosk_code=kiosk_code if isinstance(kiosk_code, str) else None)
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
