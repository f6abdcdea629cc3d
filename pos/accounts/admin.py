"""The admin's user management: create, deactivate, reset password, set role. All audited."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from inventory.models import AuditEvent
from pos.accounts import users as accounts
from pos.core.db import get_session
from pos.core.forms import EmptyForm, PasswordResetForm, PinForm, UserCreateForm, UserRoleForm
from pos.models import User
from pos.core.web import requires

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/users", methods=["GET", "POST"])
@requires("users")
def users():
    session = get_session()
    form = UserCreateForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                user = accounts.create_user(
                    session,
                    username=form.username.data,
                    display_name=form.display_name.data,
                    role=form.role.data,
                    password=form.password.data,
                    pin=form.pin.data or None,
                    actor_id=current_user.id,
                )
                flash(_("已创建用户 %(name)s", name=user.username), "success")
                return redirect(url_for("admin.users"))
            except accounts.AccountError as error:
                flash(str(error), "error")
        status = 400
    rows = session.scalars(select(User).order_by(User.active.desc(), User.role, User.username)).all()
    return render_template("pos/accounts/admin_users.html", users=rows, form=form), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@requires("users")
def user_detail(user_id: int):
    session = get_session()
    user = session.get(User, user_id) or abort(404)
    role_form = UserRoleForm(prefix="role", role=user.role.value)
    reset_form = PasswordResetForm(prefix="reset")
    pin_form = PinForm(prefix="pin")
    toggle_form = EmptyForm(prefix="toggle")
    status = 200
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "role" and role_form.validate_on_submit():
                accounts.set_role(session, user=user, role=role_form.role.data, actor_id=current_user.id)
                flash(_("角色已修改"), "success")
                return redirect(url_for("admin.user_detail", user_id=user.id))
            if action == "reset" and reset_form.validate_on_submit():
                accounts.reset_password(session, user=user, new=reset_form.password.data, actor_id=current_user.id)
                flash(_("密码已重置，该用户需用新密码重新登录"), "success")
                return redirect(url_for("admin.user_detail", user_id=user.id))
            if action == "pin" and pin_form.validate_on_submit():
                accounts.set_pin(session, user=user, pin=pin_form.pin.data, actor_id=current_user.id)
                flash(_("PIN 已设置"), "success")
                return redirect(url_for("admin.user_detail", user_id=user.id))
            if action in ("deactivate", "activate") and toggle_form.validate_on_submit():
                accounts.set_active(session, user=user, active=action == "activate", actor_id=current_user.id)
                flash(_("账号已启用") if action == "activate" else _("账号已停用"), "success")
                return redirect(url_for("admin.user_detail", user_id=user.id))
            status = 400
        except accounts.AccountError as error:
            flash(str(error), "error")
            status = 400
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.entity == "user", AuditEvent.entity_id == str(user.id))
        .order_by(AuditEvent.at.desc()).limit(50)
    ).all()
    return render_template(
        "pos/accounts/admin_user.html", user=user, role_form=role_form, reset_form=reset_form,
        pin_form=pin_form, toggle_form=toggle_form, events=events,
    ), status
