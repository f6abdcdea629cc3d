"""pos.core.heap: the server's start-up objects frozen out of the collector's way (issue 16), and
``songtao serve`` doing it once the app is built, before it serves."""
from __future__ import annotations

import gc

import pytest
from click.testing import CliRunner

from pos import cli
from pos.core import heap


@pytest.fixture
def thawed():
    yield
    gc.unfreeze()  # the test process's objects back to the collector


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settle_freezes_what_exists_and_later_garbage_is_still_collected(thawed):
    gc.unfreeze()
    before = _Cycle()
    frozen = heap.settle()
    assert frozen > 0 and gc.get_freeze_count() == frozen
    assert not any(o is before for o in gc.get_objects())  # frozen: no generation walks it
    after = _Cycle()
    del after
    assert gc.collect() >= 1  # a cycle made after start-up is collected as before
    assert before.me is before


def test_serve_settles_the_heap_after_building_the_app_and_before_serving(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli, "_app", lambda: calls.append("app") or object())
    monkeypatch.setattr(cli, "_require_schema", lambda app: calls.append("schema"))
    monkeypatch.setattr(cli.heap, "settle", lambda: calls.append("settle") or 0)
    monkeypatch.setattr(cli, "_serve", lambda app, host, port, threads: calls.append("serve"))
    monkeypatch.setenv("SONGTAO_INSTANCE", str(tmp_path / "instance"))
    result = CliRunner().invoke(cli.main, ["serve"])
    assert result.exit_code == 0, result.output
    assert calls == ["app", "schema", "settle", "serve"]
