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

Reads. Scripts that only read run on a small pool of threads, each with its own connection, in a
deferred transaction: a consistent snapshot that never blocks and is never blocked by the writer
(WAL). A read that starts after a write returned sees that write.

The event loop never waits on SQLite: both paths hand work to threads.

Many processes. Any number of processes open the same database at once (the workers of
``courriel serve``, the admin CLI), each with its own writer thread and group commit. SQLite's
write lock serialises their transactions: ``BEGIN IMMEDIATE`` waits for it (``busy_timeout``)
and, should that wait run out while other processes keep the database busy, the writer tries
again until ``BUSY_DEADLINE`` has passed; only then does the batch fail with ``Unavailable``.
Schema migrations run under an exclusive ``flock`` on ``<data_dir>/run/migrate.lock``, so
processes starting together apply each one once. Change events cross processes through
``courriel.store.sqlite_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
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
from courriel.store.sql import Script, SqlStore, migrations
from courriel.store.sqlite_events import SocketEvents

T = TypeVar("T")

DEFAULT_READERS = 4
DEFAULT_MAX_BATCH = 512
# How long one wait for another process's write lock may take (SQLite sleeps and retries).
BUSY_TIMEOUT_MS = 5000
# How long a writer keeps trying before its batch fails with ``Unavailable``.
BUSY_DEADLINE = 30.0
RUN_DIR = "run"


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


def is_busy(e: sqlite3.Error) -> bool:
    """SQLITE_BUSY (and its extended codes): another connection holds the lock we wait for."""
    return getattr(e, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def begin_immediate(conn: sqlite3.Connection, deadline: float = BUSY_DEADLINE) -> None:
    """Takes the database write lock, waiting as long as other processes keep it busy.

    Each try waits up to ``busy_timeout`` inside SQLite; a busy answer is tried again until
    ``deadline`` seconds have passed, so contention delays a write but does not fail it.
    """
    give_up = time.monotonic() + deadline
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if not is_busy(e) or time.monotonic() >= give_up:
                raise


def connect(path: Path, *, reader: bool) -> sqlite3.Connection:
    # isolation_level=None: the module issues no BEGIN of its own; transactions are explicit.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
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
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
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
        if self._closed:
            script.close()
            raise Unavailable("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._read_sync, script)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._pool.shutdown, True)
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    # --- reads, in pool threads --------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, reader=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _read_sync(self, script: Script[T]) -> T:
        conn = self._reader()
        try:
            conn.execute("BEGIN")  # one snapshot for every query of the script
            try:
                return run_script(conn, script)
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.OperationalError as e:
            raise Unavailable(f"database read failed: {e}") from e

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
            begin_immediate(conn)
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

    def __init__(self, driver: SqliteDriver, blobs: BlobStore, events: Events) -> None:
        super().__init__(driver, blobs, events)
        self._sqlite = driver

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


async def open_sqlite(
    path: Path,
    blob_dir: Path,
    *,
    events: Events | None = None,
    readers: int = DEFAULT_READERS,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> SqliteStore:
    """Opens (creating if needed) the database at ``path`` and its bodies under ``blob_dir``.

    Other processes may have the same database open; see the module docstring.
    """
    run_dir = await asyncio.to_thread(_prepare, path, blob_dir)
    driver = SqliteDriver(path, readers=readers, max_batch=max_batch)
    return SqliteStore(driver, FileBlobStore(blob_dir), events or SocketEvents(run_dir))


def _prepare(path: Path, blob_dir: Path) -> Path:
    """Directories and the schema, before any connection is shared; returns the run directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    run_dir = path.parent / RUN_DIR
    run_dir.mkdir(mode=0o700, exist_ok=True)
    # Password hashes and mail: owner-only. SQLite gives -wal and -shm the database's mode.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    fd = os.open(run_dir / "migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # Processes starting together: one migrates, the others wait and find nothing to do.
        fcntl.flock(fd, fcntl.LOCK_EX)
        migrate(path)
    finally:
        os.close(fd)  # releases the flock
    return run_dir
