"""Alembic environment. Run through ``pos.migrate`` (``songtao init-db``), which passes the
database URL; the same migrations serve SQLite and PostgreSQL."""
from alembic import context

from pos.core.db import make_engine
from pos.migrate import include_name
from pos.schema import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite alters a table by copying it, dropping the old one and renaming the copy; with
        # foreign keys on, dropping a table others refer to fails. The pragma only takes effect
        # outside a transaction, so it goes to the driver before the migration's BEGIN; the
        # references are checked once the migrations are done.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        _migrate(connection)
    finally:
        if sqlite:
            driver = connection.connection.driver_connection
            driver.execute("PRAGMA foreign_keys=ON")
            broken = driver.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"foreign keys broken by a migration: {broken[:5]}")


def _migrate(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        compare_type=True,
        include_name=include_name,  # the search's own objects (inventory.search_index)
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `songtao init-db`")
run_migrations()
