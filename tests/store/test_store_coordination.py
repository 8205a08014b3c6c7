"""Leases and rate counters: shared state that must work across processes, so it is in the store.

The ``store`` fixture runs on a ManualClock: expiries are checked by moving it, to the second."""

from __future__ import annotations

import asyncio
from typing import Protocol

from courriel.clock import ManualClock
from courriel.store.base import Store


class Backend(Protocol):
    async def open(self) -> Store: ...


async def test_lease_has_one_owner_until_released(store: Store) -> None:
    assert await store.acquire_lease("pop3:1", "a", 30)
    assert not await store.acquire_lease("pop3:1", "b", 30)
    assert await store.acquire_lease("pop3:1", "a", 30)  # renewal by the holder
    await store.release_lease("pop3:1", "b")  # not the holder: nothing happens
    assert not await store.acquire_lease("pop3:1", "b", 30)
    await store.release_lease("pop3:1", "a")
    assert await store.acquire_lease("pop3:1", "b", 30)


async def test_leases_are_independent_by_name(store: Store) -> None:
    assert await store.acquire_lease("pop3:1", "a", 30)
    assert await store.acquire_lease("pop3:2", "b", 30)


async def test_expired_lease_can_be_taken(store: Store, clock: ManualClock) -> None:
    assert await store.acquire_lease("pop3:1", "crashed", 30)
    await clock.advance(29)
    assert not await store.acquire_lease("pop3:1", "b", 30)
    await clock.advance(1.5)
    assert await store.acquire_lease("pop3:1", "b", 30)


async def test_a_renewal_moves_the_expiry(store: Store, clock: ManualClock) -> None:
    assert await store.acquire_lease("pop3:1", "a", 30)
    await clock.advance(20)
    assert await store.acquire_lease("pop3:1", "a", 30)  # now held until 50
    await clock.advance(20)
    assert not await store.acquire_lease("pop3:1", "b", 30)
    await clock.advance(11)
    assert await store.acquire_lease("pop3:1", "b", 30)


async def test_leases_expire_on_the_real_clock_by_default(backend: Backend) -> None:
    # The one test of the wiring to real time: a store opened without a clock uses the system's.
    store = await backend.open()
    try:
        assert await store.acquire_lease("pop3:1", "crashed", 0.05)
        assert not await store.acquire_lease("pop3:1", "b", 30)
        await asyncio.sleep(0.1)
        assert await store.acquire_lease("pop3:1", "b", 30)
    finally:
        await store.close()


async def test_racing_acquirers_get_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.acquire_lease("x", f"o{i}", 30) for i in range(20)))
    assert results.count(True) == 1


async def test_counter_counts_per_key_within_a_window(store: Store) -> None:
    assert await store.read_counter("auth:1.2.3.4", 3600) == 0
    counts = [await store.bump_counter("auth:1.2.3.4", 3600) for _ in range(3)]
    assert counts == [1, 2, 3]
    assert await store.read_counter("auth:1.2.3.4", 3600) == 3
    assert await store.bump_counter("auth:other", 3600) == 1


async def test_concurrent_bumps_lose_nothing(store: Store) -> None:
    counts = await asyncio.gather(*(store.bump_counter("k", 3600) for _ in range(25)))
    assert sorted(counts) == list(range(1, 26))


async def test_counter_starts_again_in_a_new_window(store: Store, clock: ManualClock) -> None:
    # Fixed windows: counts start again at each multiple of the window, whenever the first came.
    await clock.advance(60 - clock.now() % 60 + 50)  # 10 s before a window ends
    assert await store.bump_counter("k", 60) == 1
    await clock.advance(9)
    assert await store.bump_counter("k", 60) == 2
    await clock.advance(1)
    assert await store.read_counter("k", 60) == 0
    assert await store.bump_counter("k", 60) == 1
    await clock.advance(59.5)
    assert await store.read_counter("k", 60) == 1
