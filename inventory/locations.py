"""The site's places: the hall floor, its storeroom, the logistics base and the vans a hall sets
up itself (``add_location``, ``rename_location``, ``retire_location``, ``reactivate_location``),
and the bookkeeping places every ledger needs (``ensure_bookkeeping_locations``: supplier,
customer, loss, count differences), which ``songtao init-db`` creates.

A location that documents or moves point to is never deleted: it is retired (inactive), which
keeps its history readable and stops new goods going there. Every change is audited. Counters'
locations are made with the counter (``kiosks.registry.create_kiosk``), not here.
"""
from __future__ import annotations

import re
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import fields
from .audit import record
from .errors import NotFound, ValidationError
from .models import Location, LocationKind, StockLevel

# The kinds a hall sets up by hand, by the word the command line and the pages use.
SITE_KINDS: dict[str, LocationKind] = {
    "hall": LocationKind.HALL_FLOOR,
    "storeroom": LocationKind.HALL_STORE,
    "base": LocationKind.BASE,
    "van": LocationKind.VAN,
}
KIND_WORDS = {kind: word for word, kind in SITE_KINDS.items()}
KIND_LABELS = {
    "hall": _l("卖场"),
    "storeroom": _l("仓库"),
    "base": _l("物流基地"),
    "van": _l("补货车"),
}

# The bookkeeping (virtual) locations: where goods come from and go to outside the site.
BOOKKEEPING = (
    ("SUPPLIER", "供应商（虚拟）", LocationKind.SUPPLIER),
    ("CUSTOMER", "顾客（虚拟）", LocationKind.CUSTOMER),
    ("LOSS", "损耗（虚拟）", LocationKind.LOSS),
    ("COUNT-ADJ", "盘点差异（虚拟）", LocationKind.COUNT_ADJUSTMENT),
)
BOOKKEEPING_CODES = frozenset(code for code, _name, _kind in BOOKKEEPING)

CODE_RE = re.compile(r"^[A-Z][A-Z0-9-]{0,31}$")
COUNTER_CODE_RE = re.compile(r"^K\d{3,5}$")   # kept for the counters (kiosks.registry)
NAME_MAX = 120


def ensure_bookkeeping_locations(session: Session) -> list[str]:
    """Create the missing bookkeeping locations (one of each kind); the codes created. Running it
    again creates nothing."""
    created = []
    for code, name, kind in BOOKKEEPING:
        if session.scalar(select(Location.id).where(Location.kind == kind).limit(1)) is not None:
            continue
        if session.scalar(select(Location.id).where(Location.code == code)) is not None:
            raise ValidationError(_l("位置编号 %(code)s 已被占用，无法建立记账位置", code=code), "code")
        session.add(Location(code=code, name=name, kind=kind, active=True))
        created.append(code)
    session.flush()
    return created


def site_kind(word: Any) -> LocationKind:
    """hall | storeroom | base | van → the location kind; ValidationError otherwise."""
    kind = SITE_KINDS.get(str(word or "").strip().lower())
    if kind is None:
        raise ValidationError(_l("位置类型只能是 hall（卖场）、storeroom（仓库）、base（物流基地）或 van（补货车）"), "kind")
    return kind


def clean_location_code(value: Any) -> str:
    code = (fields.text(value, field="code", label=_l("位置编号"), max_len=32, required=True, code=True) or "").upper()
    if not CODE_RE.match(code):
        raise ValidationError(_l("位置编号只能用大写字母、数字和连字符，以字母开头，例如 HALL、VAN1"), "code")
    if COUNTER_CODE_RE.match(code):
        raise ValidationError(_l("K 加数字的编号留给消费专柜，请换一个位置编号"), "code")
    return code


def _name(value: Any) -> str:
    return fields.text(value, field="name", label=_l("名称"), max_len=NAME_MAX, required=True)


def get_location(session: Session, code: Any) -> Location:
    loc = session.scalar(select(Location).where(Location.code == str(code or "").strip().upper()))
    if loc is None:
        raise NotFound(_l("位置不存在：%(code)s", code=str(code)[:32]))
    return loc


def _snapshot(loc: Location) -> dict:
    return {"code": loc.code, "name": loc.name, "kind": loc.kind.value, "active": loc.active}


def add_location(session: Session, *, code: Any, kind: Any, name: Any, actor_id: Optional[int] = None) -> Location:
    """A new place of the site (hall floor, storeroom, base or van). Audited "location.create"."""
    code = clean_location_code(code)
    kind = site_kind(kind)
    name = _name(name)
    if session.scalar(select(Location.id).where(Location.code == code)) is not None:
        raise ValidationError(_l("位置编号 %(code)s 已存在", code=code), "code")
    loc = Location(code=code, name=name, kind=kind, active=True)
    session.add(loc)
    session.flush()
    record(session, user_id=actor_id, action="location.create", entity="location", entity_id=loc.id,
           after=_snapshot(loc))
    return loc


def _editable(session: Session, code: Any) -> Location:
    loc = get_location(session, code)
    if loc.kind not in KIND_WORDS:
        raise ValidationError(_l("「%(name)s」不在这里管理（记账位置、专柜和团购待发区由系统维护）", name=loc.name), "code")
    return loc


def rename_location(session: Session, code: Any, *, name: Any, actor_id: Optional[int] = None) -> Location:
    loc = _editable(session, code)
    name = _name(name)
    if name != loc.name:
        before = _snapshot(loc)
        loc.name = name
        record(session, user_id=actor_id, action="location.rename", entity="location", entity_id=loc.id,
               before=before, after=_snapshot(loc))
        session.flush()
    return loc


def set_location_active(session: Session, code: Any, active: bool, *, actor_id: Optional[int] = None,
                        blockers: int = 0) -> Location:
    """Retire (``active=False``) or bring back a place. A retired place keeps its history (it is
    never deleted: documents and moves point to it) but takes no new goods. Retiring is refused
    while goods are still on its books, and while ``blockers`` (tills selling there, counted by
    the caller) is not zero."""
    loc = _editable(session, code)
    if loc.active == bool(active):
        return loc
    if not active:
        on_books = session.scalar(select(func.count()).select_from(StockLevel).where(
            StockLevel.location_id == loc.id, StockLevel.qty_milli != 0))
        if on_books:
            raise ValidationError(_l("「%(name)s」账面上还有 %(n)s 种商品的库存，请先调出或盘点清零再停用",
                                     name=loc.name, n=on_books), "code")
        if blockers:
            raise ValidationError(_l("「%(name)s」还有 %(n)s 台收银台在用，请先停用或改设收银台",
                                     name=loc.name, n=blockers), "code")
    before = _snapshot(loc)
    loc.active = bool(active)
    record(session, user_id=actor_id, action="location.retire" if not active else "location.reactivate",
           entity="location", entity_id=loc.id, before=before, after=_snapshot(loc))
    session.flush()
    return loc


def site_locations(session: Session) -> list[Location]:
    """The places a hall set up (hall floors, storerooms, bases, vans), in a stable order."""
    order = {kind: i for i, kind in enumerate(SITE_KINDS.values())}
    rows = session.scalars(select(Location).where(Location.kind.in_(list(SITE_KINDS.values())))).all()
    return sorted(rows, key=lambda loc: (not loc.active, order[loc.kind], loc.code))


def has_site_locations(session: Session) -> bool:
    """Whether the hall has set up any place of its own yet (the first-run page shows until then)."""
    return session.scalar(select(Location.id).where(Location.kind.in_(list(SITE_KINDS.values()))).limit(1)) is not None


__all__ = [
    "SITE_KINDS", "KIND_WORDS", "KIND_LABELS", "BOOKKEEPING", "BOOKKEEPING_CODES", "ensure_bookkeeping_locations",
    "site_kind", "clean_location_code", "get_location", "add_location", "rename_location", "set_location_active",
    "site_locations", "has_site_locations",
]
