"""Who may use which part of the system, and who may approve: the one place where those rules
live."""
from __future__ import annotations

from typing import Optional

from flask_babel import lazy_gettext as _l

from pos.models import Role, User

A, M, C, R, U = Role.ADMIN, Role.MANAGER, Role.CASHIER, Role.RESTOCKER, Role.AUDITOR

# area -> roles allowed in it
AREAS: dict[str, frozenset[Role]] = {
    "till": frozenset({C, M, A}),             # selling at a hall till
    "counters": frozenset({R, M, A}),         # the restocker's route and refills
    "dashboard": frozenset({M, A}),           # the manager's dashboard
    "inventory": frozenset({M, A}),           # catalogue, stock, receiving …
    "fleet": frozenset({M, A}),               # counter registry, planograms, tokens
    "reports": frozenset({U, M, A}),          # sales summaries and collaboration statistics
    "reconcile": frozenset({U, M, A}),        # the daily bill check (对账) against the providers' bills
    "users": frozenset({A}),                  # user administration
    "site": frozenset({A}),                   # the site's places and tills, first-run set-up
    "account": frozenset({A, M, C, R, U}),    # one's own password, PIN, language
}

# where each role lands after logging in (an endpoint name)
LANDING: dict[Role, str] = {
    C: "till.index",
    R: "refills.index",
    M: "shell.dashboard",
    U: "reports.index",
    A: "shell.dashboard",
}

ROLE_LABELS = {
    A: _l("系统管理员"),
    M: _l("店长"),
    C: _l("收银员"),
    R: _l("补货员"),
    U: _l("审计/统计"),
}


# who may approve discounts over the limit, voids, refunds, drawer openings, reprints, another
# cashier's shift and a handover (at the till by PIN, see pos.accounts.auth.approver_for_pin)
APPROVER_ROLES = (M, A)


def allowed(role: Role, area: str) -> bool:
    return role in AREAS[area]


def may_approve(user: Optional[User]) -> bool:
    """Whether this user may approve now: active, and a manager or an admin."""
    return user is not None and user.active and user.role in APPROVER_ROLES
