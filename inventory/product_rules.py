"""What a product may be: the rules for each of its fields (sku, name, prices, tax codes, shelf
life, scale PLU …) and its barcodes, applied when a product is created or changed by hand or by
an import, and the product as plain values for audit events and the import preview."""
from __future__ import annotations

import re
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import barcodes as barcode_rules
from . import fields
from .errors import ValidationError
from .models import Barcode, BarcodeKind, Category, Product, Supplier, Unit, VatRate

MAX_PRICE_FEN = 99_999_999          # ¥999,999.99: far above anything the hall sells
MAX_SHELF_LIFE_DAYS = 36_500
MAX_SCALE_PLU = 99_999_999
SKU_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
TAX_CODE_RE = re.compile(r"[0-9]{19}")
EXEMPTION_CODE_RE = re.compile(r"[0-9A-Za-z]{1,20}")

LABELS = {
    "sku": _l("商品编码"),
    "name": _l("名称"),
    "category_id": _l("分类"),
    "supplier_id": _l("供应商"),
    "unit": _l("单位"),
    "sold_by_weight": _l("称重销售"),
    "price_fen": _l("售价"),
    "cost_fen": _l("进价"),
    "vat": _l("税率"),
    "vat_exemption_code": _l("免税代码"),
    "tax_code": _l("税收分类编码"),
    "shelf_life_days": _l("保质期（天）"),
    "scale_plu": _l("秤码"),
    "origin_county": _l("产地县"),
    "origin_county_code": _l("县级行政区划代码"),
    "origin_township": _l("产地乡镇"),
    "origin_village": _l("产地村"),
    "barcodes": _l("条码"),
}
PRODUCT_FIELDS = frozenset(LABELS)
AUDITED_FIELDS = tuple(f for f in LABELS if f not in ("barcodes", "price_fen"))


def _text(values: dict, key: str, max_len: int, *, required: bool = False, code: bool = False) -> Optional[str]:
    return fields.text(values[key], field=key, label=LABELS[key], max_len=max_len, required=required, code=code)


def _enum(enum_cls, value: Any, key: str, message):
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        try:
            return enum_cls(value.strip())
        except ValueError:
            pass
    raise ValidationError(message, key)


def clean_product(s: Session, values: dict, current: Optional[Product], *, check_sku: bool = True) -> dict:
    """Check the given product fields; return them cleaned. ``current`` is the product being
    changed (None when creating), for the rules that look at the whole product. The importer,
    which looks skus up in bulk, passes ``check_sku=False`` to skip the one-by-one query."""
    unknown = set(values) - PRODUCT_FIELDS
    if unknown:
        raise TypeError(f"unknown product fields: {sorted(unknown)}")
    out: dict[str, Any] = {}
    if "sku" in values:
        sku = _text(values, "sku", 32, required=True, code=True)
        if not SKU_RE.fullmatch(sku):
            raise ValidationError(_l("商品编码只能包含字母、数字、点、下划线和连字符：%(sku)s", sku=sku), "sku")
        clash = s.scalar(select(Product).where(Product.sku == sku)) if check_sku else None
        if clash is not None and clash is not current:
            raise ValidationError(_l("商品编码 %(sku)s 已被「%(name)s」使用", sku=sku, name=clash.name), "sku")
        out["sku"] = sku
    if "name" in values:
        out["name"] = _text(values, "name", 120, required=True)
    if "category_id" in values:
        category_id = fields.identifier(values["category_id"])
        if category_id is not None and s.get(Category, category_id) is None:
            raise ValidationError(_l("分类不存在"), "category_id")
        out["category_id"] = category_id
    if "supplier_id" in values:
        supplier_id = fields.identifier(values["supplier_id"])
        if supplier_id is not None and s.get(Supplier, supplier_id) is None:
            raise ValidationError(_l("供应商不存在"), "supplier_id")
        out["supplier_id"] = supplier_id
    if "unit" in values:
        out["unit"] = _enum(Unit, values["unit"], "unit", _l("单位只能是件（piece）或千克（kg）"))
    if "sold_by_weight" in values:
        out["sold_by_weight"] = fields.boolean(values["sold_by_weight"], field="sold_by_weight",
                                               label=LABELS["sold_by_weight"])
    if "price_fen" in values:
        out["price_fen"] = fields.integer(values["price_fen"], field="price_fen", label=LABELS["price_fen"],
                                          maximum=MAX_PRICE_FEN)
    if "cost_fen" in values:
        out["cost_fen"] = fields.integer(values["cost_fen"], field="cost_fen", label=LABELS["cost_fen"],
                                         maximum=MAX_PRICE_FEN, required=False)
    if "vat" in values:
        out["vat"] = _enum(VatRate, values["vat"], "vat", _l("税率只能是 9、13 或 exempt（免税）"))
    if "vat_exemption_code" in values:
        code = _text(values, "vat_exemption_code", 20, code=True)
        if code is not None and not EXEMPTION_CODE_RE.fullmatch(code):
            raise ValidationError(_l("免税代码只能包含字母和数字：%(code)s", code=code), "vat_exemption_code")
        out["vat_exemption_code"] = code
    if "tax_code" in values:
        code = _text(values, "tax_code", 19, code=True)
        if code is not None and not TAX_CODE_RE.fullmatch(code):
            raise ValidationError(_l("税收分类编码应为 19 位数字：%(code)s", code=code), "tax_code")
        out["tax_code"] = code
    if "shelf_life_days" in values:
        out["shelf_life_days"] = fields.integer(values["shelf_life_days"], field="shelf_life_days",
                                                label=LABELS["shelf_life_days"], minimum=1,
                                                maximum=MAX_SHELF_LIFE_DAYS, required=False)
    if "scale_plu" in values:
        plu = fields.integer(values["scale_plu"], field="scale_plu", label=LABELS["scale_plu"],
                             maximum=MAX_SCALE_PLU, required=False)
        if plu is not None:
            clash = s.scalar(select(Product).where(Product.scale_plu == plu))
            if clash is not None and clash is not current:
                raise ValidationError(_l("秤码 %(plu)s 已被「%(name)s」使用", plu=plu, name=clash.name), "scale_plu")
        out["scale_plu"] = plu
    for key in ("origin_county", "origin_township", "origin_village"):
        if key in values:
            out[key] = _text(values, key, 60)
    if "origin_county_code" in values:
        out["origin_county_code"] = fields.county_code(values["origin_county_code"])
    if "barcodes" in values:
        out["barcodes"] = clean_barcodes(s, values["barcodes"], current)

    # Rules on the product as a whole, as it will be.
    def final(key: str, default: Any = None) -> Any:
        if key in out:
            return out[key]
        return getattr(current, key) if current is not None else default

    unit, by_weight = final("unit", Unit.PIECE), final("sold_by_weight", False)
    if by_weight and unit != Unit.KG:
        raise ValidationError(_l("称重销售的商品单位必须是千克（kg）"), "unit")
    if final("scale_plu") is not None and not by_weight:
        raise ValidationError(_l("只有称重销售的商品才能设置秤码"), "scale_plu")
    if final("vat", VatRate.AGRICULTURAL_9) != VatRate.EXEMPT and final("vat_exemption_code"):
        if out.get("vat_exemption_code"):
            raise ValidationError(_l("只有免税商品才填写免税代码"), "vat_exemption_code")
        out["vat_exemption_code"] = None  # the product is no longer exempt: its code goes too
    return out


def clean_barcodes(s: Session, codes: Any, current: Optional[Product]) -> list[tuple[str, BarcodeKind]]:
    if isinstance(codes, str) or not isinstance(codes, (list, tuple)):
        raise ValidationError(_l("条码应为一组条码"), "barcodes")
    cleaned: list[tuple[str, BarcodeKind]] = []
    seen: set[str] = set()
    for raw in codes:
        try:
            code, kind = barcode_rules.validate(raw)
        except ValidationError as error:
            raise ValidationError(error.message, "barcodes") from None
        if code in seen:
            continue
        seen.add(code)
        check_barcode_free(s, code, current)
        cleaned.append((code, kind))
    return cleaned


def check_barcode_free(s: Session, code: str, owner: Optional[Product]) -> None:
    """Refuse a code that another product already carries (a UPC-A and its 13-digit form with a
    leading 0 are the same code)."""
    clash = s.execute(
        select(Product.id, Product.sku, Product.name)
        .join(Barcode, Barcode.product_id == Product.id)
        .where(Barcode.code.in_(barcode_rules.scan_variants(code)))
        .limit(1)
    ).first()
    if clash is not None and (owner is None or clash.id != owner.id):
        raise ValidationError(
            _l("条码 %(code)s 已属于商品「%(name)s」（%(sku)s）", code=code, name=clash.name, sku=clash.sku),
            "barcodes",
        )


def plain_value(value: Any) -> Any:
    return value.value if isinstance(value, (Unit, VatRate, BarcodeKind)) else value


def product_snapshot(product: Product) -> dict:
    """The product's fields as plain values (for audit events and the import preview)."""
    data = {key: plain_value(getattr(product, key)) for key in LABELS if key != "barcodes"}
    data["barcodes"] = [b.code for b in product.barcodes]
    data["active"] = product.active
    return data
