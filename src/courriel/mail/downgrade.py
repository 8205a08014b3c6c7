"""8BITMIME downgrade (RFC 6152 §3): an 8-bit message made 7-bit for a server without 8BITMIME.

Theory of operation
-------------------
RFC 6152 leaves a relay two choices for an 8-bit message when the next hop does not offer
8BITMIME: convert it to 7 bits, or return it as undeliverable. Postfix converts
(``disable_mime_output_conversion = no``, its default), and so does courriel: the mail a
person sends from a modern client is 8-bit MIME text, the few servers left without 8BITMIME
are old but real, and a bounce for a message that could have gone is worse than a re-encoded
body. Re-encoding invalidates a DKIM signature over the body; that is the accepted cost.

``to_seven_bit`` walks the MIME tree with ``courriel.mail.mime`` and rewrites only what holds
8-bit octets: each such leaf body becomes quoted-printable (RFC 2045 §6.7), its
``Content-Transfer-Encoding`` set (or added) accordingly; multipart bodies are converted part
by part with their delimiters, preamble and epilogue kept as they were. Everything else is
copied byte for byte. It returns ``None`` -- the message cannot be sent, bounce it, as
Postfix does for what it cannot convert -- when 8-bit octets sit where no transfer encoding
can carry them: in a header field (that needs SMTPUTF8 or RFC 2047 words the sender did not
write), in a preamble or epilogue, in a ``binary`` part, in a message/* part, or deeper than
``MAX_DEPTH``.
"""

from __future__ import annotations

import binascii
import re

from courriel.mail import mime

MAX_DEPTH = 20
_CTE_FIELD = re.compile(rb"(?im)^content-transfer-encoding[ \t]*:.*(?:\r?\n[ \t].*)*\r?\n")
_WANTED = frozenset({b"content-type", b"content-transfer-encoding"})
_VERSION = frozenset({b"mime-version"})


def to_seven_bit(raw: bytes) -> bytes | None:
    """``raw`` with every 8-bit part re-encoded, or ``None`` when that is not possible."""
    if raw.isascii():
        return raw
    out = _entity(raw, 0, len(raw), 0)
    if out is None:
        return None
    top = mime.body_start(out, 0, len(out))
    if not mime.first_fields(out, 0, top, _VERSION):
        out = b"MIME-Version: 1.0\r\n" + out  # RFC 2045 §4: the encoding header needs it
    return out


def _entity(raw: bytes, start: int, end: int, depth: int) -> bytes | None:
    body = mime.body_start(raw, start, end)
    header = raw[start:body]
    if not header.isascii() or depth > MAX_DEPTH:
        return None
    if raw[body:end].isascii():
        return raw[start:end]
    fields = mime.first_fields(raw, start, body, _WANTED)
    parsed = mime.parse_content_type(fields.get(b"content-type", b"text/plain"))
    kind = parsed[0].lower() if parsed else b"text"
    if kind == b"multipart" and parsed is not None:
        boundary = mime.param(parsed[2], b"boundary")
        if not boundary:
            return None
        return _multipart(raw, start, body, end, boundary, depth)
    if kind == b"message":
        return None  # RFC 2046 §5.2: only 7bit, 8bit or binary; cannot be re-encoded here
    encoding = fields.get(b"content-transfer-encoding", b"7bit").strip().lower()
    if encoding not in (b"7bit", b"8bit"):
        return None  # binary, or 8-bit octets inside base64/quoted-printable: broken anyway
    return _leaf(header, raw[body:end])


def _multipart(
    raw: bytes, start: int, body: int, end: int, boundary: bytes, depth: int
) -> bytes | None:
    parts = mime.split_multipart(raw, body, end, boundary)
    if not parts:
        return None
    out = [raw[start : parts[0][0]]]
    for index, (s, e) in enumerate(parts):
        converted = _entity(raw, s, e, depth + 1)
        if converted is None:
            return None
        out.append(converted)
        gap_end = parts[index + 1][0] if index + 1 < len(parts) else end
        out.append(raw[e:gap_end])  # the delimiter line, or the close delimiter and epilogue
    joined = b"".join(out)
    # The preamble, delimiters and epilogue were copied: they must be 7-bit themselves.
    return joined if _gaps_ascii(raw, start, body, parts, end) else None


def _gaps_ascii(raw: bytes, start: int, body: int, parts: list[tuple[int, int]], end: int) -> bool:
    gaps = [(body, parts[0][0])]
    gaps += [(parts[i][1], parts[i + 1][0]) for i in range(len(parts) - 1)]
    gaps.append((parts[-1][1], end))
    return all(raw[s:e].isascii() for s, e in gaps)


def _leaf(header: bytes, body: bytes) -> bytes:
    """The header with Content-Transfer-Encoding: quoted-printable, and the body encoded."""
    encoded = binascii.b2a_qp(body, quotetabs=False, istext=True, header=False)  # RFC 2045 §6.7
    line = b"Content-Transfer-Encoding: quoted-printable\r\n"
    if _CTE_FIELD.search(header):
        header = _CTE_FIELD.sub(lambda _: line, header, count=1)
    else:
        cut = len(header) - 2 if header.endswith(b"\r\n\r\n") else len(header)
        header = header[:cut] + line + header[cut:]
    return header + encoded
