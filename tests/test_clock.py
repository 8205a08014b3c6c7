"""The clocks: the system one reads real time; the manual one moves only when told, in order."""

from __future__ import annotations

import asyncio
import time

import pytest

from courriel.clock import MANUAL_START, SYSTEM_CLOCK, ManualClock


async def test_the_system_clock_is_real_time() -> None:
    before_wall, before_mono = time.time(), time.monotonic()
    await SYSTEM_CLOCK.sleep(0.02)
    assert before_wall < SYSTEM_CLOCK.now() <= time.time()
    assert SYSTEM_CLOCK.monotonic() - before_mono >= 0.015  # the loop may wake a little early


async def test_manual_time_moves_only_in_advance() -> None:
    clock = ManualClock()
    assert (clock.now(), clock.monotonic()) == (MANUAL_START, 0.0)
    await asyncio.sleep(0.01)
    assert clock.now() == MANUAL_START
    await clock.advance(90.5)
    assert (clock.now(), clock.monotonic()) == (MANUAL_START + 90.5, 90.5)
    with pytest.raises(ValueError):
        await clock.advance(-1)


async def test_sleepers_wake_at_their_deadlines_in_order() -> None:
    clock = ManualClock(start=0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 30), ("a", 10), ("b", 10))]
    await clock.wait_for_sleepers(3)
    await clock.advance(9.9)
    assert woke == []
    await clock.advance(0.1)
    assert woke == [("a", 10.0), ("b", 10.0)]  # same deadline: the order they went to sleep
    await clock.advance(100)
    assert woke[-1] == ("c", 30.0)  # woken at its deadline, not at the end of the step
    assert clock.now() == 110.0
    await asyncio.gather(*tasks)


async def test_a_loop_sleeping_on_the_clock_runs_once_per_period() -> None:
    clock = ManualClock(start=0.0)
    ticks: list[float] = []

    async def every_ten_seconds() -> None:
        while True:
            await clock.sleep(10)
            await asyncio.sleep(0)  # some work that yields before the next sleep
            ticks.append(clock.now())

    task = asyncio.create_task(every_ten_seconds())
    await clock.wait_for_sleepers(1)
    await clock.advance(45)
    assert ticks == [10.0, 20.0, 30.0, 40.0]
    task.cancel()
    await asyncio.wait([task])
    assert clock.sleepers == 0
    await clock.advance(100)  # the cancelled sleep is skipped
    assert ticks == [10.0, 20.0, 30.0, 40.0]


async def test_waiting_for_a_sleeper_that_never_comes_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import courriel.clock

    monkeypatch.setattr(courriel.clock, "_REAL_WAIT", 0.05)
    with pytest.raises(RuntimeError, match="1 task"):
        await ManualClock().wait_for_sleepers(1)
