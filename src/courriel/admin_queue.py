"""The outbound queue operations shared by ``courriel queue``, the web admin and the JSON API.

Theory of operation
-------------------
Each operation is one store call (``courriel.store.queue.QueueStore``). One that makes entries
due (retry, flush, release, bounce) then publishes a ``ChangeKind.QUEUE_WAKE`` change through
the store's ``Events``, after its commit, so the queue worker of every serving process looks
at once, on SQLite as on PostgreSQL; were the hint lost, the workers still find the entries at
their next poll. An unknown id is ``NotFound`` (the command line prints it as one line with
status 1; the web shows it on the page).
"""

from __future__ import annotations

import time

from courriel.store.base import QUEUE_EVENTS, Change, ChangeKind, Store
from courriel.store.queue import QueuedMessage

BOUNCED = "returned to the sender by the postmaster"


def entry_id(text: str) -> str:
    return text.strip().upper()


async def wake(store: Store) -> None:
    """Tells the serving processes that entries are due now."""
    await store.events.publish(Change(QUEUE_EVENTS, 0, ChangeKind.QUEUE_WAKE))


async def entries(store: Store) -> list[QueuedMessage]:
    return await store.queue.list_entries()


async def retry(store: Store, ident: str | None) -> int:
    """The waiting recipients of one entry (``None``: of all) are due now; how many entries."""
    n = await store.queue.retry(None if ident is None else entry_id(ident), time.time())
    await wake(store)
    return n


async def hold(store: Store, ident: str, held: bool) -> None:
    await store.queue.hold(entry_id(ident), held, time.time())
    if not held:
        await wake(store)


async def remove(store: Store, ident: str) -> None:
    """Deleted; nobody is told."""
    await store.queue.remove(entry_id(ident))


async def bounce(store: Store, ident: str) -> None:
    await store.queue.bounce(entry_id(ident), BOUNCED, time.time())
    await wake(store)
