"""The admin's set-up pages: the first-run page (``/setup``), which every page an admin opens
points to while the site has no places of its own, and afterwards the site page (``/site``): the hall's name,
address and paired county, its places (add, rename, retire, bring back) and its tills (add, change,
retire, bring back). Thin: parse, call ``pos.hall.setup``, render. A refused value gets a Chinese
message, a 400, and changes nothing (the request's transaction is rolled back)."""
from __future__ import annotations

from typing import Any, Optional

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user

from inventory.locations import KIND_LABELS, KIND_WORDS, site_locations
from pos.core.db import get_session
from pos.core.errors import NotFound, PosError
from pos.core.forms import EmptyForm
from pos.core.web import requires
from pos.hall import setup
from pos.hall.settings import hall_settings

bp = Blueprint("setup", __name__)

FIRST_RUN_PLACES = (  # (form prefix, kind word, default code, default name)
    ("floor", "hall", "HALL", "卖场"),
    ("store", "storeroom", "HALL-STORE", "仓库"),
    ("base", "base", "BASE", "物流基地"),
)
MAX_VANS = 6


def first_run_notice(app) -> None:
    """While the site has no places of its own, every page an admin opens says so and leads to
    the first-run page (``site_first_run`` in templates; one small query, for admins only)."""
    @app.context_processor
    def _first_run():
        try:
            if not current_user.is_authenticated or getattr(current_user.role, "value", None) != "admin":
                return {"site_first_run": False}
            return {"site_first_run": setup.site_status(get_session()).first_run}
        except Exception:  # an error page rendered while the database is down must still render
            return {"site_first_run": False}


def _form_text(name: str) -> str:
    return (request.form.get(name) or "").strip()


def _fail(message: Any, status: int = 400):
    get_session().rollback()
    flash(str(message), "error")


# --- the first run --------------------------------------------------------------------------

@bp.route("/setup", methods=["GET", "POST"])
@requires("site")
def first_run():
    session = get_session()
    status = setup.site_status(session)
    if not status.first_run:  # set up already: the ordinary site page adds, renames and retires
        if request.method == "POST":
            flash(_("门店已经建好，请在这里增改位置和收银台"), "warning")
        return redirect(url_for("setup.site"))
    form = EmptyForm()
    typed: dict[str, str] = {}
    errors: list[str] = []
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        typed = {k: v[:200] for k, v in request.form.items() if k != "csrf_token"}
        errors = _apply_first_run(session)
        if not errors:
            flash(_("门店已建好：可以导入商品和专柜、录入期初库存，然后开始收银"), "success")
            return redirect(url_for("setup.site"))
        session.rollback()
        for message in errors:
            flash(message, "error")
    hall = hall_settings(session)
    return render_template("pos/hall/setup_first_run.html", form=form, typed=typed, hall=hall, status=status,
                           places=FIRST_RUN_PLACES, vans=range(1, 3), errors=errors), 400 if errors else 200


def _apply_first_run(session) -> list[str]:
    """Everything the page asks for, checked field by field; every problem is returned (and the
    caller rolls everything back when there is one)."""
    problems: list[str] = []
    actor = current_user.id

    def attempt(label: Any, work) -> Optional[Any]:
        try:
            with session.begin_nested():
                return work()
        except (PosError, NotFound) as error:
            problems.append(f"{label}：{error}" if label else str(error))
            return None

    attempt("", lambda: setup.save_hall(session, {key: _form_text(key) for key in setup.HALL_KEYS}, actor_id=actor))
    hall_code = None
    for prefix, kind, _code, _name in FIRST_RUN_PLACES:
        code, name = _form_text(f"{prefix}_code"), _form_text(f"{prefix}_name")
        if prefix != "floor" and not code and not name:
            continue  # a storeroom or base the hall does not have
        place = attempt(KIND_LABELS[kind], lambda c=code, k=kind, n=name: setup.add_location(
            session, code=c, kind=k, name=n, actor_id=actor))
        if prefix == "floor" and place is not None:
            hall_code = place.code
    for i in range(1, MAX_VANS + 1):
        code, name = _form_text(f"van{i}_code"), _form_text(f"van{i}_name")
        if code or name:
            attempt(_("补货车 %(n)s", n=i), lambda c=code, n=name: setup.add_location(
                session, code=c, kind="van", name=n, actor_id=actor))
    till_code = _form_text("till_code")
    if till_code or _form_text("till_name"):
        if hall_code is None and not problems:
            problems.append(_("收银台：请先填写卖场"))
        elif hall_code is not None:
            attempt(_("收银台"), lambda: setup.add_till(
                session, code=till_code, name=_form_text("till_name"), location=hall_code,
                printer=_form_text("till_printer"), paper=_form_text("till_paper") or "80", actor_id=actor))
    else:
        problems.append(_("收银台：请至少添加一台收银台"))
    return problems


# --- the site page afterwards -------------------------------------------------------------------

def _site_page(status_code: int = 200):
    session = get_session()
    return render_template(
        "pos/hall/setup_site.html", form=EmptyForm(), hall=hall_settings(session), status=setup.site_status(session),
        places=site_locations(session), tills=setup.list_tills(session), kind_words=KIND_WORDS,
        kind_labels=KIND_LABELS, hall_places=[p for p in site_locations(session)
                                               if p.active and KIND_WORDS.get(p.kind) == "hall"],
    ), status_code


def _posted() -> None:
    if not EmptyForm().validate_on_submit():
        abort(400)


@bp.route("/site")
@requires("site")
def site():
    return _site_page()


@bp.route("/site/hall", methods=["POST"])
@requires("site")
def save_hall():
    _posted()
    try:
        changed = setup.save_hall(get_session(), {key: _form_text(key) for key in setup.HALL_KEYS},
                                  actor_id=current_user.id)
    except PosError as error:
        _fail(error)
        return _site_page(400)
    flash(_("门店信息已保存") if changed else _("没有修改"), "success")
    return redirect(url_for("setup.site"))


@bp.route("/site/places", methods=["POST"])
@requires("site")
def add_place():
    _posted()
    try:
        place = setup.add_location(get_session(), code=_form_text("code"), kind=_form_text("kind"),
                                   name=_form_text("name"), actor_id=current_user.id)
    except PosError as error:
        _fail(error)
        return _site_page(400)
    flash(_("已添加位置 %(code)s", code=place.code), "success")
    return redirect(url_for("setup.site"))


@bp.route("/site/places/<code>", methods=["POST"])
@requires("site")
def change_place(code: str):
    _posted()
    action = request.form.get("action")
    session = get_session()
    try:
        if action == "rename":
            setup.rename_location(session, code, name=_form_text("name"), actor_id=current_user.id)
            message = _("位置 %(code)s 已改名", code=code)
        elif action in ("retire", "reactivate"):
            setup.set_location_active(session, code, action == "reactivate", actor_id=current_user.id)
            message = _("位置 %(code)s 已停用", code=code) if action == "retire" else _("位置 %(code)s 已恢复使用", code=code)
        else:
            abort(400)
    except NotFound:
        abort(404)
    except PosError as error:
        _fail(error)
        return _site_page(400)
    flash(message, "success")
    return redirect(url_for("setup.site"))


@bp.route("/site/tills", methods=["POST"])
@requires("site")
def add_till():
    _posted()
    try:
        till = setup.add_till(get_session(), code=_form_text("code"), name=_form_text("name"),
                              location=_form_text("location"), printer=_form_text("printer"),
                              paper=_form_text("paper") or "80", actor_id=current_user.id)
    except PosError as error:
        _fail(error)
        return _site_page(400)
    flash(_("已添加收银台 %(code)s", code=till.code), "success")
    return redirect(url_for("setup.site"))


@bp.route("/site/tills/<code>", methods=["POST"])
@requires("site")
def change_till(code: str):
    _posted()
    action = request.form.get("action")
    fields: dict[str, Any] = {}
    if action == "save":
        fields = {"name": _form_text("name"), "location": _form_text("location"), "printer": _form_text("printer"),
                  "paper": _form_text("paper") or "80"}
    elif action in ("retire", "reactivate"):
        fields = {"active": action == "reactivate"}
    else:
        abort(400)
    try:
        setup.update_till(get_session(), code, actor_id=current_user.id, **fields)
    except NotFound:
        abort(404)
    except PosError as error:
        _fail(error)
        return _site_page(400)
    flash(_("收银台 %(code)s 已保存", code=code), "success")
    return redirect(url_for("setup.site"))


TITLE = _l("门店设置")
