"""Transaction scripts for Sieve scripts and per-user delivery options, and their store mixin.

Theory of operation
-------------------
``sieve_scripts`` (migration 0013) holds every user's named scripts; at most one per user is
active, which a partial unique index enforces in both databases, and activation is one
transaction that clears the old active script and sets the new one, so no reader sees two.
Names are compared exactly (RFC 5804 §1.6: script names are case-sensitive). Removing a user
removes their scripts and options (foreign keys with ON DELETE CASCADE). Global scripts, for
``include :global`` (RFC 6609), are in ``sieve_global_scripts``. ``delivery_options`` holds
per-user delivery switches; a user without a row has the defaults (all off).

None of these publish change events: delivery reads the active script at every message.
"""

from __future__ import annotations

import asyncio

from courriel.store.base import AlreadyExists, InUse, NotFound, SieveScript
from courriel.store.sieve import DeliveryLookup
from courriel.store.sql.core import INBOX, Done, Query, Row, Script, T, address_key
from courriel.store.sql.dkim import _Driver
from courriel.store.sql.mailboxes import get_mailbox


def _script(row: Row) -> SieveScript:
    return SieveScript(name=row[0], content=row[1], active=bool(row[2]))


def list_scripts(user_id: int) -> Script[list[SieveScript]]:
    rows = yield Query(
        "SELECT name, content, active FROM sieve_scripts WHERE user_id = ? ORDER BY name",
        (user_id,),
    )
    return [_script(r) for r in rows]


def get_script(user_id: int, name: str) -> Script[SieveScript | None]:
    rows = yield Query(
        "SELECT name, content, active FROM sieve_scripts WHERE user_id = ? AND name = ?",
        (user_id, name),
    )
    return _script(rows[0]) if rows else None


def active_script(user_id: int) -> Script[SieveScript | None]:
    rows = yield Query(
        "SELECT name, content, active FROM sieve_scripts WHERE user_id = ? AND active = 1",
        (user_id,),
    )
    return _script(rows[0]) if rows else None


def delivery_lookup(user_id: int) -> Script[DeliveryLookup]:
    script = yield from active_script(user_id)
    inbox = yield from get_mailbox(user_id, INBOX)
    return DeliveryLookup(script, None if inbox is None else inbox.id)


def put_script(user_id: int, name: str, content: str) -> Script[Done[None]]:
    users = yield Query("SELECT id FROM users WHERE id = ?", (user_id,))
    if not users:
        raise NotFound(f"no user {user_id}")
    yield Query(
        "INSERT INTO sieve_scripts (user_id, name, content, active) VALUES (?, ?, ?, 0)"
        " ON CONFLICT (user_id, name) DO UPDATE SET content = excluded.content",
        (user_id, name, content),
        False,
    )
    return Done(None)


def delete_script(user_id: int, name: str) -> Script[Done[None]]:
    found = yield from get_script(user_id, name)
    if found is None:
        raise NotFound(f"no script {name!r}")
    if found.active:
        raise InUse(f"the script {name!r} is active")  # RFC 5804 §2.10
    yield Query("DELETE FROM sieve_scripts WHERE user_id = ? AND name = ?", (user_id, name), False)
    return Done(None)


def rename_script(user_id: int, old: str, new: str) -> Script[Done[None]]:
    found = yield from get_script(user_id, old)
    if found is None:
        raise NotFound(f"no script {old!r}")
    if old == new:
        return Done(None)
    taken = yield from get_script(user_id, new)
    if taken is not None:
        raise AlreadyExists(f"a script {new!r} exists")  # RFC 5804 §2.11.1
    yield Query(
        "UPDATE sieve_scripts SET name = ? WHERE user_id = ? AND name = ?",
        (new, user_id, old),
        False,
    )
    return Done(None)


def set_active(user_id: int, name: str | None) -> Script[Done[None]]:
    if name is not None:
        found = yield from get_script(user_id, name)
        if found is None:
            raise NotFound(f"no script {name!r}")
    yield Query(
        "UPDATE sieve_scripts SET active = 0 WHERE user_id = ? AND active = 1", (user_id,), False
    )
    if name is not None:
        yield Query(
            "UPDATE sieve_scripts SET active = 1 WHERE user_id = ? AND name = ?",
            (user_id, name),
            False,
        )
    return Done(None)


def get_global(name: str) -> Script[str | None]:
    rows = yield Query("SELECT content FROM sieve_global_scripts WHERE name = ?", (name,))
    return str(rows[0][0]) if rows else None


def put_global(name: str, content: str | None) -> Script[Done[None]]:
    if content is None:
        yield Query("DELETE FROM sieve_global_scripts WHERE name = ?", (name,), False)
    else:
        yield Query(
            "INSERT INTO sieve_global_scripts (name, content) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET content = excluded.content",
            (name, content),
            False,
        )
    return Done(None)


def tag_folders(user_id: int) -> Script[bool]:
    rows = yield Query("SELECT tag_folders FROM delivery_options WHERE user_id = ?", (user_id,))
    return bool(rows[0][0]) if rows else False


def set_tag_folders(address_key: str, on: bool) -> Script[Done[None]]:
    users = yield Query("SELECT id FROM users WHERE address_key = ?", (address_key,))
    if not users:
        raise NotFound(f"no user {address_key}")
    yield Query(
        "INSERT INTO delivery_options (user_id, tag_folders) VALUES (?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET tag_folders = excluded.tag_folders",
        (users[0][0], int(on)),
        False,
    )
    return Done(None)


class SieveScriptsMixin:
    """``SieveStore`` for ``SqlStore``, over the same driver."""

    _driver: _Driver

    async def _sieve_write(self, script: Script[Done[T]]) -> T:
        # Shielded like every store write: once submitted it may commit.
        done = await asyncio.shield(self._driver.write(script))
        return done.value

    async def sieve_scripts(self, user_id: int) -> list[SieveScript]:
        return await self._driver.read(list_scripts(user_id))

    async def sieve_script(self, user_id: int, name: str) -> SieveScript | None:
        return await self._driver.read(get_script(user_id, name))

    async def active_sieve_script(self, user_id: int) -> SieveScript | None:
        return await self._driver.read(active_script(user_id))

    async def delivery_lookup(self, user_id: int) -> DeliveryLookup:
        return await self._driver.read(delivery_lookup(user_id))

    async def put_sieve_script(self, user_id: int, name: str, content: str) -> None:
        await self._sieve_write(put_script(user_id, name, content))

    async def delete_sieve_script(self, user_id: int, name: str) -> None:
        await self._sieve_write(delete_script(user_id, name))

    async def rename_sieve_script(self, user_id: int, old: str, new: str) -> None:
        await self._sieve_write(rename_script(user_id, old, new))

    async def activate_sieve_script(self, user_id: int, name: str | None) -> None:
        await self._sieve_write(set_active(user_id, name))

    async def global_sieve_script(self, name: str) -> str | None:
        return await self._driver.read(get_global(name))

    async def put_global_sieve_script(self, name: str, content: str | None) -> None:
        await self._sieve_write(put_global(name, content))

    async def tag_folders(self, user_id: int) -> bool:
        return await self._driver.read(tag_folders(user_id))

    async def set_tag_folders(self, address: str, on: bool) -> None:
        await self._sieve_write(set_tag_folders(address_key(address), on))
