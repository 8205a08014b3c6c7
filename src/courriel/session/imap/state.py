"""What the command handlers of one IMAP session share: the user, the options, the view.

Theory of operation
-------------------
``SessionState`` is the mutable part of a session that the handler modules
(``imap_select``, ``imap_messages``) read and change; ``courriel.session.imap.Session`` owns
it and the protocol state machine around it. ``Io`` is what a handler may do besides computing
bytes: send them (so an acknowledgement can go out inside a store transaction, which is how
APPEND's OK is sent only after the message is durable) and open such a transaction.

``UserSessions`` counts each user's sessions for the ``[LIMIT]`` at login, through a ``Tally``
the server shares with all its worker processes, so the limit holds for the whole server.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

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
    store: Store
    appendlimit: int
    user: User | None = None
    view: SelectedView | None = None
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

    @property
    def user_id(self) -> int:
        assert self.user is not None, "handlers of authenticated commands run after login"
        return self.user.id

    def selected(self) -> SelectedView:
        assert self.view is not None, "handlers of selected-state commands run with a view"
        return self.view

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


def readonly_refusal(tag: str) -> bytes:
    return r.no(tag, "Mailbox is read-only (EXAMINE)", r.READ_ONLY)
