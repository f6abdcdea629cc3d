"""Manager pages for stock: levels per location, the ledger per product, receiving, transfers,
counts, expiry and write-offs, reorder points and alerts. Thin: parse, call inventory's services,
render.

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
from . import counts as count_service
from . import expiry as expiry_service
from . import receiving as receiving_service
from . import reorder as reorder_service
from . import stock_levels as level_service
from . import transfers as transfer_service
from .documents import DocStatus, GoodsReceipt, StockCount, Transfer
from .errors import InventoryError, NotFound
from .ledger import StockError, level
from .localtime import local_today
from .models import Location, LocationKind, MoveReason, Product, ReorderPoint, StockLevel
from .money import AmountError, format_qty, line_amount_fen
from .stock_forms import (
    WRITE_OFF_LABELS,
    CountLineForm,
    CountPostForm,
    CountStartForm,
    ReceiptForm,
    ReorderPointForm,
    ReverseForm,
    TransferForm,
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


# --- receiving ------------------------------------------------------------------------------


@bp.route("/receipts")
def receipts():
    session = get_session()
    page = receiving_service.list_receipts(session, page=_page())
    return render_template("inventory/stock_receipts.html", page=page)


@bp.route("/receipts/new", methods=["GET", "POST"])
def receipt_new():
    session = get_session()
    form = ReceiptForm(session)
    if request.method == "POST":
        if not form.parse():
            return _refuse("inventory/stock_receipt_form.html", form_errors(form), form=form, receipt=None)
        try:
            receipt = receiving_service.receive(session, **form.values, actor_id=_actor())
            session.flush()
        except DOMAIN_ERRORS as exc:
            attach_error(form, exc)
            return _refuse("inventory/stock_receipt_form.html", str(exc), form=form, receipt=None)
        flash(_("入库单 %(number)s 已保存为草稿，核对无误后请过账。", number=receipt.number), "success")
        return redirect(url_for("stock.receipt", receipt_id=receipt.id))
    return render_template("inventory/stock_receipt_form.html", form=form, receipt=None)


@bp.route("/receipts/<int:receipt_id>", methods=["GET", "POST"])
def receipt(receipt_id: int):
    session = get_session()
    doc = _get_or_404(GoodsReceipt, receipt_id)
    if doc.status != DocStatus.DRAFT:
        if request.method == "POST":
            return _refuse("inventory/stock_receipt.html", _("已过账的入库单不能修改；如有错误请冲销。"),
                           **_receipt_context(session, doc))
        return render_template("inventory/stock_receipt.html", **_receipt_context(session, doc))
    form = ReceiptForm(session)
    if request.method == "POST":
        if not form.parse():
            return _refuse("inventory/stock_receipt_form.html", form_errors(form), **_draft_context(session, form, doc))
        try:
            receiving_service.update_receipt_draft(session, receipt_id, **form.values, actor_id=_actor())
            session.flush()
        except DOMAIN_ERRORS as exc:
            attach_error(form, exc)
            session.rollback()
            return _refuse("inventory/stock_receipt_form.html", str(exc), **_draft_context(session, form, doc))
        flash(_("草稿已保存"), "success")
        return redirect(url_for("stock.receipt", receipt_id=receipt_id))
    form.fill_from(doc)
    return render_template("inventory/stock_receipt_form.html", **_draft_context(session, form, doc))


def _draft_context(session, form: ReceiptForm, doc: GoodsReceipt) -> dict:
    """The draft's form, and what is saved of it (what posting would receive)."""
    saved = _receipt_context(session, doc)
    return {"form": form, "receipt": doc, "saved_lines": saved["lines"], "saved_total_fen": saved["total_fen"]}


def _receipt_context(session, doc: GoodsReceipt, reverse_form: Optional[ReverseForm] = None) -> dict:
    lines = [{"line": line, "amount_fen": line_amount_fen(line.cost_fen, line.qty_milli),
              "expires_on": line.lot.expires_on if line.lot else line.expires_on} for line in doc.lines]
    reversed_by = session.scalar(select(GoodsReceipt).where(GoodsReceipt.reverses_id == doc.id))
    reverses = session.get(GoodsReceipt, doc.reverses_id) if doc.reverses_id else None
    users = _user_names(session, {doc.created_by_id, doc.posted_by_id})
    return {"receipt": doc, "lines": lines, "total_fen": sum(r["amount_fen"] for r in lines),
            "reversed_by": reversed_by, "reverses": reverses, "users": users,
            "reverse_form": reverse_form or ReverseForm()}


@bp.route("/receipts/<int:receipt_id>/post", methods=["POST"])
def receipt_post(receipt_id: int):
    session = get_session()
    doc = _get_or_404(GoodsReceipt, receipt_id)
    try:
        receiving_service.post_receipt(session, receipt_id, actor_id=_actor())
        session.flush()
    except DOMAIN_ERRORS as exc:
        session.rollback()
        doc = _get_or_404(GoodsReceipt, receipt_id)
        if doc.status == DocStatus.DRAFT:
            form = ReceiptForm(session)
            form.fill_from(doc)
            return _refuse("inventory/stock_receipt_form.html", str(exc), **_draft_context(session, form, doc))
        return _refuse("inventory/stock_receipt.html", str(exc), **_receipt_context(session, doc))
    flash(_("入库单 %(number)s 已过账，库存已增加。", number=doc.number), "success")
    return redirect(url_for("stock.receipt", receipt_id=receipt_id))


def _cancel_document(model, doc_id: int, cancel, template: str, context, done_message: str, list_endpoint: str):
    """Void a draft (receipt, transfer or count); a refusal re-shows the document with the reason."""
    session = get_session()
    doc = _get_or_404(model, doc_id)
    try:
        cancel(session, doc_id, actor_id=_actor())
        session.flush()
    except DOMAIN_ERRORS as exc:
        session.rollback()
        doc = _get_or_404(model, doc_id)
        return _refuse(template, str(exc), **context(session, doc))
    flash(done_message % {"number": doc.number}, "success")
    return redirect(url_for(list_endpoint))


@bp.route("/receipts/<int:receipt_id>/cancel", methods=["POST"])
def receipt_cancel(receipt_id: int):
    return _cancel_document(GoodsReceipt, receipt_id, receiving_service.cancel_receipt, "inventory/stock_receipt.html",
                            _receipt_context, _("入库单 %(number)s 已作废，库存未改变。"), "stock.receipts")


@bp.route("/receipts/<int:receipt_id>/reverse", methods=["POST"])
def receipt_reverse(receipt_id: int):
    session = get_session()
    doc = _get_or_404(GoodsReceipt, receipt_id)
    form = ReverseForm()
    note = form.parse()
    if note is None:
        return _refuse("inventory/stock_receipt.html", form_errors(form), **_receipt_context(session, doc, form))
    try:
        reversal = receiving_service.reverse_receipt(session, receipt_id, actor_id=_actor(), note=note)
        session.flush()
    except DOMAIN_ERRORS as exc:
        session.rollback()
        doc = _get_or_404(GoodsReceipt, receipt_id)
        return _refuse("inventory/stock_receipt.html", str(exc), **_receipt_context(session, doc, form))
    flash(_("已冲销：冲销单 %(number)s 已过账。", number=reversal.number), "success")
    return redirect(url_for("stock.receipt", receipt_id=reversal.id))


# --- transfers ------------------------------------------------------------------------------


@bp.route("/transfers")
def transfers():
    page = transfer_service.list_transfers(get_session(), page=_page())
    return render_template("inventory/stock_transfers.html", page=page)


@bp.route("/transfers/new", methods=["GET", "POST"])
def transfer_new():
    session = get_session()
    form = TransferForm(session)
    if request.method == "POST":
        if not form.parse():
            return _refuse("inventory/stock_transfer_form.html", form_errors(form), form=form)
        try:
            doc = transfer_service.create_transfer(session, **form.values, actor_id=_actor())
            session.flush()
        except DOMAIN_ERRORS as exc:
            attach_error(form, exc)
            return _refuse("inventory/stock_transfer_form.html", str(exc), form=form)
        flash(_("调拨单 %(number)s 已生成，按先到期先出分配了批次。打印拣货单，拣货后过账。", number=doc.number), "success")
        return redirect(url_for("stock.transfer", transfer_id=doc.id))
    if request.method == "GET":
        _preset_locations(session, form)
    return render_template("inventory/stock_transfer_form.html", form=form)


def _preset_locations(session, form: TransferForm) -> None:
    """?from=CODE&to=CODE (links from the stock home) preselect the locations."""
    for arg, field in (("from", form.from_location_id), ("to", form.to_location_id)):
        code = clean_text(request.args.get(arg)).strip()[:32]
        if code:
            loc = session.scalar(select(Location).where(Location.code == code))
            if loc is not None:
                field.data = str(loc.id)


def _transfer_context(session, doc: Transfer) -> dict:
    lines = []
    needed: dict[int, int] = {}
    for line in doc.lines:
        needed[line.product_id] = needed.get(line.product_id, 0) + line.qty_milli
    for line in doc.lines:
        available = level(session, doc.from_location_id, line.product_id)
        lines.append({"line": line, "available": available,
                      "short": doc.status == DocStatus.DRAFT and available < needed[line.product_id]})
    users = _user_names(session, {doc.created_by_id, doc.posted_by_id})
    return {"transfer": doc, "lines": lines, "users": users,
            "any_short": any(r["short"] for r in lines)}


@bp.route("/transfers/<int:transfer_id>")
def transfer(transfer_id: int):
    session = get_session()
    doc = _get_or_404(Transfer, transfer_id)
    return render_template("inventory/stock_transfer.html", **_transfer_context(session, doc))


@bp.route("/transfers/<int:transfer_id>/pick-list")
def transfer_pick_list(transfer_id: int):
    session = get_session()
    doc = _get_or_404(Transfer, transfer_id)
    rows = transfer_service.pick_list(session, transfer_id)
    users = _user_names(session, {doc.created_by_id})
    return render_template("inventory/stock_pick_list.html", transfer=doc, rows=rows, users=users,
                           printed_at=local_today())


@bp.route("/transfers/<int:transfer_id>/post", methods=["POST"])
def transfer_post(transfer_id: int):
    session = get_session()
    doc = _get_or_404(Transfer, transfer_id)
    try:
        transfer_service.post_transfer(session, transfer_id, actor_id=_actor())
        session.flush()
    except DOMAIN_ERRORS as exc:
        session.rollback()
        doc = _get_or_404(Transfer, transfer_id)
        return _refuse("inventory/stock_transfer.html", str(exc), **_transfer_context(session, doc))
    flash(_("调拨单 %(number)s 已过账：货品已从%(source)s调入%(target)s。", number=doc.number,
            source=doc.from_location.name, target=doc.to_location.name), "success")
    return redirect(url_for("stock.transfer", transfer_id=transfer_id))


@bp.route("/transfers/<int:transfer_id>/cancel", methods=["POST"])
def transfer_cancel(transfer_id: int):
    return _cancel_document(Transfer, transfer_id, transfer_service.cancel_transfer, "inventory/stock_transfer.html",
                            _transfer_context, _("调拨单 %(number)s 已作废，库存未改变。"), "stock.transfers")


# --- counts ---------------------------------------------------------------------------------


@bp.route("/counts", methods=["GET", "POST"])
def counts():
    session = get_session()
    form = CountStartForm(session)
    if request.method == "POST":
        if not form.parse():
            return _refuse("inventory/stock_counts.html", form_errors(form), **_counts_context(session, form))
        try:
            count = count_service.start_count(session, **form.values, actor_id=_actor())
            session.flush()
        except DOMAIN_ERRORS as exc:
            attach_error(form, exc)
            return _refuse("inventory/stock_counts.html", str(exc), **_counts_context(session, form))
        return redirect(url_for("stock.count", count_id=count.id))
    if request.args.get("location"):
        form.location_id.data = request.args.get("location")[:12]
    return render_template("inventory/stock_counts.html", **_counts_context(session, form))


def _counts_context(session, form) -> dict:
    open_counts = session.scalars(
        select(StockCount).where(StockCount.status == DocStatus.DRAFT).order_by(StockCount.id.desc())
    ).all()
    recent = session.scalars(
        select(StockCount).where(StockCount.status != DocStatus.DRAFT).order_by(StockCount.id.desc()).limit(20)
    ).all()
    return {"form": form, "open_counts": open_counts, "recent": recent}


def _count_context(session, count: StockCount, line_form=None, post_form=None) -> dict:
    variances = count_service.count_variances(session, count.id)
    return {"count": count, "variances": variances, "line_form": line_form or CountLineForm(),
            "post_form": post_form or CountPostForm(),
            "with_variance": sum(1 for v in variances if v["variance"])}


@bp.route("/counts/<int:count_id>", methods=["GET", "POST"])
def count(count_id: int):
    session = get_session()
    doc = _get_or_404(StockCount, count_id)
    if request.method == "GET":
        return render_template("inventory/stock_count.html", **_count_context(session, doc))
    form = CountLineForm()
    if doc.status != DocStatus.DRAFT:
        return _refuse("inventory/stock_count.html", _("该盘点单已结束，不能再录入"), **_count_context(session, doc, form))
    parsed = form.parse(session)
    if parsed is None:
        return _refuse("inventory/stock_count.html", form_errors(form), **_count_context(session, doc, form))
    product, counted = parsed
    try:
        count_service.record_count_line(session, count_id, product_id=product.id, counted_qty_milli=counted,
                                        actor_id=_actor())
        session.flush()
    except DOMAIN_ERRORS as exc:
        session.rollback()
        doc = _get_or_404(StockCount, count_id)
        return _refuse("inventory/stock_count.html", str(exc), **_count_context(session, doc, form))
    flash(_("已记录：%(name)s 实盘 %(qty)s", name=product.name, qty=_qty(counted, product)), "success")
    return redirect(url_for("stock.count", count_id=count_id, _anchor="scan"))


@bp.route("/counts/<int:count_id>/post", methods=["POST"])
def count_post(count_id: int):
    session = get_session()
    doc = _get_or_404(StockCount, count_id)
    form = CountPostForm()
    reason = form.parse()
    if reason is None:
        return _refuse("inventory/stock_count.html", form_errors(form), **_count_context(session, doc, post_form=form))
    try:
        count_service.post_count(session, count_id, reason=reason, actor_id=_actor())
        session.flush()
    except DOMAIN_ERRORS as exc:
        session.rollback()
        doc = _get_or_404(StockCount, count_id)
        return _refuse("inventory/stock_count.html", str(exc), **_count_context(session, doc, post_form=form))
    flash(_("盘点单 %(number)s 已过账，差异已调整到账面。", number=doc.number), "success")
    return redirect(url_for("stock.count", count_id=count_id))


@bp.route("/counts/<int:count_id>/cancel", methods=["POST"])
def count_cancel(count_id: int):
    return _cancel_document(StockCount, count_id, count_service.cancel_count, "inventory/stock_count.html",
                            _count_context, _("盘点单 %(number)s 已取消，账面未改变。"), "stock.counts")


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
