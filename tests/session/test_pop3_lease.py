"""The maildrop lock as a store lease: renewed while the session lives, expiring after a crash."""

from __future__ import annotations

import asyncio

import pytest

from courriel.session.pop3_maildrop import MaildropLock, unique_id
from courriel.store.base import Store, User


@pytest.fixture
async def alice(store: Store) -> User:
    await store.add_domain("example.test")
    return await store.add_user("alice@example.test", "unused-hash")


async def test_lock_is_renewed_while_held_and_free_after_release(store: Store, alice: User) -> None:
    lock = MaildropLock(store, alice.id, "session-a", seconds=0.3)
    assert await lock.acquire()
    await asyncio.sleep(1.0)  # three lease lifetimes: only renewal keeps it
    assert not await store.acquire_lease(f"pop3:{alice.id}", "session-b", 0.3)
    assert not lock.lost
    await lock.release()
    assert await store.acquire_lease(f"pop3:{alice.id}", "session-b", 0.3)


async def test_a_crashed_holder_loses_the_lock_when_the_lease_runs_out(
    store: Store, alice: User
) -> None:
    # Another node took the lease and died: nobody renews it.
    assert await store.acquire_lease(f"pop3:{alice.id}", "dead-node", 0.2)
    lock = MaildropLock(store, alice.id, "session-a", seconds=5)
    assert not await lock.acquire()
    await asyncio.sleep(0.3)
    assert await lock.acquire()
    await lock.release()


async def test_a_lease_taken_over_after_a_stall_is_reported_lost(store: Store, alice: User) -> None:
    lock = MaildropLock(store, alice.id, "session-a", seconds=0.3)
    assert await lock.acquire()
    # As if this process stalled past the lease and another session took the maildrop.
    await store.release_lease(lock.name, lock.owner)
    assert await store.acquire_lease(lock.name, "session-b", 60)
    await asyncio.sleep(0.25)
    assert lock.lost
    await lock.release()  # must not take the other session's lease away
    assert not await store.acquire_lease(lock.name, "session-c", 60)


def test_unique_ids_follow_dovecots_default_format() -> None:
    # %08Xu%08Xv: UID then UIDVALIDITY, eight upper-case hex digits each.
    assert unique_id(uidvalidity=0x5F3A01, uid=0x1C) == "0000001C005F3A01"
    assert unique_id(uidvalidity=4294967295, uid=4294967295) == "FFFFFFFFFFFFFFFF"
    assert len({unique_id(7, uid) for uid in range(1, 500)}) == 499
