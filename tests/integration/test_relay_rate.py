"""The per-destination message rate against a scripted server that notes when each message came.

A real dnsmasq points ``remote.test`` at a scripted SMTP server on loopback; the transport
sends several messages at once under ``max_messages_per_minute``. The server's arrival times
show the burst, then the spacing; a wait longer than the bound defers the message with the
reason, and the server never sees it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from courriel.net.smtp_client import SmtpTransport
from courriel.queue.outbound import Recipient
from courriel.queue.transport import OutboundMessage, Status
from courriel.testing.dnsmasq import Zone, start_dnsmasq
from courriel.testing.net import free_port
from courriel.testing.relay import free_address, make_transport
from courriel.testing.scripted_smtp import Scripted, serve

pytestmark = pytest.mark.usefixtures("dnsmasq_ready")

DOMAIN = "remote.test"


def message(n: int) -> OutboundMessage:
    body = f"Subject: {n}\r\n\r\nhello\r\n".encode()
    return OutboundMessage("s@origin.test", (Recipient(f"u{n}@{DOMAIN}"),), body)


@pytest.fixture
async def remote() -> AsyncIterator[tuple[Scripted, str, int]]:
    """A scripted server as the one MX of remote.test, and the DNS server naming it."""
    port = free_port()
    address = free_address(port)
    zone = Zone(
        domains=[DOMAIN], mx=[(DOMAIN, f"mx.{DOMAIN}", 10)], hosts={f"mx.{DOMAIN}": [address]}
    )
    scripted = Scripted()
    async with start_dnsmasq(zone) as dns, serve(address, port, scripted.handle):
        yield scripted, dns.nameserver, port


def transport(nameserver: str, port: int, **settings: object) -> SmtpTransport:
    return make_transport(nameserver, scale=0.01, port=port, **settings)


async def test_messages_over_the_rate_wait_their_turn(remote: tuple[Scripted, str, int]) -> None:
    scripted, nameserver, port = remote
    relay = transport(nameserver, port, max_messages_per_minute=240)  # 4 a second, burst 4
    started = time.monotonic()
    results = await asyncio.gather(*(relay.deliver(DOMAIN, message(n)) for n in range(8)))
    await relay.close()
    assert [o.status for (o,) in results] == [Status.DELIVERED] * 8
    arrivals = sorted(t - started for t in scripted.received_at)
    assert len(arrivals) == 8
    for i, arrived in enumerate(arrivals):  # the 5th no sooner than 0.25 s, then every 0.25 s
        assert arrived >= max(0, i - 3) * 0.25 - 0.01, arrivals
    in_first_second = sum(1 for t in arrivals if t < 1.0 - 0.01)
    assert in_first_second <= 7  # 4 at once and 3 more, never all 8


async def test_a_wait_over_the_bound_defers_with_the_reason(
    remote: tuple[Scripted, str, int],
) -> None:
    scripted, nameserver, port = remote
    relay = transport(nameserver, port, max_messages_per_minute=60, rate_wait_seconds=0.5)
    (first,) = await relay.deliver(DOMAIN, message(1))
    (second,) = await relay.deliver(DOMAIN, message(2))  # the next slot is a second away
    await relay.close()
    assert first.status is Status.DELIVERED
    assert second.status is Status.TEMPORARY
    assert second.text == f"rate limit for {DOMAIN} reached (60 messages a minute), retrying"
    assert second.enhanced == "4.4.5"
    assert len(scripted.messages) == 1 and scripted.connections == 1
