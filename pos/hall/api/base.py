"""What every endpoint of the till's JSON API shares: the blueprint ``api`` under /api/v1 (the
endpoint modules of this package register on it), its body limit, the request fields several
endpoints take, the till a request names and the manager approving it.
"""
from __future__ import annotations

import datetime as dt
from typing import Literal, Optional

from flask import Blueprint, jsonify
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from pos.accounts.auth import approver_for_pin
from pos.accounts.users import HashingBusy, LoginRefused, may_approve
from pos.core.db import get_session
from pos.core.openapi import ApiError, Text, limit_body, register_error_handlers
from pos.models import PaymentMethod, Till

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Domain arguments named in errors, as the request fields they come from.
register_error_handlers(bp, {"approved_by_id": "approval_pin", "till_id": "till"})

MAX_BODY_BYTES = 256 * 1024   # 200 lines of a sale are ~20 KB
MAX_SALE_LINES = 200
MAX_PAYMENTS = 10


@bp.before_request
def _limit_body():
    limit_body(MAX_BODY_BYTES)


Method = Literal[tuple(m.value for m in PaymentMethod)]  # type: ignore[valid-type]
Reason = Text(200, 1)
Ref = Text(80)
Pin = Text(20)


def find_till(code: str, *, status: int = 422, field: Optional[str] = "till") -> Till:
    till = get_session().scalar(select(Till).where(Till.code == code))
    if till is None or not till.active:
        raise ApiError(status, _("收银台 %(code)s 不存在或已停用", code=code), field)
    return till


def till_code(till_id: Optional[int]) -> Optional[str]:
    return get_session().scalar(select(Till.code).where(Till.id == till_id)) if till_id else None


def approving_manager(pin: Optional[str], *, till_code: Optional[str], purpose: str) -> Optional[int]:
    """The manager approving by PIN (throttled by till and by cashier, see pos.accounts.auth); a manager
    or admin at the till approves as themselves; None when a cashier typed no PIN."""
    if pin:
        try:
            approver_id = approver_for_pin(pin, till_code=till_code, purpose=purpose)
        except LoginRefused as refused:
            raise ApiError(429, str(refused), "approval_pin") from None
        except HashingBusy as busy:
            raise ApiError(503, str(busy), "approval_pin") from None
        if approver_id is None:
            raise ApiError(403, _("店长密码不正确"), "approval_pin")
        return approver_id
    if may_approve(current_user):
        return current_user.id
    return None


def required_manager(pin: Optional[str], *, till_code: Optional[str], purpose: str) -> int:
    """As ``approving_manager``, for an action nobody may take without a manager: 403 when a cashier typed no PIN."""
    approver_id = approving_manager(pin, till_code=till_code, purpose=purpose)
    if approver_id is None:
        raise ApiError(403, _("需要店长授权"), "approval_pin")
    return approver_id


def iso(moment: Optional[dt.datetime]) -> Optional[str]:
    return moment.isoformat() if moment is not None else None


def created_response(body: dict, created: bool = True):
    response = jsonify(body)
    response.status_code = 201 if created else 200
    return response
