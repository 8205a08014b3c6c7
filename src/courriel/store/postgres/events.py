"""Change events across courriel nodes: PostgreSQL LISTEN/NOTIFY on one channel.

Theory of operation
-------------------
``PgEvents`` is ``LocalEvents`` (per-user fan-out with bounded backlogs and RESYNC on overflow)
plus two tasks per process, each running only while it has work:

* the *sender*: ``publish`` delivers a change to this process's subscribers at once and queues
  it for the other nodes; the sender ships the queue in order, many changes per statement
  (``pg_notify`` over an array), on a pooled connection. Payload: ``<node id> <encode_change>``.
* the *listener*, started by the first ``subscribe`` (a node without sessions needs none): one
  dedicated connection (not from the pool) that has run ``LISTEN``; each
  notification from another node is decoded and fanned out locally (this node's own are skipped:
  its subscribers had them already). A lost connection is noticed at once (termination callback)
  or by a keep-alive query, and re-established with backoff; after a reconnect every subscriber
  gets a RESYNC change, because notifications sent meanwhile are gone.

NOTIFY runs *after* the commit of the write it describes (the store publishes after commit),
not inside its transaction: a notifying transaction holds a database-wide lock from its
pre-commit to the end of its COMMIT, which would serialise the WAL flushes of concurrent
writers and undo PostgreSQL's group commit. So a change reaches other nodes only after its commit
(never a change that was rolled back), a few milliseconds later. If the node dies between the
commit and the NOTIFY, other nodes miss that hint until the next change of the mailbox or their
next resynchronisation; a change is only a hint (``courriel.store.events``), never the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque

import asyncpg

from courriel.store.base import Change
from courriel.store.events import (
    DEFAULT_BACKLOG,
    MAX_PAYLOAD,
    LocalEvents,
    LocalSubscription,
    decode_change,
)
from courriel.store.events import encode_change as _encode
from courriel.store.events import resync as _resync
from courriel.store.postgres.driver import LOST

_log = logging.getLogger(__name__)

CHANNEL = "courriel_changes"
KEEPALIVE = 5.0  # seconds between checks that the listening connection still answers
_MAX_BACKOFF = 5.0
_BATCH = 200
_NODE_LEN = 32


class PgEvents(LocalEvents):
    """``Events`` shared by every node on one database; see the module docstring."""

    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        *,
        backlog: int = DEFAULT_BACKLOG,
        keepalive: float = KEEPALIVE,
    ) -> None:
        super().__init__(backlog=backlog)
        self.node = uuid.uuid4().hex
        self.reconnects = 0  # listening connections re-established after a loss
        self._dsn = dsn
        self._pool = pool
        self._keepalive = keepalive
        self._outbox: deque[str] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._missed = False  # a subscriber gave up waiting for LISTEN: resync when it is up
        self._closed = False

    async def subscribe(self, user_id: int) -> LocalSubscription:
        sub = await super().subscribe(user_id)
        await self._ensure_listening()
        return sub

    async def _ensure_listening(self) -> None:
        """Starts the listener with the first subscription; waits (bounded) for its LISTEN."""
        if self._listener is None and not self._closed:
            self._listener = asyncio.create_task(self._listen_forever(), name="courriel-pg-listen")
        if self._listening.is_set():
            return
        try:
            async with asyncio.timeout(self._keepalive):
                await self._listening.wait()
        except TimeoutError:
            # The database is out of reach: local changes still flow; when LISTEN is in place
            # every subscriber gets a RESYNC for what it may have missed meanwhile.
            self._missed = True

    async def publish(self, change: Change) -> None:
        self.publish_nowait(change)
        if self._closed:
            return
        if self._sender is None or self._sender.done():
            # Runs only while there is something to send, so an idle node has no task here.
            self._sender = asyncio.create_task(self._send_all(), name="courriel-pg-notify")
        try:
            payload = f"{self.node} {_encode(change, max_bytes=MAX_PAYLOAD - _NODE_LEN - 1)}"
        except ValueError:
            payload = f"{self.node} {_encode(_resync(change.user_id))}"
        self._outbox.append(payload)

    # --- sending -----------------------------------------------------------------------------

    async def _send_all(self) -> None:
        while self._outbox:
            batch = [self._outbox.popleft() for _ in range(min(_BATCH, len(self._outbox)))]
            await self._send(batch)

    async def _send(self, batch: list[str]) -> None:
        delay = 0.05
        for _ in range(5):
            try:
                await self._pool.execute(
                    "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", CHANNEL, batch
                )
                return
            except LOST as e:
                _log.warning("could not send change notifications: %s", e)
            except asyncpg.PostgresError as e:  # refused outright: trying again will not help
                _log.error("dropped %d change notifications: %s", len(batch), e)
                return
            await asyncio.sleep(delay)
            delay *= 2
        _log.error("dropped %d change notifications: the database is unreachable", len(batch))

    async def flush(self) -> None:
        """Waits until queued notifications are sent (or given up)."""
        while self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender])

    # --- listening ---------------------------------------------------------------------------

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        node, _, body = payload.partition(" ")
        if node == self.node:
            return
        try:
            change = decode_change(body)
        except (ValueError, KeyError, TypeError):
            _log.warning("ignored a malformed change notification: %r", payload[:200])
            return
        self.publish_nowait(change)

    def _resync_all(self) -> None:
        for user_id in list(self._subs):
            self.publish_nowait(_resync(user_id))

    async def _listen_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._listen_once()
                delay = 0.1
            except (*LOST, asyncpg.PostgresError) as e:  # refused too: the server may come back
                _log.warning("change listener lost its connection: %s", e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    async def _listen_once(self) -> None:
        """Listens until the connection is lost (returns or raises one of ``LOST``)."""
        lost = asyncio.Event()
        conn = await asyncpg.connect(self._dsn, timeout=10)
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(CHANNEL, self._on_notify)
            if self._listening.is_set() or self._missed:
                # After LISTEN, so that nothing falls between the two.
                self.reconnects += 1 if self._listening.is_set() else 0
                self._missed = False
                self._resync_all()
            self._listening.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._keepalive)
                    break
                await asyncio.wait_for(conn.execute("SELECT 1"), self._keepalive)
        finally:
            conn.terminate()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.flush()
        for task in (self._sender, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await super().close()
