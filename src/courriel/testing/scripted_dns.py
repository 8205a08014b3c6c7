"""A DNS server for the one thing dnsmasq cannot do: answers marked DNSSEC-validated (AD bit).

Theory of operation
-------------------
DANE (RFC 7672) applies only when the resolver says its TLSA answer was validated. A real
validating resolver needs a signed zone and a trust anchor; this server stands in for the
*resolver's verdict* only: it answers A, AAAA, MX and TLSA queries from a table over UDP on
loopback, with the AD bit set when ``authentic`` is true, and NXDOMAIN for names it does not
know. It also serves the mail-authentication tests what dnsmasq cannot: a chosen TTL, SERVFAIL
for the names in ``failing``, and a count of the questions asked (``queries``), to prove what
the resolver's cache saves. Everything after the verdict -- the TLSA lookup, the DANE level,
the TLS handshake with a real server and the certificate match -- runs for real.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from courriel.testing.net import free_port


@dataclass
class Answers:
    records: dict[tuple[str, str], list[str]]  # (name, type) -> rdata texts
    authentic: bool = True
    queries: list[tuple[str, str]] = field(default_factory=list)
    ttl: int = 60
    failing: set[str] = field(default_factory=set)  # names answered SERVFAIL

    def respond(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        texts = self.records.get((name, rdtype))
        if name in self.failing:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif texts:
            rrset = dns.rrset.from_text(question.name, self.ttl, "IN", rdtype, *texts)
            response.answer.append(rrset)
        elif not any(n == name for n, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        if self.authentic:
            response.flags |= dns.flags.AD
        return response.to_wire()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.answers.respond(data), addr)


@contextlib.asynccontextmanager
async def serve_dns(answers: Answers) -> AsyncIterator[str]:
    """Serves ``answers`` on 127.0.0.1 until the block ends; yields the "127.0.0.1:port"."""
    port = free_port()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Protocol(answers), local_addr=("127.0.0.1", port)
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        transport.close()
