"""Many rows into a table, many rows of a table changed, or read by a file's worth of keys
(``key_filters``), in the current transaction: the catalogue import's planner and writer
(``inventory.catalogue_import_plan``, ``inventory.catalogue_import_write``).

On PostgreSQL the rows go through ``COPY … FROM STDIN`` (psycopg's ``cursor.copy()``), on the
session's own connection, so they are part of the same all-or-nothing transaction (a savepoint
rolled back takes them away like any INSERT). Every value is first passed through its column
type's bind processor (enums to their stored text, UTC datetimes made naive …), exactly what an
``INSERT`` through SQLAlchemy would send, and columns a row does not name get their scalar Python
default as ``insert()`` would. The changes go into a temporary table by ``COPY`` and are applied
with one ``UPDATE … FROM``. psycopg's ``executemany`` (one statement per row in a pipeline) was
the slow part of a 20,000-row import.

Elsewhere (SQLite) Core ``executemany`` in chunks: SQLite's executemany is a C loop over one
prepared statement, already as fast as it gets.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import Table, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

CHUNK = 1000
IN_CHUNK = 500      # keys per IN (…) elsewhere: SQLite before 3.32 binds at most 999 parameters


def _chunks(items: list, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def key_filters(s: Session, column, keys) -> list:
    """WHERE clauses that together select the rows whose ``column`` is one of ``keys`` (none for
    no keys): on PostgreSQL one ``column = ANY(:keys)`` (one array bound, where ``IN`` of a file's
    20,000 keys binds and plans 20,000 parameters: three times slower), elsewhere ``IN (…)`` in
    chunks."""
    keys = sorted(set(keys))
    if not keys:
        return []
    if s.get_bind().dialect.name == "postgresql":
        return [column == any_(bindparam(None, keys, type_=ARRAY(column.type)))]
    return [column.in_(chunk) for chunk in _chunks(keys, IN_CHUNK)]


def _copy_ready(table: Table, rows: list[dict]) -> Optional[tuple[list[str], list[tuple[str, Any]]]]:
    """(the rows' columns, [(omitted column, its default)]), or None when COPY cannot stand in for
    ``insert()`` exactly (rows naming different columns, a callable default to run per row)."""
    names = list(rows[0])
    keys = set(names)
    if any(len(row) != len(names) or row.keys() != keys for row in rows):
        return None
    defaults = []
    for column in table.columns:
        if column.name in keys or column.default is None:
            continue
        if not column.default.is_scalar:
            return None
        defaults.append((column.name, column.default.arg))
    return names, defaults


def _processors(table: Table, names: list[str], dialect) -> list:
    return [table.c[name].type._cached_bind_processor(dialect) for name in names]


def _copy(s: Session, table_name: str, names: list[str], processors: list, rows) -> None:
    dbapi = s.connection().connection.driver_connection
    columns = ", ".join(f'"{name}"' for name in names)
    with dbapi.cursor() as cursor, cursor.copy(f'COPY "{table_name}" ({columns}) FROM STDIN') as copy:
        for values in rows:
            copy.write_row([value if proc is None or value is None else proc(value)
                            for value, proc in zip(values, processors)])


def insert_rows(s: Session, table: Table, rows: list[dict]) -> None:
    """INSERT every row (dicts naming the same columns): COPY on PostgreSQL, executemany elsewhere."""
    if not rows:
        return
    dialect = s.get_bind().dialect
    ready = _copy_ready(table, rows) if dialect.name == "postgresql" else None
    if ready is None:
        for chunk in _chunks(rows):
            s.execute(table.insert(), chunk)
        return
    names, defaults = ready
    s.flush()   # the session's pending objects first, as s.execute(insert) would
    all_names = names + [name for name, _value in defaults]
    extra = [value for _name, value in defaults]
    _copy(s, table.name, all_names, _processors(table, all_names, dialect),
          ([row[name] for name in names] + extra for row in rows))


def update_rows(s: Session, table: Table, rows: list[dict], set_too: dict) -> None:
    """UPDATE table SET <each row's other columns>, <set_too> WHERE id = row["id"]; every row
    names the same columns. On PostgreSQL through a temporary table filled by COPY, one UPDATE."""
    if not rows:
        return
    dialect = s.get_bind().dialect
    columns = [key for key in rows[0] if key != "id"]
    if dialect.name != "postgresql":
        stmt = (table.update().where(table.c.id == bindparam("_id"))
                .values(**{key: bindparam(f"_{key}") for key in columns},
                        **{key: bindparam(f"_{key}") for key in set_too}))
        params = [{"_id": row["id"], **{f"_{key}": row[key] for key in columns},
                   **{f"_{key}": value for key, value in set_too.items()}} for row in rows]
        for chunk in _chunks(params):
            s.execute(stmt, chunk)
        return
    s.flush()
    temp = f"_bulk_{table.name}"
    names = ["id"] + columns
    quoted = ", ".join(f'"{name}"' for name in names)
    s.connection().exec_driver_sql(f'CREATE TEMPORARY TABLE "{temp}" AS SELECT {quoted} FROM "{table.name}" '
                                   "WITH NO DATA")
    _copy(s, temp, names, _processors(table, names, dialect), ([row[name] for name in names] for row in rows))
    assignments = [f'"{key}" = t."{key}"' for key in columns] + [f'"{key}" = %({key})s' for key in set_too]
    processed = {key: (lambda proc, v: v if proc is None or v is None else proc(v))(
        table.c[key].type._cached_bind_processor(dialect), value) for key, value in set_too.items()}
    s.connection().exec_driver_sql(
        f'UPDATE "{table.name}" SET {", ".join(assignments)} FROM "{temp}" t WHERE "{table.name}".id = t.id',
        processed)
    s.connection().exec_driver_sql(f'DROP TABLE "{temp}"')
