"""The PREVIEW of a message (RFC 8970): the start of its text, as a list of messages shows it.

Theory of operation
-------------------
The first text/plain part of the message (not inside an attached message/rfc822), else the
first text/html one with its markup removed, decoded (transfer encoding, charset), with quoted
lines (``>``) left out and white space collapsed, cut to ``MAX_CHARS`` characters (RFC 8970
§3.1: at most 256, in characters not octets). A message without such a part has the empty
preview. Made from the stored parse and the message, once: the store keeps the result.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from courriel.mail import mime
from courriel.mail.message import MessageMeta
from courriel.mail.structure import Part, PartKind

MAX_CHARS = 256  # RFC 8970 §3.1
_SCAN_CHARS = 64 * 1024  # text read from a part: far more than a preview needs
_TAGS = re.compile(r"<(?:script|style)\b.*?</(?:script|style)\s*>|<[^>]*>", re.I | re.S)
_SPACE = re.compile(r"\s+")


def _leaves(part: Part) -> Iterator[Part]:
    if part.kind is PartKind.LEAF:
        yield part
    elif part.kind is PartKind.MULTIPART:
        for child in part.children:
            yield from _leaves(child)


def _text(raw: bytes, part: Part) -> str:
    data = raw[part.body_start : part.body_end]
    decoded = mime.decode_transfer(data, part.encoding)
    return mime.to_text(data if decoded is None else decoded, part.charset)[:_SCAN_CHARS]


def preview(raw: bytes, meta: MessageMeta) -> str:
    """RFC 8970 §3.1: at most 256 characters of the message's text, "" when it has none."""
    leaves = [p for p in _leaves(meta.root) if p.media_type == "text"]
    plain = next((p for p in leaves if p.media_subtype == "plain"), None)
    if plain is not None:
        lines = _text(raw, plain).splitlines()
        text = " ".join(line for line in lines if not line.lstrip().startswith(">"))
    else:
        page = next((p for p in leaves if p.media_subtype == "html"), None)
        text = "" if page is None else html.unescape(_TAGS.sub(" ", _text(raw, page)))
    return _SPACE.sub(" ", text).strip()[:MAX_CHARS]
