"""Manager pages for stock: the blueprint and what its pages share, and the pages for levels per
location, the ledger per product, expiry and write-offs, reorder points and alerts; receiving,
transfers and counts are in ``stock_document_views`` (same blueprint, so the same URLs and endpoint
names). Thin: parse, call inventory's services, render.

Every mistake a person can make is answered with the page again, a Chinese message on the field
(and at the top) and status 400; the request's session is rolled back, so nothing is written.
Access (manager, admin) is attached by the app factory (pos.core.web.protect_blueprint).
"""
from __future__ import annotations

from typing import Optional

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import column, func, select, table

from . import alerts as alert_service
from . import expiry as expiry_service
from . import reorder as reorder_service
from . import stock_levels as level_service
from .documents import DocStatus, GoodsReceipt, StockCount, Transfer
from .errors import InventoryError, NotFound
from .ledger import StockError, level
from .localtime import local_today
from .models import Location, LocationKind, MoveReason, Product, ReorderPoint, StockLevel
from .money import AmountError, format_qty
from .stock_forms import (
    WRITE_OFF_LABELS,
    ReorderPointForm,
    WriteOffForm,
    attach_error,
    clean_text,
    find_product,
    form_errors,
    parse_days,
    parse_int_id,
)
from .web import get_session, page_arg

bp = Blueprint("stock", __name__, url_prefix="/stock")

# What a service may refuse with; str() is the message for the person.
DOMAIN_ERRORS = (InventoryError, StockError, AmountError)

MAIN_KINDS = (LocationKind.BASE, LocationKind.HALL_STORE, LocationKind.HALL_FLOOR)


def _actor() -> int:
    return current_user.id


def _refuse(template: str, messages, **context):
    """The page again with the messages, status 400, and nothing of this request written."""
    get_session().rollback()
    if isinstance(messages, str):
        messages = [messages]
    for message in dict.fromkeys(str(m) for m in messages if m):
        flash(message, "error")
    return render_template(template, **context), 400


MAX_ID = 2**31 - 1  # integer keys are 32-bit on PostgreSQL
MAX_PAGE = 100_000


def _page() -> int:
    """?page=N, kept within what a database can offset by."""
    return min(page_arg(), MAX_PAGE)


def _get_or_404(model, ident: int):
    if not 0 < ident <= MAX_ID:
        abort(404)
    obj = get_session().get(model, ident)
    if obj is None:
        abort(404)
    return obj


def _qty(qty_milli: int, product: Product) -> str:
    return format_qty(qty_milli, by_weight=product.weighed)


@bp.app_template_filter("stock_qty")
def _stock_qty_filter(qty_milli, product) -> str:
    """{{ line.qty_milli|stock_qty(line.product) }}: 3 decimals for goods kept in kg."""
    if qty_milli is None:
        return ""
    return _qty(qty_milli, product)


@bp.context_processor
def _helpers():
    return {
        "reason_label": lambda reason: str(REASON_LABELS.get(_value(reason), _value(reason))),
        "status_label": lambda status: str(STATUS_LABELS.get(_value(status), _value(status))),
        "kind_label": lambda kind: str(KIND_LABELS.get(_value(kind), _value(kind))),
        "write_off_labels": WRITE_OFF_LABELS,
    }


def _value(enum_or_text):
    return getattr(enum_or_text, "value", enum_or_text)


REASON_LABELS = {
    MoveReason.RECEIPT.value: _l("入库"),
    MoveReason.SALE.value: _l("销售"),
    MoveReason.REFUND.value: _l("退货"),
    MoveReason.TRANSFER.value: _l("调拨"),
    MoveReason.REFILL.value: _l("专柜补货"),
    MoveReason.COUNT_ADJUSTMENT.value: _l("盘点调整"),
    MoveReason.WRITE_OFF.value: _l("报损"),
    MoveReason.EXPIRY.value: _l("过期报废"),
    MoveReason.OPENING.value: _l("期初库存"),
}
STATUS_LABELS = {
    DocStatus.DRAFT.value: _l("草稿"),
    DocStatus.POSTED.value: _l("已过账"),
    DocStatus.CANCELLED.value: _l("已取消"),
}
KIND_LABELS = {
    LocationKind.BASE.value: _l("物流基地"),
    LocationKind.HALL_FLOOR.value: _l("卖场"),
    LocationKind.HALL_STORE.value: _l("馆内仓库"),
    LocationKind.KIOSK.value: _l("专柜"),
    LocationKind.VAN.value: _l("补货车"),
    LocationKind.DISPATCH.value: _l("团购待发区"),
    LocationKind.SUPPLIER.value: _l("供应商"),
    LocationKind.CUSTOMER.value: _l("顾客"),
    LocationKind.LOSS.value: _l("损耗"),
    LocationKind.COUNT_ADJUSTMENT.value: _l("盘点差异"),
}


# --- stock home, levels, ledger ------------------------------------------------------------


@bp.route("/")
def index():
    session = get_session()
    rows = session.execute(
        select(
            Location,
            func.count(StockLevel.product_id).filter(StockLevel.qty_milli != 0),
            func.count(StockLevel.product_id).filter(StockLevel.qty_milli < 0),
        )
        .outerjoin(StockLevel, StockLevel.location_id == Location.id)
        .where(Location.kind.not_in((LocationKind.SUPPLIER, LocationKind.CUSTOMER, LocationKind.LOSS,
                                     LocationKind.COUNT_ADJUSTMENT)))
        .group_by(Location.id)
        .order_by(Location.id)
    ).all()
    main = [r for r in rows if r[0].kind in MAIN_KINDS]
    order = {k: i for i, k in enumerate((LocationKind.BASE, LocationKind.HALL_STORE, LocationKind.HALL_FLOOR))}
    main.sort(key=lambda r: (order[r[0].kind], r[0].id))
    others = [r for r in rows if r[0].kind not in MAIN_KINDS]
    others.sort(key=lambda r: r[0].code)
    drafts = {
        "receipts": session.scalar(select(func.count()).select_from(GoodsReceipt).where(GoodsReceipt.status == DocStatus.DRAFT)),
        "transfers": session.scalar(select(func.count()).select_from(Transfer).where(Transfer.status == DocStatus.DRAFT)),
        "counts": session.scalar(select(func.count()).select_from(StockCount).where(StockCount.status == DocStatus.DRAFT)),
    }
    return render_template("inventory/stock_index.html", main=main, others=others, drafts=drafts)


@bp.route("/locations/<int:location_id>")
def location(location_id: int):
    session = get_session()
    loc = _get_or_404(Location, location_id)
    q = clean_text(request.args.get("q")).strip()[:60]
    page = level_service.stock_at_location(session, location_id, q=q or None, page=_page())
    return render_template("inventory/stock_location.html", location=loc, page=page, q=q)


@bp.route("/products/<int:product_id>/ledger")
def product_ledger(product_id: int):
    session = get_session()
    product = _get_or_404(Product, product_id)
    location_id = None
    if request.args.get("location"):
        location_id = parse_int_id(request.args.get("location"))
        if location_id is None or session.get(Location, location_id) is None:
            flash(_("位置不存在"), "error")
            return render_template("inventory/stock_ledger.html", **_ledger_context(session, product, None)), 400
    return render_template("inventory/stock_ledger.html", **_ledger_context(session, product, location_id))


def _ledger_context(session, product: Product, location_id: Optional[int]) -> dict:
    page = level_service.product_ledger(session, product.id, location_id=location_id, page=_page())
    users = _user_names(session, {e["user_id"] for e in page.items})
    refs = _ref_links(session, page.items)
    entries = [dict(e, user=users.get(e["user_id"]), ref=refs.get((e["ref_type"], e["ref_id"]))) for e in page.items]
    filter_locations = session.scalars(
        select(Location).where(Location.kind.in_(MAIN_KINDS) | (Location.id == (location_id or 0))).order_by(Location.id)
    ).all()
    return {"product": product, "page": page, "entries": entries, "location_id": location_id,
            "levels": level_service.product_levels(session, product.id),
            "filter_locations": filter_locations,
            "location": session.get(Location, location_id) if location_id else None}


REF_DOCUMENTS = {
    "goods_receipt": (GoodsReceipt, "stock.receipt", "receipt_id"),
    "transfer": (Transfer, "stock.transfer", "transfer_id"),
    "stock_count": (StockCount, "stock.count", "count_id"),
}


def _ref_links(session, entries) -> dict:
    """(ref_type, ref_id) → (label, url) for the documents behind ledger entries."""
    wanted: dict[str, set] = {}
    for e in entries:
        if e["ref_type"] in REF_DOCUMENTS and e["ref_id"]:
            wanted.setdefault(e["ref_type"], set()).add(e["ref_id"])
    out = {}
    for ref_type, ids in wanted.items():
        model, endpoint, arg = REF_DOCUMENTS[ref_type]
        for doc_id, number in session.execute(select(model.id, model.number).where(model.id.in_(ids))):
            out[(ref_type, doc_id)] = (number, url_for(endpoint, **{arg: doc_id}))
    return out


def _user_names(session, ids) -> dict:
    """Display names of users, read from the users table by name (inventory does not import pos)."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    users = table("users", column("id"), column("display_name"))
    return dict(session.execute(select(users.c.id, users.c.display_name).where(users.c.id.in_(ids))).all())


@bp.route("/lookup")
def lookup():
    """The product a typed or scanned text means, for the hint beside a line's product field."""
    session = get_session()
    try:
        product = find_product(session, request.args.get("q", ""))
    except InventoryError as exc:
        return jsonify({"error": str(exc)}), 404
    location_id = parse_int_id(request.args.get("location")) if request.args.get("location") else None
    out = {"id": product.id, "sku": product.sku, "name": product.name,
           "unit": "kg" if product.weighed else str(_("件")), "weighed": product.weighed}
    if location_id:
        out["level"] = _qty(level(session, location_id, product.id), product)
    return jsonify(out)


# --- expiry and write-off -------------------------------------------------------------------


def _expiry_context(session, days: int, location_id: Optional[int], write_off_form=None) -> dict:
    today = local_today()
    lots = expiry_service.expiring_lots(session, today=today, within_days=days, location_id=location_id)
    locations = session.scalars(
        select(Location).where(Location.kind.in_(MAIN_KINDS + (LocationKind.KIOSK, LocationKind.VAN)))
        .order_by(Location.id)
    ).all()
    return {"lots": lots, "days": days, "location_id": location_id,
            "locations": [loc for loc in locations if loc.kind in MAIN_KINDS],
            "today": today, "write_off_form": write_off_form or WriteOffForm(get_session())}


@bp.route("/expiry")
def expiry():
    session = get_session()
    location_id = None
    errors = []
    try:
        days = parse_days(request.args.get("days"))
    except InventoryError as exc:
        errors.append(str(exc))
        days = 30
    if request.args.get("location"):
        location_id = parse_int_id(request.args.get("location"))
        loc = session.get(Location, location_id) if location_id else None
        if loc is None or loc.kind.is_virtual:
            errors.append(_("位置不存在"))
            location_id = None
    if errors:
        return _refuse("inventory/stock_expiry.html", errors, **_expiry_context(session, days, location_id))
    return render_template("inventory/stock_expiry.html", **_expiry_context(session, days, location_id))


@bp.route("/write-off", methods=["POST"])
def write_off():
    session = get_session()
    form = WriteOffForm(session)
    days = 30
    try:
        days = parse_days(request.form.get("days"))
    except InventoryError:
        pass
    if not form.parse():
        return _refuse("inventory/stock_expiry.html", form_errors(form),
                       **_expiry_context(session, days, None, form))
    values = form.values
    try:
        if values["lot_id"] is None:
            # Without a lot named, take the goods from the lots first-expiry-first-out, as
            # a count does, so that the lot levels keep adding up to the level.
            parts = expiry_service.allocate_removal(session, location_id=values["location_id"],
                                                   product_id=values["product_id"], qty_milli=values["qty_milli"])
        else:
            parts = [(values["lot_id"], values["qty_milli"])]
        for lot_id, part in parts:
            expiry_service.write_off(session, **dict(values, lot_id=lot_id, qty_milli=part), actor_id=_actor())
        session.flush()
    except DOMAIN_ERRORS as exc:
        attach_error(form, exc)
        return _refuse("inventory/stock_expiry.html", str(exc), **_expiry_context(session, days, None, form))
    product = session.get(Product, form.values["product_id"])
    location_name = session.get(Location, form.values["location_id"]).name
    flash(_("已报损：%(location)s的「%(name)s」%(qty)s", location=location_name, name=product.name,
            qty=_qty(form.values["qty_milli"], product)), "success")
    return redirect(url_for("stock.expiry", days=days))


# --- reorder points -------------------------------------------------------------------------


def _reorder_context(session, form) -> dict:
    rows = session.execute(
        select(ReorderPoint, Location, Product, func.coalesce(StockLevel.qty_milli, 0))
        .join(Location, Location.id == ReorderPoint.location_id)
        .join(Product, Product.id == ReorderPoint.product_id)
        .outerjoin(StockLevel, (StockLevel.location_id == ReorderPoint.location_id)
                   & (StockLevel.product_id == ReorderPoint.product_id))
        .order_by(Location.id, Product.name)
        .limit(500)
    ).all()
    return {"form": form, "rows": rows}


@bp.route("/reorder-points", methods=["GET", "POST"])
def reorder_points():
    session = get_session()
    form = ReorderPointForm(session)
    if request.method == "POST":
        if not form.parse():
            return _refuse("inventory/stock_reorder.html", form_errors(form), **_reorder_context(session, form))
        try:
            reorder_service.set_reorder_point(session, **form.values, actor_id=_actor())
            session.flush()
        except DOMAIN_ERRORS as exc:
            attach_error(form, exc)
            return _refuse("inventory/stock_reorder.html", str(exc), **_reorder_context(session, form))
        product = session.get(Product, form.values["product_id"])
        flash(_("已设置「%(name)s」的补货点：%(qty)s", name=product.name,
                qty=_qty(form.values["min_qty_milli"], product)), "success")
        return redirect(url_for("stock.reorder_points"))
    if request.args.get("location"):
        form.location_id.data = request.args.get("location")
    if request.args.get("product"):
        form.product.data = clean_text(request.args.get("product"))[:60]
    return render_template("inventory/stock_reorder.html", **_reorder_context(session, form))


# --- alerts (shown on the manager's dashboard) ---------------------------------------------


def _back(default_endpoint: str = "shell.dashboard") -> str:
    from urllib.parse import urlsplit

    target = request.form.get("next") or ""
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and not parts.netloc:
        return target
    return url_for(default_endpoint)


@bp.route("/alerts/refresh", methods=["POST"])
def alerts_refresh():
    session = get_session()
    alert_service.refresh_alerts(session, today=local_today())
    flash(_("提醒已刷新"), "success")
    return redirect(_back())


@bp.route("/alerts/<int:alert_id>/resolve", methods=["POST"])
def alert_resolve(alert_id: int):
    session = get_session()
    if not 0 < alert_id <= MAX_ID:
        abort(404)
    try:
        alert_service.resolve_alert(session, alert_id, actor_id=_actor())
        session.flush()
    except NotFound:
        abort(404)
    flash(_("提醒已处理"), "success")
    return redirect(_back())


# The blueprint's other pages (their routes join ``bp`` when imported).
from . import stock_document_views  # noqa: E402, F401
