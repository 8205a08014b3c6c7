"""Fixtures of the store contract suite: every test runs against every backend.

A backend opens stores on one fixed, initially empty database, any number of times (tests close
and reopen to check what survives). Adding a backend is one class with ``open()`` and one entry
in ``BACKENDS`` (with its marks in ``MARKS``, e.g. ``pytest.mark.postgres``); every contract test
then runs against it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pytest

from courriel.store.base import Mailbox, NewMessage, Store, User
from courriel.store.sqlite import open_sqlite


class Backend(Protocol):
    async def open(self) -> Store: ...


class SqliteBackend:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def open(self) -> Store:
        return await open_sqlite(self.root / "courriel.db", self.root / "blobs")


# name -> factory taking the test's own temporary directory
BACKENDS: dict[str, Callable[[Path], Backend]] = {"sqlite": SqliteBackend}
MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {}


@pytest.fixture(params=[pytest.param(n, marks=MARKS.get(n, ()), id=n) for n in sorted(BACKENDS)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    s = await backend.open()
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
