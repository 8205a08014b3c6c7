"""Parsers of the ACL commands (RFC 4314 §3): SETACL, DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS.

Theory of operation
-------------------
Each command is a mailbox name and, for some, an identifier (``astring``, RFC 4314 §4 formal
syntax) and a rights string. The rights string is kept as sent (``courriel.wire.imap.acl``
decides what its letters mean), bounded like any astring by the core's line and literal
limits; an identifier or rights string that is no astring is a tagged BAD here.
"""

from __future__ import annotations

from collections.abc import Callable

from courriel.wire.imap.commands import (
    Command,
    DeleteAcl,
    GetAcl,
    ListRights,
    MyRights,
    SetAcl,
)
from courriel.wire.imap.lexer import Reader


def _mailbox(r: Reader, name: str) -> str:
    r.sp(f"mailbox name after {name}")
    return r.mailbox()


def _identifier(r: Reader) -> str:
    r.sp("identifier after the mailbox name")
    return r.astring_text("identifier")


def parse_setacl(r: Reader, uid: bool) -> SetAcl:
    mailbox = _mailbox(r, "SETACL")
    identifier = _identifier(r)
    r.sp("rights after the identifier")
    return SetAcl(r.tag, mailbox, identifier, r.astring_text("rights"))


def parse_deleteacl(r: Reader, uid: bool) -> DeleteAcl:
    mailbox = _mailbox(r, "DELETEACL")
    return DeleteAcl(r.tag, mailbox, _identifier(r))


def parse_getacl(r: Reader, uid: bool) -> GetAcl:
    return GetAcl(r.tag, _mailbox(r, "GETACL"))


def parse_listrights(r: Reader, uid: bool) -> ListRights:
    mailbox = _mailbox(r, "LISTRIGHTS")
    return ListRights(r.tag, mailbox, _identifier(r))


def parse_myrights(r: Reader, uid: bool) -> MyRights:
    return MyRights(r.tag, _mailbox(r, "MYRIGHTS"))


ACL_COMMANDS: dict[str, Callable[[Reader, bool], Command]] = {
    "SETACL": parse_setacl,
    "DELETEACL": parse_deleteacl,
    "GETACL": parse_getacl,
    "LISTRIGHTS": parse_listrights,
    "MYRIGHTS": parse_myrights,
}
