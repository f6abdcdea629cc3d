"""Shelf label pages (明码标价): choose products by category, search or ids, and get an A4 sheet
to print in the browser, or send the labels to a till's printer. Thin: parse, call pos.hall.labels,
render. Every view requires("inventory") — the people who keep the catalogue and the shelves.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from inventory.localtime import local_today
from inventory.models import Category
from inventory.web import get_session
from pos.hall import labels
from pos.models import Till
from pos.core.web import requires

bp = Blueprint("labels", __name__, url_prefix="/labels")


def _int(value) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if 0 < n < 2**31 else None


def _chosen(args) -> tuple[list[int], int | None, str]:
    ids = [i for i in (_int(v) for v in args.getlist("ids")) if i is not None]
    category_id = _int(args.get("category"))
    q = (args.get("q") or "").strip()[:60]
    return labels.find_products(get_session(), category_id=category_id, q=q, ids=ids), category_id, q


def _svg(code):
    svg = labels.ean13_svg(code)
    return Markup(svg) if svg else None  # made here from digits only: safe to inline


@bp.route("")
@requires("inventory")
def index():
    s = get_session()
    product_ids, category_id, q = _chosen(request.args)
    found = labels.shelf_labels(s, product_ids, local_today())
    categories = s.scalars(select(Category).order_by(Category.sort_order, Category.name)).all()
    tills = s.scalars(select(Till).where(Till.active.is_(True)).order_by(Till.code)).all()
    return render_template("pos/hall/labels.html", found=found, categories=categories, category_id=category_id,
                           q=q, tills=tills, searched=bool(request.args))


@bp.route("/sheet")
@requires("inventory")
def sheet():
    product_ids, _category, _q = _chosen(request.args)
    found = labels.shelf_labels(get_session(), product_ids, local_today())
    return render_template("pos/hall/labels_sheet.html", labels=found, svg=_svg, cert_mark=labels.CERT_MARK)


@bp.route("/print", methods=["POST"])
@requires("inventory")
def print_labels():
    from pos.hall import printing

    s = get_session()
    ids = [i for i in (_int(v) for v in request.form.getlist("ids")) if i is not None]
    till = s.scalars(select(Till).where(Till.code == (request.form.get("till") or "")[:20])).first()
    back = redirect(url_for("labels.index", ids=ids))
    if till is None:
        flash(_("请选择收银台的打印机"), "error")
        return back
    found = labels.shelf_labels(s, labels.find_products(s, ids=ids), local_today())
    if not found:
        flash(_("请先选择商品"), "error")
        return back
    data = b"".join(labels.label_escpos(label, till.paper_columns) for label in found)
    count, code = len(found), till.code
    # queued for the printer's worker thread: the request never waits for the printer
    outcome = printing.job_outcome(s, printing.request_labels(s, code, data, user_id=current_user.id))
    if outcome.status == "failed":  # refused at once: a URI not allowed, a printer with too much waiting
        flash(_("打印失败：%(error)s", error=outcome.error), "error")
    else:
        flash(_("已发送 %(n)s 张标签到 %(till)s 的打印机", n=count, till=code), "success")
    return back
