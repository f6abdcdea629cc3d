"""Small helpers the adapters and the fake gateway share: yuan strings from fen and back by integer
arithmetic (no floats near money), masking a payment code, and removing secrets from an answer."""
from __future__ import annotations

import re
from typing import Any

_YUAN = re.compile(r"(-?)(\d+)(?:\.(\d{1,2}))?")
SECRET_KEYS = ("sign", "signature", "private_key", "private_key_pem", "app_private_key_pem", "apiv3_key",
               "authorization", "auth_code")


def yuan(fen: int) -> str:
    """12345 -> "123.45", -5 -> "-0.05": the providers' yuan strings, from integer fen."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError("amounts are integer fen")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def fen(yuan_text: Any) -> int:
    """ "123.45" -> 12345, "12.3" -> 1230, "-0.05" -> -5; a malformed amount raises ValueError."""
    match = _YUAN.fullmatch(str(yuan_text).strip())
    if not match:
        raise ValueError(f"not an amount in yuan: {yuan_text!r}")
    sign, whole, cents = match.groups()
    value = int(whole) * 100 + int((cents or "0").ljust(2, "0"))
    return -value if sign else value


def mask_code(code: str) -> str:
    """A payment code shown or stored: its first 4 and last 4 digits only."""
    code = str(code or "")
    if len(code) <= 8:
        return "*" * len(code)
    return code[:4] + "*" * (len(code) - 8) + code[-4:]


def scrub(value: Any) -> Any:
    """A copy of a provider's answer with every secret removed (signatures, keys, the customer's
    code beyond a mask), safe to store and to show."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            lowered = str(key).lower()
            if lowered == "auth_code":
                out[key] = mask_code(item)
            elif lowered in SECRET_KEYS or "private" in lowered or lowered.endswith("_key"):
                continue
            else:
                out[key] = scrub(item)
        return out
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value
