"""The recent mail events the web admin shows are written by SMTP as mail comes and is refused."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator

import pytest

from courriel.store.access import MailEvent
from courriel.testing.server import MailServer, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    s = start_server(tmp_path_factory.mktemp("mailevents"))
    try:
        s.add_user("alice@example.org", "pw")
        yield s
    finally:
        s.stop()


def _events(server: MailServer, n: int) -> list[MailEvent]:
    deadline = time.monotonic() + 5
    while True:  # the events are written in the background, within a second
        events = server.call(server.store.list_mail_events(10))
        if len(events) >= n or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def test_deliveries_and_refusals_are_recorded_with_their_reasons(server: MailServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as c:
        c.ehlo("client.example")
        c.mail("bob@sender.example")
        assert c.rcpt("nobody@example.org")[0] == 550
        assert c.rcpt("alice@example.org")[0] == 250
        code, _ = c.data(b"Subject: hi\r\n\r\nhello\r\n")
        assert code == 250
    events = _events(server, 2)
    delivered, refused = events[0], events[1]  # newest first
    assert (refused.kind, refused.sender, refused.recipient) == (
        "refused",
        "bob@sender.example",
        "nobody@example.org",
    )
    assert refused.detail.startswith("550 5.1.1")
    assert (delivered.kind, delivered.recipient) == ("delivered", "alice@example.org")
    assert delivered.detail.startswith("250 2.0.0 message accepted as")
