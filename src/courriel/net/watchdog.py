"""The stall watchdog: notices when a worker's event loop stops running, and what stopped it.

Theory of operation
-------------------
One event loop serves every connection of a worker, so a command that keeps the loop (a
backtracking pattern, a huge parse) freezes every other session of that worker. Two clocks watch
for it, both reading one ``HeartbeatTable`` slot in memory shared with the supervisor:

* the **tick**: a callback on the loop, every ``interval`` seconds, writes the time into the
  slot (``beat``). When it runs late by more than ``threshold`` the loop was blocked that long,
  and the tick logs one line: how long, and which command did it;
* the **watch thread**, in the worker, wakes every few milliseconds and looks at the beat. Once the
  beat is overdue by half the threshold, the loop is blocked *now*, so what it is running is what
  blocked it: the thread finds the task holding the loop (``asyncio.current_task``), the
  connection that task serves (``Connections.running``) with the command its protocol driver
  named (``ConnectionContext.command``), and the innermost frame of the main thread. It keeps
  that description for the tick's line, and writes it into the slot;
* the **supervisor** (``courriel.supervisor``) reads the beat of every worker: one overdue by
  more than ``[server] stall_kill_seconds`` is killed and replaced, and the kill line names the
  command from the slot. Killing loses nothing acknowledged: a reply that acknowledges mail is
  sent only after the store made it durable.

The thread never logs and never touches the loop: it reads a float, and during a stall builds one
short description. A check that the supervisor is still there rides on it: a worker whose parent
died stops itself, instead of serving on unsupervised with the ports held.

The description is a best effort. Code that holds the GIL for the whole stall (one long C call,
such as a regular expression) keeps the thread out too; it then describes the stall as soon as
the call returns, which is still inside the same command.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from courriel.logs import kv
from courriel.net.listener import Connections

log = logging.getLogger("courriel.watchdog")

# A slot: beat (monotonic seconds, 0 = not serving yet), the beat a stall was seen at, the length
# of the description, then the description itself (UTF-8, cut to fit).
_HEAD = struct.Struct("=ddH")
SLOT_SIZE = 256
_TEXT = SLOT_SIZE - _HEAD.size
_PACKAGE = str(Path(__file__).resolve().parent.parent)  # .../courriel


class HeartbeatTable:
    """One slot per worker in anonymous shared memory, made before the workers are forked.

    CLOCK_MONOTONIC is one clock for the whole machine, so a beat written by a worker means the
    same to the supervisor. An 8-byte aligned store is one instruction on the machines courriel
    runs on, so a reader never sees half a beat.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._mem = mmap.mmap(-1, SLOT_SIZE * max(1, slots))

    def reset(self, slot: int) -> None:
        self._mem[slot * SLOT_SIZE : (slot + 1) * SLOT_SIZE] = bytes(SLOT_SIZE)

    def beat(self, slot: int, now: float) -> None:
        struct.pack_into("=d", self._mem, slot * SLOT_SIZE, now)

    def last_beat(self, slot: int) -> float:
        value: float = struct.unpack_from("=d", self._mem, slot * SLOT_SIZE)[0]
        return value

    def note_stall(self, slot: int, beat: float, text: str) -> None:
        data = text.encode("utf-8", "replace")[:_TEXT]
        base = slot * SLOT_SIZE
        self._mem[base + _HEAD.size : base + _HEAD.size + len(data)] = data
        struct.pack_into("=dH", self._mem, base + 8, beat, len(data))

    def stall(self, slot: int) -> str:
        """What the worker said it was stuck in, if the stall it saw is the current one."""
        base = slot * SLOT_SIZE
        beat, seen, length = _HEAD.unpack_from(self._mem, base)
        if seen == 0 or seen != beat:
            return ""
        return bytes(self._mem[base + _HEAD.size : base + _HEAD.size + length]).decode(
            "utf-8", "replace"
        )

    def close(self) -> None:
        self._mem.close()


@dataclass(frozen=True, slots=True)
class Stall:
    """What held the loop: the connection and command when a session's task did, and where."""

    conn: str = ""
    protocol: str = ""
    command: str = ""
    task: str = ""
    at: str = ""

    def fields(self) -> dict[str, str]:
        names = ("conn", "protocol", "command", "task", "at")
        return {n: getattr(self, n) for n in names if getattr(self, n)}

    def text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.fields().items())


def _where(frame: FrameType | None) -> str:
    """``file:line function`` of the innermost frame, the path relative to courriel's."""
    if frame is None:
        return ""
    code = frame.f_code
    path = code.co_filename
    shown = path[len(_PACKAGE) + 1 :] if path.startswith(_PACKAGE + os.sep) else Path(path).name
    return f"{shown}:{frame.f_lineno}:{code.co_name}"


def describe(loop: asyncio.AbstractEventLoop, connections: Connections, thread: int) -> Stall:
    """What the loop running in ``thread`` is busy with; called from another thread."""
    task = asyncio.current_task(loop)
    ctx = connections.running(task)
    at = _where(sys._current_frames().get(thread))
    if ctx is not None:
        protocol = ctx.listener.protocol
        return Stall(conn=ctx.conn_id, protocol=protocol, command=ctx.command or "-", at=at)
    return Stall(task=task.get_name() if task is not None else "-", at=at)


class Watchdog:
    """The tick on the loop and the watch thread of one worker (see the module docstring)."""

    def __init__(
        self,
        table: HeartbeatTable,
        slot: int,
        *,
        threshold: float,
        describe: Callable[[], Stall],
        orphaned: Callable[[], object] | None = None,
    ) -> None:
        self.table = table
        self.slot = slot
        self.threshold = threshold
        # A stall shows as the tick's lateness, which falls short of the stall by at most one
        # interval: a tenth of the threshold keeps that error small at 40 cheap callbacks a second.
        self.interval = max(0.005, min(0.025, threshold / 10))
        self.stalls = 0  # stalls logged, for tests and curiosity
        self._describe = describe
        self._orphaned = orphaned
        self._parent = os.getppid()
        self._beat = 0.0
        self._seen: tuple[float, Stall] | None = None  # the beat a stall was seen at, and what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="courriel-watchdog", daemon=True)
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._record(time.monotonic())
        self._thread.start()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _record(self, now: float) -> None:
        self._beat = now
        self.table.beat(self.slot, now)
        assert self._loop is not None
        self._handle = self._loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        late = now - self._beat - self.interval
        if late > self.threshold:
            seen = self._seen
            stall = seen[1] if seen is not None and seen[0] == self._beat else Stall()
            self.stalls += 1
            fields = stall.fields() or {"command": "unknown (not seen while it lasted)"}
            log.warning("event loop stalled", extra=kv(seconds=round(late, 3), **fields))
        self._record(now)

    def _watch(self) -> None:
        poll = max(0.002, min(0.025, self.threshold / 8))
        while not self._stop.wait(poll):
            beat = self._beat
            overdue = time.monotonic() - beat - self.interval
            if overdue > self.threshold / 2 and (self._seen is None or self._seen[0] != beat):
                stall = self._describe()
                self._seen = (beat, stall)
                self.table.note_stall(self.slot, beat, stall.text())
            if os.getppid() != self._parent and self._orphaned is not None:
                orphaned, self._orphaned = self._orphaned, None
                orphaned()
