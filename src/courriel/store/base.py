"""The storage interface every backend implements, and the records it deals in.

Theory of operation
-------------------
A ``Store`` holds accounts (domains, users, aliases) and mail (mailboxes, messages, the expunge
log). Protocol sessions talk only to this interface; SQLite (embedded default) and PostgreSQL
(many machines) implement it, and one contract test suite runs against both.

Invariants every backend keeps (tests/store/ checks each one):

* UIDs in a mailbox are strictly increasing and never reused, also after expunge and restart.
  UIDNEXT only grows. UIDVALIDITY of a mailbox never changes while the mailbox exists; a mailbox
  deleted and created again under the same name gets a new, larger UIDVALIDITY.
* MODSEQ is per mailbox, strictly increasing: every change to a message (append, flag change,
  expunge) gets a MODSEQ larger than any before it in that mailbox, and HIGHESTMODSEQ is the
  largest one handed out. All messages one call changes in one mailbox share one new MODSEQ;
  a call that changes nothing hands out none.
* Every expunge is recorded with its MODSEQ (for QRESYNC VANISHED) and never forgotten while the
  mailbox exists.
* A method that returns has made its write durable (fsync / synchronous=FULL); a method that
  raises has written nothing. Concurrent writers may share one commit (group commit).
* Change events are published only after the commit they describe.

Names: domain names are stored lower-case in A-label (punycode) form; mailbox names are UTF-8 with
"/" as the hierarchy delimiter, and "INBOX" is matched case-insensitively and stored as "INBOX".
Flags are strings: system flags with their backslash ("\\Seen"), keywords as given.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from courriel.store.queue import QueueStore


class StoreError(Exception):
    """Base class of the errors a store raises on purpose."""


class NotFound(StoreError):  # noqa: N818 - reads as "store.NotFound"
    """The domain, user, alias or mailbox named does not exist."""


class AlreadyExists(StoreError):  # noqa: N818
    """Creating something that already exists."""


class InUse(StoreError):  # noqa: N818
    """Removing something others still depend on (a domain that still has users)."""


class OverQuota(StoreError):  # noqa: N818
    """The write would take the user past their quota."""


class Unavailable(StoreError):  # noqa: N818
    """The backend cannot be reached now; nothing was written; try again later."""


# --- accounts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str  # lower-case A-label form
    catch_all: str | None = None  # address that receives mail for unknown local parts


@dataclass(frozen=True, slots=True)
class User:
    id: int
    address: str  # localpart@domain, domain in A-label form; local part as created
    password_hash: str
    quota_bytes: int | None = None  # None: no quota
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class Alias:
    source: str  # full address
    target: str  # full address, local or remote


# --- mailboxes and messages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    user_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None = None  # "\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", ...


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """Counts for STATUS and SELECT, read in one consistent snapshot."""

    mailbox: Mailbox
    messages: int
    unseen: int
    size: int  # sum of message sizes (STATUS=SIZE)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store.

    ``meta`` is the parse made once at delivery (``courriel.mail.message``): envelope, body
    structure, header fields. The store keeps it as opaque bytes and hands it back unchanged.
    """

    raw: bytes
    internal_date: datetime
    flags: frozenset[str] = frozenset()
    meta: bytes = b""


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """One message as a session's view needs it: everything but the body and the parse."""

    uid: int
    modseq: int
    flags: frozenset[str]
    internal_date: datetime
    size: int


@dataclass(frozen=True, slots=True)
class MessageExtras:
    """What the less common FETCH items need of a message (OBJECTID, SAVEDATE, PREVIEW)."""

    blob_id: str  # the body's content address: the same for copies and identical messages
    savedate: datetime | None  # RFC 8514; None for messages stored before it was kept
    sort_keys: str | None  # ``courriel.mail.sortkeys.encode``; None when not made yet
    preview: str | None  # RFC 8970, once made (``set_previews``)


@dataclass(frozen=True, slots=True)
class Appended:
    mailbox_id: int
    uidvalidity: int
    uid: int
    modseq: int


class FlagOp(enum.Enum):
    ADD = "+"
    REMOVE = "-"
    REPLACE = "="


@dataclass(frozen=True, slots=True)
class FlagsResult:
    changed: list[MessageInfo]  # messages whose flags changed, with their new MODSEQ
    # UIDs left alone because their MODSEQ was above UNCHANGEDSINCE (RFC 7162 §3.1.3)
    modified: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Expunged:
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True)
class Copied:
    """Result of COPY / MOVE: the target's UIDVALIDITY and (source UID, new UID) pairs."""

    uidvalidity: int
    pairs: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    bytes: int
    messages: int
    limit_bytes: int | None


# --- change events ----------------------------------------------------------------------------


class ChangeKind(enum.Enum):
    MESSAGES_ADDED = "added"
    FLAGS_CHANGED = "flags"
    EXPUNGED = "expunged"
    MAILBOX_CREATED = "created"
    MAILBOX_RENAMED = "renamed"
    MAILBOX_DELETED = "deleted"
    # Changes were lost (a subscriber fell behind): reread everything; mailbox_id is 0.
    RESYNC = "resync"
    # ``courriel queue flush|retry|release|bounce`` made entries due: the queue workers of
    # every process look now. Published for ``QUEUE_EVENTS``, never for a user.
    QUEUE_WAKE = "queue"


# The subscription key of queue wake-ups (``ChangeKind.QUEUE_WAKE``): no account has id 0.
QUEUE_EVENTS = 0


@dataclass(frozen=True, slots=True)
class Change:
    """What changed, small enough for a PostgreSQL NOTIFY payload.

    A change tells a session *that* it must look; the session then asks the store for what it
    needs (``changes_since``, ``expunged_since``), so a lost or merged event costs a query, not
    correctness.
    """

    user_id: int
    mailbox_id: int
    kind: ChangeKind
    modseq: int = 0
    uids: tuple[int, ...] = ()
    name: str = ""  # mailbox name (new name for renames)


class Subscription(Protocol):
    """Changes of one user, in commit order; iterate with ``async for``."""

    def __aiter__(self) -> AsyncIterator[Change]: ...

    async def close(self) -> None: ...


class Events(Protocol):
    async def publish(self, change: Change) -> None: ...

    async def subscribe(self, user_id: int) -> Subscription: ...

    async def close(self) -> None: ...


# --- DKIM signing keys (see store/sql/dkim.py) -----------------------------------------------


class DkimKeyState(enum.Enum):
    ACTIVE = "active"  # published and used to sign
    RETIRING = "retiring"  # still published until retire_after, no longer used to sign
    RETIRED = "retired"  # no longer published


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str  # A-label, lower-case
    selector: str
    algorithm: str  # "ed25519" or "rsa"
    private_pem: str  # PKCS #8 PEM
    created: datetime
    state: DkimKeyState = DkimKeyState.ACTIVE
    retire_after: datetime | None = None


class DkimKeyStore(Protocol):
    async def add_dkim_keys(self, domain: str, keys: Sequence[DkimKey]) -> None:
        """Adds keys to a domain; ``NotFound`` without the domain, ``AlreadyExists`` for a
        selector the domain has."""

    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        """Every key (of one domain), in every state, oldest first."""

    async def rotate_dkim_keys(
        self, domain: str, keys: Sequence[DkimKey], retire_after: datetime
    ) -> None:
        """In one transaction: the active keys become retiring until ``retire_after``, and
        ``keys`` are added."""

    async def retire_dkim_keys(self, now: datetime) -> int:
        """Retiring keys whose ``retire_after`` has passed become retired; returns how many."""


# --- the store --------------------------------------------------------------------------------


class Store(DkimKeyStore, Protocol):
    @property
    def events(self) -> Events: ...

    @property
    def queue(self) -> QueueStore:
        """The outbound queue (its own interface: ``courriel.store.queue``)."""

    async def close(self) -> None: ...

    # accounts: callers pass normalised names (courriel.mail.address)
    async def add_domain(self, name: str) -> Domain: ...

    async def get_domain(self, name: str) -> Domain | None: ...

    async def list_domains(self) -> list[Domain]: ...

    async def remove_domain(self, name: str) -> None:
        """Raises ``InUse`` while users or aliases of the domain exist."""

    async def set_catch_all(self, domain: str, target: str | None) -> None: ...

    async def add_user(
        self, address: str, password_hash: str, *, quota_bytes: int | None = None
    ) -> User:
        """Creates the user and their INBOX in one transaction."""

    async def get_user(self, address: str) -> User | None:
        """Exact lookup; the domain part is matched case-insensitively, the local part too."""

    async def get_user_by_id(self, user_id: int) -> User | None: ...

    async def list_users(self, domain: str | None = None) -> list[User]: ...

    async def set_password(self, address: str, password_hash: str) -> None: ...

    async def set_quota(self, address: str, quota_bytes: int | None) -> None: ...

    async def remove_user(self, address: str) -> None:
        """Removes the user with all their mailboxes and messages."""

    async def add_alias(self, source: str, target: str) -> Alias: ...

    async def list_aliases(self, domain: str | None = None) -> list[Alias]: ...

    async def alias_targets(self, source: str) -> list[str]: ...

    async def remove_alias(self, source: str, target: str | None = None) -> None: ...

    # mailboxes
    async def create_mailbox(
        self, user_id: int, name: str, *, special_use: str | None = None
    ) -> Mailbox: ...

    async def get_mailbox(self, user_id: int, name: str) -> Mailbox | None: ...

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None: ...

    async def list_mailboxes(self, user_id: int) -> list[Mailbox]: ...

    async def rename_mailbox(self, user_id: int, old: str, new: str) -> Mailbox:
        """Renames the mailbox and its children (``old/...``), keeping UIDVALIDITY.

        Renaming INBOX moves its messages into a new mailbox ``new`` and leaves INBOX empty
        (RFC 9051 §6.3.6). Raises ``NotFound`` (no ``old``), ``AlreadyExists`` (``new`` or a
        name the children would take exists) or ``StoreError`` (``new`` inside ``old``).
        """

    async def delete_mailbox(self, user_id: int, name: str) -> None:
        """Deletes the mailbox and its messages; ``name/...`` children stay (RFC 9051 §6.3.5).

        Raises ``NotFound``, or ``StoreError`` for INBOX, which cannot be deleted.
        """

    async def subscriptions(self, user_id: int) -> list[str]: ...

    async def set_subscribed(self, user_id: int, name: str, subscribed: bool) -> None: ...

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus: ...

    # messages
    async def append(self, items: Sequence[tuple[int, NewMessage]]) -> list[Appended]:
        """Stores each (mailbox id, message) pair; all or nothing; durable on return.

        One SMTP delivery to many recipients and one IMAP MULTIAPPEND are each one call.
        Identical bodies are stored once. Raises ``OverQuota`` if an owner would pass their quota.
        """

    async def replace(
        self, mailbox_id: int, uid: int, target: int, message: NewMessage
    ) -> tuple[Appended, list[Expunged]]:
        """RFC 8508: appends ``message`` to mailbox ``target`` and expunges ``uid`` of
        ``mailbox_id``, in one transaction; durable on return. The expunge list is empty when
        the message was gone already. Raises like ``append``."""

    async def list_messages(
        self, mailbox_id: int, uid_from: int = 1, uid_to: int | None = None
    ) -> list[MessageInfo]:
        """Messages with ``uid_from <= uid <= uid_to``, ascending by UID."""

    async def get_meta(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]: ...

    async def sort_keys(self, mailbox_id: int, uid_from: int = 1) -> dict[int, str]:
        """UID -> the SORT and THREAD keys of each message with ``uid >= uid_from``
        (``courriel.mail.sortkeys.encode``);
        "" for a message whose parse could not be read. Keys missing for messages stored
        before they existed are made from the stored parse now, and kept."""

    async def message_extras(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, MessageExtras]: ...

    async def set_previews(self, mailbox_id: int, previews: dict[int, str]) -> None:
        """Keeps the PREVIEW texts made for these messages (RFC 8970); no MODSEQ change."""

    async def read_message(self, mailbox_id: int, uid: int) -> bytes:
        """The message exactly as stored; raises ``NotFound`` if it was expunged."""

    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        op: FlagOp,
        flags: frozenset[str],
        *,
        unchanged_since: int | None = None,
    ) -> FlagsResult:
        """Changes flags; a change that changes nothing keeps the message's MODSEQ.

        System flags are matched case-insensitively and "\\Recent" is ignored (never stored).
        """

    async def expunge(self, mailbox_id: int, uids: Sequence[int]) -> list[Expunged]:
        """Removes those messages (UIDs not present are ignored) and logs them."""

    async def copy(self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int) -> Copied:
        """Copies with flags and internal date; new UIDs in ascending source UID order."""

    async def move(self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int) -> Copied:
        """Copy and expunge in one transaction (RFC 6851)."""

    async def changes_since(self, mailbox_id: int, modseq: int) -> list[MessageInfo]:
        """Messages still present whose MODSEQ is greater than ``modseq``."""

    async def expunged_since(self, mailbox_id: int, modseq: int) -> list[Expunged]: ...

    async def claim_recent(self, mailbox_id: int, up_to_uid: int) -> int:
        """Claims \\Recent (RFC 3501 §2.3.2) for UIDs up to ``up_to_uid``; returns the UID
        claimed before, so the UIDs above it up to ``up_to_uid`` are the caller's alone."""

    async def recent_uid(self, mailbox_id: int) -> int:
        """The highest UID claimed as \\Recent; the messages above it are still recent."""

    async def quota_usage(self, user_id: int) -> QuotaUsage: ...

    # coordination between processes and machines (see store/sql/coordination.py)
    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Takes or renews the named lease for ``seconds``; False while another owner holds it.

        Used for "one POP3 session per maildrop" (RFC 1939 §8) across processes and nodes.
        """

    async def release_lease(self, name: str, owner: str) -> None:
        """Gives the lease up if ``owner`` holds it; otherwise does nothing."""

    async def bump_counter(self, key: str, window_seconds: int) -> int:
        """Counts one event for ``key`` in the current fixed window; returns the count so far."""

    async def read_counter(self, key: str, window_seconds: int) -> int:
        """The count of ``key`` in the current window, without counting."""

    async def remember(self, key: str, seconds: float) -> None:
        """Keeps ``key`` for ``seconds`` from now (a later call moves the expiry)."""

    async def remembered(self, key: str) -> float | None:
        """When ``key`` expires (seconds since the epoch), or None if it is not kept now."""
