"""Time slices: long work done on the event loop hands it back every few milliseconds.

Theory of operation
-------------------
Every connection of a process shares one event loop, so a task that computes for 200 ms
delays every other client by 200 ms. Work whose length a client controls (a pipelined batch
of thousands of commands, a SEARCH over a large mailbox, compressing a large response) is cut
into steps, and after each step the task calls ``await slice.step()``. That costs one clock
read; once the task has held the loop for ``budget`` seconds since it last gave it up, it
yields for ``PAUSE`` (``asyncio.sleep``), so every other ready task runs before it continues,
and the store's reader threads get the interpreter while the loop waits.

A task that waits for I/O gives up the loop anyway: ``restart`` after such a wait starts a
fresh budget, so a command that arrives after a read is not made to yield at once.

Work that cannot be cut into small steps (searching one 50 MB message) goes to a thread
instead (``offload``); the loop then only waits for the result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

BUDGET = 0.005  # seconds a task may hold the loop before it yields (well under a client's p99)
# A task that used its whole slice then waits this long. sleep(0) alone would let the loop run
# the next ready task at once, and a loop that is never idle never releases the interpreter
# lock to the threads that do store reads, so every read would wait for a forced switch (5 ms).
PAUSE = 0.001
OFFLOAD_BYTES = 1 << 20  # a message at least this large is searched in a thread


class TimeSlice:
    """The time one task has held the loop since it last yielded."""

    __slots__ = ("_budget", "_since")

    def __init__(self, budget: float = BUDGET) -> None:
        self._budget = budget
        self._since = time.monotonic()

    def restart(self) -> None:
        """The task just waited (a read, a store call that suspended): a fresh budget."""
        self._since = time.monotonic()

    @property
    def spent(self) -> bool:
        return time.monotonic() - self._since >= self._budget

    async def step(self) -> None:
        """Yields to the loop if the budget is spent; otherwise returns at once."""
        if time.monotonic() - self._since >= self._budget:
            await asyncio.sleep(PAUSE)
            self._since = time.monotonic()


async def offload(fn: Callable[[], T], *, heavy: bool) -> T:
    """``fn()`` in a worker thread when ``heavy``, else inline (a thread hop is not free)."""
    if heavy:
        return await asyncio.to_thread(fn)
    return fn()
