"""Backups and restores of the whole database (``songtao backup``, ``songtao restore``).

SQLite: SQLite's online backup API copies the database while tills keep selling (in WAL mode a
reader never blocks a writer, and the copy is the database as it was when the copy began: every
sale committed before it is in it), then ``PRAGMA integrity_check`` is run on the copy, which is
made a single self-contained file (journal mode DELETE) before it is given its name.

PostgreSQL: ``pg_dump -Fc`` (a consistent snapshot too), found on PATH, under
``SONGTAO_PG_BIN`` or in ``/usr/lib/postgresql/<version>/bin``; restored with ``pg_restore``.

A restore refuses a database that already holds data (users, products, tills, sales, counters)
unless forced, and checks the backup's schema version: a backup from a newer version of the
software is refused; one from an older version is restored and then migrated to this version.
"""
from __future__ import annotations

import datetime as dt
import glob
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlalchemy import inspect, make_url, text

from pos.core.db import make_engine, normalise_url

DATA_TABLES = ("users", "products", "tills", "sales", "kiosks")
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


class BackupError(Exception):
    """A backup or restore that could not be done; ``str()`` is the message for the person."""


@dataclass(frozen=True)
class BackupResult:
    path: str
    bytes: int
    seconds: float  # ok-float: seconds
    revision: Optional[str]


# --- where things are ----------------------------------------------------------------------------

def is_sqlite(url: str) -> bool:
    return normalise_url(url).startswith("sqlite")


def sqlite_path(url: str) -> str:
    database = make_url(normalise_url(url)).database
    if not database or database == ":memory:":
        raise BackupError("内存数据库无法备份")
    return database


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as pg_dump and pg_restore read it (postgresql://…)."""
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_tool(name: str) -> str:
    """The path of pg_dump / pg_restore: SONGTAO_PG_BIN, then PATH, then the newest
    /usr/lib/postgresql/*/bin. BackupError with what to install when none is found."""
    folder = os.environ.get("SONGTAO_PG_BIN")
    if folder and os.path.isfile(os.path.join(folder, name)):
        return os.path.join(folder, name)
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if candidates:
        return candidates[-1]
    raise BackupError(f"找不到 {name}：请安装 PostgreSQL 客户端（Debian/Ubuntu：apt-get install postgresql-client-15；"
                      f"Windows：PostgreSQL 安装目录的 bin），或把它所在的目录设为 SONGTAO_PG_BIN")


def default_backup_name(url: str, folder: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = "sqlite3" if is_sqlite(url) else "dump"
    return folder / "backups" / f"songtao-{stamp}.{suffix}"


# --- schema versions -----------------------------------------------------------------------------

def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from pos.migrate import alembic_config

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()}


def _check_revision(revision: Optional[str]) -> None:
    if revision is None:
        raise BackupError("备份里没有数据库结构版本（alembic_version），不是本系统的备份")
    if revision not in known_revisions():
        raise BackupError(f"备份的数据库结构版本 {revision} 比本程序新：请先升级程序再恢复")


def _sqlite_revision(path: str) -> Optional[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()


def _integrity(path: str) -> str:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "; ".join(str(r[0]) for r in rows[:5])


# --- backup --------------------------------------------------------------------------------------

def backup(url: str, out: Path) -> BackupResult:
    """Copy the database at ``url`` to the file ``out`` (folders made as needed); never leaves a
    half-written file under that name."""
    import time

    started = time.monotonic()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        partial.unlink()
    try:
        if is_sqlite(url):
            revision = _backup_sqlite(sqlite_path(url), partial)
        else:
            revision = _backup_pg(url, partial)
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
    return BackupResult(str(out), out.stat().st_size, time.monotonic() - started, revision)


def _backup_sqlite(path: str, target: Path) -> Optional[str]:
    if not os.path.exists(path):
        raise BackupError(f"数据库文件不存在：{path}")
    source = sqlite3.connect(path, timeout=30)
    copy = sqlite3.connect(str(target))
    try:
        source.backup(copy)  # one step: a consistent snapshot, writers go on meanwhile (WAL)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        copy.close()
        source.close()
    verdict = _integrity(str(target))
    if verdict != "ok":
        raise BackupError(f"备份副本未通过完整性检查：{verdict}")
    return _sqlite_revision(str(target))


def _backup_pg(url: str, target: Path) -> Optional[str]:
    tool = pg_tool("pg_dump")
    done = subprocess.run([tool, "-Fc", "--no-owner", "-f", str(target), "--dbname", libpq_url(url)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump 失败：{(done.stderr or '').strip().splitlines()[-1:] or done.returncode}")
    return _dump_revision(target)


def _dump_revision(path: Path) -> Optional[str]:
    tool = pg_tool("pg_restore")
    done = subprocess.run([tool, "-a", "-t", "alembic_version", "-f", "-", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"无法读取备份文件 {path}：{(done.stderr or '').strip()[:200]}")
    lines = done.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines):
            value = lines[i + 1].strip()
            return None if value == "\\." else value
    return None


# --- restore -------------------------------------------------------------------------------------

def holds_data(url: str) -> bool:
    """Whether the database holds the hall's data (an init-db'd database with only its
    bookkeeping locations does not)."""
    if is_sqlite(url) and not os.path.exists(sqlite_path(url)):
        return False
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return any(conn.execute(text(f"SELECT 1 FROM {t} LIMIT 1")).first() for t in DATA_TABLES if t in present)
    finally:
        engine.dispose()


def restore(url: str, file: Path, *, force: bool = False) -> Optional[str]:
    """Replace the database at ``url`` by the backup ``file``; returns the backup's schema
    version. The caller migrates an older one to head."""
    file = Path(file)
    if not file.is_file():
        raise BackupError(f"找不到备份文件：{file}")
    with open(file, "rb") as fh:
        head = fh.read(16)
    if is_sqlite(url):
        if not head.startswith(SQLITE_MAGIC):
            raise BackupError(f"{file} 不是 SQLite 备份" + ("（这是 PostgreSQL 的备份）" if head.startswith(PG_DUMP_MAGIC) else ""))
        verdict = _integrity(str(file))
        if verdict != "ok":
            raise BackupError(f"备份文件未通过完整性检查：{verdict}")
        revision = _sqlite_revision(str(file))
    else:
        if not head.startswith(PG_DUMP_MAGIC):
            raise BackupError(f"{file} 不是 pg_dump -Fc 备份" + ("（这是 SQLite 的备份）" if head.startswith(SQLITE_MAGIC) else ""))
        revision = _dump_revision(file)
    _check_revision(revision)
    if holds_data(url) and not force:
        raise BackupError("目标数据库中已有数据；确定要用备份覆盖它，请加 --force（建议先 songtao backup 一份）")
    if is_sqlite(url):
        _restore_sqlite(str(file), sqlite_path(url))
    else:
        _restore_pg(url, file)
    return revision


def _restore_sqlite(source_path: str, target_path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(target_path)) or ".", exist_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=WAL")
    finally:
        target.close()
        source.close()


def _restore_pg(url: str, file: Path) -> None:
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
    tool = pg_tool("pg_restore")
    done = subprocess.run([tool, "--no-owner", "--no-privileges", "--exit-on-error", "-d", libpq_url(url), str(file)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore 失败：{(done.stderr or '').strip()[:300]}")


__all__ = ["BackupError", "BackupResult", "backup", "restore", "holds_data", "default_backup_name", "pg_tool",
           "is_sqlite"]
