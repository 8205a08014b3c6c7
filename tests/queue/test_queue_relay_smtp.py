"""The queue with courriel's own SMTP transport (``courriel.net.smtp_client``): submission to
one courriel, relayed by MX lookup (a real DNS server, dnsmasq, on loopback) over STARTTLS to a
second courriel, whose replies decide delivery or a bounce read back over IMAP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from courriel.net.resolver import DnsResolver
from courriel.net.smtp_client import ClientSettings, SmtpTransport
from courriel.testing import dnsmasq
from courriel.testing.missing import report_missing
from courriel.testing.outbound import (
    PASSWORD,
    dsn_fields,
    fast_queue,
    inbox_over_imap,
    submit,
    wait_until,
)
from courriel.testing.server import Account, MailServer, start_server


@pytest.fixture
async def dns(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """dnsmasq answering MX example.net -> mx.example.net -> 127.0.0.1."""
    if dnsmasq.program() is None:
        report_missing("program 'dnsmasq'", request.node.nodeid)
    zone = dnsmasq.Zone(
        domains=["example.net"],
        mx=[("example.net", "mx.example.net", 10)],
        hosts={"mx.example.net": ["127.0.0.1"]},
    )
    async with dnsmasq.start_dnsmasq(zone) as server:
        yield server.nameserver


@pytest.fixture
def relay(tmp_path: Path, receiver: MailServer, dns: str) -> Iterator[MailServer]:
    settings = ClientSettings(
        helo_name="relay.example.test",
        port=receiver.port("smtp"),  # the MX's port: the receiver is not on 25
        ca_file=str(receiver.cert_path),
    )
    transport = SmtpTransport(settings, DnsResolver([dns], timeout=2.0))
    (tmp_path / "tx").mkdir()
    server = start_server(tmp_path / "tx", transport=transport, extra_config=fast_queue())
    try:
        yield server
    finally:
        server.stop()


async def test_delivery_and_a_bounce_through_the_smtp_transport(
    relay: MailServer, receiver: MailServer
) -> None:
    await asyncio.to_thread(delivery_and_bounce, relay, receiver)


def delivery_and_bounce(relay: MailServer, receiver: MailServer) -> None:
    bob = receiver.add_user("bob@example.net", PASSWORD)
    alice: Account = relay.add_user("alice@example.test", PASSWORD)
    queue_id = submit(relay, alice, "bob@example.net", "over tls")
    wait_until("bob has it", lambda: len(receiver.messages(bob, "INBOX")) == 1)
    [raw] = receiver.bodies(bob, "INBOX")
    assert f"id {queue_id}".encode() in raw and b"Subject: over tls" in raw
    assert b"with ESMTPS" in raw.split(b"Received:")[1]  # the relay hop ran under TLS

    submit(relay, alice, "nobody@example.net", "to nobody")
    wait_until("alice has a notice", lambda: len(relay.messages(alice, "INBOX")) == 1)
    [notice] = inbox_over_imap(relay, alice)
    words, block = dsn_fields(notice)
    assert "550 5.1.1 no mailbox here by that name" in words
    assert (block["Action"], block["Status"]) == ("failed", "5.1.1")
    assert block["Remote-MTA"] == "dns; mx.example.net"
    wait_until("the queue is empty", lambda: relay.call(relay.store.queue.list_entries()) == [])
