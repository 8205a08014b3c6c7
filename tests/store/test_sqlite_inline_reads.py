"""SQLite reads run on the event loop until they overrun their budget, then finish in a thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from courriel.store.base import StoreError
from courriel.store.sql import Query, Script
from courriel.store.sqlite import SqliteStore

# A query that takes far longer than INLINE_BUDGET: counts to a million in SQLite's VM.
SLOW = Query(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)"
    " SELECT count(*) FROM n"
)


def threads_used(into: set[str]) -> Script[None]:
    yield Query("SELECT 1")
    into.add(threading.current_thread().name)


def domain_count() -> Query:
    return Query("SELECT count(*) FROM domains")


def snapshot_across_hand_off(db: str) -> Script[tuple[int, int, int, set[str]]]:
    """Counts domains, inserts one from another connection, runs a slow query, counts again."""
    where = {threading.current_thread().name}
    before = (yield domain_count())[0][0]
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("INSERT INTO domains (name) VALUES ('later.example')")
    finally:
        other.close()
    slow = (yield SLOW)[0][0]
    where.add(threading.current_thread().name)
    after = (yield domain_count())[0][0]
    return before, after, slow, where


def failing() -> Script[None]:
    yield Query("SELECT 1")
    raise StoreError("no such thing")


async def test_a_point_read_stays_on_the_loop(sq: SqliteStore) -> None:
    seen: set[str] = set()
    await sq.driver.read(threads_used(seen))
    assert seen == {threading.current_thread().name}


async def test_a_slow_read_moves_to_a_thread_and_keeps_its_snapshot(sq: SqliteStore) -> None:
    before, after, slow, where = await sq.driver.read(snapshot_across_hand_off(str(sq.path)))
    assert slow == 1_000_000
    assert after == before  # the insert committed meanwhile is not in this read's snapshot
    assert len(where) == 2 and threading.current_thread().name in where  # loop, then a thread
    fresh = await sq.driver.read(count_domains())
    assert fresh == before + 1  # a new read sees it


def count_domains() -> Script[int]:
    return (yield domain_count())[0][0]


async def test_a_slow_read_does_not_hold_the_loop(sq: SqliteStore) -> None:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    for _ in range(3):
        await sq.driver.read(single(SLOW))
    took = time.perf_counter() - started
    stop.set()
    await tick
    assert took > 0.05  # the reads really were slow ...
    # ... and the loop kept turning: no gap near the length of one read (budget 2 ms, plus noise).
    assert max(gaps) < min(0.05, took / 3), (max(gaps), took)


def single(query: Query) -> Script[int]:
    return (yield query)[0][0]


async def test_script_errors_reach_the_caller_and_free_the_connection(sq: SqliteStore) -> None:
    for _ in range(3):
        with pytest.raises(StoreError, match="no such thing"):
            await sq.driver.read(failing())
    assert await sq.driver.read(count_domains()) >= 0
    assert len(sq.driver._idle) == 1  # one connection served all of them, none leaked


async def test_cancelled_hand_off_returns_its_connection_only_when_done(sq: SqliteStore) -> None:
    task = asyncio.create_task(sq.driver.read(single(SLOW)))
    await asyncio.sleep(0.01)  # inline part over, the thread is running the slow query
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sq.driver._idle == []  # still in the thread's hands
    async with asyncio.timeout(10):
        while not sq.driver._idle:  # noqa: ASYNC110 - released by the thread's completion
            await asyncio.sleep(0.01)
    assert await sq.driver.read(count_domains()) >= 0
