"""Login by password and PIN, CSRF, throttling, safe redirects, logout, password change, language."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from inventory.localtime import utcnow

from inventory.models import AuditEvent
from pos.accounts import users as accounts
from pos.core.db import session_scope
from pos.models import LoginAttempt, User
from tests.conftest import TEST_PASSWORD, AuthActions, csrf_token

CSRF_MESSAGE = "表单已过期或缺少安全校验，请刷新页面后重试"
BAD_LOGIN = "用户名或密码不正确"
BAD_PIN = "工号或 PIN 不正确"
LOCKED = "登录失败次数过多"


def path_of(response) -> str:
    return urlsplit(response.headers["Location"]).path


def is_logged_in(client) -> bool:
    """The account page opens for any logged-in user and redirects anyone else to /login."""
    response = client.get("/account")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and path_of(response) == "/login"
    return False


def client_from(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


# Reads go through a short session of their own: on SQLite every transaction takes the write
# lock (BEGIN IMMEDIATE), so a test session left open would block the next request.
def read(app, fn):
    with session_scope(app) as s:
        return fn(s)


def count(app, model) -> int:
    return read(app, lambda s: s.scalar(select(func.count()).select_from(model)))


def attempts(app) -> list[bool]:
    return read(app, lambda s: s.scalars(select(LoginAttempt.ok).order_by(LoginAttempt.id)).all())


def user_named(app, username: str):
    return read(app, lambda s: accounts.find_user(s, username))


# --- CSRF ------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_login_without_a_valid_csrf_token_is_refused(app, client, make_user, token):
    make_user("ann", "manager")
    csrf_token(client, "/login")  # the client has a session (and a real token) it does not send
    data = {"pw-username": "ann", "pw-password": TEST_PASSWORD}
    if token is not None:
        data["pw-csrf_token"] = token
    response = client.post("/login", data=data)
    assert response.status_code == 400
    assert CSRF_MESSAGE in response.get_data(as_text=True)
    assert 'lang="zh-CN"' in response.get_data(as_text=True)
    assert not is_logged_in(client)
    assert count(app, LoginAttempt) == 0  # refused before any password was checked


def test_csrf_refusal_as_json(client):
    response = client.post("/login", data={}, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.get_json() == {"error": CSRF_MESSAGE}


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_admin_form_without_a_valid_csrf_token_changes_nothing(app, client, auth, make_user, token):
    make_user("root", "admin")
    auth.login("root")
    data = {"username": "newbie", "display_name": "新人", "role": "cashier", "password": "long-enough-1"}
    if token is not None:
        data["csrf_token"] = token
    before = count(app, User)
    response = client.post("/admin/users", data=data)
    assert response.status_code == 400
    assert CSRF_MESSAGE in response.get_data(as_text=True)
    assert count(app, User) == before
    assert user_named(app, "newbie") is None


# --- password and PIN ------------------------------------------------------------------------

def test_password_login_success(app, client, auth, make_user):
    make_user("ann", "manager")
    response = auth.login("ann")
    assert response.status_code == 302
    assert is_logged_in(client)
    assert user_named(app, "ann").last_login_at is not None
    assert attempts(app) == [True]


def test_username_is_case_insensitive(client, auth, make_user):
    make_user("Ann", "manager")
    assert auth.login("ann").status_code == 302


@pytest.mark.parametrize("username,password", [
    ("ann", "wrong-password-1"),
    ("nobody", TEST_PASSWORD),  # an unknown name gets the same answer
])
def test_password_login_failure(app, client, auth, make_user, username, password):
    make_user("ann", "manager")
    response = auth.login(username, password)
    assert response.status_code == 401
    assert BAD_LOGIN in response.get_data(as_text=True)
    assert not is_logged_in(client)
    # the failed attempt is remembered although the request answered 401
    assert attempts(app) == [False]


def test_pin_login(client, auth, make_user):
    make_user("c1", "cashier", pin="4321")
    response = auth.login_pin("c1", "4321")
    assert response.status_code == 302
    assert path_of(response) == "/till"
    assert is_logged_in(client)


@pytest.mark.parametrize("pin", ["1234", "43210"])
def test_wrong_pin_is_refused(client, auth, make_user, pin):
    make_user("c1", "cashier", pin="4321")
    response = auth.login_pin("c1", pin)
    assert response.status_code == 401
    assert BAD_PIN in response.get_data(as_text=True)
    assert not is_logged_in(client)


def test_pin_login_without_a_pin_set_is_refused(client, auth, make_user):
    make_user("c1", "cashier")
    assert auth.login_pin("c1", "4321").status_code == 401
    assert not is_logged_in(client)


def test_password_is_not_a_pin_and_pin_is_not_a_password(client, auth, make_user):
    make_user("c1", "cashier", pin="4321")
    assert auth.login("c1", "4321").status_code == 401
    assert auth.login_pin("c1", TEST_PASSWORD).status_code == 400  # not 4-6 digits: form error
    assert not is_logged_in(client)


def test_inactive_user_cannot_log_in(app, client, auth, make_user):
    user_id = make_user("gone", "cashier", pin="4321")
    with session_scope(app) as s:
        s.get(User, user_id).active = False
    response = auth.login("gone")
    assert response.status_code == 401
    assert BAD_LOGIN in response.get_data(as_text=True)
    assert auth.login_pin("gone", "4321").status_code == 401
    assert not is_logged_in(client)


# --- throttling ------------------------------------------------------------------------------

def test_login_delay_is_zero_then_doubles_up_to_the_cap():
    policy = accounts.ThrottlePolicy(slow_after=3, delay_unit_seconds=0.5, delay_max_seconds=4)
    delays = [accounts.login_delay(policy, n) for n in range(10)]
    assert delays == [0, 0, 0, 0.5, 1, 2, 4, 4, 4, 4]


@pytest.mark.parametrize("failures", [0, 2, 3, 7, 30, 100, 5000, 10**9])
def test_login_delay_never_exceeds_the_cap(failures):
    policy = accounts.ThrottlePolicy(slow_after=3, delay_unit_seconds=0.5, delay_max_seconds=4)
    delay = accounts.login_delay(policy, failures)
    assert 0 <= delay <= 4
    assert delay == (0 if failures < 3 else min(0.5 * 2 ** min(failures - 3, 10), 4))


def test_login_delay_with_the_test_configuration_is_zero():
    policy = accounts.ThrottlePolicy(delay_unit_seconds=0, delay_max_seconds=0)
    assert all(accounts.login_delay(policy, n) == 0 for n in (0, 3, 8, 1000))


def test_user_is_locked_after_repeated_failures(app, make_user):
    make_user("ann", "manager")
    make_user("bob", "manager")
    lock_after = app.config["LOGIN_LOCK_AFTER"]
    assert lock_after == 8
    attacker = AuthActions(client_from(app, "10.0.0.1"))
    for _ in range(lock_after):
        assert attacker.login("ann", "wrong-password-1").status_code == 401
    response = attacker.login("ann")  # the right password, too late
    assert response.status_code == 429
    assert LOCKED in response.get_data(as_text=True)
    assert not is_logged_in(attacker.client)
    # the lock is on the user, wherever the attempt comes from
    elsewhere = AuthActions(client_from(app, "10.0.0.2"))
    assert elsewhere.login("ann").status_code == 429
    # another user from another address logs in
    bob = AuthActions(client_from(app, "10.0.0.3"))
    assert bob.login("bob").status_code == 302
    assert is_logged_in(bob.client)


def test_one_short_of_the_lock_still_logs_in(app, make_user):
    make_user("ann", "manager")
    client = AuthActions(client_from(app, "10.0.0.1"))
    for _ in range(app.config["LOGIN_LOCK_AFTER"] - 1):
        assert client.login("ann", "wrong-password-1").status_code == 401
    assert client.login("ann").status_code == 302


def test_address_is_locked_after_failures_across_many_usernames(app, make_user):
    make_user("ann", "manager")
    ip_lock_after = app.config["LOGIN_IP_LOCK_AFTER"]
    assert ip_lock_after > app.config["LOGIN_LOCK_AFTER"]
    sprayer = AuthActions(client_from(app, "10.9.9.9"))
    for n in range(ip_lock_after):
        # one failure per name: no single user reaches its own lock
        assert sprayer.login(f"guess{n}", "wrong-password-1").status_code == 401
    response = sprayer.login("ann")
    assert response.status_code == 429
    assert LOCKED in response.get_data(as_text=True)
    # the same user from another address is not locked
    assert AuthActions(client_from(app, "10.0.0.2")).login("ann").status_code == 302


def test_success_resets_the_users_failure_count(app, make_user):
    make_user("ann", "manager")
    lock_after = app.config["LOGIN_LOCK_AFTER"]
    client = AuthActions(client_from(app, "10.0.0.1"))
    for _ in range(lock_after - 1):
        assert client.login("ann", "wrong-password-1").status_code == 401
    assert client.login("ann").status_code == 302
    client.logout()
    for _ in range(lock_after - 1):
        assert client.login("ann", "wrong-password-1").status_code == 401
    # 2 × (lock_after − 1) failures in the window, but only lock_after − 1 since the success
    assert client.login("ann").status_code == 302


def test_throttle_counts_in_the_database(session, make_user):
    make_user("ann", "manager")
    policy = accounts.ThrottlePolicy(slow_after=2, lock_after=3, ip_lock_after=5,
                                     delay_unit_seconds=1, delay_max_seconds=60)
    assert accounts.throttle(session, policy, username="ann", ip="1.1.1.1") == 0
    for _ in range(2):
        assert accounts.authenticate(session, username="ANN", secret="nope-nope", ip="1.1.1.1") is None
        session.flush()
    # Too soon after the second failure: refused at once, nobody sleeps in a request thread.
    with pytest.raises(accounts.LoginRefused, match="稍等"):
        accounts.throttle(session, policy, username="ann", ip="1.1.1.1")
    session.execute(update(LoginAttempt).values(at=utcnow() - dt.timedelta(seconds=2)))
    assert accounts.throttle(session, policy, username="ann", ip="1.1.1.1") == 1  # the second has passed
    accounts.authenticate(session, username="ann", secret="nope-nope", ip="2.2.2.2")
    session.flush()
    with pytest.raises(accounts.LoginRefused):
        accounts.throttle(session, policy, username="ann", ip="3.3.3.3")


# --- where to go after login -----------------------------------------------------------------

@pytest.mark.parametrize("target,expected", [
    ("/reports", "/reports"),
    ("/reports?month=2026-11", "/reports?month=2026-11"),
    ("https://evil.example/phish", "/dashboard"),
    ("//evil.example/phish", "/dashboard"),
    ("/\\evil.example/phish", "/dashboard"),
    ("\\\\evil.example/phish", "/dashboard"),
    ("/\t/evil.example/phish", "/dashboard"),
    ("javascript:alert(1)", "/dashboard"),
    ("reports", "/dashboard"),
])
def test_next_is_followed_only_within_the_site(client, make_user, target, expected):
    make_user("ann", "manager")
    token = csrf_token(client, "/login")
    response = client.post("/login", data={
        "pw-username": "ann", "pw-password": TEST_PASSWORD, "pw-csrf_token": token, "pw-next": target,
    })
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc in ("", "localhost")
    assert (location.path + (f"?{location.query}" if location.query else "")) == expected


def test_next_is_carried_from_the_redirect_to_the_login_form(client, make_user):
    make_user("ann", "manager")
    redirect_to_login = client.get("/reports")
    login_page = client.get(redirect_to_login.headers["Location"])
    assert 'value="/reports"' in login_page.get_data(as_text=True)


def test_pin_login_follows_a_safe_next(client, make_user):
    make_user("c1", "cashier", pin="4321")
    token = csrf_token(client, "/login?mode=pin")
    response = client.post("/login?mode=pin", data={
        "pin-username": "c1", "pin-pin": "4321", "pin-csrf_token": token, "pin-next": "//evil.example/",
    })
    assert response.status_code == 302
    assert path_of(response) == "/till"
    assert urlsplit(response.headers["Location"]).netloc in ("", "localhost")


# --- logout ----------------------------------------------------------------------------------

def test_logout_needs_post(client, auth, make_user):
    make_user("ann", "manager")
    auth.login("ann")
    assert client.get("/logout").status_code == 405
    assert is_logged_in(client)


def test_logout_needs_csrf(client, auth, make_user):
    make_user("ann", "manager")
    auth.login("ann")
    response = client.post("/logout", data={})
    assert response.status_code == 400
    assert CSRF_MESSAGE in response.get_data(as_text=True)
    assert is_logged_in(client)


def test_logout(client, auth, make_user):
    make_user("ann", "manager")
    auth.login("ann")
    response = auth.logout()
    assert response.status_code == 302
    assert path_of(response) == "/login"
    assert not is_logged_in(client)


# --- password change -------------------------------------------------------------------------

def change_password(client, current: str, new: str, confirm: str | None = None):
    token = csrf_token(client, "/account")
    return client.post("/account", data={
        "action": "password", "pw-csrf_token": token,
        "pw-current": current, "pw-new": new, "pw-confirm": new if confirm is None else confirm,
    })


def test_password_change_with_a_wrong_current_password_is_refused(app, client, auth, make_user):
    make_user("ann", "manager")
    auth.login("ann")
    response = change_password(client, "not-my-password", "brand-new-pass-2")
    assert response.status_code == 400
    assert "当前密码不正确" in response.get_data(as_text=True)
    other = AuthActions(app.test_client())
    assert other.login("ann", "brand-new-pass-2").status_code == 401
    assert other.login("ann").status_code == 302


def test_password_change_refuses_a_mismatched_confirmation(client, auth, make_user):
    make_user("ann", "manager")
    auth.login("ann")
    response = change_password(client, TEST_PASSWORD, "brand-new-pass-2", confirm="something-else-3")
    assert response.status_code == 400
    assert "两次输入的新密码不一致" in response.get_data(as_text=True)


def test_password_change_ends_other_sessions(app, client, auth, make_user):
    user_id = make_user("ann", "manager")
    auth.login("ann")
    laptop = AuthActions(app.test_client())
    assert laptop.login("ann").status_code == 302
    assert is_logged_in(laptop.client)

    response = change_password(client, TEST_PASSWORD, "brand-new-pass-2")
    assert response.status_code == 302
    assert path_of(response) == "/account"
    page = client.get("/account")
    assert page.status_code == 200  # the changing client stays logged in
    assert "密码已修改" in page.get_data(as_text=True)
    assert not is_logged_in(laptop.client)  # every other session has ended

    fresh = AuthActions(app.test_client())
    assert fresh.login("ann").status_code == 401
    assert fresh.login("ann", "brand-new-pass-2").status_code == 302
    actions = read(app, lambda s: s.scalars(
        select(AuditEvent.action).where(AuditEvent.entity == "user", AuditEvent.entity_id == str(user_id))).all())
    assert "user.password_change" in actions


def test_own_pin_can_be_set(client, auth, make_user):
    make_user("c1", "cashier")
    auth.login("c1")
    token = csrf_token(client, "/account")
    response = client.post("/account", data={"action": "pin", "pin-csrf_token": token, "pin-pin": "2468"})
    assert response.status_code == 302
    auth.logout()
    assert auth.login_pin("c1", "2468").status_code == 302


# --- language --------------------------------------------------------------------------------

def test_login_page_is_english_for_an_english_browser(client):
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert 'lang="en"' in page.get_data(as_text=True)


@pytest.mark.parametrize("header", [None, "zh-CN,zh;q=0.9,en;q=0.8", "en;q=0.5,zh-CN"])
def test_login_page_is_chinese_otherwise(client, header):
    headers = {"Accept-Language": header} if header else {}
    page = client.get("/login", headers=headers)
    assert 'lang="zh-CN"' in page.get_data(as_text=True)


def set_language(client, locale: str):
    token = csrf_token(client, "/account")
    return client.post("/account", data={"action": "language", "lang-csrf_token": token, "lang-locale": locale})


def test_users_locale_setting_wins_over_the_browser(app, client, auth, make_user):
    make_user("ann", "manager")
    auth.login("ann")
    assert set_language(client, "en").status_code == 302
    assert user_named(app, "ann").locale == "en"
    # a Chinese browser still gets English for this user
    page = client.get("/account", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert 'lang="en"' in page.get_data(as_text=True)

    assert set_language(client, "zh").status_code == 302
    page = client.get("/account", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert 'lang="zh-CN"' in page.get_data(as_text=True)

    # "follow the browser" clears the setting
    assert set_language(client, "").status_code == 302
    assert user_named(app, "ann").locale is None
    page = client.get("/account", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert 'lang="en"' in page.get_data(as_text=True)


def test_unknown_language_is_refused(app, client, auth, make_user):
    make_user("ann", "manager")
    auth.login("ann")
    assert set_language(client, "fr").status_code == 400
    assert user_named(app, "ann").locale is None


def test_outside_the_test_suite_passwords_are_hashed_with_scrypt():
    """The suite hashes cheaply (conftest); a real site must not: the switch is the suite's own."""
    env = {k: v for k, v in os.environ.items() if k != "SONGTAO_TEST_CHEAP_HASHING"}
    out = subprocess.run([sys.executable, "-c", "from pos.accounts.users import hash_secret; print(hash_secret('x'))"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("scrypt:")
    assert accounts.hash_secret("x").startswith("pbkdf2:sha256:1$")  # and the suite really is cheap
