"""Mailbox commands: CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB, STATUS, NAMESPACE.

Theory of operation
-------------------
Each handler takes the store, the user and the parsed command and returns the complete
response bytes (untagged lines and the tagged one). Mailbox names arrive as ``str`` (the core
decoded modified UTF-7 or took UTF-8) and are keys in the user's own rows, so no name can reach
another user's mail; ``check_name`` still refuses names that would make the hierarchy ambiguous
(empty levels, a leading "/", wildcards, control characters) with ``NO [CANNOT]``.

The hierarchy delimiter is "/" and there is one personal namespace with an empty prefix.
CREATE and RENAME create missing parents (RFC 9051 §6.3.4 SHOULD; the store does not). DELETE
leaves children in place (RFC 9051 §6.3.5); a name that exists only because it has children is
listed ``\\NonExistent`` (IMAP4rev2) or ``\\Noselect`` (IMAP4rev1) with ``\\HasChildren``.

LIST follows RFC 5258 (LIST-EXTENDED): selection options SUBSCRIBED, RECURSIVEMATCH,
SPECIAL-USE and REMOTE (no remote mailboxes exist), return options SUBSCRIBED, CHILDREN,
SPECIAL-USE and STATUS (RFC 5819). Children and special-use attributes are always returned,
which RFC 9051 §6.3.9 requires and RFC 5258 allows.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from courriel.session.imap import ids as imap_ids
from courriel.session.imap import objects as imap_objects
from courriel.store.base import AlreadyExists, Mailbox, NotFound, Store, StoreError
from courriel.wire.imap import acl
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.listpattern import (
    MAX_PATTERNS,
    ListPattern,
    PatternTooLong,
    compile_pattern,
)

DELIMITER = "/"
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f*%]")
# Bounds on what a client may create, so listing a hierarchy (every name's parents) stays
# cheap: Dovecot's limits are of the same order.
MAX_NAME_CHARS = 1024
MAX_LEVELS = 64


class NameRefusedError(ValueError):
    """A mailbox name courriel will not create (the text says why)."""


def check_name(name: str) -> str:
    """The name to store, without a trailing delimiter; ``NameRefusedError`` when unusable."""
    if name.endswith(DELIMITER):
        name = name[:-1]  # RFC 9051 §6.3.4: a trailing delimiter only declares the intent
    if not name or name.startswith(DELIMITER):
        raise NameRefusedError("Mailbox names may not be empty or start with /")
    if len(name) > MAX_NAME_CHARS or name.count(DELIMITER) >= MAX_LEVELS:
        raise NameRefusedError(
            f"Mailbox names are limited to {MAX_NAME_CHARS} characters and {MAX_LEVELS} levels"
        )
    if _BAD_CHARS.search(name):
        raise NameRefusedError("Mailbox names may not contain control characters, * or %")
    if any(not level for level in name.split(DELIMITER)):
        raise NameRefusedError("Mailbox names may not have empty levels")
    if name.upper() == "INBOX" or name.upper().startswith("INBOX/"):
        name = "INBOX" + name[5:]  # RFC 9051 §5.1: INBOX is case-insensitive
    return name


def parents(name: str) -> list[str]:
    levels = name.split(DELIMITER)
    return [DELIMITER.join(levels[:i]) for i in range(1, len(levels))]


def refused(tag: str, e: NameRefusedError) -> bytes:
    return r.no(tag, str(e), r.CANNOT)


async def _create_parents(store: Store, user_id: int, name: str) -> None:
    existing = {m.name for m in await store.list_mailboxes(user_id)}
    for parent in parents(name):
        if parent not in existing:
            with contextlib.suppress(AlreadyExists):  # made meanwhile: what we wanted
                await store.create_mailbox(user_id, parent)


async def create(store: Store, user_id: int, cmd: c.Create) -> bytes:
    try:
        name = check_name(cmd.mailbox)
    except NameRefusedError as e:
        return refused(cmd.tag, e)
    if len(cmd.special_use) > 1:
        # RFC 6154 §3: a server may refuse combinations it cannot store
        return r.no(cmd.tag, "Only one special-use attribute per mailbox", r.USEATTR)
    special = cmd.special_use[0] if cmd.special_use else None
    if special == "\\All" or special == "\\Flagged":
        return r.no(cmd.tag, "Virtual mailboxes are not supported", r.USEATTR)  # RFC 6154 §3
    await _create_parents(store, user_id, name)
    try:
        box = await store.create_mailbox(user_id, name, special_use=special)
    except AlreadyExists:
        return r.no(cmd.tag, "Mailbox already exists", r.ALREADYEXISTS)  # RFC 5530
    return r.ok(cmd.tag, "CREATE completed", imap_objects.mailbox_id_code(box))  # RFC 8474 §4.1


async def delete(store: Store, user_id: int, cmd: c.Delete) -> bytes:
    if cmd.mailbox.upper() == "INBOX":
        return r.no(cmd.tag, "INBOX cannot be deleted", r.CANNOT)  # RFC 9051 §6.3.5
    try:
        await store.delete_mailbox(user_id, cmd.mailbox)
    except NotFound:
        return r.no(cmd.tag, "No such mailbox", r.NONEXISTENT)
    except StoreError as e:
        if type(e) is not StoreError:
            raise
        return r.no(cmd.tag, str(e) or "Mailbox cannot be deleted", r.CANNOT)
    return r.ok(cmd.tag, "DELETE completed")


async def rename(store: Store, user_id: int, cmd: c.Rename) -> bytes:
    try:
        new = check_name(cmd.new)
    except NameRefusedError as e:
        return refused(cmd.tag, e)
    if new.upper() == "INBOX":
        return r.no(cmd.tag, "INBOX already exists", r.ALREADYEXISTS)  # RFC 9051 §6.3.6
    if await store.get_mailbox(user_id, cmd.old) is None:
        return r.no(cmd.tag, "No such mailbox", r.NONEXISTENT)
    if new.startswith(cmd.old + DELIMITER):
        return r.no(cmd.tag, "Cannot rename a mailbox into itself", r.CANNOT)
    await _create_parents(store, user_id, new)
    try:
        await store.rename_mailbox(user_id, cmd.old, new)
    except NotFound:
        return r.no(cmd.tag, "No such mailbox", r.NONEXISTENT)
    except AlreadyExists:
        return r.no(cmd.tag, "Mailbox already exists", r.ALREADYEXISTS)
    except StoreError as e:
        if type(e) is not StoreError:
            raise
        return r.no(cmd.tag, str(e) or "Mailbox cannot be renamed", r.CANNOT)
    return r.ok(cmd.tag, "RENAME completed")


async def subscribe(store: Store, user_id: int, tag: str, name: str, on: bool) -> bytes:
    try:
        name = check_name(name)
    except NameRefusedError as e:
        return refused(tag, e)
    if on and await store.get_mailbox(user_id, name) is None:
        # RFC 9051 §6.3.7 lets servers refuse names that do not exist; Dovecot does too.
        return r.no(tag, "No such mailbox", r.NONEXISTENT)
    await store.set_subscribed(user_id, name, on)
    return r.ok(tag, ("SUBSCRIBE" if on else "UNSUBSCRIBE") + " completed")


# --- LIST and LSUB -----------------------------------------------------------------------------


def compile_patterns(tag: str, reference: str, patterns: Sequence[str]) -> list[ListPattern]:
    """The compiled patterns, or ``PatternRefusal`` carrying the tagged refusal."""
    if len(patterns) > MAX_PATTERNS:
        raise PatternRefusal(r.no(tag, f"At most {MAX_PATTERNS} patterns per LIST", r.LIMIT))
    try:
        return [compile_pattern(reference, p, DELIMITER) for p in patterns]
    except PatternTooLong as e:
        raise PatternRefusal(r.no(tag, str(e), r.LIMIT)) from None


class PatternRefusal(Exception):  # noqa: N818 - reads as an event
    """LIST or LSUB was refused before any mailbox was read; ``reply`` says why."""

    def __init__(self, reply: bytes) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    box: Mailbox | None  # None: a parent that exists only through its children
    children: bool
    subscribed: bool


def _entries(boxes: Sequence[Mailbox], subscribed: set[str]) -> dict[str, _Entry]:
    by_name = {b.name: b for b in boxes}
    names = set(by_name)
    for name in list(names):
        names.update(parents(name))
    with_children = {p for n in names for p in parents(n)}
    return {
        n: _Entry(n, by_name.get(n), n in with_children, n in subscribed) for n in sorted(names)
    }


def _attributes(e: _Entry, cmd: c.List, *, rev2: bool, subscribed_only: bool) -> list[str]:
    attrs: list[str] = []
    if e.box is None:
        # RFC 5258 §3.4: \NonExistent (which implies \Noselect) for extended LIST and rev2;
        # a plain IMAP4rev1 LIST keeps \Noselect, the only attribute such a client knows.
        attrs.append("\\NonExistent" if rev2 or cmd.extended else "\\Noselect")
    attrs.append("\\HasChildren" if e.children else "\\HasNoChildren")  # RFC 3348
    if e.box is not None and e.box.special_use:
        attrs.append(e.box.special_use)  # RFC 6154 §2
    if e.subscribed and (subscribed_only or "SUBSCRIBED" in cmd.returns):
        attrs.append("\\Subscribed")  # RFC 5258 §3.2
    return attrs


async def list_mailboxes(
    store: Store,
    user_id: int,
    cmd: c.List,
    *,
    utf8: bool,
    rev2: bool,
    status_of: StatusFn,
    shared: Sequence[tuple[Mailbox, str]] = (),
) -> bytes:
    """``shared``: other users' mailboxes the user may list, named as the user knows them,
    with the user's rights on each (RFC 4314); the user has every right on their own."""
    if cmd.patterns == ("",):
        # RFC 9051 §6.3.9: the empty pattern asks for the delimiter and the root.
        return r.list_item(["\\Noselect"], DELIMITER, "", utf8=utf8) + r.ok(
            cmd.tag, "LIST completed"
        )
    try:
        patterns = compile_patterns(cmd.tag, cmd.reference, cmd.patterns)
    except PatternRefusal as refusal:
        return refusal.reply
    boxes = await store.list_mailboxes(user_id)
    subs = set(await store.subscriptions(user_id))
    rights = {box.id: granted for box, granted in shared}
    entries = _entries([*boxes, *(box for box, _ in shared)], subs)
    sel = cmd.selection
    subscribed_only = "SUBSCRIBED" in sel
    if subscribed_only:
        for name in subs - set(entries):  # subscribed names that no longer exist
            entries[name] = _Entry(name, None, False, True)
    # RFC 5258 §3.5: CHILDINFO marks a parent whose subscribed descendant the patterns do not
    # list themselves; one pass over the subscriptions, not one per listed name.
    unlisted = (s for s in subs if not any(p.matches(s) for p in patterns))
    sub_parents = {p for s in unlisted for p in parents(s)}
    out: list[bytes] = []
    for name in sorted(entries):
        e = entries[name]
        if not any(p.matches(name) for p in patterns):
            continue
        childinfo = False
        if subscribed_only and not e.subscribed:
            # RFC 5258 §3.5: with RECURSIVEMATCH a parent of unlisted subscribed children is.
            if not ("RECURSIVEMATCH" in sel and name in sub_parents):
                continue
            childinfo = True
        if "SPECIAL-USE" in sel and (e.box is None or not e.box.special_use):
            continue
        attrs = _attributes(e, cmd, rev2=rev2, subscribed_only=subscribed_only)
        out.append(r.list_item(attrs, DELIMITER, name, utf8=utf8, childinfo=childinfo))
        mine = rights.get(e.box.id, acl.RIGHTS) if e.box is not None else ""
        if cmd.status is not None and e.box is not None and "r" in mine:
            # RFC 5819 §2; RFC 4314 §4: STATUS of another user's mailbox needs "r"
            out.append(await status_of(e.box, cmd.status))
        if "MYRIGHTS" in cmd.returns and e.box is not None:
            out.append(acl.myrights_response(name, mine, utf8=utf8))  # RFC 8440 §3
    out.append(r.ok(cmd.tag, "LIST completed"))
    return b"".join(out)


async def lsub(
    store: Store, user_id: int, cmd: c.Lsub, *, utf8: bool, shared: Sequence[str] = ()
) -> bytes:
    """``shared``: names of other users' mailboxes the user may list (RFC 4314)."""
    if cmd.pattern == "":
        return r.lsub_item(["\\Noselect"], DELIMITER, "", utf8=utf8) + r.ok(
            cmd.tag, "LSUB completed"
        )
    try:
        [rx] = compile_patterns(cmd.tag, cmd.reference, [cmd.pattern])
    except PatternRefusal as refusal:
        return refusal.reply
    subs = sorted(set(await store.subscriptions(user_id)))
    existing = {b.name for b in await store.list_mailboxes(user_id)} | set(shared)
    out: list[bytes] = []
    listed: set[str] = set()
    for name in subs:
        if rx.matches(name):
            attrs = [] if name in existing else ["\\Noselect"]
            out.append(r.lsub_item(attrs, DELIMITER, name, utf8=utf8))
            listed.add(name)
            continue
        for parent in parents(name):
            # RFC 3501 §6.3.9: "%" matching a parent of a subscribed name lists it \Noselect.
            if parent not in listed and parent not in subs and rx.matches(parent):
                out.append(r.lsub_item(["\\Noselect"], DELIMITER, parent, utf8=utf8))
                listed.add(parent)
    out.append(r.ok(cmd.tag, "LSUB completed"))
    return b"".join(out)


# --- STATUS ------------------------------------------------------------------------------------


class StatusFn:
    """Builds ``* STATUS`` lines; shared by STATUS and LIST RETURN (STATUS)."""

    def __init__(self, store: Store, *, utf8: bool, appendlimit: int) -> None:
        self.store = store
        self.utf8 = utf8
        self.appendlimit = appendlimit

    async def __call__(self, box: Mailbox, items: Sequence[str]) -> bytes:
        st = await self.store.mailbox_status(box.id)
        deleted = recent = 0
        if "DELETED" in items or "RECENT" in items:
            infos = await self.store.list_messages(box.id)
            deleted = sum(1 for i in infos if "\\Deleted" in i.flags)
            if "RECENT" in items:
                # RFC 3501 §6.3.10: the messages no session has been given as \\Recent yet
                claimed = await self.store.recent_uid(box.id)
                recent = sum(1 for i in infos if i.uid > claimed)
        values: dict[str, int | bytes] = {
            "MESSAGES": st.messages,
            "UIDNEXT": st.mailbox.uidnext,
            "UIDVALIDITY": st.mailbox.uidvalidity,
            "UNSEEN": st.unseen,
            "DELETED": deleted,
            "SIZE": st.size,  # RFC 8438
            "RECENT": recent,
            "HIGHESTMODSEQ": st.mailbox.highestmodseq,  # RFC 7162 §3.1.9
            "APPENDLIMIT": self.appendlimit,  # RFC 7889 §3
            "MAILBOXID": b"(" + imap_ids.mailbox_id(box).encode("ascii") + b")",  # RFC 8474
        }
        pairs = [(item, values[item]) for item in dict.fromkeys(items) if item in values]
        return r.status(box.name, pairs, utf8=self.utf8)


async def status(
    store: Store, user_id: int, cmd: c.Status, status_of: StatusFn, code: bytes | None = None
) -> bytes:
    """``code`` is the tagged OK's response code (``[HIGHESTMODSEQ]``, RFC 7162 §3.1)."""
    box = await store.get_mailbox(user_id, cmd.mailbox)
    if box is None:
        return r.no(cmd.tag, "No such mailbox", r.NONEXISTENT)
    return await status_of(box, cmd.items) + r.ok(cmd.tag, "STATUS completed", code)
