"""The outbound queue's part of the store: messages waiting to be relayed, and their recipients.

Theory of operation
-------------------
One *entry* per accepted message (its id is the queue id of the Received field and the logs),
holding the envelope (sender, RFC 3461 RET and ENVID, SMTPUTF8, BODY), the message itself and
one row per remote recipient with that recipient's own state:

* ``QUEUED``: to be tried at ``next_attempt``; ``attempts`` counts the tries so far and
  ``code``/``enhanced``/``reason``/``remote_host`` keep what the last one said;
* ``DELIVERED`` and ``FAILED``: final. The entry disappears once no recipient is queued and no
  report is owed.

``report`` marks a delivery status notification (RFC 3464) owed to the sender for that recipient
(``FAILED``, ``DELAYED`` or ``DELIVERED``): it is set in the same transaction as the outcome
that calls for it and cleared (``release``) only after the notification itself was stored, so
a crash between the two sends it twice rather than never.

The message is kept in the entry's row, not in the content-addressed body files of mailboxes:
a queued message is short-lived, never shared with a mailbox (the copy delivered locally carries
other trace fields), and a row makes "durable with its envelope" one commit on either backend.

Leases: a worker takes due entries with ``lease_due`` (an owner name and an expiry), so two
processes or two machines on one PostgreSQL never try the same entry at the same time; the
conditional UPDATE that takes a lease has one winner whatever the race. A worker that dies
leaves its lease to expire; ``renew`` keeps a long delivery's lease. Times are seconds since the
epoch from the caller's clock, never the database's, so both backends behave alike.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class RecipientState(enum.Enum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"


class Report(enum.Enum):
    """The delivery status notification owed for a recipient (RFC 3464 §2.3.3 Action)."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class NewRecipient:
    address: str
    domain: str  # lower-case A-label: recipients are grouped by it for delivery
    notify: tuple[str, ...] | None = None  # RFC 3461 §4.1: None not given, () NEVER
    orcpt: str | None = None  # RFC 3461 §4.2 "type;address"


@dataclass(frozen=True, slots=True)
class NewEntry:
    """What ``enqueue`` stores: the envelope, the message, the recipients."""

    id: str  # the queue id chosen at acceptance (Received "id"); must be unique
    sender: str  # "" for the null reverse-path
    recipients: tuple[NewRecipient, ...]
    message: bytes
    ret: str | None = None
    envid: str | None = None
    smtputf8: bool = False
    body_type: str | None = None  # 7BIT | 8BITMIME | BINARYMIME
    authenticated_as: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    idx: int  # position in the entry, from 0
    address: str
    domain: str
    notify: tuple[str, ...] | None
    orcpt: str | None
    state: RecipientState
    attempts: int
    next_attempt: float
    last_attempt: float | None = None
    code: int | None = None
    enhanced: str = ""
    reason: str = ""
    remote_host: str = ""
    report: Report | None = None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: str
    sender: str
    created: float
    size: int
    recipients: tuple[QueuedRecipient, ...]
    message: bytes = b""  # empty in listings; ``get`` and ``lease_due`` fill it
    ret: str | None = None
    envid: str | None = None
    smtputf8: bool = False
    body_type: str | None = None
    authenticated_as: str | None = None
    held: bool = False
    warned: bool = False  # the delay warning went out
    next_attempt: float | None = None  # None: nothing to do (the entry is being finished)
    lease_owner: str | None = None
    lease_expires: float = 0.0


@dataclass(frozen=True, slots=True)
class RecipientUpdate:
    """The outcome of one attempt for one recipient, as ``record`` stores it."""

    idx: int
    state: RecipientState
    next_attempt: float  # when QUEUED; otherwise ignored
    code: int | None
    enhanced: str
    reason: str
    remote_host: str
    report: Report | None  # a notification this outcome calls for


def wants_report(notify: tuple[str, ...] | None, report: Report) -> bool:
    """Whether the sender asked for this notification (RFC 3461 §4.1).

    NOTIFY=NEVER is ``()``: nothing. Without NOTIFY courriel reports failures and delays, the
    default §4.1 suggests; a success is reported only when NOTIFY=SUCCESS was given.
    """
    if notify is None:
        return report is not Report.DELIVERED
    word = {Report.FAILED: "FAILURE", Report.DELAYED: "DELAY", Report.DELIVERED: "SUCCESS"}
    return word[report] in notify


class QueueStore(Protocol):
    async def enqueue(self, entry: NewEntry, now: float) -> str:
        """Stores the entry durably, every recipient due at ``now``; returns its id.

        Raises ``AlreadyExists`` when the id is taken (nothing stored).
        """

    async def lease_due(
        self, owner: str, now: float, seconds: float, limit: int
    ) -> list[QueuedMessage]:
        """Takes up to ``limit`` due, unheld, unleased entries for ``owner`` until ``now+seconds``.

        The entries come with their message and recipients.
        """

    async def renew(self, entry_id: str, owner: str, now: float, seconds: float) -> bool:
        """Extends ``owner``'s lease; False when it is no longer ``owner``'s."""

    async def record(
        self, entry_id: str, updates: Sequence[RecipientUpdate], now: float
    ) -> QueuedMessage:
        """Stores the outcomes of one attempt in one transaction; returns the entry after it
        (without the message). Recipients no longer queued are left as they are."""

    async def warn_delayed(self, entry_id: str, idxs: Sequence[int]) -> QueuedMessage:
        """Owes a delay warning for these queued recipients and marks the entry warned."""

    async def release(self, entry_id: str, owner: str, reported: Sequence[int], now: float) -> None:
        """Clears the reports of ``reported`` (their notification is stored), recomputes when
        the entry is next due, drops it when nothing is left, and gives ``owner``'s lease up."""

    async def next_due(self) -> float | None:
        """When the next unheld entry is due (or its lease ends); None when there is none."""

    async def list_entries(self) -> list[QueuedMessage]:
        """Every entry with its recipients, without the message, oldest first."""

    async def get(self, entry_id: str) -> QueuedMessage:
        """The entry with its message; raises ``NotFound``."""

    async def hold(self, entry_id: str, held: bool, now: float) -> None:
        """Holds (no delivery) or releases (due at once) an entry; raises ``NotFound``."""

    async def retry(self, entry_id: str | None, now: float) -> int:
        """Makes the queued recipients of one entry (or of all) due now; returns how many
        entries; raises ``NotFound`` for an unknown id."""

    async def remove(self, entry_id: str) -> None:
        """Deletes the entry without any notification; raises ``NotFound``."""

    async def bounce(self, entry_id: str, reason: str, now: float) -> None:
        """Fails every queued recipient now, with a failure notification owed; ``NotFound``."""
