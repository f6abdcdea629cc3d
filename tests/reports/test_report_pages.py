"""The report pages over HTTP, on a real database (SQLite or PostgreSQL): who may open them, the
figures they show (the domain's, pos.reports.figures, for a small data set recorded through the real
pos.sales.service.record_sale and pos.sales.refunds.refund), the drill-down whose lines add up to the figure it
was opened from, the CSV and XLSX downloads, and a Chinese 400 page for bad parameters.

The data set (known by construction, dates in Asia/Shanghai) is in tests/fixtures/report_pages.py.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from inventory.localtime import local_today
from pos.reports import figures as reports
from pos.reports import monthly as report_monthly
from pos.core.db import session_scope
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn, record_sale
from tests.fixtures.report_pages import (  # noqa: F401  (auditor, data: fixtures)
    HONEY,
    MEITAN,
    TEA,
    at,
    auditor,
    data,
    yuan,
)

OCT = ("2026-10-01", "2026-10-31")
NOV = ("2026-11-01", "2026-11-30")
BOTH = ("2026-10-01", "2026-11-30")

# what the data set makes, by construction (fen)
OCT_TOTAL = 2 * TEA + HONEY + MEITAN + 10 * TEA + 5 * MEITAN                  # 312 150
OCT_CERTIFIED = 2 * TEA + MEITAN + 10 * TEA + 5 * MEITAN                      # 307 600
NOV_TOTAL = MEITAN + 2 * HONEY + TEA + 10 * HONEY - TEA                       # 66 600
NOV_CERTIFIED = TEA - TEA                                                     # 0
NOV_SONGTAO = 2 * HONEY + TEA + 10 * HONEY - TEA                              # 54 600
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def domain(app, fn):
    with session_scope(app) as s:
        return fn(s)


def collab(app, first, last):
    return domain(app, lambda s: reports.collaboration(s, first=dt.date.fromisoformat(first),
                                                       last=dt.date.fromisoformat(last)))


def html_of(response) -> str:
    return response.get_data(as_text=True)


def figure(html: str, name: str) -> str:
    """The headline figure data-figure="name", tags stripped."""
    match = re.search(rf'data-figure="{name}">(.*?)</span>', html, re.S)
    assert match, f"no figure {name}"
    return re.sub(r"<[^>]+>|\s+", "", match.group(1))


def row_links(html: str, attr: str, value: str) -> list[tuple[str, int]]:
    """(href, fen) of the drill-down figures in the table row with data-attr="value"."""
    match = re.search(rf'<tr {attr}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row {attr}={value}"
    return [(unescape(href), int(fen)) for href, fen in
            re.findall(r'<a class="rpt-fig" href="([^"]+)" data-fen="(-?\d+)"', match.group(1))]


def drill_sum(client, href: str) -> tuple[int, int]:
    """(Σ amounts, number of lines) over every page of a drill-down."""
    total, n, url = 0, 0, href
    while url:
        html = html_of(client.get(url))
        amounts = [int(a) for a in re.findall(r'data-amount="(-?\d+)"', html)]
        total, n = total + sum(amounts), n + len(amounts)
        nxt = re.search(r'<a class="button" href="([^"]+)">下一页</a>', html)
        url = unescape(nxt.group(1)) if nxt else None
    return total, n


# --- who may open them --------------------------------------------------------------------------

PAGES = ["/reports", "/reports/collaboration?from=2026-10-01&to=2026-10-31", "/reports/monthly?month=2026-10",
         "/reports/collaboration/lines?from=2026-10-01&to=2026-10-31&channel=hall"]


@pytest.mark.parametrize("role, status", [("auditor", 200), ("manager", 200), ("admin", 200),
                                          ("cashier", 403), ("restocker", 403)])
def test_who_may_open_the_report_pages(client, auth, make_user, role, status):
    make_user(f"{role}1", role)
    assert auth.login(f"{role}1").status_code == 302
    for path in PAGES + ["/reports/collaboration.csv?from=2026-10-01&to=2026-10-31"]:
        assert client.get(path).status_code == status, path


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get("/reports/monthly?month=2026-10")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_auditor_lands_on_the_reports(client, auth, make_user):
    make_user("u1", "auditor")
    response = auth.login("u1")
    assert response.headers["Location"].endswith("/reports")
    html = html_of(client.get("/reports"))
    assert "报表与消费帮扶统计" in html
    # the periods a person wants most, without typing: this month, last month, this year
    today = local_today()
    this_month = today.replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    assert f"month={this_month:%Y-%m}" in html and f"month={last_month:%Y-%m}" in html
    assert f"from={today.year}-01-01&amp;to={today.year}-12-31" in html
    assert 'aria-current="page">报表</a>' in html


# --- the collaboration page ---------------------------------------------------------------------

def test_collaboration_page_shows_the_domain_figures(app, auditor):
    html = html_of(auditor.get("/reports/collaboration?from=2026-10-01&to=2026-11-30"))
    report = collab(app, *BOTH)
    assert report["total_fen"] == OCT_TOTAL + NOV_TOTAL
    for key in ("total_fen", "certified_fen", "uncertified_fen", "songtao_fen", "refunds_fen"):
        assert figure(html, key) == yuan(report[key]), key
    assert figure(html, "sales") == str(report["sales"]) == "6"
    assert figure(html, "refunds_fen") == "¥68.00"
    # by channel, buyer type and month: every figure as the domain has it
    for c in ("hall", "kiosk", "group"):
        row = report["by_channel"][c]
        assert [fen for _, fen in row_links(html, "data-channel", c)] == [
            row["total_fen"], row["certified_fen"], row["uncertified_fen"], row["songtao_fen"]]
    assert [fen for _, fen in row_links(html, "data-buyer-type", "union")][:2] == [10 * TEA + 5 * MEITAN,
                                                                                 10 * TEA + 5 * MEITAN]
    assert row_links(html, "data-buyer-type", "canteen")[0][1] == 10 * HONEY
    assert row_links(html, "data-buyer-type", "enterprise")[0][1] == 0
    assert [fen for _, fen in row_links(html, "data-month", "2026-10")][:2] == [OCT_TOTAL, OCT_CERTIFIED]
    assert [fen for _, fen in row_links(html, "data-month", "2026-11")][:4] == [NOV_TOTAL, NOV_CERTIFIED,
                                                                              NOV_TOTAL, NOV_SONGTAO]
    for row in report["by_supplier"]:
        assert row_links(html, "data-supplier-id", str(row["supplier_id"]))[0][1] == row["total_fen"]
    for row in report["by_origin"]:
        attr = f'{row["county_code"] or ""}" data-township="{row["township"] or ""}'
        assert row_links(html, "data-county-code", attr)[0][1] == row["total_fen"]
    # the charts: server-side SVG with a bar per non-zero figure, no script needed
    assert html.count('<svg class="rpt-svg"') >= 4
    assert re.search(r'id="chart-channel".*?<rect class="rpt-bar rpt-certified"[^>]*data-value="\d+"', html, re.S)
    assert re.search(r'id="chart-month".*?<rect class="rpt-bar rpt-uncertified"', html, re.S)
    assert "<script" not in html.split("<main", 1)[1]


def test_every_figure_drills_down_to_lines_that_add_up_to_it(app, auditor):
    html = html_of(auditor.get("/reports/collaboration?from=2026-10-01&to=2026-11-30"))
    links = re.findall(r'<a class="rpt-fig" href="([^"]+)" data-fen="(-?\d+)"', html)
    assert len(links) > 40
    checked = set()
    for href, fen in links:
        href = unescape(href)
        if href in checked:
            continue
        checked.add(href)
        total, _ = drill_sum(auditor, href)
        assert total == int(fen), href


def test_the_drill_down_lists_sales_and_refunds_with_their_evidence(app, auditor, data):
    html = html_of(auditor.get("/reports/collaboration/lines?from=2026-11-01&to=2026-11-30&channel=hall&certified=1"))
    # the November refund of a certified October tea: a negative line with its refund and receipt numbers
    assert re.findall(r'data-kind="(\w+)" data-amount="(-?\d+)"', html) == [("refund", str(-TEA))]
    assert "R-H1-20261105-0001" in html and "H1-20261015-0001" in html
    assert "黔扶认〔2026〕0001" in html and "梵净山翠峰茶 250g" in html and "2026-11-05 09:30" in html
    html = html_of(auditor.get("/reports/collaboration/lines?from=2026-10-01&to=2026-11-30&channel=kiosk"))
    assert "K001" in html and "¥68.00" in html
    # the sale at 23:59 on 31 October belongs to October, the one at 00:01 on 1 November to November
    oct_total, _ = drill_sum(auditor, "/reports/collaboration/lines?from=2026-10-01&to=2026-11-30&month=2026-10")
    assert oct_total == OCT_TOTAL
    html = html_of(auditor.get("/reports/collaboration/lines?from=2026-10-01&to=2026-11-30"
                               f"&supplier_id={data.meitan_id}&month=2026-11"))
    assert "2026-11-01 00:01" in html and "2026-10-31 23:59" not in html


def test_the_drill_down_is_paged(app, auditor, data):
    from pos.reports.views import PER_PAGE

    with session_scope(app) as s:
        for i in range(PER_PAGE + 3):
            record_sale(s, SaleIn(channel="kiosk", location_id=data.locs["BASE"], kiosk_id=data.kiosk, receipt_prefix="K001",
                                  txn_id=f"bulk-{i}", sold_at=at(2026, 11, 20, 8, 0),
                                  lines=[LineIn(data.honey, 1000, unit_price_fen=100)],
                                  payments=[PaymentIn("wechat", 100)]))
    href = "/reports/collaboration/lines?from=2026-11-20&to=2026-11-20&channel=kiosk"
    first = html_of(auditor.get(href))
    assert first.count('data-kind="sale"') == PER_PAGE and "第 1 / 2 页，共 53 条" in first
    assert drill_sum(auditor, href) == ((PER_PAGE + 3) * 100, PER_PAGE + 3)
    assert collab(app, "2026-11-20", "2026-11-20")["by_channel"]["kiosk"]["total_fen"] == (PER_PAGE + 3) * 100


# --- downloads ------------------------------------------------------------------------------------

def test_collaboration_downloads_carry_the_figures(app, auditor):
    report = collab(app, *BOTH)
    response = auditor.get("/reports/collaboration.csv?from=2026-10-01&to=2026-11-30")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    cells = {c for row in rows for c in row}
    for fen in (report["total_fen"], report["certified_fen"], report["songtao_fen"]):
        assert f"{Decimal(fen) / 100:.2f}" in cells, fen

    response = auditor.get("/reports/collaboration.xlsx?from=2026-10-01&to=2026-11-30")
    assert response.status_code == 200 and response.mimetype == XLSX
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(response.get_data()))
    assert len(book.sheetnames) >= 6
    numbers = {c for ws in book.worksheets for row in ws.iter_rows(values_only=True) for c in row
               if isinstance(c, (int, float, Decimal)) and not isinstance(c, bool)}
    for fen in (report["total_fen"], report["certified_fen"], report["uncertified_fen"]):
        assert Decimal(fen) / 100 in {Decimal(str(n)) for n in numbers}, fen


def test_the_lines_export_has_every_line_of_the_figure(app, auditor):
    href = "from=2026-10-01&to=2026-11-30&channel=group"
    response = auditor.get(f"/reports/collaboration/lines.csv?{href}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + 3                      # a header and the three group lines
    assert "68000.00" in text or "680.00" in text
    response = auditor.get(f"/reports/collaboration/lines.xlsx?{href}")
    assert response.status_code == 200 and response.mimetype == XLSX
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(response.get_data())).worksheets[0]
    assert ws.max_row == 1 + 3


# --- the monthly summary --------------------------------------------------------------------------

def test_monthly_summary_shows_the_domain_figures(app, auditor):
    html = html_of(auditor.get("/reports/monthly?month=2026-11"))
    summary = domain(app, lambda s: report_monthly.monthly_summary(s, month="2026-11"))
    assert summary["total_fen"] == NOV_TOTAL
    assert figure(html, "total_fen") == yuan(NOV_TOTAL)
    assert figure(html, "sales") == str(summary["sales"]) == "3"
    # takings by day: a chart with a column per day and a table with every day of the month
    assert re.search(r'id="chart-days".*?<rect class="rpt-bar rpt-takings"', html, re.S)
    assert html.count('<tr data-day="') == 30
    # print layout for A4
    assert "reports.css" in html
    css = (Path(app.static_folder) / "css" / "reports.css").read_text(encoding="utf-8")
    assert "@media print" in css and "size: A4" in css


def test_monthly_downloads(app, auditor):
    response = auditor.get("/reports/monthly.csv?month=2026-11")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f"{Decimal(NOV_TOTAL) / 100:.2f}" in response.get_data().decode("utf-8-sig")
    response = auditor.get("/reports/monthly.xlsx?month=2026-11")
    assert response.status_code == 200 and response.mimetype == XLSX


# --- the manager's dashboard ---------------------------------------------------------------------

def test_the_dashboard_shows_today_so_far_by_channel(app, client, auth, data):
    with session_scope(app) as s:
        record_sale(s, SaleIn(channel="hall", location_id=None, till_id=data.h1, sold_at=None,
                              lines=[LineIn(data.tea, 1000), LineIn(data.honey, 1000)],
                              payments=[PaymentIn("cash", TEA + HONEY)]))
    today = domain(app, lambda s: report_monthly.daily_summary(s, day=local_today()))
    assert today["by_channel"]["hall"]["total_fen"] == TEA + HONEY
    assert auth.login("wumei").status_code == 302
    html = html_of(client.get("/dashboard"))
    match = re.search(r'<tr data-channel="hall">(.*?)</tr>', html, re.S)
    assert match, "no daily summary on the dashboard"
    cells = re.sub(r"<[^>]+>", " ", match.group(1)).split()
    assert "1" in cells and yuan(TEA + HONEY) in cells and yuan(TEA) in cells


# --- bad parameters ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/reports/collaboration?from=2026-13-01&to=2026-12-31",
    "/reports/collaboration?from=yesterday&to=2026-12-31",
    "/reports/collaboration?from=2026-11-30&to=2026-11-01",
    "/reports/collaboration?from=2026-11-01",
    "/reports/collaboration?from=2000-01-01&to=2026-12-31",
    "/reports/collaboration?from=0001-01-01&to=0001-01-02",
    "/reports/collaboration?month=2026-00",
    "/reports/collaboration?year=20x6",
    "/reports/collaboration?year=2026&q=5",
    "/reports/collaboration.csv?from=2026-12-01&to=2026-11-01",
    "/reports/collaboration/lines?from=2026-11-01&to=2026-11-30&channel=moon",
    "/reports/collaboration/lines?from=2026-11-01&to=2026-11-30&certified=maybe",
    "/reports/collaboration/lines?from=2026-11-01&to=2026-11-30&supplier_id=99999999999",
    "/reports/collaboration/lines?from=2026-11-01&to=2026-11-30&month=2026-1",
    "/reports/collaboration/lines.xlsx?from=2026-11-01&to=2026-11-30&buyer_type=school",
    "/reports/monthly?month=2026-13",
    "/reports/monthly?month=11-2026",
    "/reports/monthly?month=0001-01",
    "/reports/monthly.xlsx?month=garbage",
])
def test_bad_parameters_get_a_chinese_message_and_400(auditor, path):
    response = auditor.get(path)
    assert response.status_code == 400, path
    html = html_of(response)
    assert 'class="flash flash-error rpt-error"' in html
    message = re.search(r'rpt-error" role="alert">(.*?)</p>', html, re.S).group(1)
    assert re.search(r"[\u4e00-\u9fff]", message), message


def test_quarters_and_years_choose_their_dates(app, auditor):
    html = html_of(auditor.get("/reports/collaboration?year=2026&q=4"))
    assert "2026-10-01 – 2026-12-31" in html
    assert figure(html, "total_fen") == yuan(OCT_TOTAL + NOV_TOTAL)
    html = html_of(auditor.get("/reports/collaboration?year=2026"))
    assert "2026-01-01 – 2026-12-31" in html and html.count('<tr data-month="') == 12
    html = html_of(auditor.get("/reports/collaboration?month=2026-10"))
    assert figure(html, "total_fen") == yuan(OCT_TOTAL)
    # the links of a figure keep the period
    href = row_links(html, "data-channel", "group")[0][0]
    assert parse_qs(urlsplit(href).query) == {"from": ["2026-10-01"], "to": ["2026-10-31"], "channel": ["group"]}


# --- issue 18 point 18 (a): the drill-down shows the sum of its lines -----------------------------

def shown_total(html: str) -> tuple[int, int]:
    """(Σ fen, lines) the drill-down page shows for all its lines, and its footer agrees."""
    match = re.search(r'id="lines-total" data-lines="(\d+)" data-lines-total="(-?\d+)"', html)
    assert match, "no total on the drill-down"
    lines, fen = int(match.group(1)), int(match.group(2))
    if lines:
        assert re.search(rf'<td class="num" data-total-fen="{fen}"><strong>{re.escape(yuan(fen))}</strong>', html)
    return fen, lines


def test_point18a_drill_down_shows_the_sum_of_its_lines(app, auditor, data):
    from pos.reports.views import PER_PAGE

    with session_scope(app) as s:  # more lines than a page holds, in one figure
        for i in range(PER_PAGE + 3):
            record_sale(s, SaleIn(channel="kiosk", location_id=data.locs["BASE"], kiosk_id=data.kiosk, receipt_prefix="K001",
                                  txn_id=f"bulk-{i}", sold_at=at(2026, 11, 20, 8, 0),
                                  lines=[LineIn(data.honey, 1000, unit_price_fen=100)],
                                  payments=[PaymentIn("wechat", 100)]))
    links = re.findall(r'<a class="rpt-fig" href="([^"]+)" data-fen="(-?\d+)"',
                       html_of(auditor.get("/reports/collaboration?from=2026-10-01&to=2026-11-30")))
    links += re.findall(r'<a class="rpt-fig" href="([^"]+)" data-fen="(-?\d+)"',
                        html_of(auditor.get("/reports/monthly?month=2026-11")))
    assert len(links) > 40
    checked = 0
    for href, fen in {unescape(h): f for h, f in links}.items():
        html = html_of(auditor.get(href))
        shown, lines = shown_total(html)
        assert shown == int(fen), href  # the figure clicked
        assert (shown, lines) == drill_sum(auditor, href), href  # the lines listed, over every page
        checked += 1
    assert checked > 20
    kiosk_nov = "/reports/collaboration/lines?from=2026-11-01&to=2026-11-30&channel=kiosk"
    html = html_of(auditor.get(kiosk_nov))
    assert "第 1 / 2 页" in html and shown_total(html) == (TEA + (PER_PAGE + 3) * 100, PER_PAGE + 4)
    assert f"全部 {PER_PAGE + 4} 条明细合计" in html
    # an empty figure says ¥0.00
    assert shown_total(html_of(auditor.get("/reports/collaboration/lines?from=2026-10-01&to=2026-10-31&channel=kiosk"))) == (0, 0)
