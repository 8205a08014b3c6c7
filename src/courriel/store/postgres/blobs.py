"""Message bodies in PostgreSQL (``blob_contents``, bytea), so a node needs no disk for mail.

Theory of operation
-------------------
The same ``BlobStore`` contract as the files: a body is durable before any row that points at it.
``put`` commits the body in a transaction of its own with ``synchronous_commit = off`` (the pool's
connections default to it; see ``courriel.store.postgres``): it does not wait for a WAL flush.
That is enough, and saves one flush per delivery, because the WAL is one ordered log: the
transaction that references the body starts after ``put`` returned, so its commit record comes
later in the WAL, and the synchronous COMMIT that acknowledges the message flushes everything
before it -- the body included (on a standby too). A crash before that loses only a body that
nothing references yet. Ids are SHA-256 hex, so one content is stored once whichever node
receives it.

Deleting races appends on other nodes, which no rule inside one process can see: node A may
free a body while node B has just found it present in ``put`` and is about to reference it. Three
rules make that safe. ``put`` of an existing body refreshes its ``put_at``; ``delete`` removes a
body only if no ``blobs`` row references it *and* it was not put in the last ``grace`` seconds
(longer than any append takes from ``put`` to COMMIT); and ``blobs.id`` has a foreign key on
``blob_contents``, so even a body deleted against those odds makes the append fail whole
(``Unavailable``, the client retries) instead of committing a message without its body.
Bodies spared by the grace rule are swept later (``sweep``: at open and every ``grace`` seconds
on the next delete).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from typing import Any

import asyncpg

from courriel.store.base import NotFound, Unavailable
from courriel.store.postgres.driver import LOST

_log = logging.getLogger(__name__)

DEFAULT_GRACE = 900.0  # seconds
_ATTEMPTS = 3
_SWEEP_BATCH = 1000


class PgBlobStore:
    """Bodies in the ``blob_contents`` table; the pool belongs to the store."""

    def __init__(self, pool: asyncpg.Pool, *, grace: float = DEFAULT_GRACE) -> None:
        self._pool = pool
        self._grace = grace
        self._last_sweep = time.monotonic()

    def blob_id(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    async def _call(self, method: str, sql: str, *args: object) -> Any:
        """One statement in its own transaction; every statement here may safely run twice."""
        last: BaseException | None = None
        for _ in range(_ATTEMPTS):
            try:
                conn = await self._pool.acquire()
            except (*LOST, asyncpg.PostgresError) as e:
                last = e
                continue
            try:
                return await getattr(conn, method)(sql, *args)
            except LOST as e:
                last = e
            finally:
                with contextlib.suppress(*LOST):  # the pool drops a broken connection itself
                    await self._pool.release(conn)
        raise Unavailable(f"database unavailable: {last}") from last

    async def put(self, data: bytes, blob_id: str | None = None) -> str:
        blob_id = blob_id or self.blob_id(data)
        # Present already: refresh put_at only (see the module docstring).
        await self._call(
            "execute",
            "INSERT INTO blob_contents (id, data) VALUES ($1, $2)"
            " ON CONFLICT (id) DO UPDATE SET put_at = now()",
            blob_id,
            data,
        )
        return blob_id

    async def get(self, blob_id: str) -> bytes:
        data = await self._call("fetchval", "SELECT data FROM blob_contents WHERE id = $1", blob_id)
        if data is None:
            raise NotFound(f"no blob {blob_id}")
        return bytes(data)

    async def get_apart(self, blob_id: str) -> bytes:
        return await self.get(blob_id)  # every body is in blob_contents

    async def delete(self, blob_id: str) -> None:
        # A foreign key violation: a commit that raced this delete references it again; it stays.
        with contextlib.suppress(asyncpg.exceptions.ForeignKeyViolationError):
            await self._call(
                "execute",
                "DELETE FROM blob_contents c WHERE c.id = $1"
                " AND c.put_at < now() - make_interval(secs => $2)"
                " AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = c.id)",
                blob_id,
                self._grace,
            )
        if time.monotonic() - self._last_sweep > self._grace:
            await self.sweep()

    async def sweep(self) -> int:
        """Deletes unreferenced bodies older than the grace period; returns how many."""
        self._last_sweep = time.monotonic()
        try:
            status = await self._call(
                "execute",
                "DELETE FROM blob_contents WHERE id IN (SELECT c.id FROM blob_contents c"
                " WHERE c.put_at < now() - make_interval(secs => $1)"
                " AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = c.id) LIMIT $2)",
                self._grace,
                _SWEEP_BATCH,
            )
        except (asyncpg.exceptions.ForeignKeyViolationError, Unavailable) as e:
            _log.warning("could not sweep unreferenced bodies: %s", e)
            return 0
        return int(str(status).rsplit(" ", 1)[-1])

    async def close(self) -> None:
        """Nothing to release: the pool is the store's."""
