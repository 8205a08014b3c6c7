"""The SQLite backend: the embedded store, shared by every process that opens its data directory.

Theory of operation
-------------------
``open_sqlite`` makes the directories (the database's, ``blobs``, and ``run`` for sockets and
lock files, all owner-only), migrates the schema under an exclusive ``flock`` on
``<data_dir>/run/migrate.lock`` (processes starting together apply each migration once) and
builds the store from three parts:

* ``courriel.store.sqlite.driver`` -- one writer thread with group commit and a pool of reader
  threads; any number of processes open the same database, SQLite's write lock orders them;
* ``courriel.store.sqlite.bodies`` -- small bodies in the database, the rest as files, deleted
  safely while other processes may be appending the same content;
* ``courriel.store.sqlite.events`` -- change events between the processes, as unix datagrams.

Nothing here holds state another process needs: a second ``open_sqlite`` on the same directory,
from this process or another, is simply one more participant.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from courriel.clock import SYSTEM_CLOCK, Clock
from courriel.store.base import Events, Unavailable
from courriel.store.blobs import FileBlobStore
from courriel.store.sql import SqlStore
from courriel.store.sqlite.bodies import (
    DEFAULT_INLINE_MAX,
    SWEEP_MIN_AGE,
    SqliteBlobs,
    check_files,
    reap_files,
    sweep,
)
from courriel.store.sqlite.driver import (
    DEFAULT_MAX_BATCH,
    DEFAULT_READERS,
    SqliteDriver,
    run_script,
)
from courriel.store.sqlite.driver import migrate as migrate_unlocked
from courriel.store.sqlite.events import SocketEvents

__all__ = ["SqliteDriver", "SqliteStore", "migrate", "open_sqlite", "run_script"]

_log = logging.getLogger(__name__)

RUN_DIR = "run"
SWEEP_EVERY = 24 * 3600.0  # seconds between sweeps for orphaned body files
SWEEP_CHECK = 3600.0  # seconds between looks at whether a sweep is due


class SqliteStore(SqlStore):
    """The embedded store; ``commits`` counts group commits (for tests and monitoring)."""

    def __init__(
        self,
        driver: SqliteDriver,
        files: FileBlobStore,
        events: Events,
        *,
        inline_max: int = DEFAULT_INLINE_MAX,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(
            driver, SqliteBlobs(files, driver), events, inline_max=inline_max, clock=clock
        )
        self._sqlite = driver
        self._files = files
        self._sweeper: asyncio.Task[None] | None = None
        self._claim: int | None = None  # fd holding run/serving.lock

    @property
    def driver(self) -> SqliteDriver:
        return self._sqlite

    @property
    def path(self) -> Path:
        return self._sqlite.path

    @property
    def files(self) -> FileBlobStore:
        """Where bodies larger than ``inline_max`` are kept."""
        return self._files

    @property
    def commits(self) -> int:
        return self._sqlite.commits

    @property
    def writes(self) -> int:
        return self._sqlite.writes

    async def _reap(self, blob_ids: Sequence[str]) -> None:
        try:  # under the write lock: see courriel.store.sqlite.bodies
            await reap_files(self._sqlite, self._files, blob_ids)
        except Exception:  # the commit stands; a body left behind is only wasted space
            _log.exception("could not delete unreferenced bodies")

    async def sweep_bodies(self, min_age: float = SWEEP_MIN_AGE) -> int:
        """Deletes body files that no row references (left by a crash); returns how many."""
        return await sweep(self._sqlite, self._files, min_age)

    def sweep_in_background(self, every: float = SWEEP_EVERY) -> None:
        """Sweeps every ``every`` seconds while open, in one of the processes sharing the store.

        ``<run>/sweep.lock`` holds the time of the last sweep of any process; its ``flock``
        lets one process at a time sweep. So N workers starting together sweep once, not N
        times, and a restarted worker does not sweep again before it is due.
        """
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(every), name="courriel-sweep")

    async def _sweep_forever(self, every: float) -> None:
        while True:
            try:
                await self._sweep_if_due(every)
            except Exception:
                _log.exception("could not sweep unreferenced message files")
            await asyncio.sleep(min(every, SWEEP_CHECK))

    async def _sweep_if_due(self, every: float) -> None:
        fd = os.open(self.path.parent / RUN_DIR / "sweep.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process is sweeping
            last = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            if last and time.time() - float(last) < every:
                return
            swept = await self.sweep_bodies()
            if swept:
                _log.info("deleted %d unreferenced message files", swept)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{time.time():.0f}\n".encode(), 0)
        finally:
            os.close(fd)

    def claim_directory(self, *, exclusive: bool) -> None:
        """Marks the data directory as served (shared) or as being moved whole (exclusive).

        Servers hold a shared ``flock`` on ``<run>/serving.lock`` while open; ``db export``,
        ``import`` and ``copy`` need it exclusive, because a copy taken page by page while mail
        arrives would not be one state of the store. Other admin commands take neither.
        """
        fd = os.open(self.path.parent / RUN_DIR / "serving.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if exclusive:
                raise Unavailable(
                    f"{self.path} is in use by a running courriel server; stop it first"
                ) from None
            raise Unavailable(
                f"{self.path} is being exported or imported by a courriel command;"
                " start again when it has finished"
            ) from None
        if self._claim is not None:
            os.close(self._claim)
        self._claim = fd

    async def close(self) -> None:
        if self._claim is not None:
            os.close(self._claim)
            self._claim = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await super().close()


async def open_sqlite(
    path: Path,
    blob_dir: Path,
    *,
    events: Events | None = None,
    readers: int = DEFAULT_READERS,
    max_batch: int = DEFAULT_MAX_BATCH,
    inline_max: int = DEFAULT_INLINE_MAX,
    clock: Clock = SYSTEM_CLOCK,
) -> SqliteStore:
    """Opens (creating if needed) the database at ``path`` and its bodies under ``blob_dir``.

    Other processes may have the same database open; see the module docstring. Bodies of at
    most ``inline_max`` bytes are kept in the database (``courriel.store.sqlite.bodies``).
    Leases, counters and remembered keys take their time from ``clock``.
    """
    run_dir = await asyncio.to_thread(_prepare, path, blob_dir)
    files = FileBlobStore(blob_dir)
    driver = SqliteDriver(path, readers=readers, max_batch=max_batch, verify=check_files(files))
    events = events or SocketEvents(run_dir)
    return SqliteStore(driver, files, events, inline_max=inline_max, clock=clock)


def _prepare(path: Path, blob_dir: Path) -> Path:
    """Directories and the schema, before any connection is shared; returns the run directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    run_dir = path.parent / RUN_DIR
    run_dir.mkdir(mode=0o700, exist_ok=True)
    # Password hashes and mail: owner-only. SQLite gives -wal and -shm the database's mode.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    migrate(path)
    return run_dir


def migrate(path: Path) -> list[int]:
    """Applies the migrations not yet applied; returns their versions.

    Under an exclusive ``flock`` on ``<run>/migrate.lock``: processes starting together wait
    for the first, then find nothing left to do.
    """
    run_dir = path.parent / RUN_DIR
    run_dir.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(run_dir / "migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return migrate_unlocked(path)
    finally:
        os.close(fd)  # releases the flock
