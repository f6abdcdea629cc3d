"""Signed links to the public receipt page (the receipt's QR code).

The token is an HMAC of the receipt number under the app's secret key, so a receipt number alone
opens nothing and the numbers cannot be enumerated. Plain functions: no database, no session.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Optional
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from flask import current_app, url_for

__all__ = ["check_receipt_token", "receipt_no_from_scan", "receipt_token", "receipt_url"]

# 16 bytes of the HMAC-SHA256 are plenty against guessing, and keep the QR code small.
_TOKEN_BYTES = 16


def _key(secret_key: str | bytes) -> bytes:
    return secret_key.encode("utf-8") if isinstance(secret_key, str) else secret_key


def receipt_token(secret_key: str | bytes, receipt_no: str) -> str:
    """The 22-character urlsafe token for ``receipt_no``."""
    mac = hmac.new(_key(secret_key), b"receipt:" + receipt_no.encode("utf-8"), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:_TOKEN_BYTES]).rstrip(b"=").decode("ascii")


def check_receipt_token(secret_key: str | bytes, receipt_no: str, token: str | None) -> bool:
    if not token:
        return False
    expected = receipt_token(secret_key, receipt_no)
    return hmac.compare_digest(expected.encode("ascii"), token.encode("utf-8", "replace"))


def receipt_url(receipt_no: str) -> str:
    """The absolute public URL of a receipt, as printed in its QR code.

    A configured ``PUBLIC_BASE_URL`` (e.g. ``https://pos.example.cn``) replaces the scheme and
    host of the request, since a till may reach the server by a LAN address a phone cannot.
    """
    token = receipt_token(current_app.config["SECRET_KEY"], receipt_no)
    base = current_app.config.get("PUBLIC_BASE_URL")
    if base:
        path = url_for("public.receipt", receipt_no=receipt_no, t=token)
        parts = urlsplit(base.rstrip("/"))
        rel = urlsplit(path)
        return urlunsplit((parts.scheme, parts.netloc, parts.path + rel.path, rel.query, ""))
    return url_for("public.receipt", receipt_no=receipt_no, t=token, _external=True)


# What a cashier types or scans: a receipt number (H1-20261126-0042), or the receipt's QR code —
# the public URL …/r/<receipt number>?t=<token>, with whatever scheme, host and prefix it was
# printed with (PUBLIC_BASE_URL or the LAN address).
_RECEIPT_PATH = re.compile(r"/r/([^/?#]{1,40})/?$")
MAX_SCAN = 500


def receipt_no_from_scan(secret_key: str | bytes, text: Optional[str]) -> Optional[str]:
    """The receipt number in what was scanned or typed at the till, or None.

    A plain receipt number comes back as typed (trimmed). A receipt URL comes back as its number
    only when it is this server's own link — the path ends in /r/<number> and its token checks
    under ``secret_key`` — so a forged or mangled code is no receipt at all. The one place that
    reads a receipt's QR code (the till's refund box uses it through the API)."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or len(text) > MAX_SCAN or not text.isprintable():
        return None
    if "/r/" not in text:
        return text if len(text) <= 40 and " " not in text else None
    parts = urlsplit(text if "://" in text else "http://" + text)
    match = _RECEIPT_PATH.search(parts.path)
    if match is None:
        return None
    receipt_no = unquote(match.group(1))
    tokens = parse_qs(parts.query).get("t") or [None]
    return receipt_no if check_receipt_token(secret_key, receipt_no, tokens[0]) else None
