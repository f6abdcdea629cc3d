"""Signed links to the public receipt page (the receipt's QR code).

The token is an HMAC of the receipt number under the app's secret key, so a receipt number alone
opens nothing and the numbers cannot be enumerated. Plain functions: no database, no session.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit, urlunsplit

from flask import current_app, url_for

__all__ = ["check_receipt_token", "receipt_token", "receipt_url"]

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
