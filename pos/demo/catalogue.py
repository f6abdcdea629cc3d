"""The demo's catalogue: suppliers from Songtao and elsewhere in Guizhou, the categories, about 80
products with their barcodes, and the poverty-alleviation certificates (current, renewed,
expiring, not yet certified), drawn from the seed; and the small rules the demo's rows share
(credit codes, phone numbers, ids by key).
"""
from __future__ import annotations

import datetime as dt
import random
from itertools import count
from typing import NamedTuple, Optional

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from inventory.barcodes import ean13
from inventory.catalogue import pinyin_initials
from inventory.models import (
    Barcode,
    BarcodeKind,
    Category,
    Certificate,
    Product,
    Supplier,
    Unit,
    VatRate,
    certificate_products,
)
from inventory.credit_codes import example_credit_code


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

# Listed only recently: their supplier's certificate does not name them yet.
NOT_YET_CERTIFIED = ("梵净山翠峰茶 袋泡茶 30袋", "苗家甜酒 500g", "蜡染桌旗")

# Illustrative 减免性质代码 for a farmer's own produce sold VAT-free; the hall's accountant keeps
# the real code per product.
VAT_EXEMPTION_CODE = "01092301"

FIRST_SCALE_PLU = 101
KIOSK_MAX_PRICE_FEN = 9800  # counters hold packaged food up to ¥98

# --- helpers ---------------------------------------------------------------------------------

# pinyin_initials (梅江茶 → mjc), ean13 (first 12 digits + GS1 check digit) and credit_code
# (a well-formed 统一社会信用代码) are the catalogue's own rules, imported above: one place each.
credit_code = example_credit_code


def mobile_phone(rng: random.Random) -> str:
    return rng.choice(("139", "138", "135", "151", "158", "182", "187", "189")) + f"{rng.randrange(10**8):08d}"


def ids_by(session: Session, key) -> dict:
    """{key: id} for every row of the key column's table."""
    return dict(session.execute(select(key, key.class_.id)).all())


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
    by_name = ids_by(session, Supplier.name)
    return {s.key: by_name[s.name] for s in SUPPLIERS}


def build_categories(session: Session) -> dict[str, int]:
    session.execute(insert(Category), [{"name": n, "sort_order": i} for i, n in enumerate(CATEGORIES, 1)])
    return ids_by(session, Category.name)


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
    ids = ids_by(session, Product.sku)
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
    ids = ids_by(session, Certificate.number)
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
