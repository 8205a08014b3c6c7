"""The queue worker inside a serving courriel: it stops with the server, even mid-delivery,
and the message stays queued for the next start."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from courriel.store.base import Store
from courriel.store.queue import QueuedMessage, RecipientState
from courriel.testing.fill import on_store
from courriel.testing.outbound import PASSWORD, fast_queue, submit, wait_until
from courriel.testing.server import start_server
from courriel.testing.transports import ScriptedTransport


def test_shutdown_during_a_delivery_keeps_the_message_queued(tmp_path: Path) -> None:
    transport = ScriptedTransport(gate=asyncio.Event())  # never opened: the delivery hangs
    server = start_server(tmp_path, transport=transport, extra_config=fast_queue())
    try:
        alice = server.add_user("alice@example.test", PASSWORD)
        queue_id = submit(server, alice, "bob@example.net", "interrupted")
        wait_until("the delivery started", lambda: transport.in_flight == 1)
    finally:
        started = time.monotonic()
        server.stop()
    # The grace time of the test configuration (2 s) bounds the wait for the delivery.
    assert time.monotonic() - started < 2 + 5
    assert transport.closed

    async def read(store: Store) -> list[QueuedMessage]:
        return await store.queue.list_entries()

    [entry] = on_store(server.cfg, read)
    assert entry.id == queue_id and entry.lease_owner is None  # given back on the way out
    [r] = entry.recipients
    assert r.state is RecipientState.QUEUED and r.attempts == 0
