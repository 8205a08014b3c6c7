"""Workload 5: push latency, from an SMTP delivery's 250 to the EXISTS in an IDLE session.

Theory of operation
-------------------
One IMAP session of the ``push`` account selects INBOX and enters IDLE; one SMTP session sends
messages to that account one at a time. For each message, the IDLE reader is already waiting
when DATA ends; the latency is the time the untagged ``EXISTS`` was read minus the time the 250
was read (both on this process's monotonic clock). A negative figure means the IDLE client
heard of the message before the sender had its 250: the server published the change before its
reply reached the sender.

The pairs measured are "Postfix delivering, Dovecot announcing" -- the usual installation --
and courriel doing both. Samples are bounded in count and each waits at most ``WAIT`` seconds.
"""

from __future__ import annotations

import asyncio
import time

from bench.clients import ClientError, ImapClient, SmtpClient, dot_stuff
from bench.corpus import Corpus
from bench.fill import Item, address
from bench.report import COURRIEL, Better, Row, Table, percentile
from bench.servers import HOST, PASSWORD
from bench.workloads import Context

ACCOUNT = address("push")
WAIT = 10.0
PAUSE = 0.05  # between samples, so each delivery is measured on a quiet server
PAIR = "dovecot+postfix"
SERVERS = (COURRIEL, PAIR)


def _samples(quick: bool) -> int:
    return 10 if quick else 100


class PushWorkload:
    name = "push"

    def accounts(self, quick: bool) -> list[str]:
        return [ACCOUNT]

    def mailboxes(self, quick: bool, corpus: Corpus) -> dict[str, list[Item]]:
        return {}

    async def run(self, ctx: Context) -> list[Table]:
        p50: dict[str, float | str] = {}
        p99: dict[str, float | str] = {}
        message = dot_stuff(ctx.corpus.get(11, size=4 * 1024).raw)
        ports = {
            COURRIEL: (COURRIEL, COURRIEL),
            PAIR: ("postfix", "dovecot"),
        }
        for column, (smtp_server, imap_server) in ports.items():
            why = ctx.why_not(smtp_server, "smtp") or ctx.why_not(imap_server, "imap")
            if why is not None:
                p50[column] = p99[column] = why
                continue
            smtp_port = ctx.instances[smtp_server].endpoints.smtp
            imap_port = ctx.instances[imap_server].endpoints.imap
            assert smtp_port is not None and imap_port is not None
            try:
                lat = await _measure(smtp_port, imap_port, message, _samples(ctx.quick))
            except (ClientError, OSError, TimeoutError) as e:
                p50[column] = p99[column] = f"{column}: failed ({e})"
                continue
            if column == COURRIEL:
                ctx.acknowledged[ACCOUNT] = ctx.acknowledged.get(ACCOUNT, 0) + len(lat)
            p50[column] = percentile(lat, 50) * 1000
            p99[column] = percentile(lat, 99) * 1000
        n = _samples(ctx.quick)
        return [  # one run of n samples per pair: the percentiles need them together
            Table(
                workload=self.name,
                title="Push: SMTP 250 to IMAP IDLE EXISTS",
                unit="ms",
                better=Better.LOWER,
                servers=SERVERS,
                anchor=PAIR,
                rows=(Row(f"p50 of {n} deliveries", p50), Row(f"p99 of {n} deliveries", p99)),
                notes=("below zero: the IDLE client heard of the message before the sender's 250",),
            )
        ]


async def _measure(smtp_port: int, imap_port: int, message: bytes, samples: int) -> list[float]:
    imap, greeting = await ImapClient.connect(HOST, imap_port)
    smtp, banner = await SmtpClient.connect(HOST, smtp_port)
    try:
        if not greeting.startswith(b"* OK") or not banner.startswith(b"220"):
            raise ClientError(f"greetings {greeting[:40]!r} / {banner[:40]!r}")
        await imap.login(ACCOUNT, PASSWORD)
        await imap.ok(b"SELECT INBOX")
        tag = await imap.idle()
        await smtp.expect(b"EHLO push.sender.example.net", 250)
        out = []
        for _ in range(samples):
            waiter = asyncio.create_task(_exists_at(imap))
            try:
                acknowledged = await smtp.send_mail("push@sender.example.net", ACCOUNT, message)
                out.append(await waiter - acknowledged)
            finally:
                waiter.cancel()
            await asyncio.sleep(PAUSE)
        await imap.done(tag)
        return out
    finally:
        await smtp.quit()
        await imap.logout()


async def _exists_at(imap: ImapClient) -> float:
    """When the next untagged EXISTS was read, on the clock ``send_mail`` uses."""
    await imap.wait_for(b" EXISTS", WAIT)
    return time.perf_counter()
