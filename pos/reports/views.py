"""The report pages: the landing page (choose a period), the consumption-collaboration statistics
with a drill-down to the sale and refund lines behind every figure, the monthly sales summary, and
their CSV / XLSX downloads.

Thin: parse the query string, call pos.reports.figures / drilldown / monthly (the one place that
defines every figure) and pos.reports.exports (every download, through ``_export``), render.
Nothing here adds, splits or nets an amount. A bad parameter (a date that is not a date, from after
to, a month that is not YYYY-MM) is answered with the landing page, a Chinese message and status
400, never a 500.
"""
from __future__ import annotations

import datetime as dt
import io
import re
from typing import Optional
from urllib.parse import quote

from flask import Blueprint, render_template, request, send_file, url_for
from flask_babel import gettext as _

from inventory.localtime import local_today
from inventory.web import get_session, page_arg, read_only
from pos.group.labels import buyer_type_label
from pos.reports import figures as reports
from pos.reports import drilldown as report_drilldown
from pos.reports import exports as report_exports
from pos.reports import monthly as report_monthly
from pos.sales.reading import payment_label
from pos.core.web import requires

bp = Blueprint("reports", __name__, url_prefix="/reports")

PER_PAGE = 50
MAX_ID = 2**31 - 1          # integer keys are 32-bit on PostgreSQL
FIRST_YEAR, LAST_YEAR = 2000, 2099

EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_YEAR = re.compile(r"\d{4}")


class BadParameter(ValueError):
    """A query parameter a person can fix; its message is shown on the page."""


# what a page answers with the landing page, its message and status 400
BAD = (BadParameter, reports.ReportError)


@bp.context_processor
def _helpers():
    return {"channel_label": lambda c: str(reports.CHANNEL_LABELS.get(c, c)),
            "buyer_label": lambda b: buyer_type_label(b, in_statistics=True),
            "payment_label": payment_label, "share": share, "drill_url": drill_url,
            "CHANNELS": reports.CHANNELS, "BUYER_TYPES": reports.BUYER_TYPES}


def drill_url(*parts: dict) -> str:
    """The drill-down behind a figure: the period and the row's filters, merged."""
    args: dict = {}
    for part in parts:
        args.update(part)
    return url_for("reports.collaboration_lines", **args)


def share(part_fen: int, whole_fen: int) -> str:
    """part as a percentage of whole ("24.7%", pos.reports.figures.percent), "—" when whole is zero."""
    text = reports.percent(part_fen, whole_fen)
    return "—" if text is None else f"{text}%"


# --- parsing the query string -------------------------------------------------------------------

def _in_range(*days: dt.date) -> None:
    if any(not FIRST_YEAR <= day.year <= LAST_YEAR for day in days):
        raise BadParameter(_("日期超出范围（%(first)s–%(last)s 年）", first=FIRST_YEAR, last=LAST_YEAR))


def parse_month(text: str) -> tuple[dt.date, dt.date]:
    """The first and last day of a YYYY-MM month."""
    first = reports.parse_month(text)
    _in_range(first)
    return reports.month_bounds(first)


def _year(text: str) -> int:
    if not _YEAR.fullmatch(text.strip()) or not FIRST_YEAR <= int(text) <= LAST_YEAR:
        raise BadParameter(_("年份应为 %(first)s 到 %(last)s 之间的四位数字", first=FIRST_YEAR, last=LAST_YEAR))
    return int(text)


def parse_period() -> tuple[dt.date, dt.date]:
    """?from=&to= (inclusive local dates), or ?month=YYYY-MM, or ?year=YYYY[&q=1..4];
    this month when none is given."""
    args = request.args
    if "from" in args or "to" in args:
        first, last = reports.parse_period(args.get("from"), args.get("to"))
        _in_range(first, last)
    elif args.get("month"):
        first, last = parse_month(args["month"])
    elif args.get("year"):
        year = _year(args["year"])
        quarter = args.get("q", "").strip()
        if quarter:
            if quarter not in ("1", "2", "3", "4"):
                raise BadParameter(_("季度应为 1 到 4"))
            start = dt.date(year, 3 * int(quarter) - 2, 1)
            first, last = start, reports.add_months(start, 3) - dt.timedelta(days=1)
        else:
            first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    else:
        first, last = parse_month(local_today().strftime("%Y-%m"))
    return first, last


def _choice(name: str, allowed, message) -> Optional[str]:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        raise BadParameter(message)
    return value


def _flag(name: str) -> Optional[bool]:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if value not in ("1", "0"):
        raise BadParameter(_("参数 %(name)s 应为 1 或 0", name=name))
    return value == "1"


def line_filters() -> dict:
    """The drill-down's filters, as pos.reports.drilldown.collaboration_lines takes them. A figure's row
    without a supplier or an origin links with supplier_id=none or an empty county_code/township
    (present but empty: the lines without one)."""
    args = request.args
    supplier_id = args.get("supplier_id", "").strip() or None
    if supplier_id is not None and supplier_id != "none":
        if not supplier_id.isdigit() or not 0 < int(supplier_id) <= MAX_ID:
            raise BadParameter(_("供应商编号不正确"))
        supplier_id = int(supplier_id)
    month = args.get("month", "").strip() or None
    if month:
        parse_month(month)
    county_code = args["county_code"].strip() if "county_code" in args else None
    if county_code and not (county_code.isdigit() and len(county_code) == 6):
        raise BadParameter(_("县级行政区划代码应为 6 位数字"))
    township = args["township"].strip() if "township" in args else None
    if township and len(township) > 60:
        raise BadParameter(_("乡镇名称太长"))
    return {
        "channel": _choice("channel", reports.CHANNELS, _("渠道不正确")),
        "buyer_type": _choice("buyer_type", reports.BUYER_TYPES, _("团购类型不正确")),
        "certified": _flag("certified"),
        "songtao": _flag("songtao"),
        "supplier_id": supplier_id,
        "county_code": county_code,
        "township": township,
        "month": month,
    }


def _bad(error: BadParameter):
    return render_template("pos/reports/index.html", **{**_landing_periods(), "error": str(error)}), 400


def _download(data, fmt: str, stem: str, chinese: str):
    body = data.encode("utf-8-sig") if isinstance(data, str) else data
    response = send_file(io.BytesIO(body), mimetype=EXPORT_TYPES[fmt], max_age=0)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{stem}.{fmt}"; filename*=UTF-8\'\'{quote(f"{chinese}.{fmt}")}'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _export(fmt: str, parse, read, writers, names):
    """Every download: an unknown format is a 404, a bad parameter the landing page with the
    message (400); else the figures ``read(*parse())`` gives, written by ``writers`` (CSV, XLSX),
    as the file ``names(*parse())`` names (ASCII, Chinese)."""
    if fmt not in EXPORT_TYPES:
        return render_template("pos/core/error.html", code=404, title=_("页面不存在"), message=""), 404
    try:
        args = parse()
    except BAD as error:
        return _bad(error)
    write_csv, write_xlsx = writers
    figures = read(*args)
    data = write_csv(figures) if fmt == "csv" else write_xlsx(figures)
    return _download(data, fmt, *names(*args))


# --- the landing page ---------------------------------------------------------------------------

def _landing_periods() -> dict:
    today = local_today()
    this_first, this_last = parse_month(today.strftime("%Y-%m"))
    last_first, last_last = parse_month((this_first - dt.timedelta(days=1)).strftime("%Y-%m"))
    return {
        "today": today,
        "this_month": (this_first, this_last),
        "last_month": (last_first, last_last),
        "this_year": (dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)),
        "quarter": (today.month - 1) // 3 + 1,
        "years": list(range(today.year, max(FIRST_YEAR, today.year - 6) - 1, -1)),
        "error": None,
    }


@bp.route("")
@read_only
@requires("reports")
def index():
    return render_template("pos/reports/index.html", **_landing_periods())


# --- consumption-collaboration statistics -------------------------------------------------------

@bp.route("/collaboration")
@read_only
@requires("reports")
def collaboration():
    try:
        first, last = parse_period()
    except BAD as error:
        return _bad(error)
    report = reports.collaboration(get_session(), first=first, last=last)
    period = {"from": first.isoformat(), "to": last.isoformat()}
    return render_template("pos/reports/collaboration.html", report=report, period=period,
                           chart=_collaboration_charts(report, period))


def _bar(label: str, row: dict, href: str, short: Optional[str] = None) -> dict:
    """One bar of a certified/uncertified chart: R's figures as they are, and where they lead."""
    return {"label": label, "short": short, "values": [row["certified_fen"], row["uncertified_fen"]], "href": href}


def _collaboration_charts(report: dict, period: dict) -> dict:
    lines = "reports.collaboration_lines"
    months = report["by_month"]
    return {
        "channel": [_bar(str(reports.CHANNEL_LABELS[c]), report["by_channel"][c], url_for(lines, channel=c, **period))
                    for c in reports.CHANNELS],
        "buyer": [_bar(buyer_type_label(b, in_statistics=True), report["by_buyer_type"][b],
                       url_for(lines, channel="group", buyer_type=b, **period)) for b in reports.BUYER_TYPES],
        "month": [_bar(row["month"], row, url_for(lines, month=row["month"], **period)) for row in months],
        "month_every": (len(months) - 1) // 12 + 1,  # a label on every month up to a year
    }


@bp.route("/collaboration.<fmt>")
@read_only
@requires("reports")
def collaboration_download(fmt: str):
    def names(first: dt.date, last: dt.date) -> tuple[str, str]:
        span = f"{first:%Y%m%d}-{last:%Y%m%d}"
        return f"songtao-collaboration-{span}", f"消费帮扶统计-{span}"

    return _export(fmt, parse_period,
                   lambda first, last: reports.collaboration(get_session(), first=first, last=last),
                   (report_exports.collaboration_csv, report_exports.collaboration_xlsx), names)


@bp.route("/collaboration/lines")
@read_only
@requires("reports")
def collaboration_lines():
    try:
        first, last = parse_period()
        filters = line_filters()
    except BAD as error:
        return _bad(error)
    page = report_drilldown.collaboration_lines(get_session(), first=first, last=last, **filters,
                                       page=page_arg(), per_page=PER_PAGE)
    totals = report_drilldown.collaboration_lines_total(get_session(), first=first, last=last, **filters)
    args = {"from": first.isoformat(), "to": last.isoformat(),
            **{k: _arg(v) for k, v in filters.items() if v is not None}}
    return render_template("pos/reports/lines.html", page=page, totals=totals, first=first, last=last,
                           filters=filters, args=args)


def _arg(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@bp.route("/collaboration/lines.<fmt>")
@read_only
@requires("reports")
def collaboration_lines_download(fmt: str):
    def names(first: dt.date, last: dt.date, _filters: dict) -> tuple[str, str]:
        span = f"{first:%Y%m%d}-{last:%Y%m%d}"
        return f"songtao-collaboration-lines-{span}", f"消费帮扶明细-{span}"

    return _export(fmt, lambda: (*parse_period(), line_filters()),
                   lambda first, last, filters: report_drilldown.iter_collaboration_lines(
                       get_session(), first=first, last=last, **filters),
                   (report_exports.lines_csv, report_exports.lines_xlsx), names)


# --- the monthly sales summary ------------------------------------------------------------------

def _month_arg() -> str:
    text = request.args.get("month", "").strip() or local_today().strftime("%Y-%m")
    parse_month(text)
    return text


@bp.route("/monthly")
@read_only
@requires("reports")
def monthly():
    try:
        month = _month_arg()
    except BAD as error:
        return _bad(error)
    summary = report_monthly.monthly_summary(get_session(), month=month)
    first, last = parse_month(month)
    period = {"from": first.isoformat(), "to": last.isoformat()}
    lines = "reports.collaboration_lines"
    half = (len(summary["by_day"]) + 1) // 2
    chart = {
        "days": [{"label": row["date"], "short": str(int(row["date"][8:])), "values": [row["total_fen"]],
                  "href": url_for(lines, **{"from": row["date"], "to": row["date"]})} for row in summary["by_day"]],
        "channel": [_bar(str(reports.CHANNEL_LABELS[c]), summary["by_channel"][c], url_for(lines, channel=c, **period))
                    for c in reports.CHANNELS],
        "payment": [{"label": str(row["label"]), "values": [row["net_fen"]], "href": None}
                    for row in summary["by_payment"]],
    }
    return render_template("pos/reports/monthly.html", summary=summary, month=month, period=period, chart=chart,
                           day_tables=[summary["by_day"][:half], summary["by_day"][half:]],
                           previous=reports.add_months(first, -1).strftime("%Y-%m"),
                           following=reports.add_months(first, 1).strftime("%Y-%m"))


@bp.route("/monthly.<fmt>")
@read_only
@requires("reports")
def monthly_download(fmt: str):
    return _export(fmt, lambda: (_month_arg(),),
                   lambda month: report_monthly.monthly_summary(get_session(), month=month),
                   (report_exports.monthly_csv, report_exports.monthly_xlsx),
                   lambda month: (f"songtao-monthly-{month}", f"月度销售汇总-{month}"))
