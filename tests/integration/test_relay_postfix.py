"""Relay to a real Postfix over loopback, with a real DNS server (dnsmasq) telling where.

Each test starts dnsmasq with the records it needs and a private Postfix (``receiver``) on
port 25 of a loopback address of its own, then delivers through ``SmtpTransport`` and reads
what Postfix wrote into its Maildirs, or the Outcome that says why nothing was written.
"""

from __future__ import annotations

import pytest

from courriel.queue.outbound import Recipient
from courriel.queue.transport import OutboundMessage, Status
from courriel.testing.certs import TestCA
from courriel.testing.dnsmasq import Zone, start_dnsmasq
from courriel.testing.postfix import Postfix
from courriel.testing.relay import RECEIVER_DOMAIN, free_address, make_transport

pytestmark = pytest.mark.usefixtures("dnsmasq_ready")

BODY = (
    b"From: sender@origin.test\r\nTo: alice@receiver.test\r\nSubject: relay\r\n"
    b"\r\n.dot line\r\nhello\r\n"
)


def message(*users: str, body: bytes = BODY) -> OutboundMessage:
    return OutboundMessage(
        sender="sender@origin.test",
        recipients=tuple(Recipient(f"{u}@{RECEIVER_DOMAIN}") for u in users),
        message=body,
    )


def zone(mx: list[tuple[str, int]], hosts: dict[str, list[str]]) -> Zone:
    return Zone(
        domains=[RECEIVER_DOMAIN, "origin.test"],
        mx=[(RECEIVER_DOMAIN, name, pref) for name, pref in mx],
        hosts=hosts,
    )


async def test_starttls_pipelining_several_recipients_one_transaction(
    receiver: Postfix, test_ca: TestCA
) -> None:
    z = zone([("mx1.receiver.test", 10)], {"mx1.receiver.test": [receiver.address, "::1"]})
    async with start_dnsmasq(z) as dns:
        transport = make_transport(dns.nameserver, ca_file=test_ca.ca_file)
        outcomes = await transport.deliver(RECEIVER_DOMAIN, message("alice", "nobody", "bob"))
        await transport.close()
    assert [o.status for o in outcomes] == [Status.DELIVERED, Status.PERMANENT, Status.DELIVERED], [
        o.text for o in outcomes
    ]
    assert outcomes[1].code == 550 and outcomes[1].enhanced == "5.1.1"
    assert "nobody@receiver.test" in outcomes[1].text
    for user in ("alice", "bob"):
        (stored,) = await receiver.delivered(f"{user}@{RECEIVER_DOMAIN}")
        assert stored.endswith(b"\r\n\r\n.dot line\r\nhello\r\n".replace(b"\r\n", b"\n"))
        assert b"(using TLSv1.3" in stored  # Postfix says in Received: that TLS was used
    log = receiver.log_text()
    assert receiver.connections() == 1
    assert "TLS connection established from" in log
    assert "starttls=1 mail=1 rcpt=2/3 bdat=1 quit=1" in log  # one transaction for all three


async def test_two_messages_reuse_one_connection(receiver: Postfix, test_ca: TestCA) -> None:
    z = zone([("mx.receiver.test", 10)], {"mx.receiver.test": [receiver.address]})
    async with start_dnsmasq(z) as dns:
        transport = make_transport(dns.nameserver, ca_file=test_ca.ca_file, idle_seconds=30)
        first = await transport.deliver(RECEIVER_DOMAIN, message("alice"))
        second = await transport.deliver(RECEIVER_DOMAIN, message("carol"))
        assert transport.pool.opened == 1 and transport.pool.reused == 1
        await transport.close()
    assert first[0].status is Status.DELIVERED and second[0].status is Status.DELIVERED
    await receiver.delivered(f"alice@{RECEIVER_DOMAIN}")
    await receiver.delivered(f"carol@{RECEIVER_DOMAIN}")
    assert receiver.connections() == 1


async def test_mx_preference_and_fallback_to_the_next(receiver: Postfix, test_ca: TestCA) -> None:
    dead = free_address(25)  # nothing listens there: connection refused
    z = zone(
        [("mx2.receiver.test", 20), ("mx1.receiver.test", 10), ("mx.receiver.test", 30)],
        {
            "mx1.receiver.test": [dead],
            "mx2.receiver.test": [receiver.address],
            "mx.receiver.test": [receiver.address],
        },
    )
    async with start_dnsmasq(z) as dns:
        transport = make_transport(dns.nameserver, ca_file=test_ca.ca_file)
        (outcome,) = await transport.deliver(RECEIVER_DOMAIN, message("alice"))
        await transport.close()
    assert outcome.status is Status.DELIVERED
    assert outcome.remote_host == f"mx2.receiver.test [{receiver.address}]"
    await receiver.delivered(f"alice@{RECEIVER_DOMAIN}")


async def test_address_records_when_there_is_no_mx(receiver: Postfix, test_ca: TestCA) -> None:
    z = zone([], {RECEIVER_DOMAIN: [receiver.address]})
    async with start_dnsmasq(z) as dns:
        transport = make_transport(dns.nameserver, ca_file=test_ca.ca_file)
        (outcome,) = await transport.deliver(RECEIVER_DOMAIN, message("bob"))
        await transport.close()
    assert outcome.status is Status.DELIVERED, outcome.text
    assert outcome.remote_host == f"{RECEIVER_DOMAIN} [{receiver.address}]"
    await receiver.delivered(f"bob@{RECEIVER_DOMAIN}")
