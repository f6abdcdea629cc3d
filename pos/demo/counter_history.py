"""The counters' history over the whole demo period, from the first day of the hall's history until
now, which is not invented here: the fleet simulator (kiosks.simulator) sells it, so the counters
sell only what they hold, and every sale goes through the ingestion a real counter's batch goes
through (kiosks.ingest.ingest_sales, in committed parts of ten sales, as the API does).

- Before the last day: the simulator's model at ``HISTORY_VOLUME`` of its volume, scaled down as
  the hall's own history is (pos.demo.history), recorded in this process (``ingest_sender``: the
  API's own calls without HTTP, which would only cost time here). The counters post their sales
  once a week, and fetch their planogram and send a heartbeat once per window between refill
  rounds (at its start and its end): in between only their own sales change what they hold.
- Refill rounds every ``ROUND_EVERY_DAYS`` mornings and just before the last day: the restockers
  bring every slot sold down to half its par back to par from the base's lots, first expiry first
  out, never a lot that expires within ``FRESH_DAYS`` (a delivery at the base covers what it
  lacks), through the ledger as the demo's first fill does (``inventory.ledger``, reason refill).
- The last ``LAST_DAY_HOURS``, ending now: the model at ``LAST_DAY_VOLUME`` through the app's counter
  API (its test client, with a token issued to every active counter: the path a real counter
  takes, HTTP status codes and schema check included), with heartbeats, outages and resends, so
  the fleet pages look alive.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any, Optional

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from inventory.ledger import MoveIn, post_moves
from inventory.localtime import local_date
from inventory.models import (
    AuditEvent, Location, LocationKind, Lot, LotLevel, MoveReason, Product, StockLevel, StockMove,
)
from kiosks import api as kiosk_api
from kiosks import ingest
from kiosks import registry as kiosk_registry
from kiosks import simulator
from kiosks.models import Kiosk, KioskStatus, PlanogramSlot
from pos.demo.clock import at_local, set_times
from pos.models import Sale, User

# The share of the simulator's model the counters sell before the last day. The hall's history is
# scaled down by ~27 (26 sales a day instead of ~700); the counters' by 100: a whole day of the
# fleet at full volume is 2,000-3,000 sales, so this gives 20-30 a day, ~1,000 over the period,
# enough for every report to have its counter channel. Each counter sale costs the ingestion about
# as much as a hall sale (record_sale): the volume is what the build's time buys.
HISTORY_VOLUME = 1 / 100  # ok-float: a share of the model's sales
HISTORY_POST_HOURS = 24 * 7          # the history's counters post their sales weekly
ROUND_EVERY_DAYS = 14                # a refill round every two weeks of the scaled history
ROUND_HOUR = 8                       # … at 08:00 local time
FRESH_DAYS = 30                      # a counter gets no lot that expires within this many days
CASE_MILLI = 12_000                  # a delivery for the round comes by the case of 12 pieces
# The last day, through the API: sales are posted every few simulated hours, heartbeats twice
# (and both in the last hour, so the fleet looks fresh). A heartbeat only replaces the counter's
# state (door, temperature, error) and a request costs about as much as a sale: more of them
# would show nothing more on the fleet pages.
LAST_DAY_HOURS = 24
# Half the model's volume: ~1,000-1,500 sales, some eight per counter, so that the fleet pages
# look alive (fresh sales, slots sold down) at half the cost of a full day.
LAST_DAY_VOLUME = 0.5  # ok-float: a share of the model's sales
LAST_DAY_SYNC_HOURS = 6
LAST_DAY_HEARTBEAT_HOURS = 12


def ingest_sender(session: Session) -> simulator.Send:
    """The counter API's three calls answered in this process by what its views call, without
    HTTP and without the token check (the demo knows its counters): the planogram
    (kiosks.registry.planogram_view), a batch of sales (kiosks.ingest.ingest_sales in committed
    parts of the API's size) and a heartbeat (kiosks.ingest.heartbeat)."""
    kiosks = {k.code: k for k in session.scalars(select(Kiosk))}

    def send(method: str, path: str, token: Optional[str], body: Optional[dict]) -> tuple[int, Any]:
        code, what = path.rstrip("/").split("/")[-2:]
        kiosk = kiosks[code]
        if method == "GET" and what == "planogram":
            return 200, kiosk_registry.planogram_view(session, code)
        if method == "POST" and what == "sales":
            return 200, ingest.ingest_sales(session, kiosk, body["sales"], chunk=kiosk_api.SALES_PER_TRANSACTION)
        if method == "POST" and what == "heartbeat":
            ingest.heartbeat(session, kiosk, body)
            return 204, None
        return 404, {"error": path}

    return send


def build_counter_history(session: Session, app, *, seed: int, now: dt.datetime,
                          first: dt.date) -> dict[str, simulator.SimStats]:
    """The counters' history from local midnight of ``first`` until ``now`` (module docstring):
    commits (the API's requests, and the history's parts, write in their own transactions).
    Returns the simulator's tally of each window: {"history": …, "last_day": …}. The tokens are
    not shown: a counter's token is issued anew with ``songtao kiosk-token K001``."""
    fleet = simulator.Fleet([
        simulator.SimKiosk(code, kiosk_registry.issue_token(session, code), site_type)
        for code, site_type in session.execute(
            select(Kiosk.code, Kiosk.site_type).where(Kiosk.status == KioskStatus.ACTIVE).order_by(Kiosk.code))
    ], seed=seed)
    restocker = session.scalar(select(User.id).where(User.username == "restocker"))
    session.commit()
    last_day = now - dt.timedelta(hours=LAST_DAY_HOURS)
    start = at_local(first, 0)
    tallies = {}
    if start < last_day:
        marks = {model: session.scalar(select(func.max(model.id))) or 0 for model in (StockMove, AuditEvent, Sale)}
        rounds = [at_local(first + dt.timedelta(days=k), ROUND_HOUR)
                  for k in range(ROUND_EVERY_DAYS, (last_day - start).days + 1, ROUND_EVERY_DAYS)]
        windows = [w for w in zip([start] + rounds, rounds + [last_day]) if w[0] < w[1]]
        send = ingest_sender(session)
        total = simulator.SimStats()
        for n, (begins, ends) in enumerate(windows):
            if n:
                refill_round(session, at=begins, user_id=restocker)
                session.commit()
            stats = fleet.run(send=send, start=begins, days=(ends - begins) / dt.timedelta(days=1),
                              volume=HISTORY_VOLUME, offline_share=0, post_every_hours=HISTORY_POST_HOURS,
                              heartbeat_every_hours=10**6, planogram_every_days=10**6)
            _add(total, stats)
        set_times(session, marks)  # the history's sales, their moves and audit entries at their moments
        tallies["history"] = total
    refill_round(session, at=last_day, user_id=restocker)
    session.commit()
    tallies["last_day"] = fleet.run(
        send=simulator.client_sender(app), start=last_day, days=LAST_DAY_HOURS / 24, volume=LAST_DAY_VOLUME,
        post_every_hours=LAST_DAY_SYNC_HOURS, heartbeat_every_hours=LAST_DAY_HEARTBEAT_HOURS)
    for stats in tallies.values():
        if stats.failures or stats.rejected:  # a bug in the demo or the API, not a user error
            raise AssertionError(f"demo counter history: {stats.failures[:3]} {stats.rejections[:3]}")
    return tallies


def _add(total: simulator.SimStats, stats: simulator.SimStats) -> None:
    for name in ("sales_made", "sales_sent", "accepted", "duplicates", "rejected", "batches", "resent_batches",
                 "heartbeats", "planograms", "sold_out", "failed_requests"):
        setattr(total, name, getattr(total, name) + getattr(stats, name))
    total.unsent = stats.unsent
    total.accepted_by_day.update(stats.accepted_by_day)
    total.rejections.extend(stats.rejections)
    total.failures.extend(stats.failures)


# --- refill rounds ---------------------------------------------------------------------------


def refill_round(session: Session, *, at: dt.datetime, user_id: Optional[int]) -> int:
    """The restockers' round at ``at``: every slot of an active counter below par is brought back
    to par from the base's lots, first expiry first out, none that expires within FRESH_DAYS of
    the day; what the base lacks is delivered there first, by the case, in a fresh lot. Every
    piece through the ledger (reason receipt, then refill), stamped ``at``. Returns the moves."""
    s = session
    day = local_date(at)
    places = dict(s.execute(select(Location.kind, func.min(Location.id))
                            .where(Location.kind.in_((LocationKind.BASE, LocationKind.SUPPLIER)))
                            .group_by(Location.kind)).all())
    base, supplier = places[LocationKind.BASE], places[LocationKind.SUPPLIER]
    short: dict[tuple[int, int], int] = {}  # (product, counter location) → qty_milli to load
    for location_id, product_id, par, held in s.execute(
            select(Kiosk.location_id, PlanogramSlot.product_id, func.sum(PlanogramSlot.par), StockLevel.qty_milli)
            .join(PlanogramSlot, PlanogramSlot.kiosk_id == Kiosk.id)
            .outerjoin(StockLevel, (StockLevel.location_id == Kiosk.location_id)
                       & (StockLevel.product_id == PlanogramSlot.product_id))
            .where(Kiosk.status == KioskStatus.ACTIVE)
            .group_by(Kiosk.location_id, PlanogramSlot.product_id, StockLevel.qty_milli)):
        held = max(held or 0, 0)
        if held * 2 <= par * 1000:  # sold down to half: filled up to par (the hall's floor is kept so too)
            short[(product_id, location_id)] = par * 1000 - held
    if not short:
        return 0
    needed: dict[int, int] = defaultdict(int)
    for (product_id, _), qty in short.items():
        needed[product_id] += qty
    lots: dict[int, list[list[int]]] = defaultdict(list)  # product → [[lot, qty_milli]] first expiry first
    for lot_id, product_id, qty in s.execute(
            select(Lot.id, Lot.product_id, LotLevel.qty_milli)
            .join(LotLevel, LotLevel.lot_id == Lot.id)
            .where(LotLevel.location_id == base, LotLevel.qty_milli > 0, Lot.product_id.in_(needed),
                   Lot.expires_on > day + dt.timedelta(days=FRESH_DAYS))
            .order_by(Lot.product_id, Lot.expires_on, Lot.id)):
        lots[product_id].append([lot_id, qty])
    # What group orders have reserved at the base is not the round's to take.
    free = dict(s.execute(select(StockLevel.product_id, StockLevel.qty_milli - StockLevel.reserved_milli)
                          .where(StockLevel.location_id == base, StockLevel.product_id.in_(needed))).all())
    for product_id, parts in lots.items():
        budget = max(free.get(product_id, 0), 0)
        for part in parts:
            part[1] = min(part[1], budget)
            budget -= part[1]

    mark = s.scalar(select(func.max(StockMove.id))) or 0
    deliveries = _deliver_shortfall(s, day, needed, lots)
    post_moves(s, [MoveIn(product_id=pid, qty_milli=qty, from_location_id=supplier, to_location_id=base,
                          reason=MoveReason.RECEIPT, lot_id=lot_id, user_id=user_id)
                   for pid, lot_id, qty in deliveries])
    refills = []
    for (product_id, location_id), qty in sorted(short.items()):  # the lock order: product, then location
        for part in lots[product_id]:
            used = min(qty, part[1])
            if used:
                refills.append(MoveIn(product_id=product_id, qty_milli=used, from_location_id=base,
                                      to_location_id=location_id, reason=MoveReason.REFILL, lot_id=part[0],
                                      user_id=user_id))
                part[1] -= used
                qty -= used
            if not qty:
                break
    post_moves(s, refills)
    moves = len(deliveries) + len(refills)
    moves_table = StockMove.__table__
    s.execute(update(moves_table).where(moves_table.c.id > mark).values(moved_at=at))
    return moves


def _deliver_shortfall(s: Session, day: dt.date, needed: dict[int, int],
                       lots: dict[int, list[list[int]]]) -> list[tuple[int, int, int]]:
    """New lots at the base for what its fresh lots lack (appended to ``lots``, latest expiry):
    (product, lot, qty_milli) per delivery."""
    produced = day - dt.timedelta(days=5)
    lacking = {pid: qty - sum(q for _, q in lots[pid]) for pid, qty in needed.items()}
    lacking = {pid: -(-qty // CASE_MILLI) * CASE_MILLI for pid, qty in lacking.items() if qty > 0}
    if not lacking:
        return []
    shelf = dict(s.execute(select(Product.id, Product.shelf_life_days).where(Product.id.in_(lacking))).all())
    lot_no = f"{produced:%Y%m%d}-K"  # K: for the counters' round (the hall's deliveries are -R1)
    s.execute(insert(Lot), [
        {"product_id": pid, "lot_no": lot_no, "produced_on": produced,
         "expires_on": produced + dt.timedelta(days=shelf[pid])} for pid in sorted(lacking)])
    new = dict(s.execute(select(Lot.product_id, Lot.id).where(Lot.lot_no == lot_no, Lot.product_id.in_(lacking))).all())
    deliveries = []
    for pid in sorted(lacking):
        lots[pid].append([new[pid], lacking[pid]])
        deliveries.append((pid, new[pid], lacking[pid]))
    return deliveries
