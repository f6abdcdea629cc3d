"""The demo's consumption counters: 126 counters at government offices, hospitals, schools,
factories and canteens in five towns, and their planograms. Their history, sold by the fleet
simulator, is ``pos.demo.counter_history``.
"""
from __future__ import annotations

import random
from typing import NamedTuple

from sqlalchemy import insert
from sqlalchemy.orm import Session

from inventory.models import Location, LocationKind
from kiosks.models import Kiosk, KioskStatus, PlanogramSlot, SiteType
from pos.demo.catalogue import DemoProduct, ids_by



# --- the consumption counters ----------------------------------------------------------------


class Town(NamedTuple):
    name: str
    short: str
    counters: int
    lat: float  # ok-float: map position only
    lon: float  # ok-float: map position only
    streets: tuple[str, ...]
    communities: tuple[str, ...]
    industries: tuple[str, ...]


TOWNS = (
    Town("虎门镇", "虎门", 58, 22.82, 113.67, ("虎门大道", "连升中路", "银龙路", "太沙路", "人民南路", "博头路"),
         ("南栅", "北栅", "赤岗", "大宁", "龙眼", "怀德", "新湾", "白沙", "树田", "路东", "镇口", "沙角"),
         ("服装", "服饰", "电子", "五金")),
    Town("沙田镇", "沙田", 17, 22.92, 113.62, ("港口大道", "沙田大道", "进港北路"),
         ("穗丰年", "西太隆", "齐沙", "稔洲", "阇西"), ("港口物流", "石化", "粮油", "仓储")),
    Town("麻涌镇", "麻涌", 17, 23.05, 113.58, ("麻涌大道", "新沙南路", "漳澎大道"),
         ("麻一", "麻二", "漳澎", "大步", "新基", "川槎"), ("粮油", "纸业", "物流", "饲料")),
    Town("中堂镇", "中堂", 16, 23.09, 113.66, ("中堂大道", "北王路", "中麻路"),
         ("潢涌", "槎滘", "江南", "吴家涌", "鹤田厦"), ("纸业", "电子", "包装", "食品")),
    Town("滨海湾新区", "滨海湾", 18, 22.78, 113.69, ("滨海湾大道", "交椅湾路", "威远路"),
         ("威远", "沙角", "交椅湾"), ("科技", "电子", "新能源", "精密制造")),
)

FIRM_NAMES = ("华锦", "联盛", "恒达", "宏图", "永利", "金源", "广泰", "新力", "裕丰", "汇通", "嘉禾", "鼎盛",
              "润发", "富源", "卓越", "信和", "腾飞", "长荣", "兴业", "瑞丰", "海创", "粤强", "明辉", "志高")

# Where a counter stands inside each kind of host, and what kind of site that makes it.
GOVERNMENT_SPOTS = (("行政服务中心大厅", SiteType.GOVERNMENT), ("机关办公楼一楼", SiteType.GOVERNMENT),
                    ("机关饭堂", SiteType.CANTEEN))
HOSPITAL_SPOTS = (("门诊大厅", SiteType.HOSPITAL), ("住院部一楼", SiteType.HOSPITAL), ("职工饭堂", SiteType.CANTEEN))
HEALTH_CENTRE_SPOTS = (("候诊区", SiteType.HOSPITAL),)
SCHOOL_SPOTS = (("教师办公楼一楼", SiteType.SCHOOL), ("教工饭堂", SiteType.CANTEEN))
COMMUNITY_SPOTS = (("党群服务中心", SiteType.OTHER),)
FACTORY_SPOTS = (("员工饭堂", SiteType.CANTEEN), ("宿舍区一楼", SiteType.FACTORY), ("办公楼大堂", SiteType.FACTORY))
FACTORIES_PER_TOWN = {"虎门镇": 15, "沙田镇": 5, "麻涌镇": 5, "中堂镇": 5, "滨海湾新区": 6}

COUNTER_COUNT = 126
SLOT_NAMES = tuple(f"{row}{n}" for row in "ABCD" for n in range(1, 6))


class DemoKiosk(NamedTuple):
    id: int
    code: str
    location_id: int
    status: KioskStatus


def _town_sites(rng: random.Random, town: Town) -> list[dict]:
    """Every place in a town where a counter could stand: (host, spot) pairs with an address and
    a position shared by the host's spots."""
    gov = "东莞滨海湾新区管理委员会" if town.short == "滨海湾" else f"{town.name}人民政府"
    hosts = [(gov, GOVERNMENT_SPOTS), (f"{town.name}社区卫生服务中心", HEALTH_CENTRE_SPOTS)]
    if town.short != "滨海湾":
        hosts += [(f"东莞市{town.short}医院", HOSPITAL_SPOTS), (f"东莞市{town.short}中学", SCHOOL_SPOTS),
                  (f"{town.name}中心小学", SCHOOL_SPOTS)]
    if town.short == "虎门":
        hosts.append(("东莞市第五人民医院", HOSPITAL_SPOTS))
    hosts += [(f"{town.name}{c}社区居民委员会", COMMUNITY_SPOTS) for c in town.communities]
    firms = rng.sample(FIRM_NAMES, FACTORIES_PER_TOWN[town.name])
    hosts += [(f"东莞市{f}{rng.choice(town.industries)}有限公司", FACTORY_SPOTS) for f in firms]

    sites = []
    for host, spots in hosts:
        address = f"广东省东莞市{town.name}{rng.choice(town.streets)}{rng.randint(1, 399)}号"
        lat = town.lat + rng.gauss(0, 0.012)
        lon = town.lon + rng.gauss(0, 0.014)
        place = host.removesuffix("居民委员会")  # a residents' committee runs its community's service centre
        for spot, site_type in spots:
            sites.append({"site_name": f"{place}{spot}" if place != host else f"{host} {spot}",
                          "host_org": host, "site_type": site_type, "town": town.name, "address": address,
                          "latitude": round(lat + rng.uniform(-0.0004, 0.0004), 6),
                          "longitude": round(lon + rng.uniform(-0.0004, 0.0004), 6)})
    return sites


def build_kiosks(session: Session, rng: random.Random) -> list[DemoKiosk]:
    assert sum(t.counters for t in TOWNS) == COUNTER_COUNT
    placed = []
    for town in TOWNS:
        placed += rng.sample(_town_sites(rng, town), town.counters)
    rng.shuffle(placed)  # counters were installed town by town in no particular order
    codes = [f"K{n:03d}" for n in range(1, COUNTER_COUNT + 1)]
    odd = rng.sample(codes, 3)
    status = {odd[0]: KioskStatus.PAUSED, odd[1]: KioskStatus.PAUSED, odd[2]: KioskStatus.RETIRED}

    session.execute(insert(Location), [
        {"code": code, "name": f"消费专柜 {code}", "kind": LocationKind.KIOSK,
         "active": status.get(code) != KioskStatus.RETIRED}
        for code in codes
    ])
    location_ids = ids_by(session, Location.code)
    session.execute(insert(Kiosk), [
        {**site, "code": code, "location_id": location_ids[code],
         "food_filing_no": f"YB2441900{rng.randrange(10**7):07d}",
         "status": status.get(code, KioskStatus.ACTIVE), "door_open": False}
        for code, site in zip(codes, placed)
    ])
    ids = ids_by(session, Kiosk.code)
    return [DemoKiosk(ids[c], c, location_ids[c], status.get(c, KioskStatus.ACTIVE)) for c in codes]


class DemoSlot(NamedTuple):
    location_id: int
    product: DemoProduct
    on_hand: int  # pieces to load, 0 … par


def build_planograms(session: Session, rng: random.Random, kiosks: list[DemoKiosk],
                     products: list[DemoProduct]) -> list[DemoSlot]:
    eligible = [p for p in products if p.kiosk_ok]
    rows, slots = [], []
    for kiosk in kiosks:
        if kiosk.status != KioskStatus.ACTIVE:
            continue
        for slot, product in zip(SLOT_NAMES, rng.sample(eligible, rng.randint(12, 20))):
            par = rng.randint(4, 12)
            rows.append({"kiosk_id": kiosk.id, "slot": slot, "product_id": product.id, "par": par,
                         "price_fen": product.row.price_fen})
            # Mostly refilled before the simulated history starts; a few slots were already low.
            on_hand = rng.randint(0, par) if rng.random() < 0.15 else rng.randint(par * 2 // 3, par)
            slots.append(DemoSlot(kiosk.location_id, product, on_hand))
    session.execute(insert(PlanogramSlot), rows)
    return slots
