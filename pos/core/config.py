"""Configuration from the environment, with a test override."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent  # pos/core/config.py → the project


def instance_path() -> Path:
    return Path(os.environ.get("SONGTAO_INSTANCE", PROJECT_ROOT / "instance")).resolve()


def default_database_url() -> str:
    return "sqlite:///" + str(instance_path() / "songtao.sqlite3")


def load_secret_key(folder: Path) -> str:
    """SECRET_KEY from the environment, else generated once and kept in the instance folder."""
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def _https() -> bool:
    return (os.environ.get("SONGTAO_HTTPS", "").lower() in ("1", "true", "yes")
            or os.environ.get("PREFERRED_URL_SCHEME", "").lower() == "https")


def from_environment(load_secret: bool = True) -> dict:
    folder = instance_path()
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL") or default_database_url(),
        "SECRET_KEY": load_secret_key(folder) if load_secret else None,
        "HALL_NAME": os.environ.get("SONGTAO_HALL_NAME", "梵净山珍·松桃馆"),
        "HALL_ADDRESS": os.environ.get("SONGTAO_HALL_ADDRESS", "广东省东莞市虎门镇"),
        # Login throttling: after LOGIN_SLOW_AFTER failures in LOGIN_WINDOW_MINUTES each attempt
        # waits longer; after LOGIN_LOCK_AFTER the user (or address) is refused for the window.
        "LOGIN_WINDOW_MINUTES": 15,
        "LOGIN_SLOW_AFTER": 3,
        "LOGIN_LOCK_AFTER": 8,
        "LOGIN_IP_LOCK_AFTER": 30,
        # Wrong manager PINs at one till (or from one cashier) before approvals lock for the window.
        "APPROVAL_LOCK_AFTER": 5,
        # How long a writer waits for SQLite's write lock before a 503 (PostgreSQL: unused).
        # The payment providers' base URLs (issue 15); the demo and the tests point them at
        # `songtao fake-gateway`.
        "WECHATPAY_URL": os.environ.get("SONGTAO_WECHATPAY_URL") or "https://api.mch.weixin.qq.com",
        "ALIPAY_URL": os.environ.get("SONGTAO_ALIPAY_URL") or "https://openapi.alipay.com/gateway.do",
        # Payment codes (pos.payments.service): a code still waiting for the customer's password this
        # long after the pay call is reversed; the till's polls query the provider at most this often;
        # the adapters wait this long for an answer (then: no answer, queried, never a failure).
        "PAYMENT_CODE_WAIT_SECONDS": int(os.environ.get("SONGTAO_PAYMENT_CODE_WAIT_SECONDS", "30")),
        "PAYMENT_CODE_POLL_SECONDS": 2,
        "PAYMENT_TIMEOUT_SECONDS": int(os.environ.get("SONGTAO_PAYMENT_TIMEOUT_SECONDS", "10")),
        # The merchant credentials' folder (mode 700, files 600); unset: <instance>/payment_credentials.
        "PAYMENT_CREDENTIALS_DIR": os.environ.get("SONGTAO_PAYMENT_CREDENTIALS_DIR") or None,
        "SQLITE_BUSY_SECONDS": int(os.environ.get("SONGTAO_SQLITE_BUSY_SECONDS", "10")),
        "LOGIN_DELAY_UNIT_SECONDS": 0.5,  # ok-float: seconds between attempts, not money
        "LOGIN_DELAY_MAX_SECONDS": 4,
        "SESSION_COOKIE_HTTPONLY": True,
        # Served over HTTPS (SONGTAO_HTTPS=1, or PREFERRED_URL_SCHEME=https): cookies only travel
        # over HTTPS, so a login cannot leak on the hall's Wi-Fi.
        "PREFERRED_URL_SCHEME": "https" if _https() else "http",
        "SESSION_COOKIE_SECURE": _https(),
        "REMEMBER_COOKIE_SECURE": _https(),
        "SESSION_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,  # a till page stays open all day
        "BABEL_DEFAULT_LOCALE": "zh",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        # Printers (pos.hall.printers): file:// only to /dev/usb/lpN or under this spool folder (None: no
        # spool files); tcp:// only to private addresses on these ports, unless a host (address,
        # network or name) is listed here by an admin.
        "PRINTER_SPOOL_DIR": os.environ.get("SONGTAO_PRINTER_SPOOL") or None,
        "PRINTER_ALLOWED_HOSTS": os.environ.get("SONGTAO_PRINTER_ALLOWED_HOSTS", ""),
        "PRINTER_ALLOWED_PORTS": os.environ.get("SONGTAO_PRINTER_ALLOWED_PORTS", "9100-9109"),
        # The address customers' phones reach the public receipt page by (every receipt's QR code);
        # unset: the address the till used, which a phone outside the hall's LAN cannot open.
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL") or None,
        # The server refreshes every alert kind this often (seconds; 0: never, as in tests).
        "TICK_SECONDS": int(os.environ.get("SONGTAO_TICK_SECONDS", "300")),
        # A sale or refund a till made offline may be sent this many days later at most (older: 422);
        # pos.sales.offline.check_time.
        "OFFLINE_MAX_AGE_DAYS": int(os.environ.get("SONGTAO_OFFLINE_MAX_AGE_DAYS", "7")),
    }
