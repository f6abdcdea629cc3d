"""What inventory's pages need from the web layer, without importing pos: the request's
database session (the app factory puts the sessionmaker in ``app.extensions``) and paging.

Access control is attached to inventory's blueprints by the app factory (pos.core.web.protect_blueprint),
so the rule of who may see what stays in pos.accounts.roles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Sequence, TypeVar

from flask import current_app, g, has_request_context, request
from sqlalchemy.orm import Session

T = TypeVar("T")


# Execution option of a session that only reads (see pos.core.db: on SQLite it begins DEFERRED).
READ_ONLY = "songtao_read_only"


def read_only(view):
    """Mark a view that only reads (a report). Every GET request's session begins as a reader,
    which on SQLite never holds the write lock that tills and counters wait for; the mark says so
    where it matters most. Put it just below ``@bp.route``."""
    view.read_only = True
    return view


def _read_only_request() -> bool:
    """GET and HEAD requests read: their session begins DEFERRED on SQLite (see pos.core.db)."""
    if not has_request_context() or not request.endpoint:  # e.g. a command in an app context
        return False
    return request.method in ("GET", "HEAD")


def get_session() -> Session:
    """The request's session, created on first use; committed or rolled back at the request's end."""
    if "db_session" not in g:
        session = current_app.extensions["songtao.sessionmaker"]()
        if _read_only_request():
            session.connection(execution_options={READ_ONLY: True})
        g.db_session = session
    return g.db_session


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


# A page number large enough for any real list; beyond it the OFFSET would overflow the database.
MAX_PAGE = 100_000


def page_arg(name: str = "page") -> int:
    """?page=N from the query string; anything that is not a positive number is page 1."""
    try:
        return min(max(1, int(request.args.get(name, "1"))), MAX_PAGE)
    except ValueError:
        return 1

