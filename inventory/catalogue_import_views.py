"""Catalogue pages for importing and exporting the catalogue file (on the catalogue blueprint of
``inventory.catalogue_views``: same URLs, same endpoint names)."""
from __future__ import annotations

import io
import json
import secrets
import time
from pathlib import Path
from urllib.parse import quote

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from . import catalogue_export, catalogue_import, catalogue_sheet
from .catalogue_forms import ImportConfirmForm, ImportForm
from .catalogue_views import IMPORT_KEEP_SECONDS, IMPORT_TOKEN_RE, _actor, bp
from .errors import InventoryError
from .localtime import local_today
from .money import format_yuan
from .web import get_session

# --- import and export --------------------------------------------------------------------------------
#
# The preview and the confirmation are two requests, and a browser cannot send a chosen file
# again by itself. The uploaded bytes are kept in the instance folder under a random token
# (instance/imports/<token>.bin, with the uploader and file name beside it) and the confirm
# form carries only the token: what is written is exactly the file the manager previewed, not
# whatever is chosen again, and the file never travels back to the browser. Only the uploader
# can confirm it; a confirmed file is deleted, and unconfirmed ones after a day.

def _imports_dir() -> Path:
    return Path(current_app.instance_path) / "imports"


def _keep_upload(filename: str, data: bytes) -> str:
    folder = _imports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in folder.glob("*"):
        try:
            if now - old.stat().st_mtime > IMPORT_KEEP_SECONDS:
                old.unlink()
        except OSError:
            pass
    token = secrets.token_hex(16)
    (folder / f"{token}.bin").write_bytes(data)
    (folder / f"{token}.json").write_text(json.dumps(
        {"filename": filename, "user_id": _actor(), "at": now}, ensure_ascii=False), encoding="utf-8")
    return token


def _kept_upload(token: str) -> tuple[str, bytes] | None:
    if not token or not IMPORT_TOKEN_RE.fullmatch(token):
        return None
    folder = _imports_dir()
    try:
        meta = json.loads((folder / f"{token}.json").read_text(encoding="utf-8"))
        data = (folder / f"{token}.bin").read_bytes()
    except (OSError, ValueError):
        return None
    if meta.get("user_id") != _actor():
        return None
    return meta.get("filename") or "import.csv", data


def _forget_upload(token: str) -> None:
    for suffix in (".bin", ".json"):
        try:
            (_imports_dir() / f"{token}{suffix}").unlink()
        except OSError:
            pass


COLUMN_NOTES = {
    "sku": _l("必填，按它新建或更新"),
    "name": _l("新商品必填"),
    "barcodes": _l("多个用 | 分隔；核对校验位"),
    "category": _l("没有的分类会新建"),
    "unit": _l("piece（件）或 kg（千克，称重销售）"),
    "price_fen": _l("以分为单位的整数：3800 即 ¥38.00"),
    "vat": _l("9、13 或 exempt（免税）"),
    "supplier": _l("按名称匹配，没有的会新建"),
    "origin_county": _l("不填则用供应商的产地"),
    "certificate_no": _l("认定证书编号；留空表示未认定"),
    "certificate_valid_from": _l("YYYY-MM-DD"),
    "certificate_valid_to": _l("YYYY-MM-DD"),
}


def _import_page(status: int = 200, **context):
    context.setdefault("form", ImportForm(prefix="imp", formdata=None))
    context.setdefault("preview", None)
    labels = dict(zip(catalogue_sheet.COLUMNS, catalogue_sheet.CHINESE_HEADERS))
    labels.update(zip(catalogue_sheet.OPTIONAL_COLUMNS, catalogue_sheet.OPTIONAL_CHINESE))
    columns = [(key, labels[key], COLUMN_NOTES.get(key, "")) for key in catalogue_sheet.COLUMNS]
    if context["preview"] is not None:
        context.setdefault("counts", {"create": context["preview"].created, "update": context["preview"].updated,
                                      "unchanged": context["preview"].unchanged})
    shown = dict(labels, price_fen=_("售价"))  # the preview shows prices in yuan
    return render_template("inventory/import.html", columns=columns, column_labels=shown, **context), status


@bp.route("/import", methods=["GET", "POST"])
def import_upload():
    s = get_session()
    if request.method == "GET":
        return _import_page()
    form = ImportForm(prefix="imp")
    if not form.validate_on_submit():
        flash(_("未导入：%(reason)s", reason="；".join(str(e) for e in form.file.errors) or _("请重试")), "error")
        return _import_page(400, form=form)
    upload = form.file.data
    filename, data = upload.filename or "", upload.read()
    try:
        preview = catalogue_import.preview_import(s, filename, data)
    except InventoryError as error:
        form.file.errors = list(form.file.errors) + [str(error)]
        flash(_("未导入：%(reason)s", reason=str(error)), "error")
        return _import_page(400, form=form)
    s.rollback()  # a preview writes nothing
    if preview.errors:
        flash(_("文件中有 %(n)s 处错误，全部改正后才能导入；本次没有写入任何内容。", n=len(preview.errors)), "error")
        return _import_page(400, preview=preview, filename=filename, confirm_form=None)
    token = _keep_upload(filename, data) if preview.rows else None
    confirm = ImportConfirmForm(prefix="confirm", token=token) if token else None
    return _import_page(preview=preview, filename=filename, confirm_form=confirm)


@bp.route("/import/confirm", methods=["POST"])
def import_confirm():
    s = get_session()
    form = ImportConfirmForm(prefix="confirm")
    kept = _kept_upload(form.token.data or "") if form.validate_on_submit() else None
    if kept is None:
        flash(_("导入文件已失效，请重新上传"), "error")
        return _import_page(400)
    filename, data = kept
    try:
        result = catalogue_import.apply_import(s, filename, data, actor_id=_actor())
    except catalogue_sheet.ImportRefused as refused:
        s.rollback()
        preview = catalogue_import.preview_import(s, filename, data)
        s.rollback()
        if not preview.errors:  # refused by a rule the preview did not foresee
            preview.errors = list(refused.errors)
        flash(_("未导入：预览之后商品目录有了变化，文件中有 %(n)s 处错误；本次没有写入任何内容。",
                n=len(preview.errors)), "error")
        return _import_page(400, preview=preview, filename=filename, confirm_form=None)
    except InventoryError as error:
        flash(_("未导入：%(reason)s", reason=str(error)), "error")
        return _import_page(400)
    _forget_upload(form.token.data)
    flask_session["catalogue_import_result"] = {
        "filename": filename, "created": result.created, "updated": result.updated, "unchanged": result.unchanged,
        "suppliers": result.suppliers_created, "categories": result.categories_created,
        "certificates": result.certificates_created, "certificates_changed": result.certificates_changed,
    }
    return redirect(url_for("catalogue.import_result"))


@bp.route("/import/result")
def import_result():
    result = flask_session.get("catalogue_import_result")
    if not result:
        return redirect(url_for("catalogue.import_upload"))
    return render_template("inventory/import_result.html", result=result)


EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@bp.route("/export.<fmt>")
def export(fmt: str):
    """The whole catalogue as a file the import reads back. The file name is Chinese for the
    manager (RFC 6266 ``filename*``) with a plain ASCII one for software that knows no better."""
    if fmt not in EXPORT_TYPES:
        abort(404)
    data = catalogue_export.export_catalogue(get_session(), fmt)
    day = f"{local_today():%Y%m%d}"
    response = send_file(io.BytesIO(data), mimetype=EXPORT_TYPES[fmt], max_age=0)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="songtao-catalogue-{day}.{fmt}"; '
        f"filename*=UTF-8''{quote(f'商品目录-{day}.{fmt}')}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("cat_yuan")
def _cat_yuan(fen):
    return "" if fen is None else format_yuan(fen)


UNIT_WORDS = {"piece": _l("件"), "kg": _l("千克")}


@bp.app_template_filter("cat_cell")
def _cat_cell(text, column: str):
    """An import preview's cell as the manager reads it: prices in yuan, units in words."""
    text = "" if text is None else str(text)
    if column == "price_fen" and text.isdigit():
        return format_yuan(int(text))
    if column == "unit" and text in UNIT_WORDS:
        return str(UNIT_WORDS[text])
    return text.replace("|", " | ")
