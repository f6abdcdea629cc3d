"""Scale-label barcodes: the hall's label scales print EAN-13 labels for weighed goods.

A rule is written in the style of a nomenclature: literal digits, then fields in braces, then
``C`` for the EAN-13 check digit. ``{PPPPP}`` is the product's scale code (PLU), ``{WWWWW}`` the
weight in grams (= qty_milli of a per-kg product), ``{$$$$$}`` the price in fen. Examples:
``2{PPPPP}{WWWWW}C`` (weight) and ``2{PPPPP}{$$$$$}C`` (price). Leading zeros are significant in
the pattern and insignificant in the values: with ``2{PPPPP}{WWWWW}C``, ``200101005236`` is
PLU 101 and 523 g. Labels are 8, 12 or 13 digits with the GS1 check digit (EAN-8, UPC-A, EAN-13);
a 13-digit scale usually has a two-digit prefix, e.g. ``22{PPPPP}{WWWWW}C``.

``DEFAULT_RULE`` (``2{PPPPP}{WWWWW}C``: prefix 2, five-digit PLU, five-digit weight in grams, the
check digit) is what most label scales print out of the box. A hall that has configured no rule
at all reads labels with it, and ``songtao init-db`` and the demo record it as the first rule, so
that the manager sees it (and can switch it off) on the rules page.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

from flask_babel import lazy_gettext as _l
from stdnum import ean

from .errors import ValidationError

DEFAULT_RULE = "2{PPPPP}{WWWWW}C"
DEFAULT_RULE_NAME = "称重秤签（默认：2 + 5 位秤码 + 5 位克重）"

FIELD_RE = re.compile(r"\{(P+|W+|\$+)\}")
DIGITS_RE = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "²" and "١"


class RuleError(ValidationError):
    """A rule pattern that cannot be used; the message says why."""

    def __init__(self, message, field: Optional[str] = "pattern") -> None:
        super().__init__(message, field)


@dataclass(frozen=True)
class ParsedRule:
    pattern: str
    prefix: str
    plu: tuple[int, int]             # (start, end) in the code
    value: tuple[int, int]
    value_kind: str                  # "weight" or "price"
    length: int


@dataclass(frozen=True)
class ScaleLabel:
    plu: int
    weight_grams: Optional[int] = None
    price_fen: Optional[int] = None
    pattern: str = ""


def parse_rule(pattern: str) -> ParsedRule:
    if pattern is not None and not isinstance(pattern, str):
        raise RuleError(_l("规则必须以校验位 C 结尾"))
    pattern = (pattern or "").strip()
    if not pattern.endswith("C"):
        raise RuleError(_l("规则必须以校验位 C 结尾"))
    body = pattern[:-1]
    pos = 0
    out_len = 0
    prefix = ""
    plu = value = None
    kind = None
    for match in FIELD_RE.finditer(body):
        literal = body[pos:match.start()]
        if literal and not DIGITS_RE.fullmatch(literal):
            raise RuleError(_l("规则中只能有数字、字段和结尾的 C：%(text)s", text=literal))
        if plu is None and value is None:
            prefix += literal
        elif literal:
            raise RuleError(_l("字段之间不能夹数字"))
        out_len += len(literal)
        token = match.group(1)
        span = (out_len, out_len + len(token))
        if token[0] == "P":
            if plu is not None:
                raise RuleError(_l("规则只能有一个商品码字段 {P…}"))
            plu = span
        else:
            if value is not None:
                raise RuleError(_l("规则只能有一个重量或金额字段"))
            value = span
            kind = "weight" if token[0] == "W" else "price"
        out_len += len(token)
        pos = match.end()
    if body[pos:]:
        raise RuleError(_l("校验位 C 之前不能再有数字"))
    if plu is None or value is None:
        raise RuleError(_l("规则需要一个商品码字段 {PPPPP} 和一个重量 {WWWWW} 或金额 {$$$$$} 字段"))
    if not prefix:
        raise RuleError(_l("规则需要一个数字前缀（如 2），以免与商品条码混淆"))
    length = out_len + 1
    if length not in (8, 12, 13):
        raise RuleError(_l("秤签条码应为 8、12 或 13 位（EAN-8 / UPC-A / EAN-13），此规则为 %(n)s 位", n=length))
    return ParsedRule(pattern, prefix, plu, value, kind, length)


def decode(code: str, rules: Iterable[str]) -> Optional[ScaleLabel]:
    """The first rule that matches ``code`` decodes it; None when no rule matches.

    A code that matches a rule's prefix and length but fails the check digit is not a label
    (a misread): None as well, so the till says "unknown code" rather than guessing.
    """
    code = (code or "").strip()
    if not DIGITS_RE.fullmatch(code):
        return None
    for pattern in rules:
        rule = parse_rule(pattern)
        if len(code) != rule.length or not code.startswith(rule.prefix):
            continue
        if not ean.is_valid(code):
            return None
        plu = int(code[rule.plu[0]:rule.plu[1]])
        value = int(code[rule.value[0]:rule.value[1]])
        if rule.value_kind == "weight":
            return ScaleLabel(plu=plu, weight_grams=value, pattern=pattern)
        return ScaleLabel(plu=plu, price_fen=value, pattern=pattern)
    return None


def encode(pattern: str, *, plu: int, value: int) -> str:
    """The label a scale would print (for tests, demo data and shelf labels)."""
    rule = parse_rule(pattern)
    plu_len = rule.plu[1] - rule.plu[0]
    value_len = rule.value[1] - rule.value[0]
    if plu < 0 or value < 0 or len(str(plu)) > plu_len or len(str(value)) > value_len:
        raise RuleError(_l("商品码或数值超出规则的位数"), None)
    digits = [""] * (rule.length - 1)
    digits[: len(rule.prefix)] = list(rule.prefix)
    digits[rule.plu[0]:rule.plu[1]] = list(str(plu).zfill(plu_len))
    digits[rule.value[0]:rule.value[1]] = list(str(value).zfill(value_len))
    body = "".join(digits)
    return body + ean.calc_check_digit(body)
