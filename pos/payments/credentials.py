"""The merchant credentials of each provider (issue 15), one JSON file per provider under the
instance folder: ``<instance>/payment_credentials/{wechat,alipay}.json`` (or the app config
``PAYMENT_CREDENTIALS_DIR``), written with file mode 600 and replaced atomically. They are never
kept in the database, never logged, never put in an audit row or an error message: only
``configured`` (which providers have them) and ``masked_id`` (the merchant number masked) leave
this module, besides ``provider_for`` (the adapter built with them).

Without credentials a provider's method stays a manual tender at the till, as before issue 15."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from flask import Flask

from pos.payments.providers import ALIPAY, WECHAT, Provider, build_provider

FIELDS = {
    WECHAT: ("mchid", "appid", "serial_no", "private_key_pem", "apiv3_key", "public_key_pem", "public_key_id"),
    ALIPAY: ("app_id", "app_private_key_pem", "alipay_public_key_pem"),
}
ID_FIELD = {WECHAT: "mchid", ALIPAY: "app_id"}
URL_SETTING = {WECHAT: "WECHATPAY_URL", ALIPAY: "ALIPAY_URL"}


class CredentialsError(ValueError):
    """A field missing or malformed; the message names the field, never its value."""

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


def folder(app: Flask) -> Path:
    configured = app.config.get("PAYMENT_CREDENTIALS_DIR")
    return Path(configured) if configured else Path(app.instance_path) / "payment_credentials"


def _path(app: Flask, name: str) -> Path:
    if name not in FIELDS:
        raise ValueError(f"unknown payment provider: {name!r}")
    return folder(app) / f"{name}.json"


def read(app: Flask, name: str) -> Optional[dict]:
    """The provider's credentials, or None when none are set (or the file is unreadable)."""
    path = _path(app, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(not isinstance(data.get(f), str) or not data.get(f) for f in FIELDS[name]):
        return None
    return {f: data[f] for f in FIELDS[name]}


def check(name: str, values: dict) -> dict:
    """The credentials to store: every field present, trimmed, PEM fields looking like PEM."""
    out = {}
    for field in FIELDS[name]:
        value = values.get(field)
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            raise CredentialsError(f"missing: {field}", field)
        if field.endswith("_pem") and "-----BEGIN" not in value:
            raise CredentialsError(f"not a PEM key: {field}", field)
        if len(value) > 20000:
            raise CredentialsError(f"too long: {field}", field)
        out[field] = value.replace("\r\n", "\n") + ("\n" if field.endswith("_pem") else "")
    return out


def write(app: Flask, name: str, values: dict) -> None:
    """Set or replace: written to a temporary file created with mode 600, then renamed over."""
    data = check(name, values)
    path = _path(app, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove(app: Flask, name: str) -> bool:
    path = _path(app, name)
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def configured(app: Flask) -> dict[str, bool]:
    return {name: read(app, name) is not None for name in FIELDS}


def masked_id(app: Flask, name: str) -> Optional[str]:
    """The merchant number (WeChat mchid / Alipay app id) masked: "19000…01"."""
    data = read(app, name)
    if data is None:
        return None
    value = data[ID_FIELD[name]]
    return f"{value[:5]}…{value[-2:]}" if len(value) > 7 else "…"


def provider_for(app: Flask, name: str) -> Optional[Provider]:
    """The adapter with the stored credentials and the app's base URL; None without credentials."""
    data = read(app, name)
    if data is None:
        return None
    return build_provider(name, data, base_url=app.config.get(URL_SETTING[name]),
                          timeout=float(app.config.get("PAYMENT_TIMEOUT_SECONDS", 10)))  # ok-float: seconds


__all__ = ["FIELDS", "CredentialsError", "folder", "read", "check", "write", "remove", "configured",
           "masked_id", "provider_for"]
