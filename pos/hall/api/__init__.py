"""The till's JSON API under /api/v1: one blueprint ``api`` (``base``, with what every endpoint
shares: the body limit, the till a request names, the manager approving by PIN) and the endpoint
modules that register on it: products, search and quick keys (``products``), the till's offline
catalogue and its changes (``catalogue``), the running total,
sales, voids, approvals and refunds (``sales``), shifts (``shifts``), reserved receipt numbers
(``receipt_blocks``) and the OpenAPI document (``document``). Thin handlers: parse (pydantic
models, pos.core.openapi), call the domain function (pos.sales.service, pos.sales.refunds,
pos.sales.receipt_blocks, pos.hall.shifts), answer JSON. Domain errors become 4xx answers
(pos.core.openapi.register_error_handlers) and the request's unit of work is rolled back, so a
refused request changes nothing.

Session-authenticated: the cashier is ``current_user``; every POST carries the page's CSRF token
in the ``X-CSRFToken`` header (CSRFProtect is global). Money is integer fen, quantities integer
qty_milli; the server prices everything itself.
"""
from pos.hall.api import catalogue, document, payment_codes, products, receipt_blocks, sales, shifts  # noqa: F401  (each registers its endpoints on bp)
from pos.hall.api.base import bp

__all__ = ["bp"]
