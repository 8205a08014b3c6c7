"""Workload 3: IMAP on a large mailbox -- how SELECT, FETCH 1:* and SEARCH grow with its size.

Theory of operation
-------------------
One account per size (1,000, 10,000 and 100,000 messages; ``--quick`` stops at 10,000) holds
that many messages, cycled from a pool of small corpus messages (at most 8 KB each, so 100,000
Maildir files stay near half a gigabyte; courriel stores identical bodies once, which is its
design, not a trick of the benchmark). For each size and server a fresh connection logs in
(not timed) and times three commands: ``SELECT INBOX``, ``FETCH 1:* (FLAGS UID)`` and a
``SEARCH SUBJECT`` that matches some of the messages, reading the whole answer each time.

The first repetition includes whatever a server does on first contact with a mailbox
(Dovecot builds its index from the Maildir); the median of the repetitions shows the steady
state, and the first run's figures are kept in the notes.
"""

from __future__ import annotations

import time

from bench.clients import ClientError, ImapClient
from bench.corpus import Corpus
from bench.fill import Item, address
from bench.report import COURRIEL, Better, Row, Table, median
from bench.servers import HOST, PASSWORD
from bench.workloads import Context, small_pool

POOL = 200
MAX_SIZE = 8 * 1024
SERVERS = (COURRIEL, "dovecot")
COMMANDS = (
    ("SELECT", b"SELECT INBOX"),
    ("FETCH 1:* (FLAGS UID)", b"FETCH 1:* (FLAGS UID)"),
    ('SEARCH SUBJECT "budget"', b'SEARCH SUBJECT "budget"'),
)


def sizes(quick: bool) -> tuple[int, ...]:
    return (1_000, 10_000) if quick else (1_000, 10_000, 100_000)


def _timeout(size: int) -> float:
    return 30 + size / 500  # generous: a cold index of 100,000 files takes a while


class ImapScaleWorkload:
    name = "imap-scale"

    def accounts(self, quick: bool) -> list[str]:
        return [address(f"scale{n}") for n in sizes(quick)]

    def mailboxes(self, quick: bool, corpus: Corpus) -> dict[str, list[Item]]:
        pool = small_pool(corpus, POOL, MAX_SIZE)
        out = {}
        for n in sizes(quick):
            flags: tuple[frozenset[str], frozenset[str]] = (frozenset({"\\Seen"}), frozenset())
            out[address(f"scale{n}")] = [
                Item(pool[i % len(pool)], flags[i % 7 == 0]) for i in range(n)
            ]
        return out

    async def run(self, ctx: Context) -> list[Table]:
        rows: list[Row] = []
        notes: list[str] = []
        for n in sizes(ctx.quick):
            per: dict[str, dict[str, float | str]] = {label: {} for label, _ in COMMANDS}
            for server in SERVERS:
                why = ctx.why_not(server, "imap")
                if why is not None:
                    for label, _ in COMMANDS:
                        per[label][server] = why
                    continue
                port = ctx.instances[server].endpoints.imap
                assert port is not None
                runs = []
                try:
                    for _ in range(ctx.repeats):
                        runs.append(await _once(port, address(f"scale{n}"), n))
                except (ClientError, OSError, TimeoutError) as e:
                    for label, _ in COMMANDS:
                        per[label][server] = f"{server}: failed ({e})"
                    continue
                for label, _ in COMMANDS:
                    per[label][server] = median([r[label] * 1000 for r in runs])
                first = ", ".join(f"{k} {v * 1000:.1f}" for k, v in runs[0].items())
                notes.append(f"{server}, {n:,} messages, first run (ms): {first}")
            rows += [Row(f"{label}, {n:,} messages", per[label]) for label, _ in COMMANDS]
        return [
            Table(
                workload=self.name,
                title="IMAP at scale: time per command on a large mailbox",
                unit="ms",
                better=Better.LOWER,
                servers=SERVERS,
                anchor="dovecot",
                rows=tuple(rows),
                notes=tuple(notes),
            )
        ]


async def _once(port: int, addr: str, size: int) -> dict[str, float]:
    imap, greeting = await ImapClient.connect(HOST, port, seconds=_timeout(size))
    try:
        if not greeting.startswith(b"* OK"):
            raise ClientError(f"greeting {greeting[:60]!r}")
        await imap.login(addr, PASSWORD)
        out = {}
        for label, command in COMMANDS:
            t0 = time.perf_counter()
            resp = await imap.ok(command)
            out[label] = time.perf_counter() - t0
            if label.startswith("FETCH") and len(resp.untagged) < size:
                raise ClientError(f"FETCH 1:* returned {len(resp.untagged)} of {size} messages")
        return out
    finally:
        await imap.logout()
