"""``python -m bench.sort_bench`` keeps working: a small mailbox, every command answered
(the bench itself asserts each tagged OK); the timings are printed, not judged here."""

from __future__ import annotations

import pytest

from bench import sort_bench


async def test_sort_bench_runs_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    await sort_bench.main_async(120)
    out = capsys.readouterr().out
    assert "filled 120 messages" in out
    for command in sort_bench.COMMANDS:
        assert command.decode()[2:] in out
    assert "first SORT after migration 0017 (backfill)" in out
