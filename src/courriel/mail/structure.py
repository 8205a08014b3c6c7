"""The MIME part tree of a message and its pre-encoded BODYSTRUCTURE and BODY.

Theory of operation
-------------------
``build`` walks the message once, top down. Each entity (the message, a body part, or the
message inside a message/rfc822 part) is a header block and a body, both located by offsets
into the raw bytes (``mime``). A multipart body is split at its delimiters and each piece is
an entity; a message/rfc822 body is one entity, the encapsulated message. While walking, each
entity's BODYSTRUCTURE and BODY (RFC 9051 §7.5.2) are written, so the IMAP server sends bytes
it already has.

Choices where RFCs leave room, made as Dovecot makes them (its lib-imap test expectations
are cross-checked in tests/mail/test_message_bodystructure.py):

* the first Content-* field of each name counts; a Content-Type that does not parse, or is
  missing, means text/plain (message/rfc822 inside multipart/digest, RFC 2046 §5.1.5);
* text parts without a charset report ``("charset" "us-ascii")`` (RFC 2045 §5.2);
* a Content-Transfer-Encoding that is not a token is ignored (7bit);
* a multipart with no body parts reports one empty text/plain part, as the grammar needs one;
* a message/rfc822 part with a base64 or quoted-printable encoding (forbidden by RFC 2046
  §5.2.1) is not opened: it reports an all-NIL envelope and an empty body.

Nesting is capped at ``MAX_DEPTH`` levels and ``MAX_PARTS`` parts in all: past the depth cap a
multipart or message part is kept whole as one leaf, and once the part budget is spent the
remaining body parts of a multipart are not listed, so hostile mail costs bounded work.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from courriel.mail import envelope, imapfmt, mime

MAX_DEPTH = 100
MAX_PARTS = 10_000

CONTENT_FIELDS = frozenset(
    {
        b"content-type",
        b"content-transfer-encoding",
        b"content-id",
        b"content-description",
        b"content-md5",
        b"content-disposition",
        b"content-language",
        b"content-location",
    }
)
_MESSAGE_FIELDS = CONTENT_FIELDS | envelope.ENVELOPE_FIELDS
_IDENTITY_ENCODINGS = ("7bit", "8bit", "binary")
_DEFAULT_CHARSET = (b"charset", b"us-ascii")
_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_BODYSTRUCTURE = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'


class PartKind(enum.Enum):
    LEAF = 0
    MULTIPART = 1
    MESSAGE = 2  # message/rfc822 whose only child is the encapsulated message


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity, located in the raw message.

    ``section`` is the IMAP part number (RFC 9051 §6.4.5): () for the message itself; the
    encapsulated message of a message/rfc822 part p is p.1 when it is not multipart, and
    shares p when it is (its parts are then p.1, p.2 ...). The header is
    ``raw[header_start:body_start]`` including its empty line, the body
    ``raw[body_start:body_end]``. ``lines`` is set for text/* and message/rfc822 only;
    ``binary_size`` is the size after Content-Transfer-Encoding decoding, None when the
    encoding is unknown (RFC 3516 §4.3 UNKNOWN-CTE).
    """

    section: tuple[int, ...]
    header_start: int
    body_start: int
    body_end: int
    kind: PartKind
    media_type: str
    media_subtype: str
    charset: str
    encoding: str
    lines: int
    binary_size: int | None
    children: tuple[Part, ...] = ()

    @property
    def size(self) -> int:
        return self.body_end - self.body_start


@dataclass(frozen=True, slots=True)
class Built:
    """An entity's part record with its BODYSTRUCTURE (extensible) and BODY encodings."""

    part: Part
    bodystructure: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class _Content:
    """What an entity's Content-* fields say, as the encodings need it."""

    type_: bytes
    subtype: bytes
    params: list[tuple[bytes, bytes]]
    encoding_raw: bytes | None
    encoding: str
    fields: dict[bytes, bytes]


class Builder:
    """Builds the part tree of one message; holds the part budget shared by all levels."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.parts = 0
        self.root_fields: dict[bytes, bytes] = {}

    def message(self, wanted: frozenset[bytes]) -> Built:
        """The whole message; ``wanted`` names header fields to keep in ``root_fields``."""
        raw = self.raw
        bs = mime.body_start(raw, 0, len(raw))
        self.root_fields = mime.first_fields(raw, 0, bs, wanted | _MESSAGE_FIELDS)
        return self._entity(0, bs, len(raw), 0, (), digest=False, fields=self.root_fields)

    def _entity(
        self,
        start: int,
        bs: int,
        end: int,
        depth: int,
        section: tuple[int, ...],
        *,
        digest: bool,
        fields: dict[bytes, bytes],
        multipart_section: tuple[int, ...] | None = None,
    ) -> Built:
        """One entity; ``multipart_section`` is its number should it turn out multipart."""
        self.parts += 1
        content = _content(fields, digest=digest)
        kind_type = content.type_.lower()
        if kind_type == b"multipart" and self._may_open(depth):
            boundary = mime.param(content.params, b"boundary")
            if boundary:
                if multipart_section is not None:
                    section = multipart_section
                return self._multipart(start, bs, end, depth, section, content, boundary)
        elif kind_type == b"message" and content.subtype.lower() == b"rfc822":
            if content.encoding in _IDENTITY_ENCODINGS and self._may_open(depth):
                return self._message(start, bs, end, depth, section, content)
            return self._leaf(start, bs, end, section, content, sealed_message=True)
        return self._leaf(start, bs, end, section, content)

    def _may_open(self, depth: int) -> bool:
        return depth < MAX_DEPTH and self.parts < MAX_PARTS

    def _child(
        self, start: int, end: int, depth: int, section: tuple[int, ...], digest: bool
    ) -> Built:
        bs = mime.body_start(self.raw, start, end)
        fields = mime.first_fields(self.raw, start, bs, CONTENT_FIELDS)
        return self._entity(start, bs, end, depth, section, digest=digest, fields=fields)

    def _multipart(
        self,
        start: int,
        bs: int,
        end: int,
        depth: int,
        section: tuple[int, ...],
        content: _Content,
        boundary: bytes,
    ) -> Built:
        digest = content.subtype.lower() == b"digest"  # RFC 2046 §5.1.5
        built: list[Built] = []
        for i, (ps, pe) in enumerate(mime.split_multipart(self.raw, bs, end, boundary), 1):
            if self.parts >= MAX_PARTS:
                break
            built.append(self._child(ps, pe, depth + 1, (*section, i), digest))
        part = Part(
            section, start, bs, end, PartKind.MULTIPART, "multipart",
            _lower(content.subtype), "", content.encoding, 0, end - bs,
            tuple(b.part for b in built),
        )  # fmt: skip
        # RFC 9051 §9 body-type-mpart needs at least one body
        children_ext = b"".join(b.bodystructure for b in built) or _EMPTY_BODYSTRUCTURE
        children_basic = b"".join(b.body for b in built) or _EMPTY_BODY
        subtype = imapfmt.string(content.subtype)
        ext = _extension(content, with_md5=False, params=content.params)
        return Built(
            part,
            b"(" + children_ext + b" " + subtype + b" " + ext + b")",
            b"(" + children_basic + b" " + subtype + b")",
        )

    def _message(
        self, start: int, bs: int, end: int, depth: int, section: tuple[int, ...], content: _Content
    ) -> Built:
        raw = self.raw
        inner_bs = mime.body_start(raw, bs, end)
        inner_fields = mime.first_fields(raw, bs, inner_bs, _MESSAGE_FIELDS)
        base = section or (1,)  # a message that is itself message/rfc822 is its own part 1
        inner = self._entity(
            bs, inner_bs, end, depth + 1, (*base, 1),
            digest=False, fields=inner_fields, multipart_section=base,
        )  # fmt: skip
        lines = raw.count(b"\n", bs, end)
        part = Part(
            section, start, bs, end, PartKind.MESSAGE, "message", "rfc822", "",
            content.encoding, lines, end - bs, (inner.part,),
        )  # fmt: skip
        head = _basic_head(content, end - bs)
        env = envelope.encode_envelope(inner_fields)
        tail = b" %d" % lines
        ext = b" " + _extension(content, with_md5=True, params=None)
        return Built(
            part,
            b"(" + head + b" " + env + b" " + inner.bodystructure + tail + ext + b")",
            b"(" + head + b" " + env + b" " + inner.body + tail + b")",
        )

    def _leaf(
        self,
        start: int,
        bs: int,
        end: int,
        section: tuple[int, ...],
        content: _Content,
        *,
        sealed_message: bool = False,
    ) -> Built:
        raw = self.raw
        media_type = _lower(content.type_)
        is_text = media_type == "text"
        # RFC 9051 §7.5.2: text/* and message/rfc822 report body-fld-lines
        lines = raw.count(b"\n", bs, end) if is_text or sealed_message else 0
        binary_size: int | None = end - bs
        if content.encoding not in _IDENTITY_ENCODINGS:
            binary_size = mime.decoded_size(raw[bs:end], content.encoding)
        charset = _lower(mime.param(content.params, b"charset") or b"")
        part = Part(
            section, start, bs, end, PartKind.LEAF, media_type, _lower(content.subtype),
            charset, content.encoding, lines, binary_size,
        )  # fmt: skip
        head = _basic_head(content, end - bs)
        ext = b" " + _extension(content, with_md5=True, params=None)
        if is_text:
            head += b" %d" % lines
        elif sealed_message:
            sealed = b" " + envelope.EMPTY_ENVELOPE + b" "
            tail = b" %d" % lines
            return Built(
                part,
                b"(" + head + sealed + _EMPTY_BODYSTRUCTURE + tail + ext + b")",
                b"(" + head + sealed + _EMPTY_BODY + tail + b")",
            )
        return Built(part, b"(" + head + ext + b")", b"(" + head + b")")


def entity_bodystructure(raw: bytes, start: int, end: int, *, digest: bool = False) -> bytes:
    """The BODYSTRUCTURE of the one entity ``raw[start:end]`` (its header and body), as the
    BODYSTRUCTURE of a message containing it lists it: RFC 5259's BODYPARTSTRUCTURE, which
    URLFETCH gives of the part a URL names (RFC 5524). ``digest`` when the entity is a part
    of a multipart/digest, where a part without Content-Type is message/rfc822."""
    builder = Builder(raw)
    bs = mime.body_start(raw, start, end)
    fields = mime.first_fields(raw, start, bs, CONTENT_FIELDS)
    return builder._entity(start, bs, end, 0, (), digest=digest, fields=fields).bodystructure


def _lower(value: bytes) -> str:
    return value.decode("latin-1").lower()


def _content(fields: dict[bytes, bytes], *, digest: bool) -> _Content:
    """The media type, parameters and transfer encoding an entity's header declares."""
    parsed = None
    value = fields.get(b"content-type")
    if value is not None:
        parsed = mime.parse_content_type(value)
    if parsed is not None:
        type_, subtype, params = parsed
        if type_.lower() == b"text" and mime.param(params, b"charset") is None:
            params = [*params, _DEFAULT_CHARSET]  # RFC 2045 §5.2 default
    elif digest:
        type_, subtype, params = b"message", b"rfc822", []  # RFC 2046 §5.1.5
    else:
        type_, subtype, params = b"text", b"plain", [_DEFAULT_CHARSET]  # RFC 2045 §5.2
    cte_value = fields.get(b"content-transfer-encoding")
    cte = None if cte_value is None else mime.parse_token(cte_value)
    encoding = "7bit" if cte is None else _lower(cte)  # RFC 2045 §6.1 default
    return _Content(type_, subtype, params, cte, encoding, fields)


def _string(value: bytes) -> bytes:
    return imapfmt.string(imapfmt.without_nul(value))


def _nstring(value: bytes | None) -> bytes:
    return imapfmt.NIL if value is None else _string(value)


def _params(params: list[tuple[bytes, bytes]]) -> bytes:
    return imapfmt.nlist(_string(k) + b" " + _string(v) for k, v in params)


def _basic_head(content: _Content, size: int) -> bytes:
    """``type subtype params id description encoding size`` (RFC 9051 §9 body-fields)."""
    fields = content.fields
    return b"%s %s %s %s %s %s %d" % (
        _string(content.type_),
        _string(content.subtype),
        _params(content.params),
        _nstring(fields.get(b"content-id")),
        _nstring(fields.get(b"content-description")),
        _string(content.encoding_raw or b"7bit"),
        size,
    )


def _extension(
    content: _Content, *, with_md5: bool, params: list[tuple[bytes, bytes]] | None
) -> bytes:
    """Extension data: [md5 | params] disposition language location (RFC 9051 §9 body-ext-*)."""
    fields = content.fields
    first = _nstring(fields.get(b"content-md5")) if with_md5 else _params(params or [])
    disposition = imapfmt.NIL
    dsp_value = fields.get(b"content-disposition")
    parsed = None if dsp_value is None else mime.parse_disposition(dsp_value)
    if parsed is not None:
        disposition = imapfmt.plist((_string(parsed[0]), _params(parsed[1])))
    language = imapfmt.NIL
    lang_value = fields.get(b"content-language")
    if lang_value is not None:
        language = imapfmt.nlist(_string(t) for t in mime.parse_language(lang_value))
    location = _nstring(fields.get(b"content-location"))
    return b"%s %s %s %s" % (first, disposition, language, location)
