"""A message parsed once, on first need: what FETCH and SEARCH need, kept beside the message.

Theory of operation
-------------------
``parse(raw)`` reads the message once (``structure.Builder``) and returns a ``MessageMeta``:
the ENVELOPE, BODYSTRUCTURE and BODY as the exact bytes an IMAP server sends after those
words, the MIME part tree as offsets into ``raw``, and the header values SEARCH compares
(raw and RFC 2047 decoded) with the Date parsed. It never raises on malformed input.

The meta is stored beside the message (``to_bytes``) and read on every FETCH that asks about
structure (``from_bytes``, or the ``*_of`` accessors that slice one pre-encoded item out of
the stored bytes without decoding the rest). After that a FETCH of ENVELOPE or BODYSTRUCTURE
is a lookup, and BODY[section] is a slice of the raw message (``section_bytes``).
HEADER.FIELDS runs one regex over the header block only; BINARY decodes the one part asked
for (``decoded_part``), while BINARY.SIZE is recorded in the tree (``Part.binary_size``).

Offsets are positions in the raw bytes exactly as stored, also with bare LF line ends, and
sizes are counted in those bytes: the server sends the stored bytes unchanged, so RFC822.SIZE,
part sizes and literal lengths agree.

Stored format, version 1 (``to_bytes``)::

    version byte 0x01
    four little-endian uint32: lengths of envelope, bodystructure, body, tail
    envelope bytes | bodystructure bytes | body bytes | tail

``tail`` is compact JSON: ``[size, header_size, date, raw_headers, text_headers, tree]``.
Measured for a typical 4 KB multipart message (meta about 1.5 KB): ``json.loads`` of the tree
takes about 5 us against 2 us for ``marshal``, but marshal's format may change between Python
versions and pickle must not read bytes from a database; building the frozen ``Part`` records
costs more than either, and ``from_bytes`` as a whole stays near 25 us. The three
pre-encoded items sit outside the JSON, so the common FETCH reads one of them with
``struct.unpack_from`` and a slice (``envelope_of``: about 1 us).
"""

from __future__ import annotations

import enum
import json
import json.scanner
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from courriel.mail import envelope, mime
from courriel.mail.structure import CONTENT_FIELDS, Builder, Part, PartKind

__all__ = [
    "SEARCH_FIELDS",
    "MessageMeta",
    "MetaFormatError",
    "Part",
    "PartKind",
    "SearchFields",
    "SectionLike",
    "SectionSpec",
    "SectionText",
    "UnknownTransferEncoding",
    "decoded_part",
    "find_part",
    "parse",
    "prefixed",
    "search_fields_of",
    "section_bytes",
]

FORMAT_VERSION = 1
_PREFIX = struct.Struct("<BIIII")

# Header fields whose values SEARCH compares (RFC 9051 §6.4.4), kept raw and decoded.
SEARCH_FIELDS = (
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "message-id",
    "in-reply-to",
    "references",
    "date",
)
_SEARCH_FIELDS_B = frozenset(name.encode() for name in SEARCH_FIELDS)
# Every field whose value the parse reads (``prefixed``).
_READ_FIELDS = _SEARCH_FIELDS_B | CONTENT_FIELDS | envelope.ENVELOPE_FIELDS


class MetaFormatError(ValueError):
    """Stored meta bytes that this version cannot read: parse the message again."""


class UnknownTransferEncoding(Exception):  # noqa: N818 - the IMAP response code's name
    """The part's Content-Transfer-Encoding cannot be decoded (RFC 3516 §4.3 UNKNOWN-CTE)."""

    def __init__(self, encoding: str) -> None:
        super().__init__(encoding)
        self.encoding = encoding


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """The parse of one message. ``envelope``, ``bodystructure`` and ``body`` are wire bytes.

    ``raw_headers`` maps the lower-case names in ``SEARCH_FIELDS`` to the unfolded raw value
    of their first occurrence, ``text_headers`` to the same decoded for comparison (RFC 2047
    words decoded, 8-bit read as UTF-8). Absent fields are absent from both.
    """

    size: int
    header_size: int
    envelope: bytes
    bodystructure: bytes
    body: bytes
    root: Part
    date: datetime | None
    raw_headers: Mapping[str, bytes]
    text_headers: Mapping[str, str]

    def to_bytes(self) -> bytes:
        """The stored form (see the module docstring)."""
        tail = json.dumps(
            [
                self.size,
                self.header_size,
                None if self.date is None else self.date.isoformat(),
                {k: v.decode("latin-1") for k, v in self.raw_headers.items()},
                dict(self.text_headers),
                _tree_out(self.root),
            ],
            separators=(",", ":"),
        ).encode("ascii")
        lengths = (len(self.envelope), len(self.bodystructure), len(self.body), len(tail))
        return b"".join(
            (
                _PREFIX.pack(FORMAT_VERSION, *lengths),
                self.envelope,
                self.bodystructure,
                self.body,
                tail,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageMeta:
        """Read back ``to_bytes``; raises ``MetaFormatError`` on bytes it cannot read."""
        env, bs, body, tail = _slices(data)
        try:
            size, header_size, date, raw_h, text_h, tree = json.loads(tail)
            return cls(
                size,
                header_size,
                env,
                bs,
                body,
                _tree_in(tree),
                None if date is None else datetime.fromisoformat(date),
                {k: v.encode("latin-1") for k, v in raw_h.items()},
                text_h,
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise MetaFormatError(str(exc)) from exc

    @staticmethod
    def envelope_of(data: bytes) -> bytes:
        """The ENVELOPE in stored meta bytes, without reading the rest."""
        return _slices(data)[0]

    @staticmethod
    def bodystructure_of(data: bytes) -> bytes:
        """The BODYSTRUCTURE in stored meta bytes, without reading the rest."""
        return _slices(data)[1]

    @staticmethod
    def body_of(data: bytes) -> bytes:
        """The BODY (non-extensible structure) in stored meta bytes, without reading the rest."""
        return _slices(data)[2]


@dataclass(frozen=True, slots=True)
class SearchFields:
    """What SEARCH compares of a message's header, read from stored meta without the rest.

    The same values as the ``MessageMeta`` of the same bytes: ``text_headers`` has one entry
    for each field present (so it also says which are present), ``header_size`` bounds the
    header block and ``date`` is the parsed Date field.
    """

    header_size: int
    date: datetime | None
    text_headers: Mapping[str, str]


# raw_decode without its whitespace skipping, which compact JSON does not need
# (typeshed declares neither the decoder's scanner nor make_scanner's real argument type)
_SCAN = cast(
    Callable[[str, int], tuple[Any, int]],
    json.scanner.make_scanner(cast(Any, json.JSONDecoder())),
)


def search_fields_of(data: bytes) -> SearchFields:
    """The header fields SEARCH compares, decoding the tail only up to them.

    The part tree, the last and largest item of the tail, is never decoded: ``to_bytes``
    writes compact JSON, so each of the first five items ends right before a comma. Raises
    ``MetaFormatError`` on bytes it cannot read, as ``MessageMeta.from_bytes`` does.
    """
    tail = _slices(data)[3]
    try:
        text = tail.decode("ascii")
        if text[:1] != "[":
            raise ValueError("the tail is not a JSON array")
        items: list[Any] = []
        pos = 1
        for _ in range(5):
            value, pos = _SCAN(text, pos)
            if text[pos : pos + 1] != ",":
                raise ValueError("the tail has fewer items than version 1 writes")
            items.append(value)
            pos += 1
        _, header_size, date, raw_h, text_h = items
        if not isinstance(header_size, int) or not isinstance(text_h, dict):
            raise TypeError("the tail's items have the wrong types")
        if text_h.keys() != raw_h.keys():
            raise ValueError("raw and decoded header fields differ")
        return SearchFields(
            header_size, None if date is None else datetime.fromisoformat(date), text_h
        )
    except StopIteration as exc:  # the scanner's "no JSON value at this position"
        raise MetaFormatError(f"no JSON value at offset {exc.value}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise MetaFormatError(str(exc)) from exc


def _slices(data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    if len(data) < _PREFIX.size or data[0] != FORMAT_VERSION:
        raise MetaFormatError(f"not courriel message meta of version {FORMAT_VERSION}")
    _, a, b, c, d = _PREFIX.unpack_from(data)
    p1 = _PREFIX.size + a
    p2 = p1 + b
    p3 = p2 + c
    if p3 + d != len(data):
        raise MetaFormatError("message meta is truncated or has trailing bytes")
    return data[_PREFIX.size : p1], data[p1:p2], data[p2:p3], data[p3:]


def _tree_out(part: Part) -> list[Any]:
    return [
        list(part.section),
        part.header_start,
        part.body_start,
        part.body_end,
        part.kind.value,
        part.media_type,
        part.media_subtype,
        part.charset,
        part.encoding,
        part.lines,
        part.binary_size,
        [_tree_out(c) for c in part.children],
    ]


def _tree_in(node: list[Any]) -> Part:
    sec, hs, bs, be, kind, mtype, subtype, charset, enc, lines, bsize, children = node
    return Part(
        tuple(sec), hs, bs, be, PartKind(kind), mtype, subtype, charset, enc, lines, bsize,
        tuple(_tree_in(c) for c in children),
    )  # fmt: skip


# --- parsing -----------------------------------------------------------------------------------


def parse(raw: bytes) -> MessageMeta:
    """Parse ``raw`` (the message exactly as stored) once; never raises on malformed mail."""
    builder = Builder(raw)
    built = builder.message(_SEARCH_FIELDS_B)
    fields = builder.root_fields
    raw_headers = {n: fields[n.encode()] for n in SEARCH_FIELDS if n.encode() in fields}
    return MessageMeta(
        size=len(raw),
        header_size=built.part.body_start,
        envelope=envelope.encode_envelope(fields),
        bodystructure=built.bodystructure,
        body=built.body,
        root=built.part,
        date=envelope.parse_date(fields.get(b"date")),
        raw_headers=raw_headers,
        text_headers={n: mime.header_text(v) for n, v in raw_headers.items()},
    )


def _shifted(part: Part, by: int, *, root: bool = False) -> Part:
    return Part(
        part.section,
        0 if root else part.header_start + by,
        part.body_start + by,
        part.body_end + by,
        part.kind,
        part.media_type,
        part.media_subtype,
        part.charset,
        part.encoding,
        part.lines,
        part.binary_size,
        tuple(_shifted(c, by) for c in part.children),
    )


def prefixed(raw: bytes, meta: MessageMeta, prefix: bytes) -> MessageMeta | None:
    """``parse(prefix + raw)`` from ``meta = parse(raw)``, without reading ``raw`` again.

    ``prefix`` is whole header fields (CRLF-terminated) put on top of the message, such as
    trace fields: when none of them is a field the parse reads (the envelope's, Content-*,
    ``SEARCH_FIELDS``), the parse differs only by offsets, and sizes of the header and the
    whole. None when that cannot be known (``raw`` opens with a fold, which would continue the
    prefix's last field): then parse the whole.
    """
    if not prefix:
        return meta
    if not prefix.endswith(b"\r\n") or raw[:1] in (b" ", b"\t"):
        return None
    if mime.first_fields(prefix, 0, len(prefix), _READ_FIELDS):
        return None
    by = len(prefix)
    return MessageMeta(
        size=meta.size + by,
        header_size=meta.header_size + by,
        envelope=meta.envelope,
        bodystructure=meta.bodystructure,
        body=meta.body,
        root=_shifted(meta.root, by, root=True),
        date=meta.date,
        raw_headers=meta.raw_headers,
        text_headers=meta.text_headers,
    )


# --- sections ----------------------------------------------------------------------------------


class SectionText(enum.Enum):
    """The part of a section specifier after the part number (RFC 9051 §6.4.5)."""

    ALL = ""
    HEADER = "HEADER"
    HEADER_FIELDS = "HEADER.FIELDS"
    HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
    TEXT = "TEXT"
    MIME = "MIME"


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """A parsed ``section``: part number path, what of it, and field names for HEADER.FIELDS.

    ``SectionSpec()`` is BODY[]; ``SectionSpec((1, 2), SectionText.MIME)`` is BODY[1.2.MIME];
    ``SectionSpec((), SectionText.HEADER_FIELDS, ("From", "To"))`` is
    BODY[HEADER.FIELDS (From To)].
    """

    part: tuple[int, ...] = ()
    text: SectionText = SectionText.ALL
    fields: tuple[str, ...] = ()


class SectionLike(Protocol):
    """What ``section_bytes`` needs of a section: ``SectionSpec`` or the IMAP parser's own.

    ``text`` is any enum whose values are the RFC 9051 §6.4.5 names ("HEADER",
    "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"); None or "" means the whole part.
    """

    @property
    def part(self) -> tuple[int, ...]: ...

    @property
    def text(self) -> enum.Enum | None: ...

    @property
    def fields(self) -> tuple[str, ...]: ...


def _enter(message: Part, n: int) -> Part | None:
    """Part ``n`` of a message entity: its n-th part if multipart, else itself as part 1."""
    if message.kind is PartKind.MULTIPART:
        return message.children[n - 1] if 1 <= n <= len(message.children) else None
    return message if n == 1 else None


def find_part(meta: MessageMeta, path: tuple[int, ...]) -> Part | None:
    """The part a part number names (RFC 9051 §6.4.5), or None when there is no such part.

    A message that is not multipart has only part 1, its body; the parts of a message/rfc822
    part p are those of the message it encapsulates, numbered p.1, p.2 ...
    """
    if not path:
        return meta.root
    node = _enter(meta.root, path[0])
    for n in path[1:]:
        if node is None:
            return None
        if node.kind is PartKind.MESSAGE:
            node = _enter(node.children[0], n)
        elif node.kind is PartKind.MULTIPART:
            node = _enter(node, n)
        else:
            return None
    return node


def _check(raw: bytes, meta: MessageMeta) -> None:
    if len(raw) != meta.size:
        raise ValueError(f"the message does not match its meta ({len(raw)} != {meta.size} bytes)")


def section_bytes(raw: bytes, meta: MessageMeta, spec: SectionLike) -> bytes | None:
    """The bytes of BODY[section] (RFC 9051 §6.4.5), before any <partial> is applied.

    Returns None when the section does not exist (no such part, or HEADER/TEXT of a part
    that is not message/rfc822); the server answers those with an empty string or NIL.
    """
    _check(raw, meta)
    node = find_part(meta, spec.part)
    if node is None:
        return None
    text = "" if spec.text is None else str(spec.text.value)
    if not text:
        return raw if not spec.part else raw[node.body_start : node.body_end]
    if text == "MIME":
        return None if not spec.part else raw[node.header_start : node.body_start]
    message = node
    if spec.part:  # HEADER, TEXT, HEADER.FIELDS of a part: only of a message/rfc822 part
        if node.kind is not PartKind.MESSAGE:
            return None
        message = node.children[0]
    if text == "HEADER":
        return raw[message.header_start : message.body_start]
    if text == "TEXT":
        return raw[message.body_start : message.body_end]
    if text not in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return None
    return mime.field_lines(
        raw,
        message.header_start,
        message.body_start,
        mime.field_name_set(spec.fields),
        exclude=text == "HEADER.FIELDS.NOT",
    )


def decoded_part(raw: bytes, meta: MessageMeta, path: tuple[int, ...]) -> bytes | None:
    """The content of BINARY[path] (RFC 3516 §4.1): the part's body with its
    Content-Transfer-Encoding removed; BINARY[] is the whole message unchanged.

    Returns None when there is no such part; raises ``UnknownTransferEncoding`` when the
    encoding is not one courriel can decode.
    """
    _check(raw, meta)
    if not path:
        return raw
    node = find_part(meta, path)
    if node is None:
        return None
    data = raw[node.body_start : node.body_end]
    if node.kind is not PartKind.LEAF:
        return data  # composite types carry no transfer encoding (RFC 2045 §6.4)
    decoded = mime.decode_transfer(data, node.encoding)
    if decoded is None:
        raise UnknownTransferEncoding(node.encoding)
    return decoded
