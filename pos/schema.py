"""Every table of every package on one metadata (``pos.core.db.metadata``): imported by the app
factory, the migrations, the benchmarks and the tests' fixtures, before any engine is used. It
sits at pos/ itself, beside the factory, because it sees every package, the counters' included."""
import inventory.documents  # noqa: F401
import inventory.models  # noqa: F401
import inventory.stock_documents  # noqa: F401  (registers the hook that keeps posted documents immutable)
import kiosks.models  # noqa: F401
import pos.group.models  # noqa: F401
import pos.models  # noqa: F401
import pos.payments.attempts  # noqa: F401
import pos.payments.bill_models  # noqa: F401
from pos.core.db import metadata

__all__ = ["metadata"]
