"""One pricing rule, two engines, proven equal (issue 14.2): the till's static/js/pricing.js, run in
a real headless Chromium, prices every generated basket exactly as the server does —
``pos.sales.pricing.compute_amounts`` and the figures of ``POST /api/v1/baskets/price`` (抹零 on
the wholly-cash price, the cash total beside it, the certified part): 2,000 baskets, every field,
to the fen. Known tricky baskets pin the spreading rule, deliberately wrong copies of the script
are caught, and the script runs in a worker (no window, no document) as a service worker needs."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from inventory.money import line_amount_fen, round_down_to_jiao, spread_fen
from tests.fixtures.pricing_js import (  # noqa: F401  (pricing_page is a fixture)
    PRICING_JS,
    differences,
    pricing_page,
    python_basket,
    same,
    till_baskets,
)

pytestmark = pytest.mark.browser

BASKETS = 2000


def test_2000_generated_baskets_price_to_the_fen_in_python_and_in_chromium(pricing_page):
    compared = []

    @settings(max_examples=BASKETS, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(till_baskets())
    def priced_alike(basket):
        compared.append(basket)
        assert differences(pricing_page, [basket]) == []

    priced_alike()
    assert len(compared) >= BASKETS
    # the generated baskets covered what matters: many lines, weighed goods, order discounts,
    # 抹零 that actually rounded, free lines and equal lines (the remainder's tie-break)
    assert max(len(b["lines"]) for b in compared) == 12
    assert any(ln["unit"] == "kg" and ln["qty_milli"] % 1000 for b in compared for ln in b["lines"])
    assert sum(1 for b in compared if b["order_discount_fen"]) > BASKETS // 4
    assert sum(1 for b in compared if python_basket(b)["rounding_fen"]) > BASKETS // 10
    assert any(all(ln["price_fen"] == 0 for ln in b["lines"]) for b in compared)
    assert any(len({ln["price_fen"] * ln["qty_milli"] for ln in b["lines"]}) < len(b["lines"]) for b in compared)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(amount=st.integers(0, 3_000_000_000),
       weights=st.lists(st.one_of(st.integers(0, 1_000_000_000), st.sampled_from([0, 1, 7, 10])),
                        min_size=1, max_size=12))
def test_spread_fen_and_line_amounts_match_inventory_money_even_beyond_2_to_the_53(pricing_page, amount, weights):
    """Shares of amounts above the weights' sum too (the rest stays on the largest line), and
    products far above 2^53 (BigInt, no float on the way)."""
    price, qty = weights[0], weights[-1] * 2
    js = pricing_page.evaluate(
        "([a, w, p, q]) => [SongtaoPricing.spreadFen(a, w), SongtaoPricing.lineAmountFen(p, q),"
        " SongtaoPricing.roundDownToJiao(a)]", [amount, weights, price, qty])
    assert js == [spread_fen(amount, weights), line_amount_fen(price, qty), round_down_to_jiao(amount)]


# --- baskets whose exact lines pin the rule ------------------------------------------------------

def _line(i, price, qty, *, unit="piece", discount=0, certified=False):
    return {"product_id": i, "sku": f"S{i}", "name": f"商品{i}", "unit": unit, "sold_by_weight": unit == "kg",
            "qty_milli": qty, "price_fen": price, "line_discount_fen": discount, "certified": certified,
            "certificate_no": "GZ-520628-2026-001" if certified else None}


TRICKY = [
    # The order discount fills the lines: the remainder that does not fit on the largest line
    # (3 fen) continues on the next largest, the first of equal ones — no net goes below zero.
    pytest.param(
        [_line(1, 3, 1000), _line(2, 2, 1000), _line(3, 2, 1000)], 6, True, False,
        [(3, 3, 0), (2, 2, 0), (2, 1, 1)], (7, 6, 0, 1), id="remainder-continues-on-next-largest"),
    # 抹零 8 fen (paid in cash) and an order discount spread pro rata, the remainder to the largest
    # line (the tea, second), not to the first; half up on the weighed 530 g (2040.5 → 2041).
    pytest.param(
        [_line(1, 3800, 2000), _line(2, 16800, 1000, certified=True), _line(3, 3850, 530, unit="kg"),
         _line(4, 3800, 1000)], 1003, True, True,
        [(7600, 254, 7346), (16800, 562, 16238), (2041, 68, 1973), (3800, 127, 3673)], (30241, 1003, 8, 29230),
        id="remainder-to-largest-not-first"),
    # Two equal lines: the remainder goes to the first of them.
    pytest.param(
        [_line(1, 999, 1000), _line(2, 999, 1000), _line(3, 1, 1000)], 5, True, True,
        [(999, 5, 994), (999, 4, 995), (1, 0, 1)], (1999, 5, 4, 1990), id="tie-to-first-of-equal"),
    # Line discounts weigh the spread by what is left after them (2000, 1500, 2000: the remainder to
    # the first of the two equal ones); paid by WeChat: no 抹零.
    pytest.param(
        [_line(1, 1000, 3000, discount=1000), _line(2, 1500, 1000), _line(3, 2001, 1000, discount=1)], 333, True,
        False, [(3000, 1122, 1878), (1500, 90, 1410), (2001, 122, 1879)], (6501, 1334, 0, 5167),
        id="line-discounts-wechat"),
]


@pytest.mark.parametrize("lines, order_discount, setting, cash, expected_lines, expected_totals", TRICKY)
def test_tricky_baskets_have_exactly_these_lines_in_both_engines(pricing_page, lines, order_discount, setting, cash,
                                                                 expected_lines, expected_totals):
    basket = {"lines": lines, "order_discount_fen": order_discount, "rounding_to_jiao_setting": setting,
              "paid_in_cash": cash}
    expected = python_basket(basket)
    assert [(ln["gross_fen"], ln["discount_fen"], ln["net_fen"]) for ln in expected["lines"]] == expected_lines
    assert (expected["subtotal_fen"], expected["discount_fen"], expected["rounding_fen"],
            expected["total_fen"]) == expected_totals
    assert differences(pricing_page, [basket]) == []


# --- a wrong rule in the script is caught -------------------------------------------------------

MUTANTS = {
    # the remainder to the first line (with room) instead of the largest
    "remainder-to-first-line": ("if (w[a] !== w[b]) return w[a] > w[b] ? -1 : 1;", "if (false) return 0;"),
    # ties to the last of equal lines
    "tie-to-last": ("return a - b;\n    });", "return b - a;\n    });"),
    # line amounts truncated instead of rounded half up
    "truncated-line-amount": ("BigInt(qty) + MILLI / 2n) / MILLI", "BigInt(qty)) / MILLI"),
    # 抹零 whatever the payment
    "rounding-for-any-payment": ("var rounding = opts.paidInCash ? cashRounding", "var rounding = true ? cashRounding"),
}


@pytest.fixture
def mutant_page(chromium):
    context = chromium.new_context()
    page = context.new_page()
    page.set_content("<!doctype html><meta charset='utf-8'><title>mutant</title>")

    def load(name):
        old, new = MUTANTS[name]
        source = PRICING_JS.read_text(encoding="utf-8")
        assert source.count(old) == 1, f"the mutant {name} no longer applies to pricing.js: update it"
        page.add_script_tag(content=source.replace(old, new))
        return page

    yield load
    context.close()


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_a_wrong_rule_in_the_script_is_caught(mutant_page, name):
    page = mutant_page(name)
    tricky = [{"lines": p.values[0], "order_discount_fen": p.values[1], "rounding_to_jiao_setting": p.values[2],
               "paid_in_cash": p.values[3]} for p in TRICKY]
    caught_by_tricky = bool(differences(page, tricky))

    @settings(max_examples=300, deadline=None, derandomize=True, database=None, phases=[Phase.generate])
    @given(till_baskets())
    def priced_alike(basket):
        assert differences(page, [basket]) == []

    with pytest.raises(AssertionError):
        priced_alike()
    assert caught_by_tricky  # and each is visible in the fixed baskets' exact lines


# --- the small rules and the checks ----------------------------------------------------------------

def test_cash_rounding_applies_only_to_a_sale_paid_wholly_in_cash(pricing_page):
    from pos.sales.pricing import cash_rounding_applies
    from pos.sales.service import PaymentIn

    cases = [(on, methods) for on in (True, False)
             for methods in ([], ["cash"], ["cash", "cash"], ["wechat"], ["cash", "alipay"], ["card"])]
    js = pricing_page.evaluate(
        "(cases) => cases.map(([on, ms]) => SongtaoPricing.cashRoundingApplies(on, ms.map((m) => ({method: m}))))",
        cases)
    assert js == [cash_rounding_applies(on, [PaymentIn(method=m, amount_fen=100) for m in ms]) for on, ms in cases]
    assert js[:3] == [True, True, True] and not any(js[3:])


def test_an_emptied_basket_prices_to_zero_as_the_api_answers(pricing_page):
    js = pricing_page.evaluate(
        "() => SongtaoPricing.priceBasket([], {orderDiscountFen: 0, roundingToJiaoSetting: true, paidInCash: true})")
    assert same(js) == same({"lines": [], "subtotal_fen": 0, "discount_fen": 0, "rounding_fen": 0, "total_fen": 0,
                             "certified_fen": 0, "uncertified_fen": 0, "rounding_to_jiao": True,
                             "cash_rounding_fen": 0, "cash_total_fen": 0})


@pytest.mark.parametrize("line, order_discount, message", [
    (_line(1, 3800, 0), 0, "第 1 行：数量必须大于零"),
    (_line(1, 3800, 1500), 0, "第 1 行：「商品1」按件销售，数量必须是整数件"),
    (_line(1, 3800, 1000, discount=3801), 0, "第 1 行：折扣不能超过该行金额"),
    (_line(1, 3800, 523, unit="kg"), 1988, "整单折扣不能超过应收金额"),
    (_line(1, -1, 1000), 0, "第 1 行单价必须是不小于零的整数（分）"),
])
def test_a_bad_basket_throws_the_servers_message(pricing_page, line, order_discount, message):
    good = _line(2, 100, 1000)
    error = pricing_page.evaluate(
        """([lines, d]) => { try { SongtaoPricing.priceBasket(lines, {orderDiscountFen: d}); return null; }
                             catch (e) { return e instanceof Error ? e.message : String(e); } }""",
        [[line, good] if message.startswith("第") else [line], order_discount])
    assert error == message


def test_the_script_runs_in_a_worker_without_window_or_document(pricing_page):
    """A service worker has no window and no document: the same classic script, loaded by
    importScripts in a worker, defines self.SongtaoPricing and prices as the page does."""
    result = pricing_page.evaluate(
        """(source) => new Promise((resolve, reject) => {
            const lib = URL.createObjectURL(new Blob([source], {type: 'text/javascript'}));
            const body = `importScripts('${lib}');
                const b = self.SongtaoPricing.priceBasket(
                    [{product_id: 1, sku: 'A', name: '茶', unit: 'piece', sold_by_weight: false, qty_milli: 3000,
                      price_fen: 3333, line_discount_fen: 0, certified: true, certificate_no: 'C1'}],
                    {orderDiscountFen: 5, roundingToJiaoSetting: true, paidInCash: true});
                postMessage({hasWindow: typeof window !== 'undefined', hasDocument: typeof document !== 'undefined',
                             total: b.total_fen, certified: b.certified_fen, rounding: b.rounding_fen,
                             day: self.SongtaoPricing.localDate('2026-11-30T16:00:00Z')});`;
            const worker = new Worker(URL.createObjectURL(new Blob([body], {type: 'text/javascript'})));
            worker.onmessage = (e) => { worker.terminate(); resolve(e.data); };
            worker.onerror = (e) => reject(new Error(e.message));
        })""",
        PRICING_JS.read_text(encoding="utf-8"))
    assert result == {"hasWindow": False, "hasDocument": False, "total": 9990, "certified": 9990, "rounding": 4,
                      "day": "2026-12-01"}
