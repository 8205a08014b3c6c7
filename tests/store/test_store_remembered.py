"""Remembered keys: facts with an expiry that every process must see (known login addresses)."""

from __future__ import annotations

import asyncio
import time

from courriel.store.base import Store


async def test_a_remembered_key_is_kept_until_it_expires(store: Store) -> None:
    assert await store.remembered("login-ok:alice|ip:192.0.2.1") is None
    before = time.time()
    await store.remember("login-ok:alice|ip:192.0.2.1", 3600)
    until = await store.remembered("login-ok:alice|ip:192.0.2.1")
    assert until is not None and before + 3600 <= until <= time.time() + 3600
    assert await store.remembered("login-ok:alice|ip:192.0.2.2") is None


async def test_remembering_again_moves_the_expiry(store: Store) -> None:
    await store.remember("k", 0.05)
    await store.remember("k", 3600)
    await asyncio.sleep(0.1)
    assert await store.remembered("k") is not None


async def test_an_expired_key_is_forgotten_and_swept(store: Store) -> None:
    await store.remember("k", 0.05)
    await asyncio.sleep(0.1)
    assert await store.remembered("k") is None
    await store.bump_counter("other", 60)  # the sweep of old buckets removes it too
    assert await store.remembered("k") is None


async def test_remembered_keys_do_not_disturb_counters(store: Store) -> None:
    await store.remember("k", 3600)
    assert await store.read_counter("k", 60) == 0
    assert await store.bump_counter("k", 60) == 1
    assert await store.remembered("k") is not None
