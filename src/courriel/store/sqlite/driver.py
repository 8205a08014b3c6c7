"""The SQLite driver: one writer thread with group commit; reads on the loop within a budget.

Theory of operation
-------------------
The database runs in WAL mode with ``synchronous=FULL``: a COMMIT returns once the WAL is
fsynced, so a committed transaction survives a crash or power loss (flag changes may be
committed without the fsync: "Flag changes" below). Foreign keys are on.

Writes. One thread owns the write connection. Callers submit a script (``courriel.store.sql``)
and await a future. The writer takes every script waiting in its queue (up to ``max_batch``)
and runs them in one ``BEGIN IMMEDIATE`` transaction, each inside its own SAVEPOINT: a script
that raises rolls back only its savepoint and its caller gets the exception; the others go on.
A script alone in its batch (a single session's every write) needs no savepoint: the
transaction is one, and a failure rolls it back instead of committing it.
Then one COMMIT -- one fsync for the whole batch -- and the futures are resolved on the event
loop with ``call_soon_threadsafe``. While one batch commits, the next one gathers in the
queue, so the more writers there are, the larger the batches and the fewer fsyncs per write.
If BEGIN or COMMIT fails, every script of the batch fails with ``Unavailable``: none of them
was written.

A write script's result is shown to ``verify`` inside its savepoint, before the commit; raising
there undoes that script alone (the SQLite store checks that the body files an append references
still exist). ``locked`` runs a function in the writer thread under the write lock, in a
transaction of its own that is rolled back: the store deletes body files that way, so no process
can reference one between the check and the unlink.

Flag changes. A script written with ``durable=False`` (flag changes and expunges: the IMAP
STORE and EXPUNGE replies acknowledge no message) commits with ``synchronous=NORMAL`` when its
whole batch is such: the WAL is written but not fsynced, so the change survives a crash of the
process but not of the machine until the next durable commit or checkpoint fsyncs the WAL, which
holds every earlier commit too. That is Dovecot's ``mail_fsync = optimized``: mail is synced,
flags are not. A batch with any durable script is committed with ``FULL``. Such a commit costs
no fsync, so when the loop ran a batch of them whole ("Light writes" below) it commits it
itself and settles the callers at once, with no hop back to a thread: an IMAP STORE then waits
no more than a read (``_commit_on_loop``). A commit may checkpoint the WAL (1,000 pages take
~10 ms), which must not happen on the loop: those commits run with ``wal_autocheckpoint`` off,
and after ``LOOP_COMMITS_MAX`` of them one is left to a thread, which checkpoints as every
commit in a thread may. Deleting body files
depends on what the database says, so ``locked`` fsyncs the WAL before ``fn`` runs: no file goes
because of an expunge a power loss could undo.

Light writes on the loop. A script runs in the writer thread by default, which costs a GIL
hand-over at every statement: under load, each one waits for the event loop to let go of the
GIL, and the write lock -- which every process of the server shares -- is held all that time
(measured under 20 SMTP sessions on two workers: a batch of ~3.5 appends held the lock ~2 ms
for its scripts, against ~0.3 ms alone; the other worker waited meanwhile). A caller may mark a
write ``light`` (a few rows: an append of a few messages, a flag change of a few UIDs). When every
script of a batch is light and all come from one event loop, the writer thread hands the batch
to that loop (``call_soon_threadsafe``). The loop takes the write lock itself, without waiting
(``busy_timeout`` is 0), so the lock is not held while the loop finishes what it was doing; it
runs the scripts with no GIL hand-over and gives the transaction back to the thread, which
commits (the fsync keeps off the loop). The loop stops after ``LOOP_WRITE_BUDGET`` of scripts
and leaves the rest of the batch to the thread. If another process has the lock, the thread
waits for it as for any batch and hands the scripts to the loop again, now under the lock. If
the loop has not taken a batch within ``LOOP_PICKUP_WAIT`` (it is busy or stopping), the thread
claims it and runs it itself: the scripts run exactly once, on one side or the other, and a
stopped loop cannot keep the lock.

A light write that finds nothing else of its process writing or queued (one session alone)
skips the writer thread: the loop opens the transaction and runs the script at once, and the
committer thread commits it -- two thread hand-overs fewer on the path the reply waits for
(measured: SMTP DATA to 250, 1,256/1,109 -> 1,135/943 µs p50). ``_conn_lock`` says who uses the
write connection: the writer thread for a batch, or such a write until its commit is done. Once
writes of the process have come together in a batch of several, this shortcut is off for
``GROUP_HOLD``: then a write waits for the next batch and shares its fsync, which is what many
sessions need. A flag change has no fsync to share: it takes the shortcut whenever the write
connection is free, whatever is queued, and commits on the loop ("Flag changes"); under 20
IMAP clients (the mixed benchmark, against Dovecot in the same runs) 0.93 -> 1.08.

Reads. A script that only reads runs in a deferred transaction: a consistent snapshot that never
blocks and is never blocked by the writer (WAL). A read that starts after a write returned sees
that write. Most reads are a few index lookups costing microseconds, far less than the hop to a
thread and back (tens of microseconds, and the GIL handed over twice), so a read starts *inline*,
on the event loop, on a connection kept for that: with ``busy_timeout = 0`` it never sleeps, and
a progress handler interrupts any query once the read has used ``INLINE_BUDGET`` of loop time.
An interrupted SELECT leaves its transaction and snapshot intact, so the script then goes on --
the interrupted query again, then the rest -- in a pool thread on the same connection, with the
readers' busy timeout. The same happens when the Python part of a script overruns the budget or
the database is briefly busy. A big listing or a scan therefore costs the loop about
``INLINE_BUDGET`` at most, and a point lookup costs no thread at all.

The writer and the hand-offs run in threads; the event loop never waits on SQLite for longer than
``INLINE_BUDGET``.

Many processes. Any number of processes open the same database at once (the workers of
``courriel serve``, the admin CLI), each with its own writer thread and group commit. SQLite's
write lock serialises their transactions: ``BEGIN IMMEDIATE`` waits for it (``busy_timeout``)
and, should that wait run out while other processes keep the database busy, the writer tries
again until ``BUSY_DEADLINE`` has passed; only then does the batch fail with ``Unavailable``.
``courriel.store.sqlite`` runs the schema migrations (``migrate``) under a ``flock``, so
processes starting together apply each one once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from courriel.store.base import StoreError, Unavailable
from courriel.store.sql import Query, Script, migrations

T = TypeVar("T")

DEFAULT_READERS = 4
DEFAULT_MAX_BATCH = 512
# How long a reader waits for a lock inside SQLite (rare in WAL mode: recovery, WAL restarts).
BUSY_TIMEOUT_MS = 5000
# How long a writer keeps trying for the write lock before its batch fails with ``Unavailable``.
BUSY_DEADLINE = 30.0
# Loop time a read may take before it moves to a thread: a few point lookups fit many times over.
INLINE_BUDGET = 0.002
_PROGRESS_STEPS = 500  # SQLite VM steps between two looks at the clock
# The writer polls for the write lock itself: SQLite's own busy handler sleeps up to 100 ms
# between tries, which under contention between processes adds that much to a commit.
_POLL_FIRST, _POLL_MAX = 0.0002, 0.002  # seconds
# Light writes (module docstring): loop time a batch's scripts may take before the thread goes
# on with the rest, and how long the thread, holding the write lock, waits for the loop to start.
LOOP_WRITE_BUDGET = 0.002
LOOP_PICKUP_WAIT = 0.02
GROUP_HOLD = 0.05  # seconds after a batch of several during which no write commits alone
_BUSY = object()  # the loop found the write lock taken (``_scripts_on_loop``)
_CLAIMED = object()  # the loop did not come: the thread runs the scripts
# SQLite's default: a commit that leaves the WAL this many pages long checkpoints it.
WAL_AUTOCHECKPOINT = 1000
# Commits on the loop (never a checkpoint there) before one goes to a thread again.
LOOP_COMMITS_MAX = 100


_COMMITTED = object()  # the loop ran the whole batch, committed it and settled it


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

    ``conn`` has a short ``busy_timeout`` (the writer's is 0); a busy answer is tried again,
    polling every fraction of a millisecond to a couple of milliseconds, until ``deadline``
    seconds have passed: contention delays a write but does not fail it, and another process's
    commit (a millisecond or two) is followed closely.
    """
    give_up = time.monotonic() + deadline
    pause = _POLL_FIRST
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if not is_busy(e) or time.monotonic() >= give_up:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX)


def connect(
    path: Path, *, reader: bool, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite3.Connection:
    # isolation_level=None: the module issues no BEGIN of its own; transactions are explicit.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # The first statement may meet another process opening the database at the same moment
    # (WAL recovery holds an exclusive lock briefly): wait for it, whatever the timeout the
    # connection keeps afterwards (the writer's is 0: it polls by itself, see begin_immediate).
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL at every COMMIT
    conn.execute("PRAGMA cache_size = -16384")  # 16 MiB per connection
    if reader:
        conn.execute("PRAGMA query_only = ON")
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
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
    script: Script[Any] | None  # None: ``locked`` is the job
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    locked: Callable[[sqlite3.Connection], Any] | None = None
    durable: bool = True  # False: the commit need not wait for the fsync (module docstring)
    light: bool = False  # a few rows: may run on ``loop`` ("Light writes on the loop")


Outcome = tuple[_Job, bool, Any]


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

    def __init__(self, path: Path, thread_busy_ms: int) -> None:
        # Opening may meet another process's lock (its migrations, a WAL recovery): wait then,
        # as every connection does; once open, a read on the loop never sleeps on a lock.
        self.conn = connect(path, reader=True, busy_timeout_ms=thread_busy_ms)
        self.deadline = float("inf")  # no budget until a script's first query
        self.conn.set_progress_handler(self._over, _PROGRESS_STEPS)
        self._busy_ms = thread_busy_ms
        self._thread_busy_ms = thread_busy_ms

    def _over(self) -> int:
        # Also true when this thread waited for the GIL past the deadline: then the read simply
        # goes on in a thread, which is what a loop that is that busy needs anyway.
        return 1 if time.perf_counter() > self.deadline else 0

    def _busy(self, ms: int) -> None:
        if self._busy_ms != ms:
            self.conn.execute(f"PRAGMA busy_timeout = {int(ms)}")
            self._busy_ms = ms

    def begin_on_loop(self) -> None:
        """Opens the read transaction with no budget, then starts the budget's clock."""
        self.deadline = float("inf")
        self._busy(0)
        self.conn.execute("BEGIN")  # one snapshot for every query of the script
        self.deadline = time.perf_counter() + INLINE_BUDGET

    def in_thread(self) -> None:
        self.deadline = float("inf")
        self._busy(self._thread_busy_ms)


class SqliteDriver:
    """Runs ``sql`` scripts against one SQLite file; see the module docstring."""

    light_writes = True  # "Light writes on the loop"

    def __init__(
        self,
        path: Path,
        *,
        readers: int = DEFAULT_READERS,
        max_batch: int = DEFAULT_MAX_BATCH,
        verify: Callable[[Any], None] | None = None,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        busy_deadline: float = BUSY_DEADLINE,
    ) -> None:
        """``verify`` sees each write script's result inside its transaction; raising undoes it."""
        self.path = path
        self._verify = verify
        self.commits = 0  # batches committed: fewer than writes when group commit works
        self.writes = 0  # scripts committed
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._writer = threading.Thread(
            target=self._writer_main, name="courriel-sqlite-writer", daemon=True
        )
        self._busy_timeout_ms = busy_timeout_ms  # readers'
        self._busy_deadline = busy_deadline
        # The writer waits for the write lock in begin_immediate, not inside SQLite.
        self._conn = connect(path, reader=False, busy_timeout_ms=0)
        self._durable = True  # the writer connection's synchronous setting is FULL
        self._loop_commits = 0  # commits on the loop since one in a thread (``_commit_on_loop``)
        self._pool = ThreadPoolExecutor(readers, thread_name_prefix="courriel-sqlite-read")
        # Whoever uses the write connection holds this: the writer thread for a batch, or a
        # loop's write straight away until its commit is done ("Light writes on the loop").
        self._conn_lock = threading.Lock()
        # Until when writes of this process have lately come together (a batch of several):
        # a write then joins the next batch rather than commit alone ("Light writes").
        self._group_until = 0.0
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="courriel-sqlite-commit")
        self._idle: list[_InlineConn] = []  # read connections not in use, touched on the loop only
        self._writer.start()

    @property
    def pending_writes(self) -> int:
        """Scripts waiting for the writer: the size of the next batch, roughly."""
        return self._queue.qsize()

    async def write(self, script: Script[T], *, durable: bool = True, light: bool = False) -> T:
        """Runs ``script`` in the next batch; ``durable=False``: see "Flag changes" above;
        ``light``: it touches a few rows and may run on this loop ("Light writes")."""
        if self._closed:
            script.close()
            raise Unavailable("the store is closed")
        loop = asyncio.get_running_loop()
        if (
            light
            and (
                not durable  # no fsync to share: a flag change need not wait for a batch
                or (self._queue.empty() and time.monotonic() > self._group_until)
            )
            and self._conn_lock.acquire(blocking=False)
        ):
            began = False
            try:
                began = self._begin_now(durable)
            finally:
                if not began:
                    self._conn_lock.release()
            if began:
                return await self._write_now(loop, script, durable)
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(script, future, loop, durable=durable, light=light))
        return await future

    def _begin_now(self, durable: bool) -> bool:
        """Opens a write transaction on the loop, without waiting: False when another process
        has the write lock. The caller holds ``_conn_lock``."""
        if self._closed:
            return False
        self._synchronous(durable)
        try:
            self._conn.execute("BEGIN IMMEDIATE")  # busy_timeout 0: never sleeps
        except sqlite3.OperationalError as e:
            if is_busy(e):
                return False
            raise Unavailable(f"database write failed: {e}") from e
        return True

    async def _write_now(
        self, loop: asyncio.AbstractEventLoop, script: Script[T], durable: bool
    ) -> T:
        """A light write while nothing else was writing: its script runs now, on the loop, and
        the committer thread commits it; ``_conn_lock`` is held until then."""
        try:
            ok, value = self._alone(self._conn, script)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            self._conn_lock.release()
            raise
        if not ok:  # rolled back: nothing to commit
            self._conn_lock.release()
            raise value
        if not durable and self._loop_commits < LOOP_COMMITS_MAX:
            try:
                self._commit_on_loop()
            finally:
                self._conn_lock.release()
            self.writes += 1
            return cast(T, value)
        try:
            commit = loop.run_in_executor(self._committer, self._commit_now)
        except RuntimeError as e:  # the committer is shut down: the store is closing
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            self._conn_lock.release()
            raise Unavailable("the store is closed") from e
        # Shielded: once handed over, the commit happens whether or not the caller still waits.
        await asyncio.shield(commit)
        return cast(T, value)

    def _commit_on_loop(self) -> None:
        """Commits a transaction of flag changes on the loop ("Flag changes"): no fsync, and no
        checkpoint either (one of 1,000 pages takes ~10 ms): the next commit in a thread does
        it, and after ``LOOP_COMMITS_MAX`` commits here one goes to a thread again."""
        conn = self._conn
        try:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            try:
                conn.execute("COMMIT")
            finally:
                conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
        except sqlite3.Error as e:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise Unavailable(f"database write failed: {e}") from e
        self._loop_commits += 1
        self.commits += 1

    def _commit_now(self) -> None:
        """The commit of ``_write_now`` (in the committer thread; the fsync is here)."""
        try:
            self._conn.execute("COMMIT")
            self._loop_commits = 0
            self.commits += 1
            self.writes += 1
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise Unavailable(f"database write failed: {e}") from e
        finally:
            self._conn_lock.release()

    async def locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Runs ``fn`` in the writer thread while it holds the database write lock.

        No other connection of any process writes meanwhile. ``fn`` reads and may act outside
        the database (delete files); what it writes to the database is rolled back.
        """
        if self._closed:
            raise Unavailable("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(None, future, loop, fn))
        return await future

    async def read(self, script: Script[T]) -> T:
        """Runs ``script`` on the loop until it overruns ``INLINE_BUDGET``, then in a thread."""
        if self._closed:
            script.close()
            raise Unavailable("the store is closed")
        if self._idle:
            ic = self._idle.pop()
        else:  # opened in a thread: opening may wait for a lock
            ic = await asyncio.to_thread(_InlineConn, self.path, self._busy_timeout_ms)
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
        await asyncio.to_thread(self._committer.shutdown, True)
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
                if len(batch) > 1:
                    self._group_until = time.monotonic() + GROUP_HOLD
                with self._conn_lock:
                    try:
                        self._run_batch(batch)
                    except Exception as e:  # a bug here must not leave callers waiting forever
                        if self._conn.in_transaction:
                            with contextlib.suppress(sqlite3.Error):
                                self._conn.execute("ROLLBACK")
                        failed = Unavailable(f"database write failed: {e}")
                        self._resolve([(job, False, failed) for job in batch])
                if stop:
                    break
        finally:
            with self._conn_lock:  # a commit handed to the committer thread finishes first
                self._conn.close()

    def _run_batch(self, jobs: list[_Job]) -> None:
        batch = [job for job in jobs if job.script is not None]
        if batch:
            self._run_scripts(batch)
        for job in jobs:
            if job.locked is not None:
                self._resolve([self._run_locked(job.locked, job)])

    def _run_locked(self, fn: Callable[[sqlite3.Connection], Any], job: _Job) -> Outcome:
        conn = self._conn
        try:
            begin_immediate(conn, self._busy_deadline)
            try:
                # What ``fn`` sees decides what it deletes outside the database; make sure none
                # of it is a commit that a power loss could still undo (``durable=False``).
                self._sync_wal()
                return job, True, fn(conn)
            except Exception as e:
                return job, False, e
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as e:
            return job, False, Unavailable(f"database write failed: {e}")

    def _run_scripts(self, batch: list[_Job]) -> None:
        conn = self._conn
        outcomes: list[Outcome] = []
        try:
            self._synchronous(any(job.durable for job in batch))
            loop = batch[0].loop
            light = all(job.light and job.loop is loop for job in batch)
            got = self._scripts_on_loop(loop, conn, batch, begin=True) if light else None
            if isinstance(got, list):
                outcomes = got
            elif got is not _COMMITTED:
                begin_immediate(conn, self._busy_deadline)
                if got is _BUSY:  # the loop is there, the lock was not: now it is held
                    got = self._scripts_on_loop(loop, conn, batch, begin=False)
                    outcomes = got if isinstance(got, list) else []
            if got is _COMMITTED:  # flag changes, committed and settled on the loop
                return
            if len(batch) == 1 and not outcomes:
                outcomes = [self._run_alone(conn, batch[0])]
            else:  # what the loop left, each in its savepoint (a failure undoes it alone)
                outcomes += [self._run_one(conn, job) for job in batch[len(outcomes) :]]
            committed = conn.in_transaction  # False: a lone script failed and rolled it back
            if committed:
                conn.execute("COMMIT")  # one fsync for the whole batch
                self._loop_commits = 0
        except sqlite3.Error as e:
            # The transaction itself failed (disk full, I/O error): nothing of it was written.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            err = Unavailable(f"database write failed: {e}")
            for job in batch:
                assert job.script is not None
                job.script.close()
            outcomes = [(job, False, err) for job in batch]
        else:
            if committed:
                self.commits += 1
            self.writes += sum(1 for _, ok, _ in outcomes if ok)
        self._resolve(outcomes)

    def _scripts_on_loop(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: sqlite3.Connection,
        batch: list[_Job],
        *,
        begin: bool,
    ) -> list[Outcome] | object:
        """Runs what it can of ``batch`` on ``loop`` ("Light writes on the loop"); returns the
        outcomes of the first scripts (the rest is the thread's), ``_COMMITTED`` when the loop
        ran them all and committed them (flag changes), ``_CLAIMED`` when the loop did not come
        in time, ``_BUSY`` when ``begin`` and another process has the lock.

        ``begin``: the loop takes the write lock itself, without waiting, so the lock is not
        held while the loop finishes what it was doing; else the thread holds it already."""
        claim = threading.Lock()  # whoever takes it runs the scripts: the loop or this thread
        ran = threading.Event()
        box: list[object] = []

        def on_loop() -> None:
            if not claim.acquire(blocking=False):
                return  # the thread gave up waiting and ran them
            try:
                if begin:
                    try:
                        conn.execute("BEGIN IMMEDIATE")  # busy_timeout 0: never sleeps
                    except sqlite3.OperationalError as e:
                        if not is_busy(e):
                            raise
                        box.append(_BUSY)
                        return
                outcomes = self._loop_part(conn, batch)
                if (
                    conn.in_transaction
                    and len(outcomes) == len(batch)
                    and not any(job.durable for job in batch)
                    and self._loop_commits < LOOP_COMMITS_MAX
                ):
                    self._commit_on_loop()
                    self.writes += sum(1 for _, ok, _ in outcomes if ok)
                    _settle_all([(job.future, ok, value) for job, ok, value in outcomes])
                    box.append(_COMMITTED)
                else:
                    box.append(outcomes)
            except BaseException as e:  # handed to the thread, which fails the batch
                box.append(e)
            finally:
                ran.set()

        try:
            loop.call_soon_threadsafe(on_loop)
        except RuntimeError:  # that loop is closed
            return _CLAIMED
        if not ran.wait(LOOP_PICKUP_WAIT) and claim.acquire(blocking=False):
            return _CLAIMED  # claimed here: the loop's callback will find it taken
        ran.wait()
        result = box[0]
        if isinstance(result, Exception):
            raise result
        if isinstance(result, BaseException):  # not for the writer thread to die of
            raise Unavailable("the write was interrupted") from result
        return result

    def _loop_part(self, conn: sqlite3.Connection, batch: list[_Job]) -> list[Outcome]:
        if len(batch) == 1:
            return [self._run_alone(conn, batch[0])]
        deadline = time.perf_counter() + LOOP_WRITE_BUDGET
        outcomes: list[Outcome] = []
        for job in batch:
            outcomes.append(self._run_one(conn, job))
            if time.perf_counter() > deadline:
                break
        return outcomes

    def _synchronous(self, durable: bool) -> None:
        """FULL: the COMMIT fsyncs the WAL; NORMAL: it only writes it (outside a transaction)."""
        if durable != self._durable:
            self._conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self._durable = durable

    def _sync_wal(self) -> None:
        """Makes every commit in the WAL durable, whichever connection or process wrote it."""
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:  # no WAL: everything is in the database file, synced
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _resolve(outcomes: list[Outcome]) -> None:
        """Hands each outcome to its event loop: one wake-up per loop per batch."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]]
        by_loop = {}
        for job, ok, value in outcomes:
            by_loop.setdefault(job.loop, []).append((job.future, ok, value))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
                loop.call_soon_threadsafe(_settle_all, settled)

    def _run_alone(self, conn: sqlite3.Connection, job: _Job) -> Outcome:
        """The only script of its batch -- every write of a lone session: the transaction is
        its savepoint, so a failure rolls the transaction back and the two statements a
        SAVEPOINT costs are saved on the path every acknowledgement waits for."""
        assert job.script is not None
        ok, value = self._alone(conn, job.script)
        return job, ok, value

    def _alone(self, conn: sqlite3.Connection, script: Script[Any]) -> tuple[bool, Any]:
        """Runs ``script`` as the whole transaction: (True, its value), or (False, the error)
        once the transaction is rolled back."""
        try:
            value = run_script(conn, script)
            if self._verify is not None:
                self._verify(value)
        except Exception as e:
            # If SQLite itself dropped the transaction, this raises and the batch fails above.
            conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.OperationalError):
                return False, Unavailable(f"database write failed: {e}")
            return False, e
        return True, value

    def _run_one(self, conn: sqlite3.Connection, job: _Job) -> Outcome:
        """One script in its own savepoint; a script error rolls back that savepoint only."""
        assert job.script is not None
        conn.execute("SAVEPOINT script")
        try:
            value = run_script(conn, job.script)
            if self._verify is not None:
                self._verify(value)
        except Exception as e:
            # If SQLite itself dropped the transaction, this raises and the batch fails above.
            conn.execute("ROLLBACK TO script")
            conn.execute("RELEASE script")
            if isinstance(e, sqlite3.OperationalError):
                return job, False, Unavailable(f"database write failed: {e}")
            return job, False, e
        conn.execute("RELEASE script")
        return job, True, value
