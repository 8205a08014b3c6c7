"""In-process change events, and the wire form of a ``Change`` for backends that ship them.

Theory of operation
-------------------
``LocalEvents`` fans each published ``Change`` out to the subscriptions of its user. The store
publishes after the commit the change describes, from the event loop, in commit order.

``publish`` never blocks and never raises because of a subscriber: each subscription has a
bounded backlog (``backlog`` changes). The overflow rule: when a change arrives and the backlog is
full, the whole backlog is dropped and replaced by one ``ChangeKind.RESYNC`` change (mailbox id 0),
followed by later changes as they come. A session that reads RESYNC rereads its mailbox list and
its selected mailbox (``changes_since``/``expunged_since`` from the MODSEQ it last saw), which is
exactly what it would have learnt from the dropped changes: a ``Change`` is only a hint.

Nothing here assumes one process: sessions only see ``Events``/``Subscription``. A backend whose
writers live in several processes (PostgreSQL LISTEN/NOTIFY) ships changes with
``encode_change``/``decode_change``, a compact JSON form that fits a NOTIFY payload.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any

from courriel.store.base import Change, ChangeKind

DEFAULT_BACKLOG = 1000
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD = 7900


def resync(user_id: int) -> Change:
    return Change(user_id, 0, ChangeKind.RESYNC)


class LocalSubscription:
    """The changes of one user; ``async for`` ends when the subscription is closed."""

    def __init__(self, events: LocalEvents, user_id: int, backlog: int) -> None:
        self._events = events
        self.user_id = user_id
        self._backlog = backlog
        self._items: deque[Change] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self.dropped = 0  # changes lost to overflow, for monitoring

    def push(self, change: Change) -> None:
        if self._closed:
            return
        if len(self._items) >= self._backlog:
            self.dropped += len(self._items)
            self._items.clear()
            self._items.append(resync(self.user_id))
        self._items.append(change)
        self._wake.set()

    def __aiter__(self) -> LocalSubscription:
        return self

    async def __anext__(self) -> Change:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._items.popleft()

    def pending(self) -> int:
        return len(self._items)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._items.clear()
            self._wake.set()
            self._events.forget(self)


class LocalEvents:
    """``Events`` for one process: a dictionary of subscriptions per user."""

    def __init__(self, *, backlog: int = DEFAULT_BACKLOG) -> None:
        if backlog < 1:
            raise ValueError("backlog must be at least 1")
        self._backlog = backlog
        self._subs: dict[int, set[LocalSubscription]] = {}

    async def publish(self, change: Change) -> None:
        self.publish_nowait(change)

    def publish_nowait(self, change: Change) -> None:
        for sub in tuple(self._subs.get(change.user_id, ())):
            sub.push(change)

    async def subscribe(self, user_id: int) -> LocalSubscription:
        sub = LocalSubscription(self, user_id, self._backlog)
        self._subs.setdefault(user_id, set()).add(sub)
        return sub

    def forget(self, sub: LocalSubscription) -> None:
        subs = self._subs.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.user_id]

    async def close(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                await sub.close()


def encode_change(change: Change, *, max_bytes: int = MAX_PAYLOAD) -> str:
    """Compact JSON; when the UID list does not fit ``max_bytes`` it is left out (a hint)."""
    obj: dict[str, Any] = {"u": change.user_id, "m": change.mailbox_id, "k": change.kind.value}
    if change.modseq:
        obj["s"] = change.modseq
    if change.name:
        obj["n"] = change.name
    if change.uids:  # one encoding when the UIDs fit, as they nearly always do
        full = json.dumps(
            {**obj, "i": list(change.uids)}, separators=(",", ":"), ensure_ascii=False
        )
        if len(full.encode()) <= max_bytes:
            return full
    base = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if len(base.encode()) > max_bytes:
        raise ValueError("change does not fit a payload even without UIDs")
    return base


def decode_change(payload: str | bytes) -> Change:
    obj = json.loads(payload)
    return Change(
        user_id=int(obj["u"]),
        mailbox_id=int(obj["m"]),
        kind=ChangeKind(obj["k"]),
        modseq=int(obj.get("s", 0)),
        uids=tuple(int(u) for u in obj.get("i", ())),
        name=str(obj.get("n", "")),
    )
