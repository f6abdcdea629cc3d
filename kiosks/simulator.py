"""A fleet of simulated counters speaking the counter API v1 (DESIGN.md) with their own tokens.

Each simulated counter does what the firmware does: every morning it fetches its planogram, it
sells only what it holds (decrementing its own count per product), it posts its sales at the end
of every hour in batches of at most 100, and it sends a heartbeat every hour. Selling rates follow
the kind of site and the hour in Asia/Shanghai: hospitals and factories are busy all week,
government offices and schools are quiet at weekends and at night, canteens sell at meal times.

A few counters (``offline_share``, chosen from the seed) lose their connection for some hours:
they keep selling, keep their sales with the real time of sale, and send the backlog when they
are back (or, when the run ends during the outage, still hold it). A few batches
(``resend_share``) are sent twice, as a counter does when a response is lost.

Everything is drawn from ``random.Random``: the fleet's choices from the seed, each counter's
from the seed and its code, so one seed sends the same sales with the same ``txn_id``s whatever
the transport. Run again over the same window, the fleet resends its sales as duplicates as long
as the stock it finds does not change what it can sell: a rerun starts from the stock the first
run left, so a counter that runs short sells differently and its reused ``txn_id``s are rejected
as conflicts, as the API says.

``simulate`` runs one window; a ``Fleet`` runs several in turn, its counters keeping what they
hold, their unsent sales and their sequence numbers from one to the next (the demo: a scaled-down
history in process, a refill round, then the last day through the API). ``volume`` scales the
model's sales (the demo's history: a small share of the real fleet's, as its hall is).

``send(method, path, token, json_body) -> (status, body)`` is the transport: :func:`http_sender`
for a server at a URL, :func:`client_sender` for a Flask app in this process (its test client);
both speak the real paths with Bearer tokens.

The simulator knows the counters only through the API (and, for its rates, the kinds of site).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import random
import urllib.error
import urllib.request
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple, Optional

from inventory.localtime import HALL_TZ
from kiosks.models import SiteType

Send = Callable[[str, str, Optional[str], Optional[dict]], tuple[int, Any]]

API = "/api/v1/kiosks/{code}/{what}"
BATCH_SIZE = 100          # sales per POST (the API takes up to 500)
HOUR = dt.timedelta(hours=1)

# --- how much a counter sells: by site, weekday and hour -------------------------------------

# Expected sales per day at an average counter of each kind: (Monday–Friday, Saturday–Sunday).
DAILY_SALES: dict[SiteType, tuple[float, float]] = {
    SiteType.HOSPITAL: (34, 28),     # patients and visitors every day
    SiteType.FACTORY: (30, 24),      # shifts round the clock, fewer at weekends
    SiteType.GOVERNMENT: (24, 1),    # offices closed at weekends
    SiteType.SCHOOL: (20, 0),        # closed at weekends
    SiteType.CANTEEN: (30, 12),      # a government or school canteen closes at weekends, a factory's not
    SiteType.OTHER: (18, 14),        # community service centres
}

# Relative weight of each local hour 0…23.
HOURLY_WEIGHTS: dict[SiteType, tuple[float, ...]] = {
    SiteType.HOSPITAL: (.2, .1, .1, .1, .1, .2, .5, 1.5, 3, 4, 4, 3.5, 2.5, 2.5, 3.5, 3.5, 3, 2.5, 2, 2, 1.5, 1, .5, .3),
    SiteType.FACTORY: (.4, .3, .2, .2, .2, .4, 1, 3, 2, 1, 1, 3, 3.5, 1.5, 1, 1, 1.5, 3, 3.5, 3, 2.5, 2, 1.5, .8),
    SiteType.GOVERNMENT: (0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 4, 3.5, 1.5, 1, 3, 4, 3.5, 2, .5, 0, 0, 0, 0, 0),
    SiteType.SCHOOL: (0, 0, 0, 0, 0, 0, 0, 2, 1.5, 2, 3, 2, 2.5, 1, 2, 3, 3, 2, .5, 0, 0, 0, 0, 0),
    SiteType.CANTEEN: (0, 0, 0, 0, 0, 0, 1, 4, 3, .5, .5, 5, 6, 2, .3, .3, .5, 4.5, 4, 1, .3, 0, 0, 0),
    SiteType.OTHER: (0, 0, 0, 0, 0, 0, 0, 0, 1, 2.5, 3, 2.5, 1, 1, 2, 3, 3, 2.5, 2, 1.5, .8, 0, 0, 0),
}

LINES_PER_SALE = ((1, 2, 3), (60, 30, 10))
WECHAT_SHARE = 0.62
DOOR_LEFT_OPEN = 0.01     # per heartbeat
FAULT = 0.004             # per heartbeat
FAULTS = ("E12 出货门锁未复位", "E21 制冷温度过高", "E33 称重传感器离线", "E40 扫码模块无响应")


def expected_sales(site_type: SiteType, moment: dt.datetime) -> float:
    """Expected sales in the local hour that begins at ``moment`` at an average counter."""
    local = moment.astimezone(HALL_TZ)
    weekday, weekend = DAILY_SALES[site_type]
    per_day = weekend if local.weekday() >= 5 else weekday
    weights = HOURLY_WEIGHTS[site_type]
    return per_day * weights[local.hour] / sum(weights)


def poisson(rng: random.Random, mean: float) -> int:  # ok-float: sales per hour
    """A Poisson draw (Knuth's method; the means here are small)."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# --- what goes in and what comes out -----------------------------------------------------------

class SimKiosk(NamedTuple):
    code: str
    token: str
    site_type: Optional[SiteType] = None  # None: drawn from the seed (the API does not tell it)


@dataclass
class SimStats:
    sales_made: int = 0            # sales the counters made (sent or still held)
    sales_sent: int = 0            # sales in POSTed batches, resends included
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    resent_batches: int = 0
    heartbeats: int = 0
    planograms: int = 0
    sold_out: int = 0              # customers who found the counter empty
    unsent: int = 0                # sales still held by counters offline when the run ended
    offline: dict[str, tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)
    accepted_by_day: Tally = field(default_factory=Tally)   # local date of sold_at → accepted sales
    rejections: list[dict] = field(default_factory=list)     # the first few, as the server said
    failed_requests: int = 0                                 # requests that did not get a 2xx
    failures: list[str] = field(default_factory=list)        # the first few of them

    def as_dict(self) -> dict[str, Any]:
        return {"sales_made": self.sales_made, "sales_sent": self.sales_sent, "accepted": self.accepted,
                "duplicates": self.duplicates, "rejected": self.rejected, "batches": self.batches,
                "resent_batches": self.resent_batches, "heartbeats": self.heartbeats,
                "planograms": self.planograms, "sold_out": self.sold_out, "unsent": self.unsent,
                "failed_requests": self.failed_requests,
                "offline": sorted(self.offline),
                "accepted_by_day": {d.isoformat(): n for d, n in sorted(self.accepted_by_day.items())}}


# --- transports --------------------------------------------------------------------------------

def http_sender(base_url: str, *, timeout: float = 30.0) -> Send:  # ok-float: seconds
    """Send over HTTP to a running server (``http://host:port``)."""
    base = base_url.rstrip("/")

    def send(method: str, path: str, token: Optional[str], body: Optional[dict]) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, _json(error.read())

    return send


def client_sender(app_or_client: Any) -> Send:
    """Send through a Flask app's test client, in this process."""
    client = app_or_client.test_client() if hasattr(app_or_client, "test_client") else app_or_client

    def send(method: str, path: str, token: Optional[str], body: Optional[dict]) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.open(path, method=method, json=body, headers=headers)
        try:
            return response.status_code, _json(response.get_data())
        finally:
            response.close()

    return send


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": raw[:200].decode("utf-8", "replace")}


# --- one counter ---------------------------------------------------------------------------------

@dataclass
class _Counter:
    kiosk: SimKiosk
    site_type: SiteType
    rng: random.Random
    popularity: float  # ok-float: a weight for random choices
    outage: Optional[tuple[dt.datetime, dt.datetime]] = None
    slots: dict[str, tuple[str, int]] = field(default_factory=dict)  # slot → (sku, price_fen)
    stock: dict[str, int] = field(default_factory=dict)              # sku → pieces in the counter
    pending: list[dict] = field(default_factory=list)                # sales not yet accepted by the server
    seq: int = 0
    fetched_on: Optional[dt.date] = None
    was_offline: bool = False

    def online(self, moment: dt.datetime) -> bool:
        return self.outage is None or not (self.outage[0] <= moment < self.outage[1])


class Fleet:
    """The simulated counters, which keep what they hold, the sales they have not sent yet and
    their sequence numbers from one ``run`` to the next: run a window, change the world between
    runs (a refill round), run the next window, possibly through another transport."""

    def __init__(self, kiosks: Iterable[SimKiosk | tuple], *, seed: int, resend_share: float = 0.02,  # ok-float: share
                 batch_size: int = BATCH_SIZE) -> None:
        if not 0 < batch_size <= 500:
            raise ValueError("batch_size must be 1…500")
        self.seed, self.resend_share, self.batch_size = seed, resend_share, batch_size
        self.rng = random.Random(seed)  # the fleet's own choices (the outages)
        kinds = tuple(SiteType)
        self.counters: list[_Counter] = []
        for k in sorted((SimKiosk(*k) for k in kiosks), key=lambda k: k.code):
            rng = random.Random(f"{seed}:{k.code}")
            site_type = k.site_type or rng.choices(kinds, weights=(20, 15, 12, 25, 18, 10))[0]
            self.counters.append(_Counter(k, SiteType(site_type), rng, popularity=rng.uniform(0.75, 1.3)))
        self.send: Send = _no_transport
        self.stats = SimStats()
        self.volume = 1.0  # ok-float: a share of the model's sales
        self.planogram_every_days = 1

    def run(self, *, send: Send, start: dt.datetime, days: float, offline_share: float = 0.05,  # ok-float: share
             post_every_hours: int = 1, heartbeat_every_hours: int = 1, planogram_every_days: int = 1,
             outages: Optional[dict[str, tuple[dt.datetime, dt.datetime]]] = None,
             progress: Optional[Callable[[dt.date, SimStats], None]] = None, volume: float = 1.0) -> SimStats:  # ok-float
        """Run the window [start, start + days) through ``send``; every counter fetches its
        planogram in the window's first hour (the world may have changed since the last run), then
        every ``planogram_every_days`` mornings (the firmware: every morning; a scaled-down history
        may fetch less often, the counter keeps its own count in between). ``volume``: the share of
        the model's sales the counters make in this window (the demo's scaled history)."""
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        if post_every_hours < 1 or heartbeat_every_hours < 1 or planogram_every_days < 1:
            raise ValueError("post_every_hours, heartbeat_every_hours and planogram_every_days must be at least 1")
        if volume < 0:
            raise ValueError("volume must not be negative")
        end = start + dt.timedelta(days=days)
        counters = self.counters
        if outages is None:
            outages = _outages(self.rng, [c.kiosk.code for c in counters], offline_share, start, end)
        stats = SimStats(offline=dict(outages))
        for counter in counters:
            counter.outage = outages.get(counter.kiosk.code)
            counter.fetched_on = None
        self.send, self.stats = send, stats
        self.volume, self.planogram_every_days = volume, planogram_every_days

        hours, begins = [], _floor_hour(start)
        while begins < end:
            hours.append(begins)
            begins += HOUR
        by_day: dict[dt.date, list[dt.datetime]] = {}
        for begins in hours:
            by_day.setdefault(begins.date(), []).append(begins)
        last, index = len(hours) - 1, {begins: n for n, begins in enumerate(hours)}
        try:
            for day, day_hours in by_day.items():
                for counter in counters:
                    for begins in day_hours:
                        n = index[begins]
                        self.hour(counter, begins, max(begins, start), min(begins + HOUR, end),
                                   post=(n + 1) % post_every_hours == 0 or n == last,
                                   beat=(n + 1) % heartbeat_every_hours == 0 or n == last)
                if progress is not None:
                    progress(day, stats)
        finally:
            self.send = _no_transport
        stats.unsent = sum(len(c.pending) for c in counters)
        return stats

    def path(self, counter: _Counter, what: str) -> str:
        return API.format(code=counter.kiosk.code, what=what)

    # -- the requests

    def request(self, method: str, counter: _Counter, what: str, body: Optional[dict]) -> tuple[int, Any]:
        """One request; a connection that fails (refused, timed out) gives status 0."""
        try:
            return self.send(method, self.path(counter, what), counter.kiosk.token, body)
        except OSError as error:
            self._failed(method, counter, what, 0, str(error))
            return 0, None

    def fetch_planogram(self, counter: _Counter, day: dt.date) -> None:
        status, body = self.request("GET", counter, "planogram", None)
        self.stats.planograms += 1
        if status != 200 or not isinstance(body, dict):
            if status:
                self._failed("GET", counter, "planogram", status, body)
            return
        held = Tally()
        for sale in counter.pending:  # sold here but not yet known to the server
            for line in sale["lines"]:
                held[counter.slots.get(line["slot"], (line["slot"],))[0]] += line["qty"]
        counter.slots = {s["slot"]: (s["sku"], int(s["price_fen"])) for s in body.get("slots", [])}
        counter.stock = {s["sku"]: max(0, int(s["on_hand"]) - held[s["sku"]]) for s in body.get("slots", [])}
        counter.fetched_on = day

    def flush(self, counter: _Counter) -> None:
        """POST what the counter holds, in batches; keep it when the server cannot take it now."""
        while counter.pending:
            batch = counter.pending[:self.batch_size]
            status, body = self.post_sales(counter, batch)
            if status >= 500 or status == 0:
                return  # try again next hour
            del counter.pending[:len(batch)]
            if status == 200 and counter.rng.random() < self.resend_share:  # the response was "lost": send it again
                self.stats.resent_batches += 1
                self.post_sales(counter, batch)

    def post_sales(self, counter: _Counter, batch: list[dict]) -> tuple[int, Any]:
        status, body = self.request("POST", counter, "sales", {"sales": batch})
        if status == 0:
            return 0, None  # no connection: the counter keeps its sales
        self.stats.batches += 1
        self.stats.sales_sent += len(batch)
        if status != 200 or not isinstance(body, dict):
            self._failed("POST", counter, "sales", status, body)
            return status, body
        day_of = {sale["txn_id"]: dt.datetime.fromisoformat(sale["sold_at"]).astimezone(HALL_TZ).date()
                  for sale in batch}
        accepted = body.get("accepted", [])
        self.stats.accepted += len(accepted)
        self.stats.duplicates += len(body.get("duplicates", []))
        self.stats.rejected += len(body.get("rejected", []))
        self.stats.accepted_by_day.update(day_of[txn] for txn in accepted if txn in day_of)
        room = 20 - len(self.stats.rejections)
        if room > 0:
            self.stats.rejections.extend({"kiosk": counter.kiosk.code, **r} for r in body.get("rejected", [])[:room])
        return status, body

    def heartbeat(self, counter: _Counter, moment: dt.datetime) -> None:
        rng = counter.rng
        fault = rng.choice(FAULTS) if rng.random() < FAULT else None
        temperature = round(rng.gauss(6.5, 0.6) + (4.0 if fault and "温度" in fault else 0.0), 1)
        body = {"at": _iso(moment), "door_open": rng.random() < DOOR_LEFT_OPEN,
                "temperature_c": temperature, "error": fault}
        status, answer = self.request("POST", counter, "heartbeat", body)
        self.stats.heartbeats += 1
        if status not in (0, 204):
            self._failed("POST", counter, "heartbeat", status, answer)

    def _failed(self, method: str, counter: _Counter, what: str, status: int, body: Any) -> None:
        self.stats.failed_requests += 1
        if len(self.stats.failures) < 50:
            error = body.get("error") if isinstance(body, dict) else body
            self.stats.failures.append(f"{method} {counter.kiosk.code} {what}: {status} {error}")

    # -- one simulated hour of one counter

    def hour(self, counter: _Counter, begins: dt.datetime, lo: dt.datetime, hi: dt.datetime, *,
             post: bool = True, beat: bool = True) -> None:
        """The counter's hour [begins, begins + 1 h), cut to the run's window [lo, hi): sell, and
        at its end post the sales (``post``) and send a heartbeat (``beat``) when online."""
        online = counter.online(begins)
        day = begins.astimezone(HALL_TZ).date()
        if online:
            if counter.was_offline:  # back from an outage: the backlog first
                self.flush(counter)
            if counter.fetched_on is None or (day - counter.fetched_on).days >= self.planogram_every_days:
                self.fetch_planogram(counter, day)
        counter.was_offline = not online
        mean = expected_sales(counter.site_type, begins) * counter.popularity * self.volume * ((hi - lo) / HOUR)
        # Sales fall on whole seconds inside [lo, hi): the API's times carry no fractions, so a
        # moment in lo's first fraction of a second would otherwise be sent as before lo.
        first = lo if not lo.microsecond else lo.replace(microsecond=0) + dt.timedelta(seconds=1)
        seconds = max((hi - first).total_seconds(), 0)
        for offset in sorted(counter.rng.uniform(0, seconds) for _ in range(poisson(counter.rng, mean))):
            self.sell(counter, first + dt.timedelta(seconds=int(offset)))
        if online and post:
            self.flush(counter)
        if online and beat:
            self.heartbeat(counter, hi)

    def sell(self, counter: _Counter, moment: dt.datetime) -> None:
        rng = counter.rng
        available = [(slot, sku, price) for slot, (sku, price) in sorted(counter.slots.items())
                     if counter.stock.get(sku, 0) > 0]
        # One slot per product: two slots of one product share one count.
        seen, choices = set(), []
        for slot, sku, price in available:
            if sku not in seen:
                seen.add(sku)
                choices.append((slot, sku, price))
        if not choices:
            self.stats.sold_out += 1
            return
        wanted = min(rng.choices(*LINES_PER_SALE)[0], len(choices))
        lines = []
        for _ in range(wanted):  # cheaper goods sell more often
            slot, sku, price = rng.choices(choices, weights=[1 / math.sqrt(max(p, 100)) for _, _, p in choices])[0]
            choices.remove((slot, sku, price))
            qty = 2 if counter.stock[sku] >= 2 and rng.random() < 0.12 else 1
            counter.stock[sku] -= qty
            lines.append({"slot": slot, "qty": qty, "unit_price_fen": price})
        amount = sum(line["qty"] * line["unit_price_fen"] for line in lines)
        counter.seq += 1
        local = moment.astimezone(HALL_TZ)
        if rng.random() < WECHAT_SHARE:
            method, ref = "wechat", f"4200{rng.randrange(10**24):024d}"
        else:
            method, ref = "alipay", f"{local:%Y%m%d}2200{rng.randrange(10**16):016d}"
        counter.pending.append({
            "txn_id": txn_id(self.seed, counter.kiosk.code, counter.seq),
            "sold_at": _iso(moment),
            "lines": lines,
            "payment": {"method": method, "amount_fen": amount, "ref": ref},
        })
        self.stats.sales_made += 1


def txn_id(seed: int, code: str, seq: int) -> str:
    """The counter's own id for its ``seq``-th sale in a run with this seed."""
    return f"{code}-S{seed}-{seq:06d}"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(HALL_TZ).isoformat(timespec="seconds")


# --- the run -------------------------------------------------------------------------------------

def _floor_hour(moment: dt.datetime) -> dt.datetime:
    local = moment.astimezone(HALL_TZ)
    return local.replace(minute=0, second=0, microsecond=0)


def _outages(rng: random.Random, codes: list[str], share: float, start: dt.datetime,  # ok-float: share
             end: dt.datetime) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """≈ share of the counters offline for 3–20 hours; every other one is still offline when the
    run ends (the fleet dashboard then shows it), the others come back and send their backlog."""
    hours = int((end - start) / HOUR)
    if share <= 0 or hours < 4:
        return {}
    chosen = rng.sample(codes, min(len(codes), round(len(codes) * share)))
    outages = {}
    first = _floor_hour(start)
    for n, code in enumerate(sorted(chosen)):
        length = rng.randint(3, min(20, hours - 1))
        if n % 2:  # still offline at the end
            begins = first + HOUR * max(1, hours - rng.randint(2, length))
            outages[code] = (begins, _floor_hour(end) + HOUR * 24)
        else:
            begins = first + HOUR * rng.randint(1, max(1, hours - length - 1))
            outages[code] = (begins, begins + HOUR * length)
    return outages


def _no_transport(method: str, path: str, token: Optional[str], body: Optional[dict]) -> tuple[int, Any]:
    raise RuntimeError("a Fleet sends only while it runs")


def simulate(*, send: Send, kiosks: Iterable[SimKiosk | tuple], start: dt.datetime, days: float, seed: int,
             offline_share: float = 0.05, resend_share: float = 0.02, batch_size: int = BATCH_SIZE,
             post_every_hours: int = 1, heartbeat_every_hours: int = 1,
             outages: Optional[dict[str, tuple[dt.datetime, dt.datetime]]] = None,
             progress: Optional[Callable[[dt.date, SimStats], None]] = None, volume: float = 1.0) -> SimStats:
    """Run the fleet from ``start`` (an aware datetime) for ``days`` days and return the tally:
    one ``Fleet(kiosks, …).run(…)``.

    ``kiosks``: (code, token[, site_type]) per counter. ``outages``: {code: (from, until)}, on
    whole local hours, to choose the offline counters instead of drawing ``offline_share`` of
    them. Sales are posted every ``post_every_hours`` and heartbeats sent every
    ``heartbeat_every_hours`` (both also in the run's last hour, so the fleet looks fresh at the
    end). ``progress`` is called after every simulated local day with that day and the tally so far.
    ``volume``: the share of the model's sales the counters make (1: the real fleet's volume).
    """
    fleet = Fleet(kiosks, seed=seed, resend_share=resend_share, batch_size=batch_size)
    return fleet.run(send=send, start=start, days=days, offline_share=offline_share,
                     post_every_hours=post_every_hours, heartbeat_every_hours=heartbeat_every_hours,
                     outages=outages, progress=progress, volume=volume)
