"""The manager's shift pages: the list of till shifts, a shift's X report (while open) or Z report
(once closed), sales that reached the server after their shift had closed, and the hall settings
the tills use (抹零, discount limit).

Thin: parse, call pos.hall.shifts / pos.hall.settings / inventory.alerts, render. Every figure on a report
comes from ``shift_report``, the one place that defines takings and expected cash; this module
adds none of its own. A mistake in a form is answered with the page again, a Chinese message and
status 400, and the request's session is rolled back, so nothing is written.
"""
from __future__ import annotations

import json
from typing import Optional

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import BooleanField, StringField
from wtforms.validators import InputRequired, ValidationError

from inventory.alerts import resolve_alert
from inventory.localtime import local_days_to_utc_range, parse_local_date, utcnow
from inventory.models import Alert, AlertKind
from inventory.money import AmountError, format_plain_yuan, parse_yuan
from inventory.web import Page, get_session, page_arg
from pos.hall import printing
from pos.hall import settings as hall_settings_service
from pos.hall import shifts as shift_service
from pos.core.errors import NotFound, PosError
from pos.core.forms import EmptyForm
from pos.models import CashMovement, CashMovementKind, PaymentMethod, Sale, Shift, ShiftStatus, Till, User
from pos.sales import offline
from pos.sales.reading import payment_label
from pos.hall.settings import MAX_DIFFERENCE_LIMIT_FEN
from pos.core.web import requires

bp = Blueprint("shifts", __name__, url_prefix="/shifts")

PER_PAGE = 20
MAX_ID = 2**31 - 1  # integer keys are 32-bit on PostgreSQL

# The order in which a report lists payment methods (cash first: it is what the drawer holds).
METHOD_ORDER = {m.value: i for i, m in enumerate(PaymentMethod)}


@bp.context_processor
def _helpers():
    return {
        "payment_label": payment_label,
        "by_method": _by_method,
        "share": _share,
    }


def _value(enum_or_text):
    return getattr(enum_or_text, "value", enum_or_text)


def _by_method(amounts: Optional[dict]) -> list[tuple[str, int]]:
    """A report's {method: fen} as rows in the hall's usual order, empty methods left out."""
    rows = [(_value(m), fen) for m, fen in (amounts or {}).items() if fen]
    return sorted(rows, key=lambda r: (METHOD_ORDER.get(r[0], len(METHOD_ORDER)), r[0]))


def _share(part_fen: int, whole_fen: int) -> str:
    """part as a percentage of whole with one decimal, in integers: 1234 of 5000 → "24.6%"."""
    if not whole_fen:
        return ""
    permille = (part_fen * 1000 * 2 + whole_fen) // (whole_fen * 2)  # rounded half up
    return f"{permille // 10}.{permille % 10}%"


def _user_names(session, ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


# --- the list of shifts -------------------------------------------------------------------------


@bp.route("/")
@requires("dashboard")
def index():
    session = get_session()
    tills = session.scalars(select(Till).order_by(Till.code)).all()
    till_code = (request.args.get("till") or "").strip()[:10]
    day_text = (request.args.get("date") or "").strip()[:20]
    status = 200

    stmt = select(Shift)
    till = next((t for t in tills if t.code == till_code), None)
    if till_code and till is None:
        flash(_("收银台不存在：%(code)s", code=till_code), "error")
        status = 400
    elif till is not None:
        stmt = stmt.where(Shift.till_id == till.id)
    if day_text:
        try:
            day = parse_local_date(day_text)
        except ValueError:
            flash(_("日期格式应为 YYYY-MM-DD"), "error")
            status = 400
        else:
            start, end = local_days_to_utc_range(day, day)
            stmt = stmt.where(Shift.opened_at >= start, Shift.opened_at < end)

    page_no = page_arg()
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    shifts = session.scalars(
        stmt.order_by(Shift.opened_at.desc(), Shift.id.desc()).limit(PER_PAGE).offset((page_no - 1) * PER_PAGE)
    ).all()
    # One report per listed shift: the report is the one definition of takings and expected cash
    # (a closed shift's come from the figures fixed at close), so the list cannot disagree with it.
    rows = [(shift, shift_service.shift_report(session, shift.id)) for shift in shifts]
    names = _user_names(session, {sh.cashier_id for sh in shifts})
    page = Page(items=rows, total=total, page=page_no, per_page=PER_PAGE)
    return render_template("pos/hall/shifts.html", page=page, tills=tills, till_code=till_code if till else "",
                           day=day_text if status == 200 else "", names=names), status


# --- one shift's X / Z report -------------------------------------------------------------------


@bp.route("/<int:shift_id>")
@requires("dashboard")
def report(shift_id: int):
    session = get_session()
    if not 0 < shift_id <= MAX_ID:
        abort(404)
    try:
        rep = shift_service.shift_report(session, shift_id)
    except NotFound:
        abort(404)
    shift = rep.shift
    movements = session.scalars(
        select(CashMovement).where(CashMovement.shift_id == shift.id).order_by(CashMovement.at, CashMovement.id)
    ).all()
    taken_over = shift_service.handovers(session, shift.id)
    names = _user_names(session, {shift.cashier_id, shift.closed_by_id} | {m.user_id for m in movements}
                        | {h[k] for h in taken_over for k in ("from_id", "to_id", "approved_by_id")})
    return render_template(
        "pos/hall/shift_report.html", report=rep, shift=shift, till=shift.till, names=names,
        movements=movements, handovers=taken_over, denominations=_denominations(rep.denominations or shift.denominations),
        closed=shift.status == ShiftStatus.CLOSED, cash_in=CashMovementKind.CASH_IN, now=utcnow(),
    )


def _denominations(stored) -> list[tuple[int, int]]:
    """The counted notes and coins, {"10000": 3, …} (or its JSON text) as (value fen, count),
    largest first."""
    if not stored:
        return []
    try:
        counts = json.loads(stored) if isinstance(stored, str) else dict(stored)
    except (TypeError, ValueError):
        return []
    rows = []
    for value, count in counts.items():
        try:
            value, count = int(value), int(count)
        except (TypeError, ValueError):
            continue
        if count:
            rows.append((value, count))
    return sorted(rows, reverse=True)


# --- sales that arrived after their shift had closed ---------------------------------------------


@bp.route("/late-sales")
@requires("dashboard")
def late_sales():
    session = get_session()
    show_all = request.args.get("show") == "all"
    rows = [dict(row) for row in shift_service.late_sales(session) if show_all or not row["reviewed"]]
    resolved = _alerts(session, {r["alert_id"] for r in rows if r["reviewed"] and r["alert_id"]})
    for row in rows:
        row["review"] = resolved.get(row["alert_id"])
        row["meant_for"] = _meant_for(session, row)
    names = _user_names(session, {a.resolved_by_id for a in resolved.values()})
    return render_template("pos/hall/late_sales.html", rows=rows, show_all=show_all, names=names, form=EmptyForm())


def _alerts(session, ids) -> dict[int, Alert]:
    if not ids:
        return {}
    return {a.id: a for a in session.scalars(select(Alert).where(Alert.id.in_(ids)))}


def _meant_for(session, row: dict) -> Optional[Shift]:
    """The shift a late sale belongs to: the one it named, else its till's last shift opened
    before the sale was made (the till had no open shift when the sale arrived)."""
    if row["shift_id"]:
        return session.get(Shift, row["shift_id"])
    sale = session.get(Sale, row["sale_id"])
    if sale is None or not sale.till_id:
        return None
    return session.scalars(
        select(Shift).where(Shift.till_id == sale.till_id, Shift.opened_at <= sale.sold_at)
        .order_by(Shift.opened_at.desc(), Shift.id.desc()).limit(1)
    ).first()


@bp.route("/late-sales/<int:sale_id>/review", methods=["POST"])
@requires("dashboard")
def late_sale_review(sale_id: int):
    session = get_session()
    if not 0 < sale_id <= MAX_ID:
        abort(404)
    sale = session.get(Sale, sale_id)
    if sale is None or not sale.after_shift_closed:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    open_ids = session.scalars(select(Alert.id).where(
        Alert.kind == AlertKind.LATE_SALE, Alert.ref_type == "sale", Alert.ref_id == sale.id,
        Alert.resolved_at.is_(None))).all()
    if not open_ids:
        flash(_("小票 %(no)s 已核对过", no=sale.receipt_no), "warning")
    for alert_id in open_ids:  # resolve_alert writes the audit event (who, when)
        resolve_alert(session, alert_id, actor_id=current_user.id)
    if open_ids:
        flash(_("已核对小票 %(no)s", no=sale.receipt_no), "success")
    return redirect(url_for("shifts.late_sales", show=request.args.get("show") or None))


# --- sales made offline at another price than the catalogue's --------------------------------------


@bp.route("/price-differences")
@requires("dashboard")
def price_differences():
    """Offline sales recorded at the price the till charged, which was not the catalogue's: the
    catalogue price beside the price paid, line by line, until the manager has checked them."""
    session = get_session()
    show_all = request.args.get("show") == "all"
    rows = [row for row in offline.price_differences(session) if show_all or not row["reviewed"]]
    return render_template("pos/hall/price_differences.html", rows=rows, show_all=show_all, form=EmptyForm())


@bp.route("/price-differences/<int:sale_id>/review", methods=["POST"])
@requires("dashboard")
def price_difference_review(sale_id: int):
    session = get_session()
    if not 0 < sale_id <= MAX_ID:
        abort(404)
    sale = session.get(Sale, sale_id)
    if sale is None or not sale.price_differs:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    open_ids = session.scalars(select(Alert.id).where(
        Alert.kind == AlertKind.PRICE_MISMATCH, Alert.ref_type == "sale", Alert.ref_id == sale.id,
        Alert.resolved_at.is_(None))).all()
    for alert_id in open_ids:  # resolve_alert writes the audit event (who, when)
        resolve_alert(session, alert_id, actor_id=current_user.id)
    flash(_("已核对小票 %(no)s", no=sale.receipt_no) if open_ids else _("小票 %(no)s 已核对过", no=sale.receipt_no),
          "success" if open_ids else "warning")
    return redirect(url_for("shifts.price_differences", show=request.args.get("show") or None))


# --- hall settings --------------------------------------------------------------------------------


def _percent(form, field):
    text = (field.data or "").strip()
    if not (text.isdecimal() and len(text) <= 3 and int(text) <= 100):  # full-width digits too
        raise ValidationError(_l("折扣上限必须是 0 到 100 的整数"))


def _yuan_limit(form, field):
    if not (field.data or "").strip():  # left out: the setting stays as it is
        return
    try:
        fen = parse_yuan(field.data or "")
    except AmountError:
        raise ValidationError(_l("交班差额上限必须是金额（元），最多两位小数，例如 10 或 10.00")) from None
    if fen > MAX_DIFFERENCE_LIMIT_FEN:
        raise ValidationError(_l("交班差额上限必须是 0 到 ¥1,000,000.00 之间的金额"))


class HallSettingsForm(FlaskForm):
    rounding_to_jiao = BooleanField(_l("现金收款抹零（抹去分，只舍不入）"))
    # Text, not IntegerField: WTForms' own coercion message is English.
    discount_limit_percent = StringField(
        _l("收银员可直接给的折扣上限（%）"),
        validators=[InputRequired(_l("请输入折扣上限")), _percent],
    )
    shift_difference_limit = StringField(
        _l("交班差额上限（元）"),
        validators=[_yuan_limit],
    )


# setting key → the form's field, where they differ (the form takes yuan, the setting keeps fen)
FORM_FIELDS = {"shift_difference_limit_fen": "shift_difference_limit"}


@bp.route("/settings", methods=["GET", "POST"])
@requires("dashboard")
def settings():
    session = get_session()
    current = hall_settings_service.hall_settings(session)
    form = HallSettingsForm(data={
        "rounding_to_jiao": current.rounding_to_jiao,
        "discount_limit_percent": str(current.discount_limit_percent),
        "shift_difference_limit": format_plain_yuan(current.shift_difference_limit_fen),
    })
    if request.method == "POST":
        if form.validate_on_submit():
            wanted = {
                "rounding_to_jiao": "true" if form.rounding_to_jiao.data else "false",
                "discount_limit_percent": str(int(form.discount_limit_percent.data.strip())),
                "shift_difference_limit_fen": str(parse_yuan(form.shift_difference_limit.data))
                if (form.shift_difference_limit.data or "").strip() else str(current.shift_difference_limit_fen),
            }
            before = {"rounding_to_jiao": "true" if current.rounding_to_jiao else "false",
                      "discount_limit_percent": str(current.discount_limit_percent),
                      "shift_difference_limit_fen": str(current.shift_difference_limit_fen)}
            try:
                changed = [key for key, value in wanted.items() if value != before[key]]
                for key in changed:  # set_setting writes the audit event
                    hall_settings_service.set_setting(session, key, wanted[key], actor_id=current_user.id)
            except PosError as error:
                session.rollback()
                field = getattr(form, FORM_FIELDS.get(error.field, error.field or ""), None)
                if field is not None:
                    field.errors = list(field.errors) + [str(error)]
                flash(str(error), "error")
                return _settings_page(form, current), 400
            flash(_("门店设置已保存") if changed else _("没有修改"), "success")
            return redirect(url_for("shifts.settings"))
        session.rollback()
        for errors in form.errors.values():
            for message in errors:
                if isinstance(message, str):
                    flash(message, "error")
        return _settings_page(form, current), 400
    return _settings_page(form, current)


def _settings_page(form, current):
    return render_template("pos/hall/settings.html", form=form, current=current)


# --- tills and their printers --------------------------------------------------------------------

@bp.route("/tills")
@requires("dashboard")
def tills():
    session = get_session()
    job = None
    job_id = request.args.get("job") or ""
    if job_id:
        try:
            job = printing.job_outcome(session, job_id)
        except NotFound:
            job = None
    return _tills_page(session, job=job)


def _tills_page(session, *, typed: Optional[dict] = None, errors: Optional[dict] = None, job=None, form=None):
    """The tills and their printers; each till's row shows its stored URI and, when that URI is not
    allowed (any more), why; after a button, the outcome of its print job at that till's row."""
    rows = session.scalars(select(Till).order_by(Till.code)).all()
    refusals = printing.printer_refusals(rows)
    refusals.update(errors or {})
    return render_template("pos/hall/tills.html", tills=rows, form=form or EmptyForm(), refusals=refusals,
                           typed=typed or {}, job=job)


@bp.route("/tills/<code>", methods=["POST"])
@requires("dashboard")
def till_printer(code: str):
    session = get_session()
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    columns = request.form.get("paper_columns", "")
    uri = request.form.get("printer_uri", "")
    try:
        printing.set_printer(session, code, printer_uri=uri,
                             paper_columns=int(columns) if columns.isdigit() else 0, actor_id=current_user.id)
    except NotFound:
        abort(404)
    except PosError as error:
        session.rollback()
        flash(str(error), "error")
        return _tills_page(session, typed={code: uri[:200]}, errors={code: str(error)}, form=form), 400
    flash(_("收银台 %(code)s 的打印机已保存", code=code), "success")
    return redirect(url_for("shifts.tills"))


@bp.route("/tills/<code>/<any(test_print, drawer):action>", methods=["POST"])
@requires("dashboard")
def till_hardware(code: str, action: str):
    """The manager's buttons: a test page on the till's printer, or open its cash drawer (audited).
    Queued for the printer's worker; the page then shows the job's outcome at the till's row."""
    session = get_session()
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        if action == "drawer":
            job_id = printing.request_drawer(session, code, user_id=current_user.id)
        else:
            job_id = printing.request_test_print(session, code, user_id=current_user.id)
    except NotFound:
        abort(404)
    return redirect(url_for("shifts.tills", job=job_id))
