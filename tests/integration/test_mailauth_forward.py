"""ARC between real servers: courriel B forwards an alias of b.test to courriel C (c.test) and
seals it; C's DMARC check fails (B's address is not in a.test's SPF) but the chain passes and
C trusts b.test as a sealer, so the message reaches INBOX. Mail::DKIM verifies the chain C
stored, and each domain's policy (``courriel domain policy``) is honoured at C."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from courriel.admin_dkim import list_keys, record_of
from courriel.mail.auth.dmarc_report import Evaluation
from courriel.net.resolver import DnsResolver
from courriel.net.smtp_client import ClientSettings, SmtpTransport
from courriel.store.base import DomainPolicy
from courriel.testing.dns import DnsServer, Zone, dnsmasq_program, free_udp_port
from courriel.testing.mailauth import mail_dkim_arc_available, mail_dkim_arc_verify
from courriel.testing.missing import report_missing
from courriel.testing.outbound import PASSWORD, fast_queue, wait_until
from courriel.testing.server import Account, MailServer, make_message, start_server

CLIENT_IP = "127.0.0.2"  # the original sender, the only address a.test's SPF allows


def checking(nameserver: str, extra: str = "") -> str:
    return f'[dns]\nnameservers = ["{nameserver}"]\ntimeout_seconds = 3.0\n[mailauth]\n{extra}'


@dataclass
class Forwarding:
    forwarder: MailServer  # B: fwd@b.test -> carol@c.test
    receiver: MailServer  # C: the MX of c.test
    carol: Account
    dns_port: int


@pytest.fixture
def forwarding(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Forwarding]:
    program = dnsmasq_program(request.node.nodeid)
    port = free_udp_port()
    nameserver = f"127.0.0.1:{port}"
    (tmp_path / "c").mkdir()
    trusted = 'trusted_arc_sealers = ["b.test"]\n'
    receiver = start_server(tmp_path / "c", extra_config=checking(nameserver, trusted))
    settings = ClientSettings(
        helo_name="mx.b.test", port=receiver.port("smtp"), ca_file=str(receiver.cert_path)
    )
    transport = SmtpTransport(settings, DnsResolver([nameserver], timeout=3.0))
    (tmp_path / "b").mkdir()
    config = checking(nameserver) + fast_queue()
    forwarder = start_server(tmp_path / "b", transport=transport, extra_config=config)
    try:
        forwarder.add_user("postmaster@b.test", PASSWORD)  # b.test and its DKIM keys
        forwarder.call(forwarder.store.add_alias("fwd@b.test", "carol@c.test"))
        carol = receiver.add_user("carol@c.test", PASSWORD)
        zone = Zone()
        zone.add_txt("a.test", f"v=spf1 ip4:{CLIENT_IP} -all")
        zone.add_txt("_dmarc.a.test", "v=DMARC1; p=reject; rua=mailto:dmarc@a.test")
        zone.mx["c.test"] = [(10, "mx.c.test")]
        zone.a["mx.c.test"] = "127.0.0.1"
        for key in forwarder.call(list_keys(forwarder.store, "b.test")):
            zone.add_txt(*record_of(key))
        with DnsServer(program, zone, port=port):
            yield Forwarding(forwarder, receiver, carol, port)
    finally:
        forwarder.stop()
        receiver.stop()


def evaluations(server: MailServer) -> list[Evaluation]:
    rows = server.call(server.store.dmarc_evaluations("a.test", before=2**40, limit=10))
    return [Evaluation.from_json(r.data) for r in rows]


def send(forwarding: Forwarding, subject: str) -> None:
    b = forwarding.forwarder
    with smtplib.SMTP(
        b.host, b.port("smtp"), local_hostname="mail.a.test", source_address=(CLIENT_IP, 0)
    ) as s:
        s.sendmail("alice@a.test", ["fwd@b.test"], make_message(subject, sender="alice@a.test"))


def test_a_forward_is_sealed_and_a_trusted_seal_outweighs_dmarc(
    request: pytest.FixtureRequest, forwarding: Forwarding
) -> None:
    if not mail_dkim_arc_available():
        report_missing("perl module Mail::DKIM::ARC (libmail-dkim-perl)", request.node.nodeid)
    c, carol = forwarding.receiver, forwarding.carol
    send(forwarding, "forwarded")
    wait_until("carol has it", lambda: len(c.messages(carol, "INBOX")) == 1)
    [stored] = c.bodies(carol, "INBOX")
    head = b" ".join(stored.split(b"\r\n\r\n", 1)[0].split()).decode()
    # C's own verdict: SPF and DMARC fail (B sends from 127.0.0.1), the chain B sealed passes.
    assert f"Authentication-Results: {c.hostname}; spf=fail" in head
    assert "arc=pass smtp.remote-ip=127.0.0.1" in head and "dmarc=fail" in head
    # B's seal, recording B's verdict on the original hop.
    assert "ARC-Seal: i=1; cv=none; a=rsa-sha256; d=b.test;" in head
    assert "ARC-Authentication-Results: i=1;" in head and "dmarc=pass header.from=a.test" in head
    # An independent verifier agrees (C's Authentication-Results are not covered by the seal).
    result, detail = mail_dkim_arc_verify("127.0.0.1", forwarding.dns_port, stored)
    assert (result, detail) == ("pass", "pass (as.1.b.test=pass, ams.1.b.test=pass)")
    # Both record the evaluation for a.test's aggregate report: B saw SPF pass, C delivered a
    # DMARC failure on the trusted seal (RFC 7489 §7.2 PolicyOverride trusted_forwarder).
    [at_b] = evaluations(forwarding.forwarder)
    assert (at_b.source_ip, at_b.spf_aligned, at_b.disposition) == (CLIENT_IP, True, "none")
    [at_c] = evaluations(c)
    assert (at_c.source_ip, at_c.spf_aligned, at_c.dkim_aligned) == ("127.0.0.1", False, False)
    assert at_c.disposition == "none" and at_c.envelope_to == "c.test"
    assert at_c.reasons == (("trusted_forwarder", "arc=pass, sealed by b.test"),)


async def test_a_domain_may_refuse_the_arc_override(forwarding: Forwarding) -> None:
    c, carol = forwarding.receiver, forwarding.carol
    await c.acall(c.store.set_domain_policy(DomainPolicy("c.test", arc_override=False)))
    await asyncio.to_thread(send, forwarding, "refused at C")
    # C refuses it (550: a.test says p=reject); B then owes alice@a.test a bounce, which it
    # cannot deliver either; C's mailbox stays empty.
    await asyncio.to_thread(
        wait_until,
        "B's queue gave up on C",
        lambda: not forwarding.forwarder.call(forwarding.forwarder.store.queue.list_entries()),
    )
    assert c.messages(carol, "INBOX") == [] and c.messages(carol, "Junk") == []
