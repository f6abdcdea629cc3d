"""Receipt numbers without the server (issue 14, point 4): a till reserves, while online, a block of
receipt numbers for a local day, so that a receipt printed offline carries its final number.

A block is taken from the very counter that numbers the server's own receipts
(``inventory.documents.take_numbers``, the till's code as prefix, the local day), so reserved
numbers never collide with each other, across tills, or with the sales the server numbers itself.
A reserved number is used once a sale carries it (``sales.receipt_no`` is unique: the backstop
when two sales claim one number at once); it can only be used by its own till, on its own day.

Functions take a Session and plain values and never commit (the caller's unit of work does).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Iterable, Optional, Sequence

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from inventory.documents import format_number, take_numbers
from inventory.localtime import local_today, utcnow
from pos.core.errors import PosError
from pos.models import ReceiptBlock, Sale, Till

MAX_BLOCK = 100               # numbers in one reservation
DEFAULT_BLOCK = 20
MAX_UNUSED_PER_DAY = 500      # unused reserved numbers a till may hold for one day: a bug cannot burn the counter
_IN_CHUNK = 500               # receipt numbers per IN (...) when looking for the used ones
_NUMBER = re.compile(r"^(?P<prefix>.+)-(?P<day>[0-9]{8})-(?P<n>[0-9]{1,9})$")


def reserve_block(s: Session, till: Till, day: dt.date, count: int, user_id: Optional[int], *,
                  today: Optional[dt.date] = None) -> list[str]:
    """Reserve ``count`` consecutive receipt numbers of ``till`` for the local ``day`` (today or
    tomorrow; ``today`` defaults to the hall's today) and return them, e.g.
    ``["H1-20261205-0101", …]``. Refused (PosError, nothing written once rolled back) for a retired
    till, a day other than today or tomorrow, a count outside 1…100, and when the till would hold
    more than MAX_UNUSED_PER_DAY unused reserved numbers for that day."""
    if till is None or not till.active:
        raise PosError(_l("收银台不存在或已停用"), "till")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BLOCK:
        raise PosError(_l("预留小票号的数量必须在 1 到 %(n)s 之间", n=MAX_BLOCK), "count")
    today = today or local_today()
    if day not in (today, today + dt.timedelta(days=1)):
        raise PosError(_l("只能为今天（%(today)s）或明天预留小票号", today=today.isoformat()), "day")
    # The counter row stays locked until the transaction ends, so reservations of one till and day
    # (and that day's sales) queue behind each other: the count of unused numbers below already sees
    # every block reserved before this one.
    last = take_numbers(s, till.code, day, count)
    unused = len(unused_numbers(s, till, day))
    if unused + count > MAX_UNUSED_PER_DAY:
        raise PosError(_l("收银台 %(till)s 已有 %(n)s 个未用的预留小票号（%(day)s），最多 %(max)s 个：请先用掉再预留",
                          till=till.code, n=unused, day=day.isoformat(), max=MAX_UNUSED_PER_DAY), "count")
    first = last - count + 1
    s.execute(insert(ReceiptBlock.__table__), {"till_id": till.id, "day": day, "first_no": first, "last_no": last,
                                               "reserved_at": utcnow(), "reserved_by_id": user_id})
    return [format_number(till.code, day, n) for n in range(first, last + 1)]


def unused_numbers(s: Session, till: Till, day: dt.date) -> list[str]:
    """The numbers reserved by ``till`` for ``day`` that no sale carries yet, in order."""
    blocks = s.execute(select(ReceiptBlock.first_no, ReceiptBlock.last_no)
                       .where(ReceiptBlock.till_id == till.id, ReceiptBlock.day == day)
                       .order_by(ReceiptBlock.first_no)).all()
    numbers = [format_number(till.code, day, n) for first, last in blocks for n in range(first, last + 1)]
    used = _used(s, numbers)
    return [number for number in numbers if number not in used]


def unused_by_day(s: Session, till: Till, *, since: Optional[dt.date] = None) -> list[tuple[dt.date, list[str]]]:
    """The till's unused reserved numbers by day, for ``since`` (default today) and later; days
    with none left are left out."""
    since = since or local_today()
    days = s.scalars(select(ReceiptBlock.day).where(ReceiptBlock.till_id == till.id, ReceiptBlock.day >= since)
                     .distinct().order_by(ReceiptBlock.day)).all()
    found = [(day, unused_numbers(s, till, day)) for day in days]
    return [(day, numbers) for day, numbers in found if numbers]


def claim_reserved_number(s: Session, till: Optional[Till], day: dt.date, receipt_no: object) -> str:
    """The sale's own ``receipt_no`` when it is a number of a block ``till`` reserved for ``day``
    (the sale's local day) that no sale carries yet; PosError on field ``receipt_no`` otherwise.
    Two sales claiming the same number at once: the unique index on sales.receipt_no refuses the
    second (record_sale then calls ``refuse_if_taken``)."""
    if till is None:
        raise PosError(_l("小票号只能由收银台的销售指定"), "receipt_no")
    if not isinstance(receipt_no, str) or not receipt_no or len(receipt_no) > 40:
        raise PosError(_l("小票号格式不正确"), "receipt_no")
    match = _NUMBER.match(receipt_no)
    n = int(match.group("n")) if match else 0
    block = None
    if match and match.group("prefix") == till.code and match.group("day") == f"{day:%Y%m%d}" \
            and format_number(till.code, day, n) == receipt_no:
        block = s.scalar(select(ReceiptBlock.id).where(
            ReceiptBlock.till_id == till.id, ReceiptBlock.day == day,
            ReceiptBlock.first_no <= n, ReceiptBlock.last_no >= n).limit(1))
    if block is None:
        raise PosError(_l("小票号 %(no)s 不是收银台 %(till)s 为 %(day)s 预留的号码",
                          no=receipt_no, till=till.code, day=day.isoformat()), "receipt_no")
    refuse_if_taken(s, receipt_no)
    return receipt_no


def refuse_if_taken(s: Session, receipt_no: str) -> None:
    if _used(s, [receipt_no]):
        raise PosError(_l("小票号 %(no)s 已被另一笔销售使用", no=receipt_no), "receipt_no")


def _used(s: Session, numbers: Sequence[str]) -> set[str]:
    used: set[str] = set()
    for chunk in _chunks(numbers, _IN_CHUNK):
        used.update(s.scalars(select(Sale.receipt_no).where(Sale.receipt_no.in_(chunk))))
    return used


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


__all__ = ["reserve_block", "unused_numbers", "unused_by_day", "claim_reserved_number", "refuse_if_taken",
           "MAX_BLOCK", "DEFAULT_BLOCK", "MAX_UNUSED_PER_DAY"]
