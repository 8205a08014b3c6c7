"""Statistics, tables and the JSON file of a run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.report import (
    Better,
    Extra,
    Row,
    Table,
    machine,
    median,
    percentile,
    ratio,
    render,
    render_extra,
    write_json,
)


def test_median_of_odd_and_even_counts() -> None:
    assert median([5.0, 1.0, 3.0]) == 3.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError, match="no values"):
        median([])


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.5
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="within"):
        percentile(values, 101)


def test_ratio_needs_two_numbers_and_a_nonzero_anchor() -> None:
    assert ratio(50.0, 100.0) == 0.5
    assert ratio("courriel: smtp not available yet", 100.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None


def _table() -> Table:
    return Table(
        workload="smtp",
        title="SMTP: messages stored per second",
        unit="messages/s",
        better=Better.HIGHER,
        servers=("courriel", "postfix"),
        anchor="postfix",
        rows=(
            Row("4 KB, 1 session", {"courriel": 300.0, "postfix": 150.0}),
            Row(
                "4 KB, 20 sessions",
                {"courriel": "courriel: smtp not available yet", "postfix": 540.0},
            ),
        ),
        notes=("a note",),
    )


def test_render_shows_every_server_and_the_ratio() -> None:
    text = render(_table())
    lines = text.splitlines()
    assert lines[0] == "== SMTP: messages stored per second (higher is better)"
    assert lines[1].split() == ["messages/s", "courriel", "postfix", "courriel/postfix"]
    first = lines[3].split()
    assert first[-3:] == ["300", "150", "2.00"]
    assert "courriel: smtp not available yet" in lines[4]
    assert lines[4].rstrip().endswith("-")  # no ratio without a number
    assert lines[-1].strip() == "a note"
    widths = {len(ln) for ln in lines[1:3]}
    assert len(widths) == 1  # the header and the rule line up


def test_small_ratios_keep_significant_digits() -> None:
    t = Table(
        "push",
        "Push",
        "ms",
        Better.LOWER,
        ("courriel", "pair"),
        "pair",
        (Row("p50", {"courriel": 1.5, "pair": 450.0}),),
    )
    assert render(t).splitlines()[3].split()[-1] == "0.0033"


def test_render_extra_indents_the_lines() -> None:
    assert render_extra(Extra("Core", ("a", "b"))) == "== Core\n   a\n   b"


def test_write_json_keeps_tables_machine_and_extras(tmp_path: Path) -> None:
    started = datetime(2026, 11, 27, 18, 0, 5, tzinfo=UTC)
    host = machine(True, {"dovecot": "2.3"})
    path = write_json(started, host, {"quick": True}, [_table()], [Extra("X", ("y",))], tmp_path)
    assert path == tmp_path / "20261127T180005Z.json"
    doc = json.loads(path.read_text())
    assert doc["machine"]["uvloop"] is True
    assert doc["machine"]["cpus"] >= 1
    assert doc["machine"]["versions"] == {"dovecot": "2.3"}
    assert doc["options"] == {"quick": True}
    table = doc["tables"][0]
    assert table["better"] == "higher"
    assert table["ratios"] == [2.0, None]
    assert table["rows"][1]["values"]["postfix"] == 540.0
    assert doc["extras"] == [{"title": "X", "lines": ["y"]}]
    assert not list(tmp_path.glob("*.tmp"))
