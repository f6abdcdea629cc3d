"""Users, passwords, PINs and login throttling. Plain functions over a session."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from inventory.audit import record
from inventory.localtime import utcnow
from pos.models import LoginAttempt, Role, User

# werkzeug's scrypt: a memory-hard, deliberately slow KDF.
PASSWORD_METHOD = "scrypt"
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
    delay_unit_seconds: float = 0.5  # ok-float: a sleep, not money
    delay_max_seconds: float = 4  # ok-float: a sleep, not money


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


def find_user(session: Session, username: str) -> Optional[User]:
    return session.scalar(select(User).where(func.lower(User.username) == (username or "").strip().lower()))


def recent_failures(session: Session, *, username: str, ip: str, since: dt.datetime) -> tuple[int, int]:
    """Failures for this username since its last success (within the window), and from this address."""
    last_ok = session.scalar(
        select(func.max(LoginAttempt.at)).where(
            func.lower(LoginAttempt.username) == username.lower(), LoginAttempt.ok.is_(True)
        )
    )
    user_since = max(since, last_ok) if last_ok else since
    by_user = session.scalar(
        select(func.count()).where(
            func.lower(LoginAttempt.username) == username.lower(),
            LoginAttempt.ok.is_(False),
            LoginAttempt.at > user_since,
        )
    )
    by_ip = session.scalar(
        select(func.count()).where(LoginAttempt.ip == ip, LoginAttempt.ok.is_(False), LoginAttempt.at > since)
    )
    return by_user or 0, by_ip or 0


def login_delay(policy: ThrottlePolicy, failures: int) -> float:  # ok-float: seconds
    """How long to make this attempt wait: nothing at first, then doubling up to the cap."""
    if failures < policy.slow_after:
        return 0
    # The exponent is bounded: 2 ** (a large count) as a float overflows, and the cap is reached
    # long before 2 ** 32 for any sane unit.
    doublings = min(failures - policy.slow_after, 32)
    return min(policy.delay_unit_seconds * 2 ** doublings, policy.delay_max_seconds)


def throttle(session: Session, policy: ThrottlePolicy, *, username: str, ip: str) -> float:  # ok-float: seconds
    """Raise LoginRefused when the user or address is locked out; else return the delay to apply."""
    since = utcnow() - dt.timedelta(minutes=policy.window_minutes)
    by_user, by_ip = recent_failures(session, username=username, ip=ip, since=since)
    if by_user >= policy.lock_after or by_ip >= policy.ip_lock_after:
        raise LoginRefused(_l("登录失败次数过多，请 %(m)d 分钟后再试", m=policy.window_minutes))
    return login_delay(policy, max(by_user, by_ip))


def authenticate(
    session: Session, *, username: str, secret: str, ip: str, by_pin: bool = False
) -> Optional[User]:
    """Check a password (or PIN) and log the attempt. None when it does not match."""
    user = find_user(session, username)
    ok = False
    if user is not None and user.active:
        stored = user.pin_hash if by_pin else user.password_hash
        ok = bool(stored) and check_password_hash(stored, secret or "")
    else:
        # Spend the same time as a real check so that unknown names cannot be told apart.
        check_password_hash(_DUMMY_HASH, secret or "")
    session.add(LoginAttempt(username=(username or "")[:40], ip=ip[:45], ok=ok, at=utcnow()))
    if ok:
        user.last_login_at = utcnow()
        return user
    return None


_DUMMY_HASH = generate_password_hash("not-a-password", method=PASSWORD_METHOD)


def verify_pin(session: Session, *, user: User, pin: str) -> bool:
    return bool(user.pin_hash) and check_password_hash(user.pin_hash, pin or "")


def manager_for_pin(session: Session, pin: str) -> Optional[User]:
    """The active manager or admin whose PIN this is (for approvals at the till)."""
    if not PIN_RE.match(pin or ""):
        return None
    candidates = session.scalars(
        select(User).where(User.active.is_(True), User.role.in_([Role.MANAGER, Role.ADMIN]), User.pin_hash.is_not(None))
    )
    for user in candidates:
        if check_password_hash(user.pin_hash, pin):
            return user
    return None


def change_password(session: Session, *, user: User, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current or ""):
        raise AccountError(_l("当前密码不正确"))
    check_password_rules(new)
    before = user.session_version
    user.password_hash = hash_secret(new)
    user.session_version += 1
    # Never a secret in the log: what changed is that every other session ended.
    record(session, user_id=user.id, action="user.password_change", entity="user", entity_id=user.id,
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
