"""Text for IMAP SEARCH string keys: folding for comparison, decoded body and header text.

Theory of operation
-------------------
SEARCH compares strings as case-insensitive substrings (RFC 9051 §6.4.4). Like Dovecot, which
uses the ``i;unicode-casemap`` comparator (RFC 5051), both the key and the message text are
folded before ``in`` is asked: Unicode case folding, then compatibility decomposition (NFKD),
so "É", "é" and "e" + U+0301 all compare equal. ASCII text, the common case, only needs
``casefold`` and skips normalisation.

Message text is read per part rather than as one string: ``body_texts`` yields the decoded
text of each text/* part (transfer encoding removed, charset converted) and the header of each
message/rfc822 part, which is body text of the message that carries it. A search stops at the
first part that matches, so a hit in the first part of a large message costs one part.
Nothing here raises on malformed mail: unknown encodings are searched as stored, unknown
charsets read as UTF-8 (``mime.to_text``).

The fields SEARCH compares most (``STORED_FIELDS``) are also kept by the store in the form the
comparison reads (``stored_text``), so a search over a large mailbox reads one short row per
message instead of its parse. A stored text is the folded field followed by the folded parsed
addresses (``address_texts``), joined by line feeds, with NUL read as a line feed too; a key
free of both (``storable_needle``) is in the stored text exactly when ``field_matches`` says
it matches, as no such key can straddle two of the joined pieces.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping

from courriel.mail import envelope, mime
from courriel.mail.message import MessageMeta
from courriel.mail.structure import Part, PartKind

__all__ = [
    "ADDRESS_FIELDS",
    "STORED_FIELDS",
    "address_texts",
    "body_texts",
    "field_matches",
    "fold",
    "header_block_text",
    "header_field_texts",
    "storable_needle",
    "stored_text",
    "stored_texts",
]

# The fields the store keeps folded for SEARCH, in the order of ``stored_texts``.
STORED_FIELDS = ("subject", "from", "to", "cc", "bcc")
ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc"})
# Where the parsed addresses can read differently from the field: a comment, a quoted string
# or a quoted pair, or white space next to "@" or "." inside an address.
_UNLIKE_PARSED = re.compile(r'[("\\]|\s[@.]|[@.]\s')
_LONGEST_STORED_NEEDLE = 1000  # longer keys are compared the slow way (LIKE pattern limits)


def fold(text: str) -> str:
    """``text`` in the form SEARCH compares: case folded and NFKD decomposed (RFC 5051 §2)."""
    if text.isascii():
        return text.casefold()
    return unicodedata.normalize("NFKD", text.casefold())


def _walk(part: Part, raw: bytes) -> Iterator[str]:
    if part.kind is PartKind.LEAF:
        if part.media_type == "text":
            data = raw[part.body_start : part.body_end]
            decoded = mime.decode_transfer(data, part.encoding)
            yield mime.to_text(data if decoded is None else decoded, part.charset)
        return
    if part.kind is PartKind.MESSAGE and part.children:
        inner = part.children[0]
        # The encapsulated message's header is part of the carrying message's body.
        yield mime.header_text(raw[inner.header_start : inner.body_start])
    for child in part.children:
        yield from _walk(child, raw)


def body_texts(raw: bytes, meta: MessageMeta) -> Iterator[str]:
    """Decoded text of each text/* part and each encapsulated header, in message order.

    ``raw`` must be the message ``meta`` was parsed from (same size).
    """
    if len(raw) != meta.size:
        raise ValueError(f"the message does not match its meta ({len(raw)} != {meta.size})")
    return _walk(meta.root, raw)


def header_block_text(raw: bytes, header_end: int | None = None) -> str:
    """The top-level header block as text, RFC 2047 words decoded (SEARCH TEXT)."""
    end = mime.body_start(raw, 0, len(raw)) if header_end is None else header_end
    return mime.header_text(raw[:end])


def header_field_texts(raw: bytes, name: str, header_end: int | None = None) -> list[str]:
    """Decoded values of every top-level field ``name`` (any case), in order.

    ``header_end`` is ``MessageMeta.header_size`` when the caller has it, saving one scan.
    """
    end = mime.body_start(raw, 0, len(raw)) if header_end is None else header_end
    wanted = name.lower().encode("utf-8", "replace")
    return [mime.header_text(v) for v in mime.all_values(raw, 0, end, wanted)]


def _utf8(text: str | None) -> str:
    """A part of ``envelope.parse_addresses``, which reads bytes as Latin-1, back as UTF-8."""
    return "" if text is None else text.encode("latin-1").decode("utf-8", "replace")


def address_texts(value: str) -> list[str]:
    """The addresses of decoded address field ``value`` as parsed, where they can read
    differently from the field: each ``name <local@domain>`` with comments and quoting gone,
    and each group name. Empty when the parse would read as the field does."""
    if not _UNLIKE_PARSED.search(value):
        return []
    out = []
    for address in envelope.parse_addresses(value.encode("utf-8")):
        text = _utf8(address.mailbox)  # a group name when there is no host
        if address.host is not None:
            text = f"{text}@{_utf8(address.host)}"
            if address.name:
                text = f"{_utf8(address.name)} <{text}>"
        out.append(text)
    return out


def field_matches(name: str, needle: str, value: str) -> bool:
    """Whether folded ``needle`` is in decoded field ``value`` of field ``name`` as SEARCH
    compares it: the field itself, and for address fields each parsed address too."""
    if needle in fold(value):
        return True
    return name in ADDRESS_FIELDS and any(needle in fold(t) for t in address_texts(value))


def stored_text(name: str, value: str | None) -> str | None:
    """What the store keeps of field ``name`` (see the module docstring); None if absent."""
    if value is None:
        return None
    pieces = [value, *address_texts(value)] if name in ADDRESS_FIELDS else [value]
    return "\n".join(fold(p).replace("\x00", "\n") for p in pieces)


def stored_texts(text_headers: Mapping[str, str]) -> tuple[str | None, ...]:
    """``stored_text`` of each of ``STORED_FIELDS``, from the parse's decoded fields."""
    return tuple(stored_text(n, text_headers.get(n)) for n in STORED_FIELDS)


def storable_needle(needle: str) -> bool:
    """Whether folded ``needle`` can be matched against ``stored_text`` by a plain ``in``."""
    return len(needle) <= _LONGEST_STORED_NEEDLE and "\n" not in needle and "\x00" not in needle
