"""Demo data for `songtao demo`: the 梵净山珍·松桃馆 hall in Humen, its logistics base, 126
consumption counters and about 80 products from Songtao and elsewhere in Guizhou.

Everything is drawn from ``random.Random(seed)``, so one seed always gives the same shop; dates
are relative to today's Asia/Shanghai date, so certificates and lots look current whenever the
demo is built. Catalogue rows are bulk-inserted; every unit of stock goes through
``inventory.ledger.move``, the only writer of stock.

The counters' history (their sales, heartbeats, a few offline) is not invented here: the fleet
simulator (kiosks.simulator) runs the last day ending now against the app's own counter API, in
this process, with a token issued to every active counter; so the counters sell only what they
hold and every sale goes through the same ingestion as a real counter's.
"""
from __future__ import annotations

import datetime as dt
import os
import random
from dataclasses import dataclass
from itertools import count
from typing import NamedTuple, Optional

from flask import current_app, has_app_context
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from inventory.barcodes import ean13
from inventory.catalogue import ensure_default_barcode_rule, pinyin_initials
from inventory.ledger import move
from inventory.localtime import local_today, utcnow
from inventory.models import (
    Barcode,
    BarcodeKind,
    Category,
    Certificate,
    Location,
    LocationKind,
    Lot,
    MoveReason,
    Product,
    Setting,
    Supplier,
    Unit,
    VatRate,
    certificate_products,
)
from inventory.credit_codes import example_credit_code
from kiosks import registry as kiosk_registry
from kiosks import simulator
from kiosks.models import Kiosk, KioskStatus, PlanogramSlot, SiteType
from pos.accounts import users as accounts
from pos.demo import history as demo_history
from pos.core.db import make_engine, normalise_url
from pos.models import Till

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

# --- suppliers -------------------------------------------------------------------------------


class SupplierRow(NamedTuple):
    key: str
    name: str
    cooperative: bool  # 农民专业合作社 (credit code type 93) rather than a firm (91)
    province: str
    county: str
    county_code: str
    township: str
    village: Optional[str]
    contact: str
    # Certificate story: "current", "renewed" (expired one + current one), "expiring" (within
    # 30 days), "expired" (renewal pending) or None (not Guizhou produce, never certified).
    certificate: Optional[str]


SONGTAO = ("贵州省", "松桃苗族自治县", "520628")

SUPPLIERS = (
    SupplierRow("cuifeng", "松桃梵净山翠峰茶业有限公司", False, *SONGTAO, "正大镇", "清水村", "龙光明", "renewed"),
    SupplierRow("wuluo", "松桃苗族自治县乌罗镇生态茶叶种植农民专业合作社", True, *SONGTAO, "乌罗镇", "桃花源村", "石秀英", "current"),
    SupplierRow("mengxi", "松桃苗族自治县孟溪镇红米种植农民专业合作社", True, *SONGTAO, "孟溪镇", "新场村", "吴国平", "current"),
    SupplierRow("panxin", "松桃苗族自治县盘信镇苗家腊味农民专业合作社", True, *SONGTAO, "盘信镇", "大塘村", "麻志强", "expiring"),
    SupplierRow("miaowang", "松桃苗王食品有限公司", False, *SONGTAO, "蓼皋街道", "木树社区", "杨春燕", "current"),
    SupplierRow("pujue", "松桃苗族自治县普觉镇食用菌种植农民专业合作社", True, *SONGTAO, "普觉镇", "茶子村", "田茂林", "current"),
    SupplierRow("zhaiying", "松桃苗族自治县寨英镇中蜂养殖农民专业合作社", True, *SONGTAO, "寨英镇", "寨英村", "滕建华", "expiring"),
    SupplierRow("miaoxiu", "松桃苗绣文化产业发展有限公司", False, *SONGTAO, "大兴街道", "凯塘社区", "龙玉梅", "current"),
    SupplierRow("changxing", "松桃苗族自治县长兴堡镇红薯粉加工农民专业合作社", True, *SONGTAO, "长兴堡镇", "长兴村", "张德贵", "current"),
    SupplierRow("jiangkou", "江口县梵净山生态农业发展有限公司", False, "贵州省", "江口县", "520621", "太平镇", "云舍村", "杨光荣", "current"),
    SupplierRow("yinjiang", "印江土家族苗族自治县梵天菌业有限公司", False, "贵州省", "印江土家族苗族自治县", "520625", "木黄镇", "金厂村", "冉启明", "expiring"),
    SupplierRow("meitan", "湄潭县黔湄翠芽茶业有限公司", False, "贵州省", "湄潭县", "520328", "兴隆镇", "田家沟村", "何世军", "current"),
    SupplierRow("duyun", "都匀市毛尖镇绿源茶叶农民专业合作社", True, "贵州省", "都匀市", "522701", "毛尖镇", "坪阳村", "罗兴贵", "expired"),
    SupplierRow("huayuan", "花垣县苗乡腊味食品有限公司", False, "湖南省", "花垣县", "433124", "边城镇", "茶峒村", "彭志刚", None),
)

# Certificates for Tongren's counties are issued by the prefecture, the others by the province.
TONGREN_COUNTIES = ("520628", "520621", "520625")

CATEGORIES = ("茶叶", "粮油米面", "腊味肉制品", "山珍菌菇", "蜂蜜", "调味酱料", "果蔬干货", "休闲食品", "饮品", "苗绣手工艺品")

# --- products --------------------------------------------------------------------------------


class ProductRow(NamedTuple):
    name: str
    category: str
    supplier: str
    price_fen: int        # per piece, or per kg for weighed goods
    vat: str              # "9", "13" or "exempt"
    shelf_life_days: Optional[int]
    weighed: bool = False


P = ProductRow
PRODUCTS = (
    P("松桃梵净山翠峰茶 250g", "茶叶", "cuifeng", 16800, "9", 540),
    P("松桃梵净山翠峰茶 礼盒装 500g", "茶叶", "cuifeng", 38800, "13", 540),
    P("梵净山翠峰茶 袋泡茶 30袋", "茶叶", "cuifeng", 4800, "13", 540),
    P("梵净山绿茶 明前特级 100g", "茶叶", "wuluo", 12800, "9", 540),
    P("梵净山红茶 200g", "茶叶", "wuluo", 9800, "9", 720),
    P("乌罗毛尖 250g", "茶叶", "wuluo", 8800, "9", 540),
    P("江口梵净山绿茶 250g", "茶叶", "jiangkou", 9800, "9", 540),
    P("梵净山抹茶粉 100g", "茶叶", "jiangkou", 6800, "13", 540),
    P("湄潭翠芽 125g", "茶叶", "meitan", 15800, "9", 540),
    P("湄潭红茶 250g", "茶叶", "meitan", 8800, "9", 720),
    P("都匀毛尖 明前一级 125g", "茶叶", "duyun", 19800, "9", 540),
    P("都匀毛尖 袋泡茶 50袋", "茶叶", "duyun", 5800, "13", 540),
    P("松桃红米 2.5kg", "粮油米面", "mengxi", 6800, "exempt", 365),
    P("松桃红米 5kg", "粮油米面", "mengxi", 12800, "exempt", 365),
    P("孟溪贡米 5kg", "粮油米面", "mengxi", 9800, "9", 365),
    P("苗家糯米 2.5kg", "粮油米面", "mengxi", 5800, "9", 365),
    P("苗家糍粑 500g", "粮油米面", "mengxi", 1880, "13", 60),
    P("压榨菜籽油 5L", "粮油米面", "miaowang", 12800, "9", 540),
    P("梵净山山茶油 500ml", "粮油米面", "jiangkou", 16800, "9", 540),
    P("松桃红薯粉 500g", "粮油米面", "changxing", 1680, "9", 365),
    P("红薯粉丝 1kg", "粮油米面", "changxing", 2980, "9", 365),
    P("苗家绿豆粉 500g", "粮油米面", "changxing", 1880, "9", 180),
    P("散装松桃红米", "粮油米面", "mengxi", 1680, "exempt", 365, True),
    P("散装红薯粉", "粮油米面", "changxing", 2800, "9", 365, True),
    P("散装苗家糯米", "粮油米面", "mengxi", 1280, "9", 365, True),
    P("苗家腊肉 500g", "腊味肉制品", "panxin", 6800, "13", 180),
    P("苗家腊香肠 500g", "腊味肉制品", "panxin", 5800, "13", 180),
    P("苗家血豆腐 500g", "腊味肉制品", "panxin", 4800, "13", 120),
    P("五香牛肉干 200g", "腊味肉制品", "panxin", 4800, "13", 270),
    P("湘西腊肉 500g", "腊味肉制品", "huayuan", 5800, "13", 180),
    P("湘西腊肠 500g", "腊味肉制品", "huayuan", 4800, "13", 180),
    P("苗家腊肉（散称）", "腊味肉制品", "panxin", 9800, "13", 180, True),
    P("苗家腊香肠（散称）", "腊味肉制品", "panxin", 8800, "13", 180, True),
    P("烟熏腊猪蹄（散称）", "腊味肉制品", "panxin", 7600, "13", 180, True),
    P("野生天麻 250g", "山珍菌菇", "yinjiang", 26800, "9", 730),
    P("天麻切片 100g", "山珍菌菇", "yinjiang", 12800, "9", 730),
    P("干羊肚菌 50g", "山珍菌菇", "yinjiang", 12800, "9", 365),
    P("香辣鸡枞菌油 250g", "山珍菌菇", "yinjiang", 4880, "13", 270),
    P("梵净山香菇 250g", "山珍菌菇", "pujue", 3880, "9", 365),
    P("松桃黑木耳 250g", "山珍菌菇", "pujue", 3680, "9", 365),
    P("竹荪 50g", "山珍菌菇", "pujue", 8800, "9", 365),
    P("茶树菇 200g", "山珍菌菇", "pujue", 2880, "9", 365),
    P("干香菇（散装）", "山珍菌菇", "pujue", 7800, "9", 365, True),
    P("黑木耳（散装）", "山珍菌菇", "pujue", 8800, "9", 365, True),
    P("梵净山蜂蜜 500g", "蜂蜜", "zhaiying", 6800, "exempt", 730),
    P("梵净山土蜂蜜 1kg", "蜂蜜", "zhaiying", 12800, "exempt", 730),
    P("寨英百花蜜 250g", "蜂蜜", "zhaiying", 3880, "9", 730),
    P("中蜂巢蜜 400g", "蜂蜜", "zhaiying", 9800, "9", 365),
    P("苗家辣椒酱 280g", "调味酱料", "miaowang", 1580, "13", 365),
    P("苗家糟辣椒 500g", "调味酱料", "miaowang", 1680, "13", 270),
    P("松桃油辣椒 260g", "调味酱料", "miaowang", 1880, "13", 365),
    P("苗家红酸汤 400g", "调味酱料", "miaowang", 1680, "13", 365),
    P("糍粑辣椒 300g", "调味酱料", "miaowang", 1980, "13", 180),
    P("苗家酸菜 500g", "调味酱料", "miaowang", 1280, "13", 270),
    P("刺梨干 200g", "果蔬干货", "jiangkou", 3280, "13", 365),
    P("猕猴桃干 200g", "果蔬干货", "jiangkou", 2680, "13", 365),
    P("松桃干辣椒 250g", "果蔬干货", "miaowang", 1880, "9", 365),
    P("野生蕨菜干 200g", "果蔬干货", "pujue", 2680, "9", 365),
    P("松桃核桃 500g", "果蔬干货", "changxing", 3880, "9", 270),
    P("干辣椒（散装）", "果蔬干货", "miaowang", 4800, "9", 365, True),
    P("鲜猕猴桃", "果蔬干货", "jiangkou", 1980, "9", 20, True),
    P("苗家黄粑 400g", "休闲食品", "mengxi", 1680, "13", 30),
    P("红薯干 250g", "休闲食品", "changxing", 1580, "13", 180),
    P("刺梨糕 200g", "休闲食品", "jiangkou", 2480, "13", 270),
    P("五香花生 400g", "休闲食品", "changxing", 1580, "13", 180),
    P("刺梨原汁 500ml", "饮品", "jiangkou", 2980, "13", 365),
    P("刺梨汁 248ml×6罐", "饮品", "jiangkou", 3980, "13", 365),
    P("梵净山天然饮用水 550ml×12瓶", "饮品", "jiangkou", 3680, "13", 540),
    P("苗家甜酒 500g", "饮品", "mengxi", 1680, "13", 90),
    P("蜂蜜柚子茶 500g", "饮品", "zhaiying", 3880, "13", 540),
    P("苦荞茶 300g", "饮品", "changxing", 2880, "13", 540),
    P("苗绣挎包", "苗绣手工艺品", "miaoxiu", 26800, "13", None),
    P("苗绣零钱包", "苗绣手工艺品", "miaoxiu", 6800, "13", None),
    P("苗绣杯垫（4片装）", "苗绣手工艺品", "miaoxiu", 4800, "13", None),
    P("苗绣围巾", "苗绣手工艺品", "miaoxiu", 18800, "13", None),
    P("苗绣抱枕", "苗绣手工艺品", "miaoxiu", 12800, "13", None),
    P("苗绣书签（6枚装）", "苗绣手工艺品", "miaoxiu", 3800, "13", None),
    P("苗族银饰手镯", "苗绣手工艺品", "miaoxiu", 38800, "13", None),
    P("苗族银饰耳环", "苗绣手工艺品", "miaoxiu", 16800, "13", None),
    P("蜡染桌旗", "苗绣手工艺品", "miaoxiu", 8800, "13", None),
)
del P

# Listed only recently: their supplier's certificate does not name them yet.
NOT_YET_CERTIFIED = ("梵净山翠峰茶 袋泡茶 30袋", "苗家甜酒 500g", "蜡染桌旗")

# Illustrative 减免性质代码 for a farmer's own produce sold VAT-free; the hall's accountant keeps
# the real code per product.
VAT_EXEMPTION_CODE = "01092301"

FIRST_SCALE_PLU = 101
KIOSK_MAX_PRICE_FEN = 9800  # counters hold packaged food up to ¥98

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
# The counters' history: the simulator runs this many days ending now. One day of 123 counters is
# ~3,000 sales through the API, most of the demo's build time; sales are posted and heartbeats
# sent every few simulated hours (and in the last hour, so the fleet looks fresh) to keep it fast.
HISTORY_DAYS = 1
HISTORY_SYNC_HOURS = 6
# The hall's own history (pos.demo.history): None = from the first of the previous month until
# yesterday, so that the reports have a whole demo month; a number = that many days (tests).
HALL_HISTORY_DAYS: Optional[int] = None
SLOT_NAMES = tuple(f"{row}{n}" for row in "ABCD" for n in range(1, 6))

# --- helpers ---------------------------------------------------------------------------------

# pinyin_initials (梅江茶 → mjc), ean13 (first 12 digits + GS1 check digit) and credit_code
# (a well-formed 统一社会信用代码) are the catalogue's own rules, imported above: one place each.
credit_code = example_credit_code


def mobile_phone(rng: random.Random) -> str:
    return rng.choice(("139", "138", "135", "151", "158", "182", "187", "189")) + f"{rng.randrange(10**8):08d}"


def _ids_by(session: Session, key) -> dict:
    """{key: id} for every row of the key column's table."""
    return dict(session.execute(select(key, key.class_.id)).all())


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
    counters' history is added at the end by the fleet simulator speaking the app's counter API:
    that commits the session first (the API's requests run in their own transactions).
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
    demo_history.build_open_group_orders(session, seed=seed, now=now)
    if app is None and has_app_context():
        app = current_app._get_current_object()
    if app is not None:
        build_counter_history(session, app, seed=seed, now=now)
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
    return _ids_by(session, Location.code)


def build_settings(session: Session) -> None:
    session.execute(insert(Setting), [{"key": k, "value": v} for k, v in SETTINGS])


def build_tills(session: Session, hall_id: int) -> None:
    session.execute(insert(Till), [
        {"code": code, "name": name, "location_id": hall_id, "printer_uri": "none",
         "paper_columns": columns, "active": True}
        for code, name, columns in TILLS
    ])


def build_suppliers(session: Session, rng: random.Random) -> dict[str, int]:
    rows = [
        {
            "name": s.name,
            "credit_code": credit_code(rng, cooperative=s.cooperative, county_code=s.county_code),
            "province": s.province,
            "origin_county": s.county,
            "origin_county_code": s.county_code,
            "origin_township": s.township,
            "origin_village": s.village,
            "contact_name": s.contact,
            "contact_phone": mobile_phone(rng),
            "active": True,
        }
        for s in SUPPLIERS
    ]
    session.execute(insert(Supplier), rows)
    by_name = _ids_by(session, Supplier.name)
    return {s.key: by_name[s.name] for s in SUPPLIERS}


def build_categories(session: Session) -> dict[str, int]:
    session.execute(insert(Category), [{"name": n, "sort_order": i} for i, n in enumerate(CATEGORIES, 1)])
    return _ids_by(session, Category.name)


class DemoProduct(NamedTuple):
    id: int
    row: ProductRow

    @property
    def lotted(self) -> bool:
        return self.row.shelf_life_days is not None

    @property
    def kiosk_ok(self) -> bool:
        return not self.row.weighed and self.lotted and self.row.price_fen <= KIOSK_MAX_PRICE_FEN


def build_products(session: Session, rng: random.Random, suppliers: dict[str, int],
                   categories: dict[str, int]) -> list[DemoProduct]:
    rows, barcodes = [], []
    # Each supplier has its own GS1 China company prefix (69…); its items are numbered after it.
    prefixes = dict(zip((s.key for s in SUPPLIERS), rng.sample(range(10000, 100000), len(SUPPLIERS))))
    next_item = {key: rng.randrange(100, 900) * 10 for key in prefixes}
    plu = FIRST_SCALE_PLU

    def new_barcode(supplier: str) -> str:
        next_item[supplier] += 1
        return ean13(f"69{prefixes[supplier]}{next_item[supplier]:05d}")

    for n, p in enumerate(PRODUCTS, 1):
        sku = f"ST{n:04d}"
        rows.append({
            "sku": sku,
            "name": p.name,
            "pinyin_initials": pinyin_initials(p.name),
            "category_id": categories[p.category],
            "supplier_id": suppliers[p.supplier],
            "unit": Unit.KG if p.weighed else Unit.PIECE,
            "sold_by_weight": p.weighed,
            "price_fen": p.price_fen,
            "cost_fen": p.price_fen * rng.randint(60, 75) // 100,
            "vat": VatRate(p.vat),
            "vat_exemption_code": VAT_EXEMPTION_CODE if p.vat == "exempt" else None,
            "shelf_life_days": p.shelf_life_days,
            "scale_plu": plu if p.weighed else None,
            "active": True,
        })
        if p.weighed:
            plu += 1  # weighed goods carry the scale's PLU, not a printed barcode
            continue
        barcodes.append((sku, new_barcode(p.supplier)))
        if rng.random() < 0.08:  # an older packaging still on some shelves
            barcodes.append((sku, new_barcode(p.supplier)))
    session.execute(insert(Product), rows)
    ids = _ids_by(session, Product.sku)
    session.execute(insert(Barcode), [
        {"product_id": ids[sku], "code": code, "kind": BarcodeKind.EAN13} for sku, code in barcodes
    ])
    return [DemoProduct(ids[r["sku"]], p) for r, p in zip(rows, PRODUCTS)]


def build_certificates(session: Session, rng: random.Random, today: dt.date,
                       suppliers: dict[str, int], products: list[DemoProduct]) -> None:
    """Certificates for each Guizhou supplier, naming its products, as its supplier row tells:
    current, renewed (last cycle's expired one and a current one), expiring within 30 days, or
    expired with the renewal pending."""
    certificates, covered = [], []
    serials = count(rng.randrange(20, 60))
    for s in (s for s in SUPPLIERS if s.certificate):
        named = [p.id for p in products if p.row.supplier == s.key and p.row.name not in NOT_YET_CERTIFIED]
        for valid_from, valid_to, note in _certificate_spans(rng, today, s.certificate):
            number = _certificate_number(s.county_code, valid_from.year, next(serials))
            certificates.append({
                "number": number,
                "issuer": "铜仁市乡村振兴局" if s.county_code in TONGREN_COUNTIES else "贵州省乡村振兴局",
                "supplier_id": suppliers[s.key],
                "valid_from": valid_from,
                "valid_to": valid_to,
                "note": note,
            })
            covered.append((number, named))
    session.execute(insert(Certificate), certificates)
    ids = _ids_by(session, Certificate.number)
    session.execute(certificate_products.insert(), [
        {"certificate_id": ids[number], "product_id": pid} for number, pids in covered for pid in pids
    ])


def _certificate_spans(rng: random.Random, today: dt.date, story: str) -> list[tuple[dt.date, dt.date, Optional[str]]]:
    """(valid_from, valid_to, note) of a supplier's certificates, oldest first; two years each."""
    days = dt.timedelta
    if story in ("current", "renewed"):
        valid_from = today - days(rng.randint(300, 420))
        current = (valid_from, today + days(rng.randint(300, 420)), None)
        if story == "current":
            return [current]
        return [(valid_from - days(730), valid_from - days(1), "已换发新证"), current]
    if story == "expiring":
        valid_to = today + days(rng.randint(5, 28))
        return [(valid_to - days(729), valid_to, "即将到期，请及时申请复审")]
    if story == "expired":
        valid_to = today - days(rng.randint(10, 60))
        return [(valid_to - days(729), valid_to, "已到期，复审材料已提交")]
    raise ValueError(f"unknown certificate story: {story}")


def _certificate_number(county_code: str, year: int, serial: int) -> str:
    if county_code in TONGREN_COUNTIES:
        return f"黔扶认〔{year}〕{county_code}-{serial:04d}"
    return f"GZFP-{year}-{serial:04d}"


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
    location_ids = _ids_by(session, Location.code)
    session.execute(insert(Kiosk), [
        {**site, "code": code, "location_id": location_ids[code],
         "food_filing_no": f"YB2441900{rng.randrange(10**7):07d}",
         "status": status.get(code, KioskStatus.ACTIVE), "door_open": False}
        for code, site in zip(codes, placed)
    ])
    ids = _ids_by(session, Kiosk.code)
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

    # The session's identity map holds objects weakly: keeping the locations referenced lets
    # each move find its two locations there instead of loading them again.
    held_locations = session.scalars(select(Location)).all()  # noqa: F841
    session.execute(insert(Lot), [r.lot for r in receipts if r.lot])
    lot_ids = {(pid, no): lid for lid, pid, no in session.execute(select(Lot.id, Lot.product_id, Lot.lot_no))}
    base, manager, restocker = locations["BASE"], user_ids["manager"], user_ids["restocker"]
    at_base = {p.id: _BaseLots() for p in products}
    for r in receipts:
        lot_id = lot_ids[(r.product.id, r.lot["lot_no"])] if r.lot else None
        move(session, product_id=r.product.id, qty_milli=r.qty_milli, from_location_id=locations["SUPPLIER"],
             to_location_id=base, reason=MoveReason.RECEIPT, lot_id=lot_id, user_id=manager)
        if lot_id is not None:
            at_base[r.product.id].lots.append(_BaseLot(lot_id, r.lot["expires_on"], r.qty_milli, r.near_expiry))

    def send(p: DemoProduct, qty_milli: int, to: int, reason: MoveReason, user_id: int, near_ok: bool) -> None:
        if not qty_milli:
            return
        parts = at_base[p.id].take(qty_milli, near_ok=near_ok) if p.lotted else [(None, qty_milli)]
        for lot_id, part in parts:
            move(session, product_id=p.id, qty_milli=part, from_location_id=base, to_location_id=to,
                 reason=reason, lot_id=lot_id, user_id=user_id)

    for p in products:
        floor, store, _ = destinations[p.id]
        send(p, floor, locations["HALL"], MoveReason.TRANSFER, manager, near_ok=True)
        send(p, store, locations["HALL-STORE"], MoveReason.TRANSFER, manager, near_ok=False)
    for slot in slots:
        send(slot.product, slot.on_hand * 1000, slot.location_id, MoveReason.REFILL, restocker, near_ok=False)


# --- the counters' history -------------------------------------------------------------------


def build_counter_history(session: Session, app, *, seed: int, now: dt.datetime) -> simulator.SimStats:
    """Issue a token to every active counter, commit, and let the fleet simulator run the last
    ``HISTORY_DAYS`` ending ``now`` through the app's counter API (its test client). The tokens
    are not shown: a counter's token is issued anew with ``songtao kiosk-token K001``."""
    fleet = [
        simulator.SimKiosk(code, kiosk_registry.issue_token(session, code), site_type)
        for code, site_type in session.execute(
            select(Kiosk.code, Kiosk.site_type).where(Kiosk.status == KioskStatus.ACTIVE).order_by(Kiosk.code))
    ]
    session.commit()  # the API's requests write in their own transactions
    stats = simulator.simulate(
        send=simulator.client_sender(app), kiosks=fleet, start=now - dt.timedelta(days=HISTORY_DAYS),
        days=HISTORY_DAYS, seed=seed, post_every_hours=HISTORY_SYNC_HOURS, heartbeat_every_hours=HISTORY_SYNC_HOURS)
    if stats.failures or stats.rejected:  # a bug in the demo or the API, not a user error
        raise AssertionError(f"demo counter history: {stats.failures[:3]} {stats.rejections[:3]}")
    return stats
