"""The manager's group-purchase pages (团购), one blueprint (``bp``, prefix ``/group``) whose views
live by what they show: buyer organisations and their agreed prices (``buyer_pages``); the list
of orders, a new or edited draft and the import of a buyer's spreadsheet (``order_entry``); one
order with its actions (confirm, pick, deliver, close, cancel, return, payments), the printable
order confirmation and delivery note (送货单), and the open balances per buyer (``order_page``);
what they share (``common``).

Thin: parse what a person typed, call pos.group.buyers / orders / delivery / payments /
documents / order_import, render. Every figure comes from those modules; these add none of
their own. A mistake is answered with the page again, a Chinese message (at the top and on the
field) and status 422, and the request's session is rolled back, so nothing is written. Every
action is a POST with the CSRF token (CSRFProtect guards every form) and ends in a redirect
(post/redirect/get). Managers and admins only: every view requires("dashboard").
"""
from __future__ import annotations

from flask import Blueprint

from inventory.money import format_plain_yuan
from pos.group.models import GroupOrderStatus
from pos.group.labels import buyer_type_label, status_label
from pos.group.views.common import unit_label, weighed_line
from pos.models import BuyerType
from pos.sales.reading import payment_label

bp = Blueprint("group", __name__, url_prefix="/group")


@bp.context_processor
def _helpers():
    return {
        "group_status_label": status_label,
        "buyer_type_label": buyer_type_label,
        "payment_label": payment_label,
        "weighed": weighed_line,
        "unit_label": unit_label,
        "plain_yuan": format_plain_yuan,
        "STATUSES": list(GroupOrderStatus),
        "BUYER_TYPES": list(BuyerType),
    }


# The views register their routes on bp when imported (after bp exists).
from pos.group.views import buyer_pages, order_entry, order_page  # noqa: E402,F401
