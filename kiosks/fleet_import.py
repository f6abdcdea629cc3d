"""Counters from a spreadsheet: ``songtao import-kiosks FILE`` and the manager's 导入专柜 page.

One row per counter, CSV or XLSX, with the columns ``code, name, site_type, host, town, address,
lat, lng`` or their Chinese names 编号, 名称, 场所类型, 所在单位, 镇街, 地址, 纬度, 经度. Site types
are written as the registry names them (government, hospital, school, factory, canteen, other)
or in Chinese (机关, 医院, 学校, 企业, 饭堂, 其他 …); empty means other.

As the catalogue import: every row is checked first and every problem of every row is reported
(row number, column as the file names it, message); nothing is written unless all rows are
valid. A known code updates that counter (only what changed, audited); a new code creates the
counter with its own stock location (``kiosks.registry.create_kiosk``). Running the same file
again changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.models import Location
from inventory.spreadsheets import SheetError, header_key, read_sheet
from kiosks import registry
from kiosks.models import Kiosk, SiteType

COLUMNS = ("code", "name", "site_type", "host", "town", "address", "lat", "lng")
CHINESE = ("编号", "名称", "场所类型", "所在单位", "镇街", "地址", "纬度", "经度")
ALIASES = {"专柜编号": "code", "站点名称": "name", "站点类型": "site_type", "类型": "site_type", "单位": "host",
           "镇": "town", "latitude": "lat", "longitude": "lng", "site_name": "name", "host_org": "host"}
HEADER_MAP = {header_key(n): c for names in (COLUMNS, CHINESE) for n, c in zip(names, COLUMNS)}
HEADER_MAP.update({header_key(k): v for k, v in ALIASES.items()})
REQUIRED = ("code", "name", "host", "town", "address")
# column of the file → registry field
FIELDS = {"name": "site_name", "host": "host_org", "site_type": "site_type", "town": "town", "address": "address",
          "lat": "latitude", "lng": "longitude"}
SITE_WORDS = {
    **{t.value: t for t in SiteType},
    "机关": SiteType.GOVERNMENT, "政府": SiteType.GOVERNMENT, "镇政府": SiteType.GOVERNMENT,
    "机关单位": SiteType.GOVERNMENT, "医院": SiteType.HOSPITAL, "学校": SiteType.SCHOOL,
    "企业": SiteType.FACTORY, "工厂": SiteType.FACTORY, "饭堂": SiteType.CANTEEN, "食堂": SiteType.CANTEEN,
    "其他": SiteType.OTHER, "": SiteType.OTHER,
}
MAX_ROWS = 2_000
MAX_ERRORS = 200


@dataclass(frozen=True)
class RowError:
    row_no: int       # as the spreadsheet shows it: the header is row 1 (0: the file as a whole)
    column: str       # the column as the file names it ("" for the whole row or file)
    message: str

    def describe(self) -> str:
        if not self.row_no:
            return self.message
        if self.column:
            return str(_l("第 %(row)s 行「%(column)s」：%(message)s", row=self.row_no, column=self.column,
                          message=self.message))
        return str(_l("第 %(row)s 行：%(message)s", row=self.row_no, message=self.message))


class KiosksRefused(registry.KioskError):
    """The file has errors; nothing was written. ``errors`` lists every one, by row."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(_l("导入被拒绝：%(n)s 处错误，未写入任何数据", n=len(errors)), "file")
        self.errors = errors


@dataclass
class KioskRow:
    row_no: int
    code: str
    values: dict[str, Any]
    action: str = "create"                 # create | update | unchanged
    changes: dict = field(default_factory=dict)


@dataclass
class KioskImportPlan:
    rows: list[KioskRow]
    errors: list[RowError]

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    @property
    def created(self) -> int:
        return self.count("create")

    @property
    def updated(self) -> int:
        return self.count("update")

    @property
    def unchanged(self) -> int:
        return self.count("unchanged")


def _site_type(text: str) -> Optional[SiteType]:
    return SITE_WORDS.get(text.strip().lower()) or SITE_WORDS.get(text.strip())


def _coordinate(text: str) -> Any:
    text = text.strip().replace("，", ".")
    return text or None


def plan_import(s: Session, filename: str, data: bytes) -> KioskImportPlan:
    """Read and check the whole file; what each row would do, and every error."""
    try:
        raw_rows, headers = read_sheet(filename, data, HEADER_MAP, required=REQUIRED, max_rows=MAX_ROWS)
    except SheetError as error:
        return KioskImportPlan([], [RowError(0, "", str(error))])
    existing = {k.code: k for k in s.scalars(select(Kiosk))}
    location_codes = set(s.scalars(select(Location.code)))
    errors: list[RowError] = []
    rows: list[KioskRow] = []
    first_row_of: dict[str, int] = {}
    for raw in raw_rows:
        n = raw["_row"]

        def problem(column: str, message: Any) -> None:
            errors.append(RowError(n, headers.get(column, column), str(message)))

        code = raw["code"].strip().upper()
        if not registry.valid_code(code):
            problem("code", _l("专柜编号格式应为 K001：%(code)s", code=raw["code"][:16] or "（空）"))
        elif code in first_row_of:
            problem("code", _l("专柜编号 %(code)s 重复（第 %(first)s 行已有）", code=code, first=first_row_of[code]))
        else:
            first_row_of[code] = n
            if code not in existing and code in location_codes:
                problem("code", _l("编号 %(code)s 已被一个库存位置占用", code=code))
        values: dict[str, Any] = {}
        for column, name in FIELDS.items():
            if column not in raw:
                continue
            text = raw[column]
            if column == "site_type":
                kind = _site_type(text)
                if kind is None:
                    problem(column, _l("场所类型「%(text)s」不认识，可用：机关、医院、学校、企业、饭堂、其他",
                                       text=text[:20]))
                    continue
                value: Any = kind.value
            elif column in ("lat", "lng"):
                value = _coordinate(text)
            else:
                value = text
            try:
                values.update(registry.validated_fields({name: value}))
            except registry.KioskError as error:
                if column == "lat":
                    problem(column, _l("纬度应在 −90 到 90 之间：%(text)s", text=text[:20]))
                elif column == "lng":
                    problem(column, _l("经度应在 −180 到 180 之间：%(text)s", text=text[:20]))
                elif column == "name" and not text.strip():
                    problem(column, _l("名称不能为空"))
                else:
                    problem(column, str(error))
        row = KioskRow(n, code, values)
        known = existing.get(code)
        if known is not None:
            changes = {}
            for name, value in values.items():
                old = getattr(known, name)
                old = getattr(old, "value", old)
                new = getattr(value, "value", value)
                if old != new:
                    changes[name] = (old, new)
            row.action = "update" if changes else "unchanged"
            row.changes = changes
        rows.append(row)
        if len(errors) >= MAX_ERRORS:
            errors.append(RowError(0, "", str(_l("错误太多，只列出前 %(n)s 处", n=MAX_ERRORS))))
            break
    if not rows and not errors:
        errors.append(RowError(0, "", str(_l("表格里没有专柜"))))
    return KioskImportPlan(rows, errors)


def apply_import(s: Session, filename: str, data: bytes, *, actor_id: Optional[int] = None) -> KioskImportPlan:
    """Check the whole file, then create and update the counters in one savepoint: all rows or
    none. KiosksRefused (with every error) writes nothing."""
    plan = plan_import(s, filename, data)
    if plan.errors:
        raise KiosksRefused(plan.errors)
    with s.begin_nested():
        for row in plan.rows:
            if row.action == "create":
                registry.create_kiosk(s, code=row.code, actor_id=actor_id, **_create_values(row.values))
            elif row.action == "update":
                registry.update_kiosk(s, row.code, actor_id=actor_id,
                                      **{name: row.values[name] for name in row.changes})
    return plan


def _create_values(values: dict[str, Any]) -> dict[str, Any]:
    out = {name: getattr(value, "value", value) for name, value in values.items()}
    out.setdefault("site_type", SiteType.OTHER.value)
    return out


TEMPLATE_CSV = "code,name,site_type,host,town,address,lat,lng\n"


__all__ = ["COLUMNS", "CHINESE", "RowError", "KiosksRefused", "KioskImportPlan", "plan_import", "apply_import",
           "TEMPLATE_CSV"]
