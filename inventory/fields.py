"""Checks of plain values handed to the catalogue services (by a view, the importer or the CLI).

Turning typed text into numbers is the view's job; these refuse values of the wrong type or out of
range with a message for the person, naming the field (``ValidationError.field``).
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any, Optional

from flask_babel import lazy_gettext as _l

from .errors import ValidationError

# Integer columns are 32-bit on PostgreSQL; no price, cost or code in the hall comes near this.
MAX_INT = 2_000_000_000
COUNTY_CODE_RE = re.compile(r"[0-9]{6}")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def clean_text(value: Any) -> str:
    """Text as stored: trimmed. (Names keep their full-width punctuation: 苗绣杯垫（4片装）.)"""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(_l("应为文字：%(value)s", value=repr(value)[:40]))
    return value.strip()


def clean_code(value: Any) -> str:
    """A code (sku, tax code, credit code …) as stored: Unicode NFKC, so that full-width digits
    and letters typed with a Chinese input method become ASCII; trimmed."""
    return unicodedata.normalize("NFKC", clean_text(value)).strip()


def text(value: Any, *, field: str, label: Any, max_len: int, required: bool = False,
         code: bool = False) -> Optional[str]:
    """A text value: trimmed; empty means None (or an error when required). ``code=True`` for
    codes (NFKC-normalised, see clean_code)."""
    try:
        cleaned = clean_code(value) if code else clean_text(value)
    except ValidationError:
        raise ValidationError(_l("%(label)s应为文字", label=label), field) from None
    if not cleaned:
        if required:
            raise ValidationError(_l("%(label)s不能为空", label=label), field)
        return None
    if "\n" in cleaned or "\r" in cleaned:
        raise ValidationError(_l("%(label)s不能换行", label=label), field)
    if _CONTROL_CHARS.search(cleaned):
        # PostgreSQL refuses NUL in text; other control characters are never meant.
        raise ValidationError(_l("%(label)s含有无法识别的控制字符", label=label), field)
    if len(cleaned) > max_len:
        raise ValidationError(_l("%(label)s最多 %(n)s 个字符", label=label, n=max_len), field)
    return cleaned


def integer(value: Any, *, field: str, label: Any, minimum: int = 0, maximum: int = MAX_INT,
            required: bool = True) -> Optional[int]:
    """A whole number (an ``int``, never a float, a bool or a string)."""
    if value is None:
        if required:
            raise ValidationError(_l("%(label)s不能为空", label=label), field)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(_l("%(label)s必须是整数", label=label), field)
    if value < minimum:
        if minimum == 0:
            raise ValidationError(_l("%(label)s不能为负数", label=label), field)
        raise ValidationError(_l("%(label)s不能小于 %(n)s", label=label, n=minimum), field)
    if value > maximum:
        raise ValidationError(_l("%(label)s不能大于 %(n)s", label=label, n=maximum), field)
    return value


def boolean(value: Any, *, field: str, label: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(_l("%(label)s应为是或否", label=label), field)
    return value


def date(value: Any, *, field: str, label: Any, required: bool = True) -> Optional[dt.date]:
    """A calendar date (a ``datetime`` is refused: a time of day has no place here)."""
    if value is None:
        if required:
            raise ValidationError(_l("%(label)s不能为空", label=label), field)
        return None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValidationError(_l("%(label)s应为日期（YYYY-MM-DD）", label=label), field)
    return value


def county_code(value: Any, *, field: str = "origin_county_code") -> Optional[str]:
    code = text(value, field=field, label=_l("县级行政区划代码"), max_len=6, code=True)
    if code is not None and not COUNTY_CODE_RE.fullmatch(code):
        raise ValidationError(_l("县级行政区划代码应为 6 位数字：%(code)s", code=code), field)
    return code


def identifier(value: Any) -> Optional[int]:
    """An optional foreign key given as an int (None or 0 means none)."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(_l("编号应为正整数：%(value)s", value=repr(value)[:40]))
    return value
