"""A message failing DMARC ``p=quarantine`` lands in Junk with the junk filter on, whatever the
recipient's threshold, and its X-Spam fields sit right above Authentication-Results; dnsmasq
publishes the sender domain's SPF and DMARC records."""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.store.base import DomainPolicy, OnDmarcFailure
from courriel.testing.dns import DnsServer, Zone, free_udp_port, sbin_program
from courriel.testing.missing import report_missing
from courriel.testing.server import MailServer, make_message, start_server
from courriel.testing.smtp import SPAM_FIELDS, TRACE, body_after_trace

FORGER_IP = "127.0.0.2"  # a loopback address the SPF record does not allow


@pytest.fixture
def dns_port(request: pytest.FixtureRequest) -> Iterator[int]:
    program = sbin_program("dnsmasq")
    if program is None:
        report_missing("program 'dnsmasq'", request.node.nodeid)
    assert program is not None
    zone = Zone()
    zone.add_txt("q.test", "v=spf1 ip4:127.0.0.1 -all")
    zone.add_txt("_dmarc.q.test", "v=DMARC1; p=quarantine")
    port = free_udp_port()
    with DnsServer(program, zone, port=port):
        yield port


@pytest.fixture
def receiver(tmp_path: Path, dns_port: int) -> Iterator[MailServer]:
    with receiving(tmp_path, dns_port, scoring=True) as server:
        yield server


@contextlib.contextmanager
def receiving(tmp_path: Path, dns_port: int, *, scoring: bool) -> Iterator[MailServer]:
    config = (
        f'[dns]\nnameservers = ["127.0.0.1:{dns_port}"]\ntimeout_seconds = 3\n'
        f"[mailauth]\n[junk]\nscoring = {str(scoring).lower()}\n"
    )
    server = start_server(tmp_path, extra_config=config)
    try:
        yield server
    finally:
        server.stop()


def test_dmarc_quarantine_failure_lands_in_junk_with_the_reasons(receiver: MailServer) -> None:
    bob = receiver.add_user("bob@b.test", "pw")
    receiver.call(receiver.store.set_junk_threshold(bob.user_id, 50.0))  # score alone: never
    forged = make_message("suspect", sender="carol@q.test")
    with smtplib.SMTP(
        receiver.host,
        receiver.port("smtp"),
        local_hostname="forger.test",
        source_address=(FORGER_IP, 0),
    ) as s:
        s.sendmail("carol@q.test", ["bob@b.test"], forged)
    assert receiver.messages(bob, "INBOX") == []
    [stored] = receiver.bodies(bob, "Junk")
    names, rest = body_after_trace(stored, (*TRACE, *SPAM_FIELDS, b"Authentication-Results:"))
    assert names == [
        b"Return-Path",
        b"Received",
        b"X-Spam-Score",
        b"X-Spam-Status",
        b"X-Spam-Report",
        b"Authentication-Results",
    ]
    head = " ".join(stored.split(b"\r\n\r\n")[0].decode().split())
    # (the score itself depends on the message's age, DATE_IN_PAST, once it is old)
    assert "X-Spam-Status: Yes, score=" in head and "required=50.0" in head
    assert "tests=DMARC_FAIL(+3.0) SPF_FAIL(+1.0)" in head
    assert "sent to Junk: " in head and "dmarc=fail" in head
    assert rest == forged


@pytest.mark.parametrize("scoring", [True, False], ids=["scoring", "no-scoring"])
def test_each_recipient_domain_places_its_copy_and_sieve_files_the_kept_one(
    tmp_path: Path, dns_port: int, scoring: bool
) -> None:
    """One message failing DMARC p=quarantine, two recipient domains: the one whose policy
    says INBOX gets its copy through the recipient's Sieve script; the other's goes to Junk,
    with the junk filter scoring or not."""
    with receiving(tmp_path, dns_port, scoring=scoring) as receiver:
        _two_domains(receiver)


def _two_domains(receiver: MailServer) -> None:
    bob = receiver.add_user("bob@b.test", "pw")
    dan = receiver.add_user("dan@d.test", "pw")
    receiver.call(
        receiver.store.set_domain_policy(DomainPolicy("d.test", on_quarantine=OnDmarcFailure.INBOX))
    )
    receiver.call(receiver.store.create_mailbox(dan.user_id, "Suspect"))
    script = (
        'require "fileinto";\n'
        'if header :contains "Authentication-Results" "dmarc=fail" { fileinto "Suspect"; }\n'
    )
    receiver.call(receiver.store.put_sieve_script(dan.user_id, "s", script))
    receiver.call(receiver.store.activate_sieve_script(dan.user_id, "s"))
    forged = make_message("suspect", sender="carol@q.test")
    with smtplib.SMTP(
        receiver.host,
        receiver.port("smtp"),
        local_hostname="forger.test",
        source_address=(FORGER_IP, 0),
    ) as s:
        s.sendmail("carol@q.test", ["bob@b.test", "dan@d.test"], forged)
    assert receiver.messages(bob, "INBOX") == []
    assert len(receiver.messages(bob, "Junk")) == 1
    assert receiver.messages(dan, "INBOX") == []
    [filed] = receiver.bodies(dan, "Suspect")
    assert filed.endswith(forged)
