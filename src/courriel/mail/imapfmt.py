"""IMAP string encoding: quoted strings, literals, nstrings and parenthesised lists.

Theory of operation
-------------------
Every string an IMAP server sends is either a quoted string or a literal (RFC 9051 §4.3). A
quoted string is the cheap, readable form, but it can carry neither CR, LF nor NUL, and in
IMAP4rev1 only 7-bit characters. A literal ``{n}\\r\\n`` followed by n octets carries anything
but NUL (NUL needs ``literal8``, which only BINARY uses). ``string`` picks the cheapest form that
can carry the value; ``nstring`` adds NIL for an absent value.

The ``utf8`` flag says the client has enabled UTF8=ACCEPT (RFC 6855) or speaks IMAP4rev2, where
quoted strings may hold UTF-8 (RFC 9051 §4.3, ``QUOTED-CHAR`` includes ``UTF8-2..4``). Values are
precomputed at the parse with ``utf8=False``: a literal is valid for every client.

All helpers take and return ``bytes``; they never decode or normalise what they are given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

NIL = b"NIL"

# Bytes a quoted string can never hold: CR, LF, NUL (RFC 9051 §9, TEXT-CHAR / QUOTED-CHAR).
_NEVER_QUOTED = re.compile(rb"[\x00\r\n]")
_HAS_8BIT = re.compile(rb"[\x80-\xff]")
_QUOTED_SPECIALS = re.compile(rb'(["\\])')
# Printable ASCII without quoted-specials: the common case, quoted as is.
_PLAIN = re.compile(rb"[ !#-\[\]-~]*")


def can_quote(value: bytes, *, utf8: bool = False) -> bool:
    """Whether ``value`` fits in a quoted string.

    Without ``utf8`` only 7-bit text fits (RFC 3501 §9 CHAR); with it, valid UTF-8 does too.
    """
    if _NEVER_QUOTED.search(value) is not None:
        return False
    if _HAS_8BIT.search(value) is None:
        return True
    if not utf8:
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def quoted(value: bytes) -> bytes:
    """``value`` as a quoted string, escaping ``"`` and ``\\`` (RFC 9051 §4.3).

    The caller has checked ``can_quote``; this function does not re-check.
    """
    return b'"' + _QUOTED_SPECIALS.sub(rb"\\\1", value) + b'"'


def literal(value: bytes) -> bytes:
    """``value`` as a synchronising literal ``{n}\\r\\n<value>`` (RFC 9051 §4.3).

    Raises ``ValueError`` on NUL, which only ``literal8`` may carry (RFC 3516 §4.2).
    """
    if b"\x00" in value:
        raise ValueError("a literal cannot carry NUL; use literal8")
    return b"{%d}\r\n" % len(value) + value


def literal8(value: bytes) -> bytes:
    """``value`` as ``~{n}\\r\\n<value>``, the form BINARY responses use (RFC 3516 §4.2)."""
    return b"~{%d}\r\n" % len(value) + value


def string(value: bytes, *, utf8: bool = False) -> bytes:
    """``value`` as a quoted string when it can be one, else as a literal."""
    if _PLAIN.fullmatch(value) is not None:
        return b'"' + value + b'"'
    if can_quote(value, utf8=utf8):
        return quoted(value)
    return literal(value)


def nstring(value: bytes | None, *, utf8: bool = False) -> bytes:
    """``NIL`` for ``None``, else ``string(value)`` (RFC 9051 §9 nstring)."""
    if value is None:
        return NIL
    return string(value, utf8=utf8)


def plist(items: Iterable[bytes]) -> bytes:
    """Already-encoded items joined by SP inside parentheses: ``(a b c)``."""
    return b"(" + b" ".join(items) + b")"


def nlist(items: Iterable[bytes]) -> bytes:
    """A parenthesised list, or ``NIL`` when there are no items (e.g. ``body-fld-param``)."""
    joined = b" ".join(items)
    if not joined:
        return NIL
    return b"(" + joined + b")"


def without_nul(value: bytes) -> bytes:
    """``value`` with NUL removed: what a header value becomes before it is sent as a string.

    NUL can appear in broken mail but no IMAP string except ``literal8`` can carry it.
    """
    return value.replace(b"\x00", b"")
