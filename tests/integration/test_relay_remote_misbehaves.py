"""Relay to servers that answer what Postfix never would: scripted replies, garbage, stalls.

Each case runs a small asyncio SMTP server (``courriel.testing.scripted_smtp``) on a loopback
address, points a real dnsmasq at it, and checks the Outcomes: a per-recipient 4xx/5xx is
reported per recipient; garbage, endless replies, a 10 MB line, a stall, or TLS breaking in
the handshake are temporary failures within the (scaled) timeouts, never a crash or a hang.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from courriel.net.smtp_client import SmtpTransport
from courriel.net.smtp_conn import Timeouts
from courriel.queue.outbound import Recipient
from courriel.queue.transport import OutboundMessage, Outcome, Status
from courriel.testing.certs import TestCA
from courriel.testing.dnsmasq import DnsServer, Zone, start_dnsmasq
from courriel.testing.net import free_port
from courriel.testing.relay import free_address, make_transport
from courriel.testing.scripted_dns import Answers, serve_dns
from courriel.testing.scripted_smtp import Handler, Scripted, serve

pytestmark = pytest.mark.usefixtures("dnsmasq_ready")

DOMAIN = "remote.test"
SCALE = 0.002  # RFC 5321's 5 minutes become 0.6 s


def message(*users: str, requiretls: bool = False) -> OutboundMessage:
    return OutboundMessage(
        sender="sender@origin.test",
        recipients=tuple(Recipient(f"{u}@{DOMAIN}") for u in users),
        message=b"Subject: scripted\r\n\r\nhello\r\n",
        requiretls=requiretls,
    )


@dataclass
class Lab:
    dns: DnsServer
    port: int
    addresses: list[str]

    def transport(self, **settings: object) -> SmtpTransport:
        return make_transport(self.dns.nameserver, scale=SCALE, port=self.port, **settings)


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    """Two MX hosts (preference 10 and 20) on two loopback addresses, one port."""
    port = free_port()
    first = free_address(port)
    addresses = [first, free_address(port, exclude=(first,))]
    zone = Zone(
        domains=[DOMAIN, "origin.test"],
        mx=[(DOMAIN, f"mx1.{DOMAIN}", 10), (DOMAIN, f"mx2.{DOMAIN}", 20)],
        hosts={f"mx1.{DOMAIN}": [addresses[0]], f"mx2.{DOMAIN}": [addresses[1]]},
    )
    async with start_dnsmasq(zone) as dns:
        yield Lab(dns, port, addresses)


async def deliver(lab: Lab, msg: OutboundMessage, **settings: object) -> list[Outcome]:
    transport = lab.transport(**settings)
    try:
        return list(await transport.deliver(DOMAIN, msg))
    finally:
        await transport.close()


async def deliver_signed(lab: Lab, msg: OutboundMessage, **settings: object) -> list[Outcome]:
    """``deliver`` with DNS answers marked DNSSEC-validated, as REQUIRETLS needs (RFC 8689)."""
    answers = Answers(
        {
            (DOMAIN, "MX"): [f"10 mx1.{DOMAIN}.", f"20 mx2.{DOMAIN}."],
            (f"mx1.{DOMAIN}", "A"): [lab.addresses[0]],
            (f"mx2.{DOMAIN}", "A"): [lab.addresses[1]],
        }
    )
    async with serve_dns(answers) as nameserver:
        transport = make_transport(nameserver, scale=SCALE, port=lab.port, **settings)
        try:
            return list(await transport.deliver(DOMAIN, msg))
        finally:
            await transport.close()


async def test_per_recipient_4xx_and_5xx_with_pipelined_data(lab: Lab) -> None:
    script = Scripted(
        rcpt={f"b@{DOMAIN}": "451 4.3.0 mailbox busy", f"c@{DOMAIN}": "550 5.1.1 unknown user"}
    )
    async with serve(lab.addresses[0], lab.port, script.handle):
        a, b, c = await deliver(lab, message("a", "b", "c"))
    assert (a.status, b.status, c.status) == (Status.DELIVERED, Status.TEMPORARY, Status.PERMANENT)
    assert (b.code, b.enhanced, c.code, c.enhanced) == (451, "4.3.0", 550, "5.1.1")
    assert "mailbox busy" in b.text and "unknown user" in c.text
    assert c.remote_host == f"mx1.{DOMAIN} [{lab.addresses[0]}]"
    assert script.messages == [b"Subject: scripted\r\n\r\nhello\r\n.\r\n"]
    assert script.connections == 1


async def test_mail_rcpt_and_data_arrive_in_one_group(lab: Lab) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mx ESMTP\r\n")
        await reader.readline()
        writer.write(b"250-mx\r\n250 PIPELINING\r\n")
        # Nothing is answered until DATA arrived: a client waiting for each reply would hang.
        group = await reader.readuntil(b"DATA\r\n")
        assert group.count(b"RCPT TO:") == 2 and group.startswith(b"MAIL FROM:")
        writer.write(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")
        await reader.readuntil(b"\r\n.\r\n")
        writer.write(b"250 2.0.0 queued\r\n")
        await reader.readline()
        writer.write(b"221 bye\r\n")

    async with serve(lab.addresses[0], lab.port, handler):
        outcomes = await deliver(lab, message("a", "b"), timeouts=Timeouts().scaled(0.01))
    assert [o.status for o in outcomes] == [Status.DELIVERED] * 2


async def _greet_then(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mx ESMTP\r\n")
    await reader.readline()


def misbehaving(kind: str) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if kind == "stall":
            await reader.read(1)  # says nothing, ever
            return
        if kind == "huge line":
            writer.write(b"220 ")
            for _ in range(160):  # 10 MB in 64 KB writes, until the client hangs up
                writer.write(b"x" * 65536)
                await writer.drain()
            return
        await _greet_then(reader, writer)
        if kind == "garbage":
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        elif kind == "endless":
            # in batches, so the 129th line arrives long before the reply timeout even on a
            # loaded machine: the limit on lines is what this case tests, not the timeout
            for _ in range(1000):
                writer.write(b"250-more and more\r\n" * 200)
                await writer.drain()
        elif kind == "closes":
            return
        await writer.drain()
        await reader.read(1)

    return handler


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("garbage", "bad reply: not an SMTP reply line"),
        ("endless", "longer than 128 lines"),
        ("huge line", "longer than 2048 octets"),
        ("stall", "did not answer within 0.6 seconds"),
        ("closes", "closed the connection"),
    ],
)
async def test_bad_servers_are_temporary_failures(lab: Lab, kind: str, reason: str) -> None:
    started = time.monotonic()
    async with serve(lab.addresses[0], lab.port, misbehaving(kind)):
        (outcome,) = await deliver(lab, message("a"))
    assert outcome.status is Status.TEMPORARY
    assert reason in outcome.text, outcome.text
    assert f"mx2.{DOMAIN} [{lab.addresses[1]}]" in outcome.text  # the second MX was tried too
    assert time.monotonic() - started < 5


def tls_breaker(script: Scripted) -> Handler:
    """Offers STARTTLS, then answers the TLS ClientHello with garbage; plain SMTP otherwise."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script.connections += 1
        writer.write(b"220 mx ESMTP\r\n")
        await reader.readline()
        writer.write(b"250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        line = await reader.readline()
        if line.startswith(b"STARTTLS"):
            writer.write(b"220 2.0.0 go ahead\r\n")
            await writer.drain()
            await reader.read(100)  # part of the ClientHello
            writer.write(b"\x16\x03\x03\x00\x05garbage")
            await writer.drain()
            return
        script.commands.append(line.decode().strip())
        writer.write(b"250 ok\r\n250 ok\r\n354 go\r\n")
        script.messages.append(await reader.readuntil(b"\r\n.\r\n"))
        writer.write(b"250 2.0.0 queued\r\n")
        await reader.readline()
        writer.write(b"221 bye\r\n")

    return handler


async def test_tls_failing_mid_handshake_is_retried_in_clear_when_opportunistic(lab: Lab) -> None:
    script = Scripted()
    async with serve(lab.addresses[0], lab.port, tls_breaker(script)):
        (outcome,) = await deliver(lab, message("a"))
    assert outcome.status is Status.DELIVERED, outcome.text
    assert script.connections == 2 and len(script.messages) == 1


async def test_tls_failing_mid_handshake_with_requiretls_is_temporary(lab: Lab) -> None:
    script = Scripted()
    async with serve(lab.addresses[0], lab.port, tls_breaker(script)):
        (outcome,) = await deliver_signed(lab, message("a", requiretls=True))
    assert outcome.status is Status.TEMPORARY
    assert f"TLS with mx1.{DOMAIN} [{lab.addresses[0]}] failed" in outcome.text
    assert script.messages == []


async def test_mail_4xx_tries_the_next_mx(lab: Lab) -> None:
    grey = Scripted(mail_reply="451 4.7.1 greylisted, try later")
    good = Scripted()
    async with (
        serve(lab.addresses[0], lab.port, grey.handle),
        serve(lab.addresses[1], lab.port, good.handle),
    ):
        (outcome,) = await deliver(lab, message("a"))
    assert outcome.status is Status.DELIVERED
    assert outcome.remote_host == f"mx2.{DOMAIN} [{lab.addresses[1]}]"
    assert grey.messages == [] and len(good.messages) == 1


async def test_lost_after_end_of_data_is_not_sent_to_another_mx(lab: Lab) -> None:
    async def vanishes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _greet_then(reader, writer)
        writer.write(b"250 mx\r\n")
        for _ in range(2):
            await reader.readline()
            writer.write(b"250 ok\r\n")
        await reader.readline()
        writer.write(b"354 go\r\n")
        await reader.readuntil(b"\r\n.\r\n")  # then no reply: the message may be taken

    good = Scripted()
    async with (
        serve(lab.addresses[0], lab.port, vanishes),
        serve(lab.addresses[1], lab.port, good.handle),
    ):
        (outcome,) = await deliver(lab, message("a"))
    assert outcome.status is Status.TEMPORARY and "closed the connection" in outcome.text
    assert good.connections == 0  # a second copy would more likely be a duplicate


@pytest.mark.parametrize(
    ("domain", "status", "enhanced", "words"),
    [
        ("null.test", Status.PERMANENT, "5.1.10", "does not accept mail"),
        ("missing.remote.test", Status.PERMANENT, "5.1.2", "does not exist"),
        ("outside.example", Status.TEMPORARY, "4.4.3", "could not answer"),
    ],
)
async def test_dns_answers(domain: str, status: Status, enhanced: str, words: str) -> None:
    zone = Zone(domains=[DOMAIN, "null.test"], mx=[("null.test", ".", 0)])
    async with start_dnsmasq(zone) as dns:
        transport = make_transport(dns.nameserver)
        msg = OutboundMessage("s@origin.test", (Recipient(f"x@{domain}"),), b"x\r\n")
        (outcome,) = await transport.deliver(domain, msg)
        await transport.close()
    assert (outcome.status, outcome.enhanced) == (status, enhanced)
    assert words in outcome.text


async def test_eight_bit_to_a_server_without_8bitmime_is_converted(lab: Lab) -> None:
    script = Scripted(extensions=("PIPELINING",))
    body = b"Content-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n"
    msg = OutboundMessage("s@origin.test", (Recipient(f"a@{DOMAIN}"),), body, eight_bit=True)
    async with serve(lab.addresses[0], lab.port, script.handle):
        (outcome,) = await deliver(lab, msg)
    assert outcome.status is Status.DELIVERED
    (sent,) = script.messages
    assert sent.isascii() and b"caf=C3=A9\r\n" in sent
    assert not any("BODY=8BITMIME" in c for c in script.commands)


async def test_smtputf8_to_a_server_without_it_is_permanent(lab: Lab) -> None:
    script = Scripted()
    msg = OutboundMessage("s@origin.test", (Recipient(f"a@{DOMAIN}"),), b"x\r\n", smtputf8=True)
    async with serve(lab.addresses[0], lab.port, script.handle):
        (outcome,) = await deliver(lab, msg)
    assert (outcome.status, outcome.enhanced) == (Status.PERMANENT, "5.6.7")
    assert "needs SMTPUTF8" in outcome.text and script.messages == []


@pytest.mark.parametrize(("per_destination", "total"), [(2, 100), (100, 1)])
async def test_concurrency_limits(lab: Lab, per_destination: int, total: int) -> None:
    busy = peak = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal busy, peak
        writer.write(b"220 mx\r\n")
        while line := await reader.readline():
            if line.startswith(b"EHLO"):
                writer.write(b"250-mx\r\n250 PIPELINING\r\n")
            elif line.startswith(b"MAIL"):
                busy += 1
                peak = max(peak, busy)
                writer.write(b"250 ok\r\n")
            elif line.startswith(b"DATA"):
                writer.write(b"354 go\r\n")
                await writer.drain()
                await reader.readuntil(b"\r\n.\r\n")
                await asyncio.sleep(0.05)  # a slow disk: deliveries overlap if they may
                busy -= 1
                writer.write(b"250 2.0.0 queued\r\n")
            elif line.startswith(b"QUIT"):
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()

    transport = lab.transport(
        max_per_destination=per_destination, max_connections=total, idle_seconds=5
    )
    async with serve(lab.addresses[0], lab.port, slow):
        results = await asyncio.gather(
            *(transport.deliver(DOMAIN, message(f"u{i}")) for i in range(6))
        )
        await transport.close()
    assert all(r[0].status is Status.DELIVERED for r in results)
    assert peak == min(per_destination, total)
    assert transport.pool.opened == peak  # later messages reused the open connections


async def take_one_message(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Greeting, EHLO with PIPELINING, one pipelined transaction of one recipient, its 250."""
    writer.write(b"220 mx\r\n")
    await reader.readline()
    writer.write(b"250-mx\r\n250 PIPELINING\r\n")
    await reader.readuntil(b"DATA\r\n")
    writer.write(b"250 ok\r\n250 ok\r\n354 go\r\n")
    await reader.readuntil(b"\r\n.\r\n")
    writer.write(b"250 2.0.0 queued\r\n")


async def test_a_kept_connection_the_server_dropped_is_replaced(lab: Lab) -> None:
    connections = 0

    async def one_message_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal connections
        connections += 1
        await take_one_message(reader, writer)
        await reader.readline()  # the next MAIL, on a connection this server is done with
        writer.write(b"421 4.4.2 idle too long, closing\r\n")

    transport = lab.transport(idle_seconds=30)
    async with serve(lab.addresses[0], lab.port, one_message_per_connection):
        first = await transport.deliver(DOMAIN, message("a"))
        second = await transport.deliver(DOMAIN, message("b"))
        await transport.close()
    assert first[0].status is Status.DELIVERED and second[0].status is Status.DELIVERED
    assert second[0].remote_host == f"mx1.{DOMAIN} [{lab.addresses[0]}]"
    assert connections == 2 and transport.pool.reused == 1


def server_tls(test_ca: TestCA, name: str) -> ssl.SSLContext:
    cert, key = test_ca.issue(name, [name])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.mark.parametrize("offered", [True, False])
async def test_requiretls_needs_verified_tls_and_the_extension(
    lab: Lab, test_ca: TestCA, offered: bool
) -> None:
    extensions = ("PIPELINING", "ENHANCEDSTATUSCODES") + (("REQUIRETLS",) if offered else ())
    script = Scripted(extensions=extensions, tls=server_tls(test_ca, f"mx1.{DOMAIN}"))
    async with serve(lab.addresses[0], lab.port, script.handle):
        (outcome,) = await deliver_signed(
            lab, message("a", requiretls=True), ca_file=str(test_ca.ca_file)
        )
    assert "STARTTLS" in script.commands
    if offered:
        assert outcome.status is Status.DELIVERED, outcome.text
        assert any(c.endswith(" REQUIRETLS") and c.startswith("MAIL") for c in script.commands)
    else:
        assert (outcome.status, outcome.enhanced) == (Status.PERMANENT, "5.7.30")
        assert script.messages == []


async def test_a_server_that_stops_reading_the_message_times_out(lab: Lab) -> None:
    async def stops_reading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mx\r\n")
        await reader.readline()
        writer.write(b"250-mx\r\n250 PIPELINING\r\n")
        await reader.readuntil(b"DATA\r\n")
        writer.write(b"250 ok\r\n250 ok\r\n354 go\r\n")
        await writer.drain()
        await asyncio.sleep(30)  # reads nothing more: the client's writes fill the buffers

    big = OutboundMessage(
        "s@origin.test", (Recipient(f"a@{DOMAIN}"),), b"Subject: big\r\n\r\n" + b"y" * 998 * 30_000
    )
    started = time.monotonic()
    async with serve(lab.addresses[0], lab.port, stops_reading):
        (outcome,) = await deliver(lab, big)
    assert outcome.status is Status.TEMPORARY
    assert "did not take data within 0.36 seconds" in outcome.text, outcome.text
    assert time.monotonic() - started < 5


async def test_too_many_recipients_go_in_further_transactions(lab: Lab) -> None:
    transactions: list[list[str]] = []

    async def two_per_transaction(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(b"220 mx\r\n")
        while line := await reader.readline():
            if line.startswith(b"EHLO"):
                writer.write(b"250-mx\r\n250 ENHANCEDSTATUSCODES\r\n")
            elif line.startswith(b"MAIL"):
                transactions.append([])
                writer.write(b"250 2.1.0 ok\r\n")
            elif line.startswith(b"RCPT"):
                accepted = len(transactions[-1]) < 2
                if accepted:
                    transactions[-1].append(line.decode().split("<")[1].split(">")[0])
                writer.write(b"250 2.1.5 ok\r\n" if accepted else b"452 4.5.3 too many\r\n")
            elif line.startswith(b"DATA"):
                writer.write(b"354 go\r\n")
                await writer.drain()
                await reader.readuntil(b"\r\n.\r\n")
                writer.write(b"250 2.0.0 queued\r\n")
            elif line.startswith(b"QUIT"):
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()

    async with serve(lab.addresses[0], lab.port, two_per_transaction):
        outcomes = await deliver(lab, message("a", "b", "c", "d", "e"))
    assert [o.status for o in outcomes] == [Status.DELIVERED] * 5
    assert [len(t) for t in transactions] == [2, 2, 1]
    assert sorted(a for t in transactions for a in t) == [f"{u}@{DOMAIN}" for u in "abcde"]


@pytest.mark.parametrize(
    "after_message", [b"421 4.4.2 idle, closing\r\n", b"250 2.0.0 a reply nobody asked for\r\n"]
)
async def test_a_server_speaking_while_idle_is_not_reused(lab: Lab, after_message: bytes) -> None:
    connections = 0
    said = asyncio.Event()

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await take_one_message(reader, writer)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(after_message)  # a stale "reply" must never answer the next MAIL
        await writer.drain()
        said.set()
        await reader.read()

    transport = lab.transport(idle_seconds=30)
    async with serve(lab.addresses[0], lab.port, chatty):
        first = await transport.deliver(DOMAIN, message("a"))
        await said.wait()
        await asyncio.sleep(0.05)  # the idle watch sees it
        second = await transport.deliver(DOMAIN, message("b"))
        await transport.close()
    assert first[0].status is Status.DELIVERED and second[0].status is Status.DELIVERED
    assert connections == 2 and transport.pool.reused == 0


async def test_requiretls_needs_mx_hosts_confirmed_by_dnssec_or_mta_sts(lab: Lab) -> None:
    script = Scripted(extensions=("REQUIRETLS",))
    async with serve(lab.addresses[0], lab.port, script.handle):
        (outcome,) = await deliver(lab, message("a", requiretls=True))  # dnsmasq: no AD bit
    assert (outcome.status, outcome.enhanced) == (Status.PERMANENT, "5.7.30")
    assert "confirmed neither by DNSSEC nor by an MTA-STS policy" in outcome.text
    assert script.connections == 0
