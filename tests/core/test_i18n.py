"""The English catalogue: complete, compiled, and chosen for the right people.

The message ids are the Simplified Chinese texts. Messages are extracted from the source tree at
test time with the same mapping as babel.cfg, so a string added anywhere without an English
translation fails here, naming it. How to refresh the catalogue: see the top of babel.cfg.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.conftest import csrf_token

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "pos" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")

# What babel.cfg's refresh command passes with -k, on top of Babel's defaults (_, gettext,
# ngettext, pgettext, N_ …).
EXTRA_KEYWORDS = {
    "_l": None,
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
    "lazy_pgettext": ((1, "c"), 2),
}
KEYWORDS = {**DEFAULT_KEYWORDS, **EXTRA_KEYWORDS}
GETTEXT_MODULES = {"flask_babel", "babel.support", "gettext"}
SOURCE_PACKAGES = ("pos", "inventory", "kiosks")

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa%])")


def _key(msgid) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


@pytest.fixture(scope="module")
def extracted() -> dict[tuple[str, str | None], list[str]]:
    """(msgid, context) -> where it is used, from the source tree as babel.cfg maps it."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh, filename="babel.cfg")
    found: dict[tuple[str, str | None], list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        found.setdefault((_key(message), context), []).append(f"{filename}:{lineno}")
    return found


@pytest.fixture(scope="module")
def catalog():
    with open(PO, "rb") as fh:
        return read_po(fh, locale="en")


def test_babel_cfg_covers_the_packages_and_templates(extracted):
    assert len(extracted) > 50  # the mapping finds messages at all
    places = {place.split("/", 1)[0] for uses in extracted.values() for place in uses}
    assert {"pos", "templates"} <= places


def test_every_gettext_alias_in_the_source_is_an_extraction_keyword():
    """`from flask_babel import lazy_gettext as _t` would hide every _t("…") from extraction."""
    unknown = []
    for package in SOURCE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module in GETTEXT_MODULES:
                    for alias in node.names:
                        if "gettext" in alias.name:
                            name = alias.asname or alias.name
                            if name not in KEYWORDS:
                                unknown.append(f"{path.relative_to(ROOT)}: {alias.name} as {name}")
    assert not unknown, (
        "gettext functions imported under a name that extraction does not look for; use _ / _l "
        "or add the name to the -k list in babel.cfg and EXTRA_KEYWORDS:\n  " + "\n  ".join(unknown)
    )


def test_every_message_has_an_english_translation(extracted, catalog):
    missing = []
    for (msgid, context), uses in sorted(extracted.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        message = catalog.get(msgid, context=context)
        strings = () if message is None else (
            message.string if isinstance(message.string, (tuple, list)) else (message.string,)
        )
        if message is None or not strings or not all(s and s.strip() for s in strings) or message.fuzzy:
            missing.append(f"{msgid!r}  ({uses[0]})")
    assert not missing, (
        f"{len(missing)} message(s) without an English translation in {PO.relative_to(ROOT)} "
        "(refresh the catalogue as babel.cfg says, translate, compile):\n  " + "\n  ".join(missing)
    )


def test_catalogue_has_no_fuzzy_entries_and_says_it_is_english(catalog):
    assert str(catalog.locale) == "en"
    fuzzy = [_key(m.id) for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy entries are not used at run time; review them: {fuzzy}"


def test_translations_are_english(catalog):
    """A msgstr that still holds Chinese is usually a copied msgid."""
    chinese = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
        if any(CJK.search(s or "") for s in strings):
            chinese.append(_key(message.id))
    assert not chinese, f"translations still in Chinese: {chinese}"


def test_placeholders_are_kept(catalog):
    assert not [(m.id, errors) for m, errors in catalog.check()], "Babel's checkers found problems"
    mismatched = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, (tuple, list)) else (message.id,)
        strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
        wanted = {m for i in ids for m in PLACEHOLDER.findall(i)}
        for string in strings:
            got = set(PLACEHOLDER.findall(string))
            if got != wanted:
                mismatched.append(f"{_key(message.id)!r}: {sorted(wanted)} vs {string!r}: {sorted(got)}")
    assert not mismatched, "placeholders differ between msgid and translation:\n  " + "\n  ".join(mismatched)


def test_compiled_catalogue_matches_the_po(catalog):
    assert MO.exists(), f"{MO.relative_to(ROOT)} is missing: run pybabel compile (see babel.cfg)"
    with open(MO, "rb") as fh:
        compiled = read_mo(fh)

    def entries(cat):
        out = {}
        for m in cat:
            if not m.id or m.fuzzy:
                continue
            strings = m.string if isinstance(m.string, (tuple, list)) else (m.string,)
            if all(strings):
                out[(m.context, m.id if isinstance(m.id, str) else tuple(m.id))] = (
                    m.string if isinstance(m.string, str) else tuple(m.string)
                )
        return out

    in_po, in_mo = entries(catalog), entries(compiled)
    stale = sorted(_key(k[1]) for k in in_po.keys() ^ in_mo.keys()) + sorted(
        _key(k[1]) for k in in_po.keys() & in_mo.keys() if in_po[k] != in_mo[k]
    )
    assert not stale, (
        "messages.mo is out of date with messages.po (run: pybabel compile -d pos/translations -l en): "
        + ", ".join(stale[:20])
    )


# --- which language a person gets -----------------------------------------------------------

ENGLISH_BROWSER = {"Accept-Language": "en-US,en;q=0.9"}
CHINESE_BROWSER = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


def test_login_page_is_chinese_by_default(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert "密码登录" in html and ">登录</button>" in html
    assert "Log in" not in html


def test_login_page_is_chinese_for_a_chinese_browser(client):
    html = client.get("/login", headers=CHINESE_BROWSER).get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert ">登录</button>" in html and "用户名" in html


def test_login_page_is_english_when_the_browser_prefers_english(client):
    html = client.get("/login", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert '<html lang="en">' in html
    assert ">Log in</button>" in html
    assert "Username" in html and "Password" in html and "Quick PIN login" in html
    # nothing of the UI is left in Chinese; only the hall's own name is
    visible = re.sub(r"<[^>]+>", " ", html)
    assert set(CJK.findall(visible)) <= set("梵净山珍松桃馆")


def test_english_is_chosen_only_when_preferred_to_chinese(client):
    mixed = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    assert '<html lang="zh-CN">' in client.get("/login", headers=mixed).get_data(as_text=True)
    english_first = {"Accept-Language": "en-GB,en;q=0.9,zh-CN;q=0.5"}
    assert '<html lang="en">' in client.get("/login", headers=english_first).get_data(as_text=True)


def test_errors_and_messages_follow_the_browser(client, make_user):
    make_user("ann", "manager")
    token = csrf_token(client, "/login")
    response = client.post("/login", headers=ENGLISH_BROWSER, data={
        "pw-username": "ann", "pw-password": "wrong-password-1", "pw-csrf_token": token,
    })
    assert response.status_code == 401
    assert "Incorrect username or password" in response.get_data(as_text=True)

    response = client.get("/api/v1/no-such-thing", headers=ENGLISH_BROWSER)
    assert response.status_code == 404 and response.get_json() == {"error": "Page not found"}
    response = client.get("/api/v1/no-such-thing")
    assert response.get_json() == {"error": "页面不存在"}


def _set_language(client, locale: str) -> None:
    token = csrf_token(client, "/account")
    response = client.post("/account", data={
        "action": "language", "lang-locale": locale, "lang-csrf_token": token,
    })
    assert response.status_code == 302


def test_a_user_who_chose_english_gets_english_whatever_the_browser(client, auth, make_user):
    make_user("ann", "manager", display_name="陈经理")
    auth.login("ann")
    _set_language(client, "en")

    for headers in (CHINESE_BROWSER, {}, ENGLISH_BROWSER):
        html = client.get("/dashboard", headers=headers).get_data(as_text=True)
        assert '<html lang="en">' in html
        assert "Manager overview" in html and "Takings today" in html
        assert "陈经理 · Manager" in html  # the person's name stays as written
        assert "店长概览" not in html

    # and back to Chinese, even on an English browser
    _set_language(client, "zh")
    html = client.get("/dashboard", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "店长概览" in html

    # "follow the browser" again
    _set_language(client, "")
    assert "Manager overview" in client.get("/dashboard", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert "店长概览" in client.get("/dashboard", headers=CHINESE_BROWSER).get_data(as_text=True)


def test_after_logout_the_browser_decides_again(client, auth, make_user):
    make_user("ann", "manager")
    auth.login("ann")
    _set_language(client, "en")
    auth.logout()
    assert '<html lang="zh-CN">' in client.get("/login", headers=CHINESE_BROWSER).get_data(as_text=True)


def test_placeholders_are_filled_in_english(client, auth, make_user):
    make_user("c1", "cashier", display_name="王芳")
    auth.login("c1")
    _set_language(client, "en")
    html = client.get("/dashboard").get_data(as_text=True)  # a cashier may not: the 403 page
    assert "Your current role (Cashier) cannot use this function." in html
