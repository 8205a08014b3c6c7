"""NOTIFY (RFC 5465): what a session is told, unasked, about mailboxes it has not selected.

Theory of operation
-------------------
The session already follows its user's change events (``store.events``, in-process on SQLite,
LISTEN/NOTIFY on PostgreSQL). ``Notifier`` sorts each change against the client's event groups
and remembers what to say: the ids of mailboxes whose messages changed (a set, so a burst of
deliveries costs one STATUS line, and memory stays bounded by the user's mailboxes) and the
LIST lines of created, renamed and deleted mailboxes (bounded by ``MAX_LISTS``; past it the
notifier tells the client to look again with ``* OK [NOTIFICATIONOVERFLOW]``, §5.8). The
adapter (``net/imap.py``) waits on the session's ``wake`` between commands as in IDLE, and
``render`` turns what is remembered into responses: a STATUS per mailbox with the items its
events speak of (``Notifier.items``: §5.2, §5.3, §5.1), and for
MailboxName a LIST with OLDNAME for a rename or \\NonExistent for a deletion (§5.4).

Groups are matched in the order given and the first group whose filter takes the mailbox
decides (so ``(MAILBOXES Junk NONE)`` first silences Junk): INBOXES is INBOX (courriel delivers
nowhere else), PERSONAL every one of the user's own (§6.2: the personal namespace), SUBSCRIBED
the subscriptions when NOTIFY was given, SUBTREE a name and everything below it, MAILBOXES the
names themselves; the last three take other users' mailboxes too, by their names in the
shared namespace (``shared/owner/name``).

Other users' mailboxes. Their changes are published on their owner's channel, so the session
follows, besides its user's, the channel of each owner of a mailbox shared with the user
(``owners``), when a group can take such a mailbox at all (SUBSCRIBED, or SUBTREE and
MAILBOXES naming one); at most ``MAX_OWNERS`` (past it NOTIFY is refused with
``NO [NOTIFICATIONOVERFLOW]``, or, when sharing grows later, ends with an untagged one, §5.8).
Nothing polls: a grant or withdrawal is also published on the grantee's channel
(``Store.set_acl``), and an owner's mailbox created, renamed or deleted, or an ACL changed,
marks the list ``stale``; ``render`` then reads the user's shared mailboxes again and tells
the differences as MailboxName events (a new "l" as a new mailbox, a lost one as
\\NonExistent, §5.9). Rights are kept (RFC 4314): message events and STATUS need "r",
MailboxName needs "l". The owner's subscriptions and metadata are theirs and never reported.

The selected mailbox belongs to SELECTED or SELECTED-DELAYED alone (§6.1):
with one of them its changes are pushed at once (EXISTS, FETCH, and with SELECTED also EXPUNGE
or VANISHED, §5.2); without, they wait for the next command as usual.

MessageNew's fetch attributes (§5.2) go with SELECTED or SELECTED-DELAYED only (other
mailboxes get STATUS, never FETCH: elsewhere they are refused with BAD). The view remembers
the UIDs each EXISTS announced (``SelectedView.arrived``); the session hands them to
``new_message_fetch``, which reads them as a FETCH of those attributes plus UID that never
sets \\Seen, and sends that after the EXISTS and before any ESEARCH update (§7). Messages the
session added itself (APPEND, COPY, MOVE, REPLACE into the selected mailbox) get none (§5.2).

Supported events: MessageNew (with or without fetch attributes), MessageExpunge, FlagChange,
MailboxName, SubscriptionChange, MailboxMetadataChange and ServerMetadataChange (the names of
the entries the user's sessions set, RFC 5464 §4.4.2); any other gets ``NO [BADEVENT (...)]``
listing these (§5).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from courriel.session import imap_messages
from courriel.session.imap_acl import is_shared, shared_name
from courriel.session.imap_mailboxes import DELIMITER
from courriel.session.imap_state import Io, SessionState
from courriel.store.base import Change, ChangeKind, Mailbox, NotFound, SharedMailbox, Store
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.fetch import FetchAttribute, FetchItem
from courriel.wire.imap.metadata import metadata_names
from courriel.wire.imap.sequence import SequenceSet

SUPPORTED = (
    "MessageNew",
    "MessageExpunge",
    "FlagChange",
    "MailboxName",
    "SubscriptionChange",
    "MailboxMetadataChange",
    "ServerMetadataChange",
)
MAX_LISTS = 1000
# Other users whose change events one session follows for NOTIFY (one subscription each).
MAX_OWNERS = 20
_MESSAGE_EVENT = {
    ChangeKind.MESSAGES_ADDED: "MessageNew",
    ChangeKind.EXPUNGED: "MessageExpunge",
    ChangeKind.FLAGS_CHANGED: "FlagChange",
}
_SELECTED = ("SELECTED", "SELECTED-DELAYED")
# Owner changes after which the shared mailboxes are read again (names, rights, new ones).
_SHARED_CHANGES = (
    ChangeKind.MAILBOX_CREATED,
    ChangeKind.MAILBOX_RENAMED,
    ChangeKind.MAILBOX_DELETED,
    ChangeKind.ACL_CHANGED,
    ChangeKind.RESYNC,
)


@dataclass(frozen=True, slots=True)
class SharedBox:
    """Another user's mailbox as the user names it (``shared/owner/name``), with the rights."""

    name: str
    owner_id: int
    rights: str


def shared_boxes(found: Iterable[SharedMailbox]) -> dict[int, SharedBox]:
    return {
        s.mailbox.id: SharedBox(shared_name(s.owner, s.mailbox.name), s.mailbox.user_id, s.rights)
        for s in found
    }


def refusal(cmd: c.Notify) -> bytes | None:
    """The refusal of a NOTIFY asking for events courriel does not send (RFC 5465 §5), or
    for fetch attributes where no FETCH can go (§5.2: only the selected mailbox gets one)."""
    for group in cmd.groups or ():
        unsupported = [e for e in group.events if e not in SUPPORTED]
        if unsupported:
            code = b"BADEVENT (" + " ".join(SUPPORTED).encode("ascii") + b")"
            return r.no(cmd.tag, f"Not supported: {', '.join(unsupported)}", code)
        if group.new_fetch and group.filter not in _SELECTED:
            return r.bad(cmd.tag, "MessageNew takes fetch attributes only for SELECTED")
    return None


@dataclass(slots=True)
class Notifier:
    groups: tuple[c.NotifyGroup, ...]
    names: dict[int, str]  # the user's mailboxes by id, kept current from the events
    subscribed: set[str]  # kept current from the events, for the SUBSCRIBED filter
    pending: dict[int, None] = field(default_factory=dict)  # mailbox ids, in order of change
    lists: list[tuple[list[str], str, str | None]] = field(default_factory=list)
    metadata: list[tuple[str, list[str]]] = field(default_factory=list)  # (mailbox, entries)
    overflow: bool = False
    user_id: int = 0
    shared: dict[int, SharedBox] = field(default_factory=dict)  # other users' mailboxes, by id
    stale: bool = False  # ``shared`` must be read again before the next render

    def owners(self) -> set[int]:
        """The users whose changes the session must follow: the owners of the mailboxes
        shared with the user, when a group may take other users' mailboxes at all (SUBSCRIBED,
        or SUBTREE and MAILBOXES naming one; PERSONAL and INBOXES are the user's own, RFC 5465
        §6.2, §6.3)."""
        if not any(_may_take_shared(g) for g in self.groups):
            return set()
        return {b.owner_id for b in self.shared.values() if "l" in b.rights or "r" in b.rights}

    def _name_of(self, mailbox_id: int) -> str | None:
        own = self.names.get(mailbox_id)
        if own is not None:
            return own
        box = self.shared.get(mailbox_id)
        return box.name if box is not None else None

    def _readable(self, mailbox_id: int) -> bool:
        """RFC 5465 §5 with RFC 4314: message events need "r" on another user's mailbox."""
        box = self.shared.get(mailbox_id)
        return box is None or "r" in box.rights

    @property
    def new_fetch(self) -> tuple[FetchAttribute, ...]:
        """What to FETCH of each new message of the selected mailbox (RFC 5465 §5.2)."""
        for group in self.groups:
            if group.filter in _SELECTED and "MessageNew" in group.events:
                return group.new_fetch
        return ()

    @property
    def selected_mode(self) -> str | None:
        """SELECTED or SELECTED-DELAYED when changes of the selected mailbox are pushed."""
        for group in self.groups:
            if group.filter in _SELECTED and group.events:
                return group.filter
        return None

    def _group(self, name: str) -> c.NotifyGroup | None:
        for group in self.groups:
            if _matches(group, name, self.subscribed):
                return group
        return None

    def wants(self, name: str, event: str) -> bool:
        group = self._group(name)
        return group is not None and event in group.events

    def items(self, name: str, *, condstore: bool) -> tuple[str, ...]:
        """The STATUS items that tell of the events the mailbox's group asks for: MESSAGES,
        UIDNEXT and UIDVALIDITY for MessageNew (RFC 5465 §5.2), MESSAGES for MessageExpunge
        (§5.3), UIDVALIDITY and HIGHESTMODSEQ for FlagChange (§5.1); HIGHESTMODSEQ too once
        CONDSTORE is on."""
        group = self._group(name)
        events = group.events if group is not None else ()
        wanted: dict[str, None] = {}
        if "MessageNew" in events:
            wanted.update(dict.fromkeys(("MESSAGES", "UIDNEXT", "UIDVALIDITY")))
        if "MessageExpunge" in events:
            wanted["MESSAGES"] = None
        if "FlagChange" in events:
            wanted.update(dict.fromkeys(("UIDVALIDITY", "HIGHESTMODSEQ")))
        if wanted and condstore:
            wanted["HIGHESTMODSEQ"] = None
        return tuple(wanted)

    def note(self, change: Change, selected_id: int | None) -> bool:
        """Remembers what ``change`` means for the client; True when there is news."""
        event = _MESSAGE_EVENT.get(change.kind)
        if event is not None:
            name = self._name_of(change.mailbox_id)
            if name is None or change.mailbox_id == selected_id or not self.wants(name, event):
                return False
            if not self._readable(change.mailbox_id):
                return False
            self.pending[change.mailbox_id] = None
            return True
        if change.user_id != self.user_id:
            # The owner's subscriptions and metadata are theirs; their mailboxes' names and
            # ACLs are read again before the next render.
            return self._owner_change(change, selected_id)
        if change.kind is ChangeKind.RESYNC:
            self.stale = bool(self.shared) or self.stale
            self.pending.update((i, None) for i, n in self.names.items() if i != selected_id)
            return bool(self.pending) or self.stale
        if change.kind is ChangeKind.ACL_CHANGED and change.mailbox_id not in self.names:
            self.stale = True  # a grant or a withdrawal on another user's mailbox
            return True
        return self._mailbox_event(change)

    def _owner_change(self, change: Change, selected_id: int | None) -> bool:
        if change.kind not in _SHARED_CHANGES:
            return False
        self.stale = True
        if change.kind is ChangeKind.RESYNC:
            self.pending.update(
                (i, None)
                for i, b in self.shared.items()
                if b.owner_id == change.user_id and i != selected_id and "r" in b.rights
            )
        return True

    async def reread(self, store: Store) -> None:
        """Takes the shared mailboxes as they are now; the differences are MailboxName events
        (RFC 5465 §5.4), and a right granted or taken away counts as the mailbox appearing or
        going (§5.9): LIST for a new "l", LIST \\NonExistent for a lost one, OLDNAME for a
        rename."""
        self.stale = False
        fresh = shared_boxes(await store.shared_mailboxes(self.user_id))
        old = self.shared
        self.shared = fresh
        for mailbox_id, was in old.items():
            now = fresh.get(mailbox_id)
            if "l" not in was.rights:
                continue
            if now is None or "l" not in now.rights:
                self._name_event(["\\NonExistent"], was.name, None)
            elif now.name != was.name:
                self._name_event([], now.name, was.name)
        for mailbox_id, now in fresh.items():
            was_listed = mailbox_id in old and "l" in old[mailbox_id].rights
            if "l" in now.rights and not was_listed:
                self._name_event([], now.name, None)
        for mailbox_id in list(self.pending):
            if mailbox_id not in self.names and not (
                mailbox_id in fresh and "r" in fresh[mailbox_id].rights
            ):
                del self.pending[mailbox_id]

    def _name_event(self, attrs: list[str], name: str, old: str | None) -> None:
        if any(self.wants(n, "MailboxName") for n in (name, old) if n is not None):
            self._list(attrs, name, old)

    def _subscription_event(self, change: Change) -> bool:
        """RFC 5465 §5.5: a LIST with \\Subscribed after SUBSCRIBE, without after UNSUBSCRIBE."""
        on = change.kind is ChangeKind.SUBSCRIBED
        self._subscribe(change.name, on)
        if not self.wants(change.name, "SubscriptionChange"):
            return False
        attrs = ["\\Subscribed"] if on else []
        shared = {b.name for b in self.shared.values() if "l" in b.rights}
        if change.name not in self.names.values() and change.name not in shared:
            attrs.insert(0, "\\NonExistent")
        return self._list(attrs, change.name, None)

    def _subscribe(self, name: str, on: bool) -> None:
        if on:
            self.subscribed.add(name)
        else:
            self.subscribed.discard(name)

    def _list(self, attrs: list[str], name: str, old: str | None) -> bool:
        if len(self.lists) >= MAX_LISTS:
            self.overflow = True  # RFC 5465 §5.8
        else:
            self.lists.append((attrs, name, old))
        return True

    def _metadata_event(self, change: Change) -> bool:
        """RFC 5465 §5.6, §5.7: the names of the entries that changed (RFC 5464 §4.4.2)."""
        entries = change.name.split()
        if change.mailbox_id == 0:
            wanted = any("ServerMetadataChange" in g.events for g in self.groups)
            name = ""
        else:
            known = self.names.get(change.mailbox_id)
            wanted = known is not None and self.wants(known, "MailboxMetadataChange")
            name = known or ""
        if not wanted or not entries:
            return False
        if len(self.lists) + len(self.metadata) >= MAX_LISTS:
            self.overflow = True
        else:
            self.metadata.append((name, entries))
        return True

    def _mailbox_event(self, change: Change) -> bool:
        if change.kind in (ChangeKind.SUBSCRIBED, ChangeKind.UNSUBSCRIBED):
            return self._subscription_event(change)
        if change.kind is ChangeKind.METADATA_CHANGED:
            return self._metadata_event(change)
        old = self.names.get(change.mailbox_id)
        if change.kind is ChangeKind.MAILBOX_CREATED:
            self.names[change.mailbox_id] = change.name
            line: tuple[list[str], str, str | None] = ([], change.name, None)
        elif change.kind is ChangeKind.MAILBOX_RENAMED and old is not None:
            self.names[change.mailbox_id] = change.name
            line = ([], change.name, old)  # RFC 5465 §5.4: with OLDNAME
        elif change.kind is ChangeKind.MAILBOX_DELETED and old is not None:
            del self.names[change.mailbox_id]
            self.pending.pop(change.mailbox_id, None)
            line = (["\\NonExistent"], old, None)
        else:
            return False
        if not any(self.wants(n, "MailboxName") for n in (line[1], line[2]) if n is not None):
            return False
        return self._list(*line)

    async def render(self, store: Store, *, utf8: bool, condstore: bool) -> bytes:
        if self.stale:
            await self.reread(store)
        out: list[bytes] = []
        if self.overflow:
            out.append(r.untagged("OK", "Too many changes: list again", b"NOTIFICATIONOVERFLOW"))
        else:
            for attrs, name, old in self.lists:
                out.append(r.list_item(attrs, DELIMITER, name, utf8=utf8, oldname=old))
            for name, entries in self.metadata:
                out.append(metadata_names(name, entries, utf8=utf8))
        self.lists.clear()
        self.metadata.clear()
        self.overflow = False
        pending, self.pending = list(self.pending), {}
        for mailbox_id in pending:
            known = self._name_of(mailbox_id)
            if known is not None and self._readable(mailbox_id):
                items = self.items(known, condstore=condstore)
                out.append(await status_line(store, mailbox_id, known, items, utf8=utf8))
        return b"".join(out)

    def status_targets(self, selected_id: int | None) -> list[tuple[int, str]]:
        """The mailboxes NOTIFY SET STATUS reports at once (RFC 5465 §3.1): those a group
        with message events takes, the selected one aside; other users' mailboxes with "r"."""
        readable = [(i, b.name) for i, b in self.shared.items() if "r" in b.rights]
        return [
            (i, n)
            for i, n in sorted([*self.names.items(), *readable], key=lambda item: item[1])
            if i != selected_id and self.items(n, condstore=False)
        ]


def _matches(group: c.NotifyGroup, name: str, subscribed: Iterable[str]) -> bool:
    match group.filter:
        case "INBOXES":
            return name == "INBOX"
        case "PERSONAL":
            return not is_shared(name)  # RFC 5465 §6.2: the personal namespace
        case "SUBSCRIBED":
            return name in subscribed
        case "SUBTREE":
            return any(name == m or name.startswith(m + DELIMITER) for m in group.mailboxes)
        case "MAILBOXES":
            return name in group.mailboxes
    return False  # SELECTED and SELECTED-DELAYED take only the selected mailbox


async def status_line(
    store: Store, mailbox_id: int, name: str, items: Sequence[str], *, utf8: bool
) -> bytes:
    try:
        st = await store.mailbox_status(mailbox_id)
    except NotFound:
        return b""  # deleted meanwhile: its MailboxName event says so
    values = {
        "MESSAGES": st.messages,
        "UIDNEXT": st.mailbox.uidnext,
        "UIDVALIDITY": st.mailbox.uidvalidity,
        "HIGHESTMODSEQ": st.mailbox.highestmodseq,
    }
    return r.status(name, [(item, values[item]) for item in items], utf8=utf8)


def _may_take_shared(group: c.NotifyGroup) -> bool:
    if not group.events or group.filter in _SELECTED:
        return False
    if group.filter == "SUBSCRIBED":
        return True
    return any(is_shared(m) for m in group.mailboxes)


def start(
    cmd: c.Notify,
    boxes: Iterable[Mailbox],
    subscribed: Iterable[str],
    user_id: int = 0,
    shared: Iterable[SharedMailbox] = (),
) -> Notifier | None:
    if cmd.groups is None:
        return None
    names = {b.id: b.name for b in boxes}
    return Notifier(
        cmd.groups, names, set(subscribed), user_id=user_id, shared=shared_boxes(shared)
    )


async def new_message_fetch(
    state: SessionState, io: Io, uids: Sequence[int], attributes: Sequence[FetchAttribute]
) -> bytes:
    """The FETCH responses that follow the EXISTS of new messages in the selected mailbox
    (RFC 5465 §5.2): the client's attributes and the UID, read as a FETCH that may not set
    \\Seen, since an unsolicited response changes nothing (§5.2 asks clients not to ask for
    such attributes; those who do get them as with PEEK)."""
    view = state.selected()
    seqs = [n for u in uids if (n := view.seq_of(u)) is not None]
    if not seqs or not attributes:
        return b""
    wanted = (FetchItem.UID, *attributes)
    cmd = c.Fetch("*", False, SequenceSet(tuple((n, n) for n in seqs)), wanted)
    held = _Held(io)
    reply = await imap_messages.fetch(state, held, cmd, may_set_seen=False)
    # The synthetic command's completion is its last line; only the data goes out.
    end = reply.rfind(b"\r\n", 0, len(reply) - 2)
    return b"".join(held.sent) + (reply[: end + 2] if end >= 0 else b"")


class _Held:
    """An ``Io`` that keeps what a handler sends, so it goes out in its place in the reply."""

    def __init__(self, io: Io) -> None:
        self._io = io
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self._io.transaction()
