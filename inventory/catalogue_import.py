"""Catalogue import: preview a file (what it would change, every problem of every row), and apply
it, all or nothing. The format is described in ``inventory.catalogue_sheet``; the plan is made by
``inventory.catalogue_import_plan`` and written in bulk by ``inventory.catalogue_import_write``."""
from __future__ import annotations

import datetime as dt
import gc
from contextlib import contextmanager
from typing import Optional

from sqlalchemy.orm import Session

from .audit import record
from .catalogue_import_plan import FIELD_COLUMNS, _Plan, _plan
from .catalogue_import_write import write_plan
from .catalogue_sheet import ImportPreview, ImportRefused, ImportResult, RowError
from .errors import ValidationError
from .localtime import local_today


@contextmanager
def _no_cycle_collection():
    """Python's cyclic garbage collector paused while a file is planned or written. A 20,000-row
    file makes about a million small dicts, lists and tuples; the collector's passes over that
    growing heap were a quarter of the import's time, and they find nothing: what the import
    makes is freed by reference counting. Cycles other threads make meanwhile wait a few seconds
    for the next pass. Left off if it was off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


# --- public entry points -------------------------------------------------------------------------

def plan_import(s: Session, filename: str, data: bytes, *, today: Optional[dt.date] = None) -> _Plan:
    """The file planned against the catalogue: ``plan.preview`` is what ``preview_import`` returns,
    and ``apply_plan`` writes it without reading the file again (the CLI plans once). Writes nothing."""
    with _no_cycle_collection():
        return _plan(s, filename, data, today or local_today())


def preview_import(s: Session, filename: str, data: bytes, *, today: Optional[dt.date] = None) -> ImportPreview:
    """What importing the file would do, row by row, and every error with its row number.
    Writes nothing. ValidationError for a file that is not a spreadsheet at all."""
    return plan_import(s, filename, data, today=today).preview


def apply_import(s: Session, filename: str, data: bytes, *, actor_id: Optional[int] = None,
                 today: Optional[dt.date] = None) -> ImportResult:
    """Import the file: all of it, or nothing (ImportRefused with the row errors)."""
    return apply_plan(s, plan_import(s, filename, data, today=today), filename, actor_id=actor_id)


def apply_plan(s: Session, plan: _Plan, filename: str, *, actor_id: Optional[int] = None) -> ImportResult:
    """Write a plan made by ``plan_import`` in this same transaction (nothing written since):
    all of it, or nothing (ImportRefused with the row errors)."""
    if plan.preview.errors:
        raise ImportRefused(plan.preview.errors)
    state = {"row": 0}
    try:
        with _no_cycle_collection(), s.begin_nested():
            result = write_plan(s, plan, actor_id, state)
    except ValidationError as error:  # a rule the plan did not foresee: nothing is kept
        column = FIELD_COLUMNS.get(error.field or "", "")
        raise ImportRefused([RowError(state["row"], plan.headers.get(column, column), str(error))]) from None
    record(s, user_id=actor_id, action="catalogue.import", entity="catalogue", entity_id=None,
           after={"file": (filename or "")[:120], "created": result.created, "updated": result.updated,
                  "unchanged": result.unchanged, "suppliers_created": result.suppliers_created,
                  "categories_created": result.categories_created,
                  "certificates_created": result.certificates_created,
                  "certificates_changed": result.certificates_changed})
    s.flush()
    return result
