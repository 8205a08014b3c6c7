"""Fixtures of the store contract suite: every test runs against every backend.

A backend opens stores on one fixed, initially empty database, any number of times (tests close
and reopen to check what survives), on the clock it is given: the ``store`` fixture's runs on the
test's ``clock``, a ``ManualClock``, so leases and counters expire when the test advances it and
not in real time. Adding a backend is one class with ``open()`` and one entry
in ``BACKENDS`` (with its marks in ``MARKS``, e.g. ``pytest.mark.postgres``); every contract test
then runs against it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pytest

from courriel.clock import SYSTEM_CLOCK, Clock, ManualClock
from courriel.store.base import Mailbox, NewMessage, Store, User
from courriel.store.sqlite import SqliteStore, open_sqlite
from courriel.testing import pg as pg_testdb


class Backend(Protocol):
    async def open(self, clock: Clock = SYSTEM_CLOCK) -> Store: ...


class SqliteBackend:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def open(self, clock: Clock = SYSTEM_CLOCK) -> Store:
        return await open_sqlite(self.root / "courriel.db", self.root / "blobs", clock=clock)


class PostgresBackend:
    """A fresh database per test (courriel.testing.pg); the ``backend`` fixture sets ``url``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = ""

    async def open(self, clock: Clock = SYSTEM_CLOCK) -> Store:
        from courriel.store.postgres import open_postgres_url

        return await open_postgres_url(self.url, pool_size=4, clock=clock)


# name -> factory taking the test's own temporary directory
BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "sqlite": SqliteBackend,
    "postgres": PostgresBackend,
}
MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {"postgres": (pytest.mark.postgres,)}


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """One migrated database for the run (dropped at its end); None if there is no server."""
    server = pg_testdb.server_url()
    if asyncio.run(pg_testdb.unreachable(server)) is not None:
        yield None
        return
    name = asyncio.run(pg_testdb.create_migrated(server))
    try:
        yield name
    finally:
        asyncio.run(pg_testdb.drop_database(server, name))


@pytest.fixture
async def pg_url(request: pytest.FixtureRequest, pg_database: str | None) -> str:
    """The URL of the run's database, emptied for this test (as if just migrated)."""
    server = await pg_testdb.require_server(request)
    assert pg_database is not None
    url: str = pg_testdb.with_database(server, pg_database)
    await pg_testdb.reset_database(url)
    return url


@pytest.fixture
async def empty_pg_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The URL of a new database with no schema at all, dropped after the test."""
    server = await pg_testdb.require_server(request)
    async with pg_testdb.temporary_database(server) as url:
        yield url


@pytest.fixture(params=[pytest.param(n, marks=MARKS.get(n, ()), id=n) for n in sorted(BACKENDS)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    chosen = BACKENDS[request.param](tmp_path)
    if isinstance(chosen, PostgresBackend):
        chosen.url = request.getfixturevalue("pg_url")
    yield chosen


@pytest.fixture
async def sq(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """The embedded store alone, for what only SQLite has (its writer thread, its files)."""
    s = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def clock() -> ManualClock:
    """The time of the ``store`` fixture's leases and counters: it moves when the test says."""
    return ManualClock()


@pytest.fixture
async def store(backend: Backend, clock: ManualClock) -> AsyncIterator[Store]:
    s = await backend.open(clock)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def user(store: Store) -> User:
    await store.add_domain("example.org")
    return await store.add_user("alice@example.org", "hash")


@pytest.fixture
async def inbox(store: Store, user: User) -> Mailbox:
    box = await store.get_mailbox(user.id, "INBOX")
    assert box is not None
    return box


WHEN = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)

MakeMessage = Callable[..., NewMessage]


def make_message(n: int = 0, size: int = 0, flags: frozenset[str] = frozenset()) -> NewMessage:
    """A distinct message per ``n``; ``size`` pads the body to at least that many bytes."""
    head = f"Subject: message {n}\r\n\r\nbody {n}\r\n".encode()
    return NewMessage(head + b"x" * max(0, size - len(head)), WHEN, flags, f"meta {n}".encode())


@pytest.fixture
def message() -> MakeMessage:
    return make_message
