"""The manager's pages for the counters: the fleet dashboard (/fleet), a page per counter
(registry, token, slots, sales and refills) and its planogram editor. Thin: parse, call
kiosks.fleet / kiosks.registry, render. Bad input gets a Chinese message and changes nothing
(the request's transaction is rolled back on any 4xx)."""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from inventory.catalogue import search_products
from inventory.localtime import local_today, utcnow
from inventory.models import Product, Unit
from inventory.money import AmountError, format_plain_yuan, parse_yuan
from inventory.web import get_session, page_arg
from kiosks import fleet, fleet_import, registry
from kiosks.models import Kiosk, KioskStatus
from pos.core.errors import NotFound, PosError
from pos.sales.reading import payment_label
from pos.core.web import requires

bp = Blueprint("fleet", __name__, url_prefix="/fleet")

STATUS_LABELS = {
    "active": _l("运营中"),
    "paused": _l("暂停"),
    "retired": _l("已撤柜"),
}
FILTER_LABELS = {**STATUS_LABELS, fleet.OFFLINE_STATUS: _l("离线")}
SITE_TYPE_LABELS = {
    "government": _l("机关"),
    "hospital": _l("医院"),
    "school": _l("学校"),
    "factory": _l("企业"),
    "canteen": _l("饭堂"),
    "other": _l("其他"),
}
SORT_LABELS = {
    "code": _l("编号"), "town": _l("镇街"), "today_fen": _l("今日销售"), "month_fen": _l("本月销售"),
    "fill": _l("满柜率"), "empty": _l("空货道"), "cover": _l("可售天数"), "expiring": _l("临期"),
    "last_sale": _l("最近销售"), "heartbeat": _l("最近心跳"), "alerts": _l("待处理提醒"),
}
EDIT_FIELDS = ("site_name", "host_org", "site_type", "town", "address", "latitude", "longitude",
               "food_filing_no", "status")
CODE_SPLIT = re.compile(r"[\s,，、;；]+")


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the dashboard ------------------------------------------------------------------------------

def _map_points(rows: list[dict], width: int = 360, height: int = 300, pad: int = 14) -> list[dict]:
    """Counters with a GPS position as points of a plain SVG scatter (x east, y north)."""
    placed = [r for r in rows if r["latitude"] is not None and r["longitude"] is not None]
    if not placed:
        return []
    lats = [r["latitude"] for r in placed]
    lons = [r["longitude"] for r in placed]
    lat_span = (max(lats) - min(lats)) or 0.01
    lon_span = (max(lons) - min(lons)) or 0.01
    scale = min((width - 2 * pad) / lon_span, (height - 2 * pad) / lat_span)
    points = []
    for r in placed:
        points.append({
            "code": r["code"], "site": r["site_name"], "town": r["town"], "urgency": urgency(r),
            "x": round(pad + (r["longitude"] - min(lons)) * scale, 1),
            "y": round(height - pad - (r["latitude"] - min(lats)) * scale, 1),
        })
    return points


def urgency(row: dict) -> str:
    """How urgently a counter needs a visit: offline or expired goods > empty slots or low fill >
    fine; paused and retired counters are grey."""
    if row["status"] != KioskStatus.ACTIVE.value:
        return "idle"
    if row["offline"] or row["expired_lots"]:
        return "urgent"
    if row["empty_slots"] or (row["fill_percent"] is not None and row["fill_percent"] < 50) or row["expiring_lots"]:
        return "soon"
    return "ok"


@bp.route("/")
@requires("fleet")
def index():
    s = get_session()
    now, today = utcnow(), local_today()
    fleet.refresh_kiosk_alerts(s, now=now)
    town = request.args.get("town", "").strip() or None
    status = request.args.get("status", "").strip() or None
    if status not in FILTER_LABELS:
        status = None
    sort = request.args.get("sort", "code")
    if sort not in fleet.SORT_KEYS:
        sort = "code"
    descending = request.args.get("dir") == "desc"
    towns = fleet.towns(s)
    if town not in towns:
        town = None
    rows = fleet.fleet_overview(s, today=today, now=now, town=town, status=status, sort=sort,
                                descending=descending)
    grouped = request.args.get("group", "town") != "none"
    return render_template(
        "kiosks/fleet.html", rows=rows, groups=fleet.group_by_town(rows) if grouped else None,
        total=fleet.totals(rows), towns=towns, town=town, status=status, sort=sort, descending=descending,
        grouped=grouped, today=today, now=now, points=_map_points(rows), urgency=urgency,
        status_labels=STATUS_LABELS, filter_labels=FILTER_LABELS, sort_labels=SORT_LABELS,
    )


# --- new counters: the spreadsheet import and the "add counter" form --------------------------------

NEW_FIELDS = ("code",) + EDIT_FIELDS[:-1]  # a new counter is active


@bp.route("/import", methods=["GET", "POST"])
@requires("fleet")
def import_kiosks():
    """The same import as ``songtao import-kiosks``: all rows or none, every row's errors listed."""
    if request.method == "GET":
        return render_template("kiosks/fleet_import.html", errors=[], plan=None,
                               columns=zip(fleet_import.COLUMNS, fleet_import.CHINESE))
    s = get_session()
    upload = request.files.get("file")
    errors, plan = [], None
    if upload is None or not upload.filename:
        errors = [fleet_import.RowError(0, "", _("请选择一个 CSV 或 Excel 文件"))]
    else:
        try:
            plan = fleet_import.apply_import(s, upload.filename, upload.read(), actor_id=current_user.id)
        except fleet_import.KiosksRefused as refused:
            errors = refused.errors
    if errors:
        s.rollback()
        flash(_("导入被拒绝：%(n)s 处错误，未写入任何数据", n=len(errors)), "error")
        return render_template("kiosks/fleet_import.html", errors=errors, plan=None,
                               columns=zip(fleet_import.COLUMNS, fleet_import.CHINESE)), 400
    flash(_("导入完成：新建 %(c)s 个专柜，更新 %(u)s 个，未变 %(n)s 个", c=plan.created, u=plan.updated,
            n=plan.unchanged), "success")
    return render_template("kiosks/fleet_import.html", errors=[], plan=plan,
                           columns=zip(fleet_import.COLUMNS, fleet_import.CHINESE))


@bp.route("/new", methods=["GET", "POST"])
@requires("fleet")
def new_kiosk():
    form = {name: "" for name in NEW_FIELDS}
    form["site_type"] = "other"
    if request.method == "GET":
        return render_template("kiosks/fleet_new.html", form=form, errors={}, site_type_labels=SITE_TYPE_LABELS)
    form = {name: request.form.get(name, "").strip() for name in NEW_FIELDS}
    s = get_session()
    try:
        kiosk = registry.create_kiosk(s, code=form["code"].upper(), actor_id=current_user.id,
                                      **{k: v for k, v in form.items() if k != "code"})
    except PosError as error:
        s.rollback()
        flash(str(error), "error")
        return render_template("kiosks/fleet_new.html", form=form, errors={error.field: str(error)},
                               site_type_labels=SITE_TYPE_LABELS), 400
    flash(_("已添加专柜 %(code)s：请签发令牌并设置货道", code=kiosk.code), "success")
    return redirect(url_for("fleet.kiosk", code=kiosk.code))


# --- one counter --------------------------------------------------------------------------------

def _kiosk_page(code: str, *, form: dict | None = None, errors: dict | None = None, new_token: str | None = None,
                status: int = 200):
    s = get_session()
    detail = fleet.kiosk_detail(s, code, today=local_today(), now=utcnow(),
                                sales_page=page_arg("sales_page"), refills_page=page_arg("refills_page"))
    kiosk = detail["kiosk"]
    if form is None:
        form = {name: getattr(getattr(kiosk, name), "value", getattr(kiosk, name)) for name in EDIT_FIELDS}
        form = {k: "" if v is None else v for k, v in form.items()}
    response = make_response(render_template(
        "kiosks/kiosk.html", d=detail, kiosk=kiosk, row=detail["row"], form=form, errors=errors or {},
        new_token=new_token, status_labels=STATUS_LABELS, site_type_labels=SITE_TYPE_LABELS,
        urgency=urgency(detail["row"]), payment_label=payment_label,
    ), status)
    return _no_store(response) if new_token else response


@bp.route("/<code>", methods=["GET", "POST"])
@requires("fleet")
def kiosk(code: str):
    s = get_session()
    kiosk = _get_or_404(code)
    if request.method == "GET":
        return _kiosk_page(kiosk.code)
    action = request.form.get("action")
    if action == "edit":
        form = {name: request.form.get(name, "").strip() for name in EDIT_FIELDS}
        try:
            registry.update_kiosk(s, kiosk.code, actor_id=current_user.id, **form)
        except PosError as error:
            flash(str(error), "error")
            return _kiosk_page(kiosk.code, form=form, errors={error.field: str(error)}, status=400)
        flash(_("专柜 %(code)s 的资料已保存", code=kiosk.code), "success")
        return redirect(url_for("fleet.kiosk", code=kiosk.code))
    if action == "issue_token":
        try:
            token = registry.issue_token(s, kiosk.code, actor_id=current_user.id)
        except PosError as error:
            flash(str(error), "error")
            return _kiosk_page(kiosk.code, status=400)
        return _kiosk_page(kiosk.code, new_token=token)
    if action == "revoke_token":
        if registry.revoke_token(s, kiosk.code, actor_id=current_user.id):
            flash(_("专柜 %(code)s 的令牌已作废，专柜将无法上传数据，直到签发新令牌", code=kiosk.code), "success")
        else:
            flash(_("专柜 %(code)s 没有令牌", code=kiosk.code), "warning")
        return redirect(url_for("fleet.kiosk", code=kiosk.code))
    flash(_("未知的操作"), "error")
    return _kiosk_page(kiosk.code, status=400)


def _get_or_404(code: str) -> Kiosk:
    from flask import abort

    try:
        return registry.get_kiosk(get_session(), str(code).strip().upper())
    except NotFound:
        abort(404)


# --- the planogram editor ----------------------------------------------------------------------

def _resolve_product(s, text: str) -> tuple[Product | None, list[Product]]:
    """A product by exact sku or barcode, or the only match of a search; else (None, candidates)."""
    text = (text or "").strip()
    if not text:
        raise PosError(_l("请填写商品（货号、条码或名称）"), "product")
    exact = s.scalar(select(Product).where(Product.sku == text))
    if exact is not None:
        return exact, []
    found = [p for p in search_products(s, text, per_page=12, active_only=True).items
             if p.unit != Unit.KG and not p.sold_by_weight]
    if len(found) == 1:
        return found[0], []
    if not found:
        raise PosError(_l("找不到商品：%(q)s", q=text[:40]), "product")
    return None, found


def _codes(text: str) -> list[str]:
    return [c.upper() for c in CODE_SPLIT.split(text or "") if c]


def _copy_targets(s, source: Kiosk, *, town: str, codes_text: str) -> list[Kiosk]:
    """The counters a copy would change: every counter of a town (but retired ones), or a list
    of codes; never the source itself."""
    if codes_text.strip():
        codes = list(dict.fromkeys(_codes(codes_text)))
        targets = [registry.get_kiosk(s, code) for code in codes]
    elif town:
        targets = list(s.scalars(select(Kiosk).where(Kiosk.town == town, Kiosk.status != KioskStatus.RETIRED)
                                 .order_by(Kiosk.code)))
    else:
        raise PosError(_l("请选择镇街或填写专柜编号"), "codes")
    targets = [k for k in targets if k.id != source.id]
    if not targets:
        raise PosError(_l("没有要复制到的专柜"), "codes")
    return targets


def _planogram_page(kiosk: Kiosk, *, form: dict | None = None, errors: dict | None = None,
                    candidates: list | None = None, copy_preview: dict | None = None, status: int = 200):
    s = get_session()
    slots = fleet.kiosk_slots(s, kiosk)
    return render_template(
        "kiosks/planogram.html", kiosk=kiosk, slots=slots, form=form or {}, errors=errors or {},
        candidates=candidates or [], copy_preview=copy_preview, towns=fleet.towns(s),
        status_labels=STATUS_LABELS,
    ), status


@bp.route("/<code>/planogram", methods=["GET", "POST"])
@requires("fleet")
def planogram(code: str):
    s = get_session()
    kiosk = _get_or_404(code)
    if request.method == "GET":
        edit = request.args.get("slot", "").strip().upper()
        form: dict[str, Any] = {}
        for row in fleet.kiosk_slots(s, kiosk):
            if row["slot"] == edit:
                form = {"slot": row["slot"], "product": row["sku"], "par": str(row["par"]),
                        "price": format_plain_yuan(row["price_fen"])}
        return _planogram_page(kiosk, form=form)
    action = request.form.get("action")
    if action == "set":
        form = {name: request.form.get(name, "").strip() for name in ("slot", "product", "par", "price")}
        if request.form.get("pick"):  # one of the candidates offered for an ambiguous search
            form["product"] = request.form["pick"].strip()
        try:
            product, candidates = _resolve_product(s, form["product"])
            if product is None:
                flash(_("有多个商品符合「%(q)s」，请选择一个", q=form["product"][:40]), "warning")
                return _planogram_page(kiosk, form=form, candidates=candidates, status=400)
            price_text = form["price"] or format_plain_yuan(product.price_fen)
            try:
                price_fen = parse_yuan(price_text)
            except AmountError as error:
                raise PosError(str(error), "price") from None
            if not form["par"]:
                raise PosError(_l("请填写容量（件）"), "par")
            slot = registry.set_slot(s, kiosk.code, form["slot"], product_id=product.id, par=form["par"],
                                     price_fen=price_fen, actor_id=current_user.id)
        except PosError as error:
            flash(str(error), "error")
            return _planogram_page(kiosk, form=form, errors={error.field: str(error)}, status=400)
        flash(_("货道 %(slot)s 已设为「%(product)s」，专柜下次获取货道表时生效", slot=slot.slot, product=product.name),
              "success")
        return redirect(url_for("fleet.planogram", code=kiosk.code))
    if action == "remove":
        try:
            removed = registry.remove_slot(s, kiosk.code, request.form.get("slot", ""), actor_id=current_user.id)
        except PosError as error:
            flash(str(error), "error")
            return _planogram_page(kiosk, status=400)
        if removed:
            flash(_("货道 %(slot)s 已移除", slot=request.form.get("slot", "").strip().upper()), "success")
        else:
            flash(_("没有这个货道"), "warning")
        return redirect(url_for("fleet.planogram", code=kiosk.code))
    if action in ("copy_preview", "copy"):
        town = request.form.get("town", "").strip()
        codes_text = request.form.get("codes", "").strip()
        try:
            targets = _copy_targets(s, kiosk, town=town, codes_text=codes_text)
            if action == "copy_preview" or request.form.get("expected") != str(len(targets)):
                preview = {"town": town, "codes_text": codes_text, "targets": targets,
                           "codes": " ".join(k.code for k in targets),
                           "slots": len(fleet.kiosk_slots(s, kiosk))}
                return _planogram_page(kiosk, copy_preview=preview)
            changed = registry.copy_planogram(s, kiosk.code, [k.code for k in targets], actor_id=current_user.id)
        except PosError as error:
            flash(str(error), "error")
            return _planogram_page(kiosk, form={"town": town, "codes": codes_text}, errors={"copy": str(error)},
                                   status=400)
        flash(_("已把 %(code)s 的货道表复制到 %(n)s 个专柜", code=kiosk.code, n=changed), "success")
        return redirect(url_for("fleet.planogram", code=kiosk.code))
    flash(_("未知的操作"), "error")
    return _planogram_page(kiosk, status=400)
