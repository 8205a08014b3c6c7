"""Private server instances on loopback, and what every instance offers the workloads.

Theory of operation
-------------------
Each server runs from its own directory under the run's temporary directory, with its own
configuration, on 127.0.0.1 and ports chosen free at start-up; the system's own configuration
and services are never read for settings, started or changed. An ``Instance`` says where its
SMTP, IMAP and POP3 listeners are (``None`` when it has none: Postfix has no IMAP, Dovecot no
SMTP), how to stop it, and which processes make it up, so memory is the sum of the resident
sizes of the whole process tree (Dovecot runs one process per IMAP session, courriel one for
all).

Mailboxes are shared between Postfix and Dovecot the way real installations share them: Postfix's
``virtual`` agent writes Maildirs under ``vmail/<domain>/<user>/`` and Dovecot reads the same
directories, all owned by one unprivileged account (``nobody``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from courriel.testing.net import free_ports  # noqa: F401 - re-exported for the servers

HOST = "127.0.0.1"
DOMAIN = "example.test"
PASSWORD = "bench-password-1"  # noqa: S105 - every private test account has this one


class ServerError(Exception):
    """A private instance could not be set up or started; the message says why."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    smtp: int | None = None
    imap: int | None = None
    pop3: int | None = None


class Instance(Protocol):
    name: str
    endpoints: Endpoints

    def pids(self) -> list[int]: ...

    async def stop(self) -> None: ...


async def wait_port(port: int, seconds: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Returns once ``port`` accepts a connection; raises ``ServerError`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f"the server exited with status {proc.returncode} while starting")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise ServerError(f"nothing listens on {HOST}:{port} after {seconds} s")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name sits in parentheses and may hold spaces; fields follow the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants alive now."""
    tree = _children()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def _summed(pids: Sequence[int], filename: str, field: str) -> int:
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/{filename}").read_text()
        except OSError:
            continue  # the process ended meanwhile: it holds no memory
        for ln in text.splitlines():
            if ln.startswith(field):
                total += int(ln.split()[1]) * 1024
                break
    return total


def rss_bytes(pids: Sequence[int]) -> int:
    """The summed resident set size of ``pids``: shared pages count once per process."""
    return _summed(pids, "status", "VmRSS:")


def pss_bytes(pids: Sequence[int]) -> int:
    """The summed proportional set size: each shared page split among its sharers."""
    return _summed(pids, "smaps_rollup", "Pss:")


def run_quiet(argv: list[str], what: str, timeout: float = 60) -> str:
    """Runs a helper command; raises ``ServerError`` with its output when it fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ServerError(f"{what}: {e}") from e
    if done.returncode != 0:
        out = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ServerError(f"{what} failed: {' / '.join(out)}")
    return done.stdout


async def terminate(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; waits for the exit either way."""
    if proc.poll() is None:
        proc.terminate()
    try:
        await asyncio.to_thread(proc.wait, grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        await asyncio.to_thread(proc.wait)


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Starts ``argv`` with its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def make_dirs(path: Path, uid: int, gid: int, mode: int = 0o755) -> None:
    """Creates ``path`` and its missing parents, each owned by ``uid``:``gid``."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=mode)
        os.chown(d, uid, gid)
