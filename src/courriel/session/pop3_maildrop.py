"""The POP3 maildrop: a snapshot of INBOX taken at login, and the lock that guards it.

Theory of operation
-------------------
``Maildrop.open`` reads the user's INBOX once (``list_messages``) and numbers its messages 1..n
in UID order. The numbering is fixed for the whole session: mail that arrives later is not shown
(RFC 1939 §4, "the POP3 server then acquires an exclusive-access lock on the maildrop"; message
numbers never change during a session). DELE only marks a number; ``marked_uids`` is what the
UPDATE state removes, in one ``Store.expunge`` call (RFC 1939 §6).

Unique-ids (UIDL, RFC 1939 §7) are Dovecot's default ``%08Xu%08Xv``: the UID and then the
mailbox's UIDVALIDITY, each as eight upper-case hex digits. Both numbers are fixed for a message
for as long as INBOX exists (store invariants), so the id never changes, and it is never reused:
UIDs only grow. Choosing Dovecot's exact format means a maildrop migrated with its UIDs and
UIDVALIDITY kept (dsync, or an import that keeps them) shows POP3 clients the ids they already
know, so "leave mail on server" clients do not fetch everything again. UIDs and UIDVALIDITY are
32-bit numbers (RFC 9051 §2.3.1.1), so the id is always 16 characters, within the 1-70
printable characters RFC 1939 §7 allows.

``MaildropLock`` is the "exclusive-access lock" of RFC 1939 §8 made to hold across processes and
machines: a store lease named ``pop3:<user id>`` with an owner unique to the session. A
background task renews it every third of its lifetime, so a session that is alive keeps it and
a node that dies loses it when the lease runs out. If a renewal finds the lease taken by someone
else (this process stalled longer than the lease), ``lost`` is set and the session must not
delete anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol

from courriel.clock import SYSTEM_CLOCK, Clock
from courriel.logs import kv
from courriel.store.base import Coordination, MailStore, MessageInfo, NotFound, StoreError

log = logging.getLogger("courriel.pop3")

DEFAULT_LEASE_SECONDS = 60.0


class MaildropStore(MailStore, Coordination, Protocol):
    """What a POP3 session needs of the store: the INBOX's messages and the maildrop lease."""


def unique_id(uidvalidity: int, uid: int) -> str:
    """The UIDL value of a message (Dovecot's ``%08Xu%08Xv``; see the module docstring)."""
    return f"{uid:08X}{uidvalidity:08X}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of the snapshot: its number is its index + 1."""

    uid: int
    size: int


class Maildrop:
    """The session's view of INBOX: fixed numbering, deletion marks."""

    def __init__(self, mailbox_id: int, uidvalidity: int, entries: list[Entry]) -> None:
        self.mailbox_id = mailbox_id
        self.uidvalidity = uidvalidity
        self.entries = entries
        self.marked: set[int] = set()  # message numbers marked deleted
        self._size: int | None = None  # octets of every entry, marked or not

    @classmethod
    async def open(cls, store: MailStore, user_id: int) -> Maildrop:
        """Raises ``StoreError`` (``NotFound`` when the user has no INBOX)."""
        mailbox = await store.get_mailbox(user_id, "INBOX")
        if mailbox is None:
            raise NotFound("the user has no INBOX")
        infos: list[MessageInfo] = await store.list_messages(mailbox.id)
        entries = [Entry(info.uid, info.size) for info in infos]
        return cls(mailbox.id, mailbox.uidvalidity, entries)

    def live(self) -> list[tuple[int, Entry]]:
        """(number, entry) of every message not marked deleted, in order."""
        return [(n, e) for n, e in enumerate(self.entries, 1) if n not in self.marked]

    def totals(self) -> tuple[int, int]:
        """Count and octets of the messages not marked deleted (RFC 1939 §5, STAT).

        From the whole drop's totals minus the marked ones: a pipelined run of STATs on a
        large maildrop costs one pass over the marks each, not one over every message.
        """
        if self._size is None:
            self._size = sum(e.size for e in self.entries)
        marked_size = sum(self.entries[n - 1].size for n in self.marked)
        return len(self.entries) - len(self.marked), self._size - marked_size

    def exists(self, msg: int) -> bool:
        return 1 <= msg <= len(self.entries)

    def entry(self, msg: int) -> Entry:
        return self.entries[msg - 1]

    def uid_string(self, msg: int) -> str:
        return unique_id(self.uidvalidity, self.entry(msg).uid)

    def marked_uids(self) -> list[int]:
        return sorted(self.entry(n).uid for n in self.marked)


class MaildropLock:
    """The store lease ``pop3:<user id>``, held and renewed while the session lasts."""

    def __init__(
        self,
        store: Coordination,
        user_id: int,
        owner: str,
        seconds: float = DEFAULT_LEASE_SECONDS,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.name = f"pop3:{user_id}"
        self.owner = owner
        self.seconds = seconds
        self.lost = False
        self._store = store
        self._clock = clock  # paces the renewals; the lease's expiry is the store's time
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self) -> bool:
        """Takes the lease and starts renewing it; False while another session holds it."""
        if not await self._store.acquire_lease(self.name, self.owner, self.seconds):
            return False
        self._renewer = asyncio.create_task(self._renew(), name=f"renew-{self.name}")
        return True

    async def _renew(self) -> None:
        while True:
            await self._clock.sleep(self.seconds / 3)
            try:
                held = await self._store.acquire_lease(self.name, self.owner, self.seconds)
            except StoreError as e:
                # Try again at the next tick; two misses in a row are still within the lease.
                log.warning("maildrop lease not renewed: %s", e, extra=kv(lease=self.name))
                continue
            if not held:
                self.lost = True
                log.error("maildrop lease lost to another session", extra=kv(lease=self.name))
                return

    async def release(self) -> None:
        """Stops renewing and gives the lease up; a store failure leaves it to expire."""
        if self._renewer is not None:
            self._renewer.cancel()
            # asyncio.wait, not await: the renewer's CancelledError must not be taken for ours.
            await asyncio.wait([self._renewer])
            self._renewer = None
        with contextlib.suppress(StoreError):
            await self._store.release_lease(self.name, self.owner)
