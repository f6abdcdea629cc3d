"""The catalogue: products and their barcodes, categories, prices and their history, photos,
search, and what a scan at the till means (``resolve_scan``).

Every function takes a Session and plain values, never commits (the caller's unit of work does),
raises ``inventory.errors`` with a message for the person, and writes audit events through
``inventory.audit.record``. Money is integer fen.
"""
from __future__ import annotations

import datetime as dt
import functools
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Optional

from flask_babel import lazy_gettext as _l
from pypinyin import Style, lazy_pinyin
from sqlalchemy import case, func, literal, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from . import barcodes as barcode_rules
from . import fields
from .audit import record
from .certification import Certification, certification_on
from .documents import BarcodeRule
from .errors import NotFound, ValidationError
from .files import attach, image_extension
from .localtime import local_today, utcnow
from .models import Barcode, Category, Certificate, Location, PriceChange, Product, StockLevel, Unit, VatRate
from .product_rules import MAX_SCALE_PLU, check_barcode_free, clean_product, plain_value, product_snapshot
from .scale import DEFAULT_RULE as DEFAULT_SCALE_RULE
from .scale import DEFAULT_RULE_NAME as DEFAULT_SCALE_RULE_NAME
from .scale import decode as decode_scale_label
from .scale import parse_rule
from .web import Page

MAX_PER_PAGE = 500

# --- pinyin ------------------------------------------------------------------------------------

_NOT_ALNUM = re.compile(r"[^0-9a-z]")


@functools.lru_cache(maxsize=65_536)
def pinyin_initials(name: str) -> str:
    """First letter of each character's pinyin, lowercase, letters and digits only: 梅江茶 → mjc.
    Kept in ``products.pinyin_initials`` so that search is one SQL query. Cached by name
    (pypinyin takes ~0.3 ms a name; a catalogue re-imported, or a hall's names, repeat)."""
    return _NOT_ALNUM.sub("", "".join(lazy_pinyin(name, style=Style.FIRST_LETTER)).lower())


# --- products ------------------------------------------------------------------------------------

def get_product(s: Session, product_id: int) -> Product:
    product = s.get(Product, product_id) if isinstance(product_id, int) and not isinstance(product_id, bool) else None
    if product is None:
        raise NotFound(_l("商品不存在"))
    return product


def get_product_by_sku(s: Session, sku: str) -> Product:
    product = s.scalar(select(Product).where(Product.sku == fields.clean_code(sku)))
    if product is None:
        raise NotFound(_l("找不到商品编码 %(sku)s", sku=sku))
    return product


def create_product(
    s: Session,
    *,
    sku: str,
    name: str,
    price_fen: int,
    actor_id: Optional[int] = None,
    category_id: Optional[int] = None,
    supplier_id: Optional[int] = None,
    unit: Unit | str = Unit.PIECE,
    sold_by_weight: bool = False,
    cost_fen: Optional[int] = None,
    vat: VatRate | str = VatRate.AGRICULTURAL_9,
    vat_exemption_code: Optional[str] = None,
    tax_code: Optional[str] = None,
    shelf_life_days: Optional[int] = None,
    barcodes: Iterable[str] = (),
    scale_plu: Optional[int] = None,
    origin_county: Optional[str] = None,
    origin_county_code: Optional[str] = None,
    origin_township: Optional[str] = None,
    origin_village: Optional[str] = None,
) -> Product:
    values = dict(
        sku=sku, name=name, category_id=category_id, supplier_id=supplier_id, unit=unit,
        sold_by_weight=sold_by_weight, price_fen=price_fen, cost_fen=cost_fen, vat=vat,
        vat_exemption_code=vat_exemption_code, tax_code=tax_code, shelf_life_days=shelf_life_days,
        barcodes=list(barcodes) if not isinstance(barcodes, str) else barcodes, scale_plu=scale_plu,
        origin_county=origin_county, origin_county_code=origin_county_code,
        origin_township=origin_township, origin_village=origin_village,
    )
    product = _new_product(clean_product(s, values, None))
    s.add(product)
    s.flush()
    _record_created(s, product, actor_id)
    return product


def _new_product(cleaned: dict) -> Product:
    """A Product from checked values (barcodes as (code, kind) pairs); not yet in the session."""
    cleaned = dict(cleaned)
    codes = cleaned.pop("barcodes", [])
    product = Product(**cleaned, pinyin_initials=pinyin_initials(cleaned["name"]), active=True,
                      created_at=utcnow())
    product.barcodes = [Barcode(code=code, kind=kind) for code, kind in codes]
    return product


def _record_created(s: Session, product: Product, actor_id: Optional[int]) -> None:
    record(s, user_id=actor_id, action="product.create", entity="product", entity_id=product.id,
           after=product_snapshot(product))


def update_product(s: Session, product_id: int, *, actor_id: Optional[int] = None, **changes: Any) -> Product:
    """Change some fields of a product. ``barcodes`` (a list) replaces the product's barcodes.
    A price change is kept as a PriceChange row and audited as ``product.price_change``; other
    changes are audited as ``product.update`` (before and after of the fields that changed)."""
    product = get_product(s, product_id)
    _change_product(s, product, clean_product(s, changes, product), actor_id)
    s.flush()
    return product


def _change_product(s: Session, product: Product, cleaned: dict, actor_id: Optional[int]) -> bool:
    """Apply checked values to a product, keeping price history and audit events; whether
    anything changed. Does not flush (except to take barcodes off before adding others)."""
    before, after = {}, {}
    price_changed = False
    for key, value in cleaned.items():
        if key in ("barcodes", "price_fen"):
            continue
        old = getattr(product, key)
        if old != value:
            before[key], after[key] = plain_value(old), plain_value(value)
            setattr(product, key, value)
    if "name" in after:
        product.pinyin_initials = pinyin_initials(product.name)
    if "barcodes" in cleaned:
        wanted = dict(cleaned["barcodes"])
        old_codes = [b.code for b in product.barcodes]
        gone = [b for b in product.barcodes if b.code not in wanted]
        for barcode in gone:
            product.barcodes.remove(barcode)
        if gone:
            s.flush()  # deletes first, so a code can move within the product's own list
        have = {b.code for b in product.barcodes}
        for code, kind in cleaned["barcodes"]:
            if code not in have:
                product.barcodes.append(Barcode(code=code, kind=kind))
        new_codes = [b.code for b in product.barcodes]
        if sorted(old_codes) != sorted(new_codes):
            before["barcodes"], after["barcodes"] = old_codes, new_codes
    if "price_fen" in cleaned and cleaned["price_fen"] != product.price_fen:
        old_price, new_price = product.price_fen, cleaned["price_fen"]
        product.price_fen = new_price
        s.add(PriceChange(product_id=product.id, old_price_fen=old_price, new_price_fen=new_price,
                          changed_by_id=actor_id, changed_at=utcnow()))
        record(s, user_id=actor_id, action="product.price_change", entity="product", entity_id=product.id,
               before={"price_fen": old_price}, after={"price_fen": new_price})
        price_changed = True
    if after:
        record(s, user_id=actor_id, action="product.update", entity="product", entity_id=product.id,
               before=before, after=after)
    return price_changed or bool(after)


def add_barcode(s: Session, product_id: int, code: str, actor_id: Optional[int] = None) -> Barcode:
    product = get_product(s, product_id)
    code, kind = barcode_rules.validate(code)
    if any(b.code == code for b in product.barcodes):
        raise ValidationError(_l("此商品已有条码 %(code)s", code=code), "barcode")
    check_barcode_free(s, code, None)
    barcode = Barcode(code=code, kind=kind)
    product.barcodes.append(barcode)
    s.flush()
    record(s, user_id=actor_id, action="product.barcode_add", entity="product", entity_id=product.id,
           after={"code": code, "kind": kind.value})
    return barcode


def remove_barcode(s: Session, barcode_id: int, actor_id: Optional[int] = None) -> None:
    barcode = s.get(Barcode, barcode_id) if isinstance(barcode_id, int) else None
    if barcode is None:
        raise NotFound(_l("条码不存在"))
    product = barcode.product
    record(s, user_id=actor_id, action="product.barcode_remove", entity="product", entity_id=product.id,
           before={"code": barcode.code, "kind": barcode.kind.value})
    product.barcodes.remove(barcode)
    s.flush()


def set_active(s: Session, product_id: int, active: bool, actor_id: Optional[int] = None) -> Product:
    """Retire a product (it disappears from the till and the counters but keeps its history) or
    bring it back. Products are never deleted: sale lines and the ledger point at them."""
    product = get_product(s, product_id)
    active = fields.boolean(active, field="active", label=_l("在售"))
    _switch(s, product, active, actor_id=actor_id, entity="product", on="product.reactivate", off="product.retire")
    return product


def _switch(s: Session, obj: Any, active: bool, *, actor_id: Optional[int], entity: str, on: str, off: str) -> None:
    """Turn ``obj`` (a product, a scale-label rule) on or off; a change is audited as ``on`` or ``off``."""
    if obj.active != active:
        obj.active = active
        record(s, user_id=actor_id, action=on if active else off, entity=entity, entity_id=obj.id,
               before={"active": not active}, after={"active": active})
        s.flush()


def set_photo(s: Session, product_id: int, filename: str, data: bytes, instance_path: str | os.PathLike,
              *, actor_id: Optional[int] = None) -> str:
    """Keep a photo of the product: checked with Pillow (JPEG, PNG, GIF or WebP that opens whole),
    stored under instance/uploads/products/. Returns the path relative to the instance folder."""
    product = get_product(s, product_id)
    return attach(s, product, "photo_path", folder="products", ext=image_extension(data, field="photo"), data=data,
                  instance_path=instance_path, filename=filename, actor_id=actor_id, action="product.photo",
                  entity="product")


# --- categories ----------------------------------------------------------------------------------

def list_categories(s: Session) -> list[Category]:
    return list(s.scalars(select(Category).order_by(Category.sort_order, Category.name)))


def create_category(s: Session, name: str, *, sort_order: Optional[int] = None,
                    actor_id: Optional[int] = None) -> Category:
    name = fields.text(name, field="name", label=_l("分类名"), max_len=60, required=True)
    if s.scalar(select(Category.id).where(Category.name == name)) is not None:
        raise ValidationError(_l("分类「%(name)s」已存在", name=name), "name")
    if sort_order is None:
        sort_order = (s.scalar(select(func.max(Category.sort_order))) or 0) + 1
    sort_order = fields.integer(sort_order, field="sort_order", label=_l("排序"), minimum=-MAX_SCALE_PLU)
    category = Category(name=name, sort_order=sort_order)
    s.add(category)
    s.flush()
    record(s, user_id=actor_id, action="category.create", entity="category", entity_id=category.id,
           after={"name": name})
    return category


# --- search --------------------------------------------------------------------------------------

def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_products(
    s: Session,
    q: str = "",
    *,
    page: int = 1,
    per_page: int = 50,
    active_only: bool = False,
    category_id: Optional[int] = None,
    supplier_id: Optional[int] = None,
    active: Optional[bool] = None,
) -> Page:
    """Products matching ``q`` — an exact barcode, a sku prefix, a name substring or a pinyin
    initials substring (``mjc`` finds 梅江茶) — best matches first, one page at a time.

    Always the same three queries whatever the catalogue's size: the count, the page, and the
    page's barcodes. ``active_only=True`` (or ``active=True``) lists products on sale,
    ``active=False`` only retired ones.
    """
    typed = (q if isinstance(q, str) else "").strip()[:120]
    typed = "".join(ch for ch in typed if ord(ch) >= 0x20 and ord(ch) != 0x7F)  # PostgreSQL refuses NUL
    q = unicodedata.normalize("NFKC", typed)  # for codes and initials: full-width letters and digits
    page = max(1, int(page)) if isinstance(page, int) and not isinstance(page, bool) else 1
    per_page = min(MAX_PER_PAGE, max(1, per_page)) if isinstance(per_page, int) else 50
    where = []
    if active_only:
        where.append(Product.active.is_(True))
    if active is not None:
        where.append(Product.active.is_(bool(active)))
    if category_id:
        where.append(Product.category_id == category_id)
    if supplier_id:
        where.append(Product.supplier_id == supplier_id)
    rank: Any = literal(9)
    if q:
        lowered = q.lower()
        like = _like_escape(lowered)
        sku = func.lower(Product.sku)
        codes = barcode_rules.scan_variants(q.replace(" ", "").upper())
        barcode_hit = Product.id.in_(select(Barcode.product_id).where(Barcode.code.in_(codes)))
        name = func.lower(Product.name)
        # Names keep full-width punctuation (（4片装）): match both what was typed and its ASCII form.
        name_likes = sorted({_like_escape(typed.lower()), like})
        matches = [sku.like(f"{like}%", escape="\\"), barcode_hit]
        matches += [name.like(f"%{text}%", escape="\\") for text in name_likes]
        rank_cases = [
            (sku == lowered, 0),
            (barcode_hit, 0),
            (sku.like(f"{like}%", escape="\\"), 1),
        ]
        initials = _NOT_ALNUM.sub("", lowered)
        if initials and initials == lowered.replace(" ", ""):  # only Latin letters and digits typed
            init_like = _like_escape(initials)
            matches.append(Product.pinyin_initials.like(f"%{init_like}%", escape="\\"))
            rank_cases.append((Product.pinyin_initials.like(f"{init_like}%", escape="\\"), 2))
        rank_cases += [(name.like(f"{text}%", escape="\\"), 3) for text in name_likes]
        where.append(or_(*matches))
        rank = case(*rank_cases, else_=4)
    total = s.scalar(select(func.count()).select_from(Product).where(*where)) or 0
    items = list(s.scalars(
        select(Product)
        .where(*where)
        .options(joinedload(Product.category), joinedload(Product.supplier), selectinload(Product.barcodes))
        .order_by(rank, Product.active.desc(), Product.sku)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).unique())
    return Page(items=items, total=total, page=page, per_page=per_page)


# --- one product's page ----------------------------------------------------------------------------

def product_detail(s: Session, product_id: int, *, today: Optional[dt.date] = None) -> dict:
    """Everything the product page shows: the product, its barcodes, price history (newest first),
    whether it is certified today and by which certificates, and its stock at each real location."""
    product = get_product(s, product_id)
    today = today or local_today()
    history = list(s.scalars(
        select(PriceChange).where(PriceChange.product_id == product.id)
        .order_by(PriceChange.changed_at.desc(), PriceChange.id.desc())
    ))
    certificates = list(s.scalars(
        select(Certificate).where(Certificate.products.any(Product.id == product.id))
        .options(joinedload(Certificate.supplier))
        .order_by(Certificate.valid_to.desc(), Certificate.number)
    ))
    stock_rows = s.execute(
        select(Location, StockLevel.qty_milli)
        .join(StockLevel, StockLevel.location_id == Location.id)
        .where(StockLevel.product_id == product.id)
        .order_by(Location.code)
    ).all()
    stock = [{"location": loc, "qty_milli": qty} for loc, qty in stock_rows if not loc.is_virtual]
    certification: Certification = certification_on(s, product.id, today)
    return {
        "product": product,
        "barcodes": list(product.barcodes),
        "price_history": history,
        "certification": certification,
        "certified_today": certification.certified,
        "certificates": certificates,
        "stock": stock,
        "stock_total_milli": sum(row["qty_milli"] for row in stock),
        "origin": product.origin(),
    }


# --- scale-label rules and the till's scan -------------------------------------------------------

@dataclass(frozen=True)
class ScanResult:
    """What a scanned code means. A barcode or sku gives ``qty_milli=None`` (the till adds one
    piece); a weight label gives grams (= qty_milli of a per-kg product); a price label gives the
    amount and the quantity it buys at the product's price (rounded half up to the gram)."""

    product_id: int
    qty_milli: Optional[int]
    amount_fen: Optional[int]
    source: Literal["barcode", "sku", "scale_weight", "scale_price"]


def list_barcode_rules(s: Session, *, active_only: bool = False) -> list[BarcodeRule]:
    """Scale-label rules in the order a scan tries them: highest priority first."""
    query = select(BarcodeRule).order_by(BarcodeRule.priority.desc(), BarcodeRule.id)
    if active_only:
        query = query.where(BarcodeRule.active.is_(True))
    return list(s.scalars(query))


def scale_label_patterns(s: Session) -> list[str]:
    """The patterns a scan tries, highest priority first: the active rules, or, when the hall has
    configured no rule at all, the common default ``2{PPPPP}{WWWWW}C`` (inventory.scale)."""
    rules = list_barcode_rules(s)
    if not rules:
        return [DEFAULT_SCALE_RULE]
    return [r.pattern for r in rules if r.active]


def ensure_default_barcode_rule(s: Session, *, actor_id: Optional[int] = None) -> Optional[BarcodeRule]:
    """Record the default scale-label rule when the hall has none at all (a new database); None
    when rules exist already (the manager's choice stands, a rule switched off stays off)."""
    if s.scalar(select(BarcodeRule.id).limit(1)) is not None:
        return None
    return add_barcode_rule(s, name=DEFAULT_SCALE_RULE_NAME, pattern=DEFAULT_SCALE_RULE, actor_id=actor_id)


def add_barcode_rule(s: Session, *, name: str, pattern: str, priority: int = 0,
                     actor_id: Optional[int] = None) -> BarcodeRule:
    name = fields.text(name, field="name", label=_l("规则名称"), max_len=60, required=True)
    parsed = parse_rule(pattern)  # RuleError (a ValidationError) says what is wrong
    if len(parsed.pattern) > 40:
        raise ValidationError(_l("条码格式最多 40 个字符"), "pattern")
    priority = fields.integer(priority, field="priority", label=_l("优先级"), minimum=-1000, maximum=1000)
    for other in list_barcode_rules(s):
        if other.pattern == parsed.pattern:
            raise ValidationError(_l("已有相同的规则：%(name)s", name=other.name), "pattern")
        theirs = parse_rule(other.pattern)
        if other.active and theirs.prefix == parsed.prefix and theirs.length == parsed.length:
            raise ValidationError(
                _l("与规则「%(name)s」的前缀和位数相同，扫描时无法区分", name=other.name), "pattern"
            )
    rule = BarcodeRule(name=name, pattern=parsed.pattern, priority=priority, active=True)
    s.add(rule)
    s.flush()
    record(s, user_id=actor_id, action="barcode_rule.create", entity="barcode_rule", entity_id=rule.id,
           after={"name": name, "pattern": parsed.pattern, "priority": priority})
    return rule


def set_barcode_rule_active(s: Session, rule_id: int, active: bool, actor_id: Optional[int] = None) -> BarcodeRule:
    rule = s.get(BarcodeRule, rule_id) if isinstance(rule_id, int) else None
    if rule is None:
        raise NotFound(_l("条码规则不存在"))
    active = fields.boolean(active, field="active", label=_l("启用"))
    if active and not rule.active:
        mine = parse_rule(rule.pattern)
        for other in list_barcode_rules(s, active_only=True):
            theirs = parse_rule(other.pattern)
            if theirs.prefix == mine.prefix and theirs.length == mine.length:
                raise ValidationError(
                    _l("与规则「%(name)s」的前缀和位数相同，扫描时无法区分", name=other.name), "pattern"
                )
    _switch(s, rule, active, actor_id=actor_id, entity="barcode_rule", on="barcode_rule.activate",
            off="barcode_rule.deactivate")
    return rule


def resolve_scan(s: Session, code: str) -> Optional[ScanResult]:
    """What the till does with a scanned or typed code, in this order: a product barcode; a
    scale label read by the active rules (highest priority first); a sku. None for a code
    nobody knows (or a scale label whose check digit fails: a misread, never a guess).

    Raises ValidationError only for a label the scale printed for a product that cannot be sold
    that way (not sold by weight, or a price label for a product priced at 0)."""
    if not isinstance(code, str):
        return None
    raw = unicodedata.normalize("NFKC", code).strip()
    if not raw or len(raw) > 64 or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        return None  # a scanner never sends control characters; PostgreSQL refuses NUL

    try:
        scanned = barcode_rules.normalise(raw)
    except ValidationError:
        return None
    variants = barcode_rules.scan_variants(scanned)
    product_id = s.scalar(select(Barcode.product_id).where(Barcode.code.in_(variants)).order_by(Barcode.id).limit(1))
    if product_id is not None:
        return ScanResult(product_id, None, None, "barcode")
    if scanned.isascii() and scanned.isdigit():
        patterns = scale_label_patterns(s)
        for variant in variants:
            label = decode_scale_label(variant, patterns) if patterns else None
            if label is not None:
                return _from_label(s, label)
    product_id = s.scalar(select(Product.id).where(Product.sku == raw))
    if product_id is None:
        product_id = s.scalar(select(Product.id).where(func.upper(Product.sku) == raw.upper()).order_by(Product.id).limit(1))
    if product_id is not None:
        return ScanResult(product_id, None, None, "sku")
    return None


def _from_label(s: Session, label) -> Optional[ScanResult]:
    product = s.scalar(select(Product).where(Product.scale_plu == label.plu))
    if product is None:
        return None
    if not product.sold_by_weight:
        raise ValidationError(_l("秤签上的商品「%(name)s」不是称重销售的商品，请检查秤码设置", name=product.name))
    if label.weight_grams is not None:
        if label.weight_grams <= 0:
            raise ValidationError(_l("秤签重量为 0，请重新称重"))
        return ScanResult(product.id, label.weight_grams, None, "scale_weight")
    amount = label.price_fen
    if amount is None or amount <= 0:
        raise ValidationError(_l("秤签金额为 0，请重新称重"))
    if product.price_fen <= 0:
        raise ValidationError(_l("商品「%(name)s」售价为 0，无法按金额秤签计算重量", name=product.name))
    # qty = amount × 1000 / price, rounded half up, in integers
    qty_milli = (2 * amount * 1000 + product.price_fen) // (2 * product.price_fen)
    return ScanResult(product.id, qty_milli, amount, "scale_price")
