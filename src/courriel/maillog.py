"""The recent mail events (deliveries, refusals, relays) for the web admin, off the hot path.

Theory of operation
-------------------
SMTP sessions and the queue worker call ``record`` as mail is delivered, refused, relayed or
given up on. ``record`` never waits: it appends to a bounded buffer and makes sure one
background task will write it; that task waits ``FLUSH_SECONDS``, so events of many sessions
go to the store together, in one transaction (``Store.add_mail_events``), riding on the group
commit instead of adding a write to every message. If the buffer fills (the store is down), the
oldest events are dropped and counted in the log: this table says what happened lately, the
log keeps everything. ``close`` writes what is left at shutdown.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time

from courriel.store.access import NewMailEvent
from courriel.store.base import Store, StoreError

log = logging.getLogger("courriel.maillog")

FLUSH_SECONDS = 0.5
MAX_PENDING = 1000
MAX_TEXT = 500  # each text field is cut to this many characters


class MailLog:
    def __init__(self, store: Store, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._store = store
        self._flush_seconds = flush_seconds
        self._pending: collections.deque[NewMailEvent] = collections.deque(maxlen=MAX_PENDING)
        self._dropped = 0
        self._task: asyncio.Task[None] | None = None

    def record(self, kind: str, sender: str, recipient: str, detail: str) -> None:
        if len(self._pending) == MAX_PENDING:
            self._dropped += 1
        event = NewMailEvent(
            int(time.time()), kind, sender[:MAX_TEXT], recipient[:MAX_TEXT], detail[:MAX_TEXT]
        )
        self._pending.append(event)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._flush_seconds)
        await self.flush()

    async def flush(self) -> None:
        batch = list(self._pending)
        self._pending.clear()
        if self._dropped:
            log.warning("mail events dropped: the store was not keeping up", extra={})
            self._dropped = 0
        if not batch:
            return
        try:
            await self._store.add_mail_events(batch)
        except StoreError as e:
            log.warning("mail events not written: %s", e)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
