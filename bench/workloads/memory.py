"""Workload 4: resident memory of the IMAP server with 1, 100 and 1,000 idle IDLE sessions.

Theory of operation
-------------------
Sessions are opened ``OPEN_AT_ONCE`` at a time; each logs in to one of ``ACCOUNTS`` accounts
(10 messages each; at most 10 sessions per account, as a person with a few devices), selects
INBOX and enters IDLE, and is counted once the server sent the continuation. After all are
idle and a short settle, the resident set sizes of every process of the server (courriel: one;
Dovecot: master, auth, anvil, log, config, login and one ``imap`` process per session) are
summed, three times a little apart, and the median kept. The sum of RSS counts a shared library
page once per process that maps it, which weighs on a server of many processes, so the
proportional set size (PSS: each shared page divided among its sharers) is shown beside it.
The sessions then end with DONE and LOGOUT. The idle server's own memory is the first row.

The benchmark process needs a file descriptor per session; ``bench.run`` raises its limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

from bench.clients import ClientError, ImapClient
from bench.corpus import Corpus
from bench.fill import Item, address
from bench.report import COURRIEL, Better, Row, Table, median
from bench.servers import HOST, PASSWORD, Instance, pss_bytes, rss_bytes
from bench.workloads import Context, bounded, small_pool

ACCOUNTS = 100  # 10 sessions per account at 1,000: a few devices each, under per-user limits
OPEN_AT_ONCE = 50
SETTLE = 1.0
SERVERS = (COURRIEL, "dovecot")


def counts(quick: bool) -> tuple[int, ...]:
    return (0, 1, 100) if quick else (0, 1, 100, 1000)


class MemoryWorkload:
    name = "memory"

    def accounts(self, quick: bool) -> list[str]:
        return [address(f"idle{i}") for i in range(ACCOUNTS)]

    def mailboxes(self, quick: bool, corpus: Corpus) -> dict[str, list[Item]]:
        items = [Item(raw) for raw in small_pool(corpus, 10, 16 * 1024)]
        return dict.fromkeys(self.accounts(quick), items)

    async def run(self, ctx: Context) -> list[Table]:
        rss: dict[int, dict[str, float | str]] = {n: {} for n in counts(ctx.quick)}
        pss: dict[int, dict[str, float | str]] = {n: {} for n in counts(ctx.quick)}
        for server in SERVERS:
            why = ctx.why_not(server, "imap")
            for n in counts(ctx.quick):
                if why is not None:
                    rss[n][server] = pss[n][server] = why
                    continue
                try:
                    r, p = await self._measure(ctx.instances[server], n)
                except (ClientError, OSError, TimeoutError) as e:
                    rss[n][server] = pss[n][server] = f"{server}: failed ({e})"
                    continue
                rss[n][server], pss[n][server] = r / 2**20, p / 2**20
        rows: list[Row] = []
        for kind, values in (("RSS", rss), ("PSS", pss)):
            for n in counts(ctx.quick):
                what = f"{n:,} IDLE session{'s' if n != 1 else ''}" if n else "idle server"
                rows.append(Row(f"{kind}, {what}", values[n]))
        note = "summed over every process of the server (Dovecot: one imap process per session)"
        return [
            Table(
                workload=self.name,
                title="Memory: resident size with idle IMAP IDLE sessions",
                unit="MiB",
                better=Better.LOWER,
                servers=SERVERS,
                anchor="dovecot",
                rows=tuple(rows),
                notes=(note,),
            )
        ]

    async def _measure(self, instance: Instance, n: int) -> tuple[float, float]:
        """(RSS, PSS) in bytes with ``n`` sessions in IDLE, medians of three samples."""
        port = instance.endpoints.imap
        assert port is not None
        sessions: list[tuple[ImapClient, bytes]] = []
        accounts = self.accounts(False)

        async def open_one(addr: str) -> None:
            sessions.append(await _idle_session(port, addr))

        jobs = [functools.partial(open_one, accounts[i % len(accounts)]) for i in range(n)]
        try:
            await bounded(jobs, OPEN_AT_ONCE, 60 + n / 5)
            rss, pss = [], []
            for _ in range(3):
                await asyncio.sleep(SETTLE / 2)
                pids = instance.pids()
                rss.append(float(rss_bytes(pids)))
                pss.append(float(pss_bytes(pids)))
            return median(rss), median(pss)
        finally:
            await asyncio.gather(*(_end(imap, tag) for imap, tag in sessions))


async def _idle_session(port: int, addr: str) -> tuple[ImapClient, bytes]:
    imap, greeting = await ImapClient.connect(HOST, port)
    try:
        if not greeting.startswith(b"* OK"):
            raise ClientError(f"greeting {greeting[:60]!r}")
        await imap.login(addr, PASSWORD)
        await imap.ok(b"SELECT INBOX")
        return imap, await imap.idle()
    except BaseException:
        await imap.close()
        raise


async def _end(imap: ImapClient, tag: bytes) -> None:
    with contextlib.suppress(ClientError, OSError, TimeoutError):
        async with asyncio.timeout(10):
            await imap.done(tag)
            await imap.logout()
    await imap.close()
