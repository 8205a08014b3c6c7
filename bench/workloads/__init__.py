"""What a workload is, and the context every workload runs in.

Theory of operation
-------------------
A workload declares, before any server starts, the accounts it needs and what their INBOXes
hold (``accounts``, ``mailboxes``), so ``bench.run`` can fill every server the same way in one
go. Then ``run`` gets a ``Context``: the live instances by name, which of courriel's protocols
answer for real, the size of the run (``quick``) and the number of repetitions. It returns its
tables; a server that cannot take part gets a sentence instead of a number in its column.

Workloads own their users: each prefixes its local parts with its own name, so one workload's
deliveries and expunges never change what another one measures.

A comparison's repeats alternate between the servers (``alternating``): courriel then the
anchor, then the anchor first, and so on, so neither server always runs straight after the
previous workload (whose writes the disk may still be flushing) and a drift of the machine's
speed during the measurement weighs on both alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bench.clients import ClientError
from bench.corpus import Corpus
from bench.fill import Item
from bench.report import COURRIEL, Table
from bench.servers import Instance

T = TypeVar("T")


@dataclass(slots=True)
class Context:
    instances: dict[str, Instance]  # "courriel", "dovecot", "postfix" -> running instance
    live: dict[str, bool]  # courriel's protocols that answer for real: "smtp", "imap", "pop3"
    quick: bool
    repeats: int
    corpus: Corpus
    vmail: Path
    skipped: dict[str, str] = field(default_factory=dict)  # server -> why it is not running
    workdir: Path = Path()  # the run's temporary directory, for servers a workload starts itself
    # Messages courriel acknowledged per account, checked against its store after the run.
    acknowledged: dict[str, int] = field(default_factory=dict)

    def why_not(self, server: str, protocol: str) -> str | None:
        """None when ``server`` can be measured on ``protocol``, else the reason shown."""
        if server in self.skipped:
            return self.skipped[server]
        if server not in self.instances:
            return f"{server}: not running"
        if server == COURRIEL and not self.live.get(protocol, False):
            return f"courriel: {protocol} not available yet"
        return None


class Workload(Protocol):
    name: str

    def accounts(self, quick: bool) -> list[str]: ...

    def mailboxes(self, quick: bool, corpus: Corpus) -> dict[str, list[Item]]: ...

    async def run(self, ctx: Context) -> list[Table]: ...


# What a failed measurement raises; the server's column then says why instead of a number.
MEASUREMENT_ERRORS = (ClientError, OSError, TimeoutError)


async def alternating(
    servers: Sequence[str],
    repeats: int,
    measure: Callable[[str], Awaitable[T]],
    why_not: Callable[[str], str | None],
) -> dict[str, list[T] | str]:
    """``repeats`` runs of ``measure`` per server, the order of the servers reversed at every
    repeat; per server, its runs, or the sentence saying why it has none (``why_not``, or its
    first failure, after which it is not measured again)."""
    out: dict[str, list[T] | str] = {}
    for server in servers:
        why = why_not(server)
        out[server] = why if why is not None else []
    for repeat in range(repeats):
        order = servers if repeat % 2 == 0 else tuple(reversed(servers))
        for server in order:
            runs = out[server]
            if isinstance(runs, str):
                continue
            try:
                runs.append(await measure(server))
            except MEASUREMENT_ERRORS as e:
                out[server] = f"{server}: failed ({e})"
    return out


def small_pool(corpus: Corpus, count: int, max_size: int) -> list[bytes]:
    """``count`` distinct corpus messages no larger than ``max_size`` (mailbox filler)."""
    out: list[bytes] = []
    i = 0
    while len(out) < count and i < count * 20:
        if corpus.size_of(i) <= max_size:
            out.append(corpus.get(i).raw)
        i += 1
    if not out:
        raise ValueError(f"no corpus message is under {max_size} octets")
    return out


async def run_all(coros: Sequence[Coroutine[Any, Any, T]], seconds: float) -> list[T]:
    """Runs ``coros`` together within ``seconds``; the first failure cancels the others.

    A failed measurement must not leave sessions running into the next one.
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        async with asyncio.timeout(seconds):
            return await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def bounded(
    jobs: Sequence[Callable[[], Awaitable[T]]], limit: int, seconds: float
) -> list[T]:
    """Runs ``jobs`` with at most ``limit`` at a time; all of them within ``seconds``."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return await run_all([one(j) for j in jobs], seconds)


def elapsed_since(start: float) -> float:
    return time.perf_counter() - start
