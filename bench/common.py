"""What every benchmark shares: its command line (--database-url, --scale) and the database it
runs on (a temporary SQLite file unless a URL is given), brought to the newest migration."""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from sqlalchemy.engine import Engine

import pos.schema  # noqa: F401  (every table)
from pos.core.db import make_engine, normalise_url
from pos.migrate import upgrade


@dataclass
class BenchDatabase:
    url: str
    engine: Engine
    scale: int
    _tmp: Optional[tempfile.TemporaryDirectory] = None

    def close(self) -> None:
        self.engine.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()


def bench_database(argv, *, prog: str, doc: str, default_scale: int, scale_help: str,
                   parents: Sequence[argparse.ArgumentParser] = ()) -> BenchDatabase:
    """``parents``: the bench's own options (parsed by it before), so that --help lists them too."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0], parents=list(parents))
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--scale", type=int, default=default_scale, help=scale_help)
    args = parser.parse_args(argv)
    tmp = None
    url = args.database_url
    if not url:
        tmp = tempfile.TemporaryDirectory(prefix="songtao-bench-")
        url = f"sqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
    url = normalise_url(url)
    upgrade(url)
    return BenchDatabase(url, make_engine(url), max(1, args.scale), tmp)
