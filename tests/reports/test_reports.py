"""The reports on a data set whose figures are known by construction (worked out by hand, never
with the code under test): hall, counter and group sales across the first quarter of 2026,
certified and uncertified lines, a certificate that expires on 31 January, refunds in a later
month and of a sale from before the period, an order discount with 抹零, a voided sale, and
sales at 23:59 and 00:01 local time on every month boundary.

The data set and its figures worked out by hand are in tests/fixtures/reports.py.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from inventory.models import (Product, Setting,
                              Supplier)
from pos.reports import figures as reports
from pos.reports import drilldown as report_drilldown
from pos.reports import exports as report_exports
from pos.reports import monthly as report_monthly
from pos.reports.figures import ReportError
from pos.sales.pricing import LineIn
from pos.sales.service import PaymentIn, SaleIn, record_sale
from tests.fixtures.reports import (  # noqa: F401  (dataset: fixture)
    FEBRUARY,
    JANUARY,
    MARCH,
    Q1,
    ZERO,
    csv_tables,
    dataset,
    expected_q1,
    fen_of,
    figures,
    local,
)


AMOUNTS = ("total_fen", "certified_fen", "uncertified_fen", "songtao_fen", "refunds_fen")


def assert_breakdowns_add_up(report: dict) -> None:
    for key in AMOUNTS:
        for rows in (report["by_channel"].values(), report["by_month"], report["by_supplier"], report["by_origin"]):
            assert sum(r[key] for r in rows) == report[key], key
        assert sum(r[key] for r in report["by_buyer_type"].values()) == report["by_channel"]["group"][key]
    for rows in (report["by_channel"].values(), report["by_month"]):
        assert sum(r["sales"] for r in rows) == report["sales"]
    for row in (report, *report["by_channel"].values(), *report["by_month"], *report["by_supplier"],
                *report["by_origin"], *report["by_buyer_type"].values()):
        assert row["certified_fen"] + row["uncertified_fen"] == row["total_fen"]


# --- the collaboration statistics -------------------------------------------------------------------

def test_the_quarter_to_the_fen(app, dataset, session):
    report = reports.collaboration(session, first=Q1[0], last=Q1[1])
    assert report == expected_q1(dataset)
    assert list(report) == ["from", "to", "currency", "total_fen", "certified_fen", "uncertified_fen", "songtao_fen",
                            "sales", "refunds_fen", "by_channel", "by_buyer_type", "by_month", "by_supplier",
                            "by_origin"]
    assert_breakdowns_add_up(report)


@pytest.mark.parametrize("first, last, expected", [
    ((2026, 1, 1), (2026, 1, 31), JANUARY),
    ((2026, 2, 1), (2026, 2, 28), FEBRUARY),
    ((2026, 3, 1), (2026, 3, 31), MARCH),
    # the boundaries: B (Jan 31 23:59) and C (Feb 1 00:01) fall on either side of midnight
    ((2026, 1, 31), (2026, 1, 31), figures(5800, 5800, 0, 0, 1, 0)),
    ((2026, 2, 1), (2026, 2, 1), figures(10300, 0, 10300, 0, 1, 0)),
    # April: H (00:01 on the 1st) and R3 of B; December: I alone
    ((2026, 4, 1), (2026, 4, 30), figures(11000, 11000, 0, 16800, 1, 5800)),
    ((2025, 12, 1), (2025, 12, 31), figures(16800, 0, 16800, 16800, 1, 0)),
    ((2027, 1, 1), (2027, 12, 31), ZERO),
])
def test_each_month_and_the_midnight_boundaries(app, dataset, session, first, last, expected):
    report = reports.collaboration(session, first=dt.date(*first), last=dt.date(*last))
    assert {k: report[k] for k in expected} == expected
    assert_breakdowns_add_up(report)


def test_every_month_of_the_period_is_listed_and_channels_are_always_present(app, session):
    report = reports.collaboration(session, first=dt.date(2025, 11, 20), last=dt.date(2026, 2, 3))
    assert [m["month"] for m in report["by_month"]] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert all({k: v for k, v in m.items() if k != "month"} == ZERO for m in report["by_month"])
    assert report["by_channel"] == {"hall": ZERO, "kiosk": ZERO, "group": ZERO}
    assert report["by_supplier"] == [] and report["by_origin"] == []


def test_the_paired_county_is_a_setting(app, dataset, session):
    session.add(Setting(key="paired_county_code", value="520527"))
    session.flush()
    report = reports.collaboration(session, first=Q1[0], last=Q1[1])
    assert report["songtao_fen"] == 42208  # now the honey from 印江 is the paired county's
    assert report["by_channel"]["hall"]["songtao_fen"] == 11216 + 5800 + 5800 - 5608


def test_daily_summary(app, dataset, session):
    day = report_monthly.daily_summary(session, day=dt.date(2026, 2, 20))
    assert day["day"] == "2026-02-20"
    assert day["total_fen"] == 175000 and day["certified_fen"] == 150000 and day["sales"] == 1
    assert day["by_channel"]["group"]["total_fen"] == 175000
    assert day["by_channel"]["hall"] == ZERO and day["certified_percent"] == "85.7"


@pytest.mark.parametrize("first, last, field_name", [
    ("2026-13-01", "2026-12-31", "from"), ("2026-01-01", "31/12/2026", "to"), ("", "2026-01-01", "from"),
    ("2026-02-01", "2026-01-31", "from"), ("2020-01-01", "2026-01-01", "to"), (None, "2026-01-01", "from"),
])
def test_a_bad_period_is_refused_with_the_field(first, last, field_name):
    with pytest.raises(ReportError) as caught:
        reports.parse_period(first, last)
    assert caught.value.field == field_name


@pytest.mark.parametrize("text", ["2026-13", "2026-1", "26-01", "", None, "2026-01-01", "abcd-ef"])
def test_a_bad_month_is_refused(text):
    with pytest.raises(ReportError):
        reports.parse_month(text)


def test_percentages_are_integer_arithmetic():
    assert reports.percent(1, 3) == "33.3" and reports.percent(2, 3) == "66.7"
    assert reports.percent(1, 8) == "12.5" and reports.percent(-1, 8) == "-12.5"
    assert reports.percent(5, 0) is None and reports.percent(0, 7) == "0.0"
    assert reports.change_percent(110, 100) == "10.0" and reports.change_percent(90, 100) == "-10.0"
    assert reports.change_percent(5, 0) is None


# --- the lines behind a figure -----------------------------------------------------------------------

def lines_sum(session, **filters) -> int:
    return sum(d["amount_fen"] for d in report_drilldown.iter_collaboration_lines(session, first=Q1[0], last=Q1[1], **filters))


def test_every_figure_is_the_sum_of_its_lines(app, dataset, session):
    report = reports.collaboration(session, first=Q1[0], last=Q1[1])
    assert lines_sum(session) == report["total_fen"]
    assert lines_sum(session, certified=True) == report["certified_fen"]
    assert lines_sum(session, certified=False) == report["uncertified_fen"]
    assert lines_sum(session, songtao=True) == report["songtao_fen"]
    for channel, row in report["by_channel"].items():
        assert lines_sum(session, channel=channel) == row["total_fen"]
        assert lines_sum(session, channel=channel, certified=True) == row["certified_fen"]
    for buyer, row in report["by_buyer_type"].items():
        assert lines_sum(session, channel="group", buyer_type=buyer) == row["total_fen"]
    for row in report["by_month"]:
        assert lines_sum(session, month=row["month"]) == row["total_fen"]
    for row in report["by_supplier"]:
        sid = "none" if row["supplier_id"] is None else row["supplier_id"]
        assert lines_sum(session, supplier_id=sid) == row["total_fen"]
    for row in report["by_origin"]:
        assert lines_sum(session, county_code=row["county_code"] or "", township=row["township"] or "") \
            == row["total_fen"]


def test_the_lines_carry_what_finds_them_again(app, dataset, session):
    page = report_drilldown.collaboration_lines(session, first=dt.date(2026, 2, 1), last=dt.date(2026, 2, 28), per_page=3)
    assert page.total == 6 and page.pages == 2  # C: 2 lines, R1, D, E: 2 lines
    everything = page.items + report_drilldown.collaboration_lines(session, first=dt.date(2026, 2, 1),
                                                          last=dt.date(2026, 2, 28), per_page=3, page=2).items
    by_doc = {(d["doc_no"], d["sku"]): d for d in everything}
    r1 = by_doc[(dataset.refunds["R1"], "HONEY")]
    assert r1["kind"] == "refund" and r1["receipt_no"] == dataset.receipts["A"]
    assert (r1["amount_fen"], r1["qty_milli"], r1["certified"], r1["certificate_no"]) == (-5608, -1000, True, "C2")
    assert r1["local_date"] == "2026-02-03" and r1["channel"] == "hall" and r1["location"] == "H1"
    d = by_doc[(dataset.receipts["D"], "TEA")]
    assert (d["location"], d["channel"], d["amount_fen"], d["supplier_name"], d["at_local"]) == \
        ("K001", "kiosk", 16000, "松桃茶业", "2026-02-10 12:00")
    e = by_doc[(dataset.receipts["E"], "HONEY")]
    assert (e["buyer_type"], e["location"], e["certified"], e["certificate_no"], e["county"], e["township"]) == \
        ("union", "物流基地", False, None, "印江土家族苗族自治县", "木黄镇")
    c = by_doc[(dataset.receipts["C"], "SACHET")]
    assert c["at_local"] == "2026-02-01 00:01" and c["supplier_name"] is None
    assert [d["local_date"] for d in everything] == sorted(d["local_date"] for d in everything)


def test_voided_sales_are_never_among_the_lines(app, dataset, session):
    docs = {d["receipt_no"] for d in report_drilldown.iter_collaboration_lines(session, first=Q1[0], last=Q1[1])}
    assert dataset.receipts["J"] not in docs
    assert dataset.receipts["H"] not in docs and dataset.receipts["I"] in docs  # I only through R4


def test_a_bad_filter_is_refused(app, session):
    with pytest.raises(ReportError):
        report_drilldown.collaboration_lines(session, first=Q1[0], last=Q1[1], channel="online")
    with pytest.raises(ReportError):
        report_drilldown.collaboration_lines(session, first=Q1[0], last=Q1[1], month="2026-13")


# --- the monthly summary ----------------------------------------------------------------------------

def test_february_summary(app, dataset, session):
    m = report_monthly.monthly_summary(session, month="2026-02")
    assert (m["month"], m["from"], m["to"], m["currency"]) == ("2026-02", "2026-02-01", "2026-02-28", "CNY")
    assert {k: m[k] for k in FEBRUARY} == FEBRUARY
    assert m["certified_percent"] == "82.0"  # 160392 / 195692 = 81.96 %
    assert m["by_channel"]["kiosk"]["total_fen"] == 16000

    days = {d["date"]: d for d in m["by_day"]}
    assert len(days) == 28 and sum(d["total_fen"] for d in m["by_day"]) == 195692
    assert days["2026-02-01"] == {"date": "2026-02-01", "total_fen": 10300, "certified_fen": 0, "sales": 1,
                                  "refunds_fen": 0}
    assert days["2026-02-03"] == {"date": "2026-02-03", "total_fen": -5608, "certified_fen": -5608, "sales": 0,
                                  "refunds_fen": 5608}
    assert days["2026-02-20"]["total_fen"] == 175000 and days["2026-02-28"]["total_fen"] == 0

    assert [(p["method"], p["sales_fen"], p["refunds_fen"], p["net_fen"]) for p in m["by_payment"]] == [
        ("cash", 0, 5608, -5608), ("wechat", 16000, 0, 16000), ("alipay", 10300, 0, 10300),
        ("bank_transfer", 175000, 0, 175000)]
    assert m["by_payment"][0]["label"] == "现金"

    assert [(c["category"], c["total_fen"], c["certified_fen"], c["piece_qty_milli"], c["kg_qty_milli"])
            for c in m["by_category"]] == [
        ("茶叶", 166000, 166000, 11000, 0), ("蜂蜜", 25192, -5608, 5000, 0), (None, 4500, 0, 1000, 0)]
    assert [(p["sku"], p["total_fen"]) for p in m["top_products"]] == [("TEA", 166000), ("HONEY", 25192),
                                                                      ("SACHET", 4500)]
    assert [p["sku"] for p in m["bottom_products"]] == ["SACHET", "HONEY", "TEA"]

    assert m["by_till"] == [{"till_id": dataset.ids["till"], "till": "H1", "sales": 1, "sales_fen": 10300,
                             "refunds_fen": 5608, "total_fen": 4692, "shifts": 1, "difference_fen": -100}]
    assert m["by_cashier"] == [{"cashier_id": dataset.ids["cashier"], "cashier": "龙燕", "sales": 1,
                                "sales_fen": 10300, "refunds_fen": 5608, "total_fen": 4692, "shifts": 1,
                                "difference_fen": -100}]
    assert [(sh["till"], sh["cashier"], sh["expected_cash_fen"], sh["counted_cash_fen"], sh["difference_fen"],
             sh["opened_at_local"]) for sh in m["shifts"]] == [("H1", "龙燕", 73772, 73672, -100, "2026-02-01 08:00")]

    [k] = m["by_kiosk"]
    assert (k["rank"], k["code"], k["sales"], k["total_fen"], k["refill_moves"], k["refill_visits"]) == \
        (1, "K001", 1, 16000, 2, 1)
    assert k["fill_percent"] is None  # no planogram

    # cost known: TEA of D (10000) and E (10 × 10000); HONEY and SACHET have none
    assert m["margin"] == {"sales_fen": 166000, "cost_fen": 110000, "margin_fen": 56000, "margin_percent": "33.7",
                           "covered_percent": "84.8"}
    assert m["previous_month"] == {"month": "2026-01", "total_fen": 18380, "certified_fen": 33258, "sales": 2,
                                   "total_change_percent": "964.7", "certified_change_percent": "382.3",
                                   "sales_change_percent": "50.0"}
    assert m["last_year"] == {"month": "2025-02", "total_fen": 0, "certified_fen": 0, "sales": 0,
                              "total_change_percent": None, "certified_change_percent": None,
                              "sales_change_percent": None}


def test_margin_nets_refunds_with_their_share_of_cost(app, dataset, session):
    march = report_monthly.monthly_summary(session, month="2026-03")["margin"]
    # F: 35000 net, 25000 cost; R2 takes back 30000 and 2/10 of E's tea cost 100000 = 20000
    assert march == {"sales_fen": 5000, "cost_fen": 5000, "margin_fen": 0, "margin_percent": "0.0",
                     "covered_percent": "23.8"}
    january = report_monthly.monthly_summary(session, month="2026-01")["margin"]
    # A: TEA 16242 / 10000, PORK 1922 / 1308; R4 takes back I's TEA 16800 / 10000
    assert january["sales_fen"] == 1364 and january["cost_fen"] == 1308 and january["margin_fen"] == 56


def test_the_cost_snapshot_is_kept_on_the_line(app, dataset, session):
    from pos.sales.reading import get_sale

    sale = get_sale(session, dataset.receipts["A"])
    costs = {ln.product_id: ln.cost_fen for ln in sale.lines}
    assert costs == {dataset.ids["tea"]: 10000, dataset.ids["honey"]: None, dataset.ids["pork"]: 1308}
    session.get(Product, dataset.ids["tea"]).cost_fen = 99999  # a later cost change rewrites nothing
    session.flush()
    assert report_monthly.monthly_summary(session, month="2026-02")["margin"]["cost_fen"] == 110000


# --- CSV, XLSX and JSON carry the same numbers -----------------------------------------------------


def figure_rows(rows: list[dict]) -> list[list[int]]:
    return [[r["total_fen"], r["certified_fen"], r["uncertified_fen"], r["songtao_fen"], r["sales"], r["refunds_fen"]]
            for r in rows]


def expected_tables(report: dict) -> dict[str, list[list[int]]]:
    return {
        "汇总": figure_rows([report]),
        "按渠道": figure_rows(list(report["by_channel"].values())),
        "按团购类型": figure_rows(list(report["by_buyer_type"].values())),
        "按月份": figure_rows(report["by_month"]),
        "按供应商": figure_rows(report["by_supplier"]),
        "按产地": figure_rows(report["by_origin"]),
    }


def test_csv_and_xlsx_carry_the_json_numbers(app, dataset, session):
    report = reports.collaboration(session, first=Q1[0], last=Q1[1])
    expected = expected_tables(report)

    tables = csv_tables(report_exports.collaboration_csv(report))
    assert list(tables) == list(expected)
    for title, rows in tables.items():
        header, body = rows[0], rows[1:]
        assert header[-6:] == ["合计（元）", "认定扶贫产品（元）", "非认定（元）", "松桃产品（元）", "销售笔数", "退款（元）"]
        got = [[fen_of(r[-6]), fen_of(r[-5]), fen_of(r[-4]), fen_of(r[-3]), int(r[-2]), fen_of(r[-1])] for r in body]
        assert got == expected[title], title
    assert tables["按月份"][1][0] == "2026-01" and tables["按渠道"][1][0] == "专馆"

    book = load_workbook(io.BytesIO(report_exports.collaboration_xlsx(report)))
    assert book.sheetnames == list(expected)
    for title in expected:
        rows = list(book[title].iter_rows(values_only=True))
        got = []
        for r in rows[1:]:
            amounts = [r[-6], r[-5], r[-4], r[-3], r[-1]]
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in amounts), (title, r)
            assert isinstance(r[-2], int)
            # openpyxl reads numbers back as float; two decimals in yuan → exact fen via Decimal(str())
            fen = [int(Decimal(str(v)) * 100) for v in amounts]
            got.append([*fen[:4], r[-2], fen[4]])
        assert got == expected[title], title
    cell = book["按渠道"]["B2"]
    assert cell.number_format == "#,##0.00"


def test_lines_export_and_formula_injection_guard(app, dataset, session):
    evil = Supplier(name="=HYPERLINK(\"http://x\",\"点我\")", origin_county="@SUM(1)", origin_county_code="520628")
    session.add(evil)
    session.flush()
    product = Product(sku="EVIL", name="+1+2 茶", price_fen=100, supplier_id=evil.id)
    session.add(product)
    session.flush()
    record_sale(session, SaleIn(channel="group", location_id=dataset.ids["base"], buyer_type="other",
                                receipt_prefix="G", sold_at=local(2026, 3, 20), lines=[LineIn(product.id, 1000)],
                                payments=[PaymentIn("bank_transfer", 100)]))
    session.flush()
    report = reports.collaboration(session, first=Q1[0], last=Q1[1])
    assert report["by_buyer_type"]["other"]["total_fen"] == 100

    text = report_exports.collaboration_csv(report)
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    book = load_workbook(io.BytesIO(report_exports.collaboration_xlsx(report)))
    names = [r[0] for r in book["按供应商"].iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"http://x\",\"点我\")" in names
    counties = [r[1] for r in book["按产地"].iter_rows(min_row=2, values_only=True)]
    assert "'@SUM(1)" in counties
    negative = [r for r in book["按月份"].iter_rows(min_row=2, values_only=True) if r[0] == "2026-03"][0]
    assert negative[2] == -300.0  # a negative amount stays a number, not guarded text

    lines = list(report_drilldown.iter_collaboration_lines(session, first=Q1[0], last=Q1[1]))
    rows = list(csv.reader(io.StringIO(report_exports.lines_csv(lines))))
    assert rows[0][:3] == ["类型", "单号", "原小票号"] and len(rows) == len(lines) + 1
    assert sum(fen_of(r[-1]) for r in rows[1:]) == report["total_fen"]
    assert any(r[8] == "'+1+2 茶" for r in rows[1:])
    sheet = load_workbook(io.BytesIO(report_exports.lines_xlsx(iter(lines))))["明细"]
    values = list(sheet.iter_rows(min_row=2, values_only=True))
    assert sum(int(Decimal(str(r[-1])) * 100) for r in values) == report["total_fen"]
    refund_row = next(r for r in values if r[1] == dataset.refunds["R1"])
    assert refund_row[0] == "退货" and refund_row[-2] == -1 and refund_row[-1] == -56.08


def test_monthly_csv_and_xlsx(app, dataset, session):
    m = report_monthly.monthly_summary(session, month="2026-02")
    tables = csv_tables(report_exports.monthly_csv(m))
    assert list(tables) == ["汇总", "按渠道", "按日", "按支付方式", "对账", "按品类", "畅销商品", "滞销商品", "按收银台",
                            "按收银员", "班次", "按专柜", "毛利", "对比"]
    assert fen_of(tables["汇总"][1][1]) == 195692 and tables["汇总"][1][-1] == "82.0"
    assert sum(fen_of(r[1]) for r in tables["按日"][1:]) == 195692 and len(tables["按日"]) == 29
    assert [fen_of(r[3]) for r in tables["按支付方式"][1:]] == [-5608, 16000, 10300, 175000]
    assert tables["班次"][1][-1] == "-1.00"
    book = load_workbook(io.BytesIO(report_exports.monthly_xlsx(m)))
    assert book.sheetnames == list(tables)
    days = list(book["按日"].iter_rows(min_row=2, values_only=True))
    assert sum(int(Decimal(str(r[1])) * 100) for r in days) == 195692
    assert [r[4] for r in book["按专柜"].iter_rows(min_row=2, values_only=True)] == [1]


# --- issue 18 point 18 (b), (c): quantities per unit, percentages as numbers -----------------------

def test_point18b_monthly_quantity_by_category_is_never_summed_across_units(app, dataset, session):
    from inventory.models import Category, Product

    tea_category = session.scalar(select(Category.id).where(Category.name == "茶叶"))
    session.get(Product, dataset.ids["pork"]).category_id = tea_category  # 10 kg of pork among the teas
    session.commit()
    m = report_monthly.monthly_summary(session, month="2026-03")
    [tea] = [c for c in m["by_category"] if c["category"] == "茶叶"]
    # March: PORK 10 kg sold (F), TEA 2 pieces refunded (R2): never "8 units"
    assert (tea["piece_qty_milli"], tea["kg_qty_milli"], tea["total_fen"]) == (-2000, 10000, 35000 - 30000)
    assert "qty_milli" not in tea
    [header, *rows] = csv_tables(report_exports.monthly_csv(m))["按品类"]
    assert header[:3] == ["品类", "数量（件）", "重量（千克）"]
    assert [r[:3] for r in rows if r[0] == "茶叶"] == [["茶叶", "-2.000", "10.000"]]
    book = load_workbook(io.BytesIO(report_exports.monthly_xlsx(m)))
    xlsx_rows = list(book["按品类"].iter_rows(min_row=1, values_only=True))
    assert xlsx_rows[0][:3] == ("品类", "数量（件）", "重量（千克）")
    assert [r[1:3] for r in xlsx_rows if r[0] == "茶叶"] == [(-2, 10)]


def test_point18b_monthly_page_shows_quantities_per_unit(app, dataset, session, client, auth, make_user):
    from inventory.models import Category, Product

    tea_category = session.scalar(select(Category.id).where(Category.name == "茶叶"))
    session.get(Product, dataset.ids["pork"]).category_id = tea_category
    session.commit()
    session.close()
    make_user("auditor1", "auditor")
    auth.login("auditor1")
    html = client.get("/reports/monthly?month=2026-03").get_data(as_text=True)
    row = re.search(rf'<tr data-category="{tea_category}">(.*?)</tr>', html, re.S).group(1)
    assert 'data-piece-qty="-2000">-2<' in row and 'data-kg-qty="10000">10.000<' in row
    assert "数量（件）" in html and "重量（千克）" in html
    api = client.get("/api/v1/reports/monthly?month=2026-03")  # the JSON API says the same
    assert api.status_code == 200
    [tea] = [c for c in api.get_json()["by_category"] if c["category"] == "茶叶"]
    assert (tea["piece_qty_milli"], tea["kg_qty_milli"]) == (-2000, 10000) and "qty_milli" not in tea


def test_point18c_xlsx_percentages_are_numbers_with_a_percent_format(app, dataset, session):
    m = report_monthly.monthly_summary(session, month="2026-02")
    assert m["certified_percent"] == "82.0"
    book = load_workbook(io.BytesIO(report_exports.monthly_xlsx(m)))
    percent_cells = []
    for sheet in book.worksheets:
        header = [c.value for c in next(sheet.iter_rows(min_row=1, max_row=1))]
        for row in sheet.iter_rows(min_row=2):
            for title, cell in zip(header, row):
                if isinstance(cell.value, str):
                    assert not re.fullmatch(r"-?\d+(\.\d+)?%?", cell.value), (sheet.title, title, cell.value)
                if "%" in str(title) and cell.value is not None:
                    assert isinstance(cell.value, (int, float)), (sheet.title, title, cell.value)
                    assert cell.number_format.endswith("%"), (sheet.title, title, cell.number_format)
                    percent_cells.append((sheet.title, title, cell.value))
    summary = {(s, t): v for s, t, v in percent_cells}
    assert summary[("汇总", "认定占比（%）")] == pytest.approx(0.82)
    assert summary[("对比", "净额变化（%）")] == pytest.approx(9.647)  # +964.7 % on January
    assert summary[("毛利", "毛利率（%）")] == pytest.approx(0.337)
    assert book["汇总"]["H2"].number_format == "0.0%"
    # CSV keeps the figure as text under the % header, negative changes included, never as a formula guard
    tables = csv_tables(report_exports.monthly_csv(m))
    assert tables["汇总"][1][-1] == "82.0"
    assert all(not v.startswith("'") for row in tables["对比"][1:] for v in row[-3:])
