"""Buyer organisations of group purchases (unions, firms, government canteens …) and the prices
agreed with each of them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from inventory.audit import record
from inventory.credit_codes import normalise_credit_code
from inventory.errors import ValidationError
from inventory.models import Product
from pos.core.errors import Conflict, NotFound, PosError
from pos.group.models import Buyer, BuyerPrice
from pos.models import BuyerType

MAX_PRICE_FEN = 100_000_000  # ¥1,000,000 a unit: anything above is a typing mistake

# field → (maximum length, label for the message)
_TEXT_FIELDS = {
    "town": (40, _l("镇街")),
    "address": (200, _l("地址")),
    "contact_name": (40, _l("联系人")),
    "contact_phone": (30, _l("联系电话")),
    "invoice_title": (120, _l("发票抬头")),
    "tax_id": (20, _l("纳税人识别号")),
    "note": (500, _l("备注")),
}


@dataclass
class BuyerIn:
    name: str
    buyer_type: str
    uscc: Optional[str] = None
    town: Optional[str] = None
    address: Optional[str] = None
    contact_name: Optional[str] = None
    contact_phone: Optional[str] = None
    invoice_title: Optional[str] = None
    tax_id: Optional[str] = None
    note: Optional[str] = None
    active: bool = True


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PosError(_l("格式不正确"))
    return value.strip() or None


def _clean(data: BuyerIn) -> dict[str, Any]:
    name = _text(data.name)
    if not name:
        raise PosError(_l("请填写单位名称"), "name")
    if len(name) > 120:
        raise PosError(_l("单位名称最多 120 个字"), "name")
    try:
        buyer_type = BuyerType(data.buyer_type)
    except ValueError:
        raise PosError(_l("请选择单位类型"), "buyer_type") from None
    try:
        code = normalise_credit_code(_text(data.uscc), field="uscc")
    except ValidationError:
        raise PosError(_l("统一社会信用代码不正确（18 位，含校验位）"), "uscc") from None
    values = {"name": name, "buyer_type": buyer_type, "uscc": code, "active": bool(data.active)}
    for field, (limit, label) in _TEXT_FIELDS.items():
        value = _text(getattr(data, field))
        if value and len(value) > limit:
            raise PosError(_l("%(field)s最多 %(n)s 个字", field=label, n=limit), field)
        values[field] = value
    return values


def _unique(s: Session, values: dict[str, Any], buyer_id: Optional[int] = None) -> None:
    """Refuse a second buyer with the same name or credit code, with a message saying which."""
    for field, message in (("name", _l("已有同名的买方单位")), ("uscc", _l("已有相同统一社会信用代码的买方单位"))):
        value = values.get(field)
        if value is None:
            continue
        other = s.scalar(select(Buyer.id).where(getattr(Buyer, field) == value, Buyer.id != (buyer_id or 0)))
        if other is not None:
            raise Conflict(message, field)


def _snapshot(buyer: Buyer) -> dict[str, Any]:
    return {f: getattr(buyer, f) for f in ("name", "buyer_type", "uscc", *_TEXT_FIELDS, "active")}


def create_buyer(s: Session, data: BuyerIn, *, actor_id: Optional[int]) -> Buyer:
    values = _clean(data)
    _unique(s, values)
    buyer = Buyer(**values)
    s.add(buyer)
    s.flush()
    record(s, user_id=actor_id, action="buyer.create", entity="buyer", entity_id=buyer.id, after=_snapshot(buyer))
    return buyer


def update_buyer(s: Session, buyer_id: int, data: BuyerIn, *, actor_id: Optional[int]) -> Buyer:
    buyer = get_buyer(s, buyer_id)
    values = _clean(data)
    _unique(s, values, buyer.id)
    before = _snapshot(buyer)
    for field, value in values.items():
        setattr(buyer, field, value)
    s.flush()
    after = _snapshot(buyer)
    if after != before:
        record(s, user_id=actor_id, action="buyer.update", entity="buyer", entity_id=buyer.id,
               before=before, after=after)
    return buyer


def get_buyer(s: Session, buyer_id: Any) -> Buyer:
    buyer = s.get(Buyer, buyer_id) if isinstance(buyer_id, int) and not isinstance(buyer_id, bool) else None
    if buyer is None:
        raise NotFound(_l("买方单位不存在"), "buyer_id")
    return buyer


def list_buyers(s: Session, *, q: Optional[str] = None, buyer_type: Optional[str] = None,
                include_inactive: bool = False) -> list[Buyer]:
    stmt = select(Buyer)
    if not include_inactive:
        stmt = stmt.where(Buyer.active.is_(True))
    if buyer_type:
        try:
            stmt = stmt.where(Buyer.buyer_type == BuyerType(buyer_type))
        except ValueError:
            return []
    if q and q.strip():
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Buyer.name.ilike(like), Buyer.town.ilike(like), Buyer.uscc.ilike(like)))
    return list(s.scalars(stmt.order_by(Buyer.buyer_type, Buyer.name)))


# --- agreed prices ---------------------------------------------------------------------------------

def set_buyer_price(s: Session, buyer_id: int, *, product_id: Any, unit_price_fen: Optional[int],
                    actor_id: Optional[int]) -> None:
    """Agree a price with a buyer for a product (None: drop the agreement, the list price applies)."""
    buyer = get_buyer(s, buyer_id)
    product = s.get(Product, product_id) if isinstance(product_id, int) and not isinstance(product_id, bool) else None
    if product is None:
        raise NotFound(_l("商品不存在"), "product_id")
    current = s.get(BuyerPrice, (buyer.id, product.id))
    before = current.unit_price_fen if current else None
    if unit_price_fen is None:
        if current is not None:
            s.execute(delete(BuyerPrice).where(BuyerPrice.buyer_id == buyer.id, BuyerPrice.product_id == product.id))
    else:
        if not isinstance(unit_price_fen, int) or isinstance(unit_price_fen, bool) or not 0 <= unit_price_fen <= MAX_PRICE_FEN:
            raise PosError(_l("协议价格不正确"), "unit_price_fen")
        if current is None:
            s.add(BuyerPrice(buyer_id=buyer.id, product_id=product.id, unit_price_fen=unit_price_fen))
        else:
            current.unit_price_fen = unit_price_fen
    s.flush()
    if before != unit_price_fen:
        record(s, user_id=actor_id, action="buyer.price", entity="buyer", entity_id=buyer.id,
               before={"product_id": product.id, "sku": product.sku, "unit_price_fen": before},
               after={"product_id": product.id, "sku": product.sku, "unit_price_fen": unit_price_fen})


def agreed_prices(s: Session, buyer_id: int, product_ids: list[int]) -> dict[int, int]:
    if not product_ids:
        return {}
    return dict(s.execute(select(BuyerPrice.product_id, BuyerPrice.unit_price_fen)
                          .where(BuyerPrice.buyer_id == buyer_id, BuyerPrice.product_id.in_(product_ids))).all())


def buyer_prices(s: Session, buyer_id: int) -> list[dict[str, Any]]:
    rows = s.execute(
        select(Product.id, Product.sku, Product.name, Product.unit, Product.price_fen, BuyerPrice.unit_price_fen)
        .join(BuyerPrice, BuyerPrice.product_id == Product.id)
        .where(BuyerPrice.buyer_id == buyer_id).order_by(Product.sku)
    ).all()
    return [{"product_id": pid, "sku": sku, "name": name, "unit": unit.value if hasattr(unit, "value") else unit,
             "list_price_fen": list_price, "unit_price_fen": agreed}
            for pid, sku, name, unit, list_price, agreed in rows]


__all__ = ["BuyerIn", "create_buyer", "update_buyer", "get_buyer",
           "list_buyers", "set_buyer_price", "agreed_prices", "buyer_prices"]
