"""The receipt on paper: ``text_lines`` lays the document out in columns (the one layout, shared by
the printer and the HTML twin), ``render_escpos`` composes the printer's bytes on python-escpos's
``Dummy`` so they can be sent in one go.

Chinese printers print GB18030 in their Chinese mode (``FS &``); python-escpos 3.1's code-page
tables have no GB18030, so every string goes through ``gb18030`` and is sent raw. On such a
printer a character that takes one byte (ASCII) is one column wide and every other character is a
full-width glyph, two columns: that is ``char_width``. Money uses the full-width ``￥``.
"""
from __future__ import annotations

import os
import unicodedata

from flask_babel import lazy_gettext as _l

from inventory.money import format_yuan
from pos.core.config import instance_path
from pos.sales.receipts import CERT_MARK, QR_HINT, Receipt

FS_CHINESE_ON = b"\x1c&"      # FS &: Chinese character mode
FS_CHINESE_OFF = b"\x1c."     # FS .: back to single-byte mode
YUAN = "￥"
PAPER_COLUMNS = (32, 48)


def escpos_printers():
    """python-escpos's ``escpos.printer`` module, imported on first use. At import the library
    parses its printer database (a large JSON file, with a pure-Python YAML parser: about 0.3 s)
    and keeps it as a pickle, by default in a new temporary folder per process, so every start
    paid the parse and left a folder behind. It is given a private folder of the instance instead
    (only this application writes there, which matters because a pickle is code), so a machine
    parses once; and a command that prints nothing (the demo, the migrations) never imports it."""
    if "ESCPOS_CAPABILITIES_PICKLE_DIR" not in os.environ:
        folder = instance_path() / "cache" / "escpos"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"] = str(folder)
    from escpos import printer

    return printer


def dummy_printer():
    """A ``Dummy`` printer: it collects the bytes, to be sent in one go."""
    return escpos_printers().Dummy()


def gb18030(text: str) -> bytes:
    """The one way a receipt string reaches the printer."""
    return clean(text).encode("gb18030", errors="replace")


def clean(text: str) -> str:
    """No control characters, no combining marks (they would break the column count)."""
    text = unicodedata.normalize("NFC", str(text))
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "CM")


def char_width(ch: str) -> int:
    if ord(ch) < 0x80:
        return 1
    return 2  # every multi-byte GB18030 character (W/F East Asian width and the rest) prints full width


def width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def wrap(text: str, columns: int, indent: str = "") -> list[str]:
    """Lines of at most ``columns`` display columns; continuation lines start with ``indent``. A
    word in Latin letters (an English receipt) moves whole to the next line rather than being cut."""
    text = clean(text)
    lines, current, used = [], "", 0
    for ch in text:
        w = char_width(ch)
        if used + w > columns:
            carry = ""
            if ch != " " and ord(ch) < 0x80 and current and current[-1] != " " and ord(current[-1]) < 0x80:
                head, _sep, tail = current.rpartition(" ")
                if head.strip() and tail.isascii() and width(indent + tail) + w <= columns:
                    current, carry = head, tail
            lines.append(current.rstrip())
            current, used = indent + carry, width(indent + carry)
            if ch == " ":
                continue
        current += ch
        used += w
    if current.strip() or not lines:
        lines.append(current.rstrip())
    return lines


def pair(left: str, right: str, columns: int) -> list[str]:
    """``left`` and ``right`` on one line, right-aligned; on two when they do not fit."""
    left, right = clean(left), clean(right)
    gap = columns - width(left) - width(right)
    if gap >= 1:
        return [left + " " * gap + right]
    out = wrap(left, columns)
    return out + [(" " * max(columns - width(r), 0)) + r for r in wrap(right, columns)]


def center(text: str, columns: int) -> list[str]:
    return [(" " * ((columns - width(ln)) // 2) + ln).rstrip() for ln in wrap(text, columns)]


def money(fen: int) -> str:
    return format_yuan(fen, symbol=YUAN)


def text_lines(receipt: Receipt, columns: int | None = None) -> list[str]:
    """The exact printed text lines, top to bottom (the QR code and the cut follow them)."""
    c = columns or receipt.columns
    if c < 16:
        raise ValueError("paper too narrow")
    rule = "-" * c
    out: list[str] = []
    out += center(receipt.hall_name, c)
    if receipt.hall_address:
        out += center(receipt.hall_address, c)
    if receipt.kind == "refund":
        out += center(str(_l("退款单")), c)
    if receipt.reprint:
        out += center("*** " + str(_l("重印")) + " ***", c)
    if receipt.voided:
        out += center("*** " + str(_l("此单已撤销")) + " ***", c)
    out.append(rule)
    for label, value in receipt.meta:
        out += pair(label, value, c)
    out.append(rule)
    for ln in receipt.lines:
        mark = CERT_MARK if ln.certified else "  "
        out += wrap(mark + ln.name, c, indent="  ")
        out += pair(f"  {ln.qty_text} x {money(ln.unit_price_fen)}", money(ln.amount_fen), c)
    out.append(rule)
    for label, fen in receipt.totals:
        out += pair(label, money(fen), c)
    for label, fen in receipt.payments:
        out += pair(label, money(fen), c)
    if receipt.change_fen:
        out += pair(str(_l("找零")), money(receipt.change_fen), c)
    out += pair(str(_l("本单扶贫产品金额")), money(receipt.certified_fen), c)
    out.append(rule)
    for note in receipt.notes:
        out += wrap(note, c)
    if receipt.legend:
        out += wrap(receipt.legend, c)
    if receipt.footer:
        out += center(receipt.footer, c)
    if receipt.qr_payload:
        out += center(str(QR_HINT), c)
    return out


def render_escpos(receipt: Receipt, columns: int | None = None) -> bytes:
    """The receipt as ESC/POS bytes: init, Chinese mode, the text lines in GB18030, the QR code
    (the printer's own QR command, carrying the signed public URL), feed and cut."""
    p = dummy_printer()
    p.hw("INIT")
    p._raw(FS_CHINESE_ON)
    for line in text_lines(receipt, columns):
        p._raw(gb18030(line) + b"\n")
    if receipt.qr_payload:
        p.set(align="center")
        p.qr(receipt.qr_payload, size=5, native=True)
        p.set(align="left")
    p.cut()
    return p.output


def drawer_kick_bytes() -> bytes:
    """ESC p 0: pulse the cash drawer on pin 2."""
    p = dummy_printer()
    p.cashdraw(2)
    return p.output


def sample_page_bytes(columns: int = 48) -> bytes:
    """A test print: the width ruler, Chinese text, ￥ and a cut."""
    lines = center("梵净山珍·松桃馆 测试打印", columns) + ["1234567890" * (columns // 10) + "1234567890"[:columns % 10],
                                                 "中" * (columns // 2), money(12345), f"{columns} 列"]
    p = dummy_printer()
    p.hw("INIT")
    p._raw(FS_CHINESE_ON)
    for line in lines:
        p._raw(gb18030(line) + b"\n")
    p.cut()
    return p.output


__all__ = ["text_lines", "render_escpos", "gb18030", "width", "char_width", "wrap", "drawer_kick_bytes",
           "sample_page_bytes", "FS_CHINESE_ON", "PAPER_COLUMNS"]
