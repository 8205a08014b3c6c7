"""Remembered keys: facts with an expiry that every process must see (known login addresses).

The ``store`` fixture runs on a ManualClock: expiries are checked by moving it, to the second."""

from __future__ import annotations

from courriel.clock import ManualClock
from courriel.store.base import Store


async def test_a_remembered_key_is_kept_until_it_expires(store: Store, clock: ManualClock) -> None:
    assert await store.remembered("login-ok:alice|ip:192.0.2.1") is None
    await store.remember("login-ok:alice|ip:192.0.2.1", 3600)
    until = clock.now() + 3600
    assert await store.remembered("login-ok:alice|ip:192.0.2.1") == until
    assert await store.remembered("login-ok:alice|ip:192.0.2.2") is None
    await clock.advance(3600)
    assert await store.remembered("login-ok:alice|ip:192.0.2.1") == until  # the last second
    await clock.advance(1)
    assert await store.remembered("login-ok:alice|ip:192.0.2.1") is None


async def test_remembering_again_moves_the_expiry(store: Store, clock: ManualClock) -> None:
    await store.remember("k", 60)
    await store.remember("k", 3600)
    await clock.advance(61)
    assert await store.remembered("k") == clock.now() - 61 + 3600


async def test_an_expired_key_is_forgotten_and_swept(store: Store, clock: ManualClock) -> None:
    await store.remember("k", 60)
    await clock.advance(61)
    assert await store.remembered("k") is None
    await store.bump_counter("other", 60)  # the sweep of old buckets removes it too
    assert await store.remembered("k") is None


async def test_remembered_keys_do_not_disturb_counters(store: Store) -> None:
    await store.remember("k", 3600)
    assert await store.read_counter("k", 60) == 0
    assert await store.bump_counter("k", 60) == 1
    assert await store.remembered("k") is not None
