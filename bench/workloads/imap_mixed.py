"""Workload 2: a mixed IMAP command load from concurrent clients; commands/s, p50 and p99.

Theory of operation
-------------------
Each client has its own account, whose INBOX starts with the same ``MESSAGES`` corpus messages
on every server. A client logs in, selects INBOX and then runs ``rounds`` rounds of what a mail
client does while a person reads mail: list the headers of a page of messages, read one whole
message, mark it seen, search (alternately by flag and by subject), append a sent message, flag
it deleted and expunge it (so the mailbox ends each round as it began), and a short IDLE. Then
it logs out. Every command's latency is measured from the write to the tagged reply (for IDLE,
from the command to the tagged reply after DONE; for APPEND, including the continuation).

The message numbers read are drawn from a ``random.Random`` seeded per client, so every server
sees the same sequence. The run is bounded by ``rounds`` and by ``TIME_LIMIT``. The repeats
alternate between the servers (``bench.workloads.alternating``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable

from bench.clients import ClientError, ImapClient
from bench.corpus import Corpus
from bench.fill import Item, address
from bench.report import COURRIEL, Better, Row, Table, median, percentile
from bench.servers import HOST, PASSWORD
from bench.workloads import Context, alternating, run_all, small_pool

MESSAGES = 100
TIME_LIMIT = 120.0
SERVERS = (COURRIEL, "dovecot")
_SUBJECTS = (b"report", b"meeting", b"budget", b"release")


def _clients(quick: bool) -> int:
    return 10 if quick else 20


def _rounds(quick: bool) -> int:
    return 10 if quick else 40


class ImapMixedWorkload:
    name = "imap"

    def accounts(self, quick: bool) -> list[str]:
        return [address(f"mixed{i}") for i in range(_clients(quick))]

    def mailboxes(self, quick: bool, corpus: Corpus) -> dict[str, list[Item]]:
        pool = small_pool(corpus, MESSAGES, 256 * 1024)
        items = [
            Item(raw, frozenset({"\\Seen"}) if i % 3 else frozenset()) for i, raw in enumerate(pool)
        ]
        return dict.fromkeys(self.accounts(quick), items)

    async def run(self, ctx: Context) -> list[Table]:
        rate: dict[str, float | str] = {}
        p50: dict[str, float | str] = {}
        p99: dict[str, float | str] = {}
        appended = ctx.corpus.get(7, size=4 * 1024).raw

        async def measure(server: str) -> tuple[float, list[float]]:
            port = ctx.instances[server].endpoints.imap
            assert port is not None
            return await self._once(ctx, port, appended)

        measured = await alternating(
            SERVERS, ctx.repeats, measure, lambda server: ctx.why_not(server, "imap")
        )
        for server, runs in measured.items():
            if isinstance(runs, str):
                rate[server] = p50[server] = p99[server] = runs
                continue
            rate[server] = median([r for r, _ in runs])
            p50[server] = median([percentile(lat, 50) * 1000 for _, lat in runs])
            p99[server] = median([percentile(lat, 99) * 1000 for _, lat in runs])
        n = _clients(ctx.quick)
        shape = f"{n} clients x {_rounds(ctx.quick)} rounds"
        return [
            Table(
                self.name,
                "IMAP: mixed command load, throughput",
                "commands/s",
                Better.HIGHER,
                SERVERS,
                "dovecot",
                (Row(shape, rate),),
            ),
            Table(
                self.name,
                "IMAP: mixed command load, latency per command",
                "ms",
                Better.LOWER,
                SERVERS,
                "dovecot",
                (Row(f"p50, {shape}", p50), Row(f"p99, {shape}", p99)),
            ),
        ]

    async def _once(self, ctx: Context, port: int, appended: bytes) -> tuple[float, list[float]]:
        latencies: list[float] = []
        start = time.perf_counter()
        clients = [
            _client(port, addr, i, _rounds(ctx.quick), appended, latencies)
            for i, addr in enumerate(self.accounts(ctx.quick))
        ]
        await run_all(clients, TIME_LIMIT)
        return len(latencies) / (time.perf_counter() - start), latencies


async def _timed(latencies: list[float], op: Callable[[], Awaitable[object]]) -> None:
    t0 = time.perf_counter()
    await op()
    latencies.append(time.perf_counter() - t0)


async def _client(
    port: int, addr: str, index: int, rounds: int, appended: bytes, latencies: list[float]
) -> None:
    rng = random.Random(f"imap-mixed:{index}")
    imap, greeting = await ImapClient.connect(HOST, port)
    try:
        if not greeting.startswith(b"* OK"):
            raise ClientError(f"greeting {greeting[:60]!r}")
        await _timed(latencies, lambda: imap.login(addr, PASSWORD))
        await _timed(latencies, lambda: imap.ok(b"SELECT INBOX"))
        for r in range(rounds):
            await _round(imap, rng, r, appended, latencies)
    finally:
        await imap.logout()


async def _round(
    imap: ImapClient, rng: random.Random, r: int, appended: bytes, latencies: list[float]
) -> None:
    first = rng.randrange(1, MESSAGES - 20)
    n = rng.randrange(1, MESSAGES + 1)
    page = b"FETCH %d:%d (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"
    search = b"SEARCH UNSEEN" if r % 2 else b"SEARCH SUBJECT " + rng.choice(_SUBJECTS)
    steps: list[Callable[[], Awaitable[object]]] = [
        lambda: imap.ok(page % (first, first + 19)),
        lambda: imap.ok(b"FETCH %d BODY.PEEK[]" % n),
        lambda: imap.ok(b"STORE %d +FLAGS.SILENT (\\Seen)" % n),
        lambda: imap.ok(search),
        lambda: imap.ok(b"APPEND INBOX (\\Seen)", appended),
        lambda: imap.ok(b"STORE * +FLAGS.SILENT (\\Deleted)"),
        lambda: imap.ok(b"EXPUNGE"),
        lambda: _idle(imap),
        lambda: imap.ok(b"NOOP"),
    ]
    for step in steps:
        await _timed(latencies, step)


async def _idle(imap: ImapClient) -> None:
    tag = await imap.idle()
    resp = await imap.done(tag)
    if resp.status != b"OK":
        raise ClientError(f"IDLE ended with {resp.status!r} {resp.text[:60]!r}")
