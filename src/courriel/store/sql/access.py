"""Transaction scripts for the web admin's tables (migration 0015), and the store mixin.

Theory of operation
-------------------
One script per ``courriel.store.access.AccessStore`` method. Uniqueness (an app password's name
per user, an API token's name, every digest) is the database's: ``ON CONFLICT DO NOTHING
RETURNING`` turns a duplicate into ``AlreadyExists`` with nothing written. App passwords and
sessions go with their user (``ON DELETE CASCADE``). Adding a session drops the expired ones,
and adding a mail event drops all but the newest ``MAIL_EVENTS_KEPT``, so both tables stay
bounded without a cleaning task. None of these writes publishes a change event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from courriel.store.access import (
    MAIL_EVENTS_KEPT,
    ApiToken,
    AppPassword,
    AuditEntry,
    MailEvent,
    NewMailEvent,
    WebSession,
)
from courriel.store.base import AlreadyExists, NotFound
from courriel.store.sql.accounts import refuse_last_admin
from courriel.store.sql.core import Done, Query, Script, T, address_key


def set_admin(address: str, admin: bool, keep_an_admin: bool = False) -> Script[Done[None]]:
    if keep_an_admin and not admin:
        yield from refuse_last_admin(address)
    rows = yield Query(
        "UPDATE users SET is_admin = ? WHERE address_key = ? RETURNING id",
        (int(admin), address_key(address)),
    )
    if not rows:
        raise NotFound(f"no user {address}")
    return Done(None)


def add_app_password(user_id: int, name: str, digest: str, now: int) -> Script[Done[AppPassword]]:
    users = yield Query("SELECT id FROM users WHERE id = ?", (user_id,))
    if not users:
        raise NotFound(f"no user with id {user_id}")
    rows = yield Query(
        "INSERT INTO app_passwords (user_id, name, digest, created) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING id",
        (user_id, name, digest, now),
    )
    if not rows:
        raise AlreadyExists(f"an app password named {name!r} exists")
    return Done(AppPassword(rows[0][0], user_id, name, now))


def list_app_passwords(user_id: int) -> Script[list[AppPassword]]:
    rows = yield Query(
        "SELECT id, user_id, name, created FROM app_passwords WHERE user_id = ? ORDER BY name",
        (user_id,),
    )
    return [AppPassword(*r) for r in rows]


def remove_app_password(user_id: int, name: str) -> Script[Done[None]]:
    rows = yield Query(
        "DELETE FROM app_passwords WHERE user_id = ? AND name = ? RETURNING id", (user_id, name)
    )
    if not rows:
        raise NotFound(f"no app password named {name!r}")
    return Done(None)


def has_app_password(user_id: int, digest: str) -> Script[bool]:
    rows = yield Query(
        "SELECT 1 FROM app_passwords WHERE user_id = ? AND digest = ?", (user_id, digest)
    )
    return bool(rows)


def add_session(
    digest: str, user_id: int, csrf: str, now: int, expired_before: int
) -> Script[Done[None]]:
    yield Query("DELETE FROM web_sessions WHERE seen < ?", (expired_before,), False)
    rows = yield Query(
        "INSERT INTO web_sessions (digest, user_id, csrf, created, seen) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING user_id",
        (digest, user_id, csrf, now, now),
    )
    if not rows:
        raise AlreadyExists("that session id is in use")
    return Done(None)


def get_session(digest: str) -> Script[WebSession | None]:
    rows = yield Query(
        "SELECT user_id, csrf, created, seen FROM web_sessions WHERE digest = ?", (digest,)
    )
    return WebSession(*rows[0]) if rows else None


def touch_session(digest: str, now: int) -> Script[Done[None]]:
    yield Query("UPDATE web_sessions SET seen = ? WHERE digest = ?", (now, digest), False)
    return Done(None)


def remove_session(digest: str) -> Script[Done[None]]:
    yield Query("DELETE FROM web_sessions WHERE digest = ?", (digest,), False)
    return Done(None)


def remove_sessions(user_id: int) -> Script[Done[int]]:
    rows = yield Query("DELETE FROM web_sessions WHERE user_id = ? RETURNING digest", (user_id,))
    return Done(len(rows))


def add_api_token(name: str, digest: str, now: int) -> Script[Done[ApiToken]]:
    rows = yield Query(
        "INSERT INTO api_tokens (name, digest, created) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING name",
        (name, digest, now),
    )
    if not rows:
        raise AlreadyExists(f"an API token named {name!r} exists")
    return Done(ApiToken(name, now))


def list_api_tokens() -> Script[list[ApiToken]]:
    rows = yield Query("SELECT name, created FROM api_tokens ORDER BY name")
    return [ApiToken(*r) for r in rows]


def remove_api_token(name: str) -> Script[Done[None]]:
    rows = yield Query("DELETE FROM api_tokens WHERE name = ? RETURNING name", (name,))
    if not rows:
        raise NotFound(f"no API token named {name!r}")
    return Done(None)


def api_token_name(digest: str) -> Script[str | None]:
    rows = yield Query("SELECT name FROM api_tokens WHERE digest = ?", (digest,))
    return str(rows[0][0]) if rows else None


def add_audit(at: int, actor: str, action: str, detail: str) -> Script[Done[None]]:
    yield Query(
        "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)",
        (at, actor, action, detail),
        False,
    )
    return Done(None)


def list_audit(limit: int) -> Script[list[AuditEntry]]:
    rows = yield Query(
        "SELECT id, at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [AuditEntry(*r) for r in rows]


def add_mail_events(events: Sequence[NewMailEvent]) -> Script[Done[None]]:
    last = 0
    for e in events:
        rows = yield Query(
            "INSERT INTO mail_events (at, kind, sender, recipient, detail) VALUES (?, ?, ?, ?, ?)"
            " RETURNING id",
            (e.at, e.kind, e.sender, e.recipient, e.detail),
        )
        last = rows[0][0]
    if events:
        yield Query("DELETE FROM mail_events WHERE id <= ?", (last - MAIL_EVENTS_KEPT,), False)
    return Done(None)


def list_mail_events(limit: int) -> Script[list[MailEvent]]:
    rows = yield Query(
        "SELECT id, at, kind, sender, recipient, detail FROM mail_events ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [MailEvent(*r) for r in rows]


class _Driver(Protocol):
    """What the mixin needs of ``courriel.store.sql.store.Driver`` (kept here to avoid a cycle)."""

    async def read(self, script: Script[T]) -> T: ...

    async def write(self, script: Script[T]) -> T: ...


class AccessMixin:
    """``AccessStore`` for ``SqlStore``, over the same driver."""

    _driver: _Driver

    async def _access_write(self, script: Script[Done[T]]) -> T:
        # Shielded like every store write: once submitted it may commit.
        done = await asyncio.shield(self._driver.write(script))
        return done.value

    async def set_admin(self, address: str, admin: bool, *, keep_an_admin: bool = False) -> None:
        await self._access_write(set_admin(address, admin, keep_an_admin))

    async def add_app_password(self, user_id: int, name: str, digest: str, now: int) -> AppPassword:
        return await self._access_write(add_app_password(user_id, name, digest, now))

    async def list_app_passwords(self, user_id: int) -> list[AppPassword]:
        return await self._driver.read(list_app_passwords(user_id))

    async def remove_app_password(self, user_id: int, name: str) -> None:
        await self._access_write(remove_app_password(user_id, name))

    async def has_app_password(self, user_id: int, digest: str) -> bool:
        return await self._driver.read(has_app_password(user_id, digest))

    async def add_session(
        self, digest: str, user_id: int, csrf: str, now: int, *, expired_before: int
    ) -> None:
        await self._access_write(add_session(digest, user_id, csrf, now, expired_before))

    async def get_session(self, digest: str) -> WebSession | None:
        return await self._driver.read(get_session(digest))

    async def touch_session(self, digest: str, now: int) -> None:
        await self._access_write(touch_session(digest, now))

    async def remove_session(self, digest: str) -> None:
        await self._access_write(remove_session(digest))

    async def remove_sessions(self, user_id: int) -> int:
        return await self._access_write(remove_sessions(user_id))

    async def add_api_token(self, name: str, digest: str, now: int) -> ApiToken:
        return await self._access_write(add_api_token(name, digest, now))

    async def list_api_tokens(self) -> list[ApiToken]:
        return await self._driver.read(list_api_tokens())

    async def remove_api_token(self, name: str) -> None:
        await self._access_write(remove_api_token(name))

    async def api_token_name(self, digest: str) -> str | None:
        return await self._driver.read(api_token_name(digest))

    async def add_audit(self, at: int, actor: str, action: str, detail: str) -> None:
        await self._access_write(add_audit(at, actor, action, detail))

    async def list_audit(self, limit: int) -> list[AuditEntry]:
        return await self._driver.read(list_audit(limit))

    async def add_mail_events(self, events: Sequence[NewMailEvent]) -> None:
        await self._access_write(add_mail_events(events))

    async def list_mail_events(self, limit: int) -> list[MailEvent]:
        return await self._driver.read(list_mail_events(limit))
