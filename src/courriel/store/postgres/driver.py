"""Running the store's transaction scripts on PostgreSQL, with retries and a known outcome.

Theory of operation
-------------------
A script (``courriel.store.sql``) yields queries with ``?`` placeholders; ``pg_sql`` rewrites
them to ``$1..$n`` once per distinct text (cached) and the driver runs them on a connection from a
bounded asyncpg pool, each query a prepared statement that the connection keeps.

Writes: one transaction per script, READ COMMITTED, with ``synchronous_commit`` set back to the
server's setting for it (``SET LOCAL``; the pool's connections default to off, see
``courriel.store.postgres``). The row locks the scripts take
(``UPDATE mailboxes ... RETURNING``) serialise writers of one mailbox, so UIDs and MODSEQs stay
gap-free across machines; PostgreSQL commits concurrent transactions together on its own (its WAL
writer flushes many commits at once), so there is no batching here. With the default
``synchronous_commit = on`` a COMMIT returns after its WAL record is flushed: durable.

Retries. A deadlock or serialization failure (SQLSTATE 40P01 / 40001) aborts the transaction:
it wrote nothing, so the driver runs the script again, from scratch. A script is a generator made
by a module-level function of ``courriel.store.sql`` from its arguments; ``Recipe`` remembers that
function and those arguments before the first run and makes a fresh generator for each further
attempt. A connection lost *before* COMMIT is the same case (the server rolls back). A connection
lost *during* COMMIT leaves the outcome unknown to the client, so the driver learns it: it took the
transaction id first (``pg_current_xact_id``) and asks another connection ``pg_xact_status``.
Committed: the write succeeded. Aborted: run again. When the server cannot be asked, the caller
gets ``Unavailable``, the one case where that error cannot promise nothing was written.
After ``attempts`` tries, or when the server cannot be reached, the caller gets ``Unavailable``.

Reads: REPEATABLE READ READ ONLY, one snapshot for the script; they are retried on a lost
connection the same way (nothing to undo).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import types
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import asyncpg

from courriel.store.base import Unavailable
from courriel.store.sql import Script

T = TypeVar("T")
_log = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 5
ACQUIRE_TIMEOUT = 30.0  # seconds a caller may wait for a pooled connection
_STATUS_TRIES = 20  # pg_xact_status polls while a dying backend finishes its COMMIT

# The connection, or the server, went away: nothing of an unfinished transaction remains.
LOST: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, pg_terminate_backend, ...
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,  # "connection is closed"
    # The protocol state after a connection cut in the middle of an operation (pool reset).
    asyncpg.exceptions.InternalClientError,
)
# The server gave up on the transaction and asks for it to be run again.
RETRY: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,  # 40001
    asyncpg.exceptions.DeadlockDetectedError,  # 40P01
)


@functools.lru_cache(maxsize=4096)
def pg_sql(sql: str) -> str:
    """``?`` placeholders to ``$1..$n``, leaving quoted literals and identifiers alone."""
    out: list[str] = []
    n = 0
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)


Recipe = Callable[[], Script[Any]]


def recipe(script: Script[Any]) -> Recipe | None:
    """How to make this script again, if it has not started and comes from a known function."""
    gen = cast("types.GeneratorType[Any, Any, Any]", script)
    if inspect.getgeneratorstate(gen) != inspect.GEN_CREATED:
        return None
    frame = gen.gi_frame
    if frame is None:
        return None
    fn = frame.f_globals.get(gen.__name__)
    if not inspect.isgeneratorfunction(fn) or fn.__code__ is not gen.gi_code:
        return None
    # Before the first step a generator's locals are exactly its arguments.
    args = dict(frame.f_locals)
    return lambda: cast(Script[Any], fn(**args))


async def run_script(conn: asyncpg.Connection, script: Script[T]) -> T:
    """Drives a script to its end on ``conn``; the caller owns the transaction."""
    try:
        query = next(script)
        while True:
            sql = pg_sql(query.sql)
            if query.rows:
                records = await conn.fetch(sql, *query.params)
                query = script.send([tuple(r) for r in records])
            else:
                await conn.execute(sql, *query.params)
                query = script.send([])
    except StopIteration as stop:
        return cast(T, stop.value)
    finally:
        script.close()


class _Again(Exception):  # noqa: N818 - internal signal: run the script again
    pass


_UNREACHABLE: tuple[type[BaseException], ...] = (_Again, *LOST)


class PgDriver:
    """The ``courriel.store.sql.Driver`` for PostgreSQL; see the module docstring."""

    light_writes = False  # every write is a round trip to the server; none runs on the loop

    def __init__(
        self, pool: asyncpg.Pool, *, commit_level: str = "on", attempts: int = DEFAULT_ATTEMPTS
    ) -> None:
        self.pool = pool
        # synchronous_commit of every write transaction: the server's own setting, which the
        # pool's connections do not keep (they default to off, for bodies and notifications).
        self.commit_level = commit_level
        self.writes = 0
        self.retries = 0  # transactions run again (deadlock, serialization, lost connection)
        self._attempts = attempts
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._closed:
            raise Unavailable("the store is closed")
        try:
            conn = await self.pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except (*LOST, asyncpg.PostgresError) as e:  # a refused login too: not this caller's fault
            raise _Again(f"cannot connect: {e}") from e
        try:
            yield conn
        finally:
            with contextlib.suppress(*LOST):
                await self.pool.release(conn)

    async def _attempt(self, script: Script[T], once: Callable[[Script[T]], Any]) -> T:
        remake = recipe(script)
        delay = 0.05
        for attempt in range(1, self._attempts + 1):
            try:
                value: T = await once(script)
                return value
            except _Again as e:
                if self._closed or remake is None or attempt == self._attempts:
                    raise Unavailable(f"database unavailable: {e}") from e.__cause__
                self.retries += 1
                _log.warning("database transaction run again (%s)", e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            script = remake()
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def read(self, script: Script[T]) -> T:
        return await self._attempt(script, self._read_once)

    async def write(self, script: Script[T], *, durable: bool = True, light: bool = False) -> T:
        """``durable=False`` (flag changes, expunges): commits with ``synchronous_commit = off``;
        see ``courriel.store.sqlite.driver``, "Flag changes", for why that is allowed. ``light``
        changes nothing here: every statement is a round trip to the server anyway."""
        level = self.commit_level if durable else "off"
        value = await self._attempt(script, lambda s: self._write_once(s, level))
        self.writes += 1
        return value

    async def _read_once(self, script: Script[T]) -> T:
        try:
            async with self.connection() as conn:
                try:
                    tx = conn.transaction(isolation="repeatable_read", readonly=True)
                    async with tx:
                        return await run_script(conn, script)
                except LOST as e:
                    raise _Again(str(e) or type(e).__name__) from e
        finally:
            script.close()

    async def _write_once(self, script: Script[T], level: str) -> T:
        try:
            async with self.connection() as conn:
                xid = await self._begin(conn, level)
                value = await self._body(conn, script)
                await self._commit(conn, xid)
                return value
        finally:
            script.close()

    async def _begin(self, conn: asyncpg.Connection, level: str) -> str:
        try:
            await conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            # The id is taken first, so that a COMMIT whose answer is lost can be looked up
            # afterwards; set_config(..., true) is SET LOCAL, in the same round trip.
            xid: str = await conn.fetchval(
                "SELECT pg_current_xact_id()::text, set_config('synchronous_commit', $1, true)",
                level,
            )
        except LOST as e:
            raise _Again(str(e) or type(e).__name__) from e
        return xid

    async def _body(self, conn: asyncpg.Connection, script: Script[T]) -> T:
        try:
            return await run_script(conn, script)
        except BaseException as e:
            with contextlib.suppress(*LOST, asyncpg.PostgresError):
                await conn.execute("ROLLBACK")
            if isinstance(e, (*LOST, *RETRY)):
                raise _Again(str(e) or type(e).__name__) from e
            if isinstance(e, asyncpg.exceptions.ForeignKeyViolationError):
                # A body deleted by another node while this append referenced it: the whole
                # transaction is undone; the client's retry will write the body again.
                raise Unavailable(f"database write failed: {e}") from e
            raise

    async def _commit(self, conn: asyncpg.Connection, xid: str) -> None:
        try:
            await conn.execute("COMMIT")
        except RETRY as e:
            raise _Again(str(e)) from e
        except LOST as e:
            status = await self._status(xid)
            if status == "committed":
                return
            if status == "aborted":
                raise _Again(f"lost during COMMIT, rolled back: {e}") from e
            raise Unavailable(f"database connection lost during COMMIT ({e})") from e

    async def _status(self, xid: str) -> str | None:
        """What became of transaction ``xid``: committed, aborted, or None if it cannot be told."""
        for _ in range(_STATUS_TRIES):
            try:
                async with self.connection() as conn:
                    status = await conn.fetchval("SELECT pg_xact_status($1::text::xid8)", xid)
            except _UNREACHABLE:
                status = None
            if status in ("committed", "aborted"):
                return str(status)
            await asyncio.sleep(0.1)  # in progress: the old backend is still finishing
        return None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self.pool.close(), 10)
        except TimeoutError:
            self.pool.terminate()
