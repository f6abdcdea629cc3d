"""The reports over HTTP (/api/v1/reports/…) and on the command line (songtao report …): the same
numbers for the same period, the shapes documented in the OpenAPI document, bad input refused
with 422 JSON / one line on stderr and exit 2, never a traceback."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from pos.cli import main
from pos.reports.api import CollaborationOut, MonthlyOut
from tests.fixtures.reports import build_dataset, csv_tables, expected_q1, fen_of

API = "/api/v1/reports"


@pytest.fixture
def dataset(app):
    return build_dataset(app)


@pytest.fixture
def auditor(client, auth, make_user):
    make_user("audit", "auditor")
    auth.login("audit")
    return client


@pytest.fixture
def cli(database_url):
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, ["report", *args], env={"DATABASE_URL": database_url})

    return run


def test_the_api_answers_the_issue_shape_to_the_fen(dataset, auditor):
    response = auditor.get(f"{API}/collaboration?from=2026-01-01&to=2026-03-31")
    assert response.status_code == 200 and response.is_json
    body = response.get_json()
    assert body == expected_q1(dataset)
    CollaborationOut.model_validate(body)  # the documented model describes it exactly (extra="forbid")


def test_the_cli_and_the_api_agree(dataset, auditor, cli):
    api = auditor.get(f"{API}/collaboration?from=2026-01-01&to=2026-03-31").get_json()
    result = cli("collaboration", "--from", "2026-01-01", "--to", "2026-03-31")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == api

    api_month = auditor.get(f"{API}/monthly?month=2026-02").get_json()
    result = cli("monthly", "--month", "2026-02", "--format", "json")
    assert result.exit_code == 0, result.output
    cli_month = json.loads(result.stdout)
    # the counters' fill level is "today"; everything else is the month's
    assert cli_month == api_month
    MonthlyOut.model_validate(api_month)
    assert api_month["total_fen"] == 195692 and api_month["margin"]["margin_fen"] == 56000


def test_cli_csv_and_xlsx_files(dataset, cli, tmp_path):
    target = tmp_path / "q1.csv"
    result = cli("collaboration", "--from", "2026-01-01", "--to", "2026-03-31", "--format", "csv", "--out",
                 str(target))
    assert result.exit_code == 0, result.output
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel opens it as UTF-8
    tables = csv_tables(raw.decode("utf-8-sig"))
    assert fen_of(tables["汇总"][1][1]) == 235072

    target = tmp_path / "q1.xlsx"
    result = cli("collaboration", "--from", "2026-01-01", "--to", "2026-03-31", "--format", "xlsx", "--out",
                 str(target))
    assert result.exit_code == 0, result.output
    book = load_workbook(target)
    assert book.sheetnames == ["汇总", "按渠道", "按团购类型", "按月份", "按供应商", "按产地"]
    assert book["汇总"]["B2"].value == 2350.72

    result = cli("monthly", "--month", "2026-02", "--format", "xlsx", "--out", str(tmp_path / "feb.xlsx"))
    assert result.exit_code == 0, result.output
    assert "按专柜" in load_workbook(tmp_path / "feb.xlsx").sheetnames
    result = cli("monthly", "--month", "2026-02", "--format", "csv")
    assert result.exit_code == 0 and "按支付方式" in result.stdout


@pytest.mark.parametrize("args", [
    ["collaboration", "--from", "2026-02-30", "--to", "2026-03-31"],
    ["collaboration", "--from", "2026-04-01", "--to", "2026-03-31"],
    ["collaboration", "--from", "2010-01-01", "--to", "2026-03-31"],
    ["collaboration", "--from", "yesterday", "--to", "2026-03-31"],
    ["monthly", "--month", "2026-13"],
    ["monthly", "--month", "February"],
])
def test_cli_bad_input_is_one_line_and_exit_2(app, cli, args):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:")
    assert "Traceback" not in result.output and result.stdout == ""


@pytest.mark.parametrize("query, field_name", [
    ("", "from"),
    ("from=2026-01-01", "to"),
    ("from=2026-02-30&to=2026-03-31", "from"),
    ("from=2026-04-01&to=2026-03-31", "from"),
    ("from=2010-01-01&to=2026-03-31", "to"),
    ("from=2026-01-01&to=20260331", "to"),
    ("from=2026-01-01%00&to=2026-03-31", "from"),
    ("from=" + "9" * 50 + "&to=2026-03-31", "from"),
])
def test_api_bad_period_is_422_json(app, auditor, query, field_name):
    response = auditor.get(f"{API}/collaboration?{query}")
    assert response.status_code == 422 and response.is_json
    body = response.get_json()
    assert body["error"] and body["field"] == field_name


@pytest.mark.parametrize("query", ["", "month=2026-13", "month=2026-2", "month=" + "x" * 100])
def test_api_bad_month_is_422_json(app, auditor, query):
    response = auditor.get(f"{API}/monthly?{query}")
    assert response.status_code == 422 and response.get_json()["field"] == "month"


def test_only_the_reports_roles_may_ask(app, client, auth, make_user):
    url = f"{API}/collaboration?from=2026-01-01&to=2026-01-31"
    assert client.get(url).status_code == 401
    make_user("cash", "cashier")
    auth.login("cash")
    response = client.get(url)
    assert response.status_code == 403 and response.is_json
    auth.logout()
    make_user("boss", "manager")
    auth.login("boss")
    assert client.get(url).status_code == 200


def test_the_endpoints_are_in_the_openapi_document(app, auditor):
    document = auditor.get("/api/v1/openapi.json").get_json()
    collab = document["paths"]["/api/v1/reports/collaboration"]["get"]
    assert [(p["name"], p["required"]) for p in collab["parameters"]] == [("from", True), ("to", True)]
    assert {"200", "401", "403", "422"} <= set(collab["responses"])
    schema = document["components"]["schemas"]["CollaborationOut"]
    assert {"from", "to", "currency", "total_fen", "by_channel", "by_buyer_type", "by_month", "by_supplier",
            "by_origin"} <= set(schema["required"])
    assert "/api/v1/reports/monthly" in document["paths"]


def test_an_empty_period_answers_zeros(app, auditor):
    body = auditor.get(f"{API}/collaboration?from=2026-01-01&to=2026-01-31").get_json()
    assert body["total_fen"] == 0 and body["by_channel"]["group"]["sales"] == 0
    assert [m["month"] for m in body["by_month"]] == ["2026-01"]
