"""Fixtures of the session tests; their helpers live in ``courriel.testing``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.testing.imap import Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """courriel serving IMAP (implicit TLS and plain) in a thread, with the default limits."""
    with Server.started(tmp_path) as srv:
        yield srv
