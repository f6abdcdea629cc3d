"""No control characters in the text that people and machines send (issue 18, point 10a).

Scanners and people never type a control character, and PostgreSQL refuses a NUL in text outright
(a query with ``/labels?q=a%00b`` answered 500). The rule lives here, once:

- every query-string argument (name and value) and every path argument: no C0 control character
  and no DEL;
- every form field: the same, except tab, carriage return and line feed, which a textarea sends;
- JSON bodies are parsed by the API's pydantic models, whose text types carry ``NO_CONTROL``
  (pos.core.openapi.Text and the counters' string types).

``init_app`` installs the check before every view: a refused request changes nothing and answers
422 JSON ``{"error", "field"}`` under /api/ (as any refused field there) or the 400 error page.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

from flask import Flask, render_template, request
from flask_babel import gettext as _

# The C0 controls and DEL: in a JSON Schema pattern (pos.core.openapi) and for the checks below.
CONTROL_CLASS = r"\x00-\x1f\x7f"
NO_CONTROL = rf"^[^{CONTROL_CLASS}]*$"
_ANY_CONTROL = re.compile(rf"[{CONTROL_CLASS}]")
_CONTROL_EXCEPT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # a textarea's \t \r \n are text

FORM_MIMETYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def has_control(value: str, *, multiline: bool = False) -> bool:
    """Whether ``value`` holds a control character (tab, CR and LF allowed when ``multiline``)."""
    return bool((_CONTROL_EXCEPT_LINES if multiline else _ANY_CONTROL).search(value))


def first_refused(pairs: Iterable[tuple[str, str]], *, multiline: bool = False) -> Optional[str]:
    """The name of the first (name, value) pair with a control character, or None."""
    for name, value in pairs:
        if has_control(name) or (isinstance(value, str) and has_control(value, multiline=multiline)):
            return name
    return None


def refused_field() -> Optional[tuple[str, str]]:
    """(where, name) of the current request's first text parameter with a control character."""
    name = first_refused((k, v) for k, v in (request.view_args or {}).items() if isinstance(v, str))
    if name is not None:
        return "path", name
    name = first_refused(request.args.items(multi=True))
    if name is not None:
        return "query", name
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.mimetype in FORM_MIMETYPES:
        name = first_refused(request.form.items(multi=True), multiline=True)
        if name is not None:
            return "form", name
    return None


def _printable(name: str) -> str:
    return _ANY_CONTROL.sub("?", name)[:64]


def init_app(app: Flask) -> None:
    @app.before_request
    def _refuse_control_characters():
        refused = refused_field()
        if refused is None:
            return None
        where, name = refused
        from pos.core.openapi import error_response  # the API's one shape of a refused field
        from pos.core.web import wants_json

        message = _("%(field)s 不能包含控制字符（可能是扫描枪或复制粘贴带进来的）", field=_printable(name))
        if where == "path":  # a URL with a control character names nothing
            if wants_json():
                return error_response(404, _("页面不存在"))
            return render_template("pos/core/error.html", code=404, title=_("页面不存在"), message=""), 404
        if wants_json():
            return error_response(422, message, _printable(name))
        return render_template("pos/core/error.html", code=400, title=_("请求有误"), message=message), 400


__all__ = ["NO_CONTROL", "CONTROL_CLASS", "has_control", "first_refused", "refused_field", "init_app"]
