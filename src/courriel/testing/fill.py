"""Filling a store for a test the way courriel itself fills it.

Theory of operation
-------------------
A test that puts users and messages in place must not take a shortcut the server never takes,
or it would test a state production cannot reach. ``add_user`` goes through ``courriel.admin``
as ``courriel user add`` does (the domain first when it is new, then the user with INBOX and the
special-use mailboxes, all subscribed). ``delivered`` builds the ``NewMessage`` delivery stores:
the message parsed once (``courriel.mail.message``), its metadata kept beside the bytes.

Password hashing uses the cheap test costs unless the caller hands over the server's hasher.
``on_store`` lets synchronous test code look into (or prepare) the store a configuration
names, opened and closed around the one call, as a command-line invocation would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from courriel import admin
from courriel.accounts.passwords import PasswordHasher
from courriel.admin import Hasher
from courriel.config import Config
from courriel.mail.message import parse
from courriel.store.base import Appended, NewMessage, Store, User
from courriel.store.open import open_store

T = TypeVar("T")


async def add_domain_once(store: Store, domain: str) -> None:
    """Adds ``domain`` unless the store has it already."""
    if await store.get_domain(admin.domain_name(domain)) is None:
        await admin.add_domain(store, domain)


async def add_user(store: Store, address: str, password: str, hasher: Hasher | None = None) -> User:
    """Creates the user, and its domain when new, as ``courriel user add`` does."""
    await add_domain_once(store, address.rpartition("@")[2])
    if hasher is not None:
        return await admin.add_user(store, hasher, address, password)
    own = PasswordHasher.for_tests()
    try:
        return await admin.add_user(store, own, address, password)
    finally:
        own.close()


def delivered(
    raw: bytes, flags: Iterable[str] = (), internal_date: datetime | None = None
) -> NewMessage:
    """``raw`` as delivery stores it: parsed once, dated now unless a date is given."""
    when = internal_date or datetime.now(UTC)
    return NewMessage(raw, when, frozenset(flags), parse(raw).to_bytes())


async def deliver_to_inbox(store: Store, user: User, *raws: bytes) -> list[Appended]:
    """Stores the messages in the user's INBOX in one append, as SMTP delivery would."""
    inbox = await store.get_mailbox(user.id, "INBOX")
    assert inbox is not None, f"{user.address} has no INBOX"
    now = datetime.now(UTC)
    return await store.append([(inbox.id, delivered(raw, internal_date=now)) for raw in raws])


def on_store(cfg: Config, fn: Callable[[Store], Awaitable[T]]) -> T:
    """``fn`` run on the store ``cfg`` names, opened for it alone (from synchronous code)."""

    async def go() -> T:
        store = await open_store(cfg)
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(go())
