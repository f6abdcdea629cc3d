"""One group order's page and its actions (confirm, pick, deliver, close, cancel, return, pay,
repay), its printouts (order confirmation, delivery note) and the open balances per buyer.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Mapping, Optional

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from inventory.localtime import local_today, parse_local_date, to_local, utcnow
from inventory.money import AmountError, format_yuan, parse_qty_milli, parse_yuan
from inventory.stock_forms import clean_text
from inventory.web import get_session
from pos.group import delivery, documents, orders, payments
from pos.core.errors import NotFound, PosError
from pos.models import Sale
from pos.core.web import requires
from pos.group.views import bp
from pos.group.views.common import (
    REFUSALS, client_id_arg, current_actor, get_order_or_404, id_or_404, new_client_id, now_local_input,
    parse_local_datetime, weighed_line,
)


MAX_REASON = 200
MAX_REF = 80
_ZERO = re.compile(r"0*(\.0*)?")

# The actions of the order page, in the order their forms are shown.
ACTIONS = ("confirm", "pick", "deliver", "close", "cancel", "return", "pay", "repay")


# --- one order and its actions -------------------------------------------------------------------


def _order_view(order_id: int) -> dict:
    try:
        return documents.order_view(get_session(), order_id)
    except NotFound:
        abort(404)


def _order_page(order_id: int, status: int = 200, failed: Optional[str] = None, posted: Optional[Mapping] = None):
    view = _order_view(order_id)
    return render_template("pos/group/order.html", **{**view, "actions": set(view["actions"])}, view=view,
                           failed=failed, posted=posted or {}, now_local=now_local_input(), today=local_today(),
                           client_ids={a: new_client_id() for a in ("deliver", "return", "pay", "repay")}), status


@bp.route("/<int:order_id>")
@requires("dashboard")
def order(order_id: int):
    return _order_page(id_or_404(order_id))


def _reason(form: Mapping, *, required_message) -> str:
    reason = clean_text(form.get("reason", "")).strip()
    if not reason:
        raise PosError(required_message, "reason")
    if len(reason) > MAX_REASON:
        raise PosError(_("原因最多 %(n)s 个字", n=MAX_REASON), "reason")
    return reason


def _money(form: Mapping, name: str = "amount") -> int:
    text = clean_text(form.get(name, "")).strip()
    if not text:
        raise PosError(_("请输入金额（元）"), name)
    try:
        fen = parse_yuan(text)
    except AmountError as exc:
        raise PosError(str(exc), name) from None
    if fen <= 0:
        raise PosError(_("金额必须大于零"), name)
    return fen


def _ref(form: Mapping) -> str:
    ref = clean_text(form.get("ref", "")).strip()
    if not ref:
        raise PosError(_("请填写银行转账流水号"), "ref")
    if len(ref) > MAX_REF:
        raise PosError(_("流水号最多 %(n)s 个字", n=MAX_REF), "ref")
    return ref


def _day(form: Mapping, name: str) -> dt.date:
    text = clean_text(form.get(name, "")).strip()
    if not text:
        raise PosError(_("请填写日期"), name)
    try:
        return parse_local_date(text)
    except ValueError:
        raise PosError(_("日期格式应为 YYYY-MM-DD：%(text)s", text=text[:20]), name) from None


def _typed_zero(text: str) -> bool:
    return bool(_ZERO.fullmatch(text)) and text != "."


def _deliver_quantities(view: dict, form: Mapping) -> dict[int, int]:
    """{order_line_id: qty_milli} from the deliver form's per-line inputs (qty-<line id>), in the
    line's unit; an empty or zero input delivers nothing of that line. Whether the quantities can
    be delivered is the domain's to say."""
    quantities: dict[int, int] = {}
    for line in view["lines"]:
        text = clean_text(form.get(f"qty-{line['id']}", "")).strip()
        if not text or _typed_zero(text):
            continue
        try:
            quantities[line["id"]] = parse_qty_milli(text, by_weight=weighed_line(line))
        except AmountError as exc:
            raise PosError(_("%(name)s：%(error)s", name=line["name"], error=str(exc)), f"qty-{line['id']}") from None
    return quantities


def _return_lines(view: dict, form: Mapping) -> tuple[str, list[tuple[int, int, bool]]]:
    """The delivery (送货单号) being returned against and its lines (sale_line_id, qty, back to stock)."""
    receipt_no = clean_text(form.get("receipt_no", "")).strip()
    sent = next((d for d in view["deliveries"] if d["receipt_no"] == receipt_no), None)
    if sent is None:
        raise PosError(_("请选择要退货的送货单"), "receipt_no")
    out = []
    for line in sent["lines"]:
        sale_line_id = line["sale_line_id"]
        text = clean_text(form.get(f"qty-{sale_line_id}", "")).strip()
        if not text or _typed_zero(text):
            continue
        try:
            qty = parse_qty_milli(text, by_weight=weighed_line(line))
        except AmountError as exc:
            raise PosError(_("%(name)s：%(error)s", name=line["name"], error=str(exc)), f"qty-{sale_line_id}") from None
        out.append((sale_line_id, qty, form.get(f"restock-{sale_line_id}") == "1"))
    if not out:
        raise PosError(_("请至少填写一个商品的退货数量"), "qty")
    return receipt_no, out


@bp.route("/<int:order_id>/<any(confirm, pick, deliver, close, cancel, return, pay, repay):action>", methods=["POST"])
@requires("dashboard")
def order_action(order_id: int, action: str):
    s = get_session()
    order = get_order_or_404(order_id)
    order_no = order.order_no
    form = request.form
    try:
        if action == "confirm":
            orders.confirm_order(s, order.id, actor_id=current_actor())
            done = _("订单 %(no)s 已确认，物流基地已预留库存。", no=order_no)
        elif action == "pick":
            orders.pick_order(s, order.id, actor_id=current_actor())
            done = _("订单 %(no)s 已拣货出库（先到期先出）。", no=order_no)
        elif action == "deliver":
            view = documents.order_view(s, order.id)
            quantities = _deliver_quantities(view, form)
            at_text = clean_text(form.get("delivered_at", "")).strip()
            delivered_at = parse_local_datetime(at_text) if at_text else None
            received_by = clean_text(form.get("received_by", "")).strip() or None
            result = delivery.deliver(s, order.id, quantities=quantities, delivered_at=delivered_at,
                                    received_by=received_by, actor_id=current_actor(),
                                    client_delivery_id=client_id_arg(form.get("client_id")))
            done = (_("已送货：送货单 %(no)s，金额 %(amount)s。", no=result.receipt_no,
                       amount=format_yuan(result.total_fen)) if result.created
                    else _("这次送货已经登记过（送货单 %(no)s），没有重复记录。", no=result.receipt_no))
        elif action == "close":
            delivery.close_remainder(s, order.id, reason=_reason(form, required_message=_("请填写结束原因")),
                                   actor_id=current_actor())
            done = _("订单 %(no)s 剩余未送的货品已退回物流基地，订单已结束。", no=order_no)
        elif action == "cancel":
            orders.cancel_order(s, order.id, reason=_reason(form, required_message=_("请填写取消原因")),
                                actor_id=current_actor())
            done = _("订单 %(no)s 已取消，预留的库存已释放。", no=order_no)
        elif action == "return":
            view = documents.order_view(s, order.id)
            receipt_no, lines = _return_lines(view, form)
            result = delivery.return_goods(s, order.id, receipt_no=receipt_no, lines=lines,
                                         reason=_reason(form, required_message=_("请填写退货原因")), actor_id=current_actor(),
                                         client_refund_id=client_id_arg(form.get("client_id")))
            done = _("已登记退货 %(no)s，金额 %(amount)s。", no=result.refund_no, amount=format_yuan(result.total_fen))
        elif action == "pay":
            amount = _money(form)
            payments.record_payment(s, order.id, amount_fen=amount, ref=_ref(form),
                                  received_on=_day(form, "received_on"), actor_id=current_actor(),
                                  note=clean_text(form.get("note", "")).strip()[:200] or None,
                                  client_payment_id=client_id_arg(form.get("client_id")))
            done = _("已登记收款 %(amount)s。", amount=format_yuan(amount))
        else:  # repay
            amount = _money(form)
            payments.record_repayment(s, order.id, amount_fen=amount, ref=_ref(form), paid_on=_day(form, "paid_on"),
                                    actor_id=current_actor(), note=clean_text(form.get("note", "")).strip()[:200] or None,
                                    client_payment_id=client_id_arg(form.get("client_id")))
            done = _("已登记退还货款 %(amount)s。", amount=format_yuan(amount))
        s.flush()
    except REFUSALS as exc:
        s.rollback()
        flash(str(exc), "error")
        return _order_page(order_id, 422, failed=action, posted=form)
    flash(done, "success")
    return redirect(url_for("group.order", order_id=order_id))


# --- printable pages ------------------------------------------------------------------------------


@bp.route("/<int:order_id>/confirmation")
@requires("dashboard")
def confirmation(order_id: int):
    view = _order_view(id_or_404(order_id))
    return render_template("pos/group/confirmation.html", **view, view=view, printed_at=_printed_at())


@bp.route("/deliveries/<int:sale_id>")
@requires("dashboard")
def delivery_note(sale_id: int):
    s = get_session()
    id_or_404(sale_id)
    sale = s.get(Sale, sale_id)
    if sale is None or sale.group_order_id is None:
        abort(404)
    try:
        note = documents.delivery_note(s, sale_id)
    except NotFound:
        abort(404)
    return render_template("pos/group/delivery_note.html", **note, note=note, printed_at=_printed_at())


def _printed_at() -> str:
    return to_local(utcnow()).strftime("%Y-%m-%d %H:%M")


# --- open balances --------------------------------------------------------------------------------


@bp.route("/balances")
@requires("dashboard")
def balances():
    rows = payments.open_balances(get_session())
    totals = {key: sum(r[key] for r in rows) for key in ("delivered_fen", "returned_fen", "paid_fen", "balance_fen")}
    return render_template("pos/group/balances.html", rows=rows, totals=totals)
