"""Workload 6: POP3 RETR of a whole maildrop; messages/s and MB/s.

Theory of operation
-------------------
The ``pop`` account's maildrop holds ``MESSAGES`` corpus messages of the corpus's natural sizes
(2 KB to 1 MB, most near 10 KB), the same on every server. One session logs in, sends STAT and
then RETR for every message in order, reading each answer to its terminating line, and QUITs
without DELE, so the maildrop is unchanged for the next repetition. The clock runs from the
first RETR to the end of the last answer; the rate is the median over ``repeats`` sessions, and
MB/s counts the octets of the answers as received (dot-stuffed, RFC 1939 §3).
"""

from __future__ import annotations

import asyncio
import time

from bench.clients import ClientError, Pop3Client
from bench.corpus import Corpus
from bench.fill import Item, address
from bench.report import COURRIEL, Better, Row, Table, median
from bench.servers import HOST, PASSWORD
from bench.workloads import Context, alternating

ACCOUNT = address("pop")
MESSAGES = 1000
TIME_LIMIT = 120.0
SERVERS = (COURRIEL, "dovecot")


class Pop3Workload:
    name = "pop3"

    def accounts(self, quick: bool) -> list[str]:
        return [ACCOUNT]

    def mailboxes(self, quick: bool, corpus: Corpus) -> dict[str, list[Item]]:
        return {ACCOUNT: [Item(m.raw) for m in corpus.messages(MESSAGES)]}

    async def run(self, ctx: Context) -> list[Table]:
        rate: dict[str, float | str] = {}
        throughput: dict[str, float | str] = {}

        async def measure(server: str) -> tuple[int, int, float]:
            port = ctx.instances[server].endpoints.pop3
            assert port is not None
            return await _once(port)

        measured = await alternating(
            SERVERS, ctx.repeats, measure, lambda server: ctx.why_not(server, "pop3")
        )
        for server, runs in measured.items():
            if isinstance(runs, str):
                rate[server] = throughput[server] = runs
                continue
            rate[server] = median([n / t for n, _, t in runs])
            throughput[server] = median([b / t / 1e6 for _, b, t in runs])
        shape = f"{MESSAGES:,}-message maildrop"
        return [
            Table(
                self.name,
                "POP3: RETR of a whole maildrop",
                "per second",
                Better.HIGHER,
                SERVERS,
                "dovecot",
                (Row(f"messages, {shape}", rate), Row(f"MB, {shape}", throughput)),
            ),
        ]


async def _once(port: int) -> tuple[int, int, float]:
    """(messages, octets, seconds) of one whole-maildrop RETR session."""
    pop, greeting = await Pop3Client.connect(HOST, port)
    try:
        if not greeting.startswith(b"+OK"):
            raise ClientError(f"greeting {greeting[:60]!r}")
        await pop.login(ACCOUNT, PASSWORD)
        stat = await pop.command(b"STAT")
        count = int(stat.split()[1])
        if count < MESSAGES:
            raise ClientError(f"the maildrop holds {count} messages, not {MESSAGES}")
        octets = 0
        start = time.perf_counter()
        async with asyncio.timeout(TIME_LIMIT):
            for n in range(1, MESSAGES + 1):
                octets += await pop.retr(n)
        return MESSAGES, octets, time.perf_counter() - start
    finally:
        await pop.quit()
