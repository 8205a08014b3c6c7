"""SPF, DKIM and DMARC on port 25, between real servers: courriel A relays a user's mail to
courriel B's MX, both on loopback, with dnsmasq publishing MX, SPF, DKIM and DMARC records; B's
verdicts are read back over IMAP (imaplib) and over SMTP (smtplib) as a client meets them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import smtplib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from courriel.admin_dkim import list_keys, record_of
from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.dkim import DkimVerifier, Outcome
from courriel.net.resolver import DnsResolver
from courriel.net.smtp_client import ClientSettings, SmtpTransport
from courriel.queue.bounce import signing_domain
from courriel.testing.dns import DnsServer, Zone, dnsmasq_program, free_udp_port, silent_port
from courriel.testing.outbound import PASSWORD, fast_queue, inbox_over_imap, submit, wait_until
from courriel.testing.server import Account, MailServer, make_message, start_server
from courriel.testing.smtp import body_after_trace

SENDER_IP = "127.0.0.1"  # where courriel A's relay connects from
FORGER_IP = "127.0.0.2"  # a loopback address no SPF record allows


def base_zone() -> Zone:
    z = Zone()
    z.mx["b.test"] = [(10, "mx.b.test")]
    z.a["mx.b.test"] = "127.0.0.1"
    z.add_txt("a.test", f"v=spf1 ip4:{SENDER_IP} -all")
    z.add_txt("_dmarc.a.test", "v=DMARC1; p=reject")
    z.add_txt("q.test", f"v=spf1 ip4:{SENDER_IP} -all")
    z.add_txt("_dmarc.q.test", "v=DMARC1; p=quarantine")
    return z


def checking(nameserver: str, timeout: float = 3.0) -> str:
    return f'[dns]\nnameservers = ["{nameserver}"]\ntimeout_seconds = {timeout}\n[mailauth]\n'


@pytest.fixture
def dnsmasq(request: pytest.FixtureRequest) -> str:
    return dnsmasq_program(request.node.nodeid)


@pytest.fixture
def dns_port() -> int:
    return free_udp_port()


@pytest.fixture
def receiver(tmp_path: Path, dns_port: int) -> Iterator[MailServer]:
    """Courriel B: the MX of b.test, checking with the DNS server on ``dns_port``."""
    (tmp_path / "b").mkdir()
    server = start_server(tmp_path / "b", extra_config=checking(f"127.0.0.1:{dns_port}"))
    try:
        yield server
    finally:
        server.stop()


def send_to_mx(server: MailServer, sender: str, message: bytes) -> tuple[int, str]:
    """One message to the MX from the forger's address; the reply to its end of data."""
    with smtplib.SMTP(
        server.host,
        server.port("smtp"),
        local_hostname="forger.test",
        timeout=15,
        source_address=(FORGER_IP, 0),
    ) as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        assert s.rcpt("bob@b.test")[0] == 250
        try:
            code, text = s.data(message)
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
    return code, text.decode()


def results_of(msg: EmailMessage) -> str:
    """The one Authentication-Results field, white space folded."""
    fields = msg.get_all("Authentication-Results") or []
    assert len(fields) == 1, fields
    return " ".join(str(fields[0]).split())


@dataclass
class Pair:
    sender: MailServer  # courriel A: a.test, relaying through its queue
    receiver: MailServer  # courriel B: the MX of b.test
    alice: Account
    bob: Account
    nameserver: str


@pytest.fixture
def pair(tmp_path: Path, dnsmasq: str, dns_port: int, receiver: MailServer) -> Iterator[Pair]:
    """A and B, with dnsmasq publishing a.test's SPF, DMARC and the DKIM keys A made."""
    nameserver = f"127.0.0.1:{dns_port}"
    settings = ClientSettings(
        helo_name="mail.a.test", port=receiver.port("smtp"), ca_file=str(receiver.cert_path)
    )
    transport = SmtpTransport(settings, DnsResolver([nameserver], timeout=3.0))
    (tmp_path / "a").mkdir()
    sender = start_server(tmp_path / "a", transport=transport, extra_config=fast_queue())
    try:
        alice = sender.add_user("alice@a.test", PASSWORD)  # the domain gets its DKIM keys
        bob = receiver.add_user("bob@b.test", PASSWORD)
        zone = base_zone()
        keys = sender.call(list_keys(sender.store, "a.test"))
        assert {k.algorithm for k in keys} == {"ed25519", "rsa"}
        for key in keys:
            zone.add_txt(*record_of(key))
        with DnsServer(dnsmasq, zone, port=dns_port):
            yield Pair(sender, receiver, alice, bob, nameserver)
    finally:
        sender.stop()


def test_relayed_mail_passes_spf_dkim_and_dmarc(pair: Pair) -> None:
    submit(pair.sender, pair.alice, "bob@b.test", "signed and checked")
    wait_until("bob has it", lambda: len(pair.receiver.messages(pair.bob, "INBOX")) == 1)
    [msg] = inbox_over_imap(pair.receiver, pair.bob, "INBOX")
    results = results_of(msg)
    assert results.startswith(pair.receiver.cfg.hostname + ";")
    for clause in ("dkim=pass", "spf=pass", "dmarc=pass"):
        assert clause in results, results
    assert "header.d=a.test" in results and "header.from=a.test" in results
    assert len(msg.get_all("DKIM-Signature") or []) == 2  # Ed25519 and RSA, made by A


async def test_a_bounce_is_signed_for_the_server_domain(pair: Pair) -> None:
    await asyncio.to_thread(submit, pair.sender, pair.alice, "nobody@b.test", "to nobody")
    await asyncio.to_thread(
        wait_until,
        "alice has a notice",
        lambda: len(pair.sender.messages(pair.alice, "INBOX")) == 1,
    )
    [notice] = await asyncio.to_thread(pair.sender.bodies, pair.alice, "INBOX")
    assert notice.startswith(b"Return-Path: <>\r\nDKIM-Signature:")
    # The test servers' host name is in no hosted domain: the first hosted one signs.
    assert signing_domain(pair.sender.cfg.hostname, ["a.test"]) == "a.test"
    verdicts = await DkimVerifier(AuthResolver([pair.nameserver], timeout=3.0)).verify(notice)
    assert [(v.domain, v.outcome) for v in verdicts] == [
        ("a.test", Outcome.PASS),
        ("a.test", Outcome.PASS),
    ]


async def test_a_local_copy_of_submitted_mail_is_signed(pair: Pair) -> None:
    carol = await asyncio.to_thread(pair.sender.add_user, "carol@a.test", PASSWORD)
    await asyncio.to_thread(submit, pair.sender, pair.alice, "carol@a.test", "next door")
    [stored] = await asyncio.to_thread(pair.sender.bodies, carol, "INBOX")
    _, after_trace = body_after_trace(stored)
    assert after_trace.startswith(b"DKIM-Signature:")
    verdicts = await DkimVerifier(AuthResolver([pair.nameserver], timeout=3.0)).verify(stored)
    assert [(v.domain, v.outcome) for v in verdicts] == [
        ("a.test", Outcome.PASS),
        ("a.test", Outcome.PASS),
    ]


def test_forged_mail_for_a_reject_domain_gets_550_with_the_reason(
    dnsmasq: str, dns_port: int, receiver: MailServer
) -> None:
    bob = receiver.add_user("bob@b.test", PASSWORD)
    forged = make_message("forged", sender="alice@a.test")
    with DnsServer(dnsmasq, base_zone(), port=dns_port):
        code, text = send_to_mx(receiver, "alice@a.test", forged)
    assert code == 550
    assert text.startswith("5.7.1 rejected by the DMARC policy of a.test")
    assert f"SPF: {FORGER_IP} is not allowed to send for a.test" in text
    assert "DKIM: no signature" in text
    assert receiver.messages(bob, "INBOX") == []


def test_bdat_gets_the_same_verdict(dnsmasq: str, dns_port: int, receiver: MailServer) -> None:
    receiver.add_user("bob@b.test", PASSWORD)
    forged = make_message("chunked", sender="alice@a.test")
    with (
        DnsServer(dnsmasq, base_zone(), port=dns_port),
        socket.create_connection(
            (receiver.host, receiver.port("smtp")), timeout=15, source_address=(FORGER_IP, 0)
        ) as sock,
    ):
        replies = sock.makefile("rb")
        commands = [b"EHLO forger.test", b"MAIL FROM:<alice@a.test>", b"RCPT TO:<bob@b.test>"]
        for command in commands:
            sock.sendall(command + b"\r\n")
        sock.sendall(b"BDAT %d LAST\r\n" % len(forged) + forged)  # RFC 3030 §2
        last = b""
        for _ in range(1 + 4):  # the greeting and one reply per command
            while (line := replies.readline())[3:4] == b"-":
                pass
            last = line
    assert last.startswith(b"550 5.7.1 rejected by the DMARC policy of a.test"), last


def test_quarantine_failure_lands_in_a_junk_mailbox_made_for_it(
    dnsmasq: str, dns_port: int, receiver: MailServer
) -> None:
    bob = receiver.add_user("bob@b.test", PASSWORD)
    receiver.call(receiver.store.delete_mailbox(bob.user_id, "Junk"))
    forged = make_message("suspect", sender="carol@q.test")
    # An earlier Authentication-Results claiming B's name must not survive (RFC 8601 §5).
    fake = f"Authentication-Results: {receiver.cfg.hostname}; dmarc=pass\r\n".encode()
    with DnsServer(dnsmasq, base_zone(), port=dns_port):
        code, text = send_to_mx(receiver, "carol@q.test", fake + forged)
    assert code == 250, text
    assert receiver.messages(bob, "INBOX") == []
    junk = receiver.mailbox(bob, "Junk")
    assert junk.special_use == "\\Junk"
    [msg] = inbox_over_imap(receiver, bob, "Junk")
    assert msg["Subject"] == "suspect"
    results = results_of(msg)
    assert "dmarc=fail" in results and "spf=fail" in results, results


def test_a_dns_timeout_gives_451_and_other_sessions_go_on(tmp_path: Path) -> None:
    with silent_port() as port:
        server = start_server(tmp_path, extra_config=checking(f"127.0.0.1:{port}", 1.0))
        try:
            bob = server.add_user("bob@b.test", PASSWORD)
            message = make_message("later", sender="alice@a.test")
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(send_to_mx, server, "alice@a.test", message)
                # While that message waits for DNS, another client is served at once.
                wait_until("the check has started", lambda: _waiting_for_dns(server))
                started = time.monotonic()
                with smtplib.SMTP(server.host, server.port("smtp"), timeout=5) as other:
                    assert other.ehlo()[0] == 250
                    assert other.noop()[0] == 250
                assert time.monotonic() - started < 0.5
                assert not waiting.done()
                code, text = waiting.result(15)
            assert code == 451, text
            assert text.startswith("4.7.0 ")
            assert server.messages(bob, "INBOX") == []
        finally:
            server.stop()


def _waiting_for_dns(server: MailServer) -> bool:
    """True once a session of the server is at its end of data (running the checks)."""

    async def look() -> bool:
        live = server.running.app.connections.live()
        return any(c.command in ("MessageData", "BdatLast") for c in live)

    return server.call(look())


def test_notices_sign_for_the_host_name_or_its_nearest_hosted_parent() -> None:
    hosted = ["a.test", "example.org", "mx.example.org"]
    assert signing_domain("mx.example.org", hosted) == "mx.example.org"
    assert signing_domain("mail.example.org", hosted) == "example.org"
    assert signing_domain("Mail.Example.Org.", hosted) == "example.org"
    assert signing_domain("mail.other.test", hosted) == "a.test"
    assert signing_domain("mail.other.test", []) is None
