"""The store interface of the web admin and the JSON API, and the records it deals in.

Theory of operation
-------------------
What signing in and administering needs beyond accounts (``courriel.store.base``): the
administrator flag of a user, app passwords, web sessions, API tokens, the audit log and the
recent mail events. Every secret arrives here as a digest (``secret_digest``): the store never
sees an app password, session id or token in clear, so neither does a copy of the database.
Times are whole seconds since the epoch.

Sessions live in the store, not in a worker's memory, so any worker or node accepts a session
another one made (docs/architecture.md, "Processes"). ``mail_events`` keeps only the last
``MAIL_EVENTS_KEPT`` rows: it answers "what happened lately", the log keeps the history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

MAIL_EVENTS_KEPT = 1000


def secret_digest(secret: str) -> str:
    """The SHA-256 of a server-made random secret, in hex: what the store keeps of it."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AppPassword:
    id: int
    user_id: int
    name: str  # the device it was made for, as the user named it
    created: int


@dataclass(frozen=True, slots=True)
class WebSession:
    user_id: int
    csrf: str
    created: int
    seen: int


@dataclass(frozen=True, slots=True)
class ApiToken:
    name: str
    created: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: int
    actor: str  # "web:alice@example.org", "api:NAME", "cli"
    action: str  # "user add", "domain remove", ...
    detail: str


@dataclass(frozen=True, slots=True)
class NewMailEvent:
    at: int
    kind: str  # delivered | refused | relayed | failed
    sender: str
    recipient: str
    detail: str


@dataclass(frozen=True, slots=True)
class MailEvent:
    id: int
    at: int
    kind: str  # delivered | refused | relayed | failed
    sender: str
    recipient: str
    detail: str


class MailEvents(Protocol):
    """Where sessions and the queue worker record deliveries and refusals for the web admin
    (``courriel.maillog`` buffers them into ``add_mail_events``); ``record`` never waits."""

    def record(self, kind: str, sender: str, recipient: str, detail: str) -> None: ...


class AccessStore(Protocol):
    async def set_admin(self, address: str, admin: bool, *, keep_an_admin: bool = False) -> None:
        """``NotFound`` for an unknown user; ``keep_an_admin``: ``LastAdmin`` when taking the
        rights of the only administrator (decided in the same transaction)."""

    # app passwords
    async def add_app_password(self, user_id: int, name: str, digest: str, now: int) -> AppPassword:
        """``AlreadyExists`` when the user has one of that name; ``NotFound`` without the user."""

    async def list_app_passwords(self, user_id: int) -> list[AppPassword]: ...

    async def remove_app_password(self, user_id: int, name: str) -> None:
        """``NotFound`` when the user has none of that name."""

    async def has_app_password(self, user_id: int, digest: str) -> bool: ...

    # web sessions
    async def add_session(
        self, digest: str, user_id: int, csrf: str, now: int, *, expired_before: int
    ) -> None:
        """Adds a session, and drops every session last seen before ``expired_before``."""

    async def get_session(self, digest: str) -> WebSession | None: ...

    async def touch_session(self, digest: str, now: int) -> None: ...

    async def remove_session(self, digest: str) -> None: ...

    async def remove_sessions(self, user_id: int) -> int:
        """Signs the user out everywhere; returns how many sessions ended."""

    # API tokens
    async def add_api_token(self, name: str, digest: str, now: int) -> ApiToken:
        """``AlreadyExists`` for a name in use."""

    async def list_api_tokens(self) -> list[ApiToken]: ...

    async def remove_api_token(self, name: str) -> None:
        """``NotFound`` for an unknown name."""

    async def api_token_name(self, digest: str) -> str | None: ...

    # the audit log and the recent mail events
    async def add_audit(self, at: int, actor: str, action: str, detail: str) -> None: ...

    async def list_audit(self, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first."""

    async def add_mail_events(self, events: Sequence[NewMailEvent]) -> None:
        """Adds the events in one transaction, and drops all but the newest kept."""

    async def list_mail_events(self, limit: int) -> list[MailEvent]:
        """The newest ``limit`` events, newest first."""
