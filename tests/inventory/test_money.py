"""inventory.money: integer fen and thousandths, rounded in one place. Property tests."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given, settings, strategies as st

from inventory.money import (
    AmountError,
    format_plain_yuan,
    format_qty,
    format_yuan,
    line_amount_fen,
    parse_qty_milli,
    parse_yuan,
    round_down_to_jiao,
    spread_fen,
)

# No deadline: under xdist on a busy machine a slow example is not a wrong one.
prop = settings(deadline=None, max_examples=300)

prices = st.integers(min_value=0, max_value=10**9)       # up to ¥10,000,000.00 a unit
quantities = st.integers(min_value=0, max_value=10**7)   # up to 10,000 units
fens = st.integers(min_value=0, max_value=10**17 - 1)    # every amount parse_yuan accepts


# --- line amounts ----------------------------------------------------------------------------

@prop
@given(prices, quantities)
def test_line_amount_is_half_up_rounding_of_price_times_qty(price, qty):
    exact = Decimal(price) * Decimal(qty) / Decimal(1000)
    assert line_amount_fen(price, qty) == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@prop
@given(prices, quantities, quantities)
def test_line_amount_is_monotone_in_qty(price, q1, q2):
    low, high = sorted((q1, q2))
    assert line_amount_fen(price, low) <= line_amount_fen(price, high)


@prop
@given(prices, st.integers(min_value=0, max_value=10**4))
def test_line_amount_is_exact_for_whole_pieces(price, pieces):
    assert line_amount_fen(price, pieces * 1000) == price * pieces


@pytest.mark.parametrize("price,qty,expected", [
    (3800, 523, 1987),   # ¥38.00/kg × 0.523 kg = ¥19.874 → ¥19.87
    (1, 500, 1),         # 0.5 fen → 1 (half up)
    (1, 499, 0),
    (3, 500, 2),         # 1.5 fen → 2 (half up, not to even)
    (5, 100, 1),         # 0.5 fen → 1
    (2999, 1500, 4499),  # ¥29.99 × 1.5 = 4498.5 fen → 4499
    (0, 1234, 0),
])
def test_line_amount_examples(price, qty, expected):
    assert line_amount_fen(price, qty) == expected


@pytest.mark.parametrize("price,qty", [(-1, 1000), (100, -1)])
def test_line_amount_refuses_negatives(price, qty):
    with pytest.raises(AmountError):
        line_amount_fen(price, qty)


# --- spreading an amount over lines ----------------------------------------------------------

weight_lists = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20)


@st.composite
def amount_within_weights(draw):
    """A discount or rounding no larger than the lines' gross total (the case at a till)."""
    weights = draw(weight_lists.filter(lambda ws: sum(ws) > 0))
    amount = draw(st.integers(min_value=0, max_value=sum(weights)))
    return amount, weights


def largest(weights: list[int]) -> int:
    """The index of the largest weight, the first of equal ones."""
    return max(range(len(weights)), key=lambda i: (weights[i], -i))


@prop
@given(st.integers(min_value=0, max_value=10**9), weight_lists)
def test_shares_are_non_negative_and_add_up_exactly(amount, weights):
    shares = spread_fen(amount, weights)
    assert len(shares) == len(weights)
    assert all(share >= 0 for share in shares)
    assert sum(shares) == amount


@prop
@given(amount_within_weights())
@example((3, [2, 1, 1]))            # the remainder (2) does not fit on the largest line (2)
@example((1999, [1000, 500, 500]))  # everything but one fen
@example((9, [9]))
def test_no_share_exceeds_its_line_when_the_amount_fits(case):
    amount, weights = case
    shares = spread_fen(amount, weights)
    assert sum(shares) == amount
    assert all(0 <= share <= weight for share, weight in zip(shares, weights))


@prop
@given(amount_within_weights())
def test_shares_are_proportional_within_rounding(case):
    """Each share is at least its exact pro-rata part rounded down, and the fen added on top of
    those floors (the remainder) are fewer than the number of lines."""
    amount, weights = case
    shares = spread_fen(amount, weights)
    total = sum(weights)
    for share, weight in zip(shares, weights):
        exact = Fraction(amount * weight, total)
        assert exact - 1 < share < exact + len(weights)
        assert share >= amount * weight // total


@prop
@given(amount_within_weights())
def test_the_remainder_goes_to_the_largest_line(case):
    amount, weights = case
    shares = spread_fen(amount, weights)
    total = sum(weights)
    floors = [amount * w // total for w in weights]
    remainder = amount - sum(floors)
    big = largest(weights)
    assert 0 <= remainder < len(weights)
    if floors[big] + remainder <= weights[big]:
        # the usual case: every other line gets exactly its rounded-down share
        assert shares[big] == floors[big] + remainder
        assert all(shares[i] == floors[i] for i in range(len(weights)) if i != big)
    else:
        # the largest line is filled up to its own amount before any other line gets more
        assert shares[big] == weights[big]


@prop
@given(st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=10),
       st.integers(min_value=0, max_value=1000))
def test_exact_proportions_are_kept_exactly(weights, factor):
    amount = factor * sum(weights)  # a whole multiple of the total: every share is exact
    assert spread_fen(amount, weights) == [factor * w for w in weights]


@pytest.mark.parametrize("amount,weights,expected", [
    (5, [300, 200, 100], [4, 1, 0]),   # floors 2, 1, 0; remainder 2 to the largest line
    (2, [100, 100, 100], [2, 0, 0]),   # equal lines: the first of them takes the remainder
    (2, [100, 300, 300], [0, 2, 0]),
    (3, [100, 100, 100], [1, 1, 1]),
    (0, [100, 200], [0, 0]),
    (10, [0, 0], [10, 0]),             # nothing to weigh by: all on the first line
    (0, [], []),
])
def test_spread_examples(amount, weights, expected):
    assert spread_fen(amount, weights) == expected


@pytest.mark.parametrize("amount,weights", [(-1, [100]), (5, []), (5, [100, -1])])
def test_spread_refuses_what_cannot_be_spread(amount, weights):
    with pytest.raises(AmountError):
        spread_fen(amount, weights)


# --- cash rounding (抹零) ---------------------------------------------------------------------

@prop
@given(st.integers(min_value=0, max_value=10**12))
def test_round_down_to_jiao(amount):
    rounded = round_down_to_jiao(amount)
    assert rounded <= amount          # never rounds up: that would be unlawful
    assert rounded % 10 == 0
    assert amount - rounded < 10
    assert round_down_to_jiao(rounded) == rounded


@pytest.mark.parametrize("amount,expected", [(1289, 1280), (1280, 1280), (9, 0), (0, 0), (19, 10)])
def test_round_down_to_jiao_examples(amount, expected):
    assert round_down_to_jiao(amount) == expected


def test_round_down_to_jiao_refuses_negatives():
    with pytest.raises(AmountError):
        round_down_to_jiao(-1)


# --- parsing and formatting yuan -------------------------------------------------------------

@prop
@given(fens)
@example(0)
@example(5)
@example(100)
@example(123450)
def test_plain_yuan_round_trip(fen):
    assert parse_yuan(format_plain_yuan(fen)) == fen


@prop
@given(fens)
def test_displayed_yuan_parses_back(fen):
    assert parse_yuan(format_yuan(fen)) == fen
    assert parse_yuan(format_yuan(fen, symbol="￥")) == fen


@pytest.mark.parametrize("text,fen", [
    ("12.8", 1280), ("12.80", 1280), ("12", 1200), ("¥12", 1200), ("￥ 12.5", 1250),
    ("1,280.00", 128000), ("1，280", 128000), (" 0.05 ", 5), (".5", 50), ("7.", 700),
    ("12.800", 1280),  # trailing zeros are not extra precision
    ("0", 0), ("+3", 300), ("１２.５", 1250),  # full-width digits from a Chinese IME
    (12.8, 1280), (3, 300),
])
def test_parse_yuan_examples(text, fen):
    assert parse_yuan(text) == fen


@prop
@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=99),
       st.integers(min_value=1, max_value=9))
def test_parse_yuan_refuses_three_decimals(yuan, cents, third):
    with pytest.raises(AmountError, match="最多两位小数"):
        parse_yuan(f"{yuan}.{cents:02d}{third}")


@pytest.mark.parametrize("value", [12.345, 0.1 + 0.2, 1.005])
def test_parse_yuan_refuses_floats_with_more_than_two_decimals(value):
    with pytest.raises(AmountError):
        parse_yuan(value)


@prop
@given(st.integers(min_value=1, max_value=10**12))
def test_parse_yuan_refuses_negatives(fen):
    with pytest.raises(AmountError, match="不能为负数"):
        parse_yuan("-" + format_plain_yuan(fen))


@prop
@given(st.text(alphabet=st.characters(categories=["L", "P", "S", "Z"], exclude_characters="¥￥,，.+-"),
               min_size=1, max_size=10))
def test_parse_yuan_refuses_text(text):
    with pytest.raises(AmountError):
        parse_yuan(text)


@pytest.mark.parametrize("text", [
    "", " ", ".", "abc", "十二元", "12元", "12.3.4", "1 2", "--1", "1-",
    "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "Inf",
    "1e2", "1E-2", "1e99999999",  # an exponent is not how anybody types money (and 1e99999999 would hang)
    "9" * 40,                     # more digits than any amount: refused, not rounded
    "1234567890123456789012345678.9",
])
def test_parse_yuan_refuses_what_is_not_an_amount(text):
    with pytest.raises(AmountError):
        parse_yuan(text)


@pytest.mark.parametrize("fen,text", [
    (1280, "¥12.80"), (-5, "-¥0.05"), (123450, "¥1,234.50"), (0, "¥0.00"),
    (100000000, "¥1,000,000.00"), (7, "¥0.07"), (-123450, "-¥1,234.50"),
])
def test_format_yuan_examples(fen, text):
    assert format_yuan(fen) == text


def test_format_yuan_for_receipts_uses_the_full_width_sign():
    assert format_yuan(1280, symbol="￥") == "￥12.80"


@pytest.mark.parametrize("fen,text", [(1280, "12.80"), (-5, "-0.05"), (123450, "1234.50"), (0, "0.00")])
def test_format_plain_yuan_examples(fen, text):
    assert format_plain_yuan(fen) == text


# --- quantities ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,by_weight,milli", [
    ("3", False, 3000), ("1", False, 1000), ("2.000", False, 2000), (" 12 ", False, 12000),
    ("0.523", True, 523), ("1.5", True, 1500), ("2", True, 2000), ("0.001", True, 1), (".25", True, 250),
])
def test_parse_qty_examples(text, by_weight, milli):
    assert parse_qty_milli(text, by_weight=by_weight) == milli


@pytest.mark.parametrize("text,by_weight,message", [
    ("1.5", False, "必须是整数"),    # pieces are whole
    ("0.523", False, "必须是整数"),
    ("1.2345", True, "最多三位小数"),
    ("0.0001", True, "最多三位小数"),
    ("0", True, "大于零"), ("0.000", True, "大于零"), ("-1", False, "大于零"), ("-0.5", True, "大于零"),
    ("abc", True, "格式不正确"), ("NaN", True, "格式不正确"), ("Infinity", False, "格式不正确"),
    ("1e3", False, "格式不正确"), ("", False, "格式不正确"),
])
def test_parse_qty_refusals(text, by_weight, message):
    with pytest.raises(AmountError, match=message):
        parse_qty_milli(text, by_weight=by_weight)


@prop
@given(st.integers(min_value=1, max_value=10**9))
def test_weighed_qty_round_trip(milli):
    assert parse_qty_milli(format_qty(milli, by_weight=True), by_weight=True) == milli


@prop
@given(st.integers(min_value=1, max_value=10**6))
def test_counted_qty_round_trip(pieces):
    text = format_qty(pieces * 1000, by_weight=False)
    assert text == str(pieces)
    assert parse_qty_milli(text, by_weight=False) == pieces * 1000


@pytest.mark.parametrize("milli,by_weight,text", [
    (523, True, "0.523"), (2000, True, "2.000"), (3000, False, "3"), (1500, False, "1.5"), (-2000, False, "-2"),
])
def test_format_qty_examples(milli, by_weight, text):
    assert format_qty(milli, by_weight=by_weight) == text
