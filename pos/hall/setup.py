"""Setting up a hall: its name, address and paired county (hall settings), its places (through
``inventory.locations``) and its tills — what the first-run page, the admin's site pages and the
commands ``songtao add-location`` / ``songtao add-till`` share.

Tills, like locations, are never deleted once receipts point to them: they are retired
(inactive) and can be brought back. Every change is audited. Functions take a Session and plain
values, never commit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inventory import locations as site
from inventory.audit import record
from inventory.errors import InventoryError
from inventory.models import Location, LocationKind
from pos.core.errors import NotFound, PosError
from pos.hall import printers
from pos.hall.settings import _normalise as check_setting  # the one check of each setting's value
from pos.hall.settings import hall_settings, set_setting
from pos.models import Shift, ShiftStatus, Till

TILL_CODE_RE = re.compile(r"^[A-Z][A-Z0-9-]{0,9}$")
PAPER_COLUMNS = {"80": 48, "58": 32}     # paper width in mm → characters per line
TILL_KINDS = (LocationKind.HALL_FLOOR,)  # a till sells from the hall floor


class SetupError(PosError):
    """A set-up value the rules refuse (422 on pages, one line on the command line)."""


def _inventory_error(error: InventoryError) -> SetupError:
    return SetupError(error.message, getattr(error, "field", None))


# --- places ---------------------------------------------------------------------------------

def add_location(s: Session, *, code: Any, kind: Any, name: Any, actor_id: Optional[int] = None) -> Location:
    try:
        return site.add_location(s, code=code, kind=kind, name=name, actor_id=actor_id)
    except InventoryError as error:
        raise _inventory_error(error) from None


def rename_location(s: Session, code: Any, *, name: Any, actor_id: Optional[int] = None) -> Location:
    try:
        return site.rename_location(s, code, name=name, actor_id=actor_id)
    except InventoryError as error:
        raise _inventory_error(error) from None


def set_location_active(s: Session, code: Any, active: bool, *, actor_id: Optional[int] = None) -> Location:
    """Retire a place (refused while goods are on its books or an active till sells there) or
    bring it back."""
    try:
        loc = site.get_location(s, code)
        tills = s.scalar(select(func.count()).select_from(Till).where(Till.location_id == loc.id,
                                                                      Till.active.is_(True)))
        return site.set_location_active(s, code, active, actor_id=actor_id, blockers=tills or 0)
    except InventoryError as error:
        raise _inventory_error(error) from None


# --- tills ----------------------------------------------------------------------------------

def _till_snapshot(till: Till) -> dict:
    return {"code": till.code, "name": till.name, "location_id": till.location_id, "printer_uri": till.printer_uri,
            "paper_columns": till.paper_columns, "active": till.active}


def _till_code(value: Any) -> str:
    code = str(value or "").strip().upper()
    if not TILL_CODE_RE.match(code):
        raise SetupError(_l("收银台编号只能用大写字母、数字和连字符，以字母开头，最多 10 位，例如 H1"), "code")
    return code


def _till_name(value: Any) -> str:
    name = str(value or "").strip() if isinstance(value, (str, type(None))) else ""
    if not name:
        raise SetupError(_l("请填写收银台名称"), "name")
    if len(name) > 60 or not name.isprintable():
        raise SetupError(_l("收银台名称最多 60 个字"), "name")
    return name


def _till_location(s: Session, code: Any) -> Location:
    loc = s.scalar(select(Location).where(Location.code == str(code or "").strip().upper()))
    if loc is None:
        raise SetupError(_l("位置不存在：%(code)s（请先添加卖场）", code=str(code or "")[:32]), "location")
    if loc.kind not in TILL_KINDS:
        raise SetupError(_l("收银台只能设在卖场，「%(name)s」不是卖场", name=loc.name), "location")
    if not loc.active:
        raise SetupError(_l("「%(name)s」已停用", name=loc.name), "location")
    return loc


def paper_columns(paper: Any) -> int:
    """80 (mm) → 48 columns, 58 → 32."""
    columns = PAPER_COLUMNS.get(str(paper if paper is not None else "80").strip().removesuffix("mm"))
    if columns is None:
        raise SetupError(_l("纸宽只能是 80 或 58（毫米）"), "paper")
    return columns


def _printer(uri: Any) -> str:
    text = str(uri or "").strip() or "none"
    if len(text) > 200:
        raise SetupError(_l("打印机地址太长"), "printer")
    try:
        printers.check_uri(text)
    except printers.PrinterUriError as error:
        raise SetupError(str(error), "printer") from None
    return text


def get_till(s: Session, code: Any) -> Till:
    till = s.scalar(select(Till).where(Till.code == str(code or "").strip().upper()))
    if till is None:
        raise NotFound(_l("找不到该收银台"))
    return till


def add_till(s: Session, *, code: Any, name: Any, location: Any, printer: Any = None, paper: Any = "80",
             actor_id: Optional[int] = None) -> Till:
    """A new till at a hall floor, with its printer (a URI that must pass the allow-list) and
    paper width (80 or 58 mm). Audited "till.create"."""
    code = _till_code(code)
    name = _till_name(name)
    loc = _till_location(s, location)
    uri = _printer(printer)
    columns = paper_columns(paper)
    if s.scalar(select(Till.id).where(Till.code == code)) is not None:
        raise SetupError(_l("收银台编号 %(code)s 已存在", code=code), "code")
    till = Till(code=code, name=name, location_id=loc.id, printer_uri=uri, paper_columns=columns, active=True)
    s.add(till)
    s.flush()
    record(s, user_id=actor_id, action="till.create", entity="till", entity_id=till.id, after=_till_snapshot(till))
    return till


def update_till(s: Session, code: Any, *, name: Any = None, location: Any = None, printer: Any = None,
                paper: Any = None, active: Optional[bool] = None, actor_id: Optional[int] = None) -> Till:
    """Rename a till, move it to another hall floor, change its printer or paper, retire it or bring
    it back (None: keep). Audited "till.update" with what changed."""
    till = get_till(s, code)
    before = _till_snapshot(till)
    if name is not None:
        till.name = _till_name(name)
    if location is not None:
        till.location_id = _till_location(s, location).id
    if printer is not None:
        till.printer_uri = _printer(printer)
    if paper is not None:
        till.paper_columns = paper_columns(paper)
    if active is not None:
        if not active and till.active and s.scalar(select(Shift.id).where(
                Shift.till_id == till.id, Shift.status == ShiftStatus.OPEN).limit(1)) is not None:
            raise SetupError(_l("收银台 %(code)s 的班次还没交班，交班后才能停用", code=till.code), "active")
        till.active = bool(active)
    after = _till_snapshot(till)
    if after != before:
        record(s, user_id=actor_id, action="till.update", entity="till", entity_id=till.id,
               before={k: v for k, v in before.items() if after[k] != v},
               after={k: v for k, v in after.items() if before[k] != v})
        s.flush()
    return till


def list_tills(s: Session) -> list[Till]:
    return list(s.scalars(select(Till).order_by(Till.active.desc(), Till.code)))


# --- the hall itself ------------------------------------------------------------------------

HALL_KEYS = ("hall_name", "hall_address", "paired_county_code", "paired_county_name")


def save_hall(s: Session, values: dict[str, Any], *, actor_id: Optional[int] = None) -> int:
    """The hall's name, address and paired county (settings, each change audited). Every value
    is checked before any is written. How many changed."""
    current = hall_settings(s)
    wanted = {k: values[k] for k in HALL_KEYS if k in values and values[k] is not None}
    checked = {key: check_setting(key, value) for key, value in wanted.items()}
    if "paired_county_name" in checked and not checked["paired_county_name"]:
        raise SetupError(_l("请填写结对县名称"), "paired_county_name")
    changed = 0
    for key, value in checked.items():
        if getattr(current, key) != value:
            set_setting(s, key, value, actor_id)
            changed += 1
    return changed


# --- where receipts' QR codes point ---------------------------------------------------------

def check_public_base_url(value: Optional[str]) -> Optional[str]:
    """The PUBLIC_BASE_URL as configured, or None when unset; a value that is not an http(s)
    address with a host is refused with a message (checked when the app starts)."""
    text = (value or "").strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SetupError(_l("PUBLIC_BASE_URL 应为 https://域名 这样的地址：%(value)s", value=text[:80]), "PUBLIC_BASE_URL")
    return text.rstrip("/")


def public_base_url() -> Optional[str]:
    return current_app.config.get("PUBLIC_BASE_URL") if has_app_context() else None


@dataclass(frozen=True)
class SiteStatus:
    """What the set-up pages show at the top: what is there and what is missing."""
    locations: int
    halls: int
    tills: int
    public_base_url: Optional[str]

    @property
    def first_run(self) -> bool:
        return self.locations == 0

    @property
    def ready_to_sell(self) -> bool:
        return self.halls > 0 and self.tills > 0


def site_status(s: Session) -> SiteStatus:
    kinds = list(site.SITE_KINDS.values())
    locations = s.scalar(select(func.count()).select_from(Location).where(Location.kind.in_(kinds))) or 0
    halls = s.scalar(select(func.count()).select_from(Location).where(
        Location.kind == LocationKind.HALL_FLOOR, Location.active.is_(True))) or 0
    tills = s.scalar(select(func.count()).select_from(Till).where(Till.active.is_(True))) or 0
    return SiteStatus(locations=locations, halls=halls, tills=tills, public_base_url=public_base_url())


__all__ = [
    "SetupError", "add_location", "rename_location", "set_location_active", "add_till", "update_till", "get_till",
    "list_tills", "paper_columns", "save_hall", "HALL_KEYS", "check_public_base_url", "public_base_url",
    "SiteStatus", "site_status",
]
