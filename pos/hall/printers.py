"""Printers given as URIs, one per till: ``tcp://host:9100``, ``usb://VID:PID`` (hex),
``serial:///dev/ttyUSB0?baudrate=19200``, ``file:///dev/usb/lp0`` or ``none``.

A URI is a place the server will write to, so it is checked against an allow-list
(``check_uri``) when a manager sets it AND again every time bytes are sent (a URI stored before
the rule, or a configuration changed since):

- ``file://`` only the printer device nodes ``/dev/usb/lp<N>``, or a file that, after resolving
  links, lies under the configured spool folder (``PRINTER_SPOOL_DIR``; None: no spool files);
- ``serial://`` only ``/dev/ttyUSB<N>``, ``/dev/ttyACM<N>`` and ``/dev/ttyS<N>``;
- ``tcp://`` only private, loopback or link-local addresses (a host name is resolved when sending
  and every address it resolves to must be one; the socket connects to the checked address) on a
  printer port (``PRINTER_ALLOWED_PORTS``, 9100–9109), unless an admin lists the host or network
  in ``PRINTER_ALLOWED_HOSTS``.

``send`` delivers bytes composed beforehand (pos.sales.escpos) in one go. It never raises and
never blocks longer than its timeout: a printer that is off, unplugged or stuck leaves a failed
``PrintResult`` for the cashier to reprint, never a lost or blocked sale. Where the connection can
answer (tcp), the printer is asked for its status (DLE EOT) before and after the bytes, and paper
out or an open cover is a failed print; a printer that does not answer is taken as printed (many
models do not support it). Requests never call ``send`` themselves: pos.hall.print_queue runs it on a
worker thread per printer.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import stat
import threading
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l

from pos.sales.escpos import drawer_kick_bytes, escpos_printers, sample_page_bytes

DEFAULT_TIMEOUT = 3.0  # ok-float: seconds
DEFAULT_STATUS_TIMEOUT = 0.5  # ok-float: seconds a printer has to answer DLE EOT
DEFAULT_PORTS = frozenset(range(9100, 9110))
SCHEMES = ("tcp", "usb", "serial", "file", "none")

DEVICE_FILE = re.compile(r"/dev/usb/lp[0-9]{1,3}")
SERIAL_DEVICE = re.compile(r"/dev/tty(?:USB|ACM|S)[0-9]{1,3}")

# DLE EOT n (ESC/POS real-time status). A status byte has bits 1 and 4 set, bits 0 and 7 clear.
STATUS_OFFLINE_CAUSE = b"\x10\x04\x02"  # bit 2: cover open; bit 5: stopped by paper end
STATUS_PAPER = b"\x10\x04\x04"          # bits 5 and 6: roll paper end
STATUS_MASK, STATUS_FIXED = 0x93, 0x12
COVER_OPEN, STOPPED_BY_PAPER_END, PAPER_END = 0x04, 0x20, 0x60

log = logging.getLogger(__name__)


class PrinterUriError(ValueError):
    """A printer URI that cannot be understood or is not allowed; the message says why."""


@dataclass(frozen=True)
class PrintResult:
    ok: bool
    error: Optional[str] = None
    # What went wrong, for code to act on: "paper_out", "cover_open", "refused", "unreachable",
    # "timeout", "busy"; None when printed.
    code: Optional[str] = None


@dataclass(frozen=True)
class PrinterSpec:
    scheme: str
    host: str = ""
    port: int = 9100
    vendor: int = 0
    product: int = 0
    path: str = ""
    baudrate: int = 9600


@dataclass(frozen=True)
class PrinterPolicy:
    """Where printers may be: from the configuration (``policy_from_config``)."""
    spool_dir: Optional[str] = None
    allowed_hosts: tuple = ()  # host names (lower case) and ip_network objects an admin allows
    allowed_ports: frozenset = field(default=DEFAULT_PORTS)
    status_timeout: float = DEFAULT_STATUS_TIMEOUT  # ok-float: seconds


def parse_ports(text) -> frozenset:
    """"9100-9109, 515" (or an iterable of ints) → the set of ports; a bad entry is a
    configuration error, raised at start-up rather than silently allowing nothing."""
    if text is None or text == "":
        return DEFAULT_PORTS
    if not isinstance(text, str):
        return frozenset(int(p) for p in text)
    ports: set[int] = set()
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        low, _, high = item.partition("-")
        first, last = int(low), int(high or low)
        if not (1 <= first <= last <= 65535):
            raise ValueError(f"bad printer port range: {item}")
        ports.update(range(first, last + 1))
    return frozenset(ports)


def parse_hosts(text) -> tuple:
    """"203.0.113.7, 198.51.100.0/24, printer.example.com" → networks and lower-case names."""
    if not text:
        return ()
    items = text.replace(";", ",").split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        item = str(item).strip().lower()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            out.append(item)
    return tuple(out)


def policy_from_config(config) -> PrinterPolicy:
    spool = config.get("PRINTER_SPOOL_DIR") or None
    return PrinterPolicy(
        spool_dir=str(spool) if spool else None,
        allowed_hosts=parse_hosts(config.get("PRINTER_ALLOWED_HOSTS")),
        allowed_ports=parse_ports(config.get("PRINTER_ALLOWED_PORTS")),
        status_timeout=float(config.get("PRINTER_STATUS_TIMEOUT", DEFAULT_STATUS_TIMEOUT)),  # ok-float: seconds
    )


def current_policy() -> PrinterPolicy:
    """The app's policy; outside an app the strictest one (no spool files, default ports)."""
    return policy_from_config(current_app.config) if has_app_context() else PrinterPolicy()


def _expected() -> str:
    return str(_l("打印机地址应为 tcp://主机:9100、usb://VID:PID、serial:///dev/ttyUSB0?baudrate=19200、"
                  "file:///dev/usb/lp0 或 none"))


def parse_uri(uri: Optional[str]) -> PrinterSpec:
    """What a URI says (its syntax only; ``check_uri`` also applies the allow-list)."""
    text = (uri or "none").strip()
    if text.lower() == "none" or text == "":
        return PrinterSpec("none")
    if not text.isprintable():  # a NUL or a line break is never part of a printer's address
        raise PrinterUriError(_expected())
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        if scheme == "tcp":
            if not parts.hostname:
                raise PrinterUriError(_expected())
            port = parts.port or 9100
            return PrinterSpec("tcp", host=parts.hostname, port=port)
        if scheme == "usb":
            vid, _, pid = (parts.netloc or parts.path.lstrip("/")).partition(":")
            return PrinterSpec("usb", vendor=int(vid, 16), product=int(pid, 16))
        if scheme == "serial":
            if not parts.path:
                raise PrinterUriError(_expected())
            baud = parse_qs(parts.query).get("baudrate", ["9600"])[0]
            return PrinterSpec("serial", path=parts.path, baudrate=int(baud))
        if scheme == "file":
            if not parts.path or parts.netloc not in ("", "localhost"):
                raise PrinterUriError(_expected())
            return PrinterSpec("file", path=parts.path)
    except ValueError as exc:  # a bad port, VID:PID or baud rate
        if isinstance(exc, PrinterUriError):
            raise
        raise PrinterUriError(_expected()) from exc
    raise PrinterUriError(_expected())


# --- the allow-list --------------------------------------------------------------------------------

def _file_refused(policy: PrinterPolicy) -> PrinterUriError:
    if policy.spool_dir:
        return PrinterUriError(_l("file:// 只允许打印机设备 /dev/usb/lp0 等，或打印机假脱机目录 %(spool)s 里的文件"
                                  "（不允许指向其他文件或链接到目录外）", spool=policy.spool_dir))
    return PrinterUriError(_l("file:// 只允许打印机设备 /dev/usb/lp0 等（本店没有配置打印机假脱机目录）"))


def file_target(path: str, policy: PrinterPolicy) -> str:
    """The real path (links resolved) a file printer writes to, if the policy allows it."""
    real = os.path.realpath(path)
    if DEVICE_FILE.fullmatch(path) and DEVICE_FILE.fullmatch(real):
        return real
    if policy.spool_dir:
        spool = os.path.realpath(policy.spool_dir)
        if real != spool and os.path.commonpath([real, spool]) == spool:
            return real
    raise _file_refused(policy)


def serial_target(path: str) -> str:
    real = os.path.realpath(path)
    if SERIAL_DEVICE.fullmatch(path) and SERIAL_DEVICE.fullmatch(real):
        return real
    raise PrinterUriError(_l("serial:// 只允许串口设备 /dev/ttyUSB0、/dev/ttyACM0、/dev/ttyS0 等"))


def _ports_text(ports: frozenset) -> str:
    ordered, runs = sorted(ports), []
    for port in ordered:
        if runs and port == runs[-1][1] + 1:
            runs[-1][1] = port
        else:
            runs.append([port, port])
    return ", ".join(f"{a}–{b}" if a != b else str(a) for a, b in runs)


def address_allowed(address, policy: PrinterPolicy) -> bool:
    """A private, loopback or link-local address, or one an admin allowed."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for allowed in policy.allowed_hosts:
        if not isinstance(allowed, str) and allowed.version == ip.version and ip in allowed:
            return True
    if ip.is_unspecified or ip.is_multicast:
        return False
    return ip.is_loopback or ip.is_link_local or (ip.is_private and not ip.is_reserved)


def _host_refused(host: str) -> PrinterUriError:
    return PrinterUriError(_l("打印机地址 %(host)s 不是局域网地址：网络打印机只能在内网、本机或链路本地地址上"
                              "（管理员可在 SONGTAO_PRINTER_ALLOWED_HOSTS 中放行）", host=host))


def _literal_ip(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_uri(uri: Optional[str], policy: Optional[PrinterPolicy] = None) -> PrinterSpec:
    """The URI's spec if it is well formed and allowed; PrinterUriError saying why not. Host names
    are allowed here and resolved (and checked) when sending."""
    policy = policy or current_policy()
    spec = parse_uri(uri)
    if spec.scheme == "file":
        file_target(spec.path, policy)
    elif spec.scheme == "serial":
        serial_target(spec.path)
    elif spec.scheme == "tcp":
        if spec.port not in policy.allowed_ports:
            raise PrinterUriError(_l("打印机端口 %(port)s 不允许：只能用打印机端口 %(ports)s"
                                     "（管理员可在 SONGTAO_PRINTER_ALLOWED_PORTS 中增加）",
                                     port=spec.port, ports=_ports_text(policy.allowed_ports)))
        ip = _literal_ip(spec.host)
        if ip is not None and not address_allowed(ip, policy):
            raise _host_refused(spec.host)
    return spec


def refusal(uri: Optional[str], policy: Optional[PrinterPolicy] = None) -> Optional[str]:
    """Why a (stored) URI would not print, or None when it is allowed."""
    try:
        check_uri(uri, policy)
    except PrinterUriError as error:
        return str(error)
    return None


def tcp_address(spec: PrinterSpec, policy: PrinterPolicy) -> str:
    """The address to connect to: a literal address as checked, or a host name resolved now, every
    address it resolves to checked (so a name cannot point the server at the internet)."""
    ip = _literal_ip(spec.host)
    if ip is not None:
        if not address_allowed(ip, policy):
            raise _host_refused(spec.host)
        return str(ip)
    if spec.host.lower() in policy.allowed_hosts:
        return spec.host
    infos = socket.getaddrinfo(spec.host, spec.port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        if not address_allowed(address, policy):
            raise PrinterUriError(_l("打印机主机名 %(host)s 解析到非局域网地址 %(address)s，已拒绝",
                                     host=spec.host, address=address))
    return addresses[0]


# --- the devices -----------------------------------------------------------------------------------

def open_printer(uri: Optional[str], *, timeout: float = DEFAULT_TIMEOUT,  # ok-float: seconds
                 policy: Optional[PrinterPolicy] = None):
    """The python-escpos printer for an allowed URI (not yet opened), or None for ``none``.
    PrinterUriError when the URI is not allowed; a tcp host name is resolved here."""
    policy = policy or current_policy()
    spec = check_uri(uri, policy)
    if spec.scheme == "none":
        return None
    printer = escpos_printers()
    if spec.scheme == "tcp":
        return _network_class()(tcp_address(spec, policy), port=spec.port, timeout=timeout)
    if spec.scheme == "usb":
        return printer.Usb(spec.vendor, spec.product, timeout=int(timeout * 1000))
    if spec.scheme == "serial":
        return printer.Serial(serial_target(spec.path), baudrate=spec.baudrate, timeout=timeout)
    return _file_class()(file_target(spec.path, policy))


_NETWORK = None
_FILE = None


def _network_class():
    """python-escpos 3.1's ``Network`` whose failed ``open`` closes its socket (3.1 drops it
    unclosed, a ResourceWarning on every print to a printer that is off), IPv4 or IPv6."""
    global _NETWORK
    if _NETWORK is None:
        escpos_printers()  # the library's first import, with its cache in place
        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import Network

        class ClosingNetwork(Network):
            def open(self, raise_not_found: bool = True) -> None:
                try:
                    sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                except OSError as exc:
                    raise DeviceNotFoundError(f"Could not open socket for {self.host}:{self.port}: {exc}") from exc
                self.device = sock

        _NETWORK = ClosingNetwork
    return _NETWORK


def _file_class():
    """python-escpos 3.1's ``File`` that opens the checked real path without following a link put
    there since the check (O_NOFOLLOW), and refuses a file with other hard links, before
    truncating anything."""
    global _FILE
    if _FILE is None:
        escpos_printers()  # the library's first import, with its cache in place
        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import File

        class CheckedFile(File):
            def open(self, raise_not_found: bool = True) -> None:
                flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                try:
                    fd = os.open(self.devfile, flags, 0o640)
                except OSError as exc:
                    raise DeviceNotFoundError(f"Could not open the specified file {self.devfile}: {exc}") from exc
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode):
                    if info.st_nlink > 1:
                        os.close(fd)
                        raise DeviceNotFoundError(f"{self.devfile} has other hard links")
                    os.ftruncate(fd, 0)
                self.device = os.fdopen(fd, "wb")

        _FILE = CheckedFile
    return _FILE


def _status_byte(sock, query: bytes) -> Optional[int]:
    sock.sendall(query)
    try:
        answer = sock.recv(1)
    except (socket.timeout, TimeoutError):
        return None
    if len(answer) != 1 or answer[0] & STATUS_MASK != STATUS_FIXED:
        return None
    return answer[0]


def printer_status(sock, status_timeout: float) -> tuple[bool, Optional[str]]:  # ok-float: seconds
    """Ask a connected printer DLE EOT 4 (paper) and DLE EOT 2 (offline cause). (answered, problem):
    problem is "paper_out", "cover_open" or None; a printer that does not answer within
    ``status_timeout`` is (False, None): many models do not support it."""
    previous = sock.gettimeout()
    sock.settimeout(status_timeout)
    try:
        paper = _status_byte(sock, STATUS_PAPER)
        if paper is None:
            return False, None
        cause = _status_byte(sock, STATUS_OFFLINE_CAUSE)
    finally:
        sock.settimeout(previous)
    if cause is not None and cause & COVER_OPEN:
        return True, "cover_open"
    if paper & PAPER_END == PAPER_END or (cause is not None and cause & STOPPED_BY_PAPER_END):
        return True, "paper_out"
    return True, None


def _deliver(uri: str, data: bytes, prefix: bytes, timeout: float, policy: PrinterPolicy,  # ok-float: seconds
             ask_status: bool, outcome: list) -> None:
    device = None
    try:
        device = open_printer(uri, timeout=timeout, policy=policy)
        if device is None:
            outcome.append(("ok", None))
            return
        device.open()
        sock = getattr(device, "device", None) if isinstance(device, _network_class()) else None
        answered = False
        if sock is not None and ask_status and data:
            answered, problem = printer_status(sock, policy.status_timeout)
            if problem:
                if prefix:  # the drawer still opens: it needs no paper
                    device._raw(prefix)
                outcome.append((problem, None))
                return
        device._raw(prefix + data)
        if answered:
            _, problem = printer_status(sock, policy.status_timeout)
            if problem:
                outcome.append((problem, None))
                return
        outcome.append(("ok", None))
    except PrinterUriError as exc:  # refused when checked again at send time (or a name resolved outside)
        outcome.append(("refused", exc.args[0]))
    except Exception as exc:  # noqa: BLE001 — any printer failure is reported, never raised
        # The cashier reads a sentence; the technical cause goes to the log for whoever fixes it.
        log.warning("printing to %s failed: %s: %s", uri, type(exc).__name__, exc)
        outcome.append(("unreachable", None))  # the message is made in the caller's thread (its language)
    finally:
        if device is not None:
            try:
                device.close()
            except Exception:  # noqa: BLE001
                pass


def message(code: Optional[str]) -> Optional[str]:
    """The cashier's sentence for a failure code (in the current language)."""
    messages = {
        "paper_out": _l("打印机缺纸：装好纸后点重印"),
        "cover_open": _l("打印机开盖：合上盖后点重印"),
        "unreachable": _l("打印机连接不上：请检查是否开机、有纸、网线或数据线已接好"),
        "timeout": _l("打印机无响应（超时）"),
        "busy": _l("打印机忙：待打印的单据太多，请稍后重印"),
    }
    return str(messages[code]) if code in messages else None


def send(uri: Optional[str], data: bytes, *, prefix: bytes = b"", timeout: float = DEFAULT_TIMEOUT,  # ok-float: seconds
         policy: Optional[PrinterPolicy] = None, ask_status: bool = True) -> PrintResult:
    """Send ``prefix + data`` to the printer (``prefix``: the drawer kick, sent even when the
    printer reports no paper). Never raises; gives up after about ``timeout`` seconds (plus the
    status questions): the delivery runs in a daemon thread, so a stuck USB or serial device cannot
    hold the caller. The URI is checked against the policy again here."""
    policy = policy or current_policy()
    try:
        if check_uri(uri, policy).scheme == "none":
            return PrintResult(True)
    except PrinterUriError as exc:
        return PrintResult(False, str(exc), "refused")
    outcome: list = []
    worker = threading.Thread(target=_deliver, args=(uri, data, prefix, timeout, policy, ask_status, outcome),
                              daemon=True, name="songtao-print")
    worker.start()
    worker.join(timeout + 2 * policy.status_timeout + 0.5)
    if not outcome:
        return PrintResult(False, message("timeout"), "timeout")
    code, detail = outcome[0]
    if code == "ok":
        return PrintResult(True)
    if code == "refused":
        return PrintResult(False, str(detail), "refused")
    return PrintResult(False, message(code), code)


def test_page(columns: int = 48) -> bytes:
    """The bytes of a test print for paper of ``columns`` columns."""
    return sample_page_bytes(columns)


__test__ = False  # not a pytest module, whatever its names say

__all__ = ["PrintResult", "PrinterUriError", "PrinterSpec", "PrinterPolicy", "parse_uri", "check_uri", "refusal",
           "policy_from_config", "current_policy", "open_printer", "send", "message", "printer_status",
           "drawer_kick_bytes", "test_page", "DEFAULT_TIMEOUT"]
