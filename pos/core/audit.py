"""Re-exported so that pos code reads ``from pos.core.audit import record``."""
from inventory.audit import record  # noqa: F401
