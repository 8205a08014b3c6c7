"""Access control (RFC 4314, RFC 8440): who may use a mailbox, and the names others reach it by.

Theory of operation
-------------------
A user owns their mailboxes and has every right on them (``ALL_RIGHTS``); nothing about the
owner's own mailboxes is stored or read, so their commands pay nothing for ACLs. An owner (or
anyone holding "a" on the mailbox) grants rights to other users of the server, or to
"anyone", with SETACL; the grants live in the store (``courriel.store.sql.acl``).

A grantee reaches a shared mailbox in the other users' namespace (RFC 2342): its name is
``shared/<owner address>/<owner's name for it>``, e.g. ``shared/alice@example.org/Invoices``.
The prefix is the one Dovecot documents for its shared namespace (``shared/%u/``), so users who
move between the two, and clients configured for Dovecot, see the same names; the owner's
full address is the second level because courriel's login names are addresses.

``access`` resolves a name to the mailbox and the user's rights: a personal name costs the
one lookup it always did, a shared name one read of the store (owner, mailbox and grants
together). A mailbox on which the user holds no right at all, or none that would reveal it
("l" for listing, or the right the command needs), is answered exactly like one that does not
exist (RFC 4314 §4, §7: a user without "l" must not learn that it exists).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from courriel.session.imap.mailboxes import DELIMITER
from courriel.session.imap.state import Authenticated, SessionState
from courriel.store.base import ALL_RIGHTS, ANYONE, Mailbox, StoreError
from courriel.wire.imap import acl
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r

SHARED_ROOT = "shared"  # RFC 2342 other users' namespace, Dovecot's prefix (module docstring)
SHARED_PREFIX = SHARED_ROOT + DELIMITER
# Rights of which one is needed to learn that a mailbox exists via MYRIGHTS (RFC 4314 §4).
_MYRIGHTS_NEEDS = "lrikxa"


@dataclass(frozen=True, slots=True)
class Access:
    """A mailbox as one user reaches it."""

    box: Mailbox  # with the owner's name for it
    rights: str  # the user's rights, letters of ALL_RIGHTS
    owner: str  # the owner's address
    name: str  # the name the user knows it by


def is_shared(name: str) -> bool:
    """Whether a name lies in the other users' namespace."""
    return name == SHARED_ROOT or name.startswith(SHARED_PREFIX)


def shared_parts(name: str) -> tuple[str, str] | None:
    """(owner address, owner's mailbox name) of ``shared/owner/name``, else None."""
    if not name.startswith(SHARED_PREFIX):
        return None
    owner, _, rest = name[len(SHARED_PREFIX) :].partition(DELIMITER)
    if not owner or not rest:
        return None
    return owner, rest


def shared_name(owner: str, name: str) -> str:
    return SHARED_PREFIX + owner + DELIMITER + name


async def access(state: Authenticated, name: str) -> Access | None:
    """The mailbox ``name`` reaches and the user's rights there, or None: no such mailbox, or
    one on which the user has no right at all."""
    user = state.user
    if not is_shared(name):
        box = await state.store.get_mailbox(user.id, name)
        return None if box is None else Access(box, ALL_RIGHTS, user.address, name)
    parts = shared_parts(name)
    found = await state.store.shared_mailbox(user.id, *parts) if parts is not None else None
    if found is None or not found.rights:
        # A mailbox of the user's own under this name, made before the prefix was taken.
        own = await state.store.get_mailbox(user.id, name)
        return None if own is None else Access(own, ALL_RIGHTS, user.address, name)
    # Named by the owner's stored address, so the name the user sent and later listings agree.
    shown = shared_name(found.owner, found.mailbox.name)
    return Access(found.mailbox, found.rights, found.owner, shown)


def refusal(tag: str, found: Access | None, needed: str) -> bytes | None:
    """None when ``found`` exists for the user with every right in ``needed``; else the NO.

    Without "l" (nor the right asked for) the mailbox is one that does not exist (RFC 4314 §4);
    with "l" the user knows it exists and learns that a right is missing.
    """
    if found is not None and all(n in found.rights for n in needed):
        return None
    if found is None or "l" not in found.rights:
        return r.no(tag, "No such mailbox", r.NONEXISTENT)
    return r.no(tag, f"You need the {needed!r} right(s) on this mailbox", r.NOPERM)  # RFC 5530


# --- the ACL commands (RFC 4314 §3) -------------------------------------------------------------


async def command(state: Authenticated, cmd: c.AclCommand) -> bytes:
    found = await access(state, cmd.mailbox)
    if isinstance(cmd, c.MyRights):
        # RFC 4314 §4: MYRIGHTS needs any of "l r i k x a"
        if found is None or not any(n in found.rights for n in _MYRIGHTS_NEEDS):
            return r.no(cmd.tag, "No such mailbox", r.NONEXISTENT)
        reply = acl.myrights_response(found.name, found.rights, utf8=state.utf8)
        return reply + r.ok(cmd.tag, "MYRIGHTS completed")
    refused = refusal(cmd.tag, found, "a")  # RFC 4314 §4: the other four need "a"
    if refused is not None:
        return refused
    assert found is not None
    match cmd:
        case c.GetAcl():
            return await _getacl(state, cmd, found)
        case c.ListRights():
            return _listrights(state, cmd, found)
        case c.SetAcl() | c.DeleteAcl():
            return await _setacl(state, cmd, found)


async def _getacl(state: SessionState, cmd: c.GetAcl, found: Access) -> bytes:
    entries = [(found.owner, ALL_RIGHTS)]  # the owner's implicit rights come first
    entries += [(e.identifier, e.rights) for e in await state.store.get_acl(found.box.id)]
    reply = acl.acl_response(found.name, entries, utf8=state.utf8)
    return reply + r.ok(cmd.tag, "GETACL completed")


def _listrights(state: SessionState, cmd: c.ListRights, found: Access) -> bytes:
    if cmd.identifier.lower() == found.owner.lower():
        # The owner always holds every right: nothing is optional (RFC 4314 §3.7).
        line = acl.listrights_response(found.name, cmd.identifier, ALL_RIGHTS, [], utf8=state.utf8)
    else:
        optional = list(ALL_RIGHTS)  # each right may be granted on its own
        line = acl.listrights_response(found.name, cmd.identifier, "", optional, utf8=state.utf8)
    return line + r.ok(cmd.tag, "LISTRIGHTS completed")


async def _setacl(state: SessionState, cmd: c.SetAcl | c.DeleteAcl, found: Access) -> bytes:
    verb = "SETACL" if isinstance(cmd, c.SetAcl) else "DELETEACL"
    mode, rights = "=", ""
    if isinstance(cmd, c.SetAcl):
        try:
            mode, rights = acl.parse_mod_rights(cmd.rights)
        except acl.BadRights as e:
            return r.bad(cmd.tag, str(e))  # RFC 4314 §3.1: unknown rights get BAD
    identifier = cmd.identifier
    if identifier.startswith("-"):
        # RFC 4314 §2: negative rights are optional; courriel keeps none.
        return r.no(cmd.tag, "Negative rights are not supported", r.CANNOT)
    if identifier.lower() == found.owner.lower():
        return r.no(cmd.tag, "The owner always has every right", r.CANNOT)
    if identifier.lower() == "anyone":
        grantee = ANYONE
    else:
        user = await state.store.get_user(identifier)
        if user is None:
            return r.no(cmd.tag, f"No user {identifier} on this server", r.NONEXISTENT)
        grantee = user.id
    current = ""
    if mode != "=":
        current = next(
            (e.rights for e in await state.store.get_acl(found.box.id) if e.grantee_id == grantee),
            "",
        )
    try:
        await state.store.set_acl(found.box.id, grantee, acl.apply_mod(current, mode, rights))
    except StoreError as e:
        if type(e) is not StoreError:
            raise
        return r.no(cmd.tag, str(e), r.CANNOT)
    return r.ok(cmd.tag, f"{verb} completed")


async def listable(state: Authenticated) -> list[tuple[Mailbox, str]]:
    """Other users' mailboxes the user may list ("l", RFC 4314 §4), under their shared names,
    with the user's rights on each."""
    out = []
    for shared in await state.store.shared_mailboxes(state.user_id):
        if "l" in shared.rights:
            name = shared_name(shared.owner, shared.mailbox.name)
            out.append((dataclasses.replace(shared.mailbox, name=name), shared.rights))
    return out


def namespace(tag: str, utf8: bool) -> bytes:
    # RFC 2342 / RFC 9051 §6.3.10: the personal namespace and the other users' one; no
    # namespace of mailboxes shared without an owner.
    other = [(SHARED_PREFIX, DELIMITER)]
    reply = r.namespace([("", DELIMITER)], other, None, utf8=utf8)
    return reply + r.ok(tag, "NAMESPACE completed")
