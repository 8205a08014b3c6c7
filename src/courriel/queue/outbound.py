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

``RelayDisabled`` is the queue of a server without a relay worker: it refuses every remote
recipient with a temporary "relaying to other domains is not enabled on this server yet"
(RFC 3463 4.4.0), so mail for other domains is never accepted and then silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
