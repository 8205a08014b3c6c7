"""Entry names of RFC 5464 METADATA and the METADATA response.

Theory of operation
-------------------
An entry name is a path: "/private/..." (the user's own value) or "/shared/..." (one value
every user with access sees), then one or more components separated by "/". Names are
case-insensitive (RFC 5464 §3.2.1), so courriel keeps them in lower case; they may not hold
"*" or "%", control characters, "//" or a trailing "/" (§3.2.1, §5 ABNF ``entry``). A name
that breaks these rules is refused with BAD where it is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from courriel.mail import imapfmt
from courriel.wire.imap.strings import astring, mailbox

MAX_ENTRY_CHARS = 1024  # bound of one name, so listing and matching stay cheap
_COMPONENT = r"[\x21-\x29\x2b-\x2e\x30-\x7e]+"  # visible ASCII but "*" (2a), "%" and "/"
_ENTRY_RE = re.compile(rf"/(private|shared)(/{_COMPONENT})+")
PRIVATE = "/private"
SHARED = "/shared"


class BadEntry(ValueError):  # noqa: N818 - reads as "metadata.BadEntry"
    """An entry name RFC 5464 §3.2.1 does not allow."""


def entry_name(text: str, *, prefix_ok: bool = False) -> str:
    """The entry name in its kept (lower-case) form; ``BadEntry`` when it is not one.

    ``prefix_ok``: "/private" and "/shared" alone name every entry below them, which a
    GETMETADATA with DEPTH may ask for, but they are no entry to set."""
    low = text.lower()
    if prefix_ok and low in (PRIVATE, SHARED):
        return low
    if len(low) > MAX_ENTRY_CHARS or "%" in low or not _ENTRY_RE.fullmatch(low):
        raise BadEntry(f"Invalid metadata entry name {text!r}")  # RFC 5464 §3.2.1
    return low


def is_private(entry: str) -> bool:
    return entry.startswith(PRIVATE + "/")


def metadata_response(name: str, items: Sequence[tuple[str, bytes | None]], *, utf8: bool) -> bytes:
    """``* METADATA mailbox (entry value ...)`` (RFC 5464 §4.4.1)."""
    parts = [b"* METADATA ", b'""' if name == "" else mailbox(name, utf8=utf8), b" ("]
    body = []
    for entry, value in items:
        body.append(astring(entry) + b" " + _value(value, utf8))
    parts += [b" ".join(body), b")\r\n"]
    return b"".join(parts)


def metadata_names(name: str, entries: Sequence[str], *, utf8: bool) -> bytes:
    """``* METADATA mailbox entry ...``: which entries changed, without values (§4.4.2)."""
    head = b'* METADATA ""' if name == "" else b"* METADATA " + mailbox(name, utf8=utf8)
    return head + b"".join(b" " + astring(e) for e in entries) + b"\r\n"


def _value(value: bytes | None, utf8: bool) -> bytes:
    if value is None:
        return imapfmt.NIL
    if b"\0" in value:
        return b"~{%d}\r\n" % len(value) + value  # RFC 5464 §5: a value may be a literal8
    return imapfmt.string(value, utf8=utf8)
