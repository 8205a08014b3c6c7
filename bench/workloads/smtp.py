"""Workload 1: durable accepted-and-stored messages per second over SMTP.

Theory of operation
-------------------
For each message size (4 KB, 64 KB) and number of concurrent sessions (1, 20, 100), a fixed
number of messages is shared out among the sessions; each session sends EHLO once, then one
transaction after another (MAIL, RCPT, DATA, no pipelining, the same for every server) until the
shared count is used up or the sending window (1.5 s in ``--quick``, 20 s otherwise) has passed;
the rate is what was stored divided by the time it took. Recipients rotate over the workload's
accounts.

The clock stops when the messages are *stored*, not when they are accepted:

* courriel sends 250 only after the message is durable in its store (DESIGN.md), so the clock
  stops at the last 250; ``bench.run`` checks after the run that the store holds every
  acknowledged message and says so if not.
* Postfix sends 250 once the queue file is safe, then delivers in the background, so the clock
  stops when its queue directories are empty and the Maildirs hold every message sent.

Each shape is run ``repeats`` times per server, the servers taking turns
(``bench.workloads.alternating``), and the median rate is kept.
"""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

from bench.clients import ClientError, SmtpClient, dot_stuff
from bench.corpus import Corpus
from bench.fill import Item, address, maildir
from bench.report import COURRIEL, Better, Row, Table, median
from bench.servers import HOST, Instance
from bench.servers.postfix import Postfix
from bench.workloads import Context, alternating, run_all

SIZES = (4 * 1024, 64 * 1024)
SESSIONS = (1, 20, 100)
ACCOUNTS = 20
SENDER = "load@sender.example.net"
TIME_LIMIT = 60.0  # seconds for one measurement, sending and storing
SERVERS = (COURRIEL, "postfix")


def _send_window(quick: bool) -> float:
    """Seconds after which sessions start no new transaction, whatever is left of the count."""
    return 1.5 if quick else 20.0


def _count(quick: bool, sessions: int, size: int) -> int:
    """Messages per measurement: enough that start-up and the delivery tail weigh little."""
    n = {1: 40, 20: 150, 100: 200}[sessions] if quick else {1: 300, 20: 2000, 100: 3000}[sessions]
    return n // 2 if size > 16 * 1024 else n


class SmtpWorkload:
    name = "smtp"

    def accounts(self, quick: bool) -> list[str]:
        return [address(f"smtp{i}") for i in range(ACCOUNTS)]

    def mailboxes(self, quick: bool, corpus: Corpus) -> dict[str, list[Item]]:
        return {}

    async def run(self, ctx: Context) -> list[Table]:
        rows = []
        for size in SIZES:
            message = dot_stuff(ctx.corpus.get(1, size=size).raw)
            for sessions in SESSIONS:
                count = _count(ctx.quick, sessions, size)
                measured = await alternating(
                    SERVERS,
                    ctx.repeats,
                    functools.partial(self._measure, ctx, message, sessions, count),
                    lambda server: ctx.why_not(server, "smtp"),
                )
                values: dict[str, float | str] = {
                    server: runs if isinstance(runs, str) else median(runs)
                    for server, runs in measured.items()
                }
                label = f"{size // 1024} KB, {sessions} session{'s' if sessions > 1 else ''}"
                rows.append(Row(label, values))
        return [
            Table(
                workload=self.name,
                title="SMTP: messages accepted and stored per second",
                unit="messages/s",
                better=Better.HIGHER,
                servers=SERVERS,
                anchor="postfix",
                rows=tuple(rows),
                notes=(
                    "courriel: clock stops at the last 250 (durable by design); "
                    "Postfix: when the queue is empty and every Maildir file exists.",
                ),
            )
        ]

    async def _measure(
        self, ctx: Context, message: bytes, sessions: int, count: int, server: str
    ) -> float:
        instance = ctx.instances[server]
        port = instance.endpoints.smtp
        assert port is not None
        return await self._once(ctx, instance, port, message, sessions, count)

    async def _once(
        self, ctx: Context, instance: Instance, port: int, message: bytes, sessions: int, count: int
    ) -> float:
        accounts = self.accounts(ctx.quick)
        postfix = instance if isinstance(instance, Postfix) else None
        before = _stored(ctx.vmail, accounts) if postfix else 0
        remaining = [count]
        sent: dict[str, int] = {}
        start = time.perf_counter()
        stop_at = start + _send_window(ctx.quick)
        sessions_run = [
            _session(port, message, accounts, remaining, sent, i, stop_at) for i in range(sessions)
        ]
        await run_all(sessions_run, TIME_LIMIT)
        if postfix is not None:
            expected = before + sum(sent.values())
            await asyncio.wait_for(_drained(postfix, ctx.vmail, accounts, expected), TIME_LIMIT)
        elapsed = time.perf_counter() - start
        if postfix is None:
            for addr, n in sent.items():
                ctx.acknowledged[addr] = ctx.acknowledged.get(addr, 0) + n
        return sum(sent.values()) / elapsed


async def _session(
    port: int,
    message: bytes,
    accounts: list[str],
    remaining: list[int],
    sent: dict[str, int],
    index: int,
    stop_at: float,
) -> None:
    client, greeting = await SmtpClient.connect(HOST, port)
    try:
        if not greeting.startswith(b"220"):
            raise ClientError(f"greeting {greeting[:60]!r}")
        await client.expect(b"EHLO load-%d.sender.example.net" % index, 250)
        while remaining[0] > 0 and time.perf_counter() < stop_at:
            remaining[0] -= 1
            rcpt = accounts[(remaining[0] + index) % len(accounts)]
            await client.send_mail(SENDER, rcpt, message)
            sent[rcpt] = sent.get(rcpt, 0) + 1
    finally:
        await client.quit()


def _stored(vmail: Path, accounts: list[str]) -> int:
    total = 0
    for addr in accounts:
        for sub in ("new", "cur"):
            d = maildir(vmail, addr) / sub
            if d.exists():
                total += sum(1 for _ in d.iterdir())
    return total


async def _drained(postfix: Postfix, vmail: Path, accounts: list[str], expected: int) -> None:
    """Waits until Postfix's queue is empty and the Maildirs hold ``expected`` messages."""
    while True:
        if postfix.queued() == 0 and await asyncio.to_thread(_stored, vmail, accounts) >= expected:
            return
        await asyncio.sleep(0.01)
