"""What every page and endpoint shares: login, roles, CSRF, error pages, template helpers."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext as _, lazy_gettext as _l
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from inventory.localtime import format_local
from inventory.money import format_qty, format_yuan
from pos.core.db import get_session, note_storage_problem, storage_problem
from pos.core.i18n import html_lang
from pos.models import User
from pos.accounts.roles import AREAS, LANDING, ROLE_LABELS

login_manager = LoginManager()
csrf = CSRFProtect()


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def json_error(message: str, status: int):
    response = jsonify({"error": str(message)})
    response.status_code = status
    return response


@login_manager.user_loader
def _load_user(user_key: str):
    try:
        user_id, version = (int(part) for part in user_key.split(":"))
    except ValueError:
        return None
    user = get_session().get(User, user_id)
    # A changed password, role or deactivation bumps the version and ends older sessions.
    if user is None or not user.active or user.session_version != version:
        return None
    return user


@login_manager.unauthorized_handler
def _unauthorized():
    if wants_json():
        return json_error(_("请先登录"), 401)
    flash(_("请先登录"), "warning")
    return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))


def requires(area: str):
    """Only logged-in users whose role may use ``area`` (see pos.accounts.roles) get through."""
    if area not in AREAS:
        raise KeyError(area)

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in AREAS[area]:
                if wants_json():
                    return json_error(_("您的角色无权访问此功能"), 403)
                return render_template("pos/core/403.html"), 403
            return view(*args, **kwargs)

        wrapped.required_area = area
        return wrapped

    return decorator


def protect_blueprint(app: Flask, blueprint, area: str) -> None:
    """Register a blueprint of another package (inventory, kiosks) with every endpoint behind
    ``requires(area)``: those packages do not import pos, so the factory attaches the rule."""
    app.register_blueprint(blueprint)
    prefix = blueprint.name + "."
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.startswith(prefix) and not getattr(view, "public", False):
            app.view_functions[endpoint] = requires(area)(view)


def landing_url(user: User) -> str:
    return url_for(LANDING[user.role])


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login."""
    if not target:
        return None
    # Browsers read a backslash as "/" and drop tabs and newlines, so "/<backslash>evil.example"
    # and "/<tab>/evil.example" would leave the site.
    if "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def client_ip() -> str:
    return request.remote_addr or "unknown"


ERROR_TITLES = {
    400: _l("请求有误"),
    401: _l("请先登录"),
    403: _l("无权访问"),
    404: _l("页面不存在"),
    405: _l("不支持此操作"),
    409: _l("数据冲突"),
    413: _l("上传的内容太大"),
    422: _l("内容无法处理"),
    429: _l("操作太频繁"),
    500: _l("系统出错了"),
    503: _l("暂时无法处理"),
}

# What a refused write means, for the person at the till (pos.core.db.storage_problem names it).
STORAGE_MESSAGES = {
    "busy": _l("数据库繁忙，请稍后重试（收银台会自动重发，不会丢单）"),
    "disk_full": _l("磁盘已满：服务器无法保存数据，请立即联系管理员清理磁盘（收银台会自动重发，不会丢单）"),
    "read_only": _l("数据库只读：服务器无法保存数据，请立即联系管理员（收银台会自动重发，不会丢单）"),
}


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    csrf.init_app(app)

    @app.errorhandler(CSRFError)
    def _csrf_error(error):
        message = _("表单已过期或缺少安全校验，请刷新页面后重试")
        if wants_json():
            return json_error(message, 400)
        return render_template("pos/core/error.html", code=400, title=_("请求有误"), message=message), 400

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        code = error.code or 500
        title = str(ERROR_TITLES.get(code, ERROR_TITLES[400]))
        if wants_json():
            return json_error(title, code)
        return render_template("pos/core/error.html", code=code, title=title, message=""), code

    @app.errorhandler(DBAPIError)
    def _storage_error(error):
        kind = storage_problem(error)
        if kind is None:
            return _unexpected(error)
        note_storage_problem(app, kind)
        # Nothing more may be asked of the database here: a user not yet loaded stays anonymous
        # (the page's language then follows the browser).
        if "_login_user" not in g:
            g._login_user = login_manager.anonymous_user()
        message = str(STORAGE_MESSAGES[kind])
        if wants_json():
            response = json_error(message, 503)
        else:
            response = app.make_response((render_template(
                "pos/core/error.html", code=503, title=str(ERROR_TITLES[503]), message=message), 503))
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(405)
    def _method_not_allowed(error: HTTPException):
        # The URL exists: say which methods it takes (RFC 9110), in JSON for the API.
        response = app.make_response(_http_error(error))
        response.headers["Allow"] = ", ".join(sorted(getattr(error, "valid_methods", None) or ()))
        return response

    @app.errorhandler(Exception)
    def _unexpected(error):  # a bug: log it, show a calm page, never a traceback
        app.logger.exception("unhandled error")
        title = _("系统出错了")
        if wants_json():
            return json_error(title, 500)
        return render_template("pos/core/error.html", code=500, title=title,
                               message=_("请稍后重试；若问题持续，请联系管理员。")), 500

    @app.context_processor
    def _template_helpers():
        locale = str(get_locale() or "zh")
        return {
            "html_lang": html_lang(locale),
            "current_locale": locale,
            "role_label": lambda role: str(ROLE_LABELS[role]),
            "hall_name": app.config["HALL_NAME"],
            "allowed_area": lambda area: current_user.is_authenticated and current_user.role in AREAS[area],
        }

    app.jinja_env.filters["yuan"] = format_yuan
    app.jinja_env.filters["local_time"] = format_local
    app.jinja_env.filters["qty"] = lambda q, by_weight=False: format_qty(q, by_weight=by_weight)

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
