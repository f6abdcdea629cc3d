"""Re-exported so that pos code reads ``from pos.audit import record``."""
from inventory.audit import record  # noqa: F401
