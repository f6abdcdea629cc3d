"""The `songtao` commands that set a hall up and keep it running without the demo (issue 13):
add-location, add-till, import-kiosks, import-stock, tick, backup, restore. Registered on
``pos.cli.main``; the names and options are a contract with scripts and checks.

Every command works in one unit of work: a refused input prints one clear line per problem on
stderr, exits non-zero and writes nothing."""
from __future__ import annotations

import os
from pathlib import Path

import click

from pos.cli import _app, _database_url, _ensure_sqlite_folder, _first_line, _redact, _require_schema, main


def _read_file(file: str) -> bytes:
    try:
        with open(file, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise click.ClickException(f"找不到文件：{file}") from None
    except OSError as error:
        raise click.ClickException(f"无法读取文件 {file}：{_first_line(error)}") from None


def _ready_app():
    app = _app()
    _require_schema(app)
    return app


@main.command("add-location")
@click.argument("code")
@click.option("--kind", required=True, type=click.Choice(["hall", "storeroom", "base", "van"]),
              help="hall（卖场）| storeroom（仓库）| base（物流基地）| van（补货车）")
@click.option("--name", required=True, help="The name shown on pages and documents.")
def add_location(code, kind, name):
    """Add a place of the site: the hall floor, a storeroom, the logistics base or a van."""
    from pos.core.db import session_scope
    from pos.hall.setup import SetupError, add_location as add

    app = _ready_app()
    try:
        with app.app_context(), session_scope(app) as session:
            loc = add(session, code=code, kind=kind, name=name)
            shown = f"{loc.code}（{loc.name}）"
    except SetupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"已添加位置 {shown}")


@main.command("add-till")
@click.argument("code")
@click.option("--name", required=True, help="The till's name, e.g. 1号收银台.")
@click.option("--location", required=True, help="The hall floor's location code, e.g. HALL.")
@click.option("--printer", default="none", show_default=True,
              help="tcp://host:9100, usb://VID:PID, serial:///dev/ttyUSB0, file:///dev/usb/lp0 or none.")
@click.option("--paper", default="80", show_default=True, type=click.Choice(["80", "58"]), help="Paper width in mm.")
def add_till(code, name, location, printer, paper):
    """Add a till at a hall floor, with its receipt printer and paper width."""
    from pos.core.db import session_scope
    from pos.hall.setup import SetupError, add_till as add

    app = _ready_app()
    try:
        with app.app_context(), session_scope(app) as session:
            till = add(session, code=code, name=name, location=location, printer=printer, paper=paper)
            shown = f"{till.code}（{till.name}）"
    except SetupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"已添加收银台 {shown}")


@main.command("import-kiosks")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
def import_kiosks(file):
    """Create or update counters from a CSV or XLSX file (all rows or none; every row's errors)."""
    from kiosks.fleet_import import KiosksRefused, apply_import
    from pos.core.db import session_scope

    data = _read_file(file)
    app = _ready_app()
    try:
        with app.app_context(), session_scope(app) as session:
            plan = apply_import(session, os.path.basename(file), data)
    except KiosksRefused as refused:
        for error in refused.errors:
            click.echo(error.describe(), err=True)
        raise click.ClickException(f"导入被拒绝：{len(refused.errors)} 处错误，未写入任何数据") from None
    click.echo(f"导入完成：新建 {plan.created} 个专柜，更新 {plan.updated} 个，未变 {plan.unchanged} 个")


@main.command("import-stock")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--location", required=True, help="The location code the goods are in, e.g. BASE.")
def import_stock(file, location):
    """Post an opening count (sku or barcode, quantity, optional lot, expiry, unit cost) into a
    location as one stock document through the ledger (all rows or none)."""
    from inventory.errors import InventoryError
    from inventory.opening_stock import StockRefused, import_opening_stock
    from pos.core.db import session_scope

    data = _read_file(file)
    app = _ready_app()
    try:
        with app.app_context(), session_scope(app) as session:
            result = import_opening_stock(session, os.path.basename(file), data, location=location)
    except StockRefused as refused:
        for error in refused.errors:
            click.echo(error.describe(), err=True)
        raise click.ClickException(f"导入被拒绝：{len(refused.errors)} 处错误，未写入任何数据") from None
    except InventoryError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"期初库存已入账：{result.number}，{result.lines} 行，位置 {result.location}")


@main.command()
def tick():
    """Refresh every kind of alert once (safe every minute from cron, and concurrently with itself)."""
    from pos.reports.upkeep import tick as run

    app = _ready_app()
    try:
        with app.app_context():
            result = run(app)
    except Exception as error:  # a database that is down: one line for cron's mail
        raise click.ClickException(f"刷新提醒失败：{_first_line(error)}") from None
    click.echo(result.describe())


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=str),
              help="The backup file (default: instance/backups/songtao-<time>.sqlite3 or .dump).")
def backup(out):
    """Back the database up while the tills keep selling (SQLite: online backup + integrity check;
    PostgreSQL: pg_dump -Fc)."""
    from pos.core.backup import BackupError, backup as run, default_backup_name
    from pos.core.config import instance_path

    url = _database_url()
    target = Path(out) if out else default_backup_name(url, instance_path())
    try:
        result = run(url, target)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    except Exception as error:
        raise click.ClickException(f"备份失败：{_first_line(error)}") from None
    click.echo(f"已备份 {_redact(url)} → {result.path}（{result.bytes / 1024:.0f} KB，{result.seconds:.1f} 秒，"
               f"结构版本 {result.revision}）")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--force", is_flag=True, help="Overwrite a database that already holds data.")
def restore(file, force):
    """Restore a backup made by `songtao backup` into DATABASE_URL (an empty database, unless --force)."""
    from pos.core.backup import BackupError, restore as run
    from pos.migrate import head_revision, upgrade

    url = _database_url()
    _ensure_sqlite_folder(url)
    try:
        revision = run(url, Path(file), force=force)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    except Exception as error:
        raise click.ClickException(f"恢复失败：{_first_line(error)}") from None
    click.echo(f"已从 {file} 恢复到 {_redact(url)}（结构版本 {revision}）")
    if revision != head_revision():
        upgrade(url)
        click.echo(f"已把数据库结构从 {revision} 升级到 {head_revision()}")


@main.command("fake-gateway")
@click.option("--port", default=8765, show_default=True, type=int, help="Port on 127.0.0.1.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--keys", "keys", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Folder of the gateway's key pairs (made once). Default: the instance folder's fake-gateway/.")
@click.option("--slow-seconds", default=15, show_default=True, type=click.IntRange(0, 600),
              help="How long a …0005 code's pay call takes to answer (longer than the adapters' timeout).")
def fake_gateway(port, host, keys, slow_seconds):
    """A stand-in for WeChat Pay and Alipay (signatures checked and given as theirs) for rehearsals,
    the demo and the tests; payment codes ending 0001–0005 take each path. Not for real money."""
    from pos.core.config import instance_path
    from pos.payments.fake_gateway import serve

    folder = keys or str(instance_path() / "fake-gateway")
    try:
        serve(host=host, port=port, keys=folder, slow_seconds=slow_seconds, echo=click.echo)
    except OSError as error:
        raise click.ClickException(f"无法在 {host}:{port} 上提供服务：{_first_line(error)}") from None
