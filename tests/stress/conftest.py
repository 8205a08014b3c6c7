"""The stress test's server: the same whole-server helper the end-to-end tests use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.testing.server import MailServer, start_server


@pytest.fixture
def stress_server(tmp_path: Path) -> Iterator[MailServer]:
    """A running courriel whose IMAP engine is real; skipped otherwise."""
    server = start_server(tmp_path)
    try:
        server.require_protocol("imap")
        yield server
    finally:
        server.stop()
