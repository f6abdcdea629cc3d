"""Unified social credit codes (统一社会信用代码, GB 32100-2015): the one normalisation for a
supplier's code, a group buyer's and the tax id on an invoice request, and well-formed codes for
demo data."""
from __future__ import annotations

import random
from typing import Any, Optional

from flask_babel import lazy_gettext as _l
from stdnum import exceptions as stdnum_errors
from stdnum.cn import uscc

from . import fields
from .errors import ValidationError


def normalise_credit_code(code: Any, *, field: str = "credit_code") -> Optional[str]:
    """A 统一社会信用代码 as stored: 18 characters, capitals, check character verified
    (GB 32100-2015, via python-stdnum); full-width characters typed with a Chinese input method,
    spaces and hyphens are accepted. Empty means none. Refused with a ``ValidationError`` on
    ``field`` saying what is wrong."""
    try:
        text = fields.clean_code(code)
    except ValidationError:
        raise ValidationError(_l("统一社会信用代码应为文字"), field) from None
    text = text.replace(" ", "").replace("-", "").upper()
    if not text:
        return None
    try:
        return uscc.validate(text)
    except stdnum_errors.InvalidLength:
        raise ValidationError(_l("统一社会信用代码应为 18 位：%(code)s", code=text[:30]), field) from None
    except stdnum_errors.InvalidChecksum:
        raise ValidationError(_l("统一社会信用代码校验位错误：%(code)s", code=text), field) from None
    except stdnum_errors.ValidationError:
        raise ValidationError(_l("统一社会信用代码格式不正确：%(code)s", code=text), field) from None


def credit_code_check_character(first17: str) -> str:
    """The check character of a credit code whose first 17 characters are given."""
    return uscc.calc_check_digit(first17)


def _organisation_code(rng: random.Random) -> str:
    """A 9-character organisation code (GB 11714): 8 digits and their check character."""
    body = "".join(rng.choice("0123456789") for _ in range(8))
    total = sum(int(c) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2)))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def example_credit_code(rng: random.Random, *, cooperative: bool, county_code: str) -> str:
    """A well-formed credit code for demo data: registered by market regulation (9), as a firm
    (1) or a farmers' cooperative (3), in the given county."""
    first17 = ("93" if cooperative else "91") + county_code + _organisation_code(rng)
    return first17 + credit_code_check_character(first17)
