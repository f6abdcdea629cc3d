"""pos.core.db.writes_alone: record_sale skips the savepoint around its claim only when the
session's transaction holds SQLite's write lock (make_engine's writer, BEGIN IMMEDIATE), the one
case where nobody can record the same key between its check and its insert."""
from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pos.core.db import READ_ONLY, make_engine, writes_alone


def test_only_a_writer_of_make_engines_sqlite_writes_alone(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    with Session(engine) as s:
        assert writes_alone(s)  # began IMMEDIATE: the write lock is held
        s.rollback()
        assert writes_alone(s)  # and again in the next transaction
    with Session(engine) as s:
        s.connection(execution_options={READ_ONLY: True})
        assert not writes_alone(s)  # a reader began DEFERRED
    engine.dispose()
    plain = create_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}")  # pysqlite's deferred BEGIN
    with Session(plain) as s:
        assert not writes_alone(s)
    plain.dispose()
