"""The demo hall's own history, so that the reports have a demo month: every day from the first
of the previous month until yesterday (by default), the three tills open their shifts, sell over
the hall's opening hours, a refund comes back now and then, and the drawers are counted at close
with the small differences real drawers have; a few times a month a union, a firm or a canteen
buys in quantity from the logistics base at an agreed price, paid by bank transfer.

Nothing here writes a sale, a refund, a shift or a stock move itself: sales go through
``pos.sales.service.record_sale`` (the hall's, the group orders'), refunds through ``pos.sales.refunds.refund``,
shifts through ``pos.hall.shifts``, restocking through ``inventory.receiving`` and ``inventory.transfers`` (goods receipts at the base,
transfers to the hall's storeroom and floor). The hall sells only what it holds: a running count,
seeded from the stock levels, decides what can still be sold, and the storeroom (or the base)
fills the floor each morning, as the hall's staff would.

Those services stamp their records with the clock. The history happens in the past, so at the
end the timestamps of what it wrote (shift open/close, stock moves, documents, audit events) are
set to the moments they stand for, in a few bulk statements (``pos.demo.clock``). The group
purchases, their buyers and today's open orders are ``pos.demo.group_history``.

Deterministic for a seed and ``now``: everything is drawn from one ``random.Random``; the clock
is never read here.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.localtime import local_date
from inventory.models import AuditEvent, Category, Location, Lot, Product, StockLevel, StockMove, is_weighed
from inventory import receiving, transfers
from inventory.documents import GoodsReceipt, Transfer
from inventory.money import line_amount_fen, round_down_to_jiao
from pos.accounts import users as accounts
from pos.models import Sale, SaleLine, Shift, Till, User
from pos.sales.refunds import refund
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn, record_sale
from pos.hall.shifts import DENOMINATIONS, close_shift, open_shift
from pos.hall.settings import hall_settings
from pos.demo.clock import at_local, set_times, stamp_document
from pos.demo.group_history import BUYER_TYPES, demo_buyers, group_sale


# Scaled down from the real hall (about ¥9.6 million a year, some 700 sales a day) so that the
# demo builds quickly: about 26 sales on a weekday, a third more at the weekend (a sale costs the
# sales service about 10 ms on SQLite; two months are some 1,700 sales).
SALES_PER_DAY = 26
WEEKEND_FACTOR = 1.35
# Of the sales: share by till (H3 is the service desk).
TILL_SHARE = {"H1": 45, "H2": 40, "H3": 15}
# Busy hours: 09:00 … 20:00 (the hall closes at 21:00).
HOUR_WEIGHTS = (3, 6, 8, 7, 5, 5, 6, 7, 9, 10, 9, 5)
OPEN_HOUR, CLOSE_HOUR = 9, 21
LINES_WEIGHTS = (40, 30, 15, 10, 5)      # 1 … 5 lines
OPENING_FLOAT_FEN = 50000                # ¥500 in the drawer at opening
REFUND_CHANCE = 0.5                      # per day: a few refunds a week
GROUP_CHANCE = 0.35                      # per weekday: a few group purchases a month
REFUND_REASONS = ("质量问题", "顾客买错规格", "包装破损", "重复购买", "送礼未用，原样退回")
# (method, weight); "mixed" = a union welfare card that does not cover it all, the rest by WeChat
PAYMENT_MIX = (("wechat", 44), ("alipay", 24), ("cash", 13), ("unionpay", 8), ("union_card", 7), ("mixed", 4))
CASH_DIFFERENCES = (-2000, -1000, -500, -200, -100, -50, -10, 10, 50, 100, 200, 1000)

# The hall's other cashiers (the demo cashier logs in; these only appear in the history).
CASHIERS = (("cashier2", "田晓红"), ("cashier3", "麻秀兰"))


@dataclass
class MonthStats:
    hall_sales: int = 0
    hall_takings_fen: int = 0
    group_sales: int = 0
    group_takings_fen: int = 0
    refunds: int = 0
    refunds_fen: int = 0


@dataclass
class HistoryStats:
    first: Optional[dt.date] = None
    last: Optional[dt.date] = None
    days: int = 0
    shifts: int = 0
    transfers: int = 0
    receipts: int = 0
    months: dict[str, MonthStats] = field(default_factory=lambda: defaultdict(MonthStats))

    @property
    def hall_sales(self) -> int:
        return sum(m.hall_sales for m in self.months.values())

    @property
    def group_sales(self) -> int:
        return sum(m.group_sales for m in self.months.values())

    @property
    def refunds(self) -> int:
        return sum(m.refunds for m in self.months.values())


@dataclass(frozen=True)
class _Product:
    id: int
    price_fen: int
    cost_fen: Optional[int]
    weighed: bool
    lotted: bool
    shelf_life_days: Optional[int]
    supplier_id: Optional[int]
    category: str
    popularity: float  # ok-float: a weight for random choices, not money


@dataclass
class _Sold:
    sale_id: int
    receipt_no: str
    sold_at: dt.datetime
    cash: bool  # the first payment was cash: a refund goes back in cash


def history_span(now: dt.datetime, days: Optional[int]) -> tuple[dt.date, dt.date]:
    """The local days the history covers: the last ``days`` days before today, or (None) from the
    first of the previous month until yesterday."""
    today = local_date(now)
    last = today - dt.timedelta(days=1)
    if days is not None:
        return today - dt.timedelta(days=days), last
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1), last


def _notes(amount_fen: int) -> dict[int, int]:
    """A drawer's content by denomination, largest first."""
    counts = {}
    for value in DENOMINATIONS:
        n, amount_fen = divmod(amount_fen, value)
        if n:
            counts[value] = n
    return counts or {DENOMINATIONS[0]: 0}  # an empty drawer is counted too: a blank count is refused


class _History:
    def __init__(self, session: Session, rng: random.Random, now: dt.datetime):
        self.s, self.rng, self.today = session, rng, local_date(now)
        s = session
        codes = dict(s.execute(select(Location.code, Location.id)).all())
        self.hall, self.store, self.base = codes["HALL"], codes["HALL-STORE"], codes["BASE"]
        self.tills = dict(s.execute(select(Till.code, Till.id).where(Till.code.in_(TILL_SHARE))).all())
        users = dict(s.execute(select(User.username, User.id)).all())
        self.manager = users["manager"]
        self.cashiers = [users["cashier"]] + [
            users.get(username) or accounts.create_user(
                s, username=username, role="cashier", password=f"songtao-{username}", display_name=name).id
            for username, name in CASHIERS]
        self.limit = hall_settings(s).discount_limit_percent
        self.products = self._products()
        self.by_id = {p.id: p for p in self.products}
        levels = defaultdict(int)
        for loc, pid, qty in s.execute(select(StockLevel.location_id, StockLevel.product_id, StockLevel.qty_milli)
                                       .where(StockLevel.location_id.in_((self.hall, self.store, self.base)))):
            levels[(loc, pid)] = qty
        self.level = levels  # the running count: what each place holds now
        self.start = dict(levels)  # what the demo stocked: the staff keep each place about this full
        self.sold: list[_Sold] = []
        self.refunded: set[int] = set()
        self.buyers = demo_buyers(s, self.manager)

    def _products(self) -> list[_Product]:
        """The products the history sells: not those with a near-expiry lot (the demo keeps them
        for its expiry alerts; the hall would sell them off, but not in the demo's past)."""
        s = self.s
        soon = {pid for pid, expires, shelf in s.execute(
            select(Lot.product_id, Lot.expires_on, Product.shelf_life_days)
            .join(Product, Product.id == Lot.product_id).where(Lot.expires_on.is_not(None)))
            if shelf and (expires - self.today).days < shelf // 3}
        rows = s.execute(select(Product, Category.name).join(Category, Category.id == Product.category_id)
                         .where(Product.active.is_(True)).order_by(Product.id)).all()
        return [_Product(p.id, p.price_fen, p.cost_fen, p.weighed,
                         p.shelf_life_days is not None, p.shelf_life_days, p.supplier_id, category,
                         (3000 / max(p.price_fen, 1000)) ** 0.7)
                for p, category in rows if p.id not in soon]

    # --- restocking -------------------------------------------------------------------------

    def _post_transfer(self, source: int, target: int, lines: dict[int, int], at: dt.datetime, stats) -> None:
        if not lines:
            return
        t = transfers.create_transfer(self.s, from_location_id=source, to_location_id=target, actor_id=self.manager,
                                      lines=[{"product_id": pid, "qty_milli": q} for pid, q in lines.items()],
                                      note="卖场补货" if target == self.hall else "仓库补货")
        transfers.post_transfer(self.s, t.id, actor_id=self.manager)
        stamp_document(self.s, Transfer, t.id, at)
        for pid, q in lines.items():
            self.level[(source, pid)] -= q
            self.level[(target, pid)] += q
        stats.transfers += 1

    def morning_restock(self, day: dt.date, stats: HistoryStats) -> None:
        """Mondays: the suppliers deliver to the base what it runs short of, and the base fills the
        storeroom. Every morning: the floor is filled from the storeroom (or the base) where it
        has sold down to half."""
        at = at_local(day, 8, 30)
        if day.weekday() == 0:
            self._deliveries(day, stats)
            want = {}
            for p in self.products:
                short = self.start.get((self.store, p.id), 0) - self.level[(self.store, p.id)]
                if short > 0:
                    take = min(short, self.level[(self.base, p.id)])
                    take -= take % 1000 if not p.weighed else 0
                    if take > 0:
                        want[p.id] = take
            self._post_transfer(self.base, self.store, want, at_local(day, 8, 10), stats)
        from_store, from_base = {}, {}
        for p in self.products:
            target = self.start.get((self.hall, p.id), 0)
            have = self.level[(self.hall, p.id)]
            if have * 2 > target:
                continue
            short = target - have
            a = min(short, self.level[(self.store, p.id)])
            b = min(short - a, self.level[(self.base, p.id)])
            if not p.weighed:
                a, b = a - a % 1000, b - b % 1000
            if a > 0:
                from_store[p.id] = a
            if b > 0:
                from_base[p.id] = b
        self._post_transfer(self.store, self.hall, from_store, at, stats)
        self._post_transfer(self.base, self.hall, from_base, at + dt.timedelta(minutes=5), stats)

    def _deliveries(self, day: dt.date, stats: HistoryStats) -> None:
        """Goods receipts at the base, one per supplier, bringing each product back to at least
        what the base held when the demo began (by the case: 12 pieces or 5 kg)."""
        by_supplier: dict[int, list[dict]] = defaultdict(list)
        for p in self.products:
            case = 5000 if p.weighed else (12000 if p.lotted else 4000)
            target = max(self.start.get((self.base, p.id), 0), case)
            have = self.level[(self.base, p.id)]
            if have * 2 > target or p.supplier_id is None:
                continue
            qty = -(-(target - have) // case) * case
            line = {"product_id": p.id, "qty_milli": qty, "cost_fen": p.cost_fen or p.price_fen * 2 // 3}
            if p.lotted:
                produced = day - dt.timedelta(days=self.rng.randint(1, max(2, min(20, p.shelf_life_days // 10))))
                line.update(lot_no=f"{produced:%Y%m%d}-R1", produced_on=produced)
            by_supplier[p.supplier_id].append(line)
        for n, (supplier_id, lines) in enumerate(sorted(by_supplier.items()), 1):
            at = at_local(day, 7, 30 + n)
            receipt = receiving.receive(self.s, supplier_id=supplier_id, location_id=self.base, lines=lines,
                                        supplier_ref=f"SH{day:%Y%m%d}{n:02d}", actor_id=self.manager)
            receiving.post_receipt(self.s, receipt.id, actor_id=self.manager)
            stamp_document(self.s, GoodsReceipt, receipt.id, at)
            for line in receipt.lines:
                if line.lot is not None and line.lot.created_at > at:
                    line.lot.created_at = at
                self.level[(self.base, line.product_id)] += line.qty_milli
            stats.receipts += 1

    # --- hall sales -------------------------------------------------------------------------

    def _basket(self) -> list[LineIn]:
        rng = self.rng
        n = rng.choices(range(1, 6), LINES_WEIGHTS)[0]
        chosen: dict[int, int] = {}
        for _ in range(n * 2):  # a product sold out is passed over
            if len(chosen) == n:
                break
            p = rng.choices(self.products, [p.popularity for p in self.products])[0]
            if p.id in chosen:
                continue
            if p.weighed:
                qty = rng.randint(150, 1500) if p.price_fen >= 3000 else rng.randint(400, 2500)
            else:
                qty = 1000 * (rng.choices((1, 2, 3), (80, 15, 5))[0] if p.price_fen < 5000 else 1)
            if self.level[(self.hall, p.id)] >= qty:
                chosen[p.id] = qty
        lines = []
        for pid, qty in chosen.items():
            gross = line_amount_fen(self.by_id[pid].price_fen, qty)
            discount = 0
            if rng.random() < 0.05:  # a dented box, a bruised fruit: within the limit
                discount = gross * rng.randint(3, self.limit) // 100
            lines.append(LineIn(product_id=pid, qty_milli=qty, line_discount_fen=discount))
        return lines

    def _payments(self, total: int, method: str) -> list[PaymentIn]:
        rng = self.rng
        if method == "cash":
            note = rng.choice((0, 1000, 5000, 10000))
            tendered = total if note == 0 or total % note == 0 else total + note - total % note
            return [PaymentIn("cash", total, tendered_fen=tendered)]
        if method == "mixed" and total > 2000:
            card = min(total - 100, rng.choice((2000, 5000, 10000)))
            return [PaymentIn("union_card", card, ref=f"GHK{rng.randrange(10**10):010d}"),
                    PaymentIn("wechat", total - card, ref=f"4200{rng.randrange(10**24):024d}")]
        method = "wechat" if method == "mixed" else method
        prefix = {"wechat": "4200", "alipay": "2026", "unionpay": "UP", "union_card": "GHK"}[method]
        return [PaymentIn(method, total, ref=f"{prefix}{rng.randrange(10**20):020d}")]

    def hall_sale(self, at: dt.datetime, till: str, shift: Shift, drawer: dict[int, int], stats) -> None:
        rng = self.rng
        lines = self._basket()
        if not lines:
            return
        method = rng.choices([m for m, _ in PAYMENT_MIX], [w for _, w in PAYMENT_MIX])[0]
        after_lines = sum(line_amount_fen(self.by_id[ln.product_id].price_fen, ln.qty_milli) - ln.line_discount_fen
                          for ln in lines)
        subtotal = after_lines + sum(ln.line_discount_fen for ln in lines)
        order_discount, approved_by = 0, None
        roll = rng.random()
        if roll < 0.03 and after_lines >= 10000:  # a regular's discount, over the limit: the manager approves
            order_discount = after_lines * rng.choice((12, 15, 20)) // 100
        elif roll < 0.08 and after_lines >= 5000:  # the odd yuan off for a big basket, within the limit
            order_discount = after_lines % 1000 or 500
        discount = order_discount + sum(ln.line_discount_fen for ln in lines)
        if discount * 100 > self.limit * subtotal:
            approved_by = self.manager
        rounding = method == "cash" and rng.random() < 0.6  # 抹零: the cashier rounds down to the jiao
        total = after_lines - order_discount
        if rounding:
            total = round_down_to_jiao(total)
        if total <= 0:
            return
        result = record_sale(self.s, SaleIn(
            channel="hall", location_id=None, lines=lines, payments=self._payments(total, method),
            order_discount_fen=order_discount, till_id=self.tills[till], shift_id=shift.id,
            cashier_id=shift.cashier_id, sold_at=at, rounding_to_jiao=rounding, approved_by_id=approved_by,
            client_sale_id=str(uuid.UUID(int=rng.getrandbits(128), version=4))))
        assert result.total_fen == total, (result, total)  # this module's arithmetic is the service's
        for ln in lines:
            self.level[(self.hall, ln.product_id)] -= ln.qty_milli
        if method == "cash":
            drawer[shift.id] += total
        self.sold.append(_Sold(result.sale_id, result.receipt_no, at, method == "cash"))
        month = stats.months[f"{local_date(at):%Y-%m}"]
        month.hall_sales += 1
        month.hall_takings_fen += total

    def hall_refund(self, at: dt.datetime, shift: Shift, drawer: dict[int, int], stats,
                    *, since: Optional[dt.datetime] = None, before: Optional[dt.datetime] = None) -> None:
        """A customer brings something back to the service desk: a sale of the last week (or
        between ``since`` and ``before``), not refunded before, part of one line or all of it."""
        rng = self.rng
        since = since or at - dt.timedelta(days=7)
        before = before or at - dt.timedelta(minutes=30)
        candidates = [x for x in self.sold if since <= x.sold_at <= before and x.sale_id not in self.refunded]
        if not candidates:
            return
        sold = rng.choice(candidates)
        lines = self.s.execute(select(SaleLine.id, SaleLine.product_id, SaleLine.qty_milli, Product.unit,
                                      Product.sold_by_weight)
                               .join(Product, Product.id == SaleLine.product_id)
                               .where(SaleLine.sale_id == sold.sale_id).order_by(SaleLine.line_no)).all()
        line_id, product_id, qty, unit, by_weight = rng.choice(lines)
        weighed = is_weighed(unit, by_weight)
        if rng.random() < 0.5:
            back = qty
        elif weighed:  # part of it (at least half: a refund is never of a few grams)
            back = rng.randint(qty // 2, qty)
        else:
            back = 1000 * rng.randint(1, qty // 1000)
        to_stock = rng.random() < 0.7  # otherwise damaged: to loss
        result = refund(self.s, receipt_no=sold.receipt_no, lines=[(line_id, back, to_stock)], method=None,
                        reason=rng.choice(REFUND_REASONS), cashier_id=shift.cashier_id, approved_by_id=self.manager,
                        shift_id=shift.id, refunded_at=at)
        self.refunded.add(sold.sale_id)
        if to_stock:
            self.level[(self.hall, product_id)] += back
        if sold.cash:
            drawer[shift.id] -= result.total_fen
        month = stats.months[f"{local_date(at):%Y-%m}"]
        month.refunds += 1
        month.refunds_fen += result.total_fen

    # --- a day ----------------------------------------------------------------------------------

    def day(self, day: dt.date, stats: HistoryStats, *, group: Optional[str], cross_month: bool) -> None:
        rng = self.rng
        self.morning_restock(day, stats)
        staff = rng.sample(self.cashiers, len(self.cashiers))
        shifts: dict[str, Shift] = {}
        drawer: dict[int, int] = defaultdict(int)
        for k, (code, cashier) in enumerate(zip(sorted(self.tills), staff)):
            shift = open_shift(self.s, till_id=self.tills[code], cashier_id=cashier, opening_float_fen=OPENING_FLOAT_FEN)
            shift.opened_at = at_local(day, 8, 50 + k)
            shifts[code] = shift
            drawer[shift.id] = OPENING_FLOAT_FEN

        n = SALES_PER_DAY * (WEEKEND_FACTOR if day.weekday() >= 5 else 1)
        n = max(8, round(n * rng.uniform(0.8, 1.2)))
        events = []
        for _ in range(n):
            hour = OPEN_HOUR + rng.choices(range(len(HOUR_WEIGHTS)), HOUR_WEIGHTS)[0]
            till = rng.choices(list(TILL_SHARE), list(TILL_SHARE.values()))[0]
            events.append((at_local(day, hour, rng.randrange(60), rng.randrange(60)), "sale", till))
        if rng.random() < REFUND_CHANCE:
            events.append((at_local(day, rng.randint(11, 20), rng.randrange(60)), "refund", "H3"))
        if cross_month:  # something bought at the end of last month comes back on the first
            events.append((at_local(day, 10, 15), "refund-last-month", "H3"))
        if group:
            events.append((at_local(day, rng.randint(10, 16), rng.randrange(60)), "group", group))
        for at, kind, what in sorted(events, key=lambda e: (e[0], e[1])):
            if kind == "sale":
                self.hall_sale(at, what, shifts[what], drawer, stats)
            elif kind == "group":
                group_sale(self, at, what, stats)
            elif kind == "refund-last-month":
                self.hall_refund(at, shifts[what], drawer, stats, since=at_local(day - dt.timedelta(days=3), 0),
                                 before=at_local(day, 0))
            else:
                self.hall_refund(at, shifts[what], drawer, stats)

        for k, code in enumerate(sorted(shifts)):
            shift = shifts[code]
            expected = drawer[shift.id]
            difference = 0 if rng.random() < 0.75 else rng.choice(CASH_DIFFERENCES)
            counted = max(0, expected + difference)
            report = close_shift(self.s, shift.id, denominations=_notes(counted), closed_by_id=self.manager)
            assert report.expected_cash_fen == expected, (report.expected_cash_fen, expected)
            shift.closed_at = at_local(day, CLOSE_HOUR, 10 + 3 * k)
            stats.shifts += 1


def build_hall_history(session: Session, *, seed: int, now: dt.datetime, days: Optional[int] = None) -> HistoryStats:
    """Record the hall's history for the local days before ``now``'s (see ``history_span``):
    shifts, hall sales, refunds, group purchases and the restocking they need. Returns what was
    recorded, per month. Does not commit."""
    first, last = history_span(now, days)
    stats = HistoryStats(first=first, last=last)
    if last < first:
        return stats
    rng = random.Random(f"hall-history:{seed}")
    s = session
    marks = {model: s.scalar(select(model.id).order_by(model.id.desc()).limit(1)) or 0
             for model in (StockMove, AuditEvent, Sale)}
    history = _History(s, rng, now)

    weekdays = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    group_days = {d for d in weekdays if d.weekday() < 5 and rng.random() < GROUP_CHANCE}
    if not group_days:
        group_days = {last}
    buyer_cycle = [t for t, _ in BUYER_TYPES]
    rng.shuffle(buyer_cycle)  # every kind of buyer at least once, then as they come
    day = first
    while day <= last:
        group = None
        if day in group_days:
            group = buyer_cycle.pop() if buyer_cycle else rng.choices(
                [t for t, _ in BUYER_TYPES], [w for _, w in BUYER_TYPES])[0]
        history.day(day, stats, group=group, cross_month=day.day == 1 and day != first)
        stats.days += 1
        day += dt.timedelta(days=1)
    set_times(s, marks)
    return stats
