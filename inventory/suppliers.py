"""Suppliers (cooperatives and firms) and their poverty-alleviation certificates (扶贫产品认定证书).

A certificate names the products it covers and the local dates it is valid (both inclusive).
Editing a certificate is audited and never touches a sale line: sale lines keep the snapshot taken
when they were sold (see inventory.certification).
"""
from __future__ import annotations

import datetime as dt
import os
from typing import Any, Iterable, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from . import fields
from .audit import record
from .credit_codes import normalise_credit_code
from .errors import NotFound, ValidationError
from .files import attach, scan_extension
from .models import Certificate, Product, Supplier

PHONE_CHARS = set("0123456789+-() 转")

SUPPLIER_LABELS = {
    "name": _l("供应商名称"),
    "credit_code": _l("统一社会信用代码"),
    "province": _l("省份"),
    "origin_county": _l("产地县"),
    "origin_county_code": _l("县级行政区划代码"),
    "origin_township": _l("产地乡镇"),
    "origin_village": _l("产地村"),
    "contact_name": _l("联系人"),
    "contact_phone": _l("联系电话"),
    "active": _l("启用"),
}
CERTIFICATE_LABELS = {
    "number": _l("证书编号"),
    "issuer": _l("认定机构"),
    "supplier_id": _l("供应商"),
    "valid_from": _l("生效日期"),
    "valid_to": _l("失效日期"),
    "product_ids": _l("覆盖的商品"),
    "note": _l("备注"),
}


# --- suppliers -----------------------------------------------------------------------------------

def _clean_supplier(s: Session, values: dict, current: Optional[Supplier]) -> dict:
    unknown = set(values) - set(SUPPLIER_LABELS)
    if unknown:
        raise TypeError(f"unknown supplier fields: {sorted(unknown)}")
    out: dict[str, Any] = {}
    if "name" in values:
        name = fields.text(values["name"], field="name", label=SUPPLIER_LABELS["name"], max_len=120, required=True)
        clash = s.scalar(select(Supplier).where(Supplier.name == name))
        if clash is not None and clash is not current:
            raise ValidationError(_l("已有同名供应商：%(name)s", name=name), "name")
        out["name"] = name
    if "credit_code" in values:
        code = normalise_credit_code(values["credit_code"])
        if code is not None:
            clash = s.scalar(select(Supplier).where(Supplier.credit_code == code))
            if clash is not None and clash is not current:
                raise ValidationError(
                    _l("统一社会信用代码 %(code)s 已属于供应商「%(name)s」", code=code, name=clash.name), "credit_code"
                )
        out["credit_code"] = code
    if "province" in values:
        out["province"] = fields.text(values["province"], field="province", label=SUPPLIER_LABELS["province"],
                                      max_len=40, required=True)
    for key in ("origin_county", "origin_township", "origin_village", "contact_name"):
        if key in values:
            out[key] = fields.text(values[key], field=key, label=SUPPLIER_LABELS[key], max_len=60)
    if "origin_county_code" in values:
        out["origin_county_code"] = fields.county_code(values["origin_county_code"])
    if "contact_phone" in values:
        phone = fields.text(values["contact_phone"], field="contact_phone",
                            label=SUPPLIER_LABELS["contact_phone"], max_len=30)
        if phone is not None and (not set(phone) <= PHONE_CHARS or sum(c.isdigit() for c in phone) < 5):
            raise ValidationError(_l("联系电话格式不正确：%(phone)s", phone=phone), "contact_phone")
        out["contact_phone"] = phone
    if "active" in values:
        out["active"] = fields.boolean(values["active"], field="active", label=SUPPLIER_LABELS["active"])
    return out


def _supplier_snapshot(supplier: Supplier) -> dict:
    return {key: getattr(supplier, key) for key in SUPPLIER_LABELS}


def get_supplier(s: Session, supplier_id: int) -> Supplier:
    supplier = s.get(Supplier, supplier_id) if isinstance(supplier_id, int) else None
    if supplier is None:
        raise NotFound(_l("供应商不存在"))
    return supplier


def create_supplier(
    s: Session,
    *,
    name: str,
    credit_code: Optional[str] = None,
    province: str = "贵州省",
    origin_county: Optional[str] = None,
    origin_county_code: Optional[str] = None,
    origin_township: Optional[str] = None,
    origin_village: Optional[str] = None,
    contact_name: Optional[str] = None,
    contact_phone: Optional[str] = None,
    actor_id: Optional[int] = None,
) -> Supplier:
    cleaned = _clean_supplier(s, dict(
        name=name, credit_code=credit_code, province=province or "贵州省", origin_county=origin_county,
        origin_county_code=origin_county_code, origin_township=origin_township, origin_village=origin_village,
        contact_name=contact_name, contact_phone=contact_phone,
    ), None)
    supplier = Supplier(**cleaned, active=True)
    s.add(supplier)
    s.flush()
    record(s, user_id=actor_id, action="supplier.create", entity="supplier", entity_id=supplier.id,
           after=_supplier_snapshot(supplier))
    return supplier


def update_supplier(s: Session, supplier_id: int, *, actor_id: Optional[int] = None, **changes: Any) -> Supplier:
    supplier = get_supplier(s, supplier_id)
    cleaned = _clean_supplier(s, changes, supplier)
    before, after = {}, {}
    for key, value in cleaned.items():
        if getattr(supplier, key) != value:
            before[key], after[key] = getattr(supplier, key), value
            setattr(supplier, key, value)
    if after:
        record(s, user_id=actor_id, action="supplier.update", entity="supplier", entity_id=supplier.id,
               before=before, after=after)
        s.flush()
    return supplier


def list_suppliers(s: Session, *, active_only: bool = False) -> list[Supplier]:
    query = select(Supplier).order_by(Supplier.name)
    if active_only:
        query = query.where(Supplier.active.is_(True))
    return list(s.scalars(query))


# --- certificates --------------------------------------------------------------------------------

def _certificate_snapshot(cert: Certificate) -> dict:
    return {
        "number": cert.number,
        "issuer": cert.issuer,
        "supplier_id": cert.supplier_id,
        "valid_from": cert.valid_from.isoformat(),
        "valid_to": cert.valid_to.isoformat(),
        "product_ids": sorted(p.id for p in cert.products),
        "note": cert.note,
    }


def _products(s: Session, product_ids: Any) -> list[Product]:
    if isinstance(product_ids, (str, bytes)) or not isinstance(product_ids, Iterable):
        raise ValidationError(_l("覆盖的商品应为一组商品"), "product_ids")
    ids = []
    for pid in product_ids:
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise ValidationError(_l("商品编号应为整数：%(value)s", value=repr(pid)[:20]), "product_ids")
        if pid not in ids:
            ids.append(pid)
    if not ids:
        return []
    found = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_(ids)))}
    missing = [pid for pid in ids if pid not in found]
    if missing:
        raise ValidationError(_l("商品不存在：%(ids)s", ids=", ".join(map(str, missing[:5]))), "product_ids")
    return [found[pid] for pid in ids]


def _clean_certificate(s: Session, values: dict, current: Optional[Certificate]) -> dict:
    unknown = set(values) - set(CERTIFICATE_LABELS)
    if unknown:
        raise TypeError(f"unknown certificate fields: {sorted(unknown)}")
    out: dict[str, Any] = {}
    if "number" in values:
        number = fields.text(values["number"], field="number", label=CERTIFICATE_LABELS["number"], max_len=60,
                             required=True)
        clash = s.scalar(select(Certificate).where(Certificate.number == number))
        if clash is not None and clash is not current:
            raise ValidationError(_l("证书编号 %(number)s 已存在", number=number), "number")
        out["number"] = number
    if "issuer" in values:
        out["issuer"] = fields.text(values["issuer"], field="issuer", label=CERTIFICATE_LABELS["issuer"],
                                    max_len=120, required=True)
    if "supplier_id" in values:
        supplier_id = fields.identifier(values["supplier_id"])
        if supplier_id is not None and s.get(Supplier, supplier_id) is None:
            raise ValidationError(_l("供应商不存在"), "supplier_id")
        out["supplier_id"] = supplier_id
    for key in ("valid_from", "valid_to"):
        if key in values:
            out[key] = fields.date(values[key], field=key, label=CERTIFICATE_LABELS[key])
    if "product_ids" in values:
        out["products"] = _products(s, values["product_ids"])
    if "note" in values:
        note = fields.clean_text(values["note"]) if values["note"] is not None else ""
        if len(note) > 1000:
            raise ValidationError(_l("备注最多 1000 个字符"), "note")
        out["note"] = note or None
    valid_from = out.get("valid_from", current.valid_from if current is not None else None)
    valid_to = out.get("valid_to", current.valid_to if current is not None else None)
    if valid_from and valid_to and valid_to < valid_from:
        raise ValidationError(_l("失效日期不能早于生效日期"), "valid_to")
    return out


def get_certificate(s: Session, cert_id: int) -> Certificate:
    cert = s.get(Certificate, cert_id) if isinstance(cert_id, int) else None
    if cert is None:
        raise NotFound(_l("证书不存在"))
    return cert


def get_certificate_by_number(s: Session, number: str) -> Optional[Certificate]:
    return s.scalar(select(Certificate).where(Certificate.number == fields.clean_text(number)))


def create_certificate(
    s: Session,
    *,
    number: str,
    issuer: str,
    valid_from: dt.date,
    valid_to: dt.date,
    supplier_id: Optional[int] = None,
    product_ids: Iterable[int] = (),
    note: Optional[str] = None,
    actor_id: Optional[int] = None,
) -> Certificate:
    cleaned = _clean_certificate(s, dict(number=number, issuer=issuer, supplier_id=supplier_id,
                                         valid_from=valid_from, valid_to=valid_to,
                                         product_ids=product_ids, note=note), None)
    cert = Certificate(**cleaned)
    s.add(cert)
    s.flush()
    record(s, user_id=actor_id, action="certificate.create", entity="certificate", entity_id=cert.id,
           after=_certificate_snapshot(cert))
    return cert


def update_certificate(s: Session, cert_id: int, *, actor_id: Optional[int] = None, **changes: Any) -> Certificate:
    """Change a certificate (``product_ids`` replaces the products it covers). Audited as
    ``certificate.update`` with before and after; sale lines keep their snapshot."""
    cert = get_certificate(s, cert_id)
    cleaned = _clean_certificate(s, changes, cert)
    before = _certificate_snapshot(cert)
    for key, value in cleaned.items():
        if key == "products":
            if sorted(p.id for p in value) != sorted(p.id for p in cert.products):
                cert.products = value
        elif getattr(cert, key) != value:
            setattr(cert, key, value)
    s.flush()
    after = _certificate_snapshot(cert)
    changed = [k for k in after if after[k] != before[k]]
    if changed:
        record(s, user_id=actor_id, action="certificate.update", entity="certificate", entity_id=cert.id,
               before={k: before[k] for k in changed}, after={k: after[k] for k in changed})
    return cert


def set_certificate_scan(s: Session, cert_id: int, filename: str, data: bytes, instance_path: str | os.PathLike,
                         *, actor_id: Optional[int] = None) -> str:
    """Keep a scan of the certificate (PDF, JPEG or PNG) under instance/uploads/certificates/;
    returns its path relative to the instance folder."""
    cert = get_certificate(s, cert_id)
    return attach(s, cert, "scan_path", folder="certificates", ext=scan_extension(data, field="scan"), data=data,
                  instance_path=instance_path, filename=filename, actor_id=actor_id, action="certificate.scan",
                  entity="certificate")


def list_certificates(s: Session, *, supplier_id: Optional[int] = None) -> list[Certificate]:
    query = (select(Certificate)
             .options(selectinload(Certificate.products), selectinload(Certificate.supplier))
             .order_by(Certificate.valid_to.desc(), Certificate.number))
    if supplier_id is not None:
        query = query.where(Certificate.supplier_id == supplier_id)
    return list(s.scalars(query))


def expiring_certificates(s: Session, *, today: dt.date, within_days: int = 30) -> list[Certificate]:
    """Certificates that lapse within ``within_days`` days (valid_to in
    today … today + within_days), soonest first. ``(c.valid_to - today).days`` is the days left."""
    within_days = fields.integer(within_days, field="within_days", label=_l("天数"), maximum=3650)
    today = fields.date(today, field="today", label=_l("日期"))
    return list(s.scalars(
        select(Certificate)
        .where(Certificate.valid_to >= today, Certificate.valid_to <= today + dt.timedelta(days=within_days))
        .options(selectinload(Certificate.products), selectinload(Certificate.supplier))
        .order_by(Certificate.valid_to, Certificate.number)
    ))
