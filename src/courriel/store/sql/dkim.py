"""Transaction scripts for the DKIM signing keys of each domain, and the store mixin that runs them.

Theory of operation
-------------------
Keys live in ``dkim_keys`` (migration 0006), one row per (domain, selector), removed with their
domain. A rotation is one transaction: the domain's active keys become ``retiring`` with the
date after which they are no longer published, and the new keys are added ``active``, so no
reader ever sees a domain with no active key or with two generations active. ``retire`` turns
retiring keys whose date has passed into ``retired``. A rotation that publishes first adds
``pending`` keys with the grace period they will give the keys they replace (``grace_seconds``,
migration 0018); ``activate`` makes one active and the active key of its algorithm retiring,
in one transaction. Dates are stored as ISO 8601 text in UTC without fractions, so the
database compares them as text.

``DkimKeysMixin`` gives ``SqlStore`` the ``DkimKeyStore`` methods over its driver; key changes
publish no change events (no session watches them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from courriel.store.base import AlreadyExists, DkimKey, DkimKeyState, NotFound
from courriel.store.sql.core import Done, Query, Row, Script, T, date_of

_COLS = (
    "d.name, k.selector, k.algorithm, k.private_key, k.created, k.state, k.retire_after,"
    " k.grace_seconds"
)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _key(row: Row) -> DkimKey:
    return DkimKey(
        domain=row[0],
        selector=row[1],
        algorithm=row[2],
        private_pem=row[3],
        created=date_of(row[4]),
        state=DkimKeyState(row[5]),
        retire_after=None if row[6] is None else date_of(row[6]),
        grace_seconds=None if row[7] is None else int(row[7]),
    )


def _domain_id(name: str) -> Script[int]:
    rows = yield Query("SELECT id FROM domains WHERE name = ?", (name.lower(),))
    if not rows:
        raise NotFound(f"no domain {name}")
    return int(rows[0][0])


def _insert(domain_id: int, key: DkimKey) -> Script[None]:
    rows = yield Query(
        "INSERT INTO dkim_keys"
        " (domain_id, selector, algorithm, private_key, created, state, retire_after,"
        " grace_seconds)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (domain_id, selector) DO NOTHING"
        " RETURNING selector",
        (
            domain_id,
            key.selector,
            key.algorithm,
            key.private_pem,
            _when(key.created),
            key.state.value,
            None if key.retire_after is None else _when(key.retire_after),
            key.grace_seconds,
        ),
    )
    if not rows:
        raise AlreadyExists(f"selector {key.selector} of {key.domain} exists")


def add_keys(domain: str, keys: Sequence[DkimKey]) -> Script[Done[None]]:
    domain_id = yield from _domain_id(domain)
    for key in keys:
        yield from _insert(domain_id, key)
    return Done(None)


def list_keys(domain: str | None) -> Script[list[DkimKey]]:
    sql = f"SELECT {_COLS} FROM dkim_keys k JOIN domains d ON d.id = k.domain_id"  # noqa: S608
    params: tuple[str, ...] = ()
    if domain is not None:
        sql += " WHERE d.name = ?"
        params = (domain.lower(),)
    rows = yield Query(sql + " ORDER BY d.name, k.created, k.selector", params)
    return [_key(r) for r in rows]


def rotate(domain: str, keys: Sequence[DkimKey], retire_after: datetime) -> Script[Done[None]]:
    domain_id = yield from _domain_id(domain)
    yield Query(
        "UPDATE dkim_keys SET state = ?, retire_after = ? WHERE domain_id = ? AND state = ?",
        (DkimKeyState.RETIRING.value, _when(retire_after), domain_id, DkimKeyState.ACTIVE.value),
        False,
    )
    for key in keys:
        yield from _insert(domain_id, key)
    return Done(None)


def retire(now: datetime) -> Script[Done[int]]:
    rows = yield Query(
        "UPDATE dkim_keys SET state = ? WHERE state = ? AND retire_after <= ? RETURNING selector",
        (DkimKeyState.RETIRED.value, DkimKeyState.RETIRING.value, _when(now)),
    )
    return Done(len(rows))


def activate(domain: str, selectors: Sequence[str], now: datetime) -> Script[Done[list[str]]]:
    domain_id = yield from _domain_id(domain)
    done = []
    for selector in dict.fromkeys(selectors):
        rows = yield Query(
            "SELECT algorithm, grace_seconds FROM dkim_keys"
            " WHERE domain_id = ? AND selector = ? AND state = ?",
            (domain_id, selector, DkimKeyState.PENDING.value),
        )
        if not rows:
            continue
        algorithm, grace = str(rows[0][0]), int(rows[0][1] or 0)
        yield Query(
            "UPDATE dkim_keys SET state = ?, retire_after = ?"
            " WHERE domain_id = ? AND state = ? AND algorithm = ?",
            (
                DkimKeyState.RETIRING.value,
                _when(now + timedelta(seconds=grace)),
                domain_id,
                DkimKeyState.ACTIVE.value,
                algorithm,
            ),
            False,
        )
        yield Query(
            "UPDATE dkim_keys SET state = ?, grace_seconds = NULL"
            " WHERE domain_id = ? AND selector = ?",
            (DkimKeyState.ACTIVE.value, domain_id, selector),
            False,
        )
        done.append(selector)
    return Done(done)


class _Driver(Protocol):
    """What the mixin needs of ``courriel.store.sql.store.Driver`` (kept here to avoid a cycle)."""

    async def read(self, script: Script[T]) -> T: ...

    async def write(self, script: Script[T]) -> T: ...


class DkimKeysMixin:
    """``DkimKeyStore`` for ``SqlStore``, over the same driver."""

    _driver: _Driver

    async def _dkim_write(self, script: Script[Done[T]]) -> T:
        # Shielded like every store write: once submitted it may commit.
        done = await asyncio.shield(self._driver.write(script))
        return done.value

    async def add_dkim_keys(self, domain: str, keys: Sequence[DkimKey]) -> None:
        await self._dkim_write(add_keys(domain, keys))

    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        return await self._driver.read(list_keys(domain))

    async def rotate_dkim_keys(
        self, domain: str, keys: Sequence[DkimKey], retire_after: datetime
    ) -> None:
        await self._dkim_write(rotate(domain, keys, retire_after))

    async def retire_dkim_keys(self, now: datetime) -> int:
        return await self._dkim_write(retire(now))

    async def activate_dkim_keys(
        self, domain: str, selectors: Sequence[str], now: datetime
    ) -> list[str]:
        return await self._dkim_write(activate(domain, selectors, now))
