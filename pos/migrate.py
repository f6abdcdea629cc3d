"""Migrations, run from code: ``upgrade(url)`` builds or updates a database to the newest schema."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from inventory.search_index import is_search_object
from pos.core.db import make_engine, normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def include_name(name, type_, parent_names) -> bool:
    """For the schema comparison: the search's FTS table and expression indexes (inventory.search_index)
    are built by migration 0015 outside the models."""
    return not is_search_object(name, type_)


def table_names(url: str) -> set[str]:
    """The schema's tables (not the search's FTS table and its shadow tables)."""
    engine = make_engine(url)
    try:
        return {name for name in inspect(engine).get_table_names() if not is_search_object(name, "table")}
    finally:
        engine.dispose()
