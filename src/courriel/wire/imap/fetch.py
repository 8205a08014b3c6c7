"""FETCH attribute records (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ).

Theory of operation
-------------------
The parser expands the macros (ALL, FAST, FULL) and hands the session a tuple of attributes:
``FetchItem`` for the fixed ones, ``FetchBody`` for ``BODY[section]<partial>`` and
``BINARY[section]<partial>`` (peek or not), ``FetchBinarySize`` for ``BINARY.SIZE[part]``.
Each knows the name it has in the response (``response_name``), which differs from the request:
``BODY.PEEK[TEXT]<0.100>`` is answered as ``BODY[TEXT]<0>``.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from courriel.wire.imap.strings import astring


class FetchItem(enum.Enum):
    ENVELOPE = "ENVELOPE"
    FLAGS = "FLAGS"
    INTERNALDATE = "INTERNALDATE"
    RFC822_SIZE = "RFC822.SIZE"
    BODY = "BODY"  # non-extensible BODYSTRUCTURE
    BODYSTRUCTURE = "BODYSTRUCTURE"
    UID = "UID"
    MODSEQ = "MODSEQ"  # RFC 7162 §3.1.4.1
    RFC822 = "RFC822"  # same as BODY[], sets \Seen
    RFC822_HEADER = "RFC822.HEADER"  # same as BODY.PEEK[HEADER]
    RFC822_TEXT = "RFC822.TEXT"  # same as BODY[TEXT]
    SAVEDATE = "SAVEDATE"  # RFC 8514 §3
    EMAILID = "EMAILID"  # RFC 8474 §5.1
    THREADID = "THREADID"  # RFC 8474 §5.2
    PREVIEW = "PREVIEW"  # RFC 8970 §3; the LAZY modifier is accepted and needs nothing


class SectionText(enum.Enum):
    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"  # only after a part number


@dataclass(frozen=True, slots=True)
class Section:
    """``1.2.HEADER.FIELDS (From To)``: part path, what of it, and the field names."""

    part: tuple[int, ...] = ()
    text: SectionText | None = None
    fields: tuple[str, ...] = ()  # as sent, for HEADER.FIELDS[.NOT]

    def to_bytes(self) -> bytes:
        pieces = [str(p).encode() for p in self.part]
        if self.text is not None:
            spec = self.text.value.encode()
            if self.fields:
                spec += b" (" + b" ".join(astring(f) for f in self.fields) + b")"
            pieces.append(spec)
        return b".".join(pieces)


@dataclass(frozen=True, slots=True)
class FetchBody:
    section: Section
    partial: tuple[int, int] | None = None  # (origin, length)
    peek: bool = False
    binary: bool = False  # BINARY[...] (RFC 3516): content transfer decoding

    def response_name(self) -> bytes:
        """``BODY[1.TEXT]<0>``: no PEEK, and only the origin of a partial (RFC 9051 §7.5.2)."""
        return _body_response_name(self)


# A FETCH names the same few sections for every message it answers: build each name once.
@functools.lru_cache(maxsize=256)
def _body_response_name(body: FetchBody) -> bytes:
    name = b"BINARY[" if body.binary else b"BODY["
    name += body.section.to_bytes() + b"]"
    if body.partial is not None:
        name += b"<" + str(body.partial[0]).encode() + b">"
    return name


@dataclass(frozen=True, slots=True)
class FetchBinarySize:
    part: tuple[int, ...] = ()

    def response_name(self) -> bytes:
        return b"BINARY.SIZE[" + b".".join(str(p).encode() for p in self.part) + b"]"


FetchAttribute = FetchItem | FetchBody | FetchBinarySize

# RFC 9051 §6.4.5: the macros, which must be used alone
MACROS: dict[str, tuple[FetchItem, ...]] = {
    "ALL": (FetchItem.FLAGS, FetchItem.INTERNALDATE, FetchItem.RFC822_SIZE, FetchItem.ENVELOPE),
    "FAST": (FetchItem.FLAGS, FetchItem.INTERNALDATE, FetchItem.RFC822_SIZE),
    "FULL": (
        FetchItem.FLAGS,
        FetchItem.INTERNALDATE,
        FetchItem.RFC822_SIZE,
        FetchItem.ENVELOPE,
        FetchItem.BODY,
    ),
}
