"""The supervisor: the parent process of ``courriel serve``, which forks the workers and keeps
them running.

Theory of operation
-------------------
``courriel.app.run`` does everything that can fail in the parent (configuration, TLS, binding
the listeners, migrations), then hands a ``Supervisor`` the function that serves in a worker. The
supervisor forks one process per worker slot; each inherits the listening sockets and the
``HeartbeatTable`` (shared memory), builds its own event loop, store and sessions, and returns
an exit status, with which the child ends (``os._exit``: it never returns into the parent's code).

The parent then sleeps in ``select`` on two pipes: the signal wake-up pipe (``signal.set_wakeup_fd``
writes into it for SIGTERM, SIGINT, SIGHUP and SIGCHLD; the handlers only set flags) and the
ready pipe, on which a worker writes one byte once it serves. It wakes at least every
``CHECK_INTERVAL`` and then, in order:

* reaps dead workers (``waitpid``) and logs why each died in plain words; a worker that dies while
  the server runs is started again, at once if it had lived ``STABLE_SECONDS``, else after a delay
  that doubles with each short life up to ``MAX_BACKOFF`` (a crash loop must not spin);
* on SIGTERM or SIGINT sends SIGTERM to every worker and waits until they are gone, sending
  SIGKILL to those still alive after ``grace`` seconds, so the server stops in time even when a
  command holds a worker's loop. A second SIGTERM changes nothing;
* on SIGHUP calls ``on_reload`` (the parent reloads its certificate, so a worker started later
  gets the new one) and sends SIGHUP to every worker that serves; one still starting ignores
  SIGHUP (rather than die of it) and gets it once it serves;
* kills a worker whose heartbeat is older than ``stall_kill`` seconds, naming the command it was
  stuck in (the worker's watchdog wrote it into its slot), and replaces it;
* calls ``on_ready`` once, when every worker has become ready for the first time (the settings
  table is printed then). A worker that exits before that means the server cannot start: the
  others are stopped and ``run`` returns 1 (the worker logged why it could not).

The parent stays small on purpose: no event loop, no threads (forking a process that has threads
can copy a lock held by a thread that does not exist in the child), no store, no sessions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from courriel.logs import kv
from courriel.net.watchdog import HeartbeatTable

log = logging.getLogger("courriel.supervisor")

CHECK_INTERVAL = 0.25  # how often heartbeats and restart times are looked at
STABLE_SECONDS = 10.0  # a worker that lived this long is restarted without delay
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)

# Runs in the child after the fork: serves as worker ``slot`` and returns the exit status.
WorkerMain = Callable[[int, HeartbeatTable, int], int]


@dataclass(slots=True)
class _Worker:
    slot: int
    pid: int = 0  # 0 = not running
    started: float = 0.0
    ready: bool = False
    killed_for: str = ""  # why the supervisor killed it, for the line that reports its death
    reload_pending: bool = False  # a SIGHUP came while it was starting
    short_lives: int = 0  # consecutive lives shorter than STABLE_SECONDS
    restart_at: float | None = None


def exit_reason(status: int) -> str:
    """A ``waitpid`` status in plain words."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    if code == 0:
        return "exited"
    return f"exited with status {code}"


def backoff(short_lives: int) -> float:
    """Seconds before a restart, after ``short_lives`` lives in a row shorter than stable."""
    if short_lives == 0:
        return 0.0
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (short_lives - 1)))


class Supervisor:
    """Forks ``count`` workers running ``main`` and keeps them running until told to stop."""

    def __init__(
        self,
        count: int,
        main: WorkerMain,
        *,
        grace: float,
        stall_kill: float,
        on_ready: Callable[[], None] | None = None,
        on_reload: Callable[[], object] | None = None,
    ) -> None:
        self.table = HeartbeatTable(count)
        self.workers = [_Worker(slot) for slot in range(count)]
        self.main = main
        self.grace = grace
        self.stall_kill = stall_kill
        self.on_ready = on_ready
        self.on_reload = on_reload
        self.announced = False
        self._pending: list[int] = []  # signals received, in order
        self._stopping_since: float | None = None
        self._status = 0
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._ready_r, self._ready_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Serves until SIGTERM or SIGINT; returns 0, or 1 when the workers could not start."""
        saved = self._install_signals()
        try:
            for w in self.workers:
                self._spawn(w)
            while self._alive() or self._stopping_since is None:
                self._wait()
                self._reap()
                self._handle_signals()
                if self._stopping_since is None:
                    self._check_heartbeats()
                    self._restart_due()
                    self._announce()
                else:
                    self._kill_late()
        finally:
            self._restore_signals(saved)
            for fd in (self._wake_r, self._wake_w, self._ready_r, self._ready_w):
                os.close(fd)
            self.table.close()
        return self._status

    def _alive(self) -> bool:
        return any(w.pid for w in self.workers)

    def _wait(self) -> None:
        timeout = CHECK_INTERVAL
        now = time.monotonic()
        for w in self.workers:
            if w.restart_at is not None:
                timeout = min(timeout, max(0.0, w.restart_at - now))
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r, self._ready_r], [], [], timeout)
        for fd in (self._wake_r, self._ready_r):
            with contextlib.suppress(BlockingIOError):
                while os.read(fd, 512):
                    pass

    # --- signals ------------------------------------------------------------------------------

    def _install_signals(self) -> dict[int, object]:
        saved: dict[int, object] = {sig: signal.getsignal(sig) for sig in _SIGNALS}

        def note(signum: int, frame: FrameType | None) -> None:
            if signum != signal.SIGCHLD:
                self._pending.append(signum)

        for sig in _SIGNALS:
            signal.signal(sig, note)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        return saved

    def _restore_signals(self, saved: dict[int, object]) -> None:
        signal.set_wakeup_fd(-1)
        for sig, handler in saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _handle_signals(self) -> None:
        while self._pending:
            signum = self._pending.pop(0)
            if signum == signal.SIGHUP:
                self._reload()
            elif self._stopping_since is None:
                log.info("shutting down", extra=kv(signal=signal.Signals(signum).name))
                self.stop()

    def _reload(self) -> None:
        log.info("reloading the TLS certificate", extra=kv(signal="SIGHUP"))
        if self.on_reload is not None:
            self.on_reload()
        for w in self.workers:
            if w.ready:
                self._signal(w, signal.SIGHUP)
            else:  # it ignores SIGHUP until it serves; told once it does
                w.reload_pending = bool(w.pid)

    def stop(self, status: int = 0) -> None:
        """Begins stopping every worker: SIGTERM now, SIGKILL after the grace period."""
        if self._stopping_since is not None:
            return
        self._status = status
        self._stopping_since = time.monotonic()
        for w in self.workers:
            w.restart_at = None
            self._signal(w, signal.SIGTERM)

    def _kill_late(self) -> None:
        assert self._stopping_since is not None
        if time.monotonic() - self._stopping_since < self.grace:
            return
        for w in self.workers:
            if w.pid and not w.killed_for:
                log.warning(
                    "worker still running after the grace period: killing it",
                    extra=kv(worker=w.slot + 1, pid=w.pid, grace=self.grace),
                )
                w.killed_for = "did not stop within the grace period"
                self._signal(w, signal.SIGKILL)

    def _signal(self, w: _Worker, signum: int) -> None:
        if w.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w.pid, signum)

    # --- workers ------------------------------------------------------------------------------

    def _spawn(self, w: _Worker) -> None:
        self.table.reset(w.slot)
        w.ready, w.killed_for, w.restart_at, w.reload_pending = False, "", None, False
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would write the parent's buffered text a second time
        pid = os.fork()
        if pid == 0:
            self._child(w.slot)
        w.pid, w.started = pid, time.monotonic()
        log.info("worker started", extra=kv(worker=w.slot + 1, pid=pid))

    def _child(self, slot: int) -> None:
        """The forked worker: the parent's signal handling undone, then ``main``; never returns."""
        status = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            # Ctrl-C reaches the whole process group; the supervisor answers it for everyone.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            # SIGHUP must not end a worker still starting (its loop takes SIGHUP once it serves).
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            for fd in (self._wake_r, self._wake_w, self._ready_r):
                os.close(fd)
            status = self.main(slot, self.table, self._ready_w)
        except BaseException:
            log.exception("worker failed")
        finally:
            with contextlib.suppress(Exception):
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(status)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            w = next((w for w in self.workers if w.pid == pid), None)
            if w is not None:
                self._died(w, status)

    def _died(self, w: _Worker, status: int) -> None:
        lived = time.monotonic() - w.started
        reason = w.killed_for or exit_reason(status)
        w.ready = w.ready or self.table.last_beat(w.slot) != 0.0  # it may have beaten just now
        w.pid = 0
        fields = kv(worker=w.slot + 1, lived=round(lived, 1))
        if self._stopping_since is not None:
            if w.killed_for or os.waitstatus_to_exitcode(status) != 0:
                log.warning("worker stopped: %s", reason, extra=fields)
            return
        if not self.announced and not w.ready:
            log.error("worker could not start: %s", reason, extra=fields)
            self.stop(status=1)
            return
        w.short_lives = 0 if lived >= STABLE_SECONDS else w.short_lives + 1
        delay = backoff(w.short_lives)
        log.error("worker died: %s; starting another in %.1f s", reason, delay, extra=fields)
        w.restart_at = time.monotonic() + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for w in self.workers:
            if w.restart_at is not None and w.restart_at <= now:
                self._spawn(w)

    def _check_heartbeats(self) -> None:
        now = time.monotonic()
        for w in self.workers:
            beat = self.table.last_beat(w.slot) if w.pid else 0.0
            if beat == 0.0:
                continue
            w.ready = True
            if w.reload_pending:
                w.reload_pending = False
                self._signal(w, signal.SIGHUP)
            stuck = now - beat
            if self.stall_kill and stuck > self.stall_kill and not w.killed_for:
                what = self.table.stall(w.slot) or "command unknown"
                w.killed_for = f"its event loop was stuck for {stuck:.1f} s ({what})"
                log.error(
                    "worker stuck: killing it",
                    extra=kv(worker=w.slot + 1, pid=w.pid, seconds=round(stuck, 1), stuck_in=what),
                )
                self._signal(w, signal.SIGKILL)

    def _announce(self) -> None:
        if not self.announced and all(w.ready for w in self.workers):
            self.announced = True
            if self.on_ready is not None:
                self.on_ready()
