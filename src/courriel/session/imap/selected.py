"""The selected mailbox as one IMAP session sees it: sequence numbers, flags, pending expunges.

Theory of operation
-------------------
``SelectedView`` holds the session's picture of its selected mailbox: the UIDs in sequence
order (message sequence number = index + 1), each message's ``MessageInfo``, and the MODSEQ up
to which that picture is known to be complete. Other sessions (and deliveries) change the store
underneath; the session learns *that* something changed from the events subscription and calls
``refresh``, which asks the store what changed since the known MODSEQ and turns the difference
into untagged responses: ``EXISTS`` for new messages, ``FETCH (UID FLAGS [MODSEQ])`` for flag
changes, ``EXPUNGE`` (or ``VANISHED`` once QRESYNC is enabled) for removals.

Consistency: ``refresh`` reads the mailbox's HIGHESTMODSEQ *first*, then the expunge log, then
the changed messages. Every change with a MODSEQ up to that snapshot committed before both reads
and is therefore seen completely; later changes may be seen too and are simply seen again at the
next refresh, where the comparison with the cached flags makes them silent. Taking the largest
MODSEQ of what the reads returned instead would lose an expunge that commits between them.
Every change to the messages takes a new MODSEQ, so a HIGHESTMODSEQ no higher than the view's
means nothing changed, and the two other reads are left out. A session's own STORE and
EXPUNGE move the view's MODSEQ on (``advance``) when nothing came between, and an event of a
change to the messages (``hear``) asks for a refresh only when its MODSEQ is above the view's,
so the event of the session's own write costs nothing. (A mailbox seen through another user's
\\Seen, ``overlay``, is always read again.)

Expunges are held back while a command that forbids them runs (RFC 9051 §7.5.1: not during
FETCH, STORE or SEARCH, whose sequence numbers would shift under the client): the UIDs wait in
``pending`` and keep their sequence numbers until a command that allows EXPUNGE responses ends.

Opening a view reads every message of the mailbox, which on a large mailbox is most of the cost of
SELECT. ``Listings`` (one per IMAP server, made by ``net.imap.handlers``) keeps the listing of
recently selected mailboxes and brings it up to date the way ``refresh`` does (HIGHESTMODSEQ first,
then the expunge log and the changed messages, both found by index), so selecting again costs the
changes since, not the mailbox. It is a cache only: it is checked against the store's UIDVALIDITY
and HIGHESTMODSEQ at every use and holds nothing another process needs. Each listing also carries
the mailbox's ``FieldCache`` (the header fields SEARCH compared, which never change for a UID),
shared by the views of the mailbox. Listings are bounded in messages and cached fields together,
checked whenever one is read.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from courriel.mail.flags import SYSTEM_FLAGS, acl_right, display_order
from courriel.session.imap.search import FieldCache
from courriel.store.base import Change, ChangeKind, Expunged, Mailbox, MessageInfo, Store
from courriel.wire.imap import responses
from courriel.wire.imap.sequence import SequenceSet

Overlay = Callable[[Store, Sequence[MessageInfo]], Awaitable[list[MessageInfo]]]
# Events of changes to the messages: each carries the MODSEQ it took.
_MESSAGE_CHANGES = frozenset(
    {ChangeKind.MESSAGES_ADDED, ChangeKind.FLAGS_CHANGED, ChangeKind.EXPUNGED}
)

if TYPE_CHECKING:
    from courriel.session.imap.context import SearchContext


def permitted_flags(flags: Iterable[str], rights: str) -> frozenset[str]:
    """The flags of ``flags`` that a user holding ``rights`` may set (RFC 4314 §4)."""
    return frozenset(f for f in flags if acl_right(f) in rights)


class MailboxGone(Exception):  # noqa: N818 - reads as an event
    """The selected mailbox was deleted by another session."""


class BadSequenceError(ValueError):
    """A message sequence number that names no message (the command gets BAD)."""


class SelectedView:
    """The session's view of its selected mailbox; also part B's ``SearchView``."""

    def __init__(
        self,
        mailbox: Mailbox,
        readonly: bool,
        infos: Sequence[MessageInfo],
        *,
        modseq: int | None = None,
    ) -> None:
        """``infos`` ascending by UID, complete up to ``modseq`` (the mailbox's by default)."""
        self.mailbox = mailbox
        self.readonly = readonly
        self.uids: list[int] = [i.uid for i in infos]
        self.infos: dict[int, MessageInfo] = dict(zip(self.uids, infos, strict=True))
        self.modseq = mailbox.highestmodseq if modseq is None else modseq
        self.pending: set[int] = set()  # expunged in the store, not yet announced
        self.saved: set[int] = set()  # SEARCH RETURN (SAVE) result, as UIDs (RFC 5182)
        # A mailbox has few distinct flag sets: collect keywords from those, not every message.
        flag_sets = {i.flags for i in infos}
        self.keywords: set[str] = {k for f in flag_sets for k in f if not k.startswith("\\")}
        self.dirty = False  # an event said the store changed since the last refresh
        self.heard = 0  # the highest MODSEQ an event of a change to the messages named
        self.uidnext = mailbox.uidnext
        self.fields = FieldCache()  # shared with other views of the mailbox once opened
        # RFC 3501 §2.3.2: the UIDs that are \\Recent in this session (IMAP4rev1 only).
        self.tracks_recent = False
        self.recent: set[int] = set()
        # RFC 4314: the user's rights on another user's mailbox; None: the user's own (all).
        self.rights: str | None = None
        # Turns the store's rows into what this user sees (their own \Seen on another user's
        # mailbox, ``imap_shared.PrivateSeen``); None: the rows as they are.
        self.overlay: Overlay | None = None
        # Grows with every change to the messages in the view: RFC 5267 search contexts
        # (``contexts``, keyed by the tag that made them) are evaluated again only then.
        self.version = 0
        self.contexts: dict[str, SearchContext] = {}
        # RFC 9586 UIDONLY: FETCH responses name UIDs (UIDFETCH), expunges go as VANISHED
        self.uidonly = False
        # New messages announced by EXISTS since the session last looked (RFC 5465 §5.2: NOTIFY
        # may ask for a FETCH of each); the session empties it at every command and update.
        self.arrived: list[int] = []

    @classmethod
    async def open(
        cls, store: Store, mailbox_id: int, readonly: bool, listings: Listings | None = None
    ) -> SelectedView:
        """``listings`` is the IMAP server's shared cache; without it the mailbox is read whole."""
        # The snapshot MODSEQ is read before the messages, as in ``refresh``.
        box = await store.get_mailbox_by_id(mailbox_id)
        if box is None:
            raise MailboxGone
        infos, modseq, fields = await (listings or Listings()).read(store, box)
        view = cls(box, readonly, infos, modseq=modseq)
        view.fields = fields
        return view

    # --- SearchView -----------------------------------------------------------------------------

    @property
    def max_seq(self) -> int:
        return len(self.uids)

    @property
    def max_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int | None:
        i = bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def uid_of(self, seq: int) -> int:
        return self.uids[seq - 1]

    # --- sets -----------------------------------------------------------------------------------

    def resolve(self, sequence_set: SequenceSet, *, uid: bool) -> list[int]:
        """The UIDs a set names, ascending; ``BadSequenceError`` for a number out of range."""
        if sequence_set.saved:
            return sorted(u for u in self.saved if u in self.infos)
        if uid:
            # RFC 9051 §6.4.9: UIDs that name no message are ignored; "*" is the largest UID.
            out: list[int] = []
            for lo, hi in sequence_set.resolve(self.max_uid):
                a, b = bisect_left(self.uids, lo), bisect_left(self.uids, hi + 1)
                out.extend(self.uids[a:b])
            return out
        spans = sequence_set.resolve(self.max_seq)
        if not self.uids or (spans and spans[-1][1] > self.max_seq):
            # RFC 9051 §9 (seq-number): a number beyond the last message is a client error.
            raise BadSequenceError("Invalid message sequence number")
        return [self.uids[s - 1] for lo, hi in spans for s in range(lo, hi + 1)]

    def unseen_first(self) -> int | None:
        for n, uid in enumerate(self.uids, 1):
            if "\\Seen" not in self.infos[uid].flags:
                return n
        return None

    def flag_names(self) -> list[str]:
        return [*SYSTEM_FLAGS, *sorted(self.keywords)]

    def flags_responses(self) -> bytes:
        """``* FLAGS`` and ``* OK [PERMANENTFLAGS]`` (RFC 9051 §7.3.5, §7.1)."""
        names = self.flag_names()
        return responses.flags(names) + self.permanent_flags(names)

    def permanent_flags(self, names: Sequence[str] | None = None) -> bytes:
        """``* OK [PERMANENTFLAGS]``: the flags this user may change, which on another user's
        mailbox are those the rights allow (RFC 4314 §5.1.1: "s" for \\Seen, "t" for
        \\Deleted, "w" for the rest and for new keywords)."""
        names = self.flag_names() if names is None else names
        rights = self.rights
        if self.readonly:
            perm = responses.permanentflags([], new_keywords=False)
        elif rights is None:
            perm = responses.permanentflags(names, new_keywords=True)
        else:
            allowed = permitted_flags(names, rights)
            kept = [n for n in names if n in allowed]
            perm = responses.permanentflags(kept, new_keywords="w" in rights)
        return responses.untagged("OK", "Flags permitted", perm)

    # --- changes the session made itself --------------------------------------------------------

    def learn_keywords(self, flags: Iterable[str]) -> bytes:
        """Untagged FLAGS when new keywords came into use (RFC 9051 §7.3.5)."""
        new = {f for f in flags if not f.startswith("\\")} - self.keywords
        if not new:
            return b""
        self.keywords |= new
        return self.flags_responses()

    def update(self, info: MessageInfo) -> None:
        if info.uid in self.infos:
            self.infos[info.uid] = info
            self.version += 1

    def absorb(self, infos: Iterable[MessageInfo]) -> bytes:
        """Takes the store's rows for messages this session just changed; untagged FLAGS when
        they carry a keyword another session set meanwhile, to go before any FETCH shows it
        (RFC 3501 §7.2.6, RFC 9051 §7.3.5)."""
        keywords: set[str] = set()
        for info in infos:
            self.update(info)
            keywords.update(info.flags)
        return self.learn_keywords(keywords)

    def advance(self, modseq: int) -> None:
        """This session's own write of the messages, already taken in (``absorb``, ``remove``),
        got ``modseq``: when it is the next one, the view is complete up to it, and the event
        of that write is no news (``hear``)."""
        if modseq == self.modseq + 1:
            self.modseq = modseq

    def remove(self, uids: Iterable[int], *, qresync: bool) -> bytes:
        """Drops expunged UIDs from the view; the EXPUNGE or VANISHED responses to send."""
        gone = sorted({u for u in uids if u in self.infos})
        if not gone:
            return b""
        self.pending.difference_update(gone)
        self.saved.difference_update(gone)
        self.recent.difference_update(gone)
        if qresync or self.uidonly:
            out = responses.vanished(gone)  # RFC 7162 §3.2.10, RFC 9586 §3.4
        else:
            # Highest first, so the lower numbers do not shift meanwhile: each one's number
            # is then its position in the list as it was before any was removed.
            uids = self.uids
            out = b"".join(responses.expunge(bisect_left(uids, u) + 1) for u in reversed(gone))
        # One pass, not one list deletion per message: expunging most of a large mailbox
        # would otherwise be quadratic.
        drop = set(gone)
        self.version += 1
        self.uids[:] = [u for u in self.uids if u not in drop]
        for uid in gone:
            del self.infos[uid]
        return out

    # --- changes made elsewhere -----------------------------------------------------------------

    def hear(self, change: Change) -> None:
        """An event about this mailbox. A change to its messages is news only when its MODSEQ
        is above the one the view is complete up to, which the session's own writes usually
        are not (``advance``); any other change has the view read again."""
        if change.kind in _MESSAGE_CHANGES and change.modseq > 0 and self.overlay is None:
            self.heard = max(self.heard, change.modseq)
        else:
            self.dirty = True

    @property
    def needs_refresh(self) -> bool:
        return self.dirty or bool(self.pending) or self.heard > self.modseq

    async def refresh(
        self, store: Store, *, allow_expunge: bool, qresync: bool, condstore: bool
    ) -> bytes:
        """What changed since the last refresh, as untagged responses (see module docstring)."""
        out: list[bytes] = []
        changed: Sequence[MessageInfo] = ()
        top = self.max_uid  # before any removal: UIDs above it are new messages
        claimed: int | None = None
        if self.dirty or self.heard > self.modseq:
            self.dirty = False
            # One read for all of it: the mailbox, its \Recent claim and what changed.
            since = await store.mailbox_since(
                self.mailbox.id, self.modseq, changes=self.overlay is not None
            )
            if since is None:
                raise MailboxGone
            box = self.mailbox = since.mailbox
            claimed = since.recent_uid
            if box.highestmodseq > self.modseq or self.overlay is not None:
                changed = since.changed
                self.modseq = max(self.modseq, box.highestmodseq)
                self.uidnext = max(self.uidnext, box.uidnext)
                self.pending.update(e.uid for e in since.expunged if e.uid in self.infos)
                if self.overlay is not None and changed:
                    changed = await self.overlay(store, changed)
        if allow_expunge and self.pending:
            # Expunges first: the numbers in the FETCH and EXISTS below count without them.
            out.append(self.remove(list(self.pending), qresync=qresync))
        if changed:
            out.append(self._apply_changes(changed, top, condstore))
            added = sorted(i.uid for i in changed if i.uid > top)
            if self.tracks_recent and added:
                await self.take_recent(store, added, claimed=claimed)
                out.append(responses.recent(len(self.recent)))  # RFC 3501 §7.3.2, with EXISTS
        return b"".join(out)

    async def take_recent(
        self, store: Store, uids: Sequence[int], *, claimed: int | None = None
    ) -> None:
        """Adds the UIDs of ``uids`` (ascending, new to this view) that are \\Recent here.

        SELECT claims them in the store, so no other session gets them (RFC 3501 §2.3.2);
        EXAMINE only reads the claim, as it must not take \\Recent away (RFC 3501 §6.3.2).
        ``claimed``: the store's ``recent_uid``, when the caller has just read it.
        """
        if not self.tracks_recent or not uids:
            return
        # A read first: most SELECTs find nothing to claim and then take no write transaction,
        # which SQLite would serialise with every delivery.
        before = await store.recent_uid(self.mailbox.id) if claimed is None else claimed
        if not self.readonly and uids[-1] > before:
            before = await store.claim_recent(self.mailbox.id, uids[-1])
        self.recent.update(u for u in uids if u > before)

    def _apply_changes(self, changed: Sequence[MessageInfo], top: int, condstore: bool) -> bytes:
        changed = sorted(changed, key=lambda i: i.uid)  # UIDs stay ascending in ``uids``
        added = [i for i in changed if i.uid > top]
        out = [self.learn_keywords(f for i in changed for f in i.flags)]
        for info in changed:
            if info.uid > top or info.uid in self.pending:
                continue
            old = self.infos.get(info.uid)
            if old is None or (old.flags == info.flags and old.modseq >= info.modseq):
                continue
            self.infos[info.uid] = info
            self.version += 1
            if old.flags != info.flags or condstore:
                out.append(self.flag_fetch(info, condstore=condstore))
        if added:
            self.version += 1
            for info in added:
                self.uids.append(info.uid)
                self.infos[info.uid] = info
            self.arrived.extend(info.uid for info in added)
            out.append(responses.exists(len(self.uids)))
        return b"".join(out)

    def flag_fetch(self, info: MessageInfo, *, condstore: bool) -> bytes:
        """``* n FETCH (UID u FLAGS (...) [MODSEQ (m)])``; UID always (RFC 7162 §3.2.4)."""
        seq = self.seq_of(info.uid)
        assert seq is not None
        names = display_order(info.flags, recent=info.uid in self.recent)
        items = [responses.item_uid(info.uid), responses.item_flags(names)]
        if condstore:
            items.append(responses.item_modseq(info.modseq))  # RFC 7162 §3.1.4.1
        if self.uidonly:
            return responses.uidfetch(info.uid, items[1:])  # RFC 9586 §3.3
        return responses.fetch(seq, items)


@dataclass(slots=True)
class _Listing:
    """One mailbox's messages, ascending by UID, complete up to ``modseq``."""

    uidvalidity: int
    modseq: int
    infos: dict[int, MessageInfo]
    fields: FieldCache = field(default_factory=FieldCache)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __len__(self) -> int:
        return len(self.infos) + len(self.fields)


class Listings:
    """Message listings of recently selected mailboxes (see the module docstring)."""

    def __init__(self, max_messages: int = 500_000) -> None:
        self.max_messages = max_messages
        self._entries: OrderedDict[int, _Listing] = OrderedDict()

    async def read(self, store: Store, box: Mailbox) -> tuple[list[MessageInfo], int, FieldCache]:
        """Every message of ``box`` (read just before), the MODSEQ they are complete to, and
        the header fields SEARCH compared in the mailbox so far."""
        entry = self._entries.get(box.id)
        if entry is None or entry.uidvalidity != box.uidvalidity:
            return await self._load(store, box)
        async with entry.lock:
            if self._entries.get(box.id) is not entry or entry.modseq > box.highestmodseq:
                # Dropped meanwhile, or a store that went back in time (restored): read it all.
                return await self._load(store, box)
            if entry.modseq < box.highestmodseq:
                # The order of ``refresh``: the caller read HIGHESTMODSEQ first. Every change
                # and expunge raises it, so an equal one means nothing to read: concurrent
                # SELECTs of one mailbox queue on this lock, and need not queue on the store.
                expunged = await store.expunged_since(box.id, entry.modseq)
                changed = await store.changes_since(box.id, entry.modseq)
                _apply(entry.infos, expunged, changed)
                entry.fields.drop(e.uid for e in expunged)
                entry.modseq = box.highestmodseq
            self._entries.move_to_end(box.id)
            self._trim()  # the field caches grow between reads
            return list(entry.infos.values()), entry.modseq, entry.fields

    async def _load(self, store: Store, box: Mailbox) -> tuple[list[MessageInfo], int, FieldCache]:
        infos = await store.list_messages(box.id)
        old = self._entries.pop(box.id, None)
        # The parse of a UID never changes while UIDVALIDITY stays: its fields may be kept.
        fields = old.fields if old and old.uidvalidity == box.uidvalidity else FieldCache()
        if len(infos) <= self.max_messages:
            by_uid = {i.uid: i for i in infos}
            entry = _Listing(box.uidvalidity, box.highestmodseq, by_uid, fields)
            self._entries[box.id] = entry
            self._trim()
        return infos, box.highestmodseq, fields

    def _trim(self) -> None:
        """Drops the least recently read listings until the rest hold at most ``max_messages``
        messages and cached fields together."""
        total = sum(len(e) for e in self._entries.values())
        while total > self.max_messages and self._entries:
            _, oldest = self._entries.popitem(last=False)
            total -= len(oldest)


def _apply(
    infos: dict[int, MessageInfo], expunged: Sequence[Expunged], changed: Sequence[MessageInfo]
) -> None:
    """Brings a listing up to date; ``infos`` stays in ascending UID order."""
    for gone in expunged:
        infos.pop(gone.uid, None)
    top = next(reversed(infos), 0)
    late: list[MessageInfo] = []
    for info in changed:  # ascending by UID
        if info.uid in infos or info.uid > top:
            infos[info.uid] = info  # a changed one keeps its place, a new one goes last
        else:
            late.append(info)  # below the top but unknown: not from a store that keeps UIDs
    if late:
        merged = sorted([*infos.values(), *late], key=lambda i: i.uid)
        infos.clear()
        infos.update((i.uid, i) for i in merged)
