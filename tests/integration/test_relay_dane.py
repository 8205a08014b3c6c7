"""DANE on the relay against a real Postfix: the TLSA records decide, when DNS says validated.

Here a scripted DNS server (``courriel.testing.scripted_dns``) gives the resolver's verdict,
the AD bit, so every TLSA usage can be tried without signing a zone for each; the lookup, the
TLS handshake with Postfix and the certificate match are real. test_relay_dane_dnssec.py runs
the same path behind a real validating resolver. The transport gets
no CA file: with DANE the trust comes from the TLSA record, not from a certificate authority.
"""

from __future__ import annotations

import pytest

from courriel.queue.outbound import Recipient
from courriel.queue.transport import OutboundMessage, Outcome, Status
from courriel.testing.certs import leaf_der, spki_sha256
from courriel.testing.postfix import Postfix
from courriel.testing.relay import RECEIVER_DOMAIN, make_transport
from courriel.testing.scripted_dns import Answers, serve_dns

MX = f"mx1.{RECEIVER_DOMAIN}"


async def deliver(receiver: Postfix, tlsa: str, *, authentic: bool) -> Outcome:
    answers = Answers(
        {
            (RECEIVER_DOMAIN, "MX"): [f"10 {MX}."],
            (MX, "A"): [receiver.address],
            (f"_25._tcp.{MX}", "TLSA"): [tlsa],
        },
        authentic=authentic,
    )
    async with serve_dns(answers) as nameserver:
        transport = make_transport(nameserver)
        msg = OutboundMessage(
            "s@origin.test", (Recipient(f"alice@{RECEIVER_DOMAIN}"),), b"Subject: d\r\n\r\nx\r\n"
        )
        (outcome,) = await transport.deliver(RECEIVER_DOMAIN, msg)
        await transport.close()
    assert (f"_25._tcp.{MX}", "TLSA") in answers.queries
    return outcome


async def test_matching_dane_ee_record_delivers(receiver: Postfix) -> None:
    outcome = await deliver(
        receiver, f"3 1 1 {spki_sha256(leaf_der(receiver.cert))}", authentic=True
    )
    assert outcome.status is Status.DELIVERED, outcome.text
    (stored,) = await receiver.delivered(f"alice@{RECEIVER_DOMAIN}")
    assert b"(using TLS" in stored


async def test_mismatching_record_defers_with_the_reason(receiver: Postfix) -> None:
    outcome = await deliver(receiver, "3 1 1 " + "00" * 32, authentic=True)
    assert outcome.status is Status.TEMPORARY
    assert f"the certificate of {MX} matches none of its DNSSEC-signed TLSA records" in outcome.text
    assert receiver.messages(f"alice@{RECEIVER_DOMAIN}") == []


async def test_records_without_the_ad_bit_are_ignored(receiver: Postfix) -> None:
    outcome = await deliver(receiver, "3 1 1 " + "00" * 32, authentic=False)
    assert outcome.status is Status.DELIVERED  # opportunistic TLS: unsigned TLSA proves nothing


@pytest.mark.parametrize("usage", ["0 0 1", "1 1 1"])
async def test_pkix_usages_still_require_tls(receiver: Postfix, usage: str) -> None:
    outcome = await deliver(receiver, f"{usage} {'11' * 32}", authentic=True)
    assert outcome.status is Status.DELIVERED  # RFC 7672 §2.2: unusable records, TLS anyway
    (stored,) = await receiver.delivered(f"alice@{RECEIVER_DOMAIN}")
    assert b"(using TLS" in stored
