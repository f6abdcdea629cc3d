"""The indexes behind the till's product search (inventory.search), one set per database.

They are not SQLAlchemy models: PostgreSQL's are expression indexes in the "C" collation and
``pg_trgm`` GIN indexes, SQLite's an FTS5 table (trigram tokenizer) kept in step with ``products``
by triggers, so that every way of writing a product — the ORM, the bulk catalogue import, a restore
— updates it (the import's bulk insert of new products indexes them in one statement instead:
``indexed_at_end``). Migration 0015 creates them; ``is_search_object`` tells the schema comparison (the
migrations' env.py and tests/core/test_migrations.py) to leave them alone.

- sku and name prefixes: ``lower(sku)`` / ``lower(name)`` / ``pinyin_initials`` ranges
  (``>= q AND < q || U+10FFFF``) on a btree in code-point order (SQLite's BINARY, PostgreSQL's "C");
- fragments of three characters or more: FTS5 trigram ``LIKE`` (SQLite), ``gin_trgm_ops`` (PostgreSQL);
- barcodes: the unique index on ``barcodes.code`` (exact).

A later migration that alters ``products`` in batch mode on SQLite (copy, drop, rename) drops the
triggers and the expression indexes with the old table: it must call ``create`` again afterwards
(every statement is ``IF NOT EXISTS``; the FTS table is rebuilt from the products).
tests/hall/test_search_plans.py and test_search_ranking.py fail if they are missing.
"""
from __future__ import annotations

from contextlib import contextmanager

FTS_TABLE = "products_fts"

INSERT_TRIGGER = "products_fts_insert"
SQLITE_INSERT_TRIGGER = f"""CREATE TRIGGER IF NOT EXISTS {INSERT_TRIGGER} AFTER INSERT ON products BEGIN
        INSERT INTO {FTS_TABLE}(rowid, name, pinyin_initials) VALUES (new.id, new.name, new.pinyin_initials);
    END"""

SQLITE_UP = [
    # covering (active, name): a one- or two-character Chinese fragment walks it in sku order and
    # stops at the cut, without reading the table
    "CREATE INDEX IF NOT EXISTS ix_products_lower_sku ON products (lower(sku), sku, active, name)",
    "CREATE INDEX IF NOT EXISTS ix_products_lower_name ON products (lower(name))",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "name, pinyin_initials, content='products', content_rowid='id', tokenize='trigram')",
    SQLITE_INSERT_TRIGGER,
    f"""CREATE TRIGGER IF NOT EXISTS products_fts_delete AFTER DELETE ON products BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, name, pinyin_initials)
        VALUES ('delete', old.id, old.name, old.pinyin_initials);
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS products_fts_update AFTER UPDATE OF name, pinyin_initials ON products BEGIN
        INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, name, pinyin_initials)
        VALUES ('delete', old.id, old.name, old.pinyin_initials);
        INSERT INTO {FTS_TABLE}(rowid, name, pinyin_initials) VALUES (new.id, new.name, new.pinyin_initials);
    END""",
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS products_fts_update",
    "DROP TRIGGER IF EXISTS products_fts_delete",
    f"DROP TRIGGER IF EXISTS {INSERT_TRIGGER}",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
    "DROP INDEX IF EXISTS ix_products_lower_name",
    "DROP INDEX IF EXISTS ix_products_lower_sku",
]

POSTGRESQL_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    'CREATE INDEX IF NOT EXISTS ix_products_lower_sku ON products ((lower(sku) COLLATE "C"), sku)',
    'CREATE INDEX IF NOT EXISTS ix_products_lower_name ON products ((lower(name) COLLATE "C"))',
    'CREATE INDEX IF NOT EXISTS ix_products_initials_c ON products ((pinyin_initials COLLATE "C"))',
    "CREATE INDEX IF NOT EXISTS ix_products_name_trgm ON products USING gin (lower(name) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_products_initials_trgm ON products USING gin (pinyin_initials gin_trgm_ops)",
]
POSTGRESQL_DOWN = [
    "DROP INDEX IF EXISTS ix_products_initials_trgm",
    "DROP INDEX IF EXISTS ix_products_name_trgm",
    "DROP INDEX IF EXISTS ix_products_initials_c",
    "DROP INDEX IF EXISTS ix_products_lower_name",
    "DROP INDEX IF EXISTS ix_products_lower_sku",
    # the extension stays: other databases' objects may use it, and dropping it needs more rights
]

INDEX_NAMES = frozenset({"ix_products_lower_sku", "ix_products_lower_name", "ix_products_initials_c",
                         "ix_products_name_trgm", "ix_products_initials_trgm"})


def is_search_object(name: str | None, type_: str) -> bool:
    """True for the search's own tables (the FTS table and its shadow tables) and indexes."""
    if not name:
        return False
    if type_ == "table":
        return name == FTS_TABLE or name.startswith(FTS_TABLE + "_")
    if type_ == "index":
        return name in INDEX_NAMES
    return False


def create(conn) -> None:
    for statement in (POSTGRESQL_UP if conn.dialect.name == "postgresql" else SQLITE_UP):
        conn.exec_driver_sql(statement)


def drop(conn) -> None:
    for statement in (POSTGRESQL_DOWN if conn.dialect.name == "postgresql" else SQLITE_DOWN):
        conn.exec_driver_sql(statement)


@contextmanager
def indexed_at_end(conn):
    """Products inserted inside the block are indexed for search in one statement at its end, not
    row by row: on SQLite the insert trigger is dropped for the block (``INSERT … SELECT`` of the
    new rows into the FTS table then, the trigger created again). The trigger's sub-program per
    row took longer than the insert of the product itself: 20,000 rows of a catalogue import
    spent ~1.5 s in it, ~0.2 s in the one statement. Use it around one bulk insert into
    ``products`` in a transaction that holds SQLite's write lock (``BEGIN IMMEDIATE``), so that no
    other connection inserts meanwhile; SQLite's DDL is transactional, so a rollback brings the
    trigger back too. Nothing to do on PostgreSQL (its indexes are the table's own) or where the
    FTS table was never created."""
    if conn.dialect.name != "sqlite" or conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (INSERT_TRIGGER,)).first() is None:
        yield
        return
    last_id = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM products").scalar_one()
    conn.exec_driver_sql(f"DROP TRIGGER {INSERT_TRIGGER}")
    try:
        yield
        # rowids are never reused below the largest: every new product has a greater id
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}(rowid, name, pinyin_initials) "
                             "SELECT id, name, pinyin_initials FROM products WHERE id > ?", (last_id,))
    finally:
        conn.exec_driver_sql(SQLITE_INSERT_TRIGGER)
