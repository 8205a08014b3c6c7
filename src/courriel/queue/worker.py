"""The queue worker: a thin loop that hands due messages to the transport and records the result.

Theory of operation
-------------------
Each serving process runs one ``Worker``. Its loop:

1. leases due entries from the store (``QueueStore.lease_due``), as many as it has room for
   (``[queue] concurrency`` deliveries in flight in this process); the lease, in the store, is
   what keeps two processes or two machines from trying one entry at once;
2. per entry, groups the due recipients by domain and calls ``Transport.deliver`` once per
   domain, concurrently but never more than ``concurrency`` calls at a time, renewing the lease
   while it works;
3. records the outcomes of each call in one transaction: delivered; failed at once on a
   permanent outcome (5xx); on a temporary one (4xx, no connection, TLS not possible) retried at
   the time ``courriel.queue.schedule.after_failure`` gives, or failed when the schedule says the
   message is too old;
4. owes the sender a delay warning once, past ``delay_warning_seconds``, and sends every
   notification owed (``courriel.queue.bounce``) before it gives the lease back; the report is
   cleared only after the notice is stored, so a crash repeats a notice but never loses one;
5. sleeps until the next entry is due, ``poll_seconds`` at most (so entries queued by another
   process are seen), or until ``wake`` is called: a message was just queued here, or a
   ``ChangeKind.QUEUE_WAKE`` change arrived through the store's ``Events`` -- what ``courriel
   queue flush|retry|release|bounce`` publishes from its own process, so the command is acted
   on at once in every serving process (unix datagrams on SQLite, NOTIFY on PostgreSQL) and
   ``poll_seconds`` only bounds how long a lost hint can delay it.

Everything about an entry lives in the store, so a restart resumes every schedule where it was:
an entry leased by a process that died is taken over when its lease expires. ``stop`` ends the
loop and waits for the deliveries in flight, whose leases are then given back.

The transport is trusted to turn every failure into an outcome; should it raise anyway, that is
logged and counted as a temporary failure of each recipient, never a lost message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from courriel.config import QueueConfig
from courriel.logs import kv
from courriel.mail import dsn
from courriel.queue import bounce
from courriel.queue.filtering import Filters
from courriel.queue.outbound import Recipient, Signer, StoreQueue
from courriel.queue.schedule import Expire, after_failure, delay_warning_due
from courriel.queue.transport import OutboundMessage, Outcome, Status, Transport
from courriel.store.base import QUEUE_EVENTS, MailEvents, Store, StoreError, Subscription
from courriel.store.queue import (
    QueuedMessage,
    QueuedRecipient,
    RecipientState,
    RecipientUpdate,
    Report,
    wants_report,
)

log = logging.getLogger("courriel.queue")

ERROR_PAUSE = 1.0  # seconds before trying the store again after it failed


def owner_name() -> str:
    """This process's name in leases: host, process id and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    def __init__(
        self,
        store: Store,
        transport: Transport,
        cfg: QueueConfig,
        hostname: str,
        *,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
        sign: Signer | None = None,
        events: MailEvents | None = None,
    ) -> None:
        self._store = store
        self._events = events  # relays and failures, for the web admin's recent mail events
        self._queue = store.queue
        self._transport = transport
        self._cfg = cfg
        self._hostname = hostname
        self._clock = clock
        self.owner = owner or owner_name()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._calls = asyncio.Semaphore(cfg.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.outbound = StoreQueue(self._queue, wake=self.wake, clock=clock, sign=sign)
        # Notices to local senders meet their Sieve scripts (``Filters.deliver_notice``).
        filters = Filters(store, self.outbound, hostname)
        self._notifier = bounce.Notifier(store, self.outbound, local=filters.deliver_notice)

    def wake(self) -> None:
        """Look for due entries now (a message was queued, or released)."""
        self._wake.set()

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Delivers until ``stop``; never raises for a store or transport failure."""
        sub = await self._store.events.subscribe(QUEUE_EVENTS)
        listening = asyncio.create_task(self._listen(sub), name="queue wake-ups")
        try:
            await self._loop()
        finally:
            listening.cancel()
            await sub.close()

    async def _listen(self, sub: Subscription) -> None:
        """Every queue change (or a resynchronisation: one may have been lost) wakes the loop."""
        async for _change in sub:
            self.wake()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                started = await self.deliver_due()
                pause = await self._pause() if started == 0 or self._full() else 0.0
            except StoreError as e:
                log.warning("queue: the store failed: %s", e)
                pause = ERROR_PAUSE
            except Exception:  # a bug must not stop every delivery of this process
                log.exception("queue: the worker loop failed")
                pause = ERROR_PAUSE
            if pause > 0:
                await self._sleep(pause)
        await self.idle()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def idle(self) -> None:
        """Waits for every delivery in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _full(self) -> bool:
        return len(self._tasks) >= self._cfg.concurrency

    async def _pause(self) -> float:
        if self._full():
            return self._cfg.poll_seconds  # a finishing delivery wakes the loop
        due = await self._queue.next_due()
        wait = self._cfg.poll_seconds if due is None else due - self._clock()
        return max(0.0, min(wait, self._cfg.poll_seconds))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def deliver_due(self) -> int:
        """Leases what is due and starts delivering it; returns how many entries."""
        room = self._cfg.concurrency - len(self._tasks)
        if room <= 0:
            return 0
        leased = await self._queue.lease_due(
            self.owner, self._clock(), self._cfg.lease_seconds, room
        )
        for entry in leased:
            task = asyncio.create_task(self._process(entry), name=f"queue {entry.id}")
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return len(leased)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("queue: delivery failed", exc_info=task.exception())
        self._wake.set()  # room for another entry

    # --- one entry -------------------------------------------------------------------------------

    async def _process(self, entry: QueuedMessage) -> None:
        reported: list[int] = []
        renewing = asyncio.create_task(self._renew(entry.id))
        try:
            current = await self._attempt_all(entry)
            current = await self._warn_if_late(current)
            reported = await self._notify(current, entry.message)
        finally:
            renewing.cancel()
            await self._queue.release(entry.id, self.owner, reported, self._clock())

    async def _renew(self, entry_id: str) -> None:
        while True:
            await asyncio.sleep(self._cfg.lease_seconds / 3)
            try:
                held = await self._queue.renew(
                    entry_id, self.owner, self._clock(), self._cfg.lease_seconds
                )
            except StoreError as e:  # try again at the next turn; the lease has time left
                log.warning("queue: could not renew the lease: %s", e, extra=kv(id=entry_id))
                continue
            if not held:
                log.warning("queue: lost the lease", extra=kv(id=entry_id))
                return

    async def _attempt_all(self, entry: QueuedMessage) -> QueuedMessage:
        now = self._clock()
        by_domain: dict[str, list[QueuedRecipient]] = {}
        for r in entry.recipients:
            if r.state is RecipientState.QUEUED and r.next_attempt <= now:
                by_domain.setdefault(r.domain, []).append(r)
        recorded: dict[str, QueuedMessage] = {}

        async def one(domain: str, rcpts: list[QueuedRecipient]) -> None:
            outcomes = await self._deliver(entry, domain, rcpts)
            when = self._clock()
            updates = [
                self._decide(entry, r, o, when) for r, o in zip(rcpts, outcomes, strict=True)
            ]
            # Straight to the store, whatever the other domains do: a remote 250 not yet
            # recorded is the duplicate a crash would cause, so no lock, wait or log line
            # comes between (the outcomes are logged once they are recorded).
            recorded[domain] = await self._queue.record(entry.id, updates, when)
            for r, o, u in zip(rcpts, outcomes, updates, strict=True):
                self._log(entry, r, o, u.state)

        await asyncio.gather(*(one(d, rs) for d, rs in by_domain.items()))
        return _merged(entry, by_domain, recorded)

    async def _deliver(
        self, entry: QueuedMessage, domain: str, rcpts: Sequence[QueuedRecipient]
    ) -> list[Outcome]:
        message = OutboundMessage(
            sender=entry.sender,
            recipients=tuple(Recipient(r.address, r.notify, r.orcpt) for r in rcpts),
            message=entry.message,
            ret=entry.ret,
            envid=entry.envid,
            smtputf8=entry.smtputf8,
            eight_bit=entry.body_type in ("8BITMIME", "BINARYMIME"),
            queue_id=entry.id,
        )
        async with self._calls:
            try:
                got = list(await self._transport.deliver(domain, message))
            except Exception as e:  # a transport bug must not lose the message
                log.exception("queue: the transport failed", extra=kv(id=entry.id, domain=domain))
                got = [Outcome(r.address, Status.TEMPORARY, f"internal error: {e}") for r in rcpts]
        by_address = {o.recipient.lower(): o for o in got}
        missing = "the delivery gave no result for this recipient"
        return [
            by_address.get(r.address.lower()) or Outcome(r.address, Status.TEMPORARY, missing)
            for r in rcpts
        ]

    def _decide(
        self, entry: QueuedMessage, r: QueuedRecipient, o: Outcome, now: float
    ) -> RecipientUpdate:
        state, report, at = RecipientState.QUEUED, None, 0.0
        enhanced = o.enhanced
        if o.status is Status.DELIVERED:
            state = RecipientState.DELIVERED
            report = Report.DELIVERED if wants_report(r.notify, Report.DELIVERED) else None
        elif o.status is Status.PERMANENT:
            state = RecipientState.FAILED  # RFC 5321 §4.2.1: 5yz, do not repeat
        else:
            verdict = after_failure(r.attempts + 1, entry.created, now, self._cfg)
            if isinstance(verdict, Expire):
                state = RecipientState.FAILED
                enhanced = "4.4.7" if not enhanced.startswith("4") else enhanced
            else:
                at = verdict.at  # RFC 5321 §4.5.4.1: retry later
        if state is RecipientState.FAILED and wants_report(r.notify, Report.FAILED):
            report = Report.FAILED
        return RecipientUpdate(r.idx, state, at, o.code, enhanced, o.text, o.remote_host, report)

    def _log(
        self, entry: QueuedMessage, r: QueuedRecipient, o: Outcome, state: RecipientState
    ) -> None:
        what = state.value if o.status is not Status.TEMPORARY else "deferred"
        log.info(
            "queue: %s",
            what,
            extra=kv(id=entry.id, to=r.address, relay=o.remote_host, reply=o.text[:200]),
        )
        if self._events is not None:
            kind = {"delivered": "relayed", "failed": "failed"}.get(what, what)
            code = "" if o.code is None else f"{o.code} "
            via = f" ({o.remote_host})" if o.remote_host else ""
            self._events.record(kind, entry.sender, r.address, f"{code}{o.text}{via}")

    async def _warn_if_late(self, entry: QueuedMessage) -> QueuedMessage:
        if not delay_warning_due(entry.created, self._clock(), entry.warned, self._cfg):
            return entry
        waiting = [
            r.idx
            for r in entry.recipients
            if r.state is RecipientState.QUEUED and wants_report(r.notify, Report.DELAYED)
        ]
        return await self._queue.warn_delayed(entry.id, waiting)

    async def _notify(self, entry: QueuedMessage, message: bytes) -> list[int]:
        """Sends the notice owed, if any; returns the recipients it covered."""
        owed = [r for r in entry.recipients if r.report is not None]
        if not owed:
            return []
        covered = [r.idx for r in owed]
        if entry.sender == "":
            return covered  # RFC 5321 §4.5.5: never a notice to the null reverse-path
        notice = bounce.notice_for(entry, message, owed, self._hostname, self._cfg)
        now = self._clock()
        try:
            await self._notifier.send(entry.sender, dsn.build(notice, now))
        except StoreError as e:
            log.warning("queue: notice not stored, will retry: %s", e, extra=kv(id=entry.id))
            return []
        log.info("queue: notice sent", extra=kv(id=entry.id, to=entry.sender, rcpts=len(owed)))
        return covered


def _merged(
    entry: QueuedMessage,
    by_domain: dict[str, list[QueuedRecipient]],
    recorded: dict[str, QueuedMessage],
) -> QueuedMessage:
    """The entry after every domain's record: each recipient as its own domain's record left
    it (the records ran concurrently, so none of them alone is sure to have seen all)."""
    if not recorded:
        return entry
    latest = {r.idx: r for r in next(iter(recorded.values())).recipients}
    for domain, rcpts in by_domain.items():
        mine = {r.idx: r for r in recorded[domain].recipients}
        latest.update({r.idx: mine[r.idx] for r in rcpts})
    return replace(
        next(iter(recorded.values())), recipients=tuple(latest[i] for i in sorted(latest))
    )
