"""The OpenAPI document of every JSON endpoint, served at /api/v1/openapi.json."""
from __future__ import annotations

from flask import current_app, jsonify

from pos.core.openapi import bearer_may_read_document, build_document, operation
from pos.core.web import requires
from pos.hall.api.base import bp


def _document():
    document = current_app.extensions.get("songtao.openapi")
    if document is None:  # built once: the url_map does not change after start-up
        document = current_app.extensions["songtao.openapi"] = build_document(current_app)
    return jsonify(document)


_document_for_users = requires("account")(_document)


@bp.get("/openapi.json")
@operation("This OpenAPI 3.1 document", responses={200: {"type": "object"}}, tags=("meta",),
           auth="session_or_bearer",
           description="For logged-in users, and for counter integrators with a counter's bearer token.")
def openapi_document():
    if bearer_may_read_document():
        return _document()
    return _document_for_users()


openapi_document.required_area = "account"  # or a counter's token (tests/accounts/test_roles.py)
