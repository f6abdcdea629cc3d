"""The server's long-lived objects out of the cyclic garbage collector's way.

After start-up a server process holds some 140,000 objects that live as long as it does
(SQLAlchemy's tables, mappers and compiled statements, Flask's and Jinja's, the translation
catalogues). Python's full collection walks every one of them, about 80 ms on the hall's machine; a
checkout leaves a few dozen objects in reference cycles (its Session and transaction, its
connection's event dispatch), so a full collection comes every few hundred sales: some 0.2 ms a
sale, a tenth of a checkout on SQLite (bench.checkout, issue 16), paid as an 80 ms stall of one
till. ``settle`` moves what exists once start-up is done into the collector's permanent generation
(``gc.freeze``): it is no longer walked, and what requests leave behind is collected as before.
"""
from __future__ import annotations

import gc


def settle() -> int:
    """Collect what start-up left behind, then freeze the rest; returns how many objects froze."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


__all__ = ["settle"]
