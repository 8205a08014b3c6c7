"""Fixtures shared by the queue tests that run whole servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from courriel.testing import pg
from courriel.testing.outbound import PASSWORD
from courriel.testing.server import Account, MailServer, start_server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_config(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The server's ``[store]``: the embedded SQLite one, or a new, empty PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    server = await pg.require_server(request)
    async with pg.temporary_database(server) as url:
        yield f'[store]\nurl = "{url}"\n'


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[MailServer]:
    """A second courriel, the remote end the relaying server delivers to."""
    (tmp_path / "rx").mkdir()
    server = start_server(tmp_path / "rx")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bob(receiver: MailServer) -> Account:
    return receiver.add_user("bob@example.net", PASSWORD)
