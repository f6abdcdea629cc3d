"""The counter registry: counters, their tokens and their planograms.

A counter (K001 … K126) authenticates with a bearer token issued by a manager (page or
``songtao kiosk-token``). The token is shown once and stored only as its SHA-256 hex digest in
``Kiosk.token_hash``: issuing a new one replaces (revokes) the old. A planogram is the list of a
counter's slots, each holding one product with a par level (capacity, whole pieces) and the price
the counter charges; a change takes effect at the counter's next planogram fetch.

Functions take a Session and plain values, never commit, and write an audit event for every
change (never the token itself).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from typing import Any, Iterable, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from inventory.audit import record
from inventory.certification import certified_product_ids
from inventory.localtime import local_today, utcnow
from inventory.models import Location, LocationKind, Product, StockLevel
from kiosks.models import Kiosk, KioskStatus, PlanogramSlot, SiteType
from pos.core.errors import NotFound, PosError

TOKEN_BYTES = 32
CODE_PATTERN = re.compile(r"^K\d{3,5}$")
SLOT_PATTERN = re.compile(r"^[A-Z]{1,2}\d{1,3}$")
MAX_PAR = 999
MAX_PRICE_FEN = 99_999_999


class KioskError(PosError):
    """A registry or planogram change the rules refuse (422), or a refused counter (403)."""


class KioskRetired(KioskError):
    """The counter is retired: its token is refused and no new one is issued."""


# --- counters ---------------------------------------------------------------------------------------

def valid_code(code: Any) -> bool:
    return isinstance(code, str) and bool(CODE_PATTERN.match(code))


def get_kiosk(s: Session, code: Any) -> Kiosk:
    """The counter with this code; NotFound otherwise (any text, even absurd, is safe to pass)."""
    kiosk = s.scalars(select(Kiosk).where(Kiosk.code == code)).first() if valid_code(code) else None
    if kiosk is None:
        raise NotFound(_l("专柜不存在：%(code)s", code=str(code)[:16]))
    return kiosk


def create_kiosk(s: Session, *, code: str, site_name: str, host_org: str, town: str, address: str,
                 site_type: str = SiteType.OTHER.value, latitude: Optional[float] = None,  # ok-float: GPS
                 longitude: Optional[float] = None, food_filing_no: Optional[str] = None,  # ok-float: GPS
                 status: str = KioskStatus.ACTIVE.value, actor_id: Optional[int] = None) -> Kiosk:
    """A new counter with its own stock location (code = the counter's code)."""
    if not valid_code(code):
        raise KioskError(_l("专柜编号格式应为 K001"), "code")
    if s.scalar(select(Kiosk.id).where(Kiosk.code == code)) is not None or \
            s.scalar(select(Location.id).where(Location.code == code)) is not None:
        raise KioskError(_l("专柜编号 %(code)s 已存在", code=code), "code")
    values = _validated(dict(site_name=site_name, host_org=host_org, town=town, address=address,
                             site_type=site_type, latitude=latitude, longitude=longitude,
                             food_filing_no=food_filing_no, status=status))
    location = Location(code=code, name=f"消费专柜 {code}", kind=LocationKind.KIOSK,
                        active=values["status"] != KioskStatus.RETIRED)
    s.add(location)
    s.flush()
    kiosk = Kiosk(code=code, location_id=location.id, door_open=False, **values)
    s.add(kiosk)
    s.flush()
    record(s, user_id=actor_id, action="kiosk.create", entity="kiosk", entity_id=code, after=_audit_view(kiosk))
    return kiosk


EDITABLE = ("site_name", "host_org", "site_type", "town", "address", "latitude", "longitude",
            "food_filing_no", "status")
_TEXT_LIMITS = {"site_name": (120, _l("站点名称")), "host_org": (120, _l("所在单位")), "town": (30, _l("镇街")),
                "address": (200, _l("地址")), "food_filing_no": (40, _l("食品经营备案编号"))}


def _validated(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in EDITABLE:
            raise KioskError(_l("不能修改字段 %(field)s", field=name), name)
        if name in _TEXT_LIMITS:
            limit, label = _TEXT_LIMITS[name]
            if value is None and name == "food_filing_no":
                out[name] = None
                continue
            if not isinstance(value, str) or not value.strip():
                if name == "food_filing_no":
                    out[name] = None
                    continue
                raise KioskError(_l("请填写%(label)s", label=label), name)
            value = value.strip()
            if len(value) > limit or not value.isprintable():
                raise KioskError(_l("%(label)s最多 %(n)s 个字符", label=label, n=limit), name)
            out[name] = value
        elif name in ("latitude", "longitude"):
            if value is None or value == "":
                out[name] = None
                continue
            bound = 90 if name == "latitude" else 180
            try:
                number = float(value)  # ok-float: GPS
            except (TypeError, ValueError):
                number = None
            if number is None or isinstance(value, bool) or not -bound <= number <= bound:
                raise KioskError(_l("坐标不正确（纬度 −90…90，经度 −180…180）"), name)
            out[name] = number
        elif name == "status":
            try:
                out[name] = KioskStatus(getattr(value, "value", value))
            except ValueError:
                raise KioskError(_l("专柜状态不正确"), name) from None
        elif name == "site_type":
            try:
                out[name] = SiteType(getattr(value, "value", value))
            except ValueError:
                raise KioskError(_l("站点类型不正确"), name) from None
    return out


def validated_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The registry fields as stored (trimmed text, numbers, enums), or KioskError naming the
    first field refused: the one check of a counter's fields, for forms and imports alike."""
    return _validated(fields)


def _audit_view(kiosk: Kiosk) -> dict[str, Any]:
    return {name: getattr(getattr(kiosk, name), "value", getattr(kiosk, name)) for name in EDITABLE}


def update_kiosk(s: Session, code: str, *, actor_id: Optional[int], **fields: Any) -> Kiosk:
    """Change a counter's registry fields (site_name, host_org, site_type, town, address, latitude,
    longitude, food_filing_no, status), validated and audited. Retiring a counter also retires its
    stock location; its token stays stored but is refused from then on."""
    kiosk = get_kiosk(s, code)
    values = _validated(fields)
    before = _audit_view(kiosk)
    for name, value in values.items():
        setattr(kiosk, name, value)
    if "status" in values:
        location = s.get(Location, kiosk.location_id)
        location.active = values["status"] != KioskStatus.RETIRED
    after = _audit_view(kiosk)
    if after != before:
        record(s, user_id=actor_id, action="kiosk.update", entity="kiosk", entity_id=kiosk.code,
               before={k: v for k, v in before.items() if after[k] != v},
               after={k: v for k, v in after.items() if before[k] != v})
    s.flush()
    return kiosk


# --- tokens -----------------------------------------------------------------------------------------

def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(s: Session, code: str, *, actor_id: Optional[int] = None) -> str:
    """A new token for the counter (32 random bytes, URL-safe); the old one stops working at once.
    Returned once: only its hash is stored."""
    kiosk = get_kiosk(s, code)
    if kiosk.status == KioskStatus.RETIRED:
        raise KioskRetired(_l("专柜已停用"), "status")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    had_token = kiosk.token_hash is not None
    kiosk.token_hash = token_hash(token)
    kiosk.token_issued_at = utcnow()
    record(s, user_id=actor_id, action="kiosk.token_issued", entity="kiosk", entity_id=kiosk.code,
           before={"had_token": had_token}, after={"token_issued_at": kiosk.token_issued_at.isoformat()})
    s.flush()
    return token


def revoke_token(s: Session, code: str, *, actor_id: Optional[int]) -> bool:
    """Revoke the counter's token (it is refused from now on). False when it had none."""
    kiosk = get_kiosk(s, code)
    if kiosk.token_hash is None:
        return False
    kiosk.token_hash = None
    kiosk.token_issued_at = None
    record(s, user_id=actor_id, action="kiosk.token_revoked", entity="kiosk", entity_id=kiosk.code,
           before={"had_token": True}, after={"had_token": False})
    s.flush()
    return True


def kiosk_for_token(s: Session, token: Any) -> Optional[Kiosk]:
    """The counter a bearer token belongs to (whatever its status), or None."""
    if not isinstance(token, str) or not 20 <= len(token) <= 128 or not token.isascii() or not token.isprintable():
        return None
    return s.scalars(select(Kiosk).where(Kiosk.token_hash == token_hash(token))).first()


def is_serving_counter_token(s: Session, token: Any) -> bool:
    """Whether a bearer token belongs to a counter that is not retired (it may read the API's
    OpenAPI document, as counter integrators do)."""
    kiosk = kiosk_for_token(s, token)
    return kiosk is not None and kiosk.status != KioskStatus.RETIRED


# --- planograms -------------------------------------------------------------------------------------

def _slot_name(slot: Any) -> str:
    name = slot.strip().upper() if isinstance(slot, str) else ""
    if not SLOT_PATTERN.match(name):
        raise KioskError(_l("货道编号格式应为 A1、B12 这样"), "slot")
    return name


def _int(value: Any, low: int, high: int, message: Any, field: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise KioskError(message, field)
    return value


def _slot_product(s: Session, product_id: Any) -> Product:
    pid = _int(product_id, 1, 2_147_483_647, _l("请选择商品"), "product_id")
    product = s.get(Product, pid)
    if product is None:
        raise KioskError(_l("商品不存在"), "product_id")
    if not product.active:
        raise KioskError(_l("「%(product)s」已停售", product=product.name), "product_id")
    if product.weighed:
        raise KioskError(_l("「%(product)s」按重量销售，不能放入专柜", product=product.name), "product_id")
    return product


def set_slot(s: Session, code: str, slot: str, *, product_id: int, par: int, price_fen: int,
             actor_id: Optional[int]) -> PlanogramSlot:
    """Put a product in a slot (new or replacing what was there) with its par and price."""
    kiosk = get_kiosk(s, code)
    name = _slot_name(slot)
    product = _slot_product(s, product_id)
    par = _int(par, 1, MAX_PAR, _l("容量必须是 1–%(n)s 件", n=MAX_PAR), "par")
    price_fen = _int(price_fen, 0, MAX_PRICE_FEN, _l("售价必须是不小于零的整数（分）"), "price_fen")
    row = s.scalars(select(PlanogramSlot).where(PlanogramSlot.kiosk_id == kiosk.id, PlanogramSlot.slot == name)).first()
    before = None
    if row is None:
        row = PlanogramSlot(kiosk_id=kiosk.id, slot=name, product_id=product.id, par=par, price_fen=price_fen)
        s.add(row)
    else:
        before = {"product_id": row.product_id, "par": row.par, "price_fen": row.price_fen}
        row.product_id, row.par, row.price_fen = product.id, par, price_fen
    after = {"product_id": product.id, "sku": product.sku, "par": par, "price_fen": price_fen}
    if before is None or any(before[k] != after[k] for k in before):
        record(s, user_id=actor_id, action="kiosk.slot_set", entity="kiosk", entity_id=f"{kiosk.code}/{name}",
               before=before, after=after)
    s.flush()
    return row


def remove_slot(s: Session, code: str, slot: str, *, actor_id: Optional[int]) -> bool:
    """Empty a slot of the planogram. False when there was no such slot."""
    kiosk = get_kiosk(s, code)
    name = _slot_name(slot)
    row = s.scalars(select(PlanogramSlot).where(PlanogramSlot.kiosk_id == kiosk.id, PlanogramSlot.slot == name)).first()
    if row is None:
        return False
    before = {"product_id": row.product_id, "par": row.par, "price_fen": row.price_fen}
    s.delete(row)
    record(s, user_id=actor_id, action="kiosk.slot_removed", entity="kiosk", entity_id=f"{kiosk.code}/{name}",
           before=before)
    s.flush()
    return True


def copy_planogram(s: Session, from_code: str, to_codes: Iterable[str], *, actor_id: Optional[int]) -> int:
    """Replace the planograms of ``to_codes`` by a copy of ``from_code``'s. Returns how many
    counters were changed (the source itself and repeated codes are skipped)."""
    source = get_kiosk(s, from_code)
    template = [(r.slot, r.product_id, r.par, r.price_fen) for r in
                s.scalars(select(PlanogramSlot).where(PlanogramSlot.kiosk_id == source.id).order_by(PlanogramSlot.slot))]
    targets = [get_kiosk(s, code) for code in dict.fromkeys(to_codes) if code != source.code]
    for kiosk in targets:
        if kiosk.status == KioskStatus.RETIRED:
            raise KioskRetired(_l("专柜 %(code)s 已停用", code=kiosk.code), "to_codes")
    for kiosk in targets:
        s.execute(delete(PlanogramSlot).where(PlanogramSlot.kiosk_id == kiosk.id))
        s.add_all(PlanogramSlot(kiosk_id=kiosk.id, slot=slot, product_id=pid, par=par, price_fen=price)
                  for slot, pid, par, price in template)
        record(s, user_id=actor_id, action="kiosk.planogram_copied", entity="kiosk", entity_id=kiosk.code,
               after={"from": source.code, "slots": len(template)})
    s.flush()
    # The ORM's cached collections of the targets no longer match the rows.
    for kiosk in targets:
        s.expire(kiosk, ["slots"])
    return len(targets)


def planogram_slots(s: Session, kiosk_id: int) -> dict[str, tuple[int, int]]:
    """slot → (product_id, price_fen) of a counter's current planogram, in one query."""
    rows = s.execute(select(PlanogramSlot.slot, PlanogramSlot.product_id, PlanogramSlot.price_fen)
                     .where(PlanogramSlot.kiosk_id == kiosk_id))
    return {slot: (product_id, price) for slot, product_id, price in rows}


def planogram_view(s: Session, code: str, *, today: Optional[dt.date] = None) -> dict[str, Any]:
    """The counter's planogram as the counter API serves it: per slot the product, the price the
    counter charges, par, what is on hand at the counter in whole pieces (never below zero: a
    level driven negative by sales means "empty" to the counter) and whether the product is
    certified poverty-alleviation produce today."""
    kiosk = get_kiosk(s, code)
    rows = s.execute(
        select(PlanogramSlot.slot, Product.id, Product.sku, Product.name, PlanogramSlot.price_fen,
               PlanogramSlot.par, StockLevel.qty_milli)
        .join(Product, Product.id == PlanogramSlot.product_id)
        .outerjoin(StockLevel, (StockLevel.product_id == PlanogramSlot.product_id)
                   & (StockLevel.location_id == kiosk.location_id))
        .where(PlanogramSlot.kiosk_id == kiosk.id)
    ).all()
    certs = certified_product_ids(s, list({r[1] for r in rows}), today or local_today())
    rows.sort(key=lambda r: _slot_order(r[0]))
    return {"kiosk": kiosk.code, "slots": [
        {"slot": slot, "sku": sku, "name": name, "price_fen": price, "par": par,
         "on_hand": max(0, (qty or 0) // 1000), "certified": certs[pid].certified}
        for slot, pid, sku, name, price, par, qty in rows
    ]}


def _slot_order(slot: str) -> tuple:
    """A1, A2, …, A10 (not A1, A10, A2)."""
    letters = slot.rstrip("0123456789")
    digits = slot[len(letters):]
    return letters, int(digits) if digits else 0


__all__ = [
    "KioskError", "KioskRetired", "get_kiosk", "create_kiosk", "update_kiosk", "issue_token", "revoke_token",
    "kiosk_for_token", "token_hash", "set_slot", "remove_slot", "copy_planogram", "planogram_slots",
    "planogram_view", "valid_code", "is_serving_counter_token", "validated_fields",
]
