"""Hall settings (paired county, 抹零, discount limit …), stored as text rows in ``settings``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.audit import record
from inventory.models import Setting
from pos.core.db import read_connection
from pos.core.errors import PosError

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})

# Keys the hall may change, with the default used when the row is missing.
DEFAULTS: dict[str, str] = {
    "hall_name": "梵净山珍·松桃馆",
    "rounding_to_jiao": "false",
    "discount_limit_percent": "10",
    "paired_county_code": "520628",
    "paired_county_name": "松桃苗族自治县",
    "hall_address": "",
    # A shift whose counted cash differs from the expected by more than this (fen, either way)
    # is closed only with a manager's approval.
    "shift_difference_limit_fen": "1000",
}
MAX_DIFFERENCE_LIMIT_FEN = 100_000_000  # ¥1,000,000.00


@dataclass(frozen=True)
class HallSettings:
    rounding_to_jiao: bool
    discount_limit_percent: int
    paired_county_code: str
    paired_county_name: str
    hall_address: str
    shift_difference_limit_fen: int = int(DEFAULTS["shift_difference_limit_fen"])
    hall_name: str = DEFAULTS["hall_name"]


def get_setting(s: Session, key: str, default: Optional[str] = None) -> Optional[str]:
    value = s.scalar(select(Setting.value).where(Setting.key == key))
    return default if value is None else value


def _bool(text: str) -> bool:
    return text.strip().lower() in TRUE_WORDS


def _percent(text: str) -> int:
    try:
        n = int(str(text).strip())
    except ValueError:
        return int(DEFAULTS["discount_limit_percent"])
    return min(max(n, 0), 100)


def _fen(text: str, default: str) -> int:
    try:
        n = int(str(text).strip())
    except ValueError:
        return int(default)
    return min(max(n, 0), MAX_DIFFERENCE_LIMIT_FEN)


_CACHE_KEY = "pos.hall_settings"


def hall_settings(s: Session) -> HallSettings:
    """The hall's settings, read once per transaction (a counter batch records many sales in one):
    ``set_setting`` forgets them, and so does a Setting row changed in the session and not yet
    flushed."""
    transaction = s.get_transaction()
    cached = s.info.get(_CACHE_KEY)
    if cached is not None and cached[0] is transaction and transaction is not None \
            and not any(isinstance(o, Setting) for o in (*s.new, *s.dirty)):
        return cached[1]
    settings = _read(s)
    s.info[_CACHE_KEY] = (s.get_transaction(), settings)
    return settings


_T = Setting.__table__
# Built once, table columns on the session's connection: a checkout's first read of a transaction.
_SETTINGS = select(_T.c.key, _T.c.value).where(_T.c.key.in_(list(DEFAULTS)))


def _read(s: Session) -> HallSettings:
    stored = dict(read_connection(s).execute(_SETTINGS).all())
    value = {**DEFAULTS, **stored}
    return HallSettings(
        rounding_to_jiao=_bool(value["rounding_to_jiao"]),
        discount_limit_percent=_percent(value["discount_limit_percent"]),
        paired_county_code=value["paired_county_code"],
        paired_county_name=value["paired_county_name"],
        hall_address=value["hall_address"],
        shift_difference_limit_fen=_fen(value["shift_difference_limit_fen"], DEFAULTS["shift_difference_limit_fen"]),
        hall_name=value["hall_name"] or DEFAULTS["hall_name"],
    )


def _normalise(key: str, value) -> str:
    """The stored text of a value, refusing what the hall's rules cannot use."""
    if key == "rounding_to_jiao":
        if isinstance(value, bool):
            return "true" if value else "false"
        text = str(value).strip().lower()
        if text not in TRUE_WORDS | FALSE_WORDS:
            raise PosError(_l("抹零设置只能是开或关"), "rounding_to_jiao")
        return "true" if text in TRUE_WORDS else "false"
    if key == "discount_limit_percent":
        try:
            n = int(str(value).strip())
        except ValueError:
            raise PosError(_l("折扣上限必须是 0 到 100 的整数"), key) from None
        if not 0 <= n <= 100:
            raise PosError(_l("折扣上限必须是 0 到 100 的整数"), key)
        return str(n)
    if key == "shift_difference_limit_fen":
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or not text.isascii() or int(text) > MAX_DIFFERENCE_LIMIT_FEN:
            raise PosError(_l("交班差额上限必须是 0 到 ¥1,000,000.00 之间的金额"), key)
        return str(int(text))
    if key == "paired_county_code":
        text = str(value).strip()
        if not (len(text) == 6 and text.isdigit()):
            raise PosError(_l("县级行政区划代码必须是 6 位数字"), key)
        return text
    if key == "hall_name":
        text = str(value).strip()
        if not text:
            raise PosError(_l("请填写门店名称"), key)
        if len(text) > 60:
            raise PosError(_l("门店名称最多 60 个字"), key)
        return text
    text = str(value).strip()
    if len(text) > 200:
        raise PosError(_l("设置值太长"), key)
    return text


def set_setting(s: Session, key: str, value, actor_id: Optional[int]) -> str:
    """Change one setting (audited "setting.change"); returns the stored text."""
    if key not in DEFAULTS:
        raise PosError(_l("未知的设置项：%(key)s", key=str(key)[:60]), "key")
    text = _normalise(key, value)
    row = s.get(Setting, key)
    before = None if row is None else row.value
    if before == text:
        return text
    s.info.pop(_CACHE_KEY, None)
    if row is None:
        s.add(Setting(key=key, value=text))
    else:
        row.value = text
    record(s, user_id=actor_id, action="setting.change", entity="setting", entity_id=key,
           before={"value": before}, after={"value": text})
    s.flush()
    return text
