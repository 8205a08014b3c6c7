"""Helpers for tests of the relay queue against whole servers (``courriel.testing.server``).

Theory of operation
-------------------
``fast_queue`` is a ``[queue]`` block with the schedule compressed to fractions of a second;
``submit`` sends one message the way a mail program does (submission port, STARTTLS, AUTH) and
returns the queue id of the 250; ``inbox_over_imap`` reads a user's INBOX with imaplib;
``dsn_fields`` takes a delivery status notification apart; ``wait_until`` polls a condition
another thread makes true (the servers run in their own threads).
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage

from courriel.testing.server import Account, MailServer, make_message

PASSWORD = "correct horse battery"  # noqa: S105 - test accounts only


def fast_queue(give_up: float = 30.0) -> str:
    return (
        "[queue]\nfirst_retry_seconds = 0.3\nmax_retry_seconds = 0.6\n"
        f"give_up_seconds = {give_up}\ndelay_warning_seconds = 0\npoll_seconds = 0.2\n"
        "lease_seconds = 5\n"
    )


def wait_until(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def submit(relay: MailServer, account: Account, to: str, subject: str) -> str:
    """Sends over submission with STARTTLS and AUTH; returns the queue id of the 250."""
    with smtplib.SMTP(relay.host, relay.port("submission"), timeout=10) as s:
        s.starttls(context=relay.ssl_context())
        s.login(account.address, account.password)
        assert s.mail(account.address)[0] == 250
        assert s.rcpt(to)[0] == 250
        message = make_message(subject, sender=account.address)
        code, text = s.data(message)
    assert code == 250, text
    return text.decode().rsplit(" ", 1)[1]


def inbox_over_imap(
    server: MailServer, account: Account, mailbox: str = "INBOX"
) -> list[EmailMessage]:
    with imaplib.IMAP4_SSL(
        server.host, server.port("imaps"), ssl_context=server.ssl_context()
    ) as imap:
        imap.login(account.address, account.password)
        assert imap.select(mailbox)[0] == "OK"
        _, data = imap.search(None, "ALL")
        out = []
        for num in data[0].split():
            _, parts = imap.fetch(num, "(BODY.PEEK[])")
            first = parts[0]
            assert isinstance(first, tuple)
            msg = email.message_from_bytes(first[1], policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


def dsn_fields(notice: EmailMessage) -> tuple[str, dict[str, str]]:
    """The human-readable text (white space folded) and the first recipient's status fields."""
    text, status, _ = notice.iter_parts()
    assert isinstance(text, EmailMessage)
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    first = blocks[1]
    assert isinstance(first, EmailMessage)
    return " ".join(text.get_content().split()), {k: str(v) for k, v in first.items()}
