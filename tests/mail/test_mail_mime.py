"""Byte-level MIME primitives: header blocks, parameters, delimiters, encoded words."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from courriel.mail import mime


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"A: 1\r\n\r\nbody", 8),
        (b"A: 1\n\nbody", 6),
        (b"A: 1\n\r\nbody", 7),  # mixed line ends still end the header
        (b"\r\nbody", 2),  # no header at all
        (b"\nbody", 1),
        (b"A: 1\r\nB: 2", 10),  # no empty line: all header
        (b"", 0),
    ],
)
def test_body_start(raw: bytes, expected: int) -> None:
    assert mime.body_start(raw, 0, len(raw)) == expected


def test_first_fields_unfolds_and_keeps_first() -> None:
    raw = b"Subject: a\r\n\tb  \r\nsubject: second\r\nX : spaced\r\n\r\n"
    fields = mime.first_fields(raw, 0, len(raw), frozenset({b"subject", b"x"}))
    assert fields == {b"subject": b"a\tb", b"x": b"spaced"}


def _fields_by_name(raw: bytes, wanted: frozenset[bytes], exclude: bool) -> bytes:
    """HEADER.FIELDS one line at a time (RFC 9051 §6.4.5, RFC 5322 §2.2.3), the reference: a
    field is a line opening with a name and a colon, with the lines after it that open with
    white space; a line of neither kind, and the white-space lines after it, belong to none."""
    fields: list[list[bytes]] = []
    keep: bool | None = None  # the current field is asked for; None: no current field
    for line in re.split(rb"(?<=\n)", raw):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if keep:
                fields[-1].append(line)
            continue
        m = re.match(rb"([^\s:]+)[ \t]*:", line)
        keep = None if m is None else (m.group(1).lower() in wanted) != exclude
        if keep:
            fields.append([line])
    out = [b"".join(f) for f in fields]
    return b"".join(f if f.endswith(b"\n") else f + b"\r\n" for f in out) + b"\r\n"


_HEADER_BYTES = st.lists(
    st.sampled_from([b"To", b"to", b"TO ", b"From", b"x-to", b"Date", b"a b", b":", b" ", b"\t"])
    | st.sampled_from([b"\r\n", b"\n", b"\r", b": v", b"x", b"\xe9", b"("]),
    max_size=40,
).map(b"".join)
_NAMES = st.frozensets(
    st.sampled_from([b"to", b"from", b"date", b"x-to", b"a b", b"to:", b"", b"(", b"\xe9"]),
    max_size=4,
)


@given(_HEADER_BYTES, _NAMES, st.booleans())
@example(b"To: a\r\n b\r\nx-to: c\r\nTO : d", frozenset({b"to"}), False)
@example(b"a b: 1\r\nto:from: 2\r\n", frozenset({b"a b", b"to"}), False)
def test_field_lines_is_the_fields_named(
    raw: bytes, wanted: frozenset[bytes], exclude: bool
) -> None:
    assert mime.field_lines(raw, 0, len(raw), wanted, exclude=exclude) == _fields_by_name(
        raw, wanted, exclude
    )


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b'; a=1; B="two \\"2\\""', [(b"a", b"1"), (b"B", b'two "2"')]),
        (b'; a="unterminated', [(b"a", b"unterminated")]),
        (b";a=x ; b = y ", [(b"a", b"x"), (b"b", b"y")]),
        (b"; broken; c=3", [(b"c", b"3")]),
        # RFC 2231 §3 continuations, §4 charset and language.
        (b'; name*0="long"; name*1="name"', [(b"name", b"longname")]),
        (b"; name*1*=%AC; name*0*=utf-8''%E2%82", [(b"name*", b"utf-8''%E2%82%AC")]),
        (b"; name*0*=utf-8''%E2%82%AC; name*1=\" x\"", [(b"name*", b"utf-8''%E2%82%AC%20x")]),
        (b"; name=plain; name*=utf-8''ext", [(b"name", b"plain"), (b"name*", b"utf-8''ext")]),
    ],
)
def test_parse_params(tail: bytes, expected: list[tuple[bytes, bytes]]) -> None:
    assert mime.parse_params(tail) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"text/plain", (b"text", b"plain", [])),
        (b" text / html ; charset=utf-8", (b"text", b"html", [(b"charset", b"utf-8")])),
        (b"(c) image/png (c); x=1", (b"image", b"png", [(b"x", b"1")])),
        (b"text", None),
        (b"", None),
        (b"te\xffxt/plain", None),
    ],
)
def test_parse_content_type(
    value: bytes, expected: tuple[bytes, bytes, list[tuple[bytes, bytes]]] | None
) -> None:
    assert mime.parse_content_type(value) == expected


def test_parse_token_and_language() -> None:
    assert mime.parse_token(b" Base64 (comment)") == b"Base64"
    assert mime.parse_token(b"?invalid") is None
    assert mime.parse_token(b"") is None
    assert mime.parse_language(b"en, (x) fr-CA,, ") == [b"en", b"fr-CA"]


def test_split_multipart_rules() -> None:
    raw = (
        b"preamble --b not at line start\r\n"
        b"--b \t\r\n"  # transport padding after the boundary
        b"one\r\n"
        b"--bx\r\n"  # longer boundary: content
        b"--b\n"  # bare LF
        b"two\n"
        b"--b--  \r\n"
        b"epilogue\r\n--b\r\nignored\r\n"
    )
    ranges = mime.split_multipart(raw, 0, len(raw), b"b")
    assert [raw[s:e] for s, e in ranges] == [b"one\r\n--bx", b"two"]


def test_split_multipart_delimiter_at_start_and_end_without_line_end() -> None:
    raw = b"--b\r\nonly\r\n--b--"
    assert [raw[s:e] for s, e in mime.split_multipart(raw, 0, len(raw), b"b")] == [b"only"]
    empty = b"--b\r\n--b\r\n--b--"
    assert [empty[s:e] for s, e in mime.split_multipart(empty, 0, len(empty), b"b")] == [b"", b""]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"plain", "plain"),
        (b"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # RFC 2047 §6.2: space between words goes
        (b"=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        (b"=?ISO-8859-1?B?Y2Fm6Q==?=", "café"),
        (b"=?utf-8*fr?Q?caf=C3=A9_noir?=", "café noir"),  # RFC 2231 §5 language
        (b"=?x-unknown?q?abc?=", "abc"),
        (b"=?utf-8?b?!!!?=", ""),
        (b"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        (b"=?utf-8?q?with space?=", "with space"),  # lenient, as mail readers are
        ("déjà".encode(), "déjà"),
    ],
)
def test_header_text(value: bytes, expected: str) -> None:
    assert mime.header_text(value) == expected


def test_decode_transfer() -> None:
    assert mime.decode_transfer(b"YWJj\r\nZA==", "base64") == b"abcd"
    assert mime.decode_transfer(b"YWJjZA", "base64") == b"abcd"  # padding missing
    assert mime.decode_transfer(b"a=3Db=\nc", "quoted-printable") == b"a=bc"
    assert mime.decode_transfer(b"raw\x00", "binary") == b"raw\x00"
    assert mime.decode_transfer(b"x", "x-uuencode") is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"YWJj",
        b"YWJjZA==\r\n",
        b"YWJjZGU=\n",
        b"YW\r\nJj\r\nZA\r\n==",
        b"YWJjZA",  # padding missing: decoded to be exact
        b"YWJjZA==YWJj",  # data after padding
        b"YWJj ZA==",  # white space other than line breaks
        b"Y",
        b"====",
        b"!!!!",
    ],
)
def test_decoded_size_matches_decoding(data: bytes) -> None:
    assert mime.decoded_size(data, "base64") == len(mime.decode_base64(data))


def test_decoded_size_other_encodings() -> None:
    assert mime.decoded_size(b"a=3Db", "quoted-printable") == 3
    assert mime.decoded_size(b"abc", "8bit") == 3
    assert mime.decoded_size(b"abc", "x-uuencode") is None


def test_param_prefers_plain_then_decodes_extended() -> None:
    params = [(b"Boundary*", b"us-ascii'en'a%20b"), (b"x", b"1")]
    assert mime.param(params, b"boundary") == b"a b"
    assert mime.param([(b"boundary", b"plain"), *params], b"boundary") == b"plain"
    assert mime.param(params, b"charset") is None


@pytest.mark.parametrize("charset", ["base64", "zlib", "rot13", "idna", "punycode", "undefined"])
def test_charsets_that_are_not_text_read_as_utf8(charset: str) -> None:
    assert mime.to_text("caf\u00e9".encode(), charset) == "café"
    word = b"=?" + charset.encode() + b"?q?caf=C3=A9?="
    assert mime.header_text(word) == "café"


def test_overlong_rfc2231_section_number_is_a_plain_name() -> None:
    name = b"name*" + b"1" * 5000
    assert mime.parse_params(b"; " + name + b"=x") == [(name, b"x")]


def test_lone_surrogates_do_not_leak_out_of_decoding() -> None:
    text = mime.to_text(b"+2D3-", "utf-7")  # a lone high surrogate in UTF-7
    assert text.encode("utf-8") == "\ufffd".encode()


_CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "utf-7", "utf-16", "shift_jis", "idna", "zlib", ""]


@given(st.binary(max_size=200), st.sampled_from(_CHARSETS))
def test_to_text_never_raises_and_gives_utf8_encodable_text(data: bytes, charset: str) -> None:
    mime.to_text(data, charset).encode("utf-8")


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=12),
            st.sampled_from([b"=?", b"?=", b"?q?", b"?B?", b" ", b"=C3", b"utf-7", b"zlib"]),
        ),
        max_size=20,
    ).map(b"".join)
)
@example(b"=?\x00?q??=")  # a NUL in the charset name made codecs.lookup raise ValueError
def test_header_text_never_raises(value: bytes) -> None:
    mime.header_text(value).encode("utf-8")


def test_quoted_printable_drops_transport_white_space_at_line_ends() -> None:
    # RFC 2045 §6.7 rule 3: trailing white space is deleted, so "= " ends in a soft break
    encoded = b"hello  \r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\nlast  "
    assert mime.decode_qp(encoded) == b"hello\r\nfoo\t \tb\r\nfoo bar\nlast  "


@pytest.mark.parametrize(
    ("data", "domain"),
    [
        (b"", "7bit"),
        (b"plain\r\ntext\r\n", "7bit"),
        (b"x" * 998 + b"\r\n", "7bit"),
        (b"caf\xc3\xa9\r\n", "8bit"),
        (b"x" * 999 + b"\r\n", "binary"),  # a line longer than RFC 5322 allows
        (b"a\nb", "binary"),
        (b"a\rb\r\n", "binary"),
        (b"nul\x00", "binary"),
    ],
)
def test_data_domain(data: bytes, domain: str) -> None:
    assert mime.data_domain(data) == domain
