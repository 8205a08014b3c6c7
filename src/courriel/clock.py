"""Time as a parameter: the wall clock, a monotonic clock and sleeping, behind one small protocol.

Theory of operation
-------------------
Whatever expires or counts in windows (store leases, rate counters, remembered keys, the POP3
maildrop lock's renewals, the failed-login limiter and its delay) takes a ``Clock`` instead of
calling ``time`` and ``asyncio.sleep`` itself. Production passes ``SYSTEM_CLOCK`` (the default
everywhere); tests pass a ``ManualClock``, whose time moves only when the test calls
``advance``, so a test of a 30-second lease takes no time and cannot be flaky under load.

``now()`` is wall time in seconds since the epoch: what the store writes into rows that other
processes and machines compare (lease expiries, counter buckets), so every node must agree on it.
``monotonic()`` never goes back and is only meaningful within one process (durations, deadlines).
``sleep(seconds)`` waits on this clock's time.

``ManualClock.advance(seconds)`` moves both times forward and wakes the sleepers whose deadlines
fall within the step in deadline order: time stops at each deadline, and the tasks woken there
run until each of them sleeps on this clock again or ends, before time moves on. So a renewal
loop that sleeps 10 s between store writes makes exactly ten writes in ``advance(100)``, each one
seeing the time it would see in production. A woken task that then waits on something else
(a socket, a queue) would hold ``advance`` up: use a ``ManualClock`` only for tasks that sleep
on it or finish. ``wait_for_sleepers(n)`` lets a test wait until a task it started is asleep
(a renewer just created, a login delay under way) before it moves time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# A ManualClock waits for tasks (never for its own time) at most this long in real seconds, so
# a test whose task never goes to sleep fails with a message instead of hanging.
_REAL_WAIT = 10.0
# 2023-11-14T22:13:20Z: a fixed, unremarkable start, so tests see the same times on every run.
MANUAL_START = 1_700_000_000.0


class Clock(Protocol):
    def now(self) -> float:
        """Wall time, seconds since the epoch: comparable across processes and machines."""
        ...

    def monotonic(self) -> float:
        """Seconds that never go back, comparable within this process only."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Returns once ``seconds`` of this clock's time have passed."""
        ...


class SystemClock:
    """The real clocks: ``time.time``, ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


@dataclass(order=True, slots=True)
class _Sleeper:
    deadline: float
    seq: int  # sleepers with one deadline wake in the order they went to sleep
    future: asyncio.Future[None] = field(compare=False)
    task: asyncio.Task[Any] | None = field(compare=False)


class ManualClock:
    """A clock for tests: time moves only in ``advance`` (see the module docstring)."""

    def __init__(self, start: float = MANUAL_START) -> None:
        self._start = start
        self._elapsed = 0.0
        self._sleepers: list[_Sleeper] = []  # a heap, earliest deadline first
        self._seq = itertools.count()
        self._changed = asyncio.Event()  # set when a task goes to sleep or a woken task ends

    def now(self) -> float:
        return self._start + self._elapsed

    def monotonic(self) -> float:
        return self._elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sleeper = _Sleeper(self._elapsed + seconds, next(self._seq), future, asyncio.current_task())
        heapq.heappush(self._sleepers, sleeper)
        self._changed.set()
        await future  # a cancelled sleep cancels the future; advance skips it

    @property
    def sleepers(self) -> int:
        """How many tasks are asleep on this clock now."""
        return sum(not s.future.done() for s in self._sleepers)

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Returns once at least ``count`` tasks are asleep on this clock."""
        await self._wait_until(lambda: self.sleepers >= count, f"{count} task(s) asleep")

    async def advance(self, seconds: float) -> None:
        """Moves time forward by ``seconds``, waking sleepers at their deadlines in order."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        target = self._elapsed + seconds
        while True:
            while self._sleepers and self._sleepers[0].future.done():
                heapq.heappop(self._sleepers)  # cancelled while asleep
            if not self._sleepers or self._sleepers[0].deadline > target:
                break
            deadline = self._sleepers[0].deadline
            self._elapsed = max(self._elapsed, deadline)
            woken: list[asyncio.Task[Any]] = []
            while self._sleepers and self._sleepers[0].deadline <= deadline:
                sleeper = heapq.heappop(self._sleepers)
                if not sleeper.future.done():
                    sleeper.future.set_result(None)
                    if sleeper.task is not None:
                        woken.append(sleeper.task)
            await self._until_parked(woken)
        self._elapsed = target

    def _asleep(self, task: asyncio.Task[Any]) -> bool:
        return any(s.task is task and not s.future.done() for s in self._sleepers)

    async def _until_parked(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Waits until each task is asleep on this clock again or has ended."""

        def poke(_: object) -> None:
            self._changed.set()

        for task in tasks:
            task.add_done_callback(poke)
        try:
            await self._wait_until(
                lambda: all(t.done() or self._asleep(t) for t in tasks),
                "the woken tasks asleep again or ended",
            )
        finally:
            for task in tasks:
                task.remove_done_callback(poke)

    async def _wait_until(self, ready: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(_REAL_WAIT):
                while True:
                    self._changed.clear()
                    if ready():
                        return
                    await self._changed.wait()
        except TimeoutError:
            raise RuntimeError(f"ManualClock: not {what} after {_REAL_WAIT} real seconds") from None
