"""What every JSON endpoint under /api/v1 shares: pydantic v2 request models, one decorator that
says what an endpoint takes and returns, the mapping of bad requests and domain errors to JSON
``{"error": …}`` answers, and the OpenAPI 3.1 document built from those declarations.

Registering an endpoint (the till's API, the counters' API and the reports all do)::

    @bp.post("/sales")
    @requires("till")
    @operation("Record a hall sale", body=SaleIn, responses={201: SaleOut, 200: SaleOut},
               errors=(403, 409, 422), tags=("till",))
    def record_sale(): ...

The document is built from ``app.url_map`` and the operations attached to its views, so a path
or method in the document can never drift from the real one; a view under /api/v1 without an
operation is a test failure (tests/core/test_openapi.py). The package that owns a blueprint calls
``register_error_handlers(bp)`` so that its errors answer in JSON like the till's.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from pydantic import (AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictInt,
                      StringConstraints)
from pydantic import ValidationError as PydanticError
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError

from inventory.errors import InventoryError, NotFound as InventoryNotFound
from inventory.money import AmountError
from pos.core.control_chars import NO_CONTROL  # scanners and people never type control characters
from pos.core.errors import ApprovalRequired, Conflict, NotFound, PosError

API_PREFIX = "/api/v1"
API_TITLE = "Songtao hall POS API"
API_VERSION = "1"

# --- value types shared by request models ------------------------------------------------------

MAX_FEN = 99_999_999            # ¥999,999.99, the catalogue's price ceiling; far above a hall sale
MAX_QTY_MILLI = 1_000_000       # 1,000 pieces or kg on one line
MAX_ID = 2_147_483_647          # a 32-bit key: a larger number would overflow PostgreSQL's integer


def _whole_number(value: Any) -> Any:
    """JSON has one kind of number: 188.0 is the integer 188 (JSON Schema's ``integer`` says so,
    and a browser's JSON.stringify may write either), so an integral float is taken exactly as
    that integer. A fraction (188.5), text ("188") and booleans are still refused."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2 ** 53:
        return int(value)
    return value


def Whole(**field):  # noqa: N802 (reads as a type)
    """An integer field of a request: strict (no text, no bool, no fraction), 188.0 read as 188;
    ``field`` are its bounds and description (pydantic.Field), which the document shows."""
    return Annotated[StrictInt, Field(**field), BeforeValidator(_whole_number)]


Fen = Whole(ge=0, le=MAX_FEN)
PositiveFen = Whole(gt=0, le=MAX_FEN)
QtyMilli = Whole(gt=0, le=MAX_QTY_MILLI)
Id = Whole(ge=1, le=MAX_ID)
ClientId = Annotated[str, StringConstraints(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Code = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")]


def _moment_text(value: Any) -> Any:
    """A moment comes as ISO 8601 text (never a number of seconds, which JSON would allow)."""
    if isinstance(value, str) and len(value) <= 40:
        return value.strip()
    raise PydanticCustomError("datetime_type", "an ISO 8601 moment with its offset")


def _in_utc(value: Any) -> Any:
    """The moment in UTC; one that has none (0001-01-01T00:00:00+00:01) is no moment."""
    try:
        return value.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        raise PydanticCustomError("datetime_type", "an ISO 8601 moment with its offset") from None


# A moment with its offset, ISO 8601 text ("2026-11-30T23:59:00+08:00" or "…Z"), read as UTC; a naive
# time is refused.
Moment = Annotated[AwareDatetime, Strict(False), BeforeValidator(_moment_text), AfterValidator(_in_utc)]


def Text(max_length: int, min_length: int = 0):  # noqa: N802 (reads as a type)
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=min_length,
                                            max_length=max_length, pattern=NO_CONTROL)]


class RequestModel(BaseModel):
    """A JSON body: strict types (no "12" or 12.5 for an integer, no 1 for a boolean), no
    unknown fields (a typo is an error, not silently ignored)."""

    model_config = ConfigDict(strict=True, extra="forbid")


class QueryModel(BaseModel):
    """Query-string arguments: text by nature, so types are converted; unknown ones ignored."""

    model_config = ConfigDict(extra="ignore")


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(ResponseModel):
    error: str = Field(description="What went wrong, for the person (in the user's language)")
    field: Optional[str] = Field(None, description="The request field it concerns, e.g. lines[0].qty_milli")


# --- operations ---------------------------------------------------------------------------------

ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, a body that is not an object, or a missing CSRF token",
    401: "Not logged in (or no valid token)",
    403: "The role may not use this, or a manager's approval is needed",
    404: "Not found",
    409: "Conflict with what was recorded before",
    413: "Body too large",
    422: "A field was refused; `field` names it",
}
AUTH_SCHEMES = ("session", "bearer", "session_or_bearer", "none")


@dataclass(frozen=True)
class Operation:
    summary: str
    body: Optional[type[BaseModel]] = None
    query: Optional[type[BaseModel]] = None
    # status -> response model, a raw JSON schema (dict), or None (no body)
    responses: dict[int, Any] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    auth: str = "session"
    description: Optional[str] = None


def operation(summary: str, *, body=None, query=None, responses=None, errors=(), tags=(), auth="session",
              description=None, method: str = "*"):
    """Attach an OpenAPI operation to a view. ``method`` is only needed for a view serving several
    methods with different shapes. Works above or below ``requires`` (functools.wraps copies it)."""
    if auth not in AUTH_SCHEMES:
        raise ValueError(f"unknown auth {auth!r}")

    def decorator(view):
        ops = dict(getattr(view, "openapi_operations", {}))
        ops[method.upper()] = Operation(summary, body, query, dict(responses or {200: None}),
                                        tuple(errors), tuple(tags), auth, description)
        view.openapi_operations = ops
        return view

    return decorator


# --- reading requests ---------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status: int, message: Any, field: Optional[str] = None) -> None:
        super().__init__(str(message))
        self.status, self.message, self.field = status, message, field


def json_body(model: type[BaseModel]) -> BaseModel:
    """The request's JSON object validated by ``model``: 400 when it is not a JSON object, 422
    naming the first refused field otherwise."""
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        raise ApiError(413, _("请求内容太大"))
    raw = request.get_data(cache=True)
    if limit is not None and len(raw) > limit:  # a chunked body says no length up front
        raise ApiError(413, _("请求内容太大"))
    if not raw.strip():
        raise ApiError(400, _("请求内容为空，应为 JSON 对象"))
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
        raise ApiError(400, _("请求内容不是有效的 JSON")) from None
    if not isinstance(data, dict):
        raise ApiError(400, _("请求内容应为 JSON 对象"))
    return validate(model, data)


def query_args(model: type[BaseModel]) -> BaseModel:
    return validate(model, request.args.to_dict())


def validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except PydanticError as error:
        first = error.errors(include_url=False)[0]
        where = field_path(first["loc"])
        raise ApiError(422, error_message(first, where), where or None) from None


def field_path(loc) -> str:
    """("lines", 0, "qty_milli") -> "lines[0].qty_milli"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not isinstance(part, str) or part == "[key]" or part.startswith(("function-", "constrained-")):
            continue
        else:
            out += ("." if out else "") + part
    return out


def error_message(err: dict, where: str) -> str:
    """A pydantic error as a sentence for the person, in the user's language, naming the field."""
    kind, ctx = err["type"], err.get("ctx") or {}
    f = where or _("请求")
    if kind == "missing":
        return _("缺少字段 %(field)s", field=f)
    if kind == "extra_forbidden":
        return _("不认识的字段 %(field)s", field=f)
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return _("%(field)s 必须是整数（金额以分为单位，数量以千分之一为单位）", field=f)
    if kind in ("greater_than", "greater_than_equal"):
        limit = ctx.get("gt", ctx.get("ge"))
        op = ">" if kind == "greater_than" else "≥"
        return _("%(field)s 必须 %(op)s %(limit)s", field=f, op=op, limit=limit)
    if kind in ("less_than", "less_than_equal"):
        limit = ctx.get("lt", ctx.get("le"))
        op = "<" if kind == "less_than" else "≤"
        return _("%(field)s 必须 %(op)s %(limit)s", field=f, op=op, limit=limit)
    if kind in ("string_type", "string_unicode"):
        return _("%(field)s 必须是文本", field=f)
    if kind == "string_too_short":
        return _("%(field)s 不能为空或太短", field=f)
    if kind == "string_too_long":
        return _("%(field)s 最多 %(n)s 个字符", field=f, n=ctx.get("max_length"))
    if kind == "string_pattern_mismatch":
        return _("%(field)s 的格式不正确", field=f)
    if kind == "timezone_aware":
        return _("%(field)s 必须带时区（ISO 8601，如 2026-11-30T23:59:00+08:00）", field=f)
    if kind.startswith("datetime_"):
        return _("%(field)s 必须是 ISO 8601 时间（如 2026-11-30T23:59:00+08:00）", field=f)
    if kind in ("bool_type", "bool_parsing"):
        return _("%(field)s 必须是 true 或 false", field=f)
    if kind in ("list_type", "tuple_type"):
        return _("%(field)s 必须是列表", field=f)
    if kind == "too_short":
        return _("%(field)s 至少要有 %(n)s 项", field=f, n=ctx.get("min_length"))
    if kind == "too_long":
        return _("%(field)s 最多 %(n)s 项", field=f, n=ctx.get("max_length"))
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _("%(field)s 必须是对象", field=f)
    if kind in ("literal_error", "enum"):
        return _("%(field)s 的取值无效", field=f)
    return _("%(field)s 的值无效", field=f)


# --- answering errors ---------------------------------------------------------------------------

def error_response(status: int, message: Any, field: Optional[str] = None):
    body = {"error": str(message)}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def domain_status(error: Exception) -> int:
    """The HTTP status of a domain error (pos.core.errors, inventory.errors, inventory.money)."""
    if isinstance(error, (NotFound, InventoryNotFound)):
        return 404
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, ApprovalRequired):
        return 403
    return 422


def api_field(name: Optional[str], aliases: Optional[dict[str, str]] = None) -> Optional[str]:
    """A domain error's field in the API's spelling: the form-style "lines-0-qty_milli" of the
    domain functions becomes "lines[0].qty_milli", as pydantic's errors are named; ``aliases``
    maps a domain argument to the request field it came from (approved_by_id → approval_pin)."""
    if not name:
        return None
    name = (aliases or {}).get(name, name)
    return re.sub(r"-(\d+)", r"[\1]", name).replace("]-", "].")


def register_error_handlers(bp: Blueprint, field_aliases: Optional[dict[str, str]] = None) -> None:
    """Every refused request of ``bp`` answers JSON ``{"error", "field"?}``. The request's unit of
    work is rolled back for any status >= 400 (pos.core.db), so a refused request changes nothing."""

    @bp.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error.status, error.message, error.field)

    @bp.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):
        # CSRFProtect runs before the view's login check: a request with no session at all is
        # not logged in (401, as documented), whatever its CSRF header says.
        if not current_user.is_authenticated:
            return error_response(401, _("请先登录"))
        return error_response(400, _("表单已过期或缺少安全校验，请刷新页面后重试"))

    @bp.errorhandler(PosError)
    @bp.errorhandler(InventoryError)
    @bp.errorhandler(AmountError)
    def _domain_error(error):
        return error_response(domain_status(error), str(error),
                              api_field(getattr(error, "field", None), field_aliases))


def limit_body(max_bytes: int) -> None:
    """Refuse (413, in ``json_body``) bodies larger than ``max_bytes`` for the current request;
    call it from a blueprint's before_request. The app-wide MAX_CONTENT_LENGTH is sized for photo
    and file uploads, and it is the one that CSRFProtect's form parsing has already applied."""
    request.max_content_length = max_bytes


# --- bearer tokens that may read the document -----------------------------------------------------

TOKEN_CHECKS = "songtao.openapi.token_checks"


def accept_document_token(app: Flask, check) -> None:
    """Let the holders of a kind of bearer token read the document: ``check(token)`` says whether
    a token is good (the factory registers the counters' tokens; pos itself knows no kiosks)."""
    app.extensions.setdefault(TOKEN_CHECKS, []).append(check)


def bearer_may_read_document() -> bool:
    """Whether the request's ``Authorization: Bearer …`` is a token some package accepts."""
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    return any(check(token) for check in current_app.extensions.get(TOKEN_CHECKS, ()))


# --- the document -------------------------------------------------------------------------------

_RULE_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTER_SCHEMA = {"int": {"type": "integer"}, "float": {"type": "number"}}


def _path_and_params(rule: str) -> tuple[str, list[dict]]:
    params = []
    for converter, name in _RULE_ARG.findall(rule):
        params.append({"name": name, "in": "path", "required": True,
                       "schema": dict(_CONVERTER_SCHEMA.get(converter, {"type": "string"}))})
    return _RULE_ARG.sub(lambda m: "{" + m.group(2) + "}", rule), params


def api_rules(app: Flask, prefix: str = API_PREFIX):
    """(rule, methods) of every URL under the API prefix, in a stable order."""
    rules = [r for r in app.url_map.iter_rules() if r.rule == prefix or r.rule.startswith(prefix + "/")]
    for rule in sorted(rules, key=lambda r: (r.rule, r.endpoint)):
        yield rule, sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def build_document(app: Flask) -> dict:
    """The OpenAPI 3.1 document of every documented view under /api/v1."""
    found: list[tuple[str, str, list[dict], Operation]] = []
    for rule, methods in api_rules(app):
        ops = getattr(app.view_functions[rule.endpoint], "openapi_operations", None)
        if not ops:
            continue  # tests/core/test_openapi.py names such a view
        path, params = _path_and_params(rule.rule)
        for method in methods:
            op = ops.get(method) or ops.get("*")
            if op is not None:
                found.append((path, method, params, op))

    # One components/schemas section for every model: requests in validation mode, responses
    # in serialization mode (pydantic names them apart when the two differ).
    pairs: list[tuple[type[BaseModel], str]] = [(ErrorOut, "serialization")]
    for _path, _method, _params, op in found:
        if op.body is not None:
            pairs.append((op.body, "validation"))
        if op.query is not None:
            pairs.append((op.query, "validation"))
        pairs += [(m, "serialization") for m in op.responses.values()
                  if isinstance(m, type) and issubclass(m, BaseModel)]
    pairs = list(dict.fromkeys(pairs))
    refs, top = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    schemas = top.get("$defs", {})

    paths: dict[str, dict] = {}
    for path, method, params, op in found:
        item = paths.setdefault(path, {})
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": _operation_id(method, path),
            "responses": {},
        }
        if op.description:
            entry["description"] = op.description
        if op.tags:
            entry["tags"] = list(op.tags)
        parameters = list(params)
        if op.query is not None:
            parameters += _query_parameters(op.query, schemas, refs[(op.query, "validation")])
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": refs[(op.body, "validation")]}}}
        for status, model in sorted(op.responses.items()):
            response: dict[str, Any] = {"description": _status_description(status)}
            if isinstance(model, type) and issubclass(model, BaseModel):
                response["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
            elif isinstance(model, dict):
                response["content"] = {"application/json": {"schema": model}}
            entry["responses"][str(status)] = response
        for status in sorted(set(op.errors) | _implied_errors(op, method)):
            entry["responses"].setdefault(str(status), {
                "description": ERROR_DESCRIPTIONS.get(status, "Error"),
                "content": {"application/json": {"schema": refs[(ErrorOut, "serialization")]}},
            })
        entry["security"] = _security(op.auth, method)
        item[method.lower()] = entry

    return {
        "openapi": "3.1.0",
        "info": {"title": API_TITLE, "version": API_VERSION,
                 "description": "JSON API of the Songtao hall POS. Money is integer fen, quantities "
                                "integer thousandths of the product's unit (qty_milli). Every error is "
                                "JSON {\"error\": \"…\"} with an optional \"field\"."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "The logged-in user's session cookie"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                         "description": "The page's CSRF token; required on every session-authenticated "
                                        "POST, PUT, PATCH and DELETE"},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A counter's own token (counters' API)"},
            },
        },
    }


def _implied_errors(op: Operation, method: str) -> set[int]:
    implied = {422}  # any query argument with a control character is refused (pos.core.control_chars)
    if op.auth != "none":
        implied |= {401, 403}
    if op.body is not None:
        implied |= {400, 413, 422}
        if op.auth == "session":
            implied.add(400)  # a missing CSRF token
    if op.query is not None:
        implied.add(422)
    return implied


def _security(auth: str, method: str) -> list[dict]:
    if auth == "none":
        return []
    if auth == "bearer":
        return [{"bearer": []}]
    if auth == "session_or_bearer":
        session = [{"session": []}] if method in ("GET", "HEAD") else [{"session": [], "csrf": []}]
        return session + [{"bearer": []}]
    if method in ("GET", "HEAD"):
        return [{"session": []}]
    return [{"session": [], "csrf": []}]


def _query_parameters(model: type[BaseModel], schemas: dict, ref: dict) -> list[dict]:
    name = ref["$ref"].rsplit("/", 1)[1]
    schema = schemas[name]
    required = set(schema.get("required", []))
    params = []
    for arg, prop in schema.get("properties", {}).items():
        if prop.get("type") == "string" and "pattern" not in prop:
            prop = {**prop, "pattern": NO_CONTROL}  # refused before any view (pos.core.control_chars)
        param = {"name": arg, "in": "query", "required": arg in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[{}]", "", path[len(API_PREFIX):]).strip("/").replace(".", "_")
    return method.lower() + "_" + re.sub(r"[^A-Za-z0-9]+", "_", words).strip("_")


def _status_description(status: int) -> str:
    return {200: "OK", 201: "Created", 204: "No content"}.get(status, ERROR_DESCRIPTIONS.get(status, "Response"))
