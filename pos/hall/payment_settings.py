"""The admin's page for the payment providers' merchant credentials (issue 15):
``/settings/payments``. Set, replace or remove the WeChat Pay and the Alipay credentials; the page
shows only 已配置 with the merchant number masked, never a stored value (a replacement is typed in
full). Stored by pos.payments.credentials in the instance folder (mode 600), never in the
database; the audit row says who changed which provider's credentials, without any value."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user

from inventory.audit import record
from pos.core.db import get_session
from pos.core.forms import EmptyForm
from pos.core.web import requires
from pos.payments import credentials
from pos.payments.providers import ALIPAY, WECHAT

bp = Blueprint("payment_settings", __name__, url_prefix="/settings/payments")

PROVIDER_LABELS = {WECHAT: _l("微信支付"), ALIPAY: _l("支付宝")}
# (field, label, multi-line PEM)
FIELD_LABELS = {
    WECHAT: (("mchid", _l("商户号"), False), ("appid", _l("AppID"), False),
             ("serial_no", _l("商户 API 证书序列号"), False), ("private_key_pem", _l("商户 API 私钥（PEM）"), True),
             ("apiv3_key", _l("APIv3 密钥"), False), ("public_key_id", _l("微信支付公钥 ID"), False),
             ("public_key_pem", _l("微信支付公钥（PEM）"), True)),
    ALIPAY: (("app_id", _l("应用 AppID"), False), ("app_private_key_pem", _l("应用私钥（PEM）"), True),
             ("alipay_public_key_pem", _l("支付宝公钥（PEM）"), True)),
}


def _page(status: int = 200):
    app = current_app
    state = {name: {"configured": credentials.read(app, name) is not None, "masked": credentials.masked_id(app, name)}
             for name in credentials.FIELDS}
    return render_template("pos/hall/payment_settings.html", form=EmptyForm(), state=state, labels=PROVIDER_LABELS,
                           fields=FIELD_LABELS), status


@bp.route("")
@requires("site")
def index():
    return _page()


@bp.route("/<provider>", methods=["POST"])
@requires("site")
def change(provider: str):
    if provider not in credentials.FIELDS:
        abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    action = request.form.get("action")
    label = PROVIDER_LABELS[provider]
    if action == "remove":
        removed = credentials.remove(current_app, provider)
        what = "removed"
        flash(_("%(name)s商户信息已删除，该支付方式恢复为手工记账", name=label) if removed else _("没有修改"), "success")
        if not removed:
            return redirect(url_for("payment_settings.index"))
    elif action == "save":
        values = {field: request.form.get(field, "") for field in credentials.FIELDS[provider]}
        try:
            credentials.write(current_app, provider, values)
        except credentials.CredentialsError as error:
            names = {f: str(lbl) for f, lbl, _pem in FIELD_LABELS[provider]}
            flash(_("%(name)s：%(field)s 未填写或格式不正确", name=label, field=names.get(error.field, "")), "error")
            return _page(400)
        what = "set"
        flash(_("%(name)s商户信息已保存", name=label), "success")
    else:
        abort(400)
    # audited without any value: who changed which provider's credentials, and how
    record(get_session(), user_id=current_user.id, action="payments.credentials_changed", entity="payment_credentials",
           entity_id=provider, after={"provider": provider, "change": what})
    return redirect(url_for("payment_settings.index"))
