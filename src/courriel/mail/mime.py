"""Byte-level MIME primitives: header blocks, header fields, parameters, boundaries, decoding.

Theory of operation
-------------------
Everything here works on offsets into the raw message and never copies or rewrites it: a
header block is found with one regex search for the empty line, header fields with one
``finditer`` over that block, and multipart delimiters with ``bytes.find`` for the boundary
string, checked where each candidate sits. No function loops over lines in Python, so a
message of tens of megabytes costs a few scans in C.

Line ends may be CRLF or bare LF (mail appended over IMAP or imported from mbox); offsets are
always positions in the raw bytes as given. The line break before a delimiter belongs to the
delimiter (RFC 2046 §5.1.1), so a part ends before it.

Nothing here raises on malformed input: a value that does not parse is treated as absent,
which selects the RFC default (RFC 2045 §5.2, §6.1).
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re

# Field name, then the value with its folded continuation lines (RFC 5322 §2.2, §2.2.3).
# Names are taken leniently (anything but white space and colon) as other servers do.
_FIELD = re.compile(rb"(?m)^([^\s:]+)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)")
# One whole field with its line ends, as HEADER.FIELDS must return it (RFC 9051 §6.4.5).
_FIELD_LINES = re.compile(rb"(?m)^([^\s:]+)[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*\n?")
_EMPTY_LINE = re.compile(rb"\n\r?\n")
_NAME = re.compile(rb"[^\s:]+")  # a field name as ``_FIELD_LINES`` reads one
_NOTHING = re.compile(rb"(?!)")

# RFC 2045 §5.1 token: any CHAR except SP, CTLs and tspecials.
_TOKEN = rb"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_TYPE = re.compile(rb"[ \t]*(" + _TOKEN + rb")[ \t]*/[ \t]*(" + _TOKEN + rb")")
_LEAD_TOKEN = re.compile(rb"[ \t]*(" + _TOKEN + rb")[ \t]*(?:;|$)")
_PARAM = re.compile(rb';[ \t]*([^\s;="]+)[ \t]*=[ \t]*("(?:[^"\\]++|\\.)*+"?|[^;]*)', re.DOTALL)
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)
_COMMENT_OR_QUOTED = re.compile(rb'"(?:[^"\\]++|\\.)*+"?|\((?:[^()\\]++|\\.)*+\)', re.DOTALL)
# Section numbers are short; a longer run of digits is a plain name, not a 4300-digit int().
_RFC2231_NAME = re.compile(r"^(.*?)\*(?:([0-9]{1,9})(\*)?|)$")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")
_ATTRIBUTE_CHAR = re.compile(r"[^!#$&+\-.0-9A-Z^_`a-z{|}~]")

_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
# Encoded text may hold spaces, which RFC 2047 §5 forbids but many mailers write.
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")


# --- header blocks and fields ------------------------------------------------------------------


def body_start(raw: bytes, start: int, end: int) -> int:
    """Offset just after the empty line ending the header that begins at ``start``.

    Without an empty line before ``end`` the whole entity is header and the body is empty.
    """
    if start >= end:
        return end
    if raw[start] == 0x0A:  # no header at all: the entity opens with its empty line
        return start + 1
    if raw.startswith(b"\r\n", start, end):
        return start + 2
    m = _EMPTY_LINE.search(raw, start, end)
    return end if m is None else m.end()


def unfold(value: bytes) -> bytes:
    """A field value with folding line breaks removed and outer white space trimmed.

    RFC 5322 §2.2.3 removes only the CRLF of a fold; stray CR or LF are dropped too, since no
    IMAP string form wants them.
    """
    return value.replace(b"\r", b"").replace(b"\n", b"").strip(b" \t")


def first_fields(raw: bytes, start: int, end: int, wanted: frozenset[bytes]) -> dict[bytes, bytes]:
    """The unfolded value of the first occurrence of each wanted field (names lower-case)."""
    found: dict[bytes, bytes] = {}
    for name, value in _FIELD.findall(raw, start, end):
        name = name.lower()
        if name in wanted and name not in found:
            found[name] = unfold(value)
    return found


def all_values(raw: bytes, start: int, end: int, name: bytes) -> list[bytes]:
    """Unfolded values of every field called ``name`` (lower-case), in order."""
    return [
        unfold(m.group(2)) for m in _FIELD.finditer(raw, start, end) if m.group(1).lower() == name
    ]


@functools.lru_cache(maxsize=256)
def field_name_set(fields: tuple[str, ...]) -> frozenset[bytes]:
    """``HEADER.FIELDS`` names as ``field_lines`` wants them: encoded and lower-case.

    Cached: a FETCH asks for the same few names in every message it answers.
    """
    return frozenset(name.encode("utf-8", "replace").lower() for name in fields)


def field_lines(
    raw: bytes, start: int, end: int, wanted: frozenset[bytes], *, exclude: bool
) -> bytes:
    """The header lines whose names are (or with ``exclude`` are not) in ``wanted``.

    ``wanted`` holds lower-case names (``field_name_set``).

    Lines are returned exactly as they appear, folds included, then one empty line
    (RFC 9051 §6.4.5 HEADER.FIELDS). A last line cut off without its line end gets CRLF.
    """
    out: list[bytes] = []
    if exclude:
        for m in _FIELD_LINES.finditer(raw, start, end):
            if m.group(1).lower() not in wanted:
                line = m.group(0)
                out.append(line if line.endswith(b"\n") else line + b"\r\n")
    else:
        # The few fields asked for, found by one regex that names them: a page of headers asks
        # for four fields of headers that have tens, and this skips the others in C.
        for line in _named_fields(wanted).findall(raw, start, end):
            out.append(line if line.endswith(b"\n") else line + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


@functools.lru_cache(maxsize=256)
def _named_fields(wanted: frozenset[bytes]) -> re.Pattern[bytes]:
    """``_FIELD_LINES`` for the fields named in ``wanted`` only (ASCII case-insensitive, as
    ``bytes.lower``). A name ``_FIELD_LINES`` could never read (white space or a colon in it)
    matches nothing here either."""
    names = sorted(re.escape(n) for n in wanted if _NAME.fullmatch(n))
    if not names:
        return _NOTHING
    return re.compile(rb"(?mi)^(?:" + b"|".join(names) + rb")[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*\n?")


# --- Content-Type and friends ------------------------------------------------------------------


def strip_comments(value: bytes) -> bytes:
    """``value`` with RFC 5322 comments removed, quoted strings left alone."""
    if b"(" not in value:
        return value
    return _COMMENT_OR_QUOTED.sub(lambda m: m.group(0) if m.group(0)[:1] == b'"' else b" ", value)


def parse_content_type(value: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]] | None:
    """``(type, subtype, params)`` as written, or None when the value is not a media type."""
    value = strip_comments(value)
    m = _TYPE.match(value)
    if m is None:
        return None
    return m.group(1), m.group(2), parse_params(value[m.end() :])


def parse_disposition(value: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """``(disposition, params)`` of a Content-Disposition value (RFC 2183), or None."""
    value = strip_comments(value)
    m = _LEAD_TOKEN.match(value)
    if m is None:
        return None
    return m.group(1), parse_params(value[m.end(1) :])


def parse_token(value: bytes) -> bytes | None:
    """The single token of a value like Content-Transfer-Encoding, or None if it is not one."""
    value = strip_comments(value).strip(b" \t")
    return value if re.fullmatch(_TOKEN, value) else None


def parse_params(tail: bytes) -> list[tuple[bytes, bytes]]:
    """``; name=value`` parameters, quoted values unescaped, RFC 2231 sections joined."""
    raw: list[tuple[bytes, bytes]] = []
    for m in _PARAM.finditer(tail):
        value = m.group(2)
        if value[:1] == b'"':
            inner = value[1:-1] if len(value) > 1 and value.endswith(b'"') else value[1:]
            value = _QUOTED_PAIR.sub(rb"\1", inner)
        else:
            value = value.rstrip(b" \t")
        raw.append((m.group(1), value))
    if not any(b"*" in name for name, _ in raw):
        return raw
    return _join_rfc2231(raw)


def _join_rfc2231(params: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Join ``name*0``, ``name*1*`` ... into one ``name`` or ``name*`` parameter (RFC 2231 §3).

    The joined value keeps the extended form ``charset'lang'%XX``, as other servers report it;
    unencoded sections of an extended value are percent-encoded so the whole stays one value.
    A plain ``name`` sent beside ``name*`` (for old readers) is kept as its own parameter.
    """
    order: list[tuple[bool, str]] = []
    plain: dict[str, tuple[bytes, bytes]] = {}
    sections: dict[str, list[tuple[int, bool, bytes]]] = {}
    for name_b, value in params:
        name = name_b.decode("latin-1")
        m = _RFC2231_NAME.match(name)
        if m is None:
            if name.lower() not in plain:
                order.append((False, name.lower()))
                plain[name.lower()] = (name_b, value)
            continue
        base = m.group(1).lower()
        if base not in sections:
            order.append((True, base))
            sections[base] = []
        index = int(m.group(2)) if m.group(2) is not None else 0
        extended = m.group(2) is None or m.group(3) is not None
        sections[base].append((index, extended, value))
    joined: list[tuple[bytes, bytes]] = []
    for is_2231, key in order:
        if not is_2231:
            joined.append(plain[key])
            continue
        parts = sorted(sections[key], key=lambda p: p[0])
        name_out = key.encode("latin-1")
        if not any(ext for _, ext, _ in parts):
            joined.append((name_out, b"".join(v for _, _, v in parts)))
            continue
        value = b"".join(v if ext else _percent_encode(v) for _, ext, v in parts)
        joined.append((name_out + b"*", value))
    return joined


def param(params: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of parameter ``name`` (lower-case): the first plain one, else an RFC 2231
    extended ``name*`` with its charset and language dropped and %XX decoded (RFC 2231 §4).
    """
    extended = name + b"*"
    found = None
    for key, value in params:
        key = key.lower()
        if key == name:
            return value
        if key == extended and found is None:
            found = _PERCENT.sub(lambda m: bytes((int(m.group(1), 16),)), value.split(b"'", 2)[-1])
    return found


def _percent_encode(value: bytes) -> bytes:
    text = value.decode("latin-1")
    return _ATTRIBUTE_CHAR.sub(lambda m: f"%{ord(m.group(0)):02X}", text).encode("latin-1")


def parse_language(value: bytes) -> list[bytes]:
    """Language tags of Content-Language (RFC 3282: ``1#Language-Tag``)."""
    value = strip_comments(value)
    return [t for t in (p.strip(b" \t") for p in value.split(b",")) if re.fullmatch(_TOKEN, t)]


# --- multipart delimiters ----------------------------------------------------------------------


def split_multipart(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each body part between delimiters of ``boundary`` (RFC 2046 §5.1.1).

    A delimiter is ``--boundary`` at a line start, then optionally ``--`` (the close
    delimiter), transport padding and the line end. A missing close delimiter ends the last
    part at ``end``; text before the first delimiter (preamble) and after the close
    (epilogue) belongs to no part.
    """
    delim = b"--" + boundary
    ranges: list[tuple[int, int]] = []
    current: int | None = None
    pos = start
    while True:
        i = raw.find(delim, pos, end)
        if i < 0:
            break
        pos = i + 1
        if i != start and raw[i - 1] != 0x0A:
            continue
        line_end, closing = _delimiter_line_end(raw, i + len(delim), end)
        if line_end < 0:
            continue
        if current is not None:
            ranges.append((current, _strip_line_break(raw, current, i)))
        if closing:
            return ranges
        current = pos = line_end
    if current is not None:
        ranges.append((current, end))
    return ranges


def _delimiter_line_end(raw: bytes, j: int, end: int) -> tuple[int, bool]:
    """Where the delimiter line whose boundary ends at ``j`` ends, or -1 if it is not one."""
    closing = raw.startswith(b"--", j, end)
    if closing:
        j += 2
    nl = raw.find(b"\n", j, end)
    stop = end if nl < 0 else nl
    padding = raw[j:stop].rstrip(b"\r")
    if padding.strip(b" \t"):  # RFC 2046 §5.1.1: only transport padding may follow
        return -1, False
    return (end if nl < 0 else nl + 1), closing


def _strip_line_break(raw: bytes, start: int, i: int) -> int:
    """End of a part whose following delimiter starts at ``i``: before the line break."""
    if i > start and raw[i - 1] == 0x0A:
        i -= 1
        if i > start and raw[i - 1] == 0x0D:
            i -= 1
    return i


# --- transfer encodings and encoded words ------------------------------------------------------


def decode_base64(data: bytes) -> bytes:
    """Base64 as mail clients write it: line breaks, junk and missing padding tolerated."""
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        clean = _B64_JUNK.sub(b"", data)
        rest = len(clean) % 4
        if rest == 1:
            clean = clean[:-1]
        elif rest:
            clean += b"=" * (4 - rest)
        return binascii.a2b_base64(clean)


def decoded_size(data: bytes, encoding: str) -> int | None:
    """``len(decode_transfer(data, encoding))``, without decoding clean base64.

    Base64 as mailers write it -- alphabet and line breaks, padding only at the end -- has a
    size that follows from its length; anything else is decoded to be exact.
    """
    if encoding == "base64":
        clean = data.translate(None, b"\r\n")
        pad = len(clean) - len(clean.rstrip(b"="))
        if (
            len(clean) % 4 == 0
            and pad <= 2
            and clean.find(b"=", 0, len(clean) - pad) < 0
            and not clean.translate(None, _B64_ALPHABET)
        ):
            return len(clean) // 4 * 3 - pad
    decoded = decode_transfer(data, encoding)
    return None if decoded is None else len(decoded)


# Spaces and tabs right before a line end. The look-behind lets a run be tried from its first
# character only, so the search is linear however long the run.
_QP_LINE_END_WHITE_SPACE = re.compile(rb"(?<![ \t])[ \t]+(?=\r?\n)")
_TAB_TO_SPACE = bytes.maketrans(b"\t", b" ")


def decode_qp(data: bytes) -> bytes:
    """Quoted-printable (RFC 2045 §6.7); soft line breaks may end in CRLF or LF.

    Rule 3: white space at the end of an encoded line was added in transport and is deleted
    before decoding, so ``=`` followed by spaces is a soft line break too (Dovecot decodes
    the same way). A space before a bare CR is not at a line end and stays.
    """
    # One scan instead of four: with tabs made spaces and CRs gone, every space or tab before
    # a line end shows as " \n" (a space before a bare CR too: the substitution then finds
    # nothing, which is only slower).
    if b" \n" in data.translate(_TAB_TO_SPACE, b"\r"):
        data = _QP_LINE_END_WHITE_SPACE.sub(b"", data)
    return binascii.a2b_qp(data)


def decode_transfer(data: bytes, encoding: str) -> bytes | None:
    """``data`` decoded per its Content-Transfer-Encoding; None for one we do not know."""
    if encoding in ("7bit", "8bit", "binary"):
        return data
    if encoding == "base64":
        return decode_base64(data)
    if encoding == "quoted-printable":
        return decode_qp(data)
    return None


MAX_LINE = 998  # octets of a line before its CRLF in 7bit and 8bit data (RFC 5322 §2.1.1)


def data_domain(data: bytes) -> str:
    """The identity encoding that can label ``data`` (RFC 2045 §2.7-2.9): "7bit" for short
    lines of US-ASCII without NUL, where CR and LF come only as CRLF; "8bit" for the same with
    octets above 127; "binary" for anything else."""
    if b"\0" in data:
        return "binary"
    crlf = data.count(b"\r\n")
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
        return "binary"  # a bare CR or LF
    if len(data) > MAX_LINE and max(map(len, data.split(b"\r\n"))) > MAX_LINE:
        return "binary"
    return "7bit" if data.isascii() else "8bit"


def to_text(data: bytes, charset: str) -> str:
    """``data`` as text in ``charset``; unknown charsets read as UTF-8, errors replaced.

    The name comes from the message, so it may name a codec that is not a text encoding
    (``base64``, ``zlib``) or one that fails whatever the error handler (``idna``): those
    read as UTF-8 too.
    """
    try:
        codec = codecs.lookup(charset or "us-ascii").name
    except (LookupError, ValueError):  # ValueError: a NUL in the charset name
        codec = "utf-8"
    if codec == "ascii":
        codec = "utf-8"  # 8-bit text labelled us-ascii is nearly always UTF-8 in practice
    try:
        text = data.decode(codec, "replace")
    except (LookupError, UnicodeError, ValueError):
        return data.decode("utf-8", "replace")
    if codec not in ("utf-8", "latin-1", "iso8859-1"):
        # Some decoders (utf-7, utf-16) can yield lone surrogates, which no UTF-8 output takes.
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def header_text(value: bytes) -> str:
    """A raw header value as text: RFC 2047 encoded words decoded, 8-bit read as UTF-8.

    White space between two adjacent encoded words is dropped (RFC 2047 §6.2). 8-bit bytes
    that are not UTF-8 (RFC 6532) are read as Latin-1, the common legacy case.
    """
    if b"=?" not in value:
        return _raw_text(value)
    out: list[str] = []
    pos = 0
    after_word = False
    for m in _ENCODED_WORD.finditer(value):
        gap = value[pos : m.start()]
        if not (after_word and not gap.strip(b" \t\r\n")):
            out.append(_raw_text(gap))
        out.append(_decode_word(m.group(1), m.group(2), m.group(3)))
        pos = m.end()
        after_word = True
    out.append(_raw_text(value[pos:]))
    return "".join(out)


def _raw_text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _decode_word(charset: bytes, kind: bytes, text: bytes) -> str:
    name = charset.split(b"*", 1)[0].decode("ascii", "replace")  # RFC 2231 §5 language suffix
    if kind in (b"b", b"B"):
        data = decode_base64(text)
    else:
        data = binascii.a2b_qp(text, header=True)
    return to_text(data, name)
