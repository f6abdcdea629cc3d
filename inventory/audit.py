"""The audit log: who did what, before and after, when."""
from __future__ import annotations

import json
from typing import Any, Optional

from sqlalchemy.orm import Session

from .localtime import utcnow
from .models import AuditEvent


def record(
    session: Session,
    *,
    user_id: Optional[int],
    action: str,
    entity: str,
    entity_id: Any = None,
    before: Any = None,
    after: Any = None,
    ip: Optional[str] = None,
) -> AuditEvent:
    event = AuditEvent(
        at=utcnow(),
        user_id=user_id,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=None if before is None else json.dumps(before, ensure_ascii=False, sort_keys=True, default=str),
        after=None if after is None else json.dumps(after, ensure_ascii=False, sort_keys=True, default=str),
        ip=ip,
    )
    session.add(event)
    return event


def event_row(*, user_id: Optional[int], action: str, entity: str, entity_id: Any = None, before: Any = None,
              after: Any = None, at=None) -> dict:
    """The same event as ``record`` writes, as a row for a bulk ``insert(AuditEvent)`` (the
    catalogue import writes one per product it creates or changes)."""
    return {
        "at": at or utcnow(), "user_id": user_id, "action": action, "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "before": None if before is None else json.dumps(before, ensure_ascii=False, sort_keys=True, default=str),
        "after": None if after is None else json.dumps(after, ensure_ascii=False, sort_keys=True, default=str),
        "ip": None,
    }
