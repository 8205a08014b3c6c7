"""The SQLite backend: one writer thread with group commit, a pool of reader threads.

Theory of operation
-------------------
The database runs in WAL mode with ``synchronous=FULL``: a COMMIT returns once the WAL is
fsynced, so a committed transaction survives a crash or power loss. Foreign keys are on.

Writes. One thread owns the write connection. Callers submit a script (``courriel.store.sql``)
and await a future. The writer takes every script waiting in its queue (up to ``max_batch``)
and runs them in one ``BEGIN IMMEDIATE`` transaction, each inside its own SAVEPOINT: a script
that raises rolls back only its savepoint and its caller gets the exception; the others go on.
Then one COMMIT -- one fsync for the whole batch -- and the futures are resolved on the event
loop with ``call_soon_threadsafe``. While one batch commits, the next one gathers in the
queue, so the more writers there are, the larger the batches and the fewer fsyncs per write.
If BEGIN or COMMIT fails, every script of the batch fails with ``Unavailable``: none of them
was written.

Reads. A script that only reads runs in a deferred transaction: a consistent snapshot that never
blocks and is never blocked by the writer (WAL). A read that starts after a write returned sees
that write. Most reads are a few index lookups costing microseconds, far less than the hop to a
thread and back (tens of microseconds, and the GIL handed over twice), so a read starts *inline*,
on the event loop, on a connection kept for that: with ``busy_timeout = 0`` it never sleeps, and
a progress handler interrupts any query once the read has used ``INLINE_BUDGET`` of loop time.
An interrupted SELECT leaves its transaction and snapshot intact, so the script then goes on --
the interrupted query again, then the rest -- in a pool thread on the same connection, with a
normal busy timeout. The same happens when the Python part of a script overruns the budget or
the database is briefly busy. A big listing or a scan therefore costs the loop at most about
``INLINE_BUDGET``, and a point lookup costs no thread at all.

The writer and the hand-offs run in threads; the event loop never waits on SQLite for longer than
``INLINE_BUDGET``.

One process owns the database: ``open_sqlite`` takes an exclusive lock on ``<db>.lock`` and
refuses to open a database another process holds (the body deletion rule of
``courriel.store.sql.BlobGate`` relies on seeing every writer of the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from courriel.store.base import Events, StoreError, Unavailable
from courriel.store.blobs import BlobStore, FileBlobStore
from courriel.store.events import LocalEvents
from courriel.store.sql import Query, Script, SqlStore, migrations

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

DEFAULT_READERS = 4
DEFAULT_MAX_BATCH = 512
# Loop time a read may take before it moves to a thread: a few point lookups fit many times over.
INLINE_BUDGET = 0.002
_PROGRESS_STEPS = 500  # SQLite VM steps between two looks at the clock
_INLINE_BUSY_MS = 0  # on the loop: never sleep on a lock
_THREAD_BUSY_MS = 10000  # in a thread: wait, as every other connection does


def run_script(conn: sqlite3.Connection, script: Script[T]) -> T:
    """Drives a script to its end on ``conn``; the caller owns the transaction."""
    try:
        query = next(script)
        while True:
            query = script.send(conn.execute(query.sql, query.params).fetchall())
    except StopIteration as stop:
        return cast(T, stop.value)
    finally:
        script.close()


def connect(path: Path, *, reader: bool) -> sqlite3.Connection:
    # isolation_level=None: the module issues no BEGIN of its own; transactions are explicit.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {_THREAD_BUSY_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL at every COMMIT
    conn.execute("PRAGMA cache_size = -16384")  # 16 MiB per connection
    if reader:
        conn.execute("PRAGMA query_only = ON")
    return conn


def migrate(path: Path) -> list[int]:
    """Applies the SQL files not yet recorded in ``schema_migrations``; returns their versions."""
    conn = connect(path, reader=False)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: cannot switch to WAL mode (got {mode})")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, _name, text in migrations("sqlite"):
            if version in done:
                continue
            now = datetime.now(UTC).isoformat()
            try:
                conn.executescript(
                    f"BEGIN IMMEDIATE;\n{text}\n;\nINSERT INTO schema_migrations"
                    f" (version, applied_at) VALUES ({int(version)}, '{now}');\nCOMMIT;"
                )
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            applied.append(version)
        return applied
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class _Job:
    script: Script[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller gave up waiting; the outcome stands regardless
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _settle_all(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        _settle(future, ok, value)


class _Overrun(Exception):  # noqa: N818 - reads as an event
    """The inline part of a read used its budget: the rest goes to a thread."""


class _InlineConn:
    """A read connection used on the event loop, with the clock its progress handler watches."""

    def __init__(self, path: Path) -> None:
        self.conn = connect(path, reader=True)
        self.deadline = float("inf")  # no budget until a script's first query
        self.conn.set_progress_handler(self._over, _PROGRESS_STEPS)
        self._busy_ms = _THREAD_BUSY_MS
        self._busy(_INLINE_BUSY_MS)

    def _over(self) -> int:
        # Also true when this thread waited for the GIL past the deadline: then the read simply
        # goes on in a thread, which is what a loop that is that busy needs anyway.
        return 1 if time.perf_counter() > self.deadline else 0

    def _busy(self, ms: int) -> None:
        if self._busy_ms != ms:
            self.conn.execute(f"PRAGMA busy_timeout = {ms}")
            self._busy_ms = ms

    def begin_on_loop(self) -> None:
        """Opens the read transaction with no budget, then starts the budget's clock."""
        self.deadline = float("inf")
        self._busy(_INLINE_BUSY_MS)
        self.conn.execute("BEGIN")  # one snapshot for every query of the script
        self.deadline = time.perf_counter() + INLINE_BUDGET

    def in_thread(self) -> None:
        self.deadline = float("inf")
        self._busy(_THREAD_BUSY_MS)


class SqliteDriver:
    """Runs ``sql`` scripts against one SQLite file; see the module docstring."""

    def __init__(
        self, path: Path, *, readers: int = DEFAULT_READERS, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        self.path = path
        self.commits = 0  # batches committed: fewer than writes when group commit works
        self.writes = 0  # scripts committed
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._writer = threading.Thread(
            target=self._writer_main, name="courriel-sqlite-writer", daemon=True
        )
        self._conn = connect(path, reader=False)
        self._pool = ThreadPoolExecutor(readers, thread_name_prefix="courriel-sqlite-read")
        self._idle: list[_InlineConn] = []  # read connections not in use, touched on the loop only
        self._writer.start()

    @property
    def pending_writes(self) -> int:
        """Scripts waiting for the writer: the size of the next batch, roughly."""
        return self._queue.qsize()

    async def write(self, script: Script[T]) -> T:
        if self._closed:
            script.close()
            raise Unavailable("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(script, future, loop))
        return await future

    async def read(self, script: Script[T]) -> T:
        """Runs ``script`` on the loop until it overruns ``INLINE_BUDGET``, then in a thread."""
        if self._closed:
            script.close()
            raise Unavailable("the store is closed")
        ic = self._idle.pop() if self._idle else _InlineConn(self.path)
        try:
            ic.begin_on_loop()
        except sqlite3.Error as e:
            self._discard(ic)
            script.close()
            raise Unavailable(f"database read failed: {e}") from e
        try:
            query = next(script)
            while True:
                rows = ic.conn.execute(query.sql, query.params).fetchall()
                query = script.send(rows)
                if time.perf_counter() > ic.deadline:
                    raise _Overrun
        except StopIteration as stop:
            self._end_inline(ic)
            return cast(T, stop.value)
        except (_Overrun, sqlite3.OperationalError):
            # Over budget (the handler interrupted the query, or Python overran) or briefly busy:
            # the snapshot is intact, so the thread runs ``query`` again and goes on from there.
            pass
        except BaseException:
            self._end_inline(ic)
            script.close()
            raise
        return await self._hand_off(ic, script, query)

    async def _hand_off(self, ic: _InlineConn, script: Script[T], query: Query) -> T:
        loop = asyncio.get_running_loop()
        inner = loop.run_in_executor(self._pool, self._finish_read, ic, script, query)
        # The connection is free again only once the thread is done with it, even when the
        # caller stops waiting (cancellation): hence the shield and the callback on ``inner``.
        inner.add_done_callback(lambda _: self._release(ic))
        return await asyncio.shield(inner)

    def _finish_read(self, ic: _InlineConn, script: Script[T], query: Query) -> T:
        try:
            ic.in_thread()
            try:
                while True:
                    rows = ic.conn.execute(query.sql, query.params).fetchall()
                    query = script.send(rows)
            except StopIteration as stop:
                return cast(T, stop.value)
            finally:
                script.close()
                ic.conn.execute("ROLLBACK")
        except sqlite3.OperationalError as e:
            raise Unavailable(f"database read failed: {e}") from e

    def _end_inline(self, ic: _InlineConn) -> None:
        ic.deadline = float("inf")
        try:
            ic.conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._discard(ic)
            return
        self._release(ic)

    def _release(self, ic: _InlineConn) -> None:
        if self._closed or ic.conn.in_transaction:
            self._discard(ic)
        else:
            self._idle.append(ic)

    @staticmethod
    def _discard(ic: _InlineConn) -> None:
        with contextlib.suppress(sqlite3.Error):
            ic.conn.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._pool.shutdown, True)
        while self._idle:
            self._discard(self._idle.pop())

    # --- writes, in the writer thread --------------------------------------------------------

    def _writer_main(self) -> None:
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    break
                batch = [job]
                stop = False
                while len(batch) < self._max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                try:
                    self._run_batch(batch)
                except Exception as e:  # a bug here must not leave callers waiting forever
                    if self._conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    self._resolve(
                        [(job, False, Unavailable(f"database write failed: {e}")) for job in batch]
                    )
                if stop:
                    break
        finally:
            self._conn.close()

    def _run_batch(self, batch: list[_Job]) -> None:
        conn = self._conn
        outcomes: list[tuple[_Job, bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                outcomes.append(self._run_one(conn, job))
            conn.execute("COMMIT")  # one fsync for the whole batch
        except sqlite3.Error as e:
            # The transaction itself failed (disk full, I/O error): nothing of it was written.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            err = Unavailable(f"database write failed: {e}")
            for job in batch:
                job.script.close()
            outcomes = [(job, False, err) for job in batch]
        else:
            self.commits += 1
            self.writes += sum(1 for _, ok, _ in outcomes if ok)
        self._resolve(outcomes)

    @staticmethod
    def _resolve(outcomes: list[tuple[_Job, bool, Any]]) -> None:
        """Hands each outcome to its event loop: one wake-up per loop per batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]]
        by_loop = {}
        for job, ok, value in outcomes:
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
                loop.call_soon_threadsafe(_settle_all, settled)

    def _run_one(self, conn: sqlite3.Connection, job: _Job) -> tuple[_Job, bool, Any]:
        """One script in its own savepoint; a script error rolls back that savepoint only."""
        conn.execute("SAVEPOINT script")
        try:
            value = run_script(conn, job.script)
        except Exception as e:
            # If SQLite itself dropped the transaction, this raises and the batch fails above.
            conn.execute("ROLLBACK TO script")
            conn.execute("RELEASE script")
            if isinstance(e, sqlite3.OperationalError):
                return job, False, Unavailable(f"database write failed: {e}")
            return job, False, e
        conn.execute("RELEASE script")
        return job, True, value


class SqliteStore(SqlStore):
    """The embedded store; ``commits`` counts group commits (for tests and monitoring)."""

    def __init__(
        self, driver: SqliteDriver, blobs: BlobStore, events: Events, lock_fd: int | None
    ) -> None:
        super().__init__(driver, blobs, events)
        self._sqlite = driver
        self._lock_fd = lock_fd

    @property
    def driver(self) -> SqliteDriver:
        return self._sqlite

    @property
    def path(self) -> Path:
        return self._sqlite.path

    @property
    def commits(self) -> int:
        return self._sqlite.commits

    @property
    def writes(self) -> int:
        return self._sqlite.writes

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None


def _lock(path: Path) -> int | None:
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Unavailable(f"{path} is in use by another courriel process") from None
    return fd


async def open_sqlite(
    path: Path,
    blob_dir: Path,
    *,
    events: Events | None = None,
    readers: int = DEFAULT_READERS,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> SqliteStore:
    """Opens (creating if needed) the database at ``path`` and its bodies under ``blob_dir``."""
    lock_fd = await asyncio.to_thread(_prepare, path, blob_dir)
    try:
        driver = SqliteDriver(path, readers=readers, max_batch=max_batch)
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        raise
    return SqliteStore(driver, FileBlobStore(blob_dir), events or LocalEvents(), lock_fd)


def _prepare(path: Path, blob_dir: Path) -> int | None:
    """Directories, the process lock and the schema, before any connection is shared."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Password hashes and mail: owner-only. SQLite gives -wal and -shm the database's mode.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    lock_fd = _lock(path)
    try:
        migrate(path)
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        raise
    return lock_fd
