"""One payment-code rule, two engines: the till's static/js/till_paycode.js, run in a real headless
Chromium, recognises exactly the codes the server's pos.payments.providers.provider_for_code
recognises (WeChat: 18 digits starting 10–15; Alipay: 16–24 digits starting 25–30) — the edges by
hand, then generated digit strings around them."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pos.payments.providers import provider_for_code

pytestmark = pytest.mark.browser

PAYCODE_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "till_paycode.js"


@pytest.fixture(scope="module")
def paycode_page(chromium):
    context = chromium.new_context(locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.set_content("<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>paycode</title></html>")
    page.add_script_tag(content=PAYCODE_JS.read_text(encoding="utf-8"))
    yield page
    context.close()


def in_browser(page, codes: list[str]) -> list:
    return page.evaluate("(codes) => codes.map((c) => self.SongtaoPaycode.providerForCode(c))", codes)


EDGES = {
    "134567890123450001": "wechat", "100000000000000000": "wechat", "159999999999999999": "wechat",
    "094567890123450001": None, "164567890123450001": None,            # 18 digits, outside 10–15
    "13456789012345000": None, "1345678901234500012": None,            # 17 and 19 digits
    "2845678901230001": "alipay", "2500000000000000": "alipay", "300000000000000000000000": "alipay",
    "284567890123000": None, "2845678901230001234567890": None,        # 15 and 25 digits
    "2445678901230001": None, "3145678901230001": None,                # outside 25–30
    "6901234567892": None, "2212345012345": None,                      # an EAN-13, a scale label
    "13456789012345000a": None, "1345678901 3450001": None, "": None, "１３４５６７８９０１２３４５０００１": None,
}


def test_the_edges_are_read_alike(paycode_page):
    codes = list(EDGES)
    assert [provider_for_code(c) for c in codes] == list(EDGES.values())  # the server's rule as stated
    assert in_browser(paycode_page, codes) == list(EDGES.values())


def test_generated_digit_strings_are_read_alike(paycode_page):
    seen = []

    @settings(max_examples=600, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(5, 35), st.integers(12, 27), st.integers(0, 10**27))
    def alike(head, length, body):
        code = (f"{head:02d}" + f"{body:027d}")[:length]
        seen.append(code)
        assert in_browser(paycode_page, [code]) == [provider_for_code(code)]

    alike()
    kinds = {provider_for_code(c) for c in seen}
    assert kinds == {"wechat", "alipay", None}  # the generator reached every answer


def test_the_payment_line_shows_the_transaction_numbers_tail(paycode_page):
    assert paycode_page.evaluate("self.SongtaoPaycode.tail('4200001234202612050123456789')") == "456789"
    assert paycode_page.evaluate("self.SongtaoPaycode.tail('1234')") == "1234"
