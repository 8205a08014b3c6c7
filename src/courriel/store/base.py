"""The storage interface every backend implements, and the records it deals in.

Theory of operation
-------------------
A ``Store`` holds accounts (domains, users, aliases) and mail (mailboxes, messages, the expunge
log). Protocol sessions talk only to this interface; SQLite (embedded default) and PostgreSQL
(many machines) implement it, and one contract test suite runs against both.

``Store`` is the sum of protocols by concern: ``AccountStore`` (domains, users, aliases),
``MailStore`` (mailboxes, messages, their changes), ``SharingStore`` (what other users reach),
``Coordination`` (leases and counters between processes), and the smaller ones kept in modules
of their own with their records: ``mailauth`` (DKIM keys, domain policies, DMARC evaluations),
``sieve``, ``junk``, ``acme``, ``access`` (the web admin) and ``queue`` (outbound mail); every
name is also importable from here. Code that needs one concern takes that protocol, so its
signature says what of the store it touches.

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
  Flag changes and expunges (``store_flags``, ``expunge``, ``expunge_deleted``) and cached
  previews are the exception: they survive a crash of the process at once, and a power loss
  once the next durable commit or the kernel's write-back (about 30 s on Linux) has put them on
  the disk -- Dovecot's ``mail_fsync = optimized``. Nothing that acknowledges a message (an
  append, a copy, a move) is ever written that way, and no body is deleted before its expunge
  is durable.
* Change events are published only after the commit they describe.

Parsed on first need. A message is stored as its bytes; its parse (``courriel.mail.message``:
envelope, body structure, header fields) is made the first time something asks for it
(``get_meta``: FETCH ENVELOPE or BODYSTRUCTURE, SEARCH, SORT, URLAUTH) and kept, so each
message is parsed once, and mail nobody reads that way -- a POP3 user's, a message expunged
soon after -- never. That is Dovecot's cache, filled on first access; it takes the parse
(about a fifth of the CPU a delivered message cost) off the path the acknowledgement waits for.
A caller that has the parse already (junk scoring made it) may hand it over in
``NewMessage.meta``. The parse kept, the SORT keys and the search texts made from it are
derived data: they are written without the fsync, and one lost in a power cut is made again.

Names: domain names are stored lower-case in A-label (punycode) form; mailbox names are UTF-8 with
"/" as the hierarchy delimiter, and "INBOX" is matched case-insensitively and stored as "INBOX".
Flags are strings: system flags with their backslash ("\\Seen"), keywords as given.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol

from courriel.store.access import AccessStore
from courriel.store.access import MailEvents as MailEvents  # for session/, which imports base
from courriel.store.acme import AcmeStore

# re-exported for session/, which sees the store only through this module (tests/test_layers.py)
from courriel.store.junk import JunkModel as JunkModel
from courriel.store.junk import JunkSample as JunkSample
from courriel.store.junk import JunkStore as JunkStore
from courriel.store.mailauth import DkimKey as DkimKey
from courriel.store.mailauth import DkimKeyState as DkimKeyState
from courriel.store.mailauth import DkimKeyStore as DkimKeyStore
from courriel.store.mailauth import DmarcReportStore as DmarcReportStore
from courriel.store.mailauth import DomainPolicy as DomainPolicy
from courriel.store.mailauth import DomainPolicyStore as DomainPolicyStore
from courriel.store.mailauth import OnDmarcFailure as OnDmarcFailure
from courriel.store.mailauth import StoredEvaluation as StoredEvaluation
from courriel.store.sieve import DeliveryLookup as DeliveryLookup
from courriel.store.sieve import SieveScript as SieveScript
from courriel.store.sieve import SieveStore as SieveStore

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


class LastAdmin(StoreError):  # noqa: N818
    """The change would leave no administrator (``keep_an_admin``)."""


class OverQuota(StoreError):  # noqa: N818
    """The write would take the user past their quota."""


class TooMany(StoreError):  # noqa: N818
    """The write would pass a limit on how many (or how large) things a user may keep."""


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
    admin: bool = False  # may use the web admin and its API (migration 0015)


@dataclass(frozen=True, slots=True)
class AddressLookup:
    """What resolving one recipient reads first (``AccountStore.lookup_address``)."""

    domain: Domain | None  # None: not a domain of ours, and the rest is empty
    user: User | None = None
    alias_targets: tuple[str, ...] = ()  # only when there is no such user


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

    ``meta`` is the parse (``courriel.mail.message``: envelope, body structure, header fields)
    when the caller has made it already; empty, the store makes it on first need ("Parsed on
    first need" above). The store keeps it as opaque bytes and hands it back unchanged.
    """

    raw: bytes
    internal_date: datetime
    flags: frozenset[str] = frozenset()
    meta: bytes = b""


class MessageInfo(NamedTuple):
    """One message as a session's view needs it: everything but the body and the parse.

    A named tuple rather than a frozen dataclass: SELECT of a large mailbox makes one per
    message, and a tuple is made in a third of the time (no ``__setattr__`` per field).
    """

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
class SearchHits:
    """``Store.search_headers``: per key asked, the UIDs that match; and the messages whose
    stored parse could not be read, which the caller must compare itself."""

    hits: list[set[int]]
    unmade: frozenset[int]


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
class MailboxSince:
    """A mailbox and what changed in it since a MODSEQ, in one snapshot
    (``MailStore.mailbox_since``)."""

    mailbox: Mailbox
    recent_uid: int  # as ``recent_uid``
    expunged: tuple[Expunged, ...] = ()  # as ``expunged_since``
    changed: tuple[MessageInfo, ...] = ()  # as ``changes_since``


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
    # RFC 9208 §5.2, §5.3: the MESSAGE and MAILBOX resources; None: no limit
    limit_messages: int | None = None
    mailboxes: int = 0
    limit_mailboxes: int | None = None

    @property
    def limited(self) -> bool:
        return any(
            limit is not None
            for limit in (self.limit_bytes, self.limit_messages, self.limit_mailboxes)
        )


# --- access control lists (RFC 4314; see store/sql/acl.py) ------------------------------------

# The grantee id of the identifier "anyone" (RFC 4314 §2): no user has id 0.
ANYONE = 0
# Every right RFC 4314 §2.1 defines, in the order the store keeps them; the owner has them all.
ALL_RIGHTS = "lrswipkxtea"


@dataclass(frozen=True, slots=True)
class AclEntry:
    grantee_id: int  # a user's id, or ANYONE
    identifier: str  # the grantee's address, or "anyone"
    rights: str  # letters of "lrswipkxtea", in that order


@dataclass(frozen=True, slots=True)
class SharedMailbox:
    """Another user's mailbox as a grantee reaches it."""

    mailbox: Mailbox  # with the owner's name for it
    owner: str  # the owner's address
    rights: str  # the union of the grantee's own and anyone's rights (RFC 4314 §2)


# --- change events ----------------------------------------------------------------------------


class ChangeKind(enum.Enum):
    MESSAGES_ADDED = "added"
    FLAGS_CHANGED = "flags"
    EXPUNGED = "expunged"
    MAILBOX_CREATED = "created"
    MAILBOX_RENAMED = "renamed"
    MAILBOX_DELETED = "deleted"
    # The mailbox's access control list changed (RFC 4314): sessions of grantees look again.
    ACL_CHANGED = "acl"
    # The user (un)subscribed ``name`` (for NOTIFY SubscriptionChange, RFC 5465 §5.5).
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    # The user set METADATA entries (RFC 5464) of a mailbox, or of the server (mailbox id 0);
    # ``name`` holds the entry names, space-separated, as many as fit a notification.
    METADATA_CHANGED = "metadata"
    # Changes were lost (a subscriber fell behind): reread everything; mailbox_id is 0.
    RESYNC = "resync"
    # ``courriel queue flush|retry|release|bounce`` made entries due: the queue workers of
    # every process look now. Published for ``QUEUE_EVENTS``, never for a user.
    QUEUE_WAKE = "queue"
    # ACME stored a certificate or challenges (``courriel.web.acme``): every worker rereads
    # them. Published for ``CERTIFICATE_EVENTS``, never for a user.
    CERTIFICATE = "certificate"


# The subscription key of queue wake-ups (``ChangeKind.QUEUE_WAKE``): no account has id 0.
QUEUE_EVENTS = 0
# The subscription key of certificate and challenge changes (``ChangeKind.CERTIFICATE``).
CERTIFICATE_EVENTS = -1


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


# --- the store, by concern (docs/storage.md) -------------------------------------------------


class AccountStore(Protocol):
    """Domains, users, aliases and catch-alls, with the users' passwords and quotas."""

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

    async def lookup_address(self, address: str) -> AddressLookup:
        """In one read: the domain of ``address``; when it is ours, the user ``address`` or,
        without one, the targets of the alias ``address`` (as ``get_domain``, ``get_user``
        and ``alias_targets``). What an SMTP RCPT needs for most addresses."""

    async def get_user_by_id(self, user_id: int) -> User | None: ...

    async def list_users(self, domain: str | None = None) -> list[User]: ...

    async def set_password(self, address: str, password_hash: str) -> None: ...

    async def set_quota(self, address: str, quota_bytes: int | None) -> None: ...

    async def set_count_quota(
        self, address: str, messages: int | None, mailboxes: int | None
    ) -> None:
        """Limits the user's number of messages and of mailboxes (None: no limit); a write
        that would pass one raises ``OverQuota``."""

    async def remove_user(self, address: str, *, keep_an_admin: bool = False) -> None:
        """Removes the user with all their mailboxes and messages; ``keep_an_admin``: raises
        ``LastAdmin`` instead when the user is the only administrator (decided in the same
        transaction, so two removals at once cannot each count on the other's admin)."""

    async def add_alias(self, source: str, target: str) -> Alias: ...

    async def list_aliases(self, domain: str | None = None) -> list[Alias]: ...

    async def alias_targets(self, source: str) -> list[str]: ...

    async def remove_alias(self, source: str, target: str | None = None) -> None: ...


class MailStore(Protocol):
    """Mailboxes, subscriptions, messages and their flags, the expunge log, \\Recent, quota
    usage and metadata; every write publishes its changes on ``events`` after it commits."""

    @property
    def events(self) -> Events: ...

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
    async def append(
        self,
        items: Sequence[tuple[int, NewMessage]],
        *,
        claim_recent: bool = False,
        seen_user: int | None = None,
    ) -> list[Appended]:
        """Stores each (mailbox id, message) pair; all or nothing; durable on return.

        One SMTP delivery to many recipients and one IMAP MULTIAPPEND are each one call.
        Identical bodies are stored once. Raises ``OverQuota`` if an owner would pass their quota.
        ``claim_recent``: the new messages are \\Recent to the caller (``claim_recent`` up to
        their UIDs, in the same transaction), for an APPEND to the session's selected mailbox.
        ``seen_user``: the user appending. On a mailbox another user owns, a message's \\Seen is
        that user's own (``SharingStore.private_seen``, RFC 4314 §4), written in the same
        transaction; the owner's \\Seen stays unset.
        """

    async def replace(
        self,
        mailbox_id: int,
        uid: int,
        target: int,
        message: NewMessage,
        *,
        seen_user: int | None = None,
    ) -> tuple[Appended, list[Expunged]]:
        """RFC 8508: appends ``message`` to mailbox ``target`` and expunges ``uid`` of
        ``mailbox_id``, in one transaction; durable on return. The expunge list is empty when
        the message was gone already. Raises like ``append``; ``seen_user`` as there."""

    async def list_messages(
        self, mailbox_id: int, uid_from: int = 1, uid_to: int | None = None
    ) -> list[MessageInfo]:
        """Messages with ``uid_from <= uid <= uid_to``, ascending by UID."""

    async def get_meta(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        """UID -> the parse of each message still there; one stored unparsed is parsed now
        from its body and the parse kept ("Parsed on first need" above)."""

    async def sort_keys(self, mailbox_id: int, uid_from: int = 1) -> dict[int, str]:
        """UID -> the SORT and THREAD keys of each message with ``uid >= uid_from``
        (``courriel.mail.sortkeys.encode``);
        "" for a message whose parse could not be read. Keys missing for messages stored
        before they existed are made from the stored parse now, and kept."""

    async def search_headers(self, mailbox_id: int, keys: Sequence[tuple[str, str]]) -> SearchHits:
        """For each (field of ``searchtext.STORED_FIELDS``, needle folded and free of line
        feeds and NUL, ``searchtext.storable_needle``), the UIDs of the mailbox whose field
        holds the needle as SEARCH compares it (``searchtext.field_matches``). Search texts
        missing for messages stored before they existed are made from the stored parse now,
        and kept."""

    async def message_extras(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> dict[int, MessageExtras]: ...

    async def set_previews(self, mailbox_id: int, previews: dict[int, str]) -> None:
        """Keeps the PREVIEW texts made for these messages (RFC 8970); no MODSEQ change."""

    async def read_message(self, mailbox_id: int, uid: int) -> bytes:
        """The message exactly as stored; raises ``NotFound`` if it was expunged."""

    async def read_messages(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        """``read_message`` of each UID in one read of the database; expunged ones are left
        out. The caller bounds how many bytes it asks for at once."""

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

    async def expunge_deleted(
        self, mailbox_id: int, uids: Sequence[int] | None = None
    ) -> list[Expunged]:
        """Removes the messages flagged \\Deleted (among ``uids``, when given) and logs them;
        which ones is decided in the same transaction (EXPUNGE, CLOSE)."""

    async def copy(
        self,
        src_mailbox_id: int,
        uids: Sequence[int],
        dst_mailbox_id: int,
        *,
        seen_user: int | None = None,
        rights: str = "stw",
    ) -> Copied:
        """Copies with flags and internal date; new UIDs in ascending source UID order.

        ``seen_user``: the user copying, when the source or the target is another user's
        mailbox (RFC 4314 §4). A copy then carries that user's \\Seen: their own on a source
        another user owns, and their own again on a target another user owns (the owner's
        stays unset); and only the flags ``rights``, the user's on the target, allow ("s"
        \\Seen, "t" \\Deleted, "w" the others). All in the copy's one transaction."""

    async def move(
        self,
        src_mailbox_id: int,
        uids: Sequence[int],
        dst_mailbox_id: int,
        *,
        seen_user: int | None = None,
        rights: str = "stw",
    ) -> Copied:
        """Copy and expunge in one transaction (RFC 6851); ``seen_user`` and ``rights`` as
        for ``copy``."""

    async def changes_since(self, mailbox_id: int, modseq: int) -> list[MessageInfo]:
        """Messages still present whose MODSEQ is greater than ``modseq``."""

    async def expunged_since(self, mailbox_id: int, modseq: int) -> list[Expunged]: ...

    async def mailbox_since(
        self, mailbox_id: int, modseq: int, *, changes: bool = False
    ) -> MailboxSince | None:
        """In one read: the mailbox (None once it is deleted), its ``recent_uid`` and, when its
        HIGHESTMODSEQ is above ``modseq`` (or ``changes``), ``expunged_since`` and
        ``changes_since`` of ``modseq``. What a session reads to catch up after a change."""

    async def claim_recent(self, mailbox_id: int, up_to_uid: int) -> int:
        """Claims \\Recent (RFC 3501 §2.3.2) for UIDs up to ``up_to_uid``; returns the UID
        claimed before, so the UIDs above it up to ``up_to_uid`` are the caller's alone."""

    async def recent_uid(self, mailbox_id: int) -> int:
        """The highest UID claimed as \\Recent; the messages above it are still recent."""

    async def quota_usage(self, user_id: int) -> QuotaUsage: ...

    # metadata (RFC 5464): mailbox_id 0 holds the server's entries
    async def get_metadata(self, mailbox_id: int, user_id: int) -> dict[str, bytes]:
        """Every entry the user sees there: their own /private ones and the /shared ones."""

    async def set_metadata(
        self,
        mailbox_id: int,
        user_id: int,
        items: Sequence[tuple[str, bytes | None]],
        *,
        max_entries: int,
        max_bytes: int,
    ) -> None:
        """Sets (None: removes) entries, all or none; ``TooMany`` when one scope (the user's
        private entries, or the shared ones, of that mailbox) would hold more than
        ``max_entries`` entries or ``max_bytes`` bytes of values."""


class SharingStore(Protocol):
    """What other users reach of a user's mailboxes: access control lists (RFC 4314), the
    grantees' own \\Seen, and the access keys of URLAUTH (RFC 4467)."""

    # access control lists (RFC 4314): the owner's rights are implicit and never stored
    async def get_acl(self, mailbox_id: int) -> list[AclEntry]:
        """The granted rights of a mailbox, "anyone" first, then by address."""

    async def set_acl(self, mailbox_id: int, grantee_id: int, rights: str) -> None:
        """Grants exactly ``rights`` (empty: removes the entry); ``NotFound`` without the
        mailbox or the grantee (``ANYONE`` always exists)."""

    async def shared_mailboxes(self, user_id: int) -> list[SharedMailbox]:
        """Other users' mailboxes on which the user or anyone has some right, by owner and
        name."""

    # \Seen of grantees on other users' mailboxes (RFC 4314 §4: per user)
    async def private_seen(self, mailbox_id: int, user_id: int) -> set[int]:
        """The UIDs the user has seen in another user's mailbox."""

    async def set_private_seen(
        self, mailbox_id: int, user_id: int, uids: Sequence[int], seen: bool
    ) -> list[int]:
        """Marks the messages seen (or not) for the user alone; returns the UIDs whose state
        changed, which get a new MODSEQ and a FLAGS_CHANGED event like any flag change."""

    # URLAUTH (RFC 4467): mailbox access keys
    async def urlauth_key(self, mailbox_id: int, new_key: bytes | None = None) -> bytes | None:
        """The mailbox's access key; with ``new_key``, that one is kept first if it has none."""

    async def reset_urlauth_keys(self, user_id: int, mailbox_id: int | None = None) -> None:
        """Forgets the access key of one of the user's mailboxes, or of all of them."""

    async def shared_mailbox(self, user_id: int, owner: str, name: str) -> SharedMailbox | None:
        """``owner``'s mailbox ``name`` with the user's rights on it (maybe none); None when
        there is no such owner or mailbox."""


class Coordination(Protocol):
    """What processes and machines share to act as one server: leases, counters in fixed
    windows and keys kept for a while (see store/sql/coordination.py)."""

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


class Store(
    AccountStore,
    MailStore,
    SharingStore,
    Coordination,
    DkimKeyStore,
    AcmeStore,
    AccessStore,
    SieveStore,
    JunkStore,
    DomainPolicyStore,
    DmarcReportStore,
    Protocol,
):
    """Everything a backend implements; a component that needs one concern takes that
    protocol instead."""

    @property
    def queue(self) -> QueueStore:
        """The outbound queue (its own interface: ``courriel.store.queue``)."""

    async def close(self) -> None: ...
