"""The report pages in a real headless Chromium: the auditor logs in, opens the monthly summary and
the consumption-collaboration statistics for a month with data (recorded through
pos.sales.service.record_sale, see tests/fixtures/report_pages.py), sees the SVG charts with their bars and the
numbers the domain (pos.reports.figures) computes, follows a figure to its lines, and the pages fit the
till screen (1366×768) and print on A4.

Screenshots land in screenshots/ (ignored by git) for a person to look at.
"""
from __future__ import annotations

import datetime as dt

import pytest

from pos.reports import figures as reports
from pos.reports import monthly as report_monthly
from pos.core.db import session_scope
from tests.conftest import screenshot
from tests.fixtures.browser import heading, login_by_password, no_horizontal_scroll
from tests.fixtures.report_pages import build_data_set, yuan

pytestmark = pytest.mark.browser


@pytest.fixture
def auditor_page(app, live_server, page, make_user):
    manager_id = make_user("wumei", "manager", display_name="吴梅")
    cashier_id = make_user("longxia", "cashier", display_name="龙霞")
    make_user("audit", "auditor", display_name="审计员")
    build_data_set(app, manager_id, cashier_id)
    login_by_password(page, live_server, "audit")
    assert page.url == f"{live_server}/reports"
    return page


def domain(app, fn):
    with session_scope(app) as s:
        return fn(s)


def bars(page, chart_id: str) -> list[int]:
    """The fen values of the drawn bars of one chart."""
    return [int(v) for v in page.locator(f"#{chart_id} svg .rpt-bar").evaluate_all(
        "els => els.map(e => e.getAttribute('data-value'))")]


def print_screenshot(page, name: str) -> None:
    """The page as printed on A4 portrait (210 mm ≈ 794 CSS px wide at 96 dpi)."""
    page.set_viewport_size({"width": 794, "height": 1123})
    page.emulate_media(media="print")
    assert page.locator("header.topbar").is_hidden()
    assert page.locator(".rpt-actions").first.is_hidden()
    assert no_horizontal_scroll(page)
    screenshot(page, name)
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1366, "height": 768})


def test_monthly_summary_in_the_browser(app, live_server, auditor_page):
    page = auditor_page
    summary = domain(app, lambda s: report_monthly.monthly_summary(s, month="2026-11"))
    assert heading(page) == "报表与消费帮扶统计"
    page.locator("#by-month input[name=month]").fill("2026-11")
    with page.expect_navigation():
        page.get_by_role("button", name="月度销售汇总").click()
    assert "/reports/monthly?month=2026-11" in page.url
    assert heading(page) == "月度销售汇总"

    assert page.locator('[data-figure="total_fen"]').inner_text() == yuan(summary["total_fen"])
    assert page.locator('[data-figure="certified_fen"]').inner_text() == yuan(summary["certified_fen"])
    assert page.locator('[data-figure="sales"]').inner_text() == str(summary["sales"])
    # takings by day: one bar per day with takings, each the day's figure; the table lists all 30 days
    drawn = bars(page, "chart-days")
    assert drawn == [d["total_fen"] for d in summary["by_day"] if d["total_fen"] > 0]
    assert page.locator("#chart-days svg rect.rpt-bar").first.is_visible()
    assert page.locator("tr[data-day]").count() == 30
    assert page.locator('tr[data-day="2026-11-12"] td').nth(1).inner_text() == yuan(45_500)
    assert page.locator("#chart-channel svg rect.rpt-bar").count() >= 2
    for c in ("hall", "kiosk", "group"):
        assert page.locator(f'#channel-table tr[data-channel="{c}"] td').first.inner_text() == \
            yuan(summary["by_channel"][c]["total_fen"])
    assert page.locator('#compare-table tr[data-compare="previous_month"] td').nth(1).inner_text().startswith(
        yuan(summary["previous_month"]["total_fen"]))
    assert no_horizontal_scroll(page)
    screenshot(page, "reports-monthly")
    print_screenshot(page, "reports-monthly-print")


def test_collaboration_statistics_in_the_browser(app, live_server, auditor_page):
    page = auditor_page
    report = domain(app, lambda s: reports.collaboration(s, first=dt.date(2026, 10, 1), last=dt.date(2026, 10, 31)))
    page.locator("#by-month input[name=month]").fill("2026-10")
    with page.expect_navigation():
        page.locator("#by-month").get_by_role("button", name="消费帮扶统计").click()
    assert heading(page) == "消费帮扶统计"
    assert "2026-10-01 – 2026-10-31" in page.locator("main h1").inner_text()

    for key in ("total_fen", "certified_fen", "uncertified_fen", "songtao_fen"):
        assert page.locator(f'[data-figure="{key}"]').inner_text() == yuan(report[key]), key
    assert page.locator('[data-figure="sales"]').inner_text() == str(report["sales"])
    # the channel chart: certified and uncertified bars, as the domain splits them
    expected = []
    for c in ("hall", "kiosk", "group"):
        row = report["by_channel"][c]
        expected += [v for v in (row["certified_fen"], row["uncertified_fen"]) if v > 0]
    assert bars(page, "chart-channel") == expected
    assert page.locator("#chart-month svg rect.rpt-bar").count() == 2
    assert page.locator("#chart-share svg circle.rpt-bar").count() == 1
    assert page.locator('#channel-table tr[data-channel="group"] a.rpt-fig').first.inner_text() == \
        yuan(report["by_channel"]["group"]["total_fen"])
    assert no_horizontal_scroll(page)
    screenshot(page, "reports-collaboration")
    print_screenshot(page, "reports-collaboration-print")

    # a figure opens the lines behind it; they add up to it
    with page.expect_navigation():
        page.locator('#channel-table tr[data-channel="group"] a.rpt-fig').first.click()
    assert heading(page) == "消费帮扶明细"
    amounts = page.locator("#lines tbody tr").evaluate_all("rows => rows.map(r => +r.dataset.amount)")
    assert sum(amounts) == report["by_channel"]["group"]["total_fen"] and len(amounts) == 2
    assert page.get_by_role("link", name="导出 CSV").is_visible()
    assert no_horizontal_scroll(page)
    screenshot(page, "reports-lines")


def test_a_bad_month_is_explained_in_chinese(live_server, auditor_page):
    page = auditor_page
    response = page.goto(f"{live_server}/reports/monthly?month=2026-13")
    assert response.status == 400
    assert page.locator(".rpt-error").inner_text() == "月份格式应为 YYYY-MM"
    assert heading(page) == "报表与消费帮扶统计"
