"""The bill check's pages (对账) for the finance staff (area "reconcile": managers, auditors,
admins): choose a provider and a day, upload that day's trade bill (read in memory: the file's name
is never used), see the outcome grouped as matched / 长款 / 短款 / 金额不符 with counts and totals,
explain a difference with a note, check the day again.

Thin: parse the form, call pos.payments.bills / reconcile, render. A bad file or form is answered
with the page, its Chinese message and status 422; nothing is stored.

自动获取 (shown when the provider's merchant credentials are stored, pos.payments.credentials)
downloads the day's bill through the provider's adapter with no transaction open, then imports it
as an upload would be imported.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from inventory.localtime import local_today
from inventory.web import get_session
from pos.core.web import client_ip, requires
from pos.models import User
from pos.payments import bills, credentials, reconcile
from pos.payments.providers import ProviderError
from pos.payments.bill_models import BILL_PROVIDERS, ProviderBill

bp = Blueprint("reconcile", __name__, url_prefix="/reconcile")

PROVIDER_LABELS = {"wechat": _l("微信支付"), "alipay": _l("支付宝")}
RECENT_BILLS = 20


class BadForm(ValueError):
    """A field a person can fix; its message is shown on the page."""


def _provider(value: str | None) -> str:
    value = (value or "").strip() or "wechat"
    if value not in BILL_PROVIDERS:
        raise BadForm(_("支付渠道应为微信支付或支付宝"))
    return value


def _day(value: str | None) -> dt.date:
    text = (value or "").strip()
    if not text:
        return local_today() - dt.timedelta(days=1)
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise BadForm(_("日期格式应为 YYYY-MM-DD")) from None
    if not 2000 <= day.year <= 2099 or day > local_today():
        raise BadForm(_("日期超出范围"))
    return day


def _page(provider: str, day: dt.date, *, error: str | None = None, status: int = 200):
    s = get_session()
    check = reconcile.check_day(s, provider, day)
    importer = s.get(User, check.bill.imported_by_id) if check.bill and check.bill.imported_by_id else None
    recent = s.execute(select(ProviderBill.provider, ProviderBill.bill_date, ProviderBill.line_count,
                              ProviderBill.open_items, ProviderBill.checked_at)
                       .order_by(ProviderBill.bill_date.desc(), ProviderBill.provider).limit(RECENT_BILLS)).all()
    groups = [(outcome, reconcile.OUTCOME_LABELS[outcome], check.group(outcome), check.totals(outcome))
              for outcome in reconcile.OUTCOMES]
    notes_by = {u.id: u.display_name for u in s.scalars(select(User).where(
        User.id.in_({i.note.by_id for i in check.items if i.note is not None})))}
    return render_template("pos/payments/reconcile.html", provider=provider, day=day, check=check, groups=groups,
                           importer=importer, recent=recent, notes_by=notes_by, error=error,
                           providers=PROVIDER_LABELS, today=local_today(),
                           can_fetch=credentials.configured(current_app)[provider]), status


def _back(provider: str, day: dt.date, anchor: str | None = None):
    return redirect(url_for("reconcile.index", provider=provider, day=day.isoformat(), _anchor=anchor))


@bp.route("")
@requires("reconcile")
def index():
    try:
        provider, day = _provider(request.args.get("provider")), _day(request.args.get("day"))
    except BadForm as error:
        return _page("wechat", local_today() - dt.timedelta(days=1), error=str(error), status=400)
    return _page(provider, day)


@bp.post("/import")
@requires("reconcile")
def import_bill():
    try:
        provider, day = _provider(request.form.get("provider")), _day(request.form.get("day"))
    except BadForm as error:
        return _page("wechat", local_today() - dt.timedelta(days=1), error=str(error), status=422)
    upload = request.files.get("bill")
    if upload is None:
        return _page(provider, day, error=_("请选择账单文件（CSV 或 ZIP）"), status=422)
    data = upload.stream.read(bills.MAX_BILL_BYTES + 1)   # in memory; the file's name is not used
    if not data:
        return _page(provider, day, error=_("请选择账单文件（CSV 或 ZIP）"), status=422)
    s = get_session()
    try:
        done = bills.import_bill(s, provider=provider, day=day, data=data, user_id=current_user.id)
    except bills.BillError as error:
        s.rollback()
        return _page(provider, day, error=_("账单未导入：%(reason)s", reason=str(error)), status=422)
    except IntegrityError:   # someone else imported the same day at the same moment
        s.rollback()
        return _page(provider, day, error=_("同一天的账单刚被他人导入，请查看后再试"), status=409)
    reconcile.record_check(s, reconcile.check_day(s, provider, day))
    if done.replaced:
        flash(_("已用新文件替换 %(day)s 的账单（%(n)s 行）", day=day.isoformat(), n=done.lines), "success")
    else:
        flash(_("已导入 %(day)s 的账单（%(n)s 行）", day=day.isoformat(), n=done.lines), "success")
    return _back(provider, day)


@bp.post("/fetch")
@requires("reconcile")
def fetch_bill():
    """自动获取: the day's bill from the provider, with the stored merchant credentials."""
    try:
        provider, day = _provider(request.form.get("provider")), _day(request.form.get("day"))
    except BadForm as error:
        return _page("wechat", local_today() - dt.timedelta(days=1), error=str(error), status=422)
    adapter = credentials.provider_for(current_app, provider)
    if adapter is None:
        return _page(provider, day, error=_("未配置%(provider)s商户，请上传账单文件", provider=PROVIDER_LABELS[provider]),
                     status=422)
    s = get_session()
    s.commit()  # nothing held while the provider answers
    try:
        data = adapter.download_bill(day)
    except ProviderError as error:
        return _page(provider, day, error=_("无法从%(provider)s获取 %(day)s 的账单：%(reason)s",
                                            provider=PROVIDER_LABELS[provider], day=day.isoformat(),
                                            reason=str(error)), status=422)
    try:
        done = bills.import_bill(s, provider=provider, day=day, data=data, user_id=current_user.id, source="download")
    except bills.BillError as error:
        s.rollback()
        return _page(provider, day, error=_("账单未导入：%(reason)s", reason=str(error)), status=422)
    except IntegrityError:
        s.rollback()
        return _page(provider, day, error=_("同一天的账单刚被他人导入，请查看后再试"), status=409)
    reconcile.record_check(s, reconcile.check_day(s, provider, day))
    flash(_("已从%(provider)s获取 %(day)s 的账单（%(n)s 行）", provider=PROVIDER_LABELS[provider],
            day=day.isoformat(), n=done.lines), "success")
    return _back(provider, day)


@bp.post("/check")
@requires("reconcile")
def recheck():
    try:
        provider, day = _provider(request.form.get("provider")), _day(request.form.get("day"))
    except BadForm as error:
        return _page("wechat", local_today() - dt.timedelta(days=1), error=str(error), status=422)
    s = get_session()
    reconcile.record_check(s, reconcile.check_day(s, provider, day))
    flash(_("已重新核对"), "success")
    return _back(provider, day)


@bp.post("/note")
@requires("reconcile")
def note():
    try:
        provider, day = _provider(request.form.get("provider")), _day(request.form.get("day"))
    except BadForm as error:
        return _page("wechat", local_today() - dt.timedelta(days=1), error=str(error), status=422)
    s = get_session()
    try:
        reconcile.explain(s, provider=provider, day=day, key=request.form.get("key", ""),
                          note=request.form.get("note", ""), user_id=current_user.id, ip=client_ip())
    except bills.BillError as error:
        s.rollback()
        return _page(provider, day, error=str(error), status=422)
    except IntegrityError:   # explained by someone else at the same moment
        s.rollback()
        return _page(provider, day, error=_("这一差异项刚被他人说明"), status=409)
    flash(_("说明已保存"), "success")
    return _back(provider, day, "differences")
