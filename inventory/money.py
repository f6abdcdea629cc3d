"""Money is integer fen; quantities are integer thousandths of the product's unit (qty_milli).

Every amount in the project is computed by the functions here, so that rounding happens in one
place. There is no float anywhere on the way.
"""
from __future__ import annotations

import re

MILLI = 1000


class AmountError(ValueError):
    """A money or quantity value that a person typed and that cannot be used."""


def line_amount_fen(unit_price_fen: int, qty_milli: int) -> int:
    """Unit price × quantity, rounded half up to the fen.

    ``qty_milli`` is thousandths of the unit: 523 g of a ¥38.00/kg product is 38.00 × 0.523 =
    ¥19.874 → ¥19.87; 1.5 pieces would be 1500.
    """
    if unit_price_fen < 0 or qty_milli < 0:
        raise AmountError("单价和数量不能为负数")
    return (unit_price_fen * qty_milli + MILLI // 2) // MILLI


def spread_fen(amount_fen: int, weights: list[int]) -> list[int]:
    """Split ``amount_fen`` over lines in proportion to ``weights`` (their gross amounts).

    Each share is rounded down and the remainder goes to the largest line (the first of equal
    ones), so the shares add up to ``amount_fen`` exactly. Used to spread order discounts and
    cash rounding (抹零) so that every fen paid belongs to exactly one sale line.

    When ``amount_fen`` is at most the sum of the weights, no share exceeds its own weight (no
    line's net amount goes below zero): a remainder that does not fit on the largest line
    continues on the next largest, and so on.
    """
    if amount_fen < 0:
        raise AmountError("分摊金额不能为负数")
    if not weights:
        if amount_fen:
            raise AmountError("没有商品行，无法分摊金额")
        return []
    if any(w < 0 for w in weights):
        raise AmountError("分摊权重不能为负数")
    total = sum(weights)
    if total == 0:
        shares = [0] * len(weights)
        shares[0] = amount_fen
        return shares
    shares = [amount_fen * w // total for w in weights]
    remainder = amount_fen - sum(shares)
    by_size = sorted(range(len(weights)), key=lambda i: (-weights[i], i))
    for i in by_size:
        room = weights[i] - shares[i]
        if room > 0 and remainder > 0:
            taken = min(room, remainder)
            shares[i] += taken
            remainder -= taken
    shares[by_size[0]] += remainder  # only when amount_fen exceeds the weights' sum
    return shares


def round_down_to_jiao(amount_fen: int) -> int:
    """抹零: drop the fen below a jiao. Only ever rounds down, in the customer's favour."""
    if amount_fen < 0:
        raise AmountError("金额不能为负数")
    return amount_fen - amount_fen % 10


def format_yuan(amount_fen: int, *, symbol: str = "¥") -> str:
    """¥12.80 on screens; receipts pass symbol='￥' (full width has one GB18030 code)."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{symbol}{yuan:,}.{fen:02d}"


def format_plain_yuan(amount_fen: int) -> str:
    """12.80, for CSV cells and input fields."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{yuan}.{fen:02d}"


# A number as people type it: digits with an optional decimal point, no exponent ("1e9"), no
# NaN or Infinity. Digits are counted as text, so nothing is rounded on the way and a long string
# cannot make the conversion to an integer take minutes.
_NUMBER = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")
MAX_WHOLE_DIGITS = 15


def _split_number(text: str, cleaned: str, what: str) -> tuple[bool, str, str]:
    """(negative, whole digits, decimals without trailing zeros) of a plain decimal number."""
    match = _NUMBER.fullmatch(cleaned)
    if not match or not (match.group(2) or match.group(3)):
        raise AmountError(f"{what}格式不正确：{text}")
    sign, whole, decimals = match.group(1), match.group(2).lstrip("0"), (match.group(3) or "").rstrip("0")
    if len(whole) > MAX_WHOLE_DIGITS:
        raise AmountError(f"{what}太大：{text}")
    return sign == "-", whole, decimals


def parse_yuan(text: str) -> int:
    """What a person types as yuan ("12.8", "12.80", "¥12", "1,280.00") → fen. At most 2 decimals."""
    cleaned = str(text).strip().replace(",", "").replace("，", "").lstrip("¥￥").strip()
    negative, whole, decimals = _split_number(text, cleaned, "金额")
    if len(decimals) > 2:
        raise AmountError(f"金额最多两位小数：{text}")
    fen = int(whole or "0") * 100 + int(decimals.ljust(2, "0"))
    if negative and fen:
        raise AmountError("金额不能为负数")
    return fen


def parse_qty_milli(text: str, *, by_weight: bool) -> int:
    """A quantity as typed: pieces for counted goods ("3"), kilograms for weighed ones ("0.523")."""
    negative, whole, decimals = _split_number(text, str(text).strip(), "数量")
    milli = int(whole or "0") * MILLI + int(decimals.ljust(3, "0")[:3])
    if negative or (milli == 0 and len(decimals) <= 3):
        raise AmountError("数量必须大于零")
    if len(decimals) > 3:
        raise AmountError("数量最多三位小数")
    if not by_weight and decimals:
        raise AmountError("按件销售的商品数量必须是整数")
    return milli


def format_qty(qty_milli: int, *, by_weight: bool) -> str:
    """3 for pieces, 0.523 for weighed goods (always 3 decimals)."""
    sign = "-" if qty_milli < 0 else ""
    whole, frac = divmod(abs(qty_milli), MILLI)
    if by_weight:
        return f"{sign}{whole}.{frac:03d}"
    if frac:
        return f"{sign}{whole}.{frac:03d}".rstrip("0")
    return f"{sign}{whole}"
