"""The reports as JSON under /api/v1/reports: the consumption-collaboration statistics for a
period and the monthly sales summary. Thin handlers: parse the query string, call
pos.reports.figures (collaboration) or pos.reports.monthly, answer its dict. A bad or missing
date, from after to, a span over five years or a bad month is 422 JSON ``{"error", "field"}``;
nothing here writes.

Session-authenticated, area "reports" (auditors, managers, admins)."""
from __future__ import annotations

from typing import Optional

from flask import Blueprint, jsonify
from pydantic import ConfigDict, Field

from pos.reports import figures as reports
from pos.reports import monthly as report_monthly
from inventory.web import read_only
from pos.core.db import get_session
from pos.core.openapi import QueryModel, ResponseModel, operation, query_args, register_error_handlers
from pos.core.web import requires

bp = Blueprint("reports_api", __name__, url_prefix="/api/v1/reports")
register_error_handlers(bp)

# --- query models -----------------------------------------------------------------------------------

class PeriodQuery(QueryModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    from_: str = Field(alias="from", min_length=1, max_length=10, description="First local date YYYY-MM-DD (inclusive)")
    to: str = Field(min_length=1, max_length=10, description="Last local date YYYY-MM-DD (inclusive); at most five "
                                                             "years after from")


class MonthQuery(QueryModel):
    month: str = Field(min_length=1, max_length=7, description="A local calendar month YYYY-MM")


# --- response models --------------------------------------------------------------------------------

class FiguresOut(ResponseModel):
    total_fen: int = Field(description="Sales − refunds of the period (net of discounts and 抹零)")
    certified_fen: int = Field(description="The part of total_fen on lines certified poverty-alleviation produce")
    uncertified_fen: int = Field(description="total_fen − certified_fen")
    songtao_fen: int = Field(description="The part of total_fen whose origin county is the paired county")
    sales: int = Field(description="Completed sales in the period (in a supplier's or origin's row: sales "
                                   "with at least one of its lines)")
    refunds_fen: int = Field(description="Refunds made in the period (already netted in total_fen)")


class ChannelsOut(ResponseModel):
    hall: FiguresOut
    kiosk: FiguresOut
    group: FiguresOut


class BuyerTypesOut(ResponseModel):
    union: FiguresOut
    enterprise: FiguresOut
    canteen: FiguresOut
    other: FiguresOut


class MonthFiguresOut(FiguresOut):
    month: str = Field(description="YYYY-MM")


class SupplierFiguresOut(FiguresOut):
    supplier_id: Optional[int]
    supplier_name: Optional[str]


class OriginFiguresOut(FiguresOut):
    county_code: Optional[str] = Field(description="The county's administrative code (6 digits)")
    county: Optional[str]
    township: Optional[str]


class CollaborationOut(FiguresOut):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str = Field(alias="from", description="YYYY-MM-DD")
    to: str = Field(description="YYYY-MM-DD")
    currency: str = Field(description="Always CNY; amounts are integer fen")
    by_channel: ChannelsOut
    by_buyer_type: BuyerTypesOut = Field(description="Group purchases by buyer type (they add up to by_channel.group)")
    by_month: list[MonthFiguresOut] = Field(description="Every month of the period, zero-filled")
    by_supplier: list[SupplierFiguresOut]
    by_origin: list[OriginFiguresOut] = Field(description="By origin county and township")


class DayOut(ResponseModel):
    date: str
    total_fen: int
    certified_fen: int
    sales: int
    refunds_fen: int


class PaymentOut(ResponseModel):
    method: str
    label: str
    sales_fen: int
    refunds_fen: int
    net_fen: int


class ReconcileOut(ResponseModel):
    method: str = Field(description="wechat or alipay")
    label: str
    reconciled_fen: int = Field(description="已对账: the month's payments on days whose bill was imported and "
                                            "checked without an unexplained difference")
    unreconciled_fen: int = Field(description="未对账: the month's other payments with this method")


class CategoryOut(ResponseModel):
    category_id: Optional[int]
    category: Optional[str]
    total_fen: int
    certified_fen: int
    piece_qty_milli: int = Field(description="Quantity of the category's products sold by the piece, in thousandths")
    kg_qty_milli: int = Field(description="Quantity of the category's products sold by the kilogram, in grams "
                                          "(never added to pieces)")


class ProductOut(ResponseModel):
    product_id: int
    sku: str
    name: str
    qty_milli: int
    total_fen: int
    certified_fen: int


class PeopleOut(ResponseModel):
    sales: int
    sales_fen: int
    refunds_fen: int
    total_fen: int
    shifts: int
    difference_fen: int = Field(description="Σ counted − expected cash of the closed shifts (negative: short)")


class TillOut(PeopleOut):
    till_id: Optional[int]
    till: Optional[str]


class CashierOut(PeopleOut):
    cashier_id: Optional[int]
    cashier: Optional[str]


class ShiftOut(ResponseModel):
    shift_id: int
    till_id: int
    till: str
    cashier_id: int
    cashier: str
    status: str
    opened_at_local: str
    closed_at_local: str
    expected_cash_fen: Optional[int]
    counted_cash_fen: Optional[int]
    difference_fen: Optional[int]


class KioskOut(ResponseModel):
    rank: int
    kiosk_id: int
    code: str
    site_name: str
    town: str
    sales: int
    sales_fen: int
    refunds_fen: int
    total_fen: int
    refill_moves: int
    refill_visits: int
    fill_percent: Optional[int] = Field(description="Today's fill level of the counter's slots, whole percent")


class MarginOut(ResponseModel):
    sales_fen: int = Field(description="Net amount of lines whose cost was known at sale time (refunds netted)")
    cost_fen: int
    margin_fen: int
    margin_percent: Optional[str] = Field(description="One decimal, e.g. \"23.5\"")
    covered_percent: Optional[str] = Field(description="sales_fen as a share of total_fen")


class CompareOut(ResponseModel):
    month: str
    total_fen: int
    certified_fen: int
    sales: int
    total_change_percent: Optional[str]
    certified_change_percent: Optional[str]
    sales_change_percent: Optional[str]


class MonthlyOut(FiguresOut):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    month: str
    from_: str = Field(alias="from")
    to: str
    currency: str
    certified_percent: Optional[str]
    by_channel: ChannelsOut
    by_day: list[DayOut] = Field(description="Every day of the month, zero-filled")
    by_payment: list[PaymentOut]
    by_reconcile: list[ReconcileOut] = Field(description="The bill check (对账) per provider")
    by_category: list[CategoryOut] = Field(description="By the product's current category")
    top_products: list[ProductOut]
    bottom_products: list[ProductOut]
    by_till: list[TillOut]
    by_cashier: list[CashierOut]
    shifts: list[ShiftOut] = Field(description="Shifts opened in the month")
    by_kiosk: list[KioskOut] = Field(description="Every counter, ranked by takings")
    margin: MarginOut
    previous_month: CompareOut
    last_year: CompareOut


# --- endpoints ----------------------------------------------------------------------------------------

@bp.get("/collaboration")
@read_only
@requires("reports")
@operation("Consumption-collaboration statistics for a period of local dates", query=PeriodQuery,
           responses={200: CollaborationOut}, errors=(401, 403, 422), tags=("reports",),
           description="Every figure is a sum of sale lines' net amounts (after discounts and 抹零) of completed "
                       "sales whose local date is in the period, minus the refunds made in the period (with the "
                       "original line's certified flag, supplier, origin and channel).")
def collaboration():
    args = query_args(PeriodQuery)
    first, last = reports.parse_period(args.from_, args.to)
    return jsonify(reports.collaboration(get_session(), first=first, last=last))


@bp.get("/monthly")
@read_only
@requires("reports")
@operation("The monthly sales summary", query=MonthQuery, responses={200: MonthlyOut}, errors=(401, 403, 422),
           tags=("reports",))
def monthly():
    args = query_args(MonthQuery)
    return jsonify(report_monthly.monthly_summary(get_session(), month=args.month))
