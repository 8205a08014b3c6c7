"""Fixtures shared by the queue tests that run whole servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from courriel.testing import pg


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_config(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The server's ``[store]``: the embedded SQLite one, or a new, empty PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    server = await pg.require_server(request)
    async with pg.temporary_database(server) as url:
        yield f'[store]\nurl = "{url}"\n'
