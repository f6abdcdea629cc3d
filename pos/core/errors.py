"""Domain errors of the point of sale.

Every error is a ``ValueError`` whose ``str()`` is a message for the person at the till (a lazy
Chinese message id, shown in the current language). Views and the JSON API map the classes to
HTTP: NotFound 404, Conflict 409, ApprovalRequired 403, any other PosError 422.
"""
from __future__ import annotations

from typing import Any, Optional


class PosError(ValueError):
    """Base of every POS domain error; ``str(exc)`` is the message for the person."""

    def __init__(self, message: Any = "", field: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return str(self.message)


class NotFound(PosError):
    """The sale, refund, shift or till asked for does not exist."""


class Conflict(PosError):
    """The same client id was sent again with different content (idempotency conflict)."""


class ApprovalRequired(PosError):
    """A discount over the limit, a refund or a void without an active manager's approval."""


class ShiftError(PosError):
    """Opening, closing or using a shift in a way the rules refuse."""


class RefundError(PosError):
    """A refund the rules refuse (more than was sold, a voided sale …)."""


class PaymentError(PosError):
    """Payments that do not add up to the amount due, or are malformed."""


__all__ = ["PosError", "NotFound", "Conflict", "ApprovalRequired", "ShiftError", "RefundError", "PaymentError"]
