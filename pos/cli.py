"""The `songtao` command: init-db, create-user, demo, serve, import-catalogue, reports, counter
tokens, the fleet simulator, and going live without the demo: add-location, add-till,
import-kiosks, import-stock, tick, backup, restore (``pos.cli_site``). User mistakes give one clear
line and a non-zero exit."""
from __future__ import annotations

import os
import sys

import click

from pos.core import heap
from pos.core.config import default_database_url, instance_path


def _app(database_url: str | None = None):
    from pos import create_app

    config = {"DATABASE_URL": database_url} if database_url else None
    return create_app(config)


def _database_url() -> str:
    return os.environ.get("DATABASE_URL") or default_database_url()


def _ensure_sqlite_folder(url: str) -> None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = url[len("sqlite:///"):]
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """梵净山珍·松桃馆 POS: point of sale, inventory and consumption counters."""


@main.command("init-db")
def init_db():
    """Create or upgrade the database (DATABASE_URL) to the newest schema."""
    from pos.migrate import upgrade

    url = _database_url()
    _ensure_sqlite_folder(url)
    try:
        upgrade(url)
        rule, places = _seed_defaults(url)
    except Exception as error:  # connection refused, permissions … : one line, not a traceback
        raise click.ClickException(f"无法迁移数据库 {_redact(url)}：{_first_line(error)}") from None
    click.echo(f"数据库已是最新结构：{_redact(url)}")
    if rule is not None:
        click.echo(f"已添加默认秤签规则：{rule}")
    if places:
        click.echo(f"已建立记账位置：{'、'.join(places)}")


def _seed_defaults(url: str) -> tuple[str | None, list[str]]:
    """What a new hall needs before anyone has configured anything: the common scale-label rule
    (recorded only when there is no rule at all) and the bookkeeping locations (supplier,
    customer, loss, count differences). The pattern added (or None) and the locations created."""
    from sqlalchemy.orm import Session

    from inventory.catalogue import ensure_default_barcode_rule
    from inventory.locations import ensure_bookkeeping_locations
    from pos.core.db import make_engine

    engine = make_engine(url)
    try:
        with Session(engine) as s, s.begin():
            rule = ensure_default_barcode_rule(s)
            return (rule.pattern if rule is not None else None), ensure_bookkeeping_locations(s)
    finally:
        engine.dispose()


@main.command("create-user")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["admin", "manager", "cashier", "restocker", "auditor"]))
@click.option("--password", help="Prompted for when not given.")
@click.option("--name", "display_name", help="Display name (defaults to the username).")
@click.option("--pin", help="4–6 digit PIN for quick till login.")
def create_user(username, role, password, display_name, pin):
    """Create a user with a role."""
    from pos.accounts import users as accounts
    from pos.core.db import session_scope

    if password is None:
        password = click.prompt("密码", hide_input=True, confirmation_prompt=True)
    app = _app()
    _require_schema(app)
    try:
        with app.app_context(), session_scope(app) as session:
            accounts.create_user(session, username=username, role=role, password=password,
                                 display_name=display_name, pin=pin)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"已创建用户 {username}（{role}）")


@main.command()
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--no-serve", is_flag=True, help="Build the demo data and exit.")
@click.option("--force", is_flag=True, help="Wipe a database that already holds data.")
@click.option("--seed", default=20261126, show_default=True, type=int)
def demo(port, host, no_serve, force, seed):
    """Build the demo data (hall, base, 126 counters, ~80 products), then serve it."""
    import time

    from pos.demo import build as demo_data
    from pos.core.db import session_scope
    from pos.migrate import upgrade

    url = _database_url()
    _ensure_sqlite_folder(url)
    started = time.monotonic()
    try:
        if demo_data.has_data(url) and not _only_seeded(url):
            if not force:
                raise click.ClickException(
                    f"数据库 {_redact(url)} 中已有数据；如确定要清空并重建演示数据，请加 --force"
                )
        if demo_data.has_data(url):
            demo_data.wipe(url)  # nothing but what init-db records, or --force
        upgrade(url)
        app = _app(url)
        if not app.config.get("PRINTER_SPOOL_DIR"):  # the demo's tills may print to files in instance/spool
            spool = instance_path() / "spool"
            spool.mkdir(parents=True, exist_ok=True)
            app.config["PRINTER_SPOOL_DIR"] = str(spool)
        with app.app_context(), session_scope(app) as session:
            logins = demo_data.build(session, seed=seed)
    except click.ClickException:
        raise
    except Exception as error:
        raise click.ClickException(f"无法建立演示数据：{_first_line(error)}") from None
    click.echo(f"演示数据已建立（{time.monotonic() - started:.1f} 秒）：{_redact(url)}")
    click.echo("演示账号（用户名 / 密码 / PIN）：")
    for login in logins:
        click.echo(f"  {login['role']:<10} {login['username']:<10} {login['password']:<18} PIN {login.get('pin') or '-'}")
    if not no_serve:
        gateway = _demo_payments(app)
        try:
            _serve(app, host, port, threads=8)
        finally:
            if gateway is not None:
                gateway.stop()


def _demo_payments(app):
    """The fake gateway for the demo's payment codes (pos.demo.payments); None when it cannot run."""
    import signal
    from pathlib import Path

    from pos.demo import payments as demo_payments

    try:
        gateway, used = demo_payments.rehearse(app, Path(app.instance_path))
    except Exception as error:
        click.echo(f"付款码演示不可用：{_first_line(error)}", err=True)
        return None
    for line in demo_payments.describe(gateway, used):
        click.echo(line)
    try:  # a terminated demo (SIGTERM) unwinds like Ctrl+C, so its gateway stops with it
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    except ValueError:  # not the main thread: Ctrl+C and the exit hook still stop it
        pass
    return gateway


@main.command("import-catalogue")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--dry-run", is_flag=True, help="Check the file and show what would change; write nothing.")
def import_catalogue(file, dry_run):
    """Import products, suppliers and certificates from a CSV or XLSX file (all rows or none)."""
    from inventory.catalogue_import import apply_plan, plan_import
    from inventory.catalogue_sheet import ImportRefused
    from inventory.errors import InventoryError
    from pos.core.db import session_scope

    try:
        with open(file, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise click.ClickException(f"找不到文件：{file}") from None
    except OSError as error:
        raise click.ClickException(f"无法读取文件 {file}：{_first_line(error)}") from None
    app = _app()
    _require_schema(app)
    name = os.path.basename(file)
    try:
        with app.app_context(), session_scope(app) as session:
            plan = plan_import(session, name, data)   # planned once: shown, then written
            preview = plan.preview
            _echo_import_plan(preview)
            if preview.errors:
                for error in preview.errors:
                    click.echo(error.describe(), err=True)
                raise click.ClickException(f"导入被拒绝：{len(preview.errors)} 处错误，未写入任何数据")
            if dry_run:
                session.rollback()
                click.echo("试运行（--dry-run）：未写入任何数据")
                return
            result = apply_plan(session, plan, name)
    except ImportRefused as refused:
        for error in refused.errors:
            click.echo(error.describe(), err=True)
        raise click.ClickException(f"导入被拒绝：{len(refused.errors)} 处错误，未写入任何数据") from None
    except InventoryError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"导入完成：新建 {result.created} 个商品，更新 {result.updated} 个，未变 {result.unchanged} 个")


@main.command("kiosk-token")
@click.argument("code")
def kiosk_token(code):
    """Issue a new token for a counter (the old one stops working); prints only the token."""
    from kiosks.registry import issue_token
    from pos.core.db import session_scope
    from pos.core.errors import PosError

    app = _app()
    _require_schema(app)
    try:
        with app.app_context(), session_scope(app) as session:
            token = issue_token(session, code.strip().upper(), actor_id=None)
    except PosError as error:
        raise click.ClickException(str(error)) from None
    click.echo(token)  # alone on stdout, so that scripts can capture it


class _BadReportInput(click.ClickException):
    """A period or month the reports cannot use: one line on stderr, exit 2 (a usage error)."""

    exit_code = 2


@main.group("report")
def report():
    """Reports: consumption-collaboration statistics and monthly summaries (JSON, CSV, XLSX)."""


_REPORT_FORMAT = click.option("--format", "fmt", default="json", show_default=True,
                              type=click.Choice(["json", "csv", "xlsx"]))
_REPORT_OUT = click.option("--out", type=click.Path(dir_okay=False, writable=True),
                           help="Write to this file instead of stdout.")


def _run_report(build, to_text, to_csv, to_xlsx, fmt: str, out: str | None) -> None:
    """Build the report in one read-only unit of work and write it in the chosen format."""
    from pos.core.db import session_scope
    from pos.reports.figures import ReportError

    app = _app()
    _require_schema(app)
    try:
        with app.app_context(), session_scope(app, read_only=True) as session:
            data = build(session)
    except ReportError as error:
        raise _BadReportInput(str(error)) from None
    if fmt == "xlsx":
        payload = to_xlsx(data)
    elif fmt == "csv":
        payload = to_csv(data).encode("utf-8-sig" if out else "utf-8")  # a BOM so Excel reads UTF-8
    else:
        payload = (to_text(data) + "\n").encode("utf-8")
    if out:
        try:
            with open(out, "wb") as fh:
                fh.write(payload)
        except OSError as error:
            raise click.ClickException(f"无法写入 {out}：{error.strerror}") from None
        click.echo(f"已写入 {out}", err=True)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()


def _report_json(data) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, indent=2)


@report.command("collaboration")
@click.option("--from", "first", required=True, metavar="YYYY-MM-DD", help="First local date (inclusive).")
@click.option("--to", "last", required=True, metavar="YYYY-MM-DD", help="Last local date (inclusive).")
@_REPORT_FORMAT
@_REPORT_OUT
def report_collaboration(first, last, fmt, out):
    """Consumption-collaboration statistics for a period: total, certified, Songtao, by channel …"""
    from pos.reports import exports
    from pos.reports import figures as reports

    def build(session):
        a, b = reports.parse_period(first, last)
        return reports.collaboration(session, first=a, last=b)

    _run_report(build, _report_json, exports.collaboration_csv, exports.collaboration_xlsx, fmt, out)


@report.command("monthly")
@click.option("--month", required=True, metavar="YYYY-MM", help="The local calendar month.")
@_REPORT_FORMAT
@_REPORT_OUT
def report_monthly(month, fmt, out):
    """The monthly sales summary: by day, payment method, category, product, till, counter …"""
    from pos.reports import exports, monthly

    _run_report(lambda session: monthly.monthly_summary(session, month=month), _report_json,
                exports.monthly_csv, exports.monthly_xlsx, fmt, out)


@main.command("rebuild-aggregates")
@click.option("--from", "first", metavar="YYYY-MM-DD", help="First local date (inclusive); default: the first.")
@click.option("--to", "last", metavar="YYYY-MM-DD", help="Last local date (inclusive); default: the last.")
def rebuild_aggregates(first, last):
    """Recompute the reports' daily figures of those dates from the sale and refund lines."""
    from pos.core.db import session_scope
    from pos.reports.figures import ReportError, parse_day
    from pos.sales import daily_figures

    try:
        a = parse_day(first, "from") if first else None
        b = parse_day(last, "to") if last else None
    except ReportError as error:
        raise click.BadParameter(str(error)) from None
    if a and b and a > b:
        raise click.BadParameter("开始日期不能晚于结束日期")
    app = _app()
    _require_schema(app)
    with app.app_context(), session_scope(app) as session:
        done = daily_figures.rebuild(session, a, b)
    span = f"{a or '…'} – {b or '…'}"
    click.echo(f"已重算每日汇总（{span}）：删除 {done['deleted']} 行，现有 {done['rows']} 行")


def _echo_import_plan(preview) -> None:
    click.echo(f"共 {len(preview.rows)} 行：新建 {preview.created} 个商品，更新 {preview.updated} 个，"
               f"未变 {preview.unchanged} 个")
    for label, names in (("新分类", preview.new_categories), ("新供应商", preview.new_suppliers),
                         ("新证书", preview.new_certificates), ("变更的证书", preview.changed_certificates),
                         ("忽略的列", preview.ignored_columns)):
        if names:
            click.echo(f"{label}：{'、'.join(names)}")
    updates = [row for row in preview.rows if row.action == "update"]
    for row in updates[:100]:
        if row.action == "update":
            changed = "；".join(f"{column} {old or '（空）'} → {new or '（空）'}" for column, (old, new) in row.changes.items())
            click.echo(f"  第 {row.row_no} 行 {row.sku} {row.name}：{changed}")
    if len(updates) > 100:
        click.echo(f"  ……另有 {len(updates) - 100} 行更新未列出")


@main.command("simulate-kiosks")
@click.option("--kiosks", "count", default=126, show_default=True, type=click.IntRange(1, 999),
              help="How many active counters take part (the first by code).")
@click.option("--days", default=1.0, show_default=True, type=click.FloatRange(0, 366, min_open=True),
              help="Simulated days (fractions allowed).")
@click.option("--url", help="The server to send to, e.g. http://127.0.0.1:5000.")
@click.option("--in-process", is_flag=True, help="Send through the app on DATABASE_URL in this process instead.")
@click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same sales and txn_ids.")
@click.option("--start", help="First simulated day YYYY-MM-DD (from local midnight); default: --days before now.")
def simulate_kiosks(count, days, url, in_process, seed, start):
    """Run simulated counters against the counter API: sales, heartbeats, outages, resends.

    Tokens: a new token is issued to each simulated counter through the database named by
    DATABASE_URL (the same database the server at --url uses), so the counters' previous tokens
    stop working. The run ends at the latest now (the API refuses sales from the future).
    """
    import datetime as dt
    import time

    from sqlalchemy import select

    from inventory.localtime import HALL_TZ, parse_local_date, utcnow
    from kiosks import simulator
    from kiosks.models import Kiosk, KioskStatus
    from kiosks.registry import issue_token
    from pos.core.db import session_scope

    if bool(url) == in_process:
        raise click.UsageError("请给出 --url 或 --in-process 二者之一")
    now = utcnow()
    if start:
        try:
            first = parse_local_date(start)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--start") from None
        begins = dt.datetime.combine(first, dt.time.min, tzinfo=HALL_TZ)
    else:
        begins = now - dt.timedelta(days=days)
    if begins >= now:
        raise click.BadParameter("开始日期不能晚于今天", param_hint="--start")
    if begins + dt.timedelta(days=days) > now:
        days = (now - begins) / dt.timedelta(days=1)
        click.echo(f"模拟到当前时间为止（{days:.2f} 天）", err=True)

    app = _app()
    _require_schema(app)
    with app.app_context(), session_scope(app) as session:
        rows = session.execute(select(Kiosk.code, Kiosk.site_type).where(Kiosk.status == KioskStatus.ACTIVE)
                               .order_by(Kiosk.code).limit(count)).all()
        fleet = [simulator.SimKiosk(code, issue_token(session, code), site_type) for code, site_type in rows]
    if not fleet:
        raise click.ClickException("数据库中没有启用的专柜")
    click.echo(f"已为 {len(fleet)} 个专柜签发新令牌（原令牌已失效）", err=True)

    send = simulator.client_sender(app) if in_process else simulator.http_sender(url)
    started = time.monotonic()

    def progress(day, stats):
        click.echo(f"{day}：已发送 {stats.sales_sent} 笔，接受 {stats.accepted}，重复 {stats.duplicates}，"
                   f"拒收 {stats.rejected}（{time.monotonic() - started:.0f} 秒）")

    try:
        with app.app_context():
            stats = simulator.simulate(send=send, kiosks=fleet, start=begins, days=days, seed=seed, progress=progress)
    except OSError as error:
        raise click.ClickException(f"无法连接 {url}：{_first_line(error)}") from None
    click.echo(f"销售 {stats.sales_made} 笔：接受 {stats.accepted}，重复 {stats.duplicates}"
               f"（重发 {stats.resent_batches} 批），拒收 {stats.rejected}；离线专柜仍未发送 {stats.unsent} 笔")
    click.echo(f"心跳 {stats.heartbeats} 次，货架图 {stats.planograms} 次，顾客遇到空柜 {stats.sold_out} 次；"
               f"离线专柜：{'、'.join(sorted(stats.offline)) or '无'}")
    for day, n in sorted(stats.accepted_by_day.items()):
        click.echo(f"  {day}：{n} 笔")
    for line in stats.failures[:10] + [f"{r['kiosk']} {r['txn_id']}：{r['error']}" for r in stats.rejections[:10]]:
        click.echo(line, err=True)
    if stats.failed_requests:
        raise click.ClickException(f"{stats.failed_requests} 个请求失败")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
def serve(host, port, threads):
    """Serve the application with waitress."""
    app = _app()
    _require_schema(app)
    heap.settle()  # what start-up built lives as long as the server: out of the collector's way
    _serve(app, host, port, threads)


def _serve(app, host: str, port: int, threads: int) -> None:
    from waitress import serve as waitress_serve

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"梵净山珍·松桃馆 POS 已启动：http://{shown}:{port}/  （Ctrl+C 停止）")
    sys.stdout.flush()
    waitress_serve(app, host=host, port=port, threads=threads, ident="songtao")


def _only_seeded(url: str) -> bool:
    """A database holding nothing but what ``init-db`` records (the bookkeeping locations, the
    default scale-label rule): the demo may replace it without --force."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from inventory.locations import BOOKKEEPING_CODES
    from inventory.models import Location
    from pos.core.backup import holds_data
    from pos.core.db import make_engine

    if holds_data(url):
        return False
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            codes = set(s.scalars(select(Location.code)))
    except Exception:
        return False
    finally:
        engine.dispose()
    return codes <= BOOKKEEPING_CODES


def _require_schema(app) -> None:
    from pos.migrate import current_revision, head_revision

    url = app.config["DATABASE_URL"]
    try:
        current = current_revision(url)
    except Exception as error:
        raise click.ClickException(f"无法连接数据库 {_redact(url)}：{_first_line(error)}") from None
    if current != head_revision():
        raise click.ClickException("数据库结构不是最新的，请先运行 songtao init-db")


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return url


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else error.__class__.__name__


from pos import cli_site  # noqa: E402,F401  (registers the site commands on main)

if __name__ == "__main__":  # pragma: no cover
    from pos.cli import main as songtao  # the imported module, on whose group pos.cli_site registered

    songtao()
