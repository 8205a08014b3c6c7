"""Parsers of GETMETADATA and SETMETADATA (RFC 5464 §4.2, §4.3).

Theory of operation
-------------------
``GETMETADATA [(options)] mailbox entries``: the options are MAXSIZE n and DEPTH 0/1/infinity,
each at most once; ``entries`` is one entry name or a parenthesised list of them.
``SETMETADATA mailbox (entry value ...)``: each value is a string, NIL (remove the entry) or a
literal8 (binary data). Both bound the number of entries per command (``MAX_ENTRIES``) so the
work of one command stays small; every entry name is checked here (``metadata.entry_name``).
"""

from __future__ import annotations

from collections.abc import Callable

from courriel.wire.imap.commands import Command, Depth, GetMetadata, SetMetadata
from courriel.wire.imap.lexer import Reader
from courriel.wire.imap.metadata import BadEntry, entry_name

MAX_ENTRIES = 100


def _mailbox(r: Reader, name: str) -> str:
    r.sp(f"mailbox name after {name}")
    return r.mailbox()  # "" names the server's entries (RFC 5464 §4.2)


def _entry(r: Reader, *, prefix_ok: bool = False) -> str:
    text = r.astring_text("metadata entry name")
    try:
        return entry_name(text, prefix_ok=prefix_ok)
    except BadEntry as e:
        r.fail(str(e))


def _options(r: Reader) -> tuple[int | None, Depth]:
    r.open_paren("'(' to start GETMETADATA options")
    maxsize: int | None = None
    depth: Depth | None = None
    while True:
        name = r.keyword("GETMETADATA option")
        r.sp(f"value after {name}")
        if name == "MAXSIZE" and maxsize is None:
            maxsize = r.number("MAXSIZE value")  # RFC 5464 §4.2.1
        elif name == "DEPTH" and depth is None:
            value = r.keyword("DEPTH value").lower()
            if value not in ("0", "1", "infinity"):
                r.fail("DEPTH must be 0, 1 or infinity")  # RFC 5464 §4.2.2
            depth = Depth(value)
        else:
            r.fail(f"Unknown or repeated GETMETADATA option {name}")
        if not r.maybe_sp():
            break
    r.close_paren("')' to end GETMETADATA options")
    return maxsize, depth or Depth.ZERO


def parse_getmetadata(r: Reader, uid: bool) -> GetMetadata:
    maxsize: int | None = None
    depth = Depth.ZERO
    r.sp("mailbox name after GETMETADATA")
    if r.peek() == 0x28:
        maxsize, depth = _options(r)
        r.sp("mailbox name after the GETMETADATA options")
    mailbox = r.mailbox()
    r.sp("entry names after the mailbox name")
    if r.peek() != 0x28:
        return GetMetadata(r.tag, mailbox, (_entry(r, prefix_ok=True),), maxsize, depth)
    r.open_paren("'(' to start entry names")
    entries = [_entry(r, prefix_ok=True)]
    while r.maybe_sp():
        entries.append(_entry(r, prefix_ok=True))
        if len(entries) > MAX_ENTRIES:
            r.fail(f"At most {MAX_ENTRIES} entries per command")
    r.close_paren("')' to end entry names")
    return GetMetadata(r.tag, mailbox, tuple(entries), maxsize, depth)


def _value(r: Reader) -> bytes | None:
    if r.literal_ahead():
        return r.literal("metadata value", allow_binary=True)[0]  # RFC 5464 §5: literal8
    return r.nstring("metadata value")


def parse_setmetadata(r: Reader, uid: bool) -> SetMetadata:
    mailbox = _mailbox(r, "SETMETADATA")
    r.sp("'(' after the mailbox name")
    r.open_paren("'(' to start entries and values")
    items: list[tuple[str, bytes | None]] = []
    while True:
        entry = _entry(r)
        r.sp("value after the entry name")
        items.append((entry, _value(r)))
        if len(items) > MAX_ENTRIES:
            r.fail(f"At most {MAX_ENTRIES} entries per command")
        if not r.maybe_sp():
            break
    r.close_paren("')' to end entries and values")
    return SetMetadata(r.tag, mailbox, tuple(items))


METADATA_COMMANDS: dict[str, Callable[[Reader, bool], Command]] = {
    "GETMETADATA": parse_getmetadata,
    "SETMETADATA": parse_setmetadata,
}
