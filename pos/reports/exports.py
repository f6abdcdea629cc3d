"""The reports' downloads: the collaboration statistics, the lines behind a figure and the monthly
summary as CSV and XLSX tables, written by ``inventory.spreadsheets``.
"""
from __future__ import annotations

from typing import Iterator


from inventory.spreadsheets import Fen, Qty, csv_table, csv_tables, pct, xlsx_tables
from pos.group.labels import buyer_type_label
from pos.reports.figures import CHANNEL_LABELS


# --- exports: CSV and XLSX -------------------------------------------------------------------------
# Written by inventory.spreadsheets, the one writer of every export: amounts in yuan (CSV as plain
# text "1234.56", XLSX as numbers with the format #,##0.00, so Excel adds them up), counts as
# integers, and a text cell that a spreadsheet would run as a formula (a supplier or product name
# is typed by people) written as text with a leading apostrophe.

_to_csv = csv_tables
_to_xlsx = xlsx_tables


FIGURE_HEADERS = ["合计（元）", "认定扶贫产品（元）", "非认定（元）", "松桃产品（元）", "销售笔数", "退款（元）"]


def _figures_row(d: dict) -> list:
    return [Fen(d["total_fen"]), Fen(d["certified_fen"]), Fen(d["uncertified_fen"]), Fen(d["songtao_fen"]),
            int(d["sales"]), Fen(d["refunds_fen"])]


def collaboration_tables(report: dict) -> list[tuple[str, list[str], list[list]]]:
    """The report as tables (title, header, rows): 汇总, 按渠道, 按团购类型, 按月份, 按供应商, 按产地."""
    period = f"{report['from']} ~ {report['to']}"
    return [
        ("汇总", ["期间", *FIGURE_HEADERS], [[period, *_figures_row(report)]]),
        ("按渠道", ["渠道", *FIGURE_HEADERS],
         [[str(CHANNEL_LABELS[k]), *_figures_row(v)] for k, v in report["by_channel"].items()]),
        ("按团购类型", ["团购类型", *FIGURE_HEADERS],
         [[buyer_type_label(k, in_statistics=True), *_figures_row(v)] for k, v in report["by_buyer_type"].items()]),
        ("按月份", ["月份", *FIGURE_HEADERS], [[r["month"], *_figures_row(r)] for r in report["by_month"]]),
        ("按供应商", ["供应商", *FIGURE_HEADERS],
         [[r["supplier_name"] or "（无供应商）", *_figures_row(r)] for r in report["by_supplier"]]),
        ("按产地", ["县级行政区划代码", "县", "乡镇", *FIGURE_HEADERS],
         [[r["county_code"] or "", r["county"] or "", r["township"] or "", *_figures_row(r)]
          for r in report["by_origin"]]),
    ]


def collaboration_csv(report: dict) -> str:
    """The report as CSV text: the six tables one after another (write it with a BOM for Excel)."""
    return _to_csv(collaboration_tables(report))


def collaboration_xlsx(report: dict) -> bytes:
    """The report as XLSX: one sheet per breakdown, amounts in yuan as numbers."""
    return _to_xlsx(collaboration_tables(report))


LINE_HEADERS = ["类型", "单号", "原小票号", "时间", "渠道", "团购类型", "位置", "商品编码", "商品", "供应商",
                "认定证书编号", "认定扶贫产品", "县", "乡镇", "数量", "净额（元）"]


def _line_row(d: dict) -> list:
    return ["退货" if d["kind"] == "refund" else "销售", d["doc_no"], d["receipt_no"], d["at_local"],
            str(CHANNEL_LABELS.get(d["channel"], d["channel"])),
            buyer_type_label(d["buyer_type"], in_statistics=True) if d["buyer_type"] else "", d["location"], d["sku"],
            d["product"], d["supplier_name"], d["certificate_no"], bool(d["certified"]), d["county"], d["township"],
            Qty(d["qty_milli"]), Fen(d["amount_fen"])]


def lines_csv(lines: Iterator[dict]) -> str:
    """Sale and refund lines (from iter_collaboration_lines) as CSV text."""
    return csv_table(LINE_HEADERS, (_line_row(d) for d in lines))


def lines_xlsx(lines: Iterator[dict]) -> bytes:
    """Sale and refund lines as XLSX (one sheet 明细, streamed by openpyxl's write-only mode)."""
    return _to_xlsx([("明细", LINE_HEADERS, (_line_row(d) for d in lines))])


def monthly_tables(summary: dict) -> list[tuple[str, list[str], list[list]]]:
    """The monthly summary as tables: 汇总, 按日, 按支付方式, 对账, 按品类, 畅销商品, 滞销商品, 按收银台,
    按收银员, 班次, 按专柜, 毛利, 对比."""
    product_header = ["商品编码", "商品", "数量", "净额（元）", "认定扶贫产品（元）"]
    people_header = ["销售笔数", "销售额（元）", "退款（元）", "净额（元）", "班次数", "长短款（元）"]

    def people(r):
        return [r["sales"], Fen(r["sales_fen"]), Fen(r["refunds_fen"]), Fen(r["total_fen"]), r["shifts"],
                Fen(r["difference_fen"])]

    def opt_fen(v):
        return "" if v is None else Fen(v)

    margin = summary["margin"]
    return [
        ("汇总", ["月份", *FIGURE_HEADERS, "认定占比（%）"],
         [[summary["month"], *_figures_row(summary), pct(summary["certified_percent"])]]),
        ("按渠道", ["渠道", *FIGURE_HEADERS],
         [[str(CHANNEL_LABELS[k]), *_figures_row(v)] for k, v in summary["by_channel"].items()]),
        ("按日", ["日期", "净额（元）", "认定扶贫产品（元）", "销售笔数", "退款（元）"],
         [[r["date"], Fen(r["total_fen"]), Fen(r["certified_fen"]), r["sales"], Fen(r["refunds_fen"])]
          for r in summary["by_day"]]),
        ("按支付方式", ["支付方式", "收款（元）", "退款（元）", "净额（元）"],
         [[r["label"], Fen(r["sales_fen"]), Fen(r["refunds_fen"]), Fen(r["net_fen"])] for r in summary["by_payment"]]),
        ("对账", ["支付方式", "已对账（元）", "未对账（元）"],
         [[r["label"], Fen(r["reconciled_fen"]), Fen(r["unreconciled_fen"])] for r in summary["by_reconcile"]]),
        ("按品类", ["品类", "数量（件）", "重量（千克）", "净额（元）", "认定扶贫产品（元）"],
         [[r["category"] or "（未分类）", Qty(r["piece_qty_milli"]), Qty(r["kg_qty_milli"]), Fen(r["total_fen"]),
           Fen(r["certified_fen"])] for r in summary["by_category"]]),
        ("畅销商品", product_header,
         [[r["sku"], r["name"], Qty(r["qty_milli"]), Fen(r["total_fen"]), Fen(r["certified_fen"])]
          for r in summary["top_products"]]),
        ("滞销商品", product_header,
         [[r["sku"], r["name"], Qty(r["qty_milli"]), Fen(r["total_fen"]), Fen(r["certified_fen"])]
          for r in summary["bottom_products"]]),
        ("按收银台", ["收银台", *people_header], [[r["till"] or "", *people(r)] for r in summary["by_till"]]),
        ("按收银员", ["收银员", *people_header], [[r["cashier"] or "", *people(r)] for r in summary["by_cashier"]]),
        ("班次", ["收银台", "收银员", "开班", "交班", "应有现金（元）", "实点现金（元）", "长短款（元）"],
         [[r["till"], r["cashier"], r["opened_at_local"], r["closed_at_local"], opt_fen(r["expected_cash_fen"]),
           opt_fen(r["counted_cash_fen"]), opt_fen(r["difference_fen"])] for r in summary["shifts"]]),
        ("按专柜", ["排名", "专柜", "点位", "镇街", "销售笔数", "销售额（元）", "退款（元）", "净额（元）",
                  "补货次数", "补货行数", "今日满柜率（%）"],
         [[r["rank"], r["code"], r["site_name"], r["town"], r["sales"], Fen(r["sales_fen"]), Fen(r["refunds_fen"]),
           Fen(r["total_fen"]), r["refill_visits"], r["refill_moves"],
           pct(None if r["fill_percent"] is None else str(int(r["fill_percent"])))] for r in summary["by_kiosk"]]),
        ("毛利", ["有成本的销售额（元）", "成本（元）", "毛利（元）", "毛利率（%）", "有成本的销售占比（%）"],
         [[Fen(margin["sales_fen"]), Fen(margin["cost_fen"]), Fen(margin["margin_fen"]),
           pct(margin["margin_percent"]), pct(margin["covered_percent"])]]),
        ("对比", ["对比", "月份", "净额（元）", "认定扶贫产品（元）", "销售笔数", "净额变化（%）", "认定变化（%）",
                "笔数变化（%）"],
         [[label, c["month"], Fen(c["total_fen"]), Fen(c["certified_fen"]), c["sales"],
           pct(c["total_change_percent"]), pct(c["certified_change_percent"]), pct(c["sales_change_percent"])]
          for label, c in (("上月", summary["previous_month"]), ("去年同月", summary["last_year"]))]),
    ]


def monthly_csv(summary: dict) -> str:
    return _to_csv(monthly_tables(summary))


def monthly_xlsx(summary: dict) -> bytes:
    return _to_xlsx(monthly_tables(summary))
