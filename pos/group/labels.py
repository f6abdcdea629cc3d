"""What the group pages, printouts, reports and exports call things: order statuses, price
sources and buyer types, each in one mapping.
"""
from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from pos.group.models import GroupOrderStatus
from pos.models import BuyerType


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


BUYER_TYPE_LABELS = {
    BuyerType.UNION: _l("工会福利"),
    BuyerType.ENTERPRISE: _l("企业认购"),
    BuyerType.CANTEEN: _l("机关饭堂"),
    BuyerType.OTHER: _l("其他"),
}
# The consumption-collaboration statistics (their pages and downloads) name the canteens' row as
# the statistics form does; every other kind is named as above.
STATISTICS_NAMES = {BuyerType.CANTEEN: _l("机关饭堂团购")}


def buyer_type_label(value: Any, *, in_statistics: bool = False) -> str:
    """A buyer type (the enum or its value) as people call it; an unknown value as it is."""
    try:
        kind = BuyerType(value)
    except ValueError:
        return str(value)
    if in_statistics and kind in STATISTICS_NAMES:
        return str(STATISTICS_NAMES[kind])
    return str(BUYER_TYPE_LABELS[kind])
