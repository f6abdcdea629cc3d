"""Domain errors of the ``inventory`` package.

Every error is a ``ValueError`` whose ``str()`` is a message for the person at the counter (in the
current language), never a stack trace: views catch ``InventoryError`` and flash ``str(exc)``.
"""
from __future__ import annotations

from typing import Any, Optional


class InventoryError(ValueError):
    """Base of every inventory domain error; ``str(exc)`` is the message for the person."""

    def __init__(self, message: Any = "", *args: Any) -> None:
        super().__init__(message, *args)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


class NotFound(InventoryError):
    """The thing asked for does not exist."""


class ValidationError(InventoryError):
    """A value was refused; ``field`` names the form field / column it belongs to, if any."""

    def __init__(self, message: Any = "", field: Optional[str] = None) -> None:
        super().__init__(message)
        self.field = field


__all__ = ["InventoryError", "NotFound", "ValidationError"]
