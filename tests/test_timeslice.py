"""Time slices: a long loop that steps its slice lets other tasks run every few ms."""

from __future__ import annotations

import asyncio
import threading
import time

from courriel.timeslice import TimeSlice, offload


async def test_a_busy_task_that_steps_lets_others_run() -> None:
    gaps: list[float] = []
    done = asyncio.Event()

    async def other() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def busy() -> None:
        turn = TimeSlice(budget=0.002)
        end = time.monotonic() + 0.2
        while time.monotonic() < end:  # 200 ms of work, never awaiting anything else
            sum(range(1000))
            await turn.step()
        done.set()

    await asyncio.gather(other(), busy())
    assert len(gaps) > 20  # the other task ran all along, not once at the end
    assert max(gaps) < 0.1


async def test_step_is_free_until_the_budget_is_spent() -> None:
    turn = TimeSlice(budget=60.0)
    loop_ran = False

    def mark() -> None:
        nonlocal loop_ran
        loop_ran = True

    asyncio.get_running_loop().call_soon(mark)
    for _ in range(1000):
        await turn.step()
    assert not loop_ran  # never yielded: no other callback had a turn
    assert not turn.spent


def test_restart_gives_a_fresh_budget() -> None:
    turn = TimeSlice(budget=0.01)
    end = time.monotonic() + 0.02
    while time.monotonic() < end:
        pass
    assert turn.spent
    turn.restart()
    assert not turn.spent


async def test_offload_runs_heavy_work_in_a_thread() -> None:
    here = threading.get_ident()
    assert await offload(threading.get_ident, heavy=False) == here
    assert await offload(threading.get_ident, heavy=True) != here
