"""The admin's user management pages: every change is audited and takes effect at once."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from inventory.models import AuditEvent
from pos.accounts import users as accounts
from pos.core.db import session_scope
from pos.models import Role, User
from tests.conftest import TEST_PASSWORD, AuthActions, csrf_token

NEW_PASSWORD = "fresh-start-77"


# Reads go through a short session of their own: on SQLite every transaction takes the write
# lock (BEGIN IMMEDIATE), so a test session left open would block the next request.
def read(app, fn):
    with session_scope(app) as s:
        return fn(s)


def user_named(app, username: str) -> User | None:
    return read(app, lambda s: accounts.find_user(s, username))


def user_count(app) -> int:
    return read(app, lambda s: s.scalar(select(func.count()).select_from(User)))


def events(app, action: str | None = None, user_id: int | None = None) -> list[AuditEvent]:
    """Audit events, optionally of one action and about one user."""
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if user_id is not None:
        stmt = stmt.where(AuditEvent.entity == "user", AuditEvent.entity_id == str(user_id))
    return read(app, lambda s: s.scalars(stmt).all())


def logged_in(client) -> bool:
    response = client.get("/account")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    return False


@pytest.fixture
def admin(app, client, auth, make_user):
    """The admin's id, logged in on ``client``."""
    admin_id = make_user("root", "admin")
    assert auth.login("root").status_code == 302
    return admin_id


def create(client, **fields):
    data = {"username": "lily", "display_name": "李丽", "role": "cashier", "password": "long-enough-1", "pin": ""}
    data.update(fields)
    data["csrf_token"] = csrf_token(client, "/admin/users")
    return client.post("/admin/users", data=data)


def act(client, user_id: int, action: str, prefix: str, **fields):
    path = f"/admin/users/{user_id}"
    data = {"action": action, f"{prefix}-csrf_token": csrf_token(client, path)}
    data.update({f"{prefix}-{k}": v for k, v in fields.items()})
    return client.post(path, data=data)


# --- create ----------------------------------------------------------------------------------

def test_admin_creates_a_user(app, client, admin):
    before = user_count(app)
    response = create(client, username="lily", display_name="李丽", role="cashier", pin="2580")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/admin/users"
    assert user_count(app) == before + 1

    lily = user_named(app, "lily")
    assert (lily.display_name, lily.role, lily.active) == ("李丽", Role.CASHIER, True)
    page = client.get("/admin/users").get_data(as_text=True)
    assert "已创建用户 lily" in page
    assert "李丽" in page

    (event,) = events(app, "user.create", lily.id)
    assert event.user_id == admin
    assert event.entity == "user" and event.entity_id == str(lily.id)
    assert event.before is None
    assert json.loads(event.after) == {"username": "lily", "role": "cashier", "display_name": "李丽"}

    # the new user logs in with the password and the PIN
    other = AuthActions(app.test_client())
    assert other.login("lily", "long-enough-1").status_code == 302
    assert AuthActions(app.test_client()).login_pin("lily", "2580").status_code == 302


@pytest.mark.parametrize("username", ["lily", "LILY", " Lily "])
def test_duplicate_username_is_refused_and_nothing_is_written(app, client, admin, make_user, username):
    make_user("lily", "auditor")
    users_before, events_before = user_count(app), len(events(app))
    response = create(client, username=username, role="manager")
    assert response.status_code == 400
    assert "已存在" in response.get_data(as_text=True)
    assert user_count(app) == users_before
    assert len(events(app)) == events_before
    assert user_named(app, "lily").role == Role.AUDITOR


@pytest.mark.parametrize("fields,message", [
    ({"password": "short1"}, "密码至少需要 8 位"),
    ({"password": "1234567890"}, "密码不能全是数字"),
    ({"username": "李丽"}, "用户名只能包含"),
    ({"role": "owner"}, None),  # not one of the choices
    ({"pin": "12"}, "PIN 必须是 4 到 6 位数字"),
])
def test_invalid_new_user_is_refused(app, client, admin, fields, message):
    before, events_before = user_count(app), len(events(app))
    response = create(client, **fields)
    assert response.status_code == 400
    if message:
        assert message in response.get_data(as_text=True)
    assert user_count(app) == before
    assert len(events(app)) == events_before


# --- deactivate ------------------------------------------------------------------------------

def test_deactivate_ends_the_users_session_and_login(app, client, admin, make_user):
    lily_id = make_user("lily", "cashier")
    lily = AuthActions(app.test_client())
    assert lily.login("lily").status_code == 302
    assert logged_in(lily.client)

    response = act(client, lily_id, "deactivate", "toggle")
    assert response.status_code == 302
    assert user_named(app, "lily").active is False
    assert not logged_in(lily.client)
    assert lily.login("lily").status_code == 401

    (event,) = events(app, "user.deactivate")
    assert event.user_id == admin and event.entity_id == str(lily_id)
    assert json.loads(event.before) == {"active": True}
    assert json.loads(event.after) == {"active": False}

    # and back
    assert act(client, lily_id, "activate", "toggle").status_code == 302
    assert user_named(app, "lily").active is True
    assert len(events(app, "user.activate")) == 1
    assert lily.login("lily").status_code == 302


# --- reset password --------------------------------------------------------------------------

def test_reset_password(app, client, admin, make_user):
    lily_id = make_user("lily", "cashier")
    lily = AuthActions(app.test_client())
    lily.login("lily")
    response = act(client, lily_id, "reset", "reset", password=NEW_PASSWORD)
    assert response.status_code == 302
    assert not logged_in(lily.client)  # she logs in again with the new password
    assert lily.login("lily", TEST_PASSWORD).status_code == 401
    assert lily.login("lily", NEW_PASSWORD).status_code == 302

    (event,) = events(app, "user.password_reset")
    assert event.user_id == admin and event.entity_id == str(lily_id)
    before, after = json.loads(event.before), json.loads(event.after)
    assert after["session_version"] == before["session_version"] + 1
    method = accounts.PASSWORD_METHOD.split(":")[0]  # every stored hash starts with its method's name
    assert NEW_PASSWORD not in event.after and method not in event.after + event.before


def test_reset_password_refuses_a_weak_one(app, client, admin, make_user):
    lily_id = make_user("lily", "cashier")
    response = act(client, lily_id, "reset", "reset", password="87654321")
    assert response.status_code == 400
    assert "密码不能全是数字" in response.get_data(as_text=True)
    assert events(app, "user.password_reset") == []
    assert AuthActions(app.test_client()).login("lily").status_code == 302


# --- role ------------------------------------------------------------------------------------

def test_set_role(app, client, admin, make_user):
    lily_id = make_user("lily", "cashier")
    lily = AuthActions(app.test_client())
    lily.login("lily")
    assert lily.client.get("/dashboard").status_code == 403

    response = act(client, lily_id, "role", "role", role="manager")
    assert response.status_code == 302
    assert user_named(app, "lily").role == Role.MANAGER

    (event,) = events(app, "user.role_change")
    assert event.user_id == admin and event.entity_id == str(lily_id)
    assert json.loads(event.before) == {"role": "cashier"}
    assert json.loads(event.after) == {"role": "manager"}

    # the old session (with the old role) has ended; a new login has the new role's pages
    assert not logged_in(lily.client)
    assert lily.login("lily").status_code == 302
    assert lily.client.get("/dashboard").status_code == 200


def test_unknown_role_is_refused(app, client, admin, make_user):
    lily_id = make_user("lily", "cashier")
    assert act(client, lily_id, "role", "role", role="owner").status_code == 400
    assert user_named(app, "lily").role == Role.CASHIER
    assert events(app, "user.role_change") == []


# --- PIN -------------------------------------------------------------------------------------

def test_set_pin(app, client, admin, make_user):
    lily_id = make_user("lily", "cashier")
    response = act(client, lily_id, "pin", "pin", pin="97531")
    assert response.status_code == 302
    assert AuthActions(app.test_client()).login_pin("lily", "97531").status_code == 302

    (event,) = events(app, "user.pin_set")
    assert event.user_id == admin and event.entity_id == str(lily_id)
    assert json.loads(event.before) == {"has_pin": False}
    assert json.loads(event.after) == {"has_pin": True}
    assert "97531" not in event.after


def test_bad_pin_is_refused(app, client, admin, make_user):
    lily_id = make_user("lily", "cashier")
    response = act(client, lily_id, "pin", "pin", pin="12a4")
    assert response.status_code == 400
    assert "PIN 必须是 4 到 6 位数字" in response.get_data(as_text=True)
    assert user_named(app, "lily").pin_hash is None
    assert events(app, "user.pin_set") == []


# --- the admin's own account -----------------------------------------------------------------

def test_admin_cannot_deactivate_themself(app, client, admin):
    response = act(client, admin, "deactivate", "toggle")
    assert response.status_code == 400
    assert "不能停用自己的账号" in response.get_data(as_text=True)
    assert user_named(app, "root").active is True
    assert events(app, "user.deactivate") == []
    assert logged_in(client)


@pytest.mark.parametrize("role", ["manager", "cashier", "restocker", "auditor"])
def test_admin_cannot_demote_themself(app, client, admin, role):
    response = act(client, admin, "role", "role", role=role)
    assert response.status_code == 400
    assert "不能取消自己的管理员角色" in response.get_data(as_text=True)
    assert user_named(app, "root").role == Role.ADMIN
    assert events(app, "user.role_change") == []
    assert client.get("/admin/users").status_code == 200


def test_unknown_user_is_404(client, admin):
    assert client.get("/admin/users/999999").status_code == 404


# --- nobody else -----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["manager", "cashier", "restocker", "auditor"])
def test_non_admins_are_refused(app, client, auth, make_user, role):
    make_user("someone", role)
    victim_id = make_user("lily", "cashier")
    auth.login("someone")
    token = csrf_token(client, "/account")
    users_before, events_before = user_count(app), len(events(app))

    assert client.get("/admin/users").status_code == 403
    assert client.get(f"/admin/users/{victim_id}").status_code == 403
    response = client.post("/admin/users", data={
        "csrf_token": token, "username": "sneaky", "display_name": "x", "role": "admin", "password": "long-enough-1",
    })
    assert response.status_code == 403
    response = client.post(f"/admin/users/{victim_id}", data={
        "action": "role", "role-csrf_token": token, "role-role": "admin",
    })
    assert response.status_code == 403

    assert user_count(app) == users_before
    assert len(events(app)) == events_before
    assert user_named(app, "lily").role == Role.CASHIER
