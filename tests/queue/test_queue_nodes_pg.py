"""Two courriel nodes on one PostgreSQL database, each with its own queue worker: every
recipient is delivered exactly once, whichever node leases its entry."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from courriel.config import QueueConfig
from courriel.queue.outbound import Envelope, Recipient
from courriel.queue.worker import Worker
from courriel.store.postgres import PostgresStore, open_postgres_url
from courriel.testing import pg
from courriel.testing.transports import ScriptedTransport

MESSAGE = b"From: a@example.test\r\nSubject: shared\r\n\r\nbody\r\n"
ENTRIES = 40


@pytest.fixture
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[list[PostgresStore]]:
    server = await pg.require_server(request)
    async with pg.temporary_database(server) as url:
        stores = [await open_postgres_url(url, pool_size=4) for _ in range(2)]
        try:
            yield stores
        finally:
            for store in stores:
                await store.close()


@pytest.mark.postgres
async def test_two_nodes_deliver_each_recipient_once(nodes: list[PostgresStore]) -> None:
    transports = [ScriptedTransport(), ScriptedTransport()]
    cfg = QueueConfig(concurrency=8, poll_seconds=0.05)
    pairs = zip(nodes, transports, strict=True)
    workers = [Worker(store, t, cfg, "mail.example.test") for store, t in pairs]
    for n in range(ENTRIES):
        rcpts = (Recipient(f"r{n}@example.net"), Recipient(f"s{n}@example.org"))
        await workers[n % 2].outbound.enqueue(Envelope("a@example.test", rcpts), MESSAGE)
    loops = [asyncio.create_task(w.run()) for w in workers]
    try:
        async with asyncio.timeout(30):
            # Polled: two nodes' workers empty the queue between them, no one event says so.
            while await nodes[0].queue.list_entries():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        for w in workers:
            await w.stop()
        await asyncio.gather(*loops)
    counts = Counter(r.address for t in transports for c in t.calls for r in c.message.recipients)
    assert len(counts) == 2 * ENTRIES
    assert set(counts.values()) == {1}  # nobody twice
    assert all(t.calls for t in transports)  # and both nodes did their share
