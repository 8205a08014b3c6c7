"""The maildrop lock as a store lease: renewed while the session lives, expiring after a crash.

The store and the lock share a ManualClock: a lease of 30 s is tested by moving the clock, and the
renewer's writes happen at the times they would in production (every 10 s)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courriel.clock import ManualClock
from courriel.session.pop3_maildrop import MaildropLock, unique_id
from courriel.store.base import Store, User
from courriel.store.sqlite import open_sqlite


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def store(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Store]:
    s = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs", clock=clock)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def alice(store: Store) -> User:
    await store.add_domain("example.test")
    return await store.add_user("alice@example.test", "unused-hash")


async def test_lock_is_renewed_while_held_and_free_after_release(
    store: Store, alice: User, clock: ManualClock
) -> None:
    lock = MaildropLock(store, alice.id, "session-a", seconds=30, clock=clock)
    assert await lock.acquire()
    await clock.wait_for_sleepers(1)  # the renewer is waiting for its first tick
    await clock.advance(100)  # over three lease lifetimes: only the renewals keep it
    assert not await store.acquire_lease(f"pop3:{alice.id}", "session-b", 30)
    assert not lock.lost
    await lock.release()
    assert clock.sleepers == 0  # the renewer is gone
    assert await store.acquire_lease(f"pop3:{alice.id}", "session-b", 30)


async def test_an_unrenewed_lease_runs_out(store: Store, alice: User, clock: ManualClock) -> None:
    # What the renewer prevents: the same lease, never renewed, is free after its lifetime.
    assert await store.acquire_lease(f"pop3:{alice.id}", "session-a", 30)
    await clock.advance(31)
    assert await store.acquire_lease(f"pop3:{alice.id}", "session-b", 30)


async def test_a_crashed_holder_loses_the_lock_when_the_lease_runs_out(
    store: Store, alice: User, clock: ManualClock
) -> None:
    # Another node took the lease and died: nobody renews it.
    assert await store.acquire_lease(f"pop3:{alice.id}", "dead-node", 60)
    lock = MaildropLock(store, alice.id, "session-a", seconds=30, clock=clock)
    assert not await lock.acquire()
    await clock.advance(59)
    assert not await lock.acquire()
    await clock.advance(2)
    assert await lock.acquire()
    await lock.release()


async def test_a_lease_taken_over_after_a_stall_is_reported_lost(
    store: Store, alice: User, clock: ManualClock
) -> None:
    lock = MaildropLock(store, alice.id, "session-a", seconds=30, clock=clock)
    assert await lock.acquire()
    await clock.wait_for_sleepers(1)
    # As if this process stalled past the lease and another session took the maildrop.
    await store.release_lease(lock.name, lock.owner)
    assert await store.acquire_lease(lock.name, "session-b", 60)
    await clock.advance(9)
    assert not lock.lost  # the renewer has not looked yet
    await clock.advance(1)  # its first tick, a third of the lease
    assert lock.lost
    assert clock.sleepers == 0  # a lost lock is not renewed any more
    await lock.release()  # must not take the other session's lease away
    assert not await store.acquire_lease(lock.name, "session-c", 60)


async def test_the_lock_renews_on_the_real_clock_by_default(tmp_path: Path) -> None:
    # The one test of the wiring to real time: the lease outlives its lifetime by renewals.
    store = await open_sqlite(tmp_path / "real.db", tmp_path / "real-blobs")
    try:
        await store.add_domain("example.test")
        user = await store.add_user("alice@example.test", "unused-hash")
        lock = MaildropLock(store, user.id, "session-a", seconds=0.3)
        assert await lock.acquire()
        await asyncio.sleep(0.65)  # over two lifetimes
        assert not await store.acquire_lease(lock.name, "session-b", 0.3)
        assert not lock.lost
        await lock.release()
    finally:
        await store.close()


def test_unique_ids_follow_dovecots_default_format() -> None:
    # %08Xu%08Xv: UID then UIDVALIDITY, eight upper-case hex digits each.
    assert unique_id(uidvalidity=0x5F3A01, uid=0x1C) == "0000001C005F3A01"
    assert unique_id(uidvalidity=4294967295, uid=4294967295) == "FFFFFFFFFFFFFFFF"
    assert len({unique_id(7, uid) for uid in range(1, 500)}) == 499
