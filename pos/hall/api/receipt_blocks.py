"""The till's reserved receipt numbers (issue 14, point 4): reserve a block while online, so that
a receipt printed offline carries its final number, and list the unused ones again (a till that lost
its browser storage). The rules are pos.sales.receipt_blocks'; a sale uses a number by sending it as
``receipt_no`` (POST /sales)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from flask import jsonify
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import Field, StringConstraints

from pos.core.db import get_session
from pos.core.openapi import ApiError, Code, QueryModel, RequestModel, ResponseModel, Whole, json_body, operation, \
    query_args
from pos.core.web import requires
from pos.hall.api.base import bp, created_response, find_till
from pos.sales import receipt_blocks

LocalDay = Annotated[str, StringConstraints(min_length=10, max_length=10, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
                     Field(description="A local date (Asia/Shanghai), YYYY-MM-DD: today or tomorrow",
                           json_schema_extra={"format": "date"})]
BlockCount = Whole(ge=1, le=receipt_blocks.MAX_BLOCK, description="How many consecutive numbers")


class ReceiptBlockIn(RequestModel):
    till: Code = Field(description="The till's code, e.g. H1")
    day: LocalDay
    count: BlockCount = receipt_blocks.DEFAULT_BLOCK  # type: ignore[valid-type]


class ReceiptBlockOut(ResponseModel):
    till: str
    day: str = Field(description="YYYY-MM-DD")
    numbers: list[str] = Field(description="The reserved receipt numbers, in order, e.g. H1-20261205-0101")


class ReceiptBlocksQuery(QueryModel):
    till: Code = Field(description="The till's code, e.g. H1")


class DayNumbersOut(ResponseModel):
    day: str = Field(description="YYYY-MM-DD")
    numbers: list[str] = Field(description="Reserved and not yet used by a recorded sale, in order")


class ReceiptBlocksOut(ResponseModel):
    till: str
    blocks: list[DayNumbersOut] = Field(description="By day, today and later; days with none left are left out")


@bp.post("/receipt-blocks")
@requires("till")
@operation("Reserve a block of receipt numbers for a till and a local day (today or tomorrow), for receipts "
           "printed offline", body=ReceiptBlockIn, responses={201: ReceiptBlockOut}, errors=(422,),
           tags=("sales",),
           description="The numbers come from the counter that numbers the server's own receipts, so they never "
                       "collide across tills or with sales the server numbers. A till holds at most "
                       f"{receipt_blocks.MAX_UNUSED_PER_DAY} unused reserved numbers per day (422 beyond).")
def reserve_receipt_block():
    body = json_body(ReceiptBlockIn)
    try:
        day = dt.date.fromisoformat(body.day)
    except ValueError:
        raise ApiError(422, _("日期格式应为 YYYY-MM-DD：%(text)s", text=body.day), "day") from None
    till = find_till(body.till)
    numbers = receipt_blocks.reserve_block(get_session(), till, day, body.count, current_user.id)
    return created_response({"till": till.code, "day": day.isoformat(), "numbers": numbers})


@bp.get("/receipt-blocks")
@requires("till")
@operation("A till's reserved receipt numbers not yet used by a recorded sale, by day, today and later",
           query=ReceiptBlocksQuery, responses={200: ReceiptBlocksOut}, errors=(422,), tags=("sales",))
def list_receipt_blocks():
    args = query_args(ReceiptBlocksQuery)
    till = find_till(args.till)
    found = receipt_blocks.unused_by_day(get_session(), till)
    return jsonify({"till": till.code, "blocks": [{"day": day.isoformat(), "numbers": numbers}
                                                  for day, numbers in found]})
