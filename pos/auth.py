"""Login (password or PIN), logout, and one's own account: password, PIN, language."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from pos import accounts
from pos.db import get_session
from pos.forms import LanguageForm, LoginForm, PasswordChangeForm, PinForm, PinLoginForm
from pos.web import client_ip, landing_url, requires, safe_next

bp = Blueprint("auth", __name__)


def _policy() -> accounts.ThrottlePolicy:
    c = current_app.config
    return accounts.ThrottlePolicy(
        window_minutes=c["LOGIN_WINDOW_MINUTES"],
        slow_after=c["LOGIN_SLOW_AFTER"],
        lock_after=c["LOGIN_LOCK_AFTER"],
        ip_lock_after=c["LOGIN_IP_LOCK_AFTER"],
        delay_unit_seconds=c["LOGIN_DELAY_UNIT_SECONDS"],
        delay_max_seconds=c["LOGIN_DELAY_MAX_SECONDS"],
    )


def _try_login(username: str, secret: str, *, by_pin: bool):
    """Returns (user, error message). Attempts are logged and throttled either way."""
    session = get_session()
    try:
        delay = accounts.throttle(session, _policy(), username=username, ip=client_ip())
    except accounts.LoginRefused as refused:
        return None, str(refused), 429
    if delay:
        time.sleep(delay)
    user = accounts.authenticate(session, username=username, secret=secret, ip=client_ip(), by_pin=by_pin)
    # The attempt is recorded whatever happens next (a failed login answers 401, which would
    # otherwise roll the request's session back and forget the failure).
    session.commit()
    if user is None:
        return None, (_("工号或 PIN 不正确") if by_pin else _("用户名或密码不正确")), 401
    return user, None, 200


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(landing_url(current_user))
    form = LoginForm(prefix="pw")
    pin_form = PinLoginForm(prefix="pin")
    mode = request.args.get("mode", "password")
    status = 200
    if request.method == "POST":
        if "pin-pin" in request.form:
            mode = "pin"
            if pin_form.validate_on_submit():
                user, error, status = _try_login(pin_form.username.data, pin_form.pin.data, by_pin=True)
                if user:
                    login_user(user)
                    return redirect(safe_next(pin_form.next.data) or landing_url(user))
                flash(error, "error")
            else:
                status = 400
        elif form.validate_on_submit():
            user, error, status = _try_login(form.username.data, form.password.data, by_pin=False)
            if user:
                login_user(user)
                return redirect(safe_next(form.next.data) or landing_url(user))
            flash(error, "error")
        else:
            status = 400
    else:
        form.next.data = pin_form.next.data = request.args.get("next", "")
    return render_template("pos/login.html", form=form, pin_form=pin_form, mode=mode), status


@bp.route("/logout", methods=["POST"])
@requires("account")
def logout():
    logout_user()
    flash(_("已退出登录"), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@requires("account")
def account():
    session = get_session()
    pw_form = PasswordChangeForm(prefix="pw")
    pin_form = PinForm(prefix="pin")
    lang_form = LanguageForm(prefix="lang", locale=current_user.locale or "")
    status = 200
    if request.method == "POST":
        try:
            action = request.form.get("action")
            if action == "password" and pw_form.validate_on_submit():
                user = current_user._get_current_object()
                accounts.change_password(session, user=user, current=pw_form.current.data, new=pw_form.new.data)
                # The session version changed: keep this session. Flask-Login needs the real user
                # here: given the current_user proxy, the proxy would resolve to itself forever.
                login_user(user)
                flash(_("密码已修改，其他设备上的登录已失效"), "success")
                return redirect(url_for("auth.account"))
            if action == "pin" and pin_form.validate_on_submit():
                accounts.set_pin(session, user=current_user, pin=pin_form.pin.data, actor_id=current_user.id)
                flash(_("PIN 已设置"), "success")
                return redirect(url_for("auth.account"))
            if action == "language" and lang_form.validate_on_submit():
                accounts.set_locale(session, user=current_user, locale=lang_form.locale.data or None)
                return redirect(url_for("auth.account"))
            status = 400
        except accounts.AccountError as error:
            flash(str(error), "error")
            status = 400
    return render_template("pos/account.html", pw_form=pw_form, pin_form=pin_form, lang_form=lang_form), status
