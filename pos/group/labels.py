"""What the group pages, printouts, reports and exports call things: order statuses, price
sources and buyer types, each in one mapping.
"""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from pos.group.models import GroupOrderStatus


STATUS_LABELS = {
    GroupOrderStatus.DRAFT: _l("草稿"),
    GroupOrderStatus.CONFIRMED: _l("已确认"),
    GroupOrderStatus.PICKED: _l("已拣货"),
    GroupOrderStatus.DELIVERED: _l("已送达"),
    GroupOrderStatus.PAID: _l("已结清"),
    GroupOrderStatus.CANCELLED: _l("已取消"),
}

PRICE_SOURCES = {"list": _l("目录价"), "agreed": _l("协议价"), "manual": _l("本单议价")}


def status_label(value: Any) -> str:
    try:
        return str(STATUS_LABELS[GroupOrderStatus(value)])
    except ValueError:
        return str(value)
