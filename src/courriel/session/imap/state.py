"""What the command handlers of one IMAP session share: the user, the options, the view.

Theory of operation
-------------------
``SessionState`` is the mutable part of a session that the handler modules
(``select``, ``messages``) read and change; its subclasses are the states of RFC 9051 §3,
``NotAuthenticated``, ``Authenticated`` (the user) and ``Selected`` (the user and the view),
and a handler's signature names the state it runs in. ``courriel.session.imap.Session`` owns
the current state object and the protocol state machine around it.

``Io`` is what a handler may do besides computing bytes: send them (so an acknowledgement
can go out inside a store transaction, which is how APPEND's OK is sent only after the message
is durable) and open such a transaction.

``UserSessions`` counts each user's sessions for the ``[LIMIT]`` at login, through a ``Tally``
the server shares with all its worker processes, so the limit holds for the whole server.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from courriel.junk.learn import JunkLearner
from courriel.session.imap.selected import Listings, SelectedView
from courriel.store.base import Store, User
from courriel.wire.imap import responses as r

MAX_SESSIONS_PER_USER = 20


class Tally(Protocol):
    """Counts by key; the server passes one that sums over every worker process."""

    def add(self, key: str, delta: int) -> None: ...

    def count(self, key: str) -> int: ...


class _LocalTally:
    def __init__(self) -> None:
        self._count: dict[str, int] = {}

    def add(self, key: str, delta: int) -> None:
        left = self._count.get(key, 0) + delta
        if left > 0:
            self._count[key] = left
        else:
            self._count.pop(key, None)

    def count(self, key: str) -> int:
        return self._count.get(key, 0)


class UserSessions:
    """How many sessions each user has on this server (see the module docstring)."""

    def __init__(self, limit: int = MAX_SESSIONS_PER_USER, tally: Tally | None = None) -> None:
        self.limit = limit
        self._tally = tally if tally is not None else _LocalTally()

    def take(self, user_id: int) -> bool:
        key = str(user_id)
        if self._tally.count(key) >= self.limit:
            return False
        self._tally.add(key, 1)
        return True

    def release(self, user_id: int) -> None:
        self._tally.add(str(user_id), -1)


class Io(Protocol):
    async def send(self, data: bytes) -> None: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...


@dataclass(slots=True)
class SessionState:
    """What the session has in every state: the store, the limits, the ENABLEd extensions.

    A session is in one of the states below (RFC 9051 §3), each adding what exists only
    there: ``Authenticated`` the user, ``Selected`` the user and the selected view. A handler
    says in its signature which state it needs, so mypy proves that a selected-state handler
    never runs without a view. A command that changes the state (SELECT, CLOSE, DELETE of the
    selected mailbox) makes the next state object with ``select``/``unselect``, which records
    it in ``moved_to`` for the session; the handler goes on with the new object.
    """

    store: Store
    appendlimit: int
    condstore: bool = False  # RFC 7162 §3.1: enabled, or implied by a CONDSTORE command
    qresync: bool = False  # RFC 7162 §3.2.3
    uidonly: bool = False  # RFC 9586: enabled; message sequence numbers are refused
    rev2: bool = False  # IMAP4rev2 enabled (RFC 9051 §6.3.1)
    utf8: bool = False  # UTF8=ACCEPT or IMAP4rev2: mailbox names in UTF-8
    enabled: list[str] = field(default_factory=list)
    # The server's listings of recently selected mailboxes, shared by its sessions.
    listings: Listings = field(default_factory=Listings)
    # Learns from moves into and out of Junk and from $Junk/$NotJunk; None: no learning.
    junk: JunkLearner | None = None
    # The state this one moved to during the current command (see the class docstring).
    moved_to: AnyState | None = field(default=None, repr=False, compare=False)

    @property
    def user(self) -> User | None:
        return None

    @property
    def view(self) -> SelectedView | None:
        return None

    def _carried(self) -> dict[str, Any]:
        """The fields every state has, for the next state object."""
        return {f.name: getattr(self, f.name) for f in fields(SessionState) if f.name != "moved_to"}

    def enable_condstore(self) -> bool:
        """Turns CONDSTORE on for a CONDSTORE-enabling command (RFC 7162 §3.1).

        True when this is the first such command and a mailbox is selected: its tagged OK then
        carries ``[HIGHESTMODSEQ]`` (``condstore_code``), which the client has not seen yet.
        """
        first = not self.condstore and self.view is not None
        self.condstore = True
        return first

    def condstore_code(self, first: bool) -> bytes | None:
        """``[HIGHESTMODSEQ n]`` for the tagged OK of the first enabling command, else None.

        The view's MODSEQ, read after the command's refresh, is what this session has seen
        complete; a lower value than the mailbox's only makes a client resync a little more.
        """
        view = self.view
        if not first or view is None:
            return None
        return r.highestmodseq(view.modseq)  # RFC 7162 §3.1: first enabling command's OK

    def condstore_announce(self, first: bool) -> bytes:
        """The same ``[HIGHESTMODSEQ n]`` in an untagged OK, sent before the tagged one.

        Dovecot announces it untagged, and its conformance tests look for that line; with the
        code on the tagged OK too, a client reading either finds it.
        """
        code = self.condstore_code(first)
        return b"" if code is None else r.untagged("OK", "Highest", code)

    async def refresh(self, *, allow_expunge: bool) -> bytes:
        """Untagged responses for what changed in the selected mailbox (RFC 9051 §7.5.1)."""
        view = self.view
        if view is None or not view.needs_refresh:
            return b""
        return await view.refresh(
            self.store, allow_expunge=allow_expunge, qresync=self.qresync, condstore=self.condstore
        )


@dataclass(slots=True)
class NotAuthenticated(SessionState):
    """Before LOGIN or AUTHENTICATE, and after UNAUTHENTICATE (RFC 8437): no user."""

    def login(self, user: User) -> Authenticated:
        state = Authenticated(**self._carried(), user=user)
        self.moved_to = state
        return state


@dataclass(slots=True, kw_only=True)
class Authenticated(SessionState):
    """A user logged in, no mailbox selected (or, as ``Selected``'s base, one selected)."""

    user: User

    @property
    def user_id(self) -> int:
        return self.user.id

    def select(self, view: SelectedView) -> Selected:
        """The selected state with ``view``; a mailbox selected before is left."""
        state = Selected(**self._carried(), user=self.user, view=view)
        self.moved_to = state
        return state


@dataclass(slots=True, kw_only=True)
class Selected(Authenticated):
    """A mailbox is selected: its view exists only in this state."""

    view: SelectedView

    def selected(self) -> SelectedView:
        return self.view

    def unselect(self) -> Authenticated:
        """Back to the authenticated state (CLOSE, UNSELECT, the mailbox gone)."""
        state = Authenticated(**self._carried(), user=self.user)
        self.moved_to = state
        return state


# The state of a session that has not logged out (``Session`` ends at LOGOUT).
AnyState = NotAuthenticated | Authenticated | Selected


def readonly_refusal(tag: str) -> bytes:
    return r.no(tag, "Mailbox is read-only (EXAMINE)", r.READ_ONLY)
