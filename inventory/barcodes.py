"""Product barcodes: GS1 codes (EAN-13, EAN-8, UPC-A) with their check digit, and the hall's own
internal codes (letters, digits and hyphens).

The rule for telling them apart lives here and nowhere else: an all-digit code of 8, 12 or 13
digits is a GS1 code and must carry a correct check digit (a misread or mistyped digit is caught
rather than stored); anything else of 3–32 letters, digits and hyphens is an internal code.
Internal codes are kept in capitals, so what a scanner sends and what a person types match.
"""
from __future__ import annotations

import re
import unicodedata

from flask_babel import lazy_gettext as _l
from stdnum import ean

from .errors import ValidationError
from .models import BarcodeKind

GS1_LENGTHS = {13: BarcodeKind.EAN13, 12: BarcodeKind.UPCA, 8: BarcodeKind.EAN8}
INTERNAL_RE = re.compile(r"[A-Z0-9-]{3,32}")
_DIGITS = re.compile(r"[0-9]+")
_DIGITS_AND_SPACES = re.compile(r"[0-9][0-9 ]*[0-9]")


def normalise(code: str) -> str:
    """What a scanner or a person gave, as stored: full-width characters made ASCII, trimmed,
    spaces inside a printed GS1 number ("6 901234 567892") removed, letters in capitals."""
    if not isinstance(code, str):
        raise ValidationError(_l("条码应为文字"), "barcode")
    code = unicodedata.normalize("NFKC", code).strip()
    if _DIGITS_AND_SPACES.fullmatch(code):
        code = code.replace(" ", "")
    return code.upper()


def is_gs1_shaped(code: str) -> bool:
    """All digits and 8, 12 or 13 long: must carry a GS1 check digit."""
    return bool(_DIGITS.fullmatch(code)) and len(code) in GS1_LENGTHS


def _gs1_check_ok(code: str) -> bool:
    """The GS1 check digit of an all-digit code of 8, 12 or 13 digits is right (what
    ``stdnum.ean.is_valid`` answers for such a code, without its generic cleaning: the import
    checks every barcode of a 20,000-row file)."""
    body = code[-2::-1]   # the digits before the check digit, from the right: weights 3, 1, 3 …
    total = 3 * sum(map(int, body[0::2])) + sum(map(int, body[1::2]))
    return (10 - total) % 10 == int(code[-1])


def classify(code: str) -> BarcodeKind:
    """The kind of a (normalised) code; ValidationError when it is not a usable barcode."""
    if is_gs1_shaped(code):
        if not _gs1_check_ok(code):
            expected = ean.calc_check_digit(code[:-1])
            raise ValidationError(
                _l("条码校验位错误：%(code)s（最后一位应为 %(digit)s，请重新扫描或核对）", code=code, digit=expected),
                "barcode",
            )
        return GS1_LENGTHS[len(code)]
    if not code:
        raise ValidationError(_l("条码不能为空"), "barcode")
    if len(code) > 32:
        raise ValidationError(_l("条码最多 32 个字符：%(code)s", code=code[:40]), "barcode")
    if not INTERNAL_RE.fullmatch(code):
        raise ValidationError(
            _l("条码只能包含字母、数字和连字符，长度 3–32 位：%(code)s", code=code[:40]), "barcode"
        )
    return BarcodeKind.INTERNAL


def validate(code: str) -> tuple[str, BarcodeKind]:
    """(normalised code, kind), or ValidationError with a message for the person."""
    normalised = normalise(code)
    return normalised, classify(normalised)


def gs1_check_digit(body: str) -> str:
    """The GS1 check digit of the digits before it (7 for EAN-8, 11 for UPC-A, 12 for EAN-13)."""
    if not isinstance(body, str) or not _DIGITS.fullmatch(body) or len(body) not in (7, 11, 12):
        raise ValidationError(_l("计算校验位需要 7、11 或 12 位数字：%(body)s", body=str(body)[:20]), "barcode")
    return ean.calc_check_digit(body)


def ean13_check_digit(first12: str) -> str:
    """The check digit of an EAN-13 whose first 12 digits are given."""
    if not isinstance(first12, str) or not _DIGITS.fullmatch(first12) or len(first12) != 12:
        raise ValidationError(_l("EAN-13 校验位需要前 12 位数字：%(body)s", body=str(first12)[:20]), "barcode")
    return ean.calc_check_digit(first12)


def ean13(first12: str) -> str:
    """A whole EAN-13 from its first 12 digits."""
    return first12 + ean13_check_digit(first12)


def scan_variants(code: str) -> list[str]:
    """The forms a scanned GS1 code may be stored under: scanners send a UPC-A either as its 12
    digits or as the equal EAN-13 with a leading 0."""
    variants = [code]
    if _DIGITS.fullmatch(code):
        if len(code) == 13 and code.startswith("0"):
            variants.append(code[1:])
        elif len(code) == 12:
            variants.append("0" + code)
    return variants
