"""Simplified Chinese by default; English per user or by the browser's Accept-Language.

Message ids are the Chinese texts themselves, so a string that someone forgot to translate still
shows in the hall's language; the English catalogue lives in pos/translations/en.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import Babel
from flask_login import current_user

LOCALES = ("zh", "en")
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"  # pos/translations


def select_locale() -> str:
    if current_user and getattr(current_user, "is_authenticated", False) and current_user.locale in LOCALES:
        return current_user.locale
    if request:
        # Chinese wins unless the browser prefers English to every Chinese variant.
        best = request.accept_languages.best_match(["zh", "zh-CN", "zh-Hans", "en"], default="zh")
        if best and best.startswith("en"):
            return "en"
    return "zh"


def html_lang(locale: str) -> str:
    return "en" if locale == "en" else "zh-CN"


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)
