"""Money is integer fen; quantities are integer thousandths of the product's unit (qty_milli).

Every amount in the project is computed by the functions here, so that rounding happens in one
place. There is no float anywhere on the way.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

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
        largest = 0
    else:
        shares = [amount_fen * w // total for w in weights]
        largest = max(range(len(weights)), key=lambda i: (weights[i], -i))
    shares[largest] += amount_fen - sum(shares)
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


def parse_yuan(text: str) -> int:
    """What a person types as yuan ("12.8", "12.80", "¥12", "1,280.00") → fen. At most 2 decimals."""
    cleaned = str(text).strip().replace(",", "").replace("，", "").lstrip("¥￥").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise AmountError(f"金额格式不正确：{text}") from None
    if not value.is_finite():
        raise AmountError(f"金额格式不正确：{text}")
    if value < 0:
        raise AmountError("金额不能为负数")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise AmountError(f"金额最多两位小数：{text}")
    return int(fen)


def parse_qty_milli(text: str, *, by_weight: bool) -> int:
    """A quantity as typed: pieces for counted goods ("3"), kilograms for weighed ones ("0.523")."""
    cleaned = str(text).strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise AmountError(f"数量格式不正确：{text}") from None
    if not value.is_finite() or value <= 0:
        raise AmountError("数量必须大于零")
    milli = value * MILLI
    if milli != milli.to_integral_value():
        raise AmountError("数量最多三位小数")
    if not by_weight and value != value.to_integral_value():
        raise AmountError("按件销售的商品数量必须是整数")
    return int(milli)


def format_qty(qty_milli: int, *, by_weight: bool) -> str:
    """3 for pieces, 0.523 for weighed goods (always 3 decimals)."""
    sign = "-" if qty_milli < 0 else ""
    whole, frac = divmod(abs(qty_milli), MILLI)
    if by_weight:
        return f"{sign}{whole}.{frac:03d}"
    if frac:
        return f"{sign}{whole}.{frac:03d}".rstrip("0")
    return f"{sign}{whole}"
