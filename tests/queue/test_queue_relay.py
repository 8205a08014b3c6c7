"""The whole relay path: submission over real SMTP (STARTTLS, AUTH) to a courriel that relays,
its queue and worker, a transport that crosses a socket, and a second courriel receiving.

The receiving courriel is a real MTA on loopback: it refuses unknown users with 550 5.1.1 and
answers 452 4.2.2 while a mailbox is full (its message limit reached), which is how the tests
get their permanent and temporary failures. Notices are read back from the sender's INBOX with
imaplib.
"""

from __future__ import annotations

import io
import re
import smtplib
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import dkim
import pytest

from courriel import cli
from courriel.mail.auth.dkim import Algorithm, public_record
from courriel.store.base import NotFound
from courriel.store.queue import QueuedMessage
from courriel.testing.net import free_ports
from courriel.testing.outbound import (
    PASSWORD,
    dsn_fields,
    fast_queue,
    inbox_over_imap,
    submit,
    wait_until,
)
from courriel.testing.server import Account, MailServer, start_server
from courriel.testing.transports import SmtplibTransport

RelayFactory = Callable[..., MailServer]


@pytest.fixture
def make_relay(tmp_path: Path) -> Iterator[RelayFactory]:
    started: list[MailServer] = []

    def make(port: int, *, give_up: float = 30.0, store: str = "") -> MailServer:
        root = tmp_path / f"relay{len(started)}"
        root.mkdir()
        server = start_server(
            root,
            transport=SmtplibTransport("127.0.0.1", port),
            extra_config=fast_queue(give_up) + store,
        )
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def entry(relay: MailServer, queue_id: str) -> QueuedMessage | None:
    try:
        return relay.call(relay.store.queue.get(queue_id))
    except NotFound:
        return None


def test_submitted_mail_reaches_the_other_server(
    make_relay: RelayFactory, receiver: MailServer, bob: Account
) -> None:
    relay = make_relay(receiver.port("smtp"))
    alice = relay.add_user("alice@example.test", PASSWORD)
    queue_id = submit(relay, alice, "bob@example.net", "across")
    wait_until("bob has it", lambda: len(receiver.messages(bob, "INBOX")) == 1)
    [raw] = receiver.bodies(bob, "INBOX")
    assert b"Subject: across" in raw
    assert f"with ESMTPSA id {queue_id}".encode() in raw  # the relay's Received names the entry
    wait_until("the entry is gone", lambda: entry(relay, queue_id) is None)
    assert inbox_over_imap(relay, alice) == []  # no notice for a plain success


def test_submitted_mail_leaves_dkim_signed_for_the_sender_domain(
    make_relay: RelayFactory, receiver: MailServer, bob: Account
) -> None:
    relay = make_relay(receiver.port("smtp"))
    alice = relay.add_user("alice@example.test", PASSWORD)  # the domain gets its keys
    submit(relay, alice, "bob@example.net", "signed")
    wait_until("bob has it", lambda: len(receiver.messages(bob, "INBOX")) == 1)
    [raw] = receiver.bodies(bob, "INBOX")
    keys = {k.selector: k for k in relay.call(relay.store.dkim_keys("example.test"))}

    def dns(name: bytes, timeout: float = 5) -> bytes:
        selector = name.decode().split(".", 1)[0]
        key = keys[selector]
        return public_record(Algorithm(key.algorithm), key.private_pem.encode()).encode()

    signed = dkim.DKIM(raw)
    fields = [v for k, v in signed.headers if k.lower() == b"dkim-signature"]
    assert len(fields) == 2 and all(b"d=example.test" in f for f in fields)
    rsa = next(i for i, f in enumerate(fields) if b"a=rsa-sha256" in f)
    assert signed.verify(idx=rsa, dnsfunc=dns)  # the bytes that left are the bytes signed


def test_the_inbound_mx_of_a_relaying_server_is_no_open_relay(
    make_relay: RelayFactory, receiver: MailServer
) -> None:
    relay = make_relay(receiver.port("smtp"))
    with smtplib.SMTP(relay.host, relay.port("smtp"), timeout=10) as s:
        s.ehlo("client.example.org")
        assert s.mail("someone@example.org")[0] == 250
        code, text = s.rcpt("bob@example.net")
    assert (code, text.split()[0]) == (554, b"5.7.1")  # RFC 5321 §3.6.2
    assert relay.call(relay.store.queue.list_entries()) == []


def test_a_permanent_refusal_comes_back_to_the_sender_inbox(
    make_relay: RelayFactory, receiver: MailServer, bob: Account
) -> None:
    relay = make_relay(receiver.port("smtp"))
    alice = relay.add_user("alice@example.test", PASSWORD)
    submit(relay, alice, "nobody@example.net", "to nobody")
    wait_until("alice has a notice", lambda: len(relay.messages(alice, "INBOX")) == 1)
    [notice] = inbox_over_imap(relay, alice)
    assert notice["Subject"] == "Undelivered Mail Returned to Sender"
    assert notice.get_content_type() == "multipart/report"
    words, block = dsn_fields(notice)
    assert "refused the message. It replied: 550 5.1.1 no mailbox here by that name" in words
    assert (block["Action"], block["Status"]) == ("failed", "5.1.1")
    assert block["Final-Recipient"] == "rfc822; nobody@example.net"
    assert block["Diagnostic-Code"].startswith("smtp; 550 5.1.1")


def test_a_temporary_failure_is_retried_until_delivered(
    make_relay: RelayFactory, receiver: MailServer, bob: Account
) -> None:
    receiver.call(receiver.store.set_count_quota(bob.address, 0, None))  # 452 4.2.2 until raised
    relay = make_relay(receiver.port("smtp"))
    alice = relay.add_user("alice@example.test", PASSWORD)
    queue_id = submit(relay, alice, "bob@example.net", "patience")

    def tried_twice() -> bool:
        e = entry(relay, queue_id)
        return e is not None and e.recipients[0].attempts >= 2

    wait_until("two attempts", tried_twice)
    e = entry(relay, queue_id)
    assert e is not None and e.recipients[0].code == 452
    receiver.call(receiver.store.set_count_quota(bob.address, None, None))
    wait_until("bob has it", lambda: len(receiver.messages(bob, "INBOX")) == 1)
    wait_until("the entry is gone", lambda: entry(relay, queue_id) is None)
    assert inbox_over_imap(relay, alice) == []


def test_a_server_down_until_expiry_returns_the_message(make_relay: RelayFactory) -> None:
    [closed] = free_ports(1)  # nothing listens there
    relay = make_relay(closed, give_up=1.5)
    alice = relay.add_user("alice@example.test", PASSWORD)
    queue_id = submit(relay, alice, "bob@example.net", "into the void")
    wait_until("alice has a notice", lambda: len(relay.messages(alice, "INBOX")) == 1)
    [notice] = inbox_over_imap(relay, alice)
    words, block = dsn_fields(notice)
    assert re.search(r"courriel kept trying for \d+ seconds and gave up", words)
    assert f"cannot connect to 127.0.0.1 port {closed}" in words
    assert (block["Action"], block["Status"]) == ("failed", "5.4.7")
    assert entry(relay, queue_id) is None


def courriel(relay: MailServer, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = cli.main(["--config", str(relay.cfg.path), *argv])
    return status, out.getvalue(), err.getvalue()


def attempted(relay: MailServer, queue_id: str) -> Callable[[], bool]:
    def check() -> bool:
        e = entry(relay, queue_id)
        return e is not None and e.recipients[0].attempts > 0

    return check


def test_hold_release_and_remove_while_the_server_runs(
    store_config: str, make_relay: RelayFactory, receiver: MailServer, bob: Account
) -> None:
    relay = make_relay(receiver.port("smtp"), store=store_config)
    alice = relay.add_user("alice@example.test", PASSWORD)
    receiver.call(receiver.store.set_count_quota(bob.address, 0, None))  # 452 until raised
    kept = submit(relay, alice, "bob@example.net", "kept")
    wait_until("a first attempt", attempted(relay, kept))
    status, out, _ = courriel(relay, "queue", "hold", kept)
    assert (status, out) == (0, f"{kept} is held: it will not be delivered until released\n")
    receiver.call(receiver.store.set_count_quota(bob.address, None, None))
    status, out, _ = courriel(relay, "queue", "list")
    assert status == 0 and f"{kept}  " in out and "(held)" in out
    time.sleep(1.0)  # five polls and more than one retry delay: a held entry stays put
    assert receiver.messages(bob, "INBOX") == []
    assert courriel(relay, "queue", "release", kept)[0] == 0
    wait_until("bob has it", lambda: len(receiver.messages(bob, "INBOX")) == 1)

    receiver.call(receiver.store.set_count_quota(bob.address, 0, None))
    dropped = submit(relay, alice, "bob@example.net", "dropped")
    wait_until("a first attempt", attempted(relay, dropped))
    assert courriel(relay, "queue", "remove", dropped)[0] == 0
    assert entry(relay, dropped) is None
    status, out, err = courriel(relay, "queue", "show", dropped)
    assert (status, out, err) == (1, "", f"courriel: error: no queue entry {dropped}\n")
    receiver.call(receiver.store.set_count_quota(bob.address, None, None))
    time.sleep(1.0)
    assert len(receiver.messages(bob, "INBOX")) == 1  # the removed one never went
    assert relay.messages(alice, "INBOX") == []  # and nobody was told
