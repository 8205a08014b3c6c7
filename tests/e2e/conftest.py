"""End-to-end fixtures: a whole courriel server on loopback, for real clients to talk to.

The server and its helpers live in ``courriel.testing.server`` (import them from there, never
from this file); these fixtures only start and stop it around a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.testing.server import Account, MailServer, start_server


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[MailServer]:
    """A courriel server on free loopback ports with a fresh data directory; stopped after."""
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mail_user(mail_server: MailServer) -> Account:
    """alice@example.test with the standard mailboxes, on ``mail_server``."""
    return mail_server.add_user("alice@example.test", "correct horse battery")


@pytest.fixture
def imap_server(mail_server: MailServer) -> MailServer:
    """``mail_server``, for tests that need its IMAP engine (skipped while it is a placeholder)."""
    mail_server.require_protocol("imap")
    return mail_server
