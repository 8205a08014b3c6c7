"""Results: the statistics kept, the tables printed and the JSON file written.

Theory of operation
-------------------
A workload returns ``Table``s: rows (one per load shape: "4 KB, 20 sessions"), a value per
server, and the name of the anchor -- the established server courriel is compared with. A value
is a number, or a sentence saying why there is none ("courriel: imap not available yet"), so a
missing measurement is visible in the same place as the number would be. ``render`` lays a
table out in fixed-width text with a ``courriel/<anchor>`` ratio column; whether a ratio above 1
is good depends on the metric, and the heading says which way is better.

Repeated measurements are reduced with ``median`` (the middle of at least three runs is robust
to one disturbed run); latencies are summarised by ``percentile`` (linear interpolation between
closest ranks, the common "type 7" definition, so p50 of an even count is the mean of the middle
two).

``write_json`` stores everything -- machine, options, tables, the extra text outputs -- under
``bench/results/<UTC timestamp>.json``.
"""

from __future__ import annotations

import enum
import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
COURRIEL = "courriel"
CELL_TEXT = 60

Value = float | str


class Better(enum.Enum):
    HIGHER = "higher"
    LOWER = "lower"


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100), interpolating linearly between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def ratio(value: Value | None, anchor: Value | None) -> float | None:
    """courriel / anchor, or None when either is missing or the anchor is zero."""
    if not isinstance(value, int | float) or not isinstance(anchor, int | float):
        return None
    if anchor == 0:
        return None
    return value / anchor


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    values: dict[str, Value]  # server name -> number, or why there is no number


@dataclass(frozen=True, slots=True)
class Table:
    workload: str
    title: str
    unit: str
    better: Better
    servers: tuple[str, ...]
    anchor: str
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()

    def ratios(self) -> list[float | None]:
        return [ratio(r.values.get(COURRIEL), r.values.get(self.anchor)) for r in self.rows]


@dataclass(frozen=True, slots=True)
class Extra:
    """The text output of a helper benchmark, shown as it came."""

    title: str
    lines: tuple[str, ...]


def _fmt(value: Value | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        # The table keeps a column readable; the JSON file has the whole sentence.
        return value if len(value) <= CELL_TEXT else value[: CELL_TEXT - 3] + "..."
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def render(table: Table) -> str:
    """The table in fixed-width text, a ratio column last."""
    ratio_head = f"{COURRIEL}/{table.anchor}"
    head = [table.unit, *table.servers, ratio_head]
    body = []
    for row, r in zip(table.rows, table.ratios(), strict=True):
        cells = [row.label, *(_fmt(row.values.get(s)) for s in table.servers)]
        cells.append("-" if r is None else f"{r:.2f}" if abs(r) >= 0.1 else f"{r:.2g}")
        body.append(cells)
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    out = [f"== {table.title} ({table.better.value} is better)", line(head)]
    out.append("  ".join("-" * w for w in widths))
    out += [line(cells) for cells in body]
    out += [f"   {note}" for note in table.notes]
    return "\n".join(out)


def render_extra(extra: Extra) -> str:
    return "\n".join([f"== {extra.title}", *(f"   {ln}" for ln in extra.lines)])


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    for ln in text.splitlines():
        if ln.startswith("model name"):
            return ln.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_total() -> int | None:
    try:
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal:"):
                return int(ln.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class Machine:
    cpus: int
    cpu_model: str
    memory_bytes: int | None
    python: str
    uvloop: bool
    platform: str
    versions: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        mem = f"{self.memory_bytes / 2**30:.1f} GiB" if self.memory_bytes else "unknown memory"
        loop = "uvloop" if self.uvloop else "asyncio"
        soft = ", ".join(f"{k} {v}" for k, v in sorted(self.versions.items()))
        return (
            f"{self.cpus} CPU ({self.cpu_model}), {mem}, Python {self.python} ({loop}), "
            f"{self.platform}" + (f"; {soft}" if soft else "")
        )


def machine(uvloop_used: bool, versions: dict[str, str]) -> Machine:
    return Machine(
        cpus=os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        memory_bytes=_memory_total(),
        python=platform.python_version(),
        uvloop=uvloop_used,
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        versions=versions,
    )


def _jsonable(table: Table) -> dict[str, object]:
    data = asdict(table)
    data["better"] = table.better.value
    data["ratios"] = table.ratios()
    return data


def write_json(
    started: datetime,
    host: Machine,
    options: dict[str, object],
    tables: Sequence[Table],
    extras: Sequence[Extra],
    directory: Path = RESULTS_DIR,
) -> Path:
    """Writes the run to ``<directory>/<timestamp>.json`` and returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{started.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    doc = {
        "started": started.astimezone(UTC).isoformat(),
        "argv": sys.argv[1:],
        "machine": asdict(host),
        "options": options,
        "tables": [_jsonable(t) for t in tables],
        "extras": [asdict(e) for e in extras],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
