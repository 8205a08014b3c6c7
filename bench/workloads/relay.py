"""Workload 7: relayed messages per second, from submission to the receiving server's Maildir.

Theory of operation
-------------------
Twenty submitters share a fixed number of 4 KB messages (200 in ``--quick``, 2,000 otherwise).
Each opens one session, says EHLO, STARTTLS, EHLO again, logs in where the relay asks for it
(courriel: AUTH PLAIN as the sending account), then sends one message after another (MAIL, RCPT,
DATA) to addresses of ``receiver.test``, rotating over twenty of them, until the count is used
up. The relays (``bench.servers.relay``) carry the messages to one receiving Postfix on port 25
of its own loopback address: courriel through its queue along its real MX path, the comparison
Postfix through its ``relayhost``.

The clock starts when the submitters start and stops when the receiver's Maildirs hold every
message acknowledged in the run: accepting is not enough, the message must have crossed the
second hop and been stored. Both relays get the same bytes (one corpus message whose From is
the sending account, which courriel's submission requires), and both use TLS on both hops
(opportunistic towards the receiver). The rate is the messages sent divided by that time; each
relay runs ``repeats`` times back to back and the median is kept.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from bench.clients import ClientError, SmtpClient, dot_stuff
from bench.corpus import Corpus
from bench.fill import Item, address, shared_hash
from bench.report import COURRIEL, Better, Row, Table, median
from bench.servers import HOST, PASSWORD, ServerError
from bench.servers import relay as relay_path
from bench.workloads import Context, run_all

SESSIONS = 20
SIZE = 4 * 1024
RECEIVERS = 20
SENDER = address("relay")
TIME_LIMIT = 300.0  # seconds for one measurement, submitting and relaying
SERVERS = (COURRIEL, "postfix")
_FROM = re.compile(rb"^From:.*\r\n(?:[ \t].*\r\n)*", re.MULTILINE)


def _count(quick: bool) -> int:
    return 200 if quick else 2000


def from_sender(raw: bytes, sender: str) -> bytes:
    """``raw`` with its From field (folded lines included) replaced by ``sender``."""
    end = raw.find(b"\r\n\r\n") + 2
    header, body = raw[:end], raw[end:]
    header = _FROM.sub(b"", header, count=1)
    return b"From: " + sender.encode() + b"\r\n" + header + body


@dataclass
class Load:
    """What the submitters of one measurement share."""

    message: bytes  # dot-stuffed
    receivers: list[str]
    login: bool
    remaining: int
    sent: int = 0


class RelayWorkload:
    name = "relay"

    def accounts(self, quick: bool) -> list[str]:
        return []  # its courriel is an instance of its own (bench.servers.relay)

    def mailboxes(self, quick: bool, corpus: Corpus) -> dict[str, list[Item]]:
        return {}

    async def run(self, ctx: Context) -> list[Table]:
        count = _count(ctx.quick)
        values = await self._values(ctx, count)
        return [
            Table(
                workload=self.name,
                title="Relay: messages per second from submission to the receiver's Maildir",
                unit="messages/s",
                better=Better.HIGHER,
                servers=SERVERS,
                anchor="postfix",
                rows=(Row(f"4 KB, {SESSIONS} submitters, {count} messages", values),),
                notes=(
                    "the clock stops when the receiving Postfix has stored every message;",
                    "courriel relays along its MX path (private DNS), Postfix to its relayhost.",
                ),
            )
        ]

    async def _values(self, ctx: Context, count: int) -> dict[str, float | str]:
        why = relay_path.problem()
        if why is not None:
            return dict.fromkeys(SERVERS, why)
        compare = "postfix" not in ctx.skipped
        users = relay_path.receivers(RECEIVERS)
        raw = from_sender(ctx.corpus.get(1, size=SIZE).raw, SENDER)
        values: dict[str, float | str] = {}
        try:
            async with relay_path.start(
                ctx.workdir / "relay", SENDER, shared_hash(), users, compare
            ) as path:
                ports = {COURRIEL: path.courriel.endpoints.smtp}
                if path.postfix is not None:
                    ports["postfix"] = path.postfix.endpoints.smtp
                for server in SERVERS:
                    port = ports.get(server)
                    if port is None:
                        values[server] = ctx.skipped.get(server, f"{server}: not running")
                        continue
                    load = Load(dot_stuff(raw), users, server == COURRIEL, count)
                    values[server] = await self._measure(ctx, path, port, load, server)
        except ServerError as e:
            return dict.fromkeys(SERVERS, str(e))
        return values

    async def _measure(
        self, ctx: Context, path: relay_path.RelayPath, port: int, template: Load, server: str
    ) -> float | str:
        rates = []
        for _ in range(ctx.repeats):
            load = Load(template.message, template.receivers, template.login, template.remaining)
            try:
                rates.append(await _once(path, port, load))
            except (ClientError, OSError, TimeoutError) as e:
                return f"{server}: failed ({e or type(e).__name__})"
        return median(rates)


async def _once(path: relay_path.RelayPath, port: int, load: Load) -> float:
    before = await asyncio.to_thread(path.delivered)
    start = time.perf_counter()
    await run_all([_submitter(port, load, i) for i in range(SESSIONS)], TIME_LIMIT)
    expected = before + load.sent
    await asyncio.wait_for(_arrived(path, expected), TIME_LIMIT)
    return load.sent / (time.perf_counter() - start)


async def _submitter(port: int, load: Load, index: int) -> None:
    client, greeting = await SmtpClient.connect(HOST, port)
    try:
        if not greeting.startswith(b"220"):
            raise ClientError(f"greeting {greeting[:60]!r}")
        await client.starttls(b"submitter-%d.example.test" % index)
        if load.login:
            await client.login(SENDER, PASSWORD)
        while load.remaining > 0:
            load.remaining -= 1
            rcpt = load.receivers[(load.remaining + index) % len(load.receivers)]
            await client.send_mail(SENDER, rcpt, load.message)
            load.sent += 1
    finally:
        await client.quit()


async def _arrived(path: relay_path.RelayPath, expected: int) -> None:
    """Waits until the receiver's Maildirs hold ``expected`` messages."""
    while True:
        if await asyncio.to_thread(path.delivered) >= expected:
            return
        await asyncio.sleep(0.01)
