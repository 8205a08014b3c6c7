"""A message submitted over SMTP reaches an IMAP session waiting in IDLE within a second.

This crosses the whole server: SMTP submission (STARTTLS, AUTH, DATA), local delivery into the
store, the change event published after the commit, and the IDLE session that turns it into an
untagged EXISTS (RFC 2177; RFC 9051 §6.3.13) without the client asking.
"""

from __future__ import annotations

import smtplib
import time
from typing import TYPE_CHECKING

import imapclient

if TYPE_CHECKING:
    from courriel.testing.server import Account, MailServer

DELIVERY_DEADLINE = 1.0  # seconds from the SMTP 250 to the EXISTS seen in IDLE


def _submit(server: MailServer, account: Account, raw: bytes) -> None:
    with smtplib.SMTP("localhost", server.port("submission"), timeout=10) as smtp:
        smtp.starttls(context=server.ssl_context())
        smtp.login(account.address, account.password)
        refused = smtp.sendmail(account.address, [account.address], raw)
        assert refused == {}


def _wait_for_exists(client: imapclient.IMAPClient, count: int, deadline: float) -> list[object]:
    """The IDLE responses until ``* count EXISTS`` arrives or the deadline passes."""
    seen: list[object] = []
    while (count, b"EXISTS") not in seen and time.monotonic() < deadline:
        seen += client.idle_check(timeout=max(deadline - time.monotonic(), 0.01))
    return seen


def test_submitted_message_is_seen_in_idle_within_a_second(
    imap_server: MailServer, mail_user: Account
) -> None:
    imap_server.require_protocol("smtp")
    imap_server.deliver(mail_user, "INBOX", imap_server.make_message("already there"))
    # Submission accepts only a From header naming the authenticated user (RFC 6409 §8).
    raw = imap_server.make_message("pushed while idle", sender=mail_user.address)
    with imapclient.IMAPClient(
        "localhost", port=imap_server.port("imaps"), ssl=True, ssl_context=imap_server.ssl_context()
    ) as client:
        client.login(mail_user.address, mail_user.password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 1
        client.idle()
        try:
            _submit(imap_server, mail_user, raw)
            accepted = time.monotonic()
            seen = _wait_for_exists(client, 2, accepted + DELIVERY_DEADLINE)
            elapsed = time.monotonic() - accepted
        finally:
            client.idle_done()
        assert (2, b"EXISTS") in seen, f"no EXISTS within {DELIVERY_DEADLINE}s; saw {seen!r}"
        assert elapsed < DELIVERY_DEADLINE
        body = client.fetch([2], ["BODY.PEEK[TEXT]"])[2][b"BODY[TEXT]"]
    assert body == raw.partition(b"\r\n\r\n")[2]
    # Delivery adds trace fields in front (Received, RFC 5321 §4.4); the message follows intact.
    assert imap_server.bodies(mail_user, "INBOX")[1].endswith(raw)
