"""BODY[section], BINARY[section] and SEARCH helpers as slices of the raw message."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pytest

from courriel.mail.message import (
    SectionSpec,
    SectionText,
    UnknownTransferEncoding,
    decoded_part,
    find_part,
    parse,
    section_bytes,
)

NESTED = (
    b"From: a@example.com\r\n"
    b"Subject: outer\r\n"
    b"Content-Type: multipart/mixed; boundary=o\r\n"
    b"\r\n"
    b"--o\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"part one\r\n"
    b"--o\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner single\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--o\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner multi\r\n"
    b"Content-Type: multipart/alternative; boundary=i\r\n"
    b"\r\n"
    b"--i\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"alt one\r\n"
    b"--i\r\n"
    b"Content-Type: text/html\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"PGI+aGk8L2I+\r\n"
    b"--i--\r\n"
    b"--o--\r\n"
)
_HEADER_END = NESTED.index(b"\r\n\r\n") + 4
_INNER_MULTI_BODY = NESTED[NESTED.index(b"--i\r\n") : NESTED.index(b"--i--") + 5]

H = SectionText.HEADER
T = SectionText.TEXT
M = SectionText.MIME


@pytest.mark.parametrize(
    ("part", "text", "expected"),
    [
        ((), SectionText.ALL, NESTED),
        ((), H, NESTED[:_HEADER_END]),
        ((), T, NESTED[_HEADER_END:]),
        ((1,), SectionText.ALL, b"part one"),
        ((1,), M, b"Content-Type: text/plain\r\n\r\n"),
        ((2,), SectionText.ALL, b"Subject: inner single\r\n\r\ninner body"),
        ((2,), M, b"Content-Type: message/rfc822\r\n\r\n"),
        ((2,), H, b"Subject: inner single\r\n\r\n"),
        ((2,), T, b"inner body"),
        ((2, 1), SectionText.ALL, b"inner body"),  # the only part of a non-multipart message
        ((2, 1), M, b"Subject: inner single\r\n\r\n"),
        (
            (3,),
            H,
            b"Subject: inner multi\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n",
        ),
        ((3,), T, _INNER_MULTI_BODY),
        ((3, 1), SectionText.ALL, b"alt one"),
        ((3, 2), M, b"Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
        ((3, 2), SectionText.ALL, b"PGI+aGk8L2I+"),  # the CRLF is the delimiter's
        # Sections that do not exist.
        ((4,), SectionText.ALL, None),
        ((0,), SectionText.ALL, None),
        ((1, 1), SectionText.ALL, None),
        ((3, 3), SectionText.ALL, None),
        ((1,), H, None),  # HEADER only of message/rfc822 parts (RFC 9051 §6.4.5)
        ((1,), T, None),
        ((), M, None),
    ],
)
def test_section_bytes(part: tuple[int, ...], text: SectionText, expected: bytes | None) -> None:
    meta = parse(NESTED)
    assert section_bytes(NESTED, meta, SectionSpec(part, text)) == expected


def test_header_fields_and_not() -> None:
    raw = (
        b"Received: from a\r\n\tby b\r\n"
        b"From: x@example.com\r\n"
        b"Subject: folded\r\n  subject\r\n"
        b"X-Other: 1\r\n"
        b"\r\nbody\r\n"
    )
    meta = parse(raw)
    fields = SectionSpec((), SectionText.HEADER_FIELDS, ("SUBJECT", "from", "absent"))
    assert section_bytes(raw, meta, fields) == (
        b"From: x@example.com\r\nSubject: folded\r\n  subject\r\n\r\n"
    )
    not_fields = SectionSpec((), SectionText.HEADER_FIELDS_NOT, ("Subject", "From"))
    assert (
        section_bytes(raw, meta, not_fields) == b"Received: from a\r\n\tby b\r\nX-Other: 1\r\n\r\n"
    )
    none = SectionSpec((), SectionText.HEADER_FIELDS, ("absent",))
    assert section_bytes(raw, meta, none) == b"\r\n"


def test_header_fields_of_encapsulated_message() -> None:
    meta = parse(NESTED)
    spec = SectionSpec((3,), SectionText.HEADER_FIELDS, ("Subject",))
    assert section_bytes(NESTED, meta, spec) == b"Subject: inner multi\r\n\r\n"
    assert section_bytes(NESTED, meta, SectionSpec((1,), SectionText.HEADER_FIELDS, ("x",))) is None


def test_header_fields_of_unterminated_header() -> None:
    raw = b"Subject: no line end"
    meta = parse(raw)
    assert meta.header_size == len(raw)
    spec = SectionSpec((), SectionText.HEADER_FIELDS, ("subject",))
    assert section_bytes(raw, meta, spec) == b"Subject: no line end\r\n\r\n"


def test_single_part_message_has_part_one() -> None:
    raw = b"Subject: s\r\n\r\nthe body\r\n"
    meta = parse(raw)
    assert section_bytes(raw, meta, SectionSpec((1,))) == b"the body\r\n"
    assert section_bytes(raw, meta, SectionSpec((1,), M)) == b"Subject: s\r\n\r\n"
    assert section_bytes(raw, meta, SectionSpec((2,))) is None


def test_bare_lf_offsets_are_raw_offsets() -> None:
    raw = NESTED.replace(b"\r\n", b"\n")
    meta = parse(raw)
    assert meta.header_size == raw.index(b"\n\n") + 2
    assert section_bytes(raw, meta, SectionSpec((1,))) == b"part one"
    assert section_bytes(raw, meta, SectionSpec((2,), T)) == b"inner body"
    assert section_bytes(raw, meta, SectionSpec((3, 2))) == b"PGI+aGk8L2I+"
    assert decoded_part(raw, meta, (3, 2)) == b"<b>hi</b>"


def test_find_part_sections() -> None:
    meta = parse(NESTED)
    one, two, three = meta.root.children
    assert (one.section, two.section, three.section) == ((1,), (2,), (3,))
    assert two.children[0].section == (2, 1)
    assert three.children[0].section == (3,)  # a multipart message shares its part's number
    assert [c.section for c in three.children[0].children] == [(3, 1), (3, 2)]
    assert find_part(meta, (3, 2)) is three.children[0].children[1]
    assert find_part(meta, (2, 1)) is two.children[0]
    assert find_part(meta, ()) is meta.root
    # message/rfc822 parts count their lines; the last line break is the delimiter's.
    assert (two.lines, three.lines) == (2, 12)


def test_decoded_part_and_binary_size() -> None:
    meta = parse(NESTED)
    html = find_part(meta, (3, 2))
    assert html is not None
    assert decoded_part(NESTED, meta, (3, 2)) == b"<b>hi</b>"
    assert html.binary_size == len(b"<b>hi</b>")
    assert decoded_part(NESTED, meta, (1,)) == b"part one"
    assert decoded_part(NESTED, meta, ()) == NESTED
    assert decoded_part(NESTED, meta, (9,)) is None


def test_quoted_printable_decoding() -> None:
    raw = (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\n"
        b"caf=E9 soft=\r\nbreak\r\n"
    )
    meta = parse(raw)
    assert decoded_part(raw, meta, (1,)) == b"caf\xe9 softbreak\r\n"
    assert meta.root.binary_size == len(b"caf\xe9 softbreak\r\n")


def test_unknown_transfer_encoding() -> None:
    raw = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n"
    meta = parse(raw)
    assert meta.root.binary_size is None
    with pytest.raises(UnknownTransferEncoding) as info:
        decoded_part(raw, meta, (1,))
    assert info.value.encoding == "x-uuencode"


def test_base64_with_bad_padding_and_junk() -> None:
    raw = b"Content-Transfer-Encoding: base64\r\n\r\nYWJj\r\nZA\r\n!!\r\n"
    meta = parse(raw)
    assert decoded_part(raw, meta, (1,)) == b"abcd"
    assert meta.root.binary_size == 4


def test_mismatched_raw_is_refused() -> None:
    meta = parse(NESTED)
    with pytest.raises(ValueError, match="does not match"):
        section_bytes(NESTED + b"x", meta, SectionSpec())


class _OtherText(enum.Enum):
    HEADER_FIELDS = "HEADER.FIELDS"
    TEXT = "TEXT"


@dataclass(frozen=True, slots=True)
class _OtherSection:
    """A section type shaped like the IMAP parser's: text None for the whole part."""

    part: tuple[int, ...] = ()
    text: _OtherText | None = None
    fields: tuple[str, ...] = ()


def test_any_section_shaped_type_is_accepted() -> None:
    meta = parse(NESTED)
    assert section_bytes(NESTED, meta, _OtherSection((1,))) == b"part one"
    assert section_bytes(NESTED, meta, _OtherSection((2,), _OtherText.TEXT)) == b"inner body"
    fields = _OtherSection((), _OtherText.HEADER_FIELDS, ("subject",))
    assert section_bytes(NESTED, meta, fields) == b"Subject: outer\r\n\r\n"


def test_message_that_is_itself_message_rfc822() -> None:
    raw = (
        b"Subject: wrapper\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: wrapped\r\nContent-Type: multipart/mixed; boundary=w\r\n\r\n"
        b"--w\r\n\r\nfirst\r\n--w\r\n\r\nsecond\r\n--w--\r\n"
    )
    meta = parse(raw)
    inner = meta.root.children[0]
    assert (meta.root.section, inner.section) == ((), (1,))
    assert [c.section for c in inner.children] == [(1, 1), (1, 2)]
    assert section_bytes(raw, meta, SectionSpec((1,))) == raw[meta.header_size :]
    assert section_bytes(raw, meta, SectionSpec((1,), H)).startswith(b"Subject: wrapped\r\n")
    assert section_bytes(raw, meta, SectionSpec((1, 2))) == b"second"
    assert find_part(meta, (1, 2)) is inner.children[1]
