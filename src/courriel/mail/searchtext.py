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
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

from courriel.mail import mime
from courriel.mail.message import MessageMeta
from courriel.mail.structure import Part, PartKind

__all__ = ["body_texts", "fold", "header_block_text", "header_field_texts"]


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
