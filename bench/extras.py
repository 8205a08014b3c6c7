"""What a run reports besides the workload tables: helper benchmarks, durability, profile.

Theory of operation
-------------------
* ``helpers`` runs the micro-benchmarks that live beside this suite as their own programs --
  ``bench/smtp_core.py`` (CPU per SMTP session in the sans-IO core) and ``bench/store_bench.py``
  (the storage layer, when it exists; not in ``--quick``, where its database set-up alone would
  pass the time budget) -- each in a child process with a time limit, and keeps their output as
  it came.
* ``durability_check`` opens courriel's store after the server stopped and checks that every
  account holds at least as many messages as courriel acknowledged with 250: the SMTP rate
  counts stored messages only if this holds.
* ``start_profile`` / ``stop_profile`` sample the running courriel with py-spy (when it is on
  PATH) and summarise the samples twice: the functions most often on top of the stack (where
  the CPU goes), and courriel's functions most often anywhere on it (which operation costs).
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from bench.report import Extra
from courriel import config
from courriel.store.open import open_store

BENCH_DIR = Path(__file__).resolve().parent
HELPER_LIMIT = 300.0
TOP = 15


def _run_helper(script: Path, args: list[str]) -> tuple[str, ...]:
    try:
        done = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            timeout=HELPER_LIMIT,
            cwd=BENCH_DIR.parent,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return (f"stopped after {HELPER_LIMIT:.0f} s",)
    except OSError as e:
        return (f"could not run: {e}",)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0:
        lines += [f"exit status {done.returncode}", *done.stderr.strip().splitlines()[-5:]]
    return tuple(lines)


async def helpers(quick: bool) -> list[Extra]:
    out = []
    core = BENCH_DIR / "smtp_core.py"
    if core.exists():
        args = ["--rounds", "300" if quick else "2000"]
        lines = await asyncio.to_thread(_run_helper, core, args)
        out.append(Extra("SMTP core CPU per session (bench/smtp_core.py)", lines))
    store = BENCH_DIR / "store_bench.py"
    if store.exists() and quick:
        # It takes most of a minute even when small (it creates PostgreSQL databases).
        note = "skipped in --quick; 'make bench' or 'python bench/store_bench.py' runs it"
        out.append(Extra("Store (bench/store_bench.py)", (note,)))
    elif store.exists():
        lines = await asyncio.to_thread(_run_helper, store, [])
        out.append(Extra("Store (bench/store_bench.py)", lines))
    else:
        out.append(Extra("Store (bench/store_bench.py)", ("not present in this checkout",)))
    return out


async def durability_check(config_path: Path, acknowledged: Mapping[str, int]) -> Extra:
    title = "courriel: acknowledged messages found in the store after the run"
    if not acknowledged:
        return Extra(title, ("no message was acknowledged by courriel in this run",))
    store = await open_store(config.load(config_path))
    lines = []
    short = 0
    try:
        for addr, sent in sorted(acknowledged.items()):
            user = await store.get_user(addr)
            inbox = await store.get_mailbox(user.id, "INBOX") if user else None
            held = len(await store.list_messages(inbox.id)) if inbox else 0
            if held < sent:
                short += 1
                lines.append(f"{addr}: {sent} acknowledged, only {held} stored")
    finally:
        await store.close()
    total = sum(acknowledged.values())
    summary = f"all {total} acknowledged messages stored" if not short else f"{short} short"
    return Extra(title, (summary, *lines))


def start_profile(pid: int, root: Path) -> tuple[subprocess.Popen[bytes], Path] | None:
    """Starts sampling ``pid`` with py-spy; None (and a message) when py-spy is missing."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(spy, os.X_OK):
        print("--profile: py-spy is not installed; no profile taken", flush=True)
        return None
    out = root / "courriel-profile.txt"
    # --gil: only the thread running Python code, so idle pool threads do not count;
    # --nonblocking: never pause courriel to read its stacks, which would distort the figures;
    # --subprocesses: the worker processes of ``courriel serve``, where the sessions run.
    argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200"]
    argv += ["--gil", "--nonblocking", "--subprocesses", "-o", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, out


def top_frames(collapsed: str, top: int = TOP) -> list[tuple[str, float]]:
    """The ``top`` innermost frames by share of samples, from py-spy's collapsed stacks."""
    self_time: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        self_time[leaf] += int(count)
        total += int(count)
    if total == 0:
        return []
    return [(frame, n / total) for frame, n in self_time.most_common(top)]


def _keep(samples: Path, kept: Path) -> str:
    collapsed = samples.read_text(errors="replace")
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(collapsed)
    return collapsed


def inclusive_frames(
    collapsed: str, marker: str = "courriel/", top: int = TOP
) -> list[tuple[str, float]]:
    """courriel's functions by share of samples in which they are anywhere on the stack."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            if marker in frame:
                inclusive[frame] += int(count)
    if total == 0:
        return []
    return [(frame, n / total) for frame, n in inclusive.most_common(top)]


async def stop_profile(
    profiler: tuple[subprocess.Popen[bytes], Path] | None, results: Path, started: datetime
) -> Extra:
    title = "courriel profile: functions on top of the stack (share of samples)"
    if profiler is None:
        return Extra(title, ("no profile (py-spy not installed)",))
    proc, out = profiler
    proc.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
    try:
        await asyncio.wait_for(asyncio.to_thread(proc.wait), 60)
    except TimeoutError:
        proc.kill()
        return Extra(title, ("py-spy did not finish writing its samples",))
    if not out.exists():
        return Extra(title, ("py-spy wrote no samples (is ptrace allowed?)",))
    kept = results / f"{started.strftime('%Y%m%dT%H%M%SZ')}-courriel-profile.txt"
    collapsed = await asyncio.to_thread(_keep, out, kept)
    lines = [f"{share * 100:5.1f}%  {frame}" for frame, share in top_frames(collapsed)]
    lines.append("courriel's functions anywhere on the stack (share of samples):")
    lines += [f"{share * 100:5.1f}%  {frame}" for frame, share in inclusive_frames(collapsed)]
    return Extra(title, (*lines, f"collapsed stacks: {kept}"))
