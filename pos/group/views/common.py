"""What the group pages share: parsing a person's input, refusing with the page again, ids and
the helpers their templates use.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Mapping, Optional

from flask import abort, flash, render_template
from flask_babel import gettext as _
from flask_login import current_user

from inventory.errors import InventoryError
from inventory.localtime import HALL_TZ, to_local, utcnow
from inventory.models import is_weighed
from inventory.money import AmountError
from inventory.stock_forms import clean_text
from inventory.web import get_session
from pos.core.errors import PosError
from pos.group.models import GroupOrder


PER_PAGE = 30
MAX_ID = 2**31 - 1  # integer keys are 32-bit on PostgreSQL

# What a domain function or a parser may refuse with; str() is the message for the person.
REFUSALS = (PosError, InventoryError, AmountError)


def enum_value(enum_or_text):
    return getattr(enum_or_text, "value", enum_or_text)


def weighed_line(line: Mapping) -> bool:
    """A line of order_view / delivery_note: kept in kg with three decimals?"""
    return is_weighed(enum_value(line.get("unit")), line.get("sold_by_weight"))


def unit_label(unit) -> str:
    return "kg" if enum_value(unit) == "kg" else _("件")


def current_actor() -> int:
    return current_user.id


def id_or_404(ident: int) -> int:
    if not 0 < ident <= MAX_ID:
        abort(404)
    return ident


def refuse(template: str, messages, status: int = 422, **context):
    """The page again with the messages, and nothing of this request written."""
    get_session().rollback()
    if isinstance(messages, (str, Exception)) or not hasattr(messages, "__iter__"):
        messages = [messages]
    for message in dict.fromkeys(str(m) for m in messages if m):
        flash(message, "error")
    return render_template(template, **context), status


def add_error(field, message) -> None:
    if not isinstance(field.errors, list):
        field.errors = list(field.errors or [])
    field.errors.append(str(message))


def attach_refusal(form, exc: PosError) -> None:
    """A domain refusal on the form field it names (``PosError.field``), when the form has it."""
    name = getattr(exc, "field", None)
    if name and name in getattr(form, "_fields", {}):
        add_error(form[name], exc)


def text_field(field, limit: int, message) -> Optional[str]:
    value = clean_text(field.data).strip()
    if len(value) > limit:
        add_error(field, message)
        raise ValueError(value)
    return value or None


def new_client_id() -> str:
    return uuid.uuid4().hex


def client_id_arg(text: Optional[str]) -> Optional[str]:
    """A client-made id as sent back by a form: 8–64 letters, digits or dashes, else none."""
    text = (text or "").strip()
    if 8 <= len(text) <= 64 and all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in text):
        return text
    return None


def parse_local_datetime(text: str) -> dt.datetime:
    """2026-11-26T14:30 as a datetime-local input sends it, in the hall's time zone."""
    text = (text or "").strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PosError(_("送货时间格式应为 YYYY-MM-DD HH:MM"), "delivered_at") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=HALL_TZ)
    return moment


def now_local_input() -> str:
    return to_local(utcnow()).strftime("%Y-%m-%dT%H:%M")


def get_order_or_404(order_id: int) -> GroupOrder:
    order = get_session().get(GroupOrder, id_or_404(order_id))
    if order is None:
        abort(404)
    return order
