"""Message flags: the five system flags, their spelling, and the order responses list them in.

IMAP's system flags (RFC 9051 §2.3.2) are case-insensitive and stored in their canonical
spelling; ``\\Recent`` (RFC 3501 §2.3.2) is never stored, a session decides it per message.
Every other flag is a keyword, kept as the client gave it. This module is the one place that
says so: the parser, the store's bit columns, SEARCH and every FLAGS list read it from here.
"""

from __future__ import annotations

from collections.abc import Iterable

# The order Dovecot writes system flags in; keywords follow, sorted.
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
RECENT = "\\Recent"
_BY_FOLDED = {f.casefold(): f for f in SYSTEM_FLAGS}
_SYSTEM_SET = frozenset(SYSTEM_FLAGS)


def canonical(flag: str) -> str:
    """A system flag in its canonical spelling (``\\SEEN`` -> ``\\Seen``); others unchanged."""
    return _BY_FOLDED.get(flag.casefold(), flag) if flag.startswith("\\") else flag


def is_system(flag: str) -> bool:
    return flag in _SYSTEM_SET


def display_order(flags: Iterable[str], *, recent: bool = False) -> list[str]:
    """Flags as FETCH, STORE and FLAGS responses list them: system flags in their usual order,
    ``\\Recent`` when the session counts the message as recent, then every other flag sorted.
    """
    present = set(flags)
    names = [f for f in SYSTEM_FLAGS if f in present]
    if recent:
        names.append(RECENT)
    names += sorted(present.difference(SYSTEM_FLAGS))
    return names


def acl_right(flag: str) -> str:
    """The RFC 4314 right that governs setting or clearing ``flag`` (§4): "s" for \\Seen, "t"
    for \\Deleted, "w" for every other flag and keyword; any spelling of a system flag."""
    folded = flag.casefold()
    if folded == "\\seen":
        return "s"
    if folded == "\\deleted":
        return "t"
    return "w"
