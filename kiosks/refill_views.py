"""The restocker's tablet pages under /counters: the route list, planning (choose counters by town
and urgency → preview → create), the printable pick list with the load-van button, a page per
counter to count, load and pull, and finishing the route. Thin: parse, call kiosks.refill_plans,
kiosks.refills or kiosks.refill_visits, render.

A refused action shows the page again with a Chinese message and status 400; the request's
session is rolled back, so nothing is written.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Optional

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from inventory.base import Base
from inventory.errors import InventoryError, NotFound
from inventory.localtime import local_today, utcnow
from kiosks import refill_plans, refill_visits, refills
from kiosks.models import PullReason, RefillStatus
from pos.core.db import get_session
from pos.core.web import requires

bp = Blueprint("refills", __name__, url_prefix="/counters")

DIGITS = re.compile(r"\d{1,7}")
CRITERIA = {
    "empty": _l("有空货道"),
    "fill": _l("填充率低"),
    "expiring": _l("有临期/过期商品"),
    "offline": _l("离线"),
}


@bp.context_processor
def _helpers():
    return {
        "route_status": lambda status: str(refills.STATUS_LABELS[RefillStatus(status)]),
        "pull_reasons": [(r.value, str(refills.PULL_REASON_LABELS[r])) for r in PullReason],
        "criteria_labels": CRITERIA,
        "reason_label": lambda reason: str(refills.PULL_REASON_LABELS[PullReason(reason)]) if reason else "",
    }


def _refuse(template: str, error: Any, **context):
    get_session().rollback()
    flash(str(error), "error")
    return render_template(template, **context), 400


def _route_or_404(route_id: int):
    try:
        return refills.get_route(get_session(), route_id)
    except NotFound:
        abort(404)


def _user_names(ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    users = Base.metadata.tables["users"]
    return dict(get_session().execute(select(users.c.id, users.c.display_name).where(users.c.id.in_(ids))).all())


# --- the route list -------------------------------------------------------------------------------

@bp.route("")
@requires("counters")
def index():
    s = get_session()
    today = local_today()
    routes = refills.list_routes(s, today=today, restocker_id=current_user.id)
    return render_template("kiosks/refill_routes.html", routes=routes, today=today,
                           summaries={r.id: refills.route_summary(r) for r in routes},
                           names=_user_names(r.restocker_id for r in routes))


# --- planning -------------------------------------------------------------------------------------

def _int_arg(name: str, default: Optional[int] = None, *, maximum: int = 1000) -> Optional[int]:
    value = (request.values.get(name) or "").strip()
    if DIGITS.fullmatch(value) and int(value) <= maximum:
        return int(value)
    return default


def _date_arg(name: str, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat((request.values.get(name) or "").strip())
    except ValueError:
        return default


def _plan_form() -> dict:
    today = local_today()
    return {
        "town": (request.values.get("town") or "").strip()[:30],
        "empty": request.values.get("empty") == "1",
        "fill_below": _int_arg("fill_below", maximum=100),
        "expiring": request.values.get("expiring") == "1",
        "offline": request.values.get("offline") == "1",
        "days": _int_arg("days", refill_plans.DEFAULT_EXPIRING_DAYS, maximum=refill_plans.MAX_EXPIRING_DAYS),
        "date": _date_arg("date", today),
        "van": _int_arg("van", maximum=2**31 - 1),
        "kiosks": [c.strip().upper()[:8] for c in request.values.getlist("kiosk") if c.strip()][:refill_plans.MAX_STOPS + 1],
    }


def _plan_context(form: dict, *, preview: Optional[dict] = None) -> dict:
    s = get_session()
    today = local_today()
    candidates = refill_plans.refill_candidates(
        s, today=today, now=utcnow(), town=form["town"] or None, empty_slots=form["empty"],
        fill_below_percent=form["fill_below"], expiring_within_days=form["days"] if form["expiring"] else None,
        offline=form["offline"])
    vans = refill_plans.vans(s)
    if form["van"] is None and vans:
        form["van"] = vans[0].id
    return {"form": form, "candidates": candidates, "towns": refill_plans.towns(s), "vans": vans,
            "preview": preview, "today": today}


@bp.route("/plan")
@requires("counters")
def plan():
    form = _plan_form()
    preview = None
    if request.args.get("preview") and form["kiosks"]:
        try:
            preview = refill_plans.plan_preview(get_session(), kiosk_codes=form["kiosks"], today=form["date"],
                                           expiring_within_days=form["days"])
        except InventoryError as error:
            return _refuse("kiosks/refill_plan.html", error, **_plan_context(form))
    elif request.args.get("preview"):
        flash(_("请至少选择一个专柜"), "error")
    return render_template("kiosks/refill_plan.html", **_plan_context(form, preview=preview))


@bp.route("/plan", methods=["POST"])
@requires("counters")
def plan_create():
    form = _plan_form()
    try:
        route = refill_plans.plan_route(get_session(), kiosk_codes=form["kiosks"], restocker_id=current_user.id,
                                   van_location_id=form["van"], today=form["date"],
                                   expiring_within_days=form["days"], actor_id=current_user.id)
    except InventoryError as error:
        return _refuse("kiosks/refill_plan.html", error, **_plan_context(form))
    flash(_("已创建补货路线 #%(id)s，请按拣货单拣货后装车", id=route.id), "success")
    return redirect(url_for("refills.route", route_id=route.id))


# --- a route --------------------------------------------------------------------------------------

def _route_context(route) -> dict:
    s = get_session()
    return {"route": route, "summary": refills.route_summary(route),
            "van": refills.van_contents(s, route.van_location_id) if route.status == RefillStatus.LOADED else [],
            "shortages": refills.route_shortages(s, route),
            "names": _user_names([route.restocker_id])}


@bp.route("/routes/<int:route_id>")
@requires("counters")
def route(route_id: int):
    return render_template("kiosks/refill_route.html", **_route_context(_route_or_404(route_id)))


@bp.route("/routes/<int:route_id>/picks")
@requires("counters")
def picks(route_id: int):
    route = _route_or_404(route_id)
    s = get_session()
    return render_template("kiosks/refill_picks.html", route=route, rows=refills.pick_list(s, route.id),
                           shortages=refills.route_shortages(s, route), summary=refills.route_summary(route),
                           names=_user_names([route.restocker_id, route.loaded_by_id]),
                           printed_at=utcnow())


def _action(route_id: int, action, done_message: str, *, template: str = "kiosks/refill_route.html"):
    route = _route_or_404(route_id)
    try:
        result = action(get_session(), route.id, actor_id=current_user.id)
    except InventoryError as error:
        get_session().rollback()
        route = _route_or_404(route_id)
        return _refuse(template, error, **_route_context(route))
    return result


@bp.route("/routes/<int:route_id>/load", methods=["POST"])
@requires("counters")
def load(route_id: int):
    result = _action(route_id, refills.load_van, "")
    if isinstance(result, tuple):
        return result
    flash(_("已装车：拣货单已冻结，库存已从物流基地转到补货车"), "success")
    return redirect(url_for("refills.route", route_id=route_id))


@bp.route("/routes/<int:route_id>/cancel", methods=["POST"])
@requires("counters")
def cancel(route_id: int):
    result = _action(route_id, refills.cancel_route, "")
    if isinstance(result, tuple):
        return result
    flash(_("路线已取消"), "success")
    return redirect(url_for("refills.index"))


@bp.route("/routes/<int:route_id>/finish", methods=["POST"])
@requires("counters")
def finish(route_id: int):
    result = _action(route_id, refills.finish_route, "")
    if isinstance(result, tuple):
        return result
    flash(_("路线已完成：补货车上剩余的 %(n)s 件商品已退回物流基地", n=result["returned_pieces"]), "success")
    return redirect(url_for("refills.route", route_id=route_id))


# --- a stop ---------------------------------------------------------------------------------------

def _pieces_field(name: str, *, blank: Any = 0) -> Any:
    """A count typed on the tablet, in pieces → qty_milli; what is not a whole number goes to the
    domain as typed, which refuses it with a message naming the slot."""
    text = (request.form.get(name) or "").strip()
    if not text:
        return blank
    if DIGITS.fullmatch(text):
        return int(text) * refills.PIECE
    return text[:20]


def _visit_from_form(sheet: dict) -> list[dict]:
    slots = []
    for row in sheet["slots"]:
        slot = row["slot"]
        pulled = []
        for i in range(len(row["lots"])):
            lot = (request.form.get(f"pull-{slot}-{i}-lot") or "").strip()
            qty = _pieces_field(f"pull-{slot}-{i}-qty")
            if qty == 0:
                continue
            pulled.append({"lot_id": int(lot) if DIGITS.fullmatch(lot) else None, "qty_milli": qty,
                           "reason": request.form.get(f"pull-{slot}-{i}-reason")})
        slots.append({"slot": slot, "counted_milli": _pieces_field(f"counted-{slot}", blank=None),
                      "loaded_milli": _pieces_field(f"loaded-{slot}"), "pulled": pulled})
    return slots


def _sheet_or_404(route_id: int, stop_id: int) -> dict:
    try:
        return refills.stop_sheet(get_session(), route_id, stop_id)
    except NotFound:
        abort(404)


@bp.route("/routes/<int:route_id>/stops/<int:stop_id>", methods=["GET", "POST"])
@requires("counters")
def stop(route_id: int, stop_id: int):
    sheet = _sheet_or_404(route_id, stop_id)
    if request.method == "GET":
        return render_template("kiosks/refill_stop.html", **sheet, values=None)
    values = request.form.to_dict()
    try:
        result = refill_visits.record_visit(get_session(), route_id, sheet["kiosk"].code,
                                      slots=_visit_from_form(sheet), actor_id=current_user.id)
    except InventoryError as error:
        get_session().rollback()
        sheet = _sheet_or_404(route_id, stop_id)
        # the page opens at the slot the refusal is about, highlighted, with the message beside it
        refused = refill_visits.refused_slot(error, [row["slot"] for row in sheet["slots"]])
        return _refuse("kiosks/refill_stop.html", error, **sheet, values=values,
                       refused_slot=refused, refused_message=str(error))
    flash(str(result["message"]), "warning" if result["already"] else "success")
    for over in result["over_capacity"]:
        flash(_("货道 %(slot)s 补入后共 %(n)s 件，超过标准容量 %(par)s 件",
                slot=over["slot"], n=over["after_pieces"], par=over["par"]), "warning")
    return redirect(url_for("refills.stop", route_id=route_id, stop_id=stop_id))
