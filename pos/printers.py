"""Printers given as URIs, one per till: ``tcp://host:9100``, ``usb://VID:PID`` (hex),
``serial:///dev/ttyUSB0?baudrate=19200``, ``file:///dev/usb/lp0`` or ``none``.

``send`` delivers bytes composed beforehand (pos.escpos_render) in one go. It never raises and
never blocks longer than its timeout: a printer that is off, unplugged or stuck leaves a failed
``PrintResult`` for the cashier to reprint, never a lost or blocked sale.
"""
from __future__ import annotations

import logging

import threading
from dataclasses import dataclass
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from flask_babel import lazy_gettext as _l

from pos.escpos_render import drawer_kick_bytes, sample_page_bytes

DEFAULT_TIMEOUT = 3.0
SCHEMES = ("tcp", "usb", "serial", "file", "none")


log = logging.getLogger(__name__)


class PrinterUriError(ValueError):
    """A printer URI that cannot be understood; the message says what is expected."""


@dataclass(frozen=True)
class PrintResult:
    ok: bool
    error: Optional[str] = None


@dataclass(frozen=True)
class PrinterSpec:
    scheme: str
    host: str = ""
    port: int = 9100
    vendor: int = 0
    product: int = 0
    path: str = ""
    baudrate: int = 9600


def parse_uri(uri: Optional[str]) -> PrinterSpec:
    text = (uri or "none").strip()
    if text.lower() == "none" or text == "":
        return PrinterSpec("none")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    expected = str(_l("打印机地址应为 tcp://主机:9100、usb://VID:PID、serial:///dev/ttyUSB0?baudrate=19200、"
                      "file:///dev/usb/lp0 或 none"))
    try:
        if scheme == "tcp":
            if not parts.hostname:
                raise PrinterUriError(expected)
            port = parts.port or 9100
            return PrinterSpec("tcp", host=parts.hostname, port=port)
        if scheme == "usb":
            vid, _, pid = (parts.netloc or parts.path.lstrip("/")).partition(":")
            return PrinterSpec("usb", vendor=int(vid, 16), product=int(pid, 16))
        if scheme == "serial":
            if not parts.path:
                raise PrinterUriError(expected)
            baud = parse_qs(parts.query).get("baudrate", ["9600"])[0]
            return PrinterSpec("serial", path=parts.path, baudrate=int(baud))
        if scheme == "file":
            if not parts.path:
                raise PrinterUriError(expected)
            return PrinterSpec("file", path=parts.path)
    except ValueError as exc:  # a bad port, VID:PID or baud rate
        if isinstance(exc, PrinterUriError):
            raise
        raise PrinterUriError(expected) from exc
    raise PrinterUriError(expected)


def open_printer(uri: Optional[str], *, timeout: float = DEFAULT_TIMEOUT):  # ok-float: seconds
    """The python-escpos printer for a URI (not yet opened), or None for ``none``."""
    spec = parse_uri(uri)
    if spec.scheme == "none":
        return None
    from escpos import printer

    if spec.scheme == "tcp":
        return _network_class()(spec.host, port=spec.port, timeout=timeout)
    if spec.scheme == "usb":
        return printer.Usb(spec.vendor, spec.product, timeout=int(timeout * 1000))
    if spec.scheme == "serial":
        return printer.Serial(spec.path, baudrate=spec.baudrate, timeout=timeout)
    return printer.File(spec.path)


_NETWORK = None


def _network_class():
    """python-escpos 3.1's ``Network`` whose failed ``open`` closes its socket (3.1 drops it
    unclosed, a ResourceWarning on every print to a printer that is off)."""
    global _NETWORK
    if _NETWORK is None:
        import socket

        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import Network

        class ClosingNetwork(Network):
            def open(self, raise_not_found: bool = True) -> None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect((self.host, self.port))
                except OSError as exc:
                    sock.close()
                    raise DeviceNotFoundError(f"Could not open socket for {self.host}:{self.port}: {exc}") from exc
                self.device = sock

        _NETWORK = ClosingNetwork
    return _NETWORK


def _deliver(uri: str, data: bytes, timeout: float, outcome: list) -> None:  # ok-float: seconds
    device = None
    try:
        device = open_printer(uri, timeout=timeout)
        if device is None:
            outcome.append(PrintResult(True))
            return
        device.open()
        device._raw(data)
        outcome.append(PrintResult(True))
    except Exception as exc:  # noqa: BLE001 — any printer failure is reported, never raised
        # The cashier reads a sentence; the technical cause goes to the log for whoever fixes it.
        log.warning("printing to %s failed: %s: %s", uri, type(exc).__name__, exc)
        outcome.append(PrintResult(False))  # the message is made in the caller's thread (its language)
    finally:
        if device is not None:
            try:
                device.close()
            except Exception:  # noqa: BLE001
                pass


def send(uri: Optional[str], data: bytes, *, timeout: float = DEFAULT_TIMEOUT) -> PrintResult:  # ok-float: seconds
    """Send ``data`` to the printer. Never raises; gives up after ``timeout`` seconds (the
    delivery runs in a daemon thread, so a stuck USB or serial device cannot hold the caller)."""
    try:
        if parse_uri(uri).scheme == "none":
            return PrintResult(True)
    except PrinterUriError as exc:
        return PrintResult(False, str(exc))
    outcome: list[PrintResult] = []
    worker = threading.Thread(target=_deliver, args=(uri, data, timeout, outcome), daemon=True,
                              name="songtao-print")
    worker.start()
    worker.join(timeout + 0.5)
    if outcome and outcome[0].ok:
        return outcome[0]
    if outcome:
        return PrintResult(False, str(_l("打印机连接不上：请检查是否开机、有纸、网线或数据线已接好")))
    return PrintResult(False, str(_l("打印机无响应（超时）")))


def test_page(columns: int = 48) -> bytes:
    """The bytes of a test print for paper of ``columns`` columns."""
    return sample_page_bytes(columns)


__test__ = False  # not a pytest module, whatever its names say

__all__ = ["PrintResult", "PrinterUriError", "PrinterSpec", "parse_uri", "open_printer", "send",
           "drawer_kick_bytes", "test_page", "DEFAULT_TIMEOUT"]
