"""The outbound queue as the SMTP session sees it: where mail for other domains is handed over.

Theory of operation
-------------------
A submission session accepts mail for recipients outside our domains only to pass it on; that is
the relay queue's job (a later part of courriel: schedule, worker, bounces). The session talks to
it through the ``Queue`` protocol:

* ``check(recipient)`` at RCPT time says whether the queue will take mail for that address now.
  It returns ``None`` (yes) or a ``Refusal`` whose sentence the session sends as the RCPT reply,
  so a client learns at once and never after a 250 that its mail went nowhere;
* ``enqueue(envelope, raw)`` stores the message durably for every remote recipient in one call
  and returns its queue id; the session answers 250 only after it returned.

``StoreQueue`` is the queue of a server that relays: it takes every remote recipient and stores
the message as one entry of the store's outbound queue (``courriel.store.queue``), with the
envelope and one row per recipient, in one durable write; then it wakes the worker of this
process (``courriel.queue.worker``), which delivers it. Mail a user submitted is DKIM-signed
once, here, before it is stored (``sign``: ``courriel.queue.signer.DkimSigner.sign``, which
signs for the From domain when it has keys), so every retry sends the same signed bytes. The
entry's id is the queue id the session already wrote into the Received field, so logs, headers
and ``courriel queue`` agree.

``RelayDisabled`` is the queue of a server without a relay transport: it refuses every remote
recipient with a temporary "relaying to other domains is not enabled" (RFC 3463 4.4.0), so mail
for other domains is never accepted and then silently dropped. (The inbound MX on port 25 uses
the real queue for what our aliases forward; its RCPT refuses every address we do not host.)
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from courriel.mail.address import AddressError, normalize_domain
from courriel.store.base import AlreadyExists, StoreError
from courriel.store.queue import NewEntry, NewRecipient, QueueStore


@dataclass(frozen=True, slots=True)
class Recipient:
    """One forward-path with its RFC 3461 DSN parameters, kept for the relay and its bounces."""

    address: str
    notify: tuple[str, ...] | None = None  # None: not given; (): NEVER (RFC 3461 §4.1)
    orcpt: str | None = None  # "type;address" decoded (RFC 3461 §4.2)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the relay needs besides the message: who sends, to whom, and how to report."""

    sender: str  # "" for the null reverse-path (RFC 5321 §4.5.5)
    recipients: tuple[Recipient, ...]
    ret: str | None = None  # "FULL" | "HDRS" (RFC 3461 §4.3)
    envid: str | None = None  # RFC 3461 §4.4
    smtputf8: bool = False  # RFC 6531: the next hop must offer SMTPUTF8
    body: str | None = None  # "7BIT" | "8BITMIME" | "BINARYMIME"
    authenticated_as: str | None = None  # the submitting user, for the log and the AUTH= param
    queue_id: str = ""  # the id of the Received field; the queue makes one when empty


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the queue will not take a recipient now; ``temporary`` picks 4xx over 5xx."""

    temporary: bool
    enhanced: str  # RFC 3463 code, e.g. "4.4.0"
    text: str  # a sentence a person can act on


class QueueError(Exception):
    """``enqueue`` could not store the message; nothing was queued."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.text)
        self.refusal = refusal


class Queue(Protocol):
    async def check(self, recipient: str) -> Refusal | None:
        """``None`` when mail for ``recipient`` (another domain's address) would be queued."""

    async def enqueue(self, envelope: Envelope, raw: bytes) -> str:
        """Stores the message durably for every recipient; returns its queue id.

        Raises ``QueueError`` when nothing was stored.
        """


RELAY_NOT_ENABLED = Refusal(
    temporary=True,
    enhanced="4.4.0",
    text="relaying to other domains is not enabled on this server yet",
)


class RelayDisabled:
    """The queue of a server without a relay worker: every remote recipient is refused."""

    async def check(self, recipient: str) -> Refusal | None:
        return RELAY_NOT_ENABLED

    async def enqueue(self, envelope: Envelope, raw: bytes) -> str:
        raise QueueError(RELAY_NOT_ENABLED)


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2]
    try:
        return normalize_domain(domain)
    except AddressError:
        return domain.lower()  # the session checked the address; keep what it gave


def _new_id() -> str:
    return secrets.token_hex(6).upper()


Signer = Callable[[bytes], Awaitable[bytes]]  # the DKIM-Signature fields for a message, or b""
log = logging.getLogger("courriel.queue")


class StoreQueue:
    """The queue of a relaying server: every remote recipient is stored for the worker."""

    def __init__(
        self,
        store: QueueStore,
        *,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        sign: Signer | None = None,
    ) -> None:
        self._store = store
        self._wake = wake
        self._clock = clock
        self._sign = sign

    async def _signed(self, envelope: Envelope, raw: bytes) -> bytes:
        if self._sign is None or envelope.authenticated_as is None:
            return raw  # only what our users submit is signed as theirs
        try:
            return await self._sign(raw) + raw
        except StoreError:
            raise  # the keys could not be read: nothing is queued, the client tries again
        except Exception:  # a message the signer cannot handle still goes, unsigned
            log.exception("queue: DKIM signing failed; the message goes unsigned")
            return raw

    async def check(self, recipient: str) -> Refusal | None:
        return None

    async def enqueue(self, envelope: Envelope, raw: bytes) -> str:
        recipients = tuple(
            NewRecipient(r.address, _domain(r.address), r.notify, r.orcpt)
            for r in envelope.recipients
        )
        queue_id = envelope.queue_id or _new_id()
        raw = await self._signed(envelope, raw)
        for _ in range(5):
            entry = NewEntry(
                id=queue_id,
                sender=envelope.sender,
                recipients=recipients,
                message=raw,
                ret=envelope.ret,
                envid=envelope.envid,
                smtputf8=envelope.smtputf8,
                body_type=envelope.body,
                authenticated_as=envelope.authenticated_as,
            )
            try:
                await self._store.enqueue(entry, self._clock())
            except AlreadyExists:
                queue_id = _new_id()  # 48 random bits met an older entry: take others
                continue
            self._wake()
            return queue_id
        raise QueueError(Refusal(True, "4.3.0", "the queue could not name the message"))
