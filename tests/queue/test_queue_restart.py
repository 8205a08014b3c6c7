"""The delay warning and the expiry of a queued message across restarts, on a compressed
schedule: the server is stopped before the warning is due, started again (the warning goes out,
once), stopped before the deadline and started again after it (the message is returned). What
the schedule needs (when the entry was queued, whether the sender was warned) lives in the
store, so neither notice depends on a process that stayed up.
"""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from courriel.config import Config
from courriel.queue.transport import Status
from courriel.store.base import NotFound
from courriel.testing.outbound import PASSWORD, submit, wait_until
from courriel.testing.server import Account, MailServer, start_server
from courriel.testing.transports import ScriptedTransport

WARN_AFTER = 1.5
GIVE_UP = 4.0
QUEUE = (
    "[queue]\nfirst_retry_seconds = 0.3\nmax_retry_seconds = 0.6\n"
    f"give_up_seconds = {GIVE_UP}\ndelay_warning_seconds = {WARN_AFTER}\n"
    "poll_seconds = 0.2\nlease_seconds = 5\n"
)
BOB = "bob@example.net"


def refusing() -> ScriptedTransport:
    """Every attempt to reach bob is answered 451: retried until the deadline."""
    transport = ScriptedTransport()
    transport.script[BOB] = [Status.TEMPORARY]
    return transport


def restart(cfg: Config) -> tuple[MailServer, ScriptedTransport]:
    """The same data directory and configuration, served by a new server."""
    transport = refusing()
    server = MailServer(cfg, transport)
    server.start()
    return server, transport


def notices(server: MailServer, alice: Account) -> list[EmailMessage]:
    out = []
    for raw in server.bodies(alice, "INBOX"):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def attempted(
    server: MailServer, queue_id: str, transport: ScriptedTransport
) -> Callable[[], bool]:
    """True once this server tried bob and recorded it (the lease is given back)."""

    def check() -> bool:
        try:
            e = server.call(server.store.queue.get(queue_id))
        except NotFound:
            return False
        return transport.attempts(BOB) >= 1 and e.lease_owner is None

    return check


def wait_for_age(created: float, age: float) -> None:
    """The server is down meanwhile: the schedule's clock (the wall clock) goes on without it."""
    time.sleep(max(0.0, created + age - time.time()))


def test_the_delay_warning_and_the_expiry_survive_restarts(tmp_path: Path) -> None:
    transport = refusing()
    first = start_server(tmp_path, transport=transport, extra_config=QUEUE)
    try:
        alice = first.add_user("alice@example.test", PASSWORD)
        queue_id = submit(first, alice, BOB, "patience")
        created = first.call(first.store.queue.get(queue_id)).created
        wait_until("a first attempt", attempted(first, queue_id, transport))
        assert notices(first, alice) == []  # too early for a warning
    finally:
        first.stop()
    assert time.time() - created < WARN_AFTER, "the machine is too slow for this schedule"

    wait_for_age(created, WARN_AFTER + 0.1)
    second, transport = restart(first.cfg)
    try:
        wait_until("the delay warning", lambda: len(notices(second, alice)) == 1)
        [warning] = notices(second, alice)
        entry = second.call(second.store.queue.get(queue_id))
        assert entry.warned and entry.recipients[0].attempts >= 2
    finally:
        second.stop()
    assert warning["Subject"] == "Delayed Mail (still being retried)"
    assert time.time() - created < GIVE_UP, "the machine is too slow for this schedule"

    wait_for_age(created, GIVE_UP + 0.1)
    third, transport = restart(first.cfg)
    try:
        wait_until("the message is returned", lambda: len(notices(third, alice)) == 2)
        wait_until("the entry is gone", lambda: not third.call(third.store.queue.list_entries()))
        delayed, returned = notices(third, alice)
        assert transport.attempts(BOB) == 1  # one last try past the deadline, then the notice
    finally:
        third.stop()
    assert delayed["Subject"] == "Delayed Mail (still being retried)"  # warned once, not again
    assert returned["Subject"] == "Undelivered Mail Returned to Sender"
    text = " ".join(next(iter(returned.iter_parts())).get_content().split())
    assert "courriel kept trying for" in text and "gave up" in text
