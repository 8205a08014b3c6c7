"""Atoms and mailbox names for IMAP responses, on top of ``courriel.mail.imapfmt``.

Theory of operation
-------------------
``courriel.mail.imapfmt`` chooses between quoted string and literal (RFC 9051 §4.3); this
module adds what only the protocol side needs: ``astring``, which sends a bare atom when the
value is one (cheaper to read, and what clients expect for flags and simple names), and
``mailbox``, which applies modified UTF-7 for IMAP4rev1 clients (RFC 3501 §5.1.3) or sends
UTF-8 once IMAP4rev2 or UTF8=ACCEPT is in force.
"""

from __future__ import annotations

import re

from courriel.mail import imapfmt
from courriel.wire.imap import mutf7

# RFC 9051 §9 ASTRING-CHAR: ATOM-CHAR or "]"
_ASTRING_RE = re.compile(rb"[!#$&'+-\[\]^-z|}~]+")


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    return imapfmt.string(_as_bytes(value), utf8=utf8)


def nstring(value: str | bytes | None, *, utf8: bool = False) -> bytes:
    return imapfmt.NIL if value is None else imapfmt.string(_as_bytes(value), utf8=utf8)


def astring(value: str | bytes, *, utf8: bool = False) -> bytes:
    data = _as_bytes(value)
    if _ASTRING_RE.fullmatch(data) and data.upper() != b"NIL":
        return data
    return imapfmt.string(data, utf8=utf8)


def mailbox(name: str, *, utf8: bool = False) -> bytes:
    """A mailbox name as the client expects it: UTF-8 (RFC 9051 §5.1) or modified UTF-7."""
    if name.upper() == "INBOX":
        return b"INBOX"
    return astring(name.encode("utf-8") if utf8 else mutf7.encode(name), utf8=utf8)
