"""What the junk rules read of a message, parsed once for the tokens and the heuristics.

Theory of operation
-------------------
The tokens (``courriel.junk.tokens``) and the heuristics (``courriel.junk.heuristics``) read
the same things: a few header fields (Subject, From, Date, Message-ID, Content-Type) and the
decoded text of the first text parts. ``of`` reads them once into a ``View``.

Their meaning is the standard library's (``email`` with ``compat32``), as it was when the
rules were first written, because each user's trained model holds tokens made that way: a
field's value is its raw text (folds kept, bytes above 127 as surrogates), a part's type is
``get_content_type``, its text ``get_payload(decode=True)`` decoded with its charset (UTF-8
without one). Parsing with ``email`` costs several milliseconds on a 64 KB message, so ``of``
reads most messages from courriel's own parse (``courriel.mail.message.parse``, which the
store needs anyway and which the port 25 session shares) and falls back to ``email`` only
for what the two parsers might read differently: a header that is not plain ASCII or not
well-formed ``Name: value`` lines, bare CR line ends, an mbox ``From `` line, a
Content-Type with comments or RFC 2231 parameters, message/* parts, encodings other than
7bit, 8bit, binary, quoted-printable and base64, or a message over ``MAX_BYTES``.
tests/junk/test_junk_view.py holds the two paths equal on generated corpora.

Work is bounded: at most ``MAX_PARTS`` parts and ``MAX_TEXT`` characters of text in all (the
first ones), decoded from a bounded prefix of each part.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import functools
import quopri
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from courriel.mail import mime
from courriel.mail.message import MessageMeta, Part, PartKind, parse

MAX_BYTES = 1024 * 1024  # bytes of a message parsed at all (a cut MIME tree parses fine)
# Characters of text looked at, from the first text parts: the words of about two pages,
# enough to fill MAX_TOKENS distinct tokens in most mail, and a bounded cost per message
# (the word scan costs about 40 ns a character).
MAX_TEXT = 16_000
MAX_PARTS = 50  # MIME parts looked at
HEADER_LIMIT = 64 * 1024  # the header rules read at most this much of the message
# Encoded bytes of one part decoded at most: enough for MAX_TEXT characters whatever the
# transfer encoding (3 bytes per octet at worst) and charset (4 octets per character).
_MAX_ENCODED = MAX_TEXT * 12 + 64

_FIELD_LINE = re.compile(rb"[!-9;-~]+:")
# A Content-Type both parsers read alike: type/subtype, then token or plain quoted parameters.
_TOKEN = rb"[A-Za-z0-9!#$%&'+.^_`{|}~-]+"
_SIMPLE_TYPE = re.compile(
    rb"\s*" + _TOKEN + rb"/" + _TOKEN + rb"\s*"
    rb"(?:;\s*" + _TOKEN + rb"\s*=\s*(?:\"[^\"\\\r\n]*\"|[A-Za-z0-9!#$%&'+.^_`{|}~-]*)\s*)*;?\s*"
)
_PARAM = re.compile(rb";\s*(" + _TOKEN + rb")\s*=\s*(\"[^\"]*\"|[^;\s]*)")


_REMEMBERED = 1000  # characters of field values whose addresses are remembered


def addresses(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``email.utils.getaddresses`` of field values, remembered when short: the tokens and
    the heuristics both read the From field, and senders write again."""
    if sum(map(len, values)) > _REMEMBERED:
        return tuple(getaddresses(list(values)))
    return _addresses(values)


@functools.lru_cache(maxsize=1024)
def _addresses(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(getaddresses(list(values)))


@dataclass(frozen=True, slots=True)
class Header:
    """Header fields as ``email`` (compat32) gives them."""

    subject: str  # the first Subject's value, "" without one
    froms: tuple[str, ...]  # every From field's value
    date: str | None  # the first Date's value
    message_id: str  # the first Message-ID's value, "" without one
    content_type: str  # the message's media type, lower-case


@dataclass(frozen=True, slots=True)
class View:
    header: Header  # for the heuristics: the header block within HEADER_LIMIT
    token_header: Header  # for the tokens: the header of the message parsed whole
    # (media type, decoded text or None) of each part looked at, in walk order; the texts
    # together hold at most MAX_TEXT characters.
    parts: tuple[tuple[str, str | None], ...]
    fast: bool  # read from courriel's parse (False: from the email package)


def of(raw: bytes, meta: MessageMeta | None = None) -> View:
    """The view of ``raw``; ``meta`` is its parse when the caller has it already."""
    if len(raw) <= MAX_BYTES:
        found = _fast(raw, parse(raw) if meta is None else meta)
        if found is not None:
            return found
    return _slow(raw)


# --- from the email package -----------------------------------------------------------------


def _header(msg: Message) -> Header:
    date = msg.get("Date")
    return Header(
        str(msg.get("Subject", "")),
        tuple(str(v) for v in msg.get_all("From", [])),
        None if date is None else str(date),
        str(msg.get("Message-ID", "")),
        msg.get_content_type(),
    )


def header_of(raw: bytes) -> Message:
    end = raw.find(b"\r\n\r\n", 0, HEADER_LIMIT)
    head = raw[: end + 4] if end >= 0 else raw[:HEADER_LIMIT]
    return email.message_from_bytes(head, policy=email.policy.compat32)


def _email_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, AssertionError):  # a broken encoding teaches nothing
        return ""
    if not isinstance(payload, bytes):
        return ""
    return _decode(payload, part.get_content_charset())


def _decode(payload: bytes, charset: str | None) -> str:
    try:
        return payload.decode(charset or "utf-8", "replace")
    except (LookupError, ValueError):  # an unknown or malformed charset name
        return payload.decode("utf-8", "replace")


def _slow(raw: bytes) -> View:
    msg = email.message_from_bytes(raw[:MAX_BYTES], policy=email.policy.compat32)
    parts: list[tuple[str, str | None]] = []
    budget = MAX_TEXT
    for n, part in enumerate(msg.walk()):
        if n >= MAX_PARTS or budget <= 0:
            break
        kind = part.get_content_type()
        text = None
        if part.get_content_maintype() == "text":
            text = _email_text(part)[:budget]
            budget -= len(text)
        parts.append((kind, text))
    return View(_header(header_of(raw)), _header(msg), tuple(parts), fast=False)


# --- from courriel's parse ------------------------------------------------------------------


def _fields(raw: bytes, start: int, end: int) -> list[tuple[bytes, bytes]] | None:
    """(lower-case name, value as compat32 keeps it) of each field of the header block
    ``raw[start:end]`` (without its empty line), or None when ``email`` might read it
    otherwise."""
    block = raw[start:end]
    if not block.isascii() or block.count(b"\n") != block.count(b"\r\n"):
        return None
    out: list[tuple[bytes, bytes]] = []
    if not block:
        return out
    for line in block.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not out:
                return None
            name, value = out[-1]
            out[-1] = (name, value + b"\r\n" + line)
            continue
        m = _FIELD_LINE.match(line)
        if m is None:
            return None
        out.append((line[: m.end() - 1].lower(), line[m.end() :].lstrip(b" \t")))
    return out


def _first(fields: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for n, v in fields:
        if n == name:
            return v
    return None


def _media(fields: list[tuple[bytes, bytes]]) -> tuple[str, list[tuple[bytes, bytes]]] | None:
    """The media type and parameters of an entity, or None when the parsers might differ."""
    value = _first(fields, b"content-type")
    if value is None:
        return "text/plain", []
    if _SIMPLE_TYPE.fullmatch(value) is None:
        return None
    kind = value.split(b";", 1)[0].strip().lower().decode("ascii")
    return kind, [(n.lower(), v.strip(b'"')) for n, v in _PARAM.findall(value)]


def _param(params: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for n, v in params:
        if n == name:
            return v
    return None


def _header_from(fields: list[tuple[bytes, bytes]], kind: str) -> Header:
    def text(name: bytes) -> str | None:
        value = _first(fields, name)
        return None if value is None else value.decode("ascii")

    return Header(
        text(b"subject") or "",
        tuple(v.decode("ascii") for n, v in fields if n == b"from"),
        text(b"date"),
        text(b"message-id") or "",
        kind,
    )


def _fast(raw: bytes, meta: MessageMeta) -> View | None:
    root = meta.root
    bs = root.body_start
    if (
        raw.startswith(b"From ")
        or bs < 4
        or bs > HEADER_LIMIT
        or raw.find(b"\r\n\r\n", 0, bs) != bs - 4
        or raw.count(b"\r") != raw.count(b"\r\n")
    ):
        return None
    root_fields = _fields(raw, 0, bs - 4)
    if root_fields is None:
        return None
    walked: list[tuple[str, str | None]] = []
    budget = MAX_TEXT
    header: Header | None = None
    stack = [root]
    while stack:
        if len(walked) >= MAX_PARTS or budget <= 0:
            break
        part = stack.pop()
        fields = root_fields if part is root else _part_fields(raw, part)
        if fields is None:
            return None
        media = _media(fields)
        if media is None:
            return None
        kind, params = media
        if part is root:
            header = _header_from(fields, kind)
        if not _same_shape(part, kind, params, _first(fields, b"content-type")):
            return None
        text = None
        if kind.startswith("text/"):
            found = _text(raw, part, fields, params, budget)
            if found is None:
                return None
            text = found[:budget]
            budget -= len(text)
        walked.append((kind, text))
        stack.extend(reversed(part.children))
    assert header is not None
    return View(header, header, tuple(walked), fast=True)


def _part_fields(raw: bytes, part: Part) -> list[tuple[bytes, bytes]] | None:
    start, bs = part.header_start, part.body_start
    if bs == start:
        return []
    if raw.startswith(b"\r\n", start, bs) and bs == start + 2:
        return []  # no header fields: the part opens with its empty line
    if bs - start < 4 or raw[bs - 4 : bs] != b"\r\n\r\n":
        return None
    return _fields(raw, start, bs - 4)


def _same_shape(
    part: Part, kind: str, params: list[tuple[bytes, bytes]], content_type: bytes | None
) -> bool:
    """Whether ``email`` makes the same entity of it: no message/* (email opens them
    otherwise), and a multipart exactly when a usable boundary is given."""
    major = kind.split("/", 1)[0]
    if major == "message" or kind == "multipart/digest":
        return False
    if major == "multipart":
        boundary = _param(params, b"boundary")
        if not boundary or boundary != boundary.rstrip() or part.kind is not PartKind.MULTIPART:
            return False
        assert content_type is not None  # a multipart says so in its Content-Type
        parsed = mime.parse_content_type(mime.unfold(content_type))
        return parsed is not None and mime.param(parsed[2], b"boundary") == boundary
    return part.kind is PartKind.LEAF


def _text(
    raw: bytes, part: Part, fields: list[tuple[bytes, bytes]], params: list[tuple[bytes, bytes]],
    budget: int,
) -> str | None:  # fmt: skip
    """The decoded text of a text part, at least its first ``budget`` characters as
    ``email`` decodes them; None for an encoding this path leaves to ``email``."""
    cte = (_first(fields, b"content-transfer-encoding") or b"").decode("ascii").lower()
    body = raw[part.body_start : part.body_end]
    limit = min(_MAX_ENCODED, budget * 12 + 64)
    cut = len(body) > limit and body.rfind(b"\n", 0, limit) > 0
    if cut:  # at a line end: a prefix of the lines decodes to a prefix of the text
        body = body[: body.rfind(b"\n", 0, limit) + 1]
    if cte == "quoted-printable":
        payload = quopri.decodestring(body)
    elif cte == "base64":
        joined = b"".join(body.splitlines())
        payload = _b64(joined[: len(joined) - len(joined) % 4] if cut else joined)
    elif cte in ("x-uuencode", "uuencode", "uue", "x-uue"):
        return None
    else:  # email returns the body as is for any other encoding, as for 7bit
        payload = body[:limit]
    charset = _param(params, b"charset")
    return _decode(payload, None if charset is None else charset.decode("ascii").lower())


def _b64(encoded: bytes) -> bytes:
    """Base64 as ``email`` decodes a body (``email._encoded_words.decode_b``)."""
    pad = len(encoded) % 4
    missing = b"==="[: 4 - pad] if pad else b""
    try:
        return base64.b64decode(encoded + missing, validate=True)
    except binascii.Error:
        try:
            return base64.b64decode(encoded, validate=False)
        except binascii.Error:
            try:
                return base64.b64decode(encoded + b"==", validate=False)
            except binascii.Error:
                return encoded
