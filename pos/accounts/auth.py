"""Login (password or PIN), logout, and one's own account: password, PIN, language."""
from __future__ import annotations

import threading
from typing import Optional

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from pos.accounts import users as accounts
from pos.core.db import get_session, session_scope
from pos.models import User
from pos.core.forms import LanguageForm, LoginForm, PasswordChangeForm, PinForm, PinLoginForm
from pos.core.web import client_ip, landing_url, requires, safe_next

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
    """Returns (user, error message, status). Three short steps, so that no database transaction
    is open while a password is hashed: a read (the throttle's verdict and the stored hash), the
    hashing (a bounded pool), and a write (the attempt, logged under the account's one spelling).
    A locked account or address is refused before any hashing."""
    ip = client_ip()
    get_session().commit()  # the request's own transaction (it may have loaded a user) ends first
    try:
        with session_scope(read_only=True) as reader:
            candidate = accounts.login_candidate(reader, _policy(), username=username, ip=ip, by_pin=by_pin)
        ok = accounts.verify_secret(candidate.stored_hash, secret)
    except accounts.LoginRefused as refused:
        return None, str(refused), 429
    except accounts.HashingBusy as busy:
        return None, str(busy), 503
    with session_scope() as writer:
        accounts.record_login(writer, username=username, ip=ip, user_id=candidate.user_id, ok=ok)
    if not ok:
        return None, (_("工号或 PIN 不正确") if by_pin else _("用户名或密码不正确")), 401
    return get_session().get(User, candidate.user_id), None, 200


def approver_for_pin(pin: str, *, till_code: Optional[str], purpose: str) -> Optional[int]:
    """The manager or admin whose PIN a cashier typed for an approval (void, refund, discount,
    drawer, reprint), throttled like PIN login: by the till and by the cashier asking, locked
    after a few wrong PINs, every refusal audited. None for a wrong PIN; LoginRefused when
    locked; HashingBusy under a flood. Ends the request's transaction first: nothing is held while
    the PINs are hashed."""
    get_session().commit()
    requester = current_user.id if current_user.is_authenticated else None
    keys = accounts.approval_keys(till_code, requester)
    policy = accounts.ApprovalPolicy(window_minutes=current_app.config["LOGIN_WINDOW_MINUTES"],
                                     lock_after=current_app.config["APPROVAL_LOCK_AFTER"])
    with session_scope(read_only=True) as reader:
        candidates = accounts.approval_candidates(reader, policy, keys=keys)
    approver = accounts.match_pin(candidates, pin)
    with session_scope() as writer:
        accounts.record_approval(writer, keys=keys, ip=client_ip(), approver_id=approver,
                                 requester_id=requester, purpose=purpose)
    return approver


# At most one login is worked on at a time in a process (a page, a database read, a hash): a flood
# of failed logins then takes at most one core from the tills, and the attempts that find the door
# taken get a short 429 at once, with no page to render.
LOGIN_AT_ONCE = threading.BoundedSemaphore(1)
LOGIN_WAIT_SECONDS = 0.1  # ok-float: seconds


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method != "POST":
        return _login()
    if not LOGIN_AT_ONCE.acquire(timeout=LOGIN_WAIT_SECONDS):
        response = make_response(_("登录请求太多，请稍候再试"), 429)
        response.headers["Retry-After"] = "1"
        response.mimetype = "text/plain"
        return response
    try:
        return _login()
    finally:
        LOGIN_AT_ONCE.release()


def _login():
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
    return render_template("pos/accounts/login.html", form=form, pin_form=pin_form, mode=mode), status


@bp.route("/logout", methods=["POST"])
@requires("account")
def logout():
    # Ends this session and every copy of its cookie: a cookie replayed after logout is refused.
    accounts.end_sessions(get_session(), user=current_user._get_current_object())
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
    return render_template("pos/accounts/account.html", pw_form=pw_form, pin_form=pin_form, lang_form=lang_form), status
