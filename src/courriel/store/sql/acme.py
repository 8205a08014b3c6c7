"""Transaction scripts for ACME state (migration 0016), and the store mixin that runs them.

Theory of operation
-------------------
Three small tables: ``acme_accounts`` (one row per directory URL, with the failure count and the
time before which no order is tried), ``acme_challenges`` (pending key authorizations, swept when
expired) and ``tls_certificates`` (the issued chain and key). Every write is one upsert or
delete, so two processes racing write whole rows, never halves. The ordering itself is kept to
one process by a lease (``Store.acquire_lease``), not by these tables. Dates are ISO 8601 text
in UTC, like the DKIM keys'; times that are compared with "now" are seconds since the epoch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC

from courriel.store.acme import AcmeAccount, AcmeChallenge, StoredCertificate
from courriel.store.sql.core import Done, Query, Script, T, date_of
from courriel.store.sql.dkim import _Driver


def get_account(directory: str) -> Script[AcmeAccount | None]:
    rows = yield Query(
        "SELECT directory, key_pem, uri, failures, retry_at, last_error"
        " FROM acme_accounts WHERE directory = ?",
        (directory,),
    )
    if not rows:
        return None
    r = rows[0]
    return AcmeAccount(r[0], r[1], r[2], int(r[3]), float(r[4]), r[5])


def put_account(a: AcmeAccount) -> Script[Done[None]]:
    yield Query(
        "INSERT INTO acme_accounts (directory, key_pem, uri, failures, retry_at, last_error)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (directory) DO UPDATE SET"
        " key_pem = excluded.key_pem, uri = excluded.uri, failures = excluded.failures,"
        " retry_at = excluded.retry_at, last_error = excluded.last_error",
        (a.directory, a.key_pem, a.uri, a.failures, a.retry_at, a.last_error),
        False,
    )
    return Done(None)


def add_challenges(challenges: Sequence[AcmeChallenge]) -> Script[Done[None]]:
    for c in challenges:
        yield Query(
            "INSERT INTO acme_challenges (token, name, kind, key_authorization, expires)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET name = excluded.name,"
            " kind = excluded.kind, key_authorization = excluded.key_authorization,"
            " expires = excluded.expires",
            (c.token, c.name, c.kind, c.key_authorization, c.expires),
            False,
        )
    return Done(None)


def list_challenges(now: float) -> Script[list[AcmeChallenge]]:
    rows = yield Query(
        "SELECT token, name, kind, key_authorization, expires FROM acme_challenges"
        " WHERE expires > ? ORDER BY token",
        (now,),
    )
    return [AcmeChallenge(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]


def remove_challenges(tokens: Sequence[str], now: float) -> Script[Done[None]]:
    for token in tokens:
        yield Query("DELETE FROM acme_challenges WHERE token = ?", (token,), False)
    yield Query("DELETE FROM acme_challenges WHERE expires <= ?", (now,), False)  # the sweep
    return Done(None)


def get_certificate(name: str) -> Script[StoredCertificate | None]:
    rows = yield Query(
        "SELECT name, cert_pem, key_pem, serial, not_after, names FROM tls_certificates"
        " WHERE name = ?",
        (name,),
    )
    if not rows:
        return None
    r = rows[0]
    return StoredCertificate(r[0], r[1], r[2], r[3], date_of(r[4]), tuple(r[5].split()))


def put_certificate(c: StoredCertificate) -> Script[Done[None]]:
    not_after = c.not_after.astimezone(UTC).replace(microsecond=0).isoformat()
    yield Query(
        "INSERT INTO tls_certificates (name, cert_pem, key_pem, serial, not_after, names)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
        " cert_pem = excluded.cert_pem, key_pem = excluded.key_pem, serial = excluded.serial,"
        " not_after = excluded.not_after, names = excluded.names",
        (c.name, c.cert_pem, c.key_pem, c.serial, not_after, " ".join(c.names)),
        False,
    )
    return Done(None)


class AcmeMixin:
    """``AcmeStore`` for ``SqlStore``, over the same driver."""

    _driver: _Driver

    async def _acme_write(self, script: Script[Done[T]]) -> T:
        # Shielded like every store write: once submitted it may commit.
        done = await asyncio.shield(self._driver.write(script))
        return done.value

    async def acme_account(self, directory: str) -> AcmeAccount | None:
        return await self._driver.read(get_account(directory))

    async def save_acme_account(self, account: AcmeAccount) -> None:
        await self._acme_write(put_account(account))

    async def add_acme_challenges(self, challenges: Sequence[AcmeChallenge]) -> None:
        await self._acme_write(add_challenges(challenges))

    async def acme_challenges(self, now: float) -> list[AcmeChallenge]:
        return await self._driver.read(list_challenges(now))

    async def remove_acme_challenges(self, tokens: Sequence[str], now: float) -> None:
        await self._acme_write(remove_challenges(tokens, now))

    async def certificate(self, name: str) -> StoredCertificate | None:
        return await self._driver.read(get_certificate(name))

    async def save_certificate(self, cert: StoredCertificate) -> None:
        await self._acme_write(put_certificate(cert))
