"""Users, passwords, PINs and login throttling. Plain functions over a session."""
from __future__ import annotations

import datetime as dt
import os
import re
import threading
from dataclasses import dataclass
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from inventory.audit import record
from inventory.localtime import utcnow
from pos.accounts.roles import APPROVER_ROLES, may_approve
from pos.models import LoginAttempt, Role, User

# werkzeug's scrypt: a memory-hard, deliberately slow KDF. Only the test suite may ask for a cheap
# one (tests/conftest.py sets SONGTAO_TEST_CHEAP_HASHING=1): its users guard nothing, and scrypt was a
# third of the suite's time. A stored hash names its method, so either kind still verifies.
PASSWORD_METHOD = "pbkdf2:sha256:1" if os.environ.get("SONGTAO_TEST_CHEAP_HASHING") == "1" else "scrypt"
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,40}$")
PIN_RE = re.compile(r"^\d{4,6}$")
MIN_PASSWORD = 8


class AccountError(ValueError):
    """A mistake in what was asked; the message is shown to the person."""


class LoginRefused(AccountError):
    pass


@dataclass(frozen=True)
class ThrottlePolicy:
    window_minutes: int = 15
    slow_after: int = 3
    lock_after: int = 8
    ip_lock_after: int = 30
    delay_unit_seconds: float = 0.5  # ok-float: seconds between attempts, not money
    delay_max_seconds: float = 4  # ok-float: seconds between attempts, not money


def hash_secret(secret: str) -> str:
    return generate_password_hash(secret, method=PASSWORD_METHOD)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(_l("密码至少需要 %(n)d 位", n=MIN_PASSWORD))
    if password.isdigit():
        raise AccountError(_l("密码不能全是数字"))


def check_pin_rules(pin: str) -> None:
    if not PIN_RE.match(pin or ""):
        raise AccountError(_l("PIN 必须是 4 到 6 位数字"))


def create_user(
    session: Session,
    *,
    username: str,
    role: Role | str,
    password: str,
    display_name: Optional[str] = None,
    pin: Optional[str] = None,
    actor_id: Optional[int] = None,
) -> User:
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise AccountError(_l("用户名只能包含字母、数字、下划线、点和短横线，2–40 个字符"))
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(_l("未知角色：%(role)s", role=role)) from None
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise AccountError(_l("用户名「%(name)s」已存在", name=username))
    check_password_rules(password)
    if pin:
        check_pin_rules(pin)
    user = User(
        username=username,
        display_name=(display_name or username).strip(),
        role=role,
        password_hash=hash_secret(password),
        pin_hash=hash_secret(pin) if pin else None,
        active=True,
        session_version=1,
    )
    session.add(user)
    session.flush()
    record(session, user_id=actor_id, action="user.create", entity="user", entity_id=user.id,
           after={"username": username, "role": role.value, "display_name": user.display_name})
    return user


def login_key(username) -> str:
    """The one spelling of a username that login, the throttle and the attempt log all use:
    ``" Admin"`` and ``"admin"`` are the same account, so padding or case cannot dodge a lock."""
    return (username if isinstance(username, str) else "").strip().lower()[:40]


def find_user(session: Session, username: str) -> Optional[User]:
    return session.scalar(select(User).where(func.lower(User.username) == login_key(username)))


def recent_failures(session: Session, *, username: str, ip: str, since: dt.datetime) -> tuple[int, int]:
    """Failures for this account since its last success (within the window), and from this address."""
    key = login_key(username)
    last_ok = session.scalar(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.username == key, LoginAttempt.ok.is_(True))
    )
    user_since = max(since, last_ok) if last_ok else since
    by_user = session.scalar(
        select(func.count()).where(LoginAttempt.username == key, LoginAttempt.ok.is_(False),
                                   LoginAttempt.at > user_since)
    )
    by_ip = session.scalar(
        select(func.count()).where(LoginAttempt.ip == ip, LoginAttempt.ok.is_(False), LoginAttempt.at > since)
    )
    return by_user or 0, by_ip or 0


def login_delay(policy: ThrottlePolicy, failures: int) -> float:  # ok-float: seconds
    """How long after the last failure the next attempt must wait: nothing at first, then doubling
    up to the cap. Nobody sleeps for it: an attempt that comes sooner is refused at once, before
    any password is hashed (a sleeping request thread is one a till cannot use)."""
    if failures < policy.slow_after:
        return 0
    # The exponent is bounded: 2 ** (a large count) as a float overflows, and the cap is reached
    # long before 2 ** 32 for any sane unit.
    doublings = min(failures - policy.slow_after, 32)
    return min(policy.delay_unit_seconds * 2 ** doublings, policy.delay_max_seconds)


def throttle(session: Session, policy: ThrottlePolicy, *, username: str, ip: str) -> float:  # ok-float: seconds
    """Raise LoginRefused when the account or address is locked out, or when this attempt comes
    sooner than the delay its failures call for; else return that delay (already waited)."""
    since = utcnow() - dt.timedelta(minutes=policy.window_minutes)
    by_user, by_ip = recent_failures(session, username=username, ip=ip, since=since)
    if by_user >= policy.lock_after or by_ip >= policy.ip_lock_after:
        raise LoginRefused(_l("登录失败次数过多，请 %(m)d 分钟后再试", m=policy.window_minutes))
    delay = login_delay(policy, max(by_user, by_ip))
    if delay:
        last = session.scalar(select(func.max(LoginAttempt.at)).where(
            LoginAttempt.ok.is_(False), or_(LoginAttempt.username == login_key(username), LoginAttempt.ip == ip)))
        if last is not None and utcnow() < last + dt.timedelta(seconds=delay):
            raise LoginRefused(_l("尝试太频繁，请稍等几秒再试"))
    return delay


# --- checking secrets: a bounded pool, never inside a transaction ---------------------------------

class HashingBusy(AccountError):
    """Every hashing slot stayed taken: the server is under a login flood (answered 503)."""


HASHING_SLOTS = 2          # scrypt is CPU- and memory-hard: no more at once than the cores
HASHING_WAIT_SECONDS = 5
_hashing = threading.BoundedSemaphore(HASHING_SLOTS)


def verify_secret(stored_hash: Optional[str], secret: str) -> bool:
    """Check a secret against its stored hash (or against a dummy, so that an unknown name takes
    as long as a known one), in a bounded pool: a flood of logins queues here instead of taking
    every request thread and core from the tills. Call it with no database transaction open."""
    if not _hashing.acquire(timeout=HASHING_WAIT_SECONDS):
        raise HashingBusy(_l("系统繁忙，请稍后再试"))
    try:
        ok = check_password_hash(stored_hash or _DUMMY_HASH, secret or "")
        return ok and stored_hash is not None
    finally:
        _hashing.release()


@dataclass(frozen=True)
class LoginCandidate:
    """What a login needs from the database, read before any hashing."""
    user_id: Optional[int]
    stored_hash: Optional[str]


def login_candidate(session: Session, policy: ThrottlePolicy, *, username: str, ip: str,
                    by_pin: bool = False) -> LoginCandidate:
    """The throttle's verdict (LoginRefused) and the stored hash to check, in one short read."""
    throttle(session, policy, username=username, ip=ip)
    user = find_user(session, username)
    if user is None or not user.active:
        return LoginCandidate(None, None)
    return LoginCandidate(user.id, user.pin_hash if by_pin else user.password_hash)


def record_login(session: Session, *, username: str, ip: str, user_id: Optional[int], ok: bool) -> None:
    """Log the attempt under the account's one spelling (a short write after the hashing)."""
    session.add(LoginAttempt(username=login_key(username), ip=(ip or "")[:45], ok=ok, at=utcnow()))
    if ok and user_id is not None:
        user = session.get(User, user_id)
        user.last_login_at = utcnow()


def authenticate(
    session: Session, *, username: str, secret: str, ip: str, by_pin: bool = False
) -> Optional[User]:
    """Check a password (or PIN) and log the attempt, in one session. None when it does not match.
    (The login page uses login_candidate / verify_secret / record_login, so as to hash outside
    any transaction; this is for commands and tests.)"""
    user = find_user(session, username)
    usable = user is not None and user.active
    stored = (user.pin_hash if by_pin else user.password_hash) if usable else None
    ok = verify_secret(stored, secret)
    record_login(session, username=username, ip=ip, user_id=user.id if ok else None, ok=ok)
    return user if ok else None


_DUMMY_HASH = generate_password_hash("not-a-password", method=PASSWORD_METHOD)


# --- a manager's approval by PIN at the till ----------------------------------------------------

def active_approver(session: Session, user_id: Optional[int]) -> Optional[User]:
    """The user with this id when they may approve (pos.accounts.roles.may_approve), else None: how
    the services check the approver a view has named (by PIN, or the manager at the till)."""
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    user = session.get(User, user_id)
    return user if may_approve(user) else None


@dataclass(frozen=True)
class ApprovalPolicy:
    window_minutes: int = 15
    lock_after: int = 5      # wrong PINs per till, and per cashier asking, before a lock


def approval_keys(till_code: Optional[str], requester_id: Optional[int]) -> list[str]:
    """The throttle's keys for approvals (kept among the login attempts, which never use '@')."""
    keys = [f"@approve-till:{(till_code or '-')[:24]}"]
    if requester_id is not None:
        keys.append(f"@approve-user:{requester_id}")
    return keys


def approval_candidates(session: Session, policy: ApprovalPolicy, *, keys: list[str]) -> list[tuple[int, str]]:
    """Refuse (LoginRefused) while a till or cashier is locked for wrong PINs; else the (id, PIN
    hash) of every manager and admin who may approve, read in one short query."""
    since = utcnow() - dt.timedelta(minutes=policy.window_minutes)
    for key in keys:
        failures, _ = recent_failures(session, username=key, ip="", since=since)
        if failures >= policy.lock_after:
            raise LoginRefused(_l("店长密码错误次数过多，请 %(m)d 分钟后再试", m=policy.window_minutes))
    return list(session.execute(
        select(User.id, User.pin_hash).where(User.active.is_(True), User.role.in_(APPROVER_ROLES),
                                             User.pin_hash.is_not(None)).order_by(User.id)).all())


def match_pin(candidates: list[tuple[int, str]], pin: str) -> Optional[int]:
    """The approver whose PIN this is, checked outside any transaction in the hashing pool."""
    if not PIN_RE.match(pin or ""):
        return None
    for user_id, pin_hash in candidates:
        if verify_secret(pin_hash, pin):
            return user_id
    return None


def record_approval(session: Session, *, keys: list[str], ip: str, approver_id: Optional[int],
                    requester_id: Optional[int], purpose: str) -> None:
    """Log the approval attempt for the throttle, and audit a refused one."""
    for key in keys:
        session.add(LoginAttempt(username=key, ip=(ip or "")[:45], ok=approver_id is not None, at=utcnow()))
    if approver_id is None:
        record(session, user_id=requester_id, action="approval.pin_refused", entity="approval", entity_id=None,
               after={"keys": keys, "purpose": purpose[:40]})


def change_password(session: Session, *, user: User, current: str, new: str) -> None:
    if not verify_secret(user.password_hash, current or ""):
        raise AccountError(_l("当前密码不正确"))
    check_password_rules(new)
    before = user.session_version
    user.password_hash = hash_secret(new)
    user.session_version += 1
    # Never a secret in the log: what changed is that every other session ended.
    record(session, user_id=user.id, action="user.password_change", entity="user", entity_id=user.id,
           before={"session_version": before}, after={"session_version": user.session_version})


def end_sessions(session: Session, *, user: User) -> None:
    """Log the user out everywhere (logout): the session version moves on, so every cookie
    issued before, a copied or replayed one included, no longer logs anybody in."""
    before = user.session_version
    user.session_version += 1
    record(session, user_id=user.id, action="user.logout", entity="user", entity_id=user.id,
           before={"session_version": before}, after={"session_version": user.session_version})


def set_pin(session: Session, *, user: User, pin: str, actor_id: int) -> None:
    check_pin_rules(pin)
    before = user.pin_hash is not None
    user.pin_hash = hash_secret(pin)
    record(session, user_id=actor_id, action="user.pin_set", entity="user", entity_id=user.id,
           before={"has_pin": before}, after={"has_pin": True})


def reset_password(session: Session, *, user: User, new: str, actor_id: int) -> None:
    check_password_rules(new)
    before = user.session_version
    user.password_hash = hash_secret(new)
    user.session_version += 1
    record(session, user_id=actor_id, action="user.password_reset", entity="user", entity_id=user.id,
           before={"session_version": before}, after={"session_version": user.session_version})


def set_role(session: Session, *, user: User, role: Role | str, actor_id: int) -> None:
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(_l("未知角色：%(role)s", role=role)) from None
    if user.id == actor_id and role != Role.ADMIN:
        raise AccountError(_l("不能取消自己的管理员角色"))
    before = user.role.value
    user.role = role
    user.session_version += 1
    record(session, user_id=actor_id, action="user.role_change", entity="user", entity_id=user.id,
           before={"role": before}, after={"role": role.value})


def set_active(session: Session, *, user: User, active: bool, actor_id: int) -> None:
    if user.id == actor_id and not active:
        raise AccountError(_l("不能停用自己的账号"))
    before = user.active
    user.active = active
    user.session_version += 1
    record(session, user_id=actor_id, action="user.activate" if active else "user.deactivate",
           entity="user", entity_id=user.id, before={"active": before}, after={"active": active})


def set_locale(session: Session, *, user: User, locale: Optional[str]) -> None:
    if locale not in (None, "zh", "en"):
        raise AccountError(_l("不支持的语言"))
    user.locale = locale
