"""METADATA (RFC 5464): GETMETADATA and SETMETADATA on mailboxes and on the server.

Theory of operation
-------------------
Annotations live in the store (``courriel.store.sql.metadata``): the mailbox "" stands for the
server (store mailbox id 0), any other name is resolved like every mailbox name, also in the
other users' namespace (``imap_acl.access``). A user reads and writes their own "/private/..."
entries and the "/shared/..." ones; on another user's mailbox that takes "l" and one of
"r s w i p", and "w" to write a shared entry (RFC 5464 §3.3 leaves the rights to the server;
these are the rights that let a user see and change the mailbox's messages). The server's
shared entries are the administrator's: users read them and may not set them.

``/private/specialuse`` of a mailbox (RFC 6154 §4) is read from the mailbox's special-use
attribute, not stored; it is changed with CREATE (USE ...) only.

Limits (RFC 5464 §4.3), all bounded before any work: a value of at most ``MAX_VALUE`` bytes
(``NO [METADATA MAXSIZE n]``), and per mailbox and owner at most ``MAX_ENTRIES`` entries and
``MAX_SCOPE_BYTES`` bytes (``NO [METADATA TOOMANY]``, checked in the store's transaction).
GETMETADATA with MAXSIZE leaves out larger values and says so with ``[METADATA LONGENTRIES n]``.
"""

from __future__ import annotations

from courriel.session.imap.acl import access, refusal
from courriel.session.imap.state import Authenticated
from courriel.store.base import TooMany
from courriel.wire.imap import commands as c
from courriel.wire.imap import metadata as m
from courriel.wire.imap import responses as r

MAX_VALUE = 64 * 1024
MAX_ENTRIES = 100
MAX_SCOPE_BYTES = 1024 * 1024
SERVER = 0  # the store's mailbox id of the server's entries
SPECIALUSE = "/private/specialuse"  # RFC 6154 §4
_ACCESS_RIGHTS = "rswip"


async def _scope(
    state: Authenticated, cmd: c.GetMetadata | c.SetMetadata
) -> tuple[int, str, bytes]:
    """(store mailbox id, special use, refusal): the refusal is empty when access is granted."""
    if cmd.mailbox == "":
        return SERVER, "", b""
    found = await access(state, cmd.mailbox)
    refused = refusal(cmd.tag, found, "l")
    if refused is None and found is not None and not any(x in found.rights for x in _ACCESS_RIGHTS):
        refused = r.no(cmd.tag, "You need a right to read this mailbox", r.NOPERM)
    if refused is not None or found is None:
        return 0, "", refused or b""
    shared_write = isinstance(cmd, c.SetMetadata) and any(
        not m.is_private(entry) for entry, _ in cmd.items
    )
    if shared_write and "w" not in found.rights:
        return 0, "", r.no(cmd.tag, "You need the 'w' right for shared entries", r.NOPERM)
    return found.box.id, found.box.special_use or "", b""


def _under(entry: str, wanted: str, depth: c.Depth) -> bool:
    """Whether ``entry`` is ``wanted`` or a descendant it asks for (RFC 5464 §4.2.2)."""
    if entry == wanted:
        return True
    if depth is c.Depth.ZERO or not entry.startswith(wanted + "/"):
        return False
    return depth is c.Depth.INFINITY or "/" not in entry[len(wanted) + 1 :]


async def getmetadata(state: Authenticated, cmd: c.GetMetadata) -> bytes:
    mailbox_id, special_use, refused = await _scope(state, cmd)
    if refused:
        return refused
    values = await state.store.get_metadata(mailbox_id, state.user_id)
    if special_use:
        values[SPECIALUSE] = special_use.encode("ascii")
    items: list[tuple[str, bytes | None]] = []
    longest = 0
    for wanted in dict.fromkeys(cmd.entries):
        found = [e for e in sorted(values) if _under(e, wanted, cmd.depth)]
        if not found:
            items.append((wanted, None))  # asked for, not set: NIL, as Dovecot answers
        for entry in found:
            value = values[entry]
            if cmd.maxsize is not None and len(value) > cmd.maxsize:
                longest = max(longest, len(value))  # RFC 5464 §4.2.1: left out, reported
                continue
            items.append((entry, value))
    out = [m.metadata_response(cmd.mailbox, items, utf8=state.utf8) if items else b""]
    code = b"METADATA LONGENTRIES %d" % longest if longest else None
    out.append(r.ok(cmd.tag, "GETMETADATA completed", code))
    return b"".join(out)


async def setmetadata(state: Authenticated, cmd: c.SetMetadata) -> bytes:
    too_big = [len(v) for _, v in cmd.items if v is not None and len(v) > MAX_VALUE]
    if too_big:
        return r.no(cmd.tag, "Value too long", b"METADATA MAXSIZE %d" % MAX_VALUE)  # §4.3
    if cmd.mailbox == "" and any(not m.is_private(entry) for entry, _ in cmd.items):
        return r.no(cmd.tag, "The server's shared entries are set by the administrator", r.NOPERM)
    if any(entry == SPECIALUSE for entry, _ in cmd.items) and cmd.mailbox != "":
        return r.no(cmd.tag, "Special use is set with CREATE (USE ...)", r.CANNOT)
    mailbox_id, _, refused = await _scope(state, cmd)
    if refused:
        return refused
    try:
        await state.store.set_metadata(
            mailbox_id,
            state.user_id,
            cmd.items,
            max_entries=MAX_ENTRIES,
            max_bytes=MAX_SCOPE_BYTES,
        )
    except TooMany:
        return r.no(cmd.tag, "Too many metadata entries", b"METADATA TOOMANY")  # RFC 5464 §4.3
    return r.ok(cmd.tag, "SETMETADATA completed")
