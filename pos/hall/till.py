"""The hall cashier screen: one page whose script (static/js/till.js) talks to the JSON API under
/api/v1, and the receipt preview rendered on the server from ``pos.sales.reading.sale_view``.

The page itself only hands the script what it cannot ask the API for: the tills, the hall's
discount limit and 抹零 setting, the payment methods' names and the CSRF token.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.localtime import format_local

from pos.sales import reading
from pos.hall import shifts as shift_service
from pos.core.db import get_session
from pos.core.errors import NotFound
from pos.sales.escpos import text_lines
from pos.sales.receipts import build_receipt
from pos.sales.reading import payment_label
from pos.models import PaymentMethod, Sale, SaleStatus, Till, User
from pos.payments import credentials
from pos.hall.settings import hall_settings
from pos.core.web import requires

bp = Blueprint("till", __name__, url_prefix="/till")

# The payment methods a hall cashier takes, in the order of the payment dialog's keys 1–6.
# (Bank transfer is for group orders on account, never at a till.)
TILL_METHODS = (
    PaymentMethod.CASH,
    PaymentMethod.WECHAT,
    PaymentMethod.ALIPAY,
    PaymentMethod.UNIONPAY,
    PaymentMethod.UNION_CARD,
    PaymentMethod.VOUCHER,
)

# Coins and notes counted when a shift closes, in fen: every value pos.hall.shifts accepts.
DENOMINATION_LABELS = {
    10000: _l("100 元"),
    5000: _l("50 元"),
    2000: _l("20 元"),
    1000: _l("10 元"),
    500: _l("5 元"),
    200: _l("2 元"),
    100: _l("1 元"),
    50: _l("5 角"),
    20: _l("2 角"),
    10: _l("1 角"),
    5: _l("5 分"),
    2: _l("2 分"),
    1: _l("1 分"),
}
FEN_COINS = frozenset({5, 2, 1})


def count_denominations(rounding_to_jiao: bool) -> list[tuple[int, str]]:
    """The rows of the closing count, largest first: the 分 coins only where 抹零 is off (with
    抹零 on no cash sale takes them, and without them nobody could count a drawer to the fen)."""
    return [(fen, DENOMINATION_LABELS[fen]) for fen in shift_service.DENOMINATIONS
            if not (rounding_to_jiao and fen in FEN_COINS)]


RECENT_RECEIPTS = 10


def recent_receipts(s: Session, till_id: int, *, limit: int = RECENT_RECEIPTS) -> list[dict[str, Any]]:
    """The till's last sales, newest first: what its 最近小票 list offers for a reprint."""
    rows = s.execute(
        select(Sale.receipt_no, Sale.sold_at, Sale.total_fen, Sale.status, Sale.reprint_count, User.display_name)
        .outerjoin(User, User.id == Sale.cashier_id)
        .where(Sale.till_id == till_id)
        .order_by(Sale.sold_at.desc(), Sale.id.desc())
        .limit(limit)
    ).all()
    return [{"receipt_no": r[0], "sold_at": r[1].isoformat(), "sold_at_local": format_local(r[1]),
             "total_fen": r[2], "status": SaleStatus(r[3]).value, "reprint_count": r[4], "cashier": r[5]}
            for r in rows]


@bp.route("")
@requires("till")
def index():
    session = get_session()
    tills = session.scalars(select(Till).where(Till.active.is_(True)).order_by(Till.code)).all()
    settings = hall_settings(session)
    config = {
        "tills": [{"code": t.code, "name": t.name, "paper_mm": 58 if (t.paper_columns or 48) < 40 else 80}
                  for t in tills],
        "till": request.args.get("till") or None,
        "discount_limit_percent": settings.discount_limit_percent,
        "rounding_to_jiao": settings.rounding_to_jiao,
        "methods": [{"code": m.value, "label": payment_label(m)} for m in TILL_METHODS],
        "method_labels": {m.value: payment_label(m) for m in PaymentMethod},
        "denominations": [{"fen": fen, "label": str(label)}
                          for fen, label in count_denominations(settings.rounding_to_jiao)],
        "user": {"id": current_user.id, "name": current_user.display_name},
        "api": request.script_root + "/api/v1",
        "receipt_url": url_for("till.receipt", receipt_no="RECEIPT_NO"),
        "sw_url": url_for("till.service_worker"),
        "sw_scope": url_for("till.index"),
        "hall_name": settings.hall_name,
        "paycode_providers": paycode_providers(),
    }
    return render_template("pos/hall/till.html", config=config, till_scripts=till_scripts())


def paycode_providers() -> list[str]:
    """The providers whose merchant credentials are set: the till takes their payment codes
    (static/js/till_paycode.js); without them the methods stay manual tenders."""
    return [name for name, ready in credentials.configured(current_app).items() if ready]


# --- working offline: the service worker and what it caches -------------------------------------------

# What the till page loads, in order: the pricing rule, the offline catalogue, payment codes, the till.
TILL_SCRIPTS = ("js/pricing.js", "js/till_offline.js", "js/till_paycode.js", "js/till.js")
TILL_STYLES = ("css/app.css", "css/till.css")


def till_scripts() -> list[str]:
    return list(TILL_SCRIPTS)


def offline_version(assets: list[str]) -> str:
    """A hash of the till page's template and every asset it caches: a deploy changing any of
    them changes the service worker, which then fetches them all again."""
    digest = hashlib.sha256()
    template = Path(current_app.root_path).parent / "templates" / "pos" / "hall" / "till.html"
    for path in [template] + [Path(current_app.static_folder) / name for name in assets] + \
            [Path(current_app.static_folder) / "js" / "till_sw.js"]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]


@bp.route("/sw.js")
def service_worker():
    """The till's service worker (static/js/till_sw.js) with its version and what it caches. Its
    scope is the till page (/till, one level above the script: hence Service-Worker-Allowed).
    Public on purpose (tests/accounts/test_roles.py): the browser checks it for updates in the
    background, also after the session ended, and it holds no data."""
    assets = list(TILL_STYLES) + till_scripts()
    page = url_for("till.index")
    body = (Path(current_app.static_folder) / "js" / "till_sw.js").read_text(encoding="utf-8")
    body = (body.replace('"__VERSION__"', json.dumps(offline_version(assets)))
            .replace('"__PAGE__"', json.dumps(page))
            .replace("__ASSETS__", json.dumps([url_for("static", filename=a) for a in assets])))
    response = current_app.response_class(body, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = page
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/receipts/<receipt_no>")
@requires("till")
def receipt(receipt_no: str):
    """The receipt as HTML: a fragment for the till's preview (fetched by the script), a whole
    page when opened on its own."""
    session = get_session()
    try:
        sale = reading.get_sale(session, receipt_no)
    except NotFound:
        abort(404)
    till = session.get(Till, sale.till_id) if sale.till_id else None
    columns = till.paper_columns if till else 48
    fragment = request.args.get("fragment") == "1" or request.headers.get("X-Requested-With") == "fetch"
    template = "pos/sales/receipt_preview.html" if fragment else "pos/hall/till_receipt_page.html"
    return render_template(template, **receipt_context(build_receipt(session, sale.id, columns=columns), columns))


def receipt_context(receipt, columns: int) -> dict:
    """What templates/pos/sales/receipt_preview.html needs: the document, its printed lines, its QR."""
    return {"receipt": receipt, "columns": columns, "lines": text_lines(receipt, columns),
            "qr_svg": qr_svg(receipt.qr_payload) if receipt.qr_payload else ""}


def qr_svg(payload: str) -> str:
    import qrcode
    from qrcode.image.svg import SvgPathImage

    return qrcode.make(payload, image_factory=SvgPathImage, box_size=8, border=2).to_string(encoding="unicode")
