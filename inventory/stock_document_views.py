"""Stock pages for the documents: goods receipts, transfers and counts (on the stock blueprint of
``inventory.stock_views``: same URLs, same endpoint names)."""
from __future__ import annotations

from typing import Optional

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from . import counts as count_service
from . import receiving as receiving_service
from . import transfers as transfer_service
from .documents import DocStatus, GoodsReceipt, StockCount, Transfer
from .ledger import level
from .localtime import local_today
from .models import Location
from .money import line_amount_fen
from .stock_forms import (
    CountLineForm,
    CountPostForm,
    CountStartForm,
    ReceiptForm,
    ReverseForm,
    TransferForm,
    attach_error,
    clean_text,
    form_errors,
)
from .stock_views import DOMAIN_ERRORS, _actor, _get_or_404, _page, _qty, _refuse, _user_names, bp
from .web import get_session

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
