"""Typed IMAP commands and the connection states in which each is legal.

Theory of operation
-------------------
Every command the parser understands is a frozen slotted dataclass carrying its tag and its
arguments already decoded (mailbox names as ``str``, sequence sets as ``SequenceSet``, search
programs as trees). Where a command is legal (RFC 9051 §3, §6) is said once, by the union it
belongs to (``AnyStateCommand``, ``NotAuthenticatedCommand``, ``AuthenticatedCommand``,
``SelectedCommand``...); ``STATES`` is the table derived from them, and ``allowed(command,
state)`` is what a session asks before dispatching, so "BAD Command not allowed in this state"
is answered in one place. The session dispatches on the same unions, with ``match`` ending in
``assert_never``.

Flags are ``str``: system flags with their backslash in canonical case (``\\Seen``), keywords
as sent. Search and fetch records live in ``search.py`` and ``fetch.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from courriel.wire.imap.fetch import FetchAttribute
from courriel.wire.imap.search import SearchKey
from courriel.wire.imap.sequence import SequenceSet
from courriel.wire.imap.sort import SortCriterion, ThreadAlgorithm


class State(enum.Enum):
    """RFC 9051 §3: the connection states."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class StoreMode(enum.Enum):
    ADD = "+"
    REMOVE = "-"
    REPLACE = ""


# --- any state (RFC 9051 §6.1) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability:
    tag: str


@dataclass(frozen=True, slots=True)
class Noop:
    tag: str


@dataclass(frozen=True, slots=True)
class Logout:
    tag: str


@dataclass(frozen=True, slots=True)
class Id:
    """RFC 2971: ``params`` is None for ``ID NIL``; keys as sent, values may be None."""

    tag: str
    params: tuple[tuple[str, str | None], ...] | None


# --- not authenticated (RFC 9051 §6.2) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTLS:
    tag: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """``initial_response`` is the decoded SASL-IR (RFC 4959); ``b""`` for ``=``."""

    tag: str
    mechanism: str  # upper-case
    initial_response: bytes | None


@dataclass(frozen=True, slots=True)
class Login:
    tag: str
    username: str
    password: str


# --- authenticated (RFC 9051 §6.3) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enable:
    tag: str
    capabilities: tuple[str, ...]  # upper-case, as sent


@dataclass(frozen=True, slots=True)
class QResyncParams:
    """RFC 7162 §3.2.5: what the client remembers of the mailbox."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None  # (sequence numbers, UIDs)


@dataclass(frozen=True, slots=True)
class Select:
    tag: str
    mailbox: str
    condstore: bool = False
    qresync: QResyncParams | None = None


@dataclass(frozen=True, slots=True)
class Examine:
    tag: str
    mailbox: str
    condstore: bool = False
    qresync: QResyncParams | None = None


@dataclass(frozen=True, slots=True)
class Create:
    tag: str
    mailbox: str
    special_use: tuple[str, ...] = ()  # RFC 6154 §3: CREATE name (USE (\Sent))


@dataclass(frozen=True, slots=True)
class Delete:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    tag: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class List:
    """LIST, with the RFC 5258 extensions; ``extended`` says the client used any of them.

    ``selection`` holds upper-case selection options (SUBSCRIBED, REMOTE, RECURSIVEMATCH,
    SPECIAL-USE); ``returns`` the return options other than STATUS; ``status`` the STATUS
    items asked for with RETURN (STATUS (...)) (RFC 5819), or None.
    """

    tag: str
    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()
    returns: frozenset[str] = frozenset()
    status: tuple[str, ...] | None = None
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Lsub:
    tag: str
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Namespace:
    tag: str


@dataclass(frozen=True, slots=True)
class Status:
    tag: str
    mailbox: str
    items: tuple[str, ...]  # upper-case: MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE ...


@dataclass(frozen=True, slots=True)
class AppendMessage:
    flags: frozenset[str]
    internal_date: datetime | None
    data: bytes
    utf8: bool = False  # sent as UTF8 (literal8) (RFC 6855 §4)
    binary: bool = False  # sent as a literal8 ~{n} (RFC 3516, RFC 9051 §6.3.12)
    # RFC 4469 CATENATE: the parts to join, text (bytes) or an IMAP URL (str); ``data`` is b""
    catenate: tuple[bytes | str, ...] = ()


@dataclass(frozen=True, slots=True)
class Append:
    """APPEND; several messages with MULTIAPPEND (RFC 3502), stored all or none."""

    tag: str
    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Unauthenticate:
    """RFC 8437: back to the not authenticated state, on the same connection."""

    tag: str


@dataclass(frozen=True, slots=True)
class Idle:
    tag: str


@dataclass(frozen=True, slots=True)
class Compress:
    tag: str
    mechanism: str  # upper-case; RFC 4978 defines DEFLATE


@dataclass(frozen=True, slots=True)
class GetQuota:
    tag: str
    root: str


@dataclass(frozen=True, slots=True)
class GetQuotaRoot:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class SetQuota:
    tag: str
    root: str
    limits: tuple[tuple[str, int], ...]  # (upper-case resource name, limit)


# --- selected (RFC 9051 §6.4) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    tag: str


@dataclass(frozen=True, slots=True)
class Close:
    tag: str


@dataclass(frozen=True, slots=True)
class Unselect:
    tag: str


@dataclass(frozen=True, slots=True)
class Expunge:
    """EXPUNGE, or UID EXPUNGE (RFC 4315) when ``uids`` is set."""

    tag: str
    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """SEARCH; ``returns`` is None for plain SEARCH, else the ESEARCH return options.

    ``RETURN ()`` is given as ``("ALL",)`` (RFC 4731 §3.1).
    """

    tag: str
    uid: bool
    charset: str | None
    criteria: SearchKey
    returns: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None  # RFC 9394: (1, 100), or (-1, -100) from the end


@dataclass(frozen=True, slots=True)
class Sort:
    """SORT (RFC 5256 §3); ``returns`` holds the RFC 5267 ESORT options, None for plain SORT."""

    tag: str
    uid: bool
    criteria: tuple[SortCriterion, ...]
    charset: str
    search: SearchKey
    returns: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None  # RFC 5267 §4.4, RFC 9394


@dataclass(frozen=True, slots=True)
class Thread:
    """THREAD (RFC 5256 §3)."""

    tag: str
    uid: bool
    algorithm: ThreadAlgorithm
    charset: str
    search: SearchKey


@dataclass(frozen=True, slots=True)
class Replace:
    """RFC 8508: append ``message`` to ``mailbox`` and expunge the message it replaces."""

    tag: str
    uid: bool
    number: int  # sequence number, or UID with ``uid``
    mailbox: str
    message: AppendMessage


@dataclass(frozen=True, slots=True)
class CancelUpdate:
    """RFC 5267 §4.3: stop the updates of the search contexts made by these tags."""

    tag: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Fetch:
    tag: str
    uid: bool
    sequence_set: SequenceSet
    attributes: tuple[FetchAttribute, ...]
    changedsince: int | None = None  # RFC 7162 §3.1.4
    vanished: bool = False  # RFC 7162 §3.2.6, UID FETCH only
    partial: tuple[int, int] | None = None  # RFC 9394 §4, UID FETCH only


@dataclass(frozen=True, slots=True)
class Store:
    tag: str
    uid: bool
    sequence_set: SequenceSet
    mode: StoreMode
    silent: bool
    flags: frozenset[str]
    unchangedsince: int | None = None  # RFC 7162 §3.1.3


@dataclass(frozen=True, slots=True)
class Copy:
    tag: str
    uid: bool
    sequence_set: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Move:
    tag: str
    uid: bool
    sequence_set: SequenceSet
    mailbox: str


# --- access control (RFC 4314) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetAcl:
    tag: str
    mailbox: str
    identifier: str
    rights: str  # as sent: may start with "+" or "-" (RFC 4314 §3.1)


@dataclass(frozen=True, slots=True)
class DeleteAcl:
    tag: str
    mailbox: str
    identifier: str


@dataclass(frozen=True, slots=True)
class GetAcl:
    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class ListRights:
    tag: str
    mailbox: str
    identifier: str


@dataclass(frozen=True, slots=True)
class MyRights:
    tag: str
    mailbox: str


AclCommand = SetAcl | DeleteAcl | GetAcl | ListRights | MyRights


# --- metadata (RFC 5464) -----------------------------------------------------------------------


class Depth(enum.Enum):
    """RFC 5464 §4.2.2: how far below each entry GETMETADATA looks."""

    ZERO = "0"
    ONE = "1"
    INFINITY = "infinity"


@dataclass(frozen=True, slots=True)
class GetMetadata:
    tag: str
    mailbox: str  # "": the server's entries
    entries: tuple[str, ...]  # checked entry names (courriel.wire.imap.metadata)
    maxsize: int | None = None  # RFC 5464 §4.2.1
    depth: Depth = Depth.ZERO


@dataclass(frozen=True, slots=True)
class SetMetadata:
    tag: str
    mailbox: str
    items: tuple[tuple[str, bytes | None], ...]  # None removes the entry (RFC 5464 §4.3)


# --- NOTIFY (RFC 5465) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One event group: which mailboxes, which events (their RFC 5465 §8 spelling)."""

    filter: (
        str  # upper-case: SELECTED SELECTED-DELAYED INBOXES PERSONAL SUBSCRIBED SUBTREE MAILBOXES
    )
    mailboxes: tuple[str, ...]  # for SUBTREE and MAILBOXES
    events: tuple[str, ...]  # () for NONE
    new_fetch: tuple[FetchAttribute, ...] = ()  # MessageNew (fetch-att ...)


@dataclass(frozen=True, slots=True)
class Notify:
    tag: str
    groups: tuple[NotifyGroup, ...] | None  # None: NOTIFY NONE
    status: bool = False  # NOTIFY SET STATUS: STATUS of each mailbox now (RFC 5465 §3.1)


# --- URLAUTH (RFC 4467) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GenUrlAuth:
    tag: str
    items: tuple[tuple[str, str], ...]  # (URL, mechanism) pairs


@dataclass(frozen=True, slots=True)
class ResetKey:
    tag: str
    mailbox: str | None  # None: every mailbox of the user
    mechanisms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UrlFetchItem:
    """One URL of URLFETCH; ``params`` are RFC 5524's upper-cased (BODYPARTSTRUCTURE, BINARY,
    BODY), empty for a URL sent bare or in parentheses alone (RFC 4467's plain answer)."""

    url: str
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UrlFetch:
    tag: str
    items: tuple[UrlFetchItem, ...]


UrlAuthCommand = GenUrlAuth | ResetKey | UrlFetch


# The commands by the states in which they are legal (RFC 9051 §6.1-§6.4 and each extension's
# "valid states"); ``STATES`` is derived from these unions and the session dispatches on them,
# so the table and the handlers cannot disagree. Nothing is legal in LOGOUT.
AnyStateCommand = Capability | Noop | Logout | Id  # RFC 2971 §3.1: ID in any state
NotAuthenticatedCommand = StartTLS | Authenticate | Login
AuthenticatedOnlyCommand = Enable  # RFC 5161 §3.1: authenticated state only, not selected
# Legal in the authenticated and the selected state.
AuthenticatedCommand = (
    Select
    | Examine
    | Create
    | Delete
    | Rename
    | Subscribe
    | Unsubscribe
    | List
    | Lsub
    | Namespace
    | Status
    | Append
    | Idle
    | Unauthenticate  # RFC 8437 §3
    | Compress  # RFC 4978 §3: after authentication
    | GetQuota
    | GetQuotaRoot
    | SetQuota
    | AclCommand  # RFC 4314 §3
    | GetMetadata  # RFC 5464 §4
    | SetMetadata
    | Notify  # RFC 5465 §3
    | UrlAuthCommand  # RFC 4467 §6
)
SelectedCommand = (
    Check
    | Close
    | Unselect
    | Expunge
    | Search
    | Sort  # RFC 5256 §3
    | Thread
    | CancelUpdate  # RFC 5267 §4.3
    | Replace  # RFC 8508 §3
    | Fetch
    | Store
    | Copy
    | Move
)
Command = (
    AnyStateCommand
    | NotAuthenticatedCommand
    | AuthenticatedOnlyCommand
    | AuthenticatedCommand
    | SelectedCommand
)

_ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
_LEGAL: tuple[tuple[object, frozenset[State]], ...] = (
    (AnyStateCommand, _ANY),
    (NotAuthenticatedCommand, frozenset({State.NOT_AUTHENTICATED})),
    (AuthenticatedOnlyCommand, frozenset({State.AUTHENTICATED})),
    (AuthenticatedCommand, frozenset({State.AUTHENTICATED, State.SELECTED})),
    (SelectedCommand, frozenset({State.SELECTED})),
)

# Command class -> the states in which it is legal, read off the unions above.
STATES: dict[type, frozenset[State]] = {
    kind: states for union, states in _LEGAL for kind in get_args(union) or (union,)
}


def allowed(command: Command, state: State) -> bool:
    """Whether ``command`` may run in ``state`` (RFC 9051 §3)."""
    return state in STATES[type(command)]
