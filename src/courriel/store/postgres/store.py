"""The PostgreSQL backend: the shared SQL scripts on asyncpg, for several courriel nodes.

Theory of operation
-------------------
``open_postgres`` (``[store] url = "postgresql://..."``) brings the schema up to date, opens a
bounded pool of connections (``pool_size``, default 10, also given as ``?pool_size=N`` in the URL)
and returns a ``PostgresStore``: ``SqlStore`` (every method of ``courriel.store.base.Store``) over

* ``PgDriver`` (``driver``): each write script in one READ COMMITTED transaction,
  each read in REPEATABLE READ READ ONLY, retried after a deadlock, a serialization failure or a
  lost connection, and reported as ``Unavailable`` when the database stays out of reach;
* ``PgBlobStore`` (``blobs``): bodies in the ``blob_contents`` table;
* ``PgEvents`` (``events``): change events shared by all nodes through LISTEN/NOTIFY.

Nothing a node needs lives only in its memory or on its disk: any number of nodes may share one
database, each with its own pool. UIDs and MODSEQs come from row-locked ``UPDATE mailboxes ...
RETURNING`` in the same transaction as the rows they number, so they are gap-free and increasing
whichever node writes.

Migrations: the numbered files of ``migrations/postgres/``, each applied in its own transaction
with its row in ``schema_migrations``, under a session advisory lock, so that nodes starting
together apply each migration once and the others wait, then find nothing left to do.

Durability: every write script commits at the server's ``synchronous_commit`` (read once at
open; ``on`` by default: a COMMIT returns after its WAL is flushed), and PostgreSQL flushes the
commits of many concurrent connections together, which is the group commit the SQLite backend
builds by hand. The pool's connections otherwise run with ``synchronous_commit = off``: a body
written before its message (``blobs``), a NOTIFY or a swept body need no flush of their
own, because the WAL is one ordered log and the message's synchronous COMMIT, later in it,
flushes them too. (Measured here: a flush costs about 2.5 ms; 388 serial commits/s.)
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from courriel.clock import SYSTEM_CLOCK, Clock
from courriel.config import Config
from courriel.store.base import StoreError, Unavailable
from courriel.store.postgres.blobs import PgBlobStore
from courriel.store.postgres.driver import LOST, PgDriver
from courriel.store.postgres.events import PgEvents
from courriel.store.sql import SqlStore, migrations

DEFAULT_POOL_SIZE = 10
CONNECT_TIMEOUT = 10.0
# pg_advisory_lock key of schema migrations: "courriel" in ASCII, as one bigint.
MIGRATION_LOCK = 0x636F757272696500
# Prepared statements kept per connection: the scripts use a few hundred distinct texts.
STATEMENT_CACHE = 1024


def split_url(url: str) -> tuple[str, int]:
    """The URL for asyncpg, and the pool size taken out of its ``pool_size`` parameter."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    size = DEFAULT_POOL_SIZE
    rest = []
    for key, value in query:
        if key == "pool_size":
            try:
                size = int(value)
            except ValueError:
                raise StoreError(
                    f"[store] url: pool_size must be a number, not {value!r}"
                ) from None
            if size < 1:
                raise StoreError("[store] url: pool_size must be at least 1")
        else:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), size


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


async def connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT)
    except LOST as e:
        raise Unavailable(f"cannot connect to {redact(dsn)}: {e}") from e
    except asyncpg.PostgresError as e:  # refused: no such database, role or password
        raise StoreError(f"cannot open {redact(dsn)}: {e}") from e


async def migrate(dsn: str) -> list[int]:
    """Applies the migrations not yet in ``schema_migrations``; returns their versions."""
    conn = await connect(dsn)
    try:
        return await _migrate_on(conn)
    finally:
        await conn.close()


async def _migrate_on(conn: asyncpg.Connection) -> list[int]:
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            return await _apply(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    except LOST as e:
        raise Unavailable(f"database lost while migrating: {e}") from e


async def _apply(conn: asyncpg.Connection) -> list[int]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    applied = []
    for version, _name, text in migrations("postgres"):
        if version in done:
            continue
        async with conn.transaction():
            await conn.execute(text)
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                version,
                datetime.now(UTC).isoformat(),
            )
        applied.append(version)
    return applied


async def prepare(dsn: str) -> str:
    """Migrates; returns the server's ``synchronous_commit``, the level writes must use."""
    conn = await connect(dsn)
    try:
        await _migrate_on(conn)
        return str(await conn.fetchval("SELECT current_setting('synchronous_commit')"))
    except LOST as e:
        raise Unavailable(f"database lost while opening: {e}") from e
    finally:
        await conn.close()


class PostgresStore(SqlStore):
    """The shared store; ``driver``, ``events`` and ``blobs`` expose their counters."""

    def __init__(
        self,
        driver: PgDriver,
        blobs: PgBlobStore,
        events: PgEvents,
        dsn: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(driver, blobs, events, clock=clock)
        self._pg = driver
        self._pg_events = events
        self._pg_blobs = blobs
        self.dsn = dsn

    @property
    def driver(self) -> PgDriver:
        return self._pg

    @property
    def pg_events(self) -> PgEvents:
        return self._pg_events

    @property
    def pg_blobs(self) -> PgBlobStore:
        return self._pg_blobs

    @property
    def writes(self) -> int:
        return self._pg.writes


async def open_postgres_url(
    url: str,
    *,
    pool_size: int | None = None,
    keepalive: float | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> PostgresStore:
    """Migrates the database at ``url`` and opens a store on it.

    Leases, counters and remembered keys take their time from ``clock``, never from the
    database's ``now()``: the SQLite backend does the same, so both expire alike.
    """
    dsn, size = split_url(url)
    level = await prepare(dsn)
    try:
        pool: Any = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=pool_size or size,
            timeout=CONNECT_TIMEOUT,
            statement_cache_size=STATEMENT_CACHE,
            # Writes set their own level (PgDriver); the rest need not wait for a flush.
            server_settings={"synchronous_commit": "off"},
        )
    except LOST as e:
        raise Unavailable(f"cannot connect to {redact(dsn)}: {e}") from e
    except asyncpg.PostgresError as e:
        raise StoreError(f"cannot open {redact(dsn)}: {e}") from e
    events = PgEvents(dsn, pool) if keepalive is None else PgEvents(dsn, pool, keepalive=keepalive)
    blobs = PgBlobStore(pool)
    try:
        await blobs.sweep()
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pool.close(), 5)
        raise
    return PostgresStore(PgDriver(pool, commit_level=level), blobs, events, dsn, clock=clock)


async def open_postgres(cfg: Config) -> PostgresStore:
    """The store ``[store] url`` names (a ``postgresql://`` URL)."""
    return await open_postgres_url(cfg.store.url, pool_size=cfg.store.pool_size or None)
