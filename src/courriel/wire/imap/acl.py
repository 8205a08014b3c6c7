"""Rights strings of RFC 4314 and the ACL, LISTRIGHTS and MYRIGHTS responses.

Theory of operation
-------------------
The rights are the letters of ``RIGHTS`` (RFC 4314 §2.1). Two letters of RFC 2086 live on as
*virtual* rights (§2.1.1): courriel reads "c" as "k" and "d" as "x", "t" and "e" (the second
grouping of §2.1.1, as Dovecot does: DELETE is governed by "x", so "d" must include it), and it
adds "c" and "d" back whenever a member is granted, in every rights string it sends. A rights
string with any other letter (or a digit: courriel defines no implementation rights) is refused
with BAD, which §3.1 requires rather than ignoring the letter.
"""

from __future__ import annotations

from collections.abc import Sequence

from courriel.wire.imap.strings import astring, mailbox

RIGHTS = "lrswipkxtea"
_VIRTUAL = {"c": "k", "d": "xte"}  # RFC 4314 §2.1.1


class BadRights(ValueError):  # noqa: N818 - reads as "acl.BadRights"
    """A rights string with a letter RFC 4314 does not define (the command gets BAD)."""


def parse_mod_rights(text: str) -> tuple[str, str]:
    """``(mode, rights)``: mode "+" adds, "-" removes, "=" replaces (RFC 4314 §3.1)."""
    mode = "="
    if text[:1] in ("+", "-"):
        mode, text = text[0], text[1:]
    return mode, parse_rights(text)


def parse_rights(text: str) -> str:
    """The real rights a string names, in ``RIGHTS`` order, virtual ones expanded."""
    letters: set[str] = set()
    for ch in text:
        if ch in RIGHTS:
            letters.add(ch)
        elif ch in _VIRTUAL:
            letters.update(_VIRTUAL[ch])
        else:
            raise BadRights(f"Unknown right {ch!r}")  # RFC 4314 §3.1: never ignored silently
    return "".join(r for r in RIGHTS if r in letters)


def apply_mod(current: str, mode: str, rights: str) -> str:
    if mode == "+":
        rights = current + rights
    elif mode == "-":
        rights = "".join(r for r in current if r not in rights)
    return "".join(r for r in RIGHTS if r in rights)


def with_virtual(rights: str) -> str:
    """``rights`` with "c" and "d" added when a member is granted (RFC 4314 §2.1.1 MUST)."""
    out = rights
    for name, members in _VIRTUAL.items():
        if any(m in rights for m in members):
            out += name
    return out


def acl_response(name: str, entries: Sequence[tuple[str, str]], *, utf8: bool = False) -> bytes:
    """``* ACL mailbox identifier rights ...`` (RFC 4314 §3.6)."""
    parts = [b"* ACL ", mailbox(name, utf8=utf8)]
    for identifier, rights in entries:
        parts += [b" ", astring(identifier), b" ", astring(with_virtual(rights))]
    return b"".join(parts) + b"\r\n"


def listrights_response(
    name: str, identifier: str, required: str, optional: Sequence[str], *, utf8: bool = False
) -> bytes:
    """``* LISTRIGHTS mailbox identifier required optional ...`` (RFC 4314 §3.7)."""
    parts = [b"* LISTRIGHTS ", mailbox(name, utf8=utf8), b" ", astring(identifier), b" "]
    parts.append(astring(required) if required else b'""')
    parts += [b" " + astring(group) for group in optional]
    return b"".join(parts) + b"\r\n"


def myrights_response(name: str, rights: str, *, utf8: bool = False) -> bytes:
    """``* MYRIGHTS mailbox rights`` (RFC 4314 §3.8)."""
    body = astring(with_virtual(rights)) if rights else b'""'
    return b"* MYRIGHTS " + mailbox(name, utf8=utf8) + b" " + body + b"\r\n"
