"""Issue 18 point 18 (d): a cashier who chose English gets no Chinese on the till page nor on the
receipt preview, in a real headless Chromium at the till PC's 1366×768 — outside data (product
names, the hall's name, the till's and the cashier's names, suppliers, certificate numbers),
which stay as they were entered. Every string the till's script shows comes from the page
(translated there), never from a Chinese literal in static/js/till.js.

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from inventory.models import Certificate, Product, Supplier
from pos.core.db import session_scope
from pos.models import Till, User
from tests.conftest import screenshot
from tests.fixtures.till_browser import (  # noqa: F401  (hall is a fixture)
    CASHIER_PIN,
    HONEY_EAN,
    TEA_EAN,
    hall,
    login_by_pin,
    pay_cash_exactly,
    scan,
    wait_focus_on_scan,
)

pytestmark = pytest.mark.browser

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff01-\uff5e]+")
TILL_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "till.js"

# Every piece of text the page holds, visible or not (dialogs, hidden notes, tooltips, labels for
# screen readers), and the messages the script will show.
PAGE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement.closest("script, style")) continue;
    out.push(node.textContent);
  }
  document.querySelectorAll("[placeholder], [title], [aria-label], [alt], input[type=button], input[type=submit]")
    .forEach((el) => ["placeholder", "title", "aria-label", "alt", "value"].forEach((a) => {
      if (el.hasAttribute(a) && (a !== "value" || el.type === "button" || el.type === "submit")) out.push(el.getAttribute(a));
    }));
  out.push(document.title);
  const messages = JSON.parse(document.getElementById("till-messages").textContent);
  Object.values(messages).forEach((m) => out.push(m));
  const config = JSON.parse(document.getElementById("till-config").textContent);
  (config.methods || []).forEach((m) => out.push(m.label));
  Object.values(config.method_labels || {}).forEach((m) => out.push(m));
  (config.denominations || []).forEach((d) => out.push(d.label));
  return out.join("\\n");
}"""


def data_strings(app) -> list[str]:
    """What was entered as data and may stay Chinese, longest first."""
    with session_scope(app) as s:
        names = [*s.scalars(select(Product.name)), *s.scalars(select(Supplier.name)),
                 *s.scalars(select(Certificate.number)), *s.scalars(select(Till.name)),
                 *s.scalars(select(User.display_name))]
    from pos.sales.receipts import HALL_NAME

    return sorted({n for n in [*names, HALL_NAME] if n}, key=len, reverse=True)


def chinese_outside_data(text: str, data: list[str]) -> list[str]:
    for name in data:
        text = text.replace(name, "")
    return sorted({m.group(0) for m in CJK.finditer(text)})


def test_point18d_till_js_has_no_chinese_strings():
    """The script's strings all come from the page: no Chinese inside a string literal (comments
    and the discount syntax's regular expressions, which read what a cashier types, are not shown)."""
    source = TILL_JS.read_text(encoding="utf-8")
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    found = []
    for n, line in enumerate(source.splitlines(), 1):
        code = re.sub(r"^\s*//.*$|\s//\s.*$", "", line)
        for literal in re.findall(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`(?:[^`\\]|\\.)*`', code):
            if CJK.search(literal):
                found.append(f"till.js:{n}: {literal}")
    assert not found, found


def test_point18d_receipt_text_labels_follow_the_language(app):
    """The printed lines' own words (refund, reprint, voided, change, certified amount) in English
    for an English preview, Chinese otherwise; the hall's and the product's names stay."""
    from flask_babel import force_locale

    from pos.sales.escpos import text_lines
    from pos.sales.receipts import HALL_NAME, Receipt, ReceiptLine

    def lines() -> str:
        receipt = Receipt(kind="refund", receipt_no="R-H1-20261126-0001", hall_name=HALL_NAME, hall_address="",
                          meta=[], lines=[ReceiptLine("梵净山翠峰茶 250g", "1", 16800, 16800, True)],
                          totals=[], payments=[], change_fen=200, certified_fen=16800, reprint=True, voided=True)
        return "\n".join(text_lines(receipt, 48))

    with app.test_request_context("/"):
        with force_locale("en"):
            english = lines()
        chinese = lines()
    assert chinese_outside_data(english, [HALL_NAME, "梵净山翠峰茶 250g"]) == [], english
    for word in ("Refund", "*** Reprint ***", "*** This sale has been voided ***", "Change",
                 "Certified produce in this sale"):
        assert word in english
    for word in ("退款单", "*** 重印 ***", "*** 此单已撤销 ***", "找零", "本单扶贫产品金额"):
        assert word in chinese


def test_point18d_the_till_in_english_has_no_chinese_outside_data(live_server, page, app, hall):  # noqa: F811
    with session_scope(app) as s:
        s.scalar(select(User).where(User.username == "c01")).locale = "en"
    data = data_strings(app)
    base = live_server
    login_by_pin(page, base, "c01", CASHIER_PIN)  # the browser prefers Chinese: the user's choice wins
    page.goto(f"{base}/till?till=H1")
    opening = page.locator("#dlg-open")
    opening.wait_for()
    assert page.locator("html").get_attribute("lang") == "en"
    assert chinese_outside_data(page.evaluate(PAGE_TEXT), data) == []
    screenshot(page, "till_english_open_shift")
    opening.locator('input[name="float"]').fill("0")
    opening.locator('input[name="float"]').press("Enter")
    page.wait_for_function("document.querySelector('#shift-info').textContent.includes('#')")
    wait_focus_on_scan(page)

    # every message the script asks for is on the page, in English
    used = set(re.findall(r'msg\("(\w+)"|MSG\.(\w+)', TILL_JS.read_text(encoding="utf-8")).__iter__())
    keys = {k for pair in used for k in pair if k}
    messages = page.evaluate("JSON.parse(document.getElementById('till-messages').textContent)")
    assert sorted(keys - set(messages)) == []

    scan(page, TEA_EAN)
    scan(page, HONEY_EAN)
    page.wait_for_function("document.querySelectorAll('#lines tbody tr').length === 2")
    page.locator("#scan").fill("0000000000000")
    page.keyboard.press("Enter")  # an unknown code: the message is English
    page.wait_for_function("document.querySelector('#scan-msg').textContent.length > 0")
    assert chinese_outside_data(page.evaluate(PAGE_TEXT), data) == []
    screenshot(page, "till_english_basket")

    pay_cash_exactly(page)
    preview = page.locator("#receipt-body .receipt")
    preview.wait_for()
    receipt_text = preview.inner_text()
    assert "Total" in receipt_text or "TOTAL" in receipt_text.upper()
    assert chinese_outside_data(receipt_text, data) == [], receipt_text
    assert preview.get_attribute("lang") == "en"
    assert "within 7 days with this receipt." in " ".join(receipt_text.split())  # English wraps by word
    assert chinese_outside_data(page.evaluate(PAGE_TEXT), data) == []
    screenshot(page, "till_english_receipt_preview")
