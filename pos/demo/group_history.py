"""The demo's group purchases: the buyer organisations (a union, firms, canteens, a parents'
committee), an order in the history from entry to payment through the real group services, and
today's open orders, one at each step a manager would find them.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stdnum.cn import uscc

from inventory.localtime import local_date
from inventory.models import Location, Product, StockLevel, Unit
from pos.group import buyers
from pos.group import orders as group_orders
from pos.group import delivery as group_delivery
from pos.group import payments as group_payments
from pos.group.models import Buyer, BuyerPrice
from pos.models import BuyerType, User
from pos.demo.clock import at_local


BUYER_TYPES = (("union", 40), ("enterprise", 25), ("canteen", 25), ("other", 10))
GROUP_CATEGORIES = {  # what each kind of group buyer orders
    "union": ("茶叶", "蜂蜜", "腊味肉制品", "山珍菌菇", "苗绣手工艺品"),
    "enterprise": ("茶叶", "蜂蜜", "山珍菌菇", "饮品"),
    "canteen": ("粮油米面", "调味酱料", "果蔬干货", "腊味肉制品"),
    "other": ("茶叶", "粮油米面", "休闲食品", "饮品", "蜂蜜"),
}
# The organisations that buy in quantity: (name, type, town, contact, phone).
DEMO_BUYERS = (  # (name, type, town, delivery address, contact, phone)
    ("虎门镇总工会", "union", "虎门", "虎门镇连升中路 1 号 总工会办公室", "黄秀梅", "0769-85112233"),
    ("东莞市虎门医院工会", "union", "虎门", "虎门镇虎门大道 68 号 行政楼 3 楼", "李建华", "0769-85223344"),
    ("东莞市太平港物流有限公司", "enterprise", "虎门", "虎门镇沙角港湾路 12 号 综合楼", "陈志强", "13809871234"),
    ("东莞沙田港务有限公司", "enterprise", "沙田", "沙田镇港口大道 8 号", "刘晓东", "13922334455"),
    ("虎门镇人民政府机关饭堂", "canteen", "虎门", "虎门镇银龙路 99 号 镇政府饭堂后门", "王师傅", "0769-85001234"),
    ("沙田镇人民政府机关饭堂", "canteen", "沙田", "沙田镇进港中路 2 号 镇政府饭堂", "梁师傅", "0769-88661234"),
    ("虎门第三中学家长委员会", "other", "虎门", "虎门镇新湾路 5 号 虎门三中传达室", "郑丽", "13712345678"),
)
PAYMENT_DAYS = (3, 25)                   # a buyer's transfer comes this many days after delivery


def demo_buyers(s: Session, manager: int) -> dict[str, list[int]]:
    """The demo's buyer organisations by type (made once, with a valid credit code each)."""
    by_type = defaultdict(list)
    for k, (name, kind, town, address, contact, phone) in enumerate(DEMO_BUYERS):
        found = s.scalar(select(Buyer.id).where(Buyer.name == name))
        if found is None:
            found = buyers.create_buyer(s, buyers.BuyerIn(
                name=name, buyer_type=kind, uscc=demo_uscc(k), town=town, address=address,
                contact_name=contact, contact_phone=phone, invoice_title=name, tax_id=demo_uscc(k),
            ), actor_id=manager).id
        by_type[kind].append(found)
    return by_type


def group_sale(h, at: dt.datetime, buyer_type: str, stats) -> None:
    """A union, a firm, a canteen or another buyer orders in quantity at its agreed prices
    (5–10% below the list); the order goes through the group services like a manager's: confirmed
    (reserved at the base) the day before, picked that morning, delivered at ``at``, and paid
    by bank transfer some days later (the latest are still open)."""
    rng, s = h.rng, h.s
    wanted = [p for p in h.products if p.category in GROUP_CATEGORIES[buyer_type]
              and h.level[(h.base, p.id)] >= (5000 if p.weighed else 6000)]
    if not wanted:
        return
    buyer = rng.choice(h.buyers[buyer_type])
    lines = []
    for p in rng.sample(wanted, min(len(wanted), rng.randint(1, 4))):
        held = h.level[(h.base, p.id)]
        qty = rng.randint(5, 20) * 1000 if p.weighed else rng.choice((6, 10, 12, 20, 24, 30)) * 1000
        qty = min(qty, held - held % 1000)
        if s.get(BuyerPrice, (buyer, p.id)) is None:  # agreed when the buyer first orders it
            buyers.set_buyer_price(s, buyer, product_id=p.id, unit_price_fen=p.price_fen * rng.randint(90, 95) // 1000 * 10,
                                   actor_id=h.manager)
        lines.append(group_orders.OrderLineIn(product_id=p.id, qty_milli=qty))
    day = local_date(at)
    order = group_orders.create_order(s, buyer_id=buyer, lines=lines, delivery_date=day, actor_id=h.manager,
                                      client_order_id=f"demo-{uuid.UUID(int=rng.getrandbits(128))}",
                                      ordered_at=at - dt.timedelta(days=3))
    group_orders.confirm_order(s, order.id, actor_id=h.manager)
    group_orders.pick_order(s, order.id, actor_id=h.manager)
    delivery = group_delivery.deliver(s, order.id, delivered_at=at, received_by="食堂" if buyer_type == "canteen" else None,
                                    actor_id=h.manager)
    order.confirmed_at = at - dt.timedelta(days=1)
    order.picked_at = at - dt.timedelta(hours=2)
    order.closed_at = at
    for ln in lines:
        h.level[(h.base, ln.product_id)] -= ln.qty_milli
    paid_on = day + dt.timedelta(days=rng.randint(*PAYMENT_DAYS))
    if paid_on < h.today:
        payment = group_payments.record_payment(
            s, order.id, amount_fen=delivery.total_fen, ref=f"DG{paid_on:%Y%m%d}{rng.randrange(10**8):08d}",
            received_on=paid_on, actor_id=h.manager)
        payment.recorded_at = at_local(paid_on, 10)
    month = stats.months[f"{day:%Y-%m}"]
    month.group_sales += 1
    month.group_takings_fen += delivery.total_fen


def build_open_group_orders(session: Session, *, seed: int, now: dt.datetime) -> list[int]:
    """Today's group orders, one at each step a manager would find them: a firm's draft, a union's
    order confirmed for tomorrow, and a canteen's order picked this morning and partly delivered."""
    s = session
    rng = random.Random(f"open-group-orders:{seed}")
    manager = s.scalar(select(User.id).where(User.username == "manager"))
    today = local_date(now)
    by_type = dict(s.execute(select(Buyer.buyer_type, func.min(Buyer.id)).group_by(Buyer.buyer_type)).all())
    base = s.scalar(select(Location.id).where(Location.code == "BASE"))
    stocked = [pid for pid, qty in s.execute(
        select(StockLevel.product_id, StockLevel.qty_milli - StockLevel.reserved_milli)
        .join(Product, Product.id == StockLevel.product_id)
        .where(StockLevel.location_id == base, Product.active.is_(True), Product.sold_by_weight.is_(False),
               Product.unit != Unit.KG).order_by(StockLevel.product_id)) if qty >= 40000]
    made = []
    for buyer_type, days_ahead, steps in (("enterprise", 3, 0), ("union", 1, 1), ("canteen", 0, 3)):
        buyer = by_type.get(BuyerType(buyer_type))
        if buyer is None or len(stocked) < 3:
            continue
        lines = [group_orders.OrderLineIn(product_id=pid, qty_milli=rng.choice((6, 10, 12)) * 1000)
                 for pid in rng.sample(stocked, 3)]
        order = group_orders.create_order(s, buyer_id=buyer, lines=lines, actor_id=manager,
                                          delivery_date=today + dt.timedelta(days=days_ahead),
                                          client_order_id=f"demo-open-{buyer_type}-{today:%Y%m%d}")
        if steps >= 1:
            group_orders.confirm_order(s, order.id, actor_id=manager)
        if steps >= 2:
            group_orders.pick_order(s, order.id, actor_id=manager)
        if steps >= 3:
            first = order.lines[0]
            group_delivery.deliver(s, order.id, quantities={first.id: first.qty_milli}, delivered_at=now,
                                 received_by="王师傅", actor_id=manager)
        stocked = [pid for pid in stocked if pid not in {ln.product_id for ln in lines}]
        made.append(order.id)
    return made


def demo_uscc(k: int) -> str:
    """A well-formed unified social credit code for the k-th demo buyer (check digit computed)."""
    body = f"9144190031{k:07d}"
    return body + uscc.calc_check_digit(body)
