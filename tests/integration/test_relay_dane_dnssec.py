"""DANE end to end: a signed zone (nsd), a validating resolver (unbound), a real Postfix.

Nothing stands in for DNSSEC here: the relay's resolver is ``[dns] nameservers`` = unbound,
which validates the zone ``receiver.test`` from its trust anchor and sets the AD bit itself
(``courriel.testing.dnssec``). The cases are those RFC 7672 §2.2 cares about: a TLSA record
that matches Postfix's certificate (delivered, over verified TLS), one that does not (deferred,
nothing sent), and signatures that do not validate (the resolver answers SERVFAIL: deferred,
never sent in clear).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from courriel.queue.outbound import Recipient
from courriel.queue.transport import OutboundMessage, Outcome, Status
from courriel.testing import dnssec
from courriel.testing.certs import leaf_der, spki_sha256
from courriel.testing.missing import report_missing
from courriel.testing.postfix import Postfix
from courriel.testing.relay import RECEIVER_DOMAIN, make_transport

MX = f"mx1.{RECEIVER_DOMAIN}"
ALICE = f"alice@{RECEIVER_DOMAIN}"


@pytest.fixture(autouse=True)
def programs(request: pytest.FixtureRequest) -> None:
    for name in dnssec.missing_programs():
        report_missing(f"program {name!r}", request.node.nodeid)


def zone(receiver: Postfix, tlsa: str, **options: Any) -> dnssec.SignedZone:
    records = [("@", "MX", "10 mx1"), ("mx1", "A", receiver.address)]
    records.append(("_25._tcp.mx1", "TLSA", tlsa))
    return dnssec.SignedZone(RECEIVER_DOMAIN, records, **options)


async def deliver(signed: dnssec.SignedZone, directory: Path) -> Outcome:
    async with dnssec.start_dnssec(signed, directory) as dns:
        transport = make_transport(dns.nameserver)  # no CA file: only DANE can authenticate
        msg = OutboundMessage("s@origin.test", (Recipient(ALICE),), b"Subject: d\r\n\r\nx\r\n")
        (outcome,) = await transport.deliver(RECEIVER_DOMAIN, msg)
        await transport.close()
    return outcome


async def test_matching_record_delivers_over_verified_tls(
    receiver: Postfix, tmp_path: Path
) -> None:
    tlsa = f"3 1 1 {spki_sha256(leaf_der(receiver.cert))}"
    outcome = await deliver(zone(receiver, tlsa), tmp_path)
    assert outcome.status is Status.DELIVERED, outcome.text
    (stored,) = await receiver.delivered(ALICE)
    assert b"(using TLS" in stored


async def test_mismatching_record_defers_and_sends_nothing(
    receiver: Postfix, tmp_path: Path
) -> None:
    outcome = await deliver(zone(receiver, "3 1 1 " + "00" * 32), tmp_path)
    assert outcome.status is Status.TEMPORARY
    assert f"the certificate of {MX} matches none of its DNSSEC-signed TLSA records" in outcome.text
    assert receiver.messages(ALICE) == []
    assert receiver.connections() <= 1  # the handshake, then QUIT: no second try in clear


async def test_expired_signatures_defer_never_in_clear(receiver: Postfix, tmp_path: Path) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    tlsa = f"3 1 1 {spki_sha256(leaf_der(receiver.cert))}"
    signed = zone(receiver, tlsa, valid_from=past, valid_until=past + dt.timedelta(days=7))
    outcome = await deliver(signed, tmp_path)
    assert outcome.status is Status.TEMPORARY
    assert f"DNS servers could not answer for {RECEIVER_DOMAIN} (MX)" in outcome.text
    assert receiver.messages(ALICE) == []
    assert receiver.connections() == 0


async def test_forged_tlsa_signature_defers_the_signed_host(
    receiver: Postfix, tmp_path: Path
) -> None:
    # MX and address records validate; only the TLSA answer is bogus (SERVFAIL). RFC 7672
    # §2.2: a host in a signed zone whose TLSA lookup fails is not used, with or without TLS.
    tlsa = f"3 1 1 {spki_sha256(leaf_der(receiver.cert))}"
    signed = zone(receiver, tlsa, bogus_tlsa=True)
    outcome = await deliver(signed, tmp_path)
    assert outcome.status is Status.TEMPORARY
    assert f"the TLSA records of {MX} could not be validated" in outcome.text
    assert receiver.messages(ALICE) == []
    assert receiver.connections() == 0
