"""IMAP string encodings (RFC 9051 §4.3)."""

from __future__ import annotations

import pytest

from courriel.mail import imapfmt


@pytest.mark.parametrize(
    ("value", "utf8", "expected"),
    [
        (b"hello", False, b'"hello"'),
        (b"", False, b'""'),
        (b'say "hi"', False, b'"say \\"hi\\""'),
        (b"back\\slash", False, b'"back\\\\slash"'),
        (b"two\r\nlines", False, b"{10}\r\ntwo\r\nlines"),
        (b"bare\nlf", False, b"{7}\r\nbare\nlf"),
        ("café".encode(), False, b"{5}\r\ncaf\xc3\xa9"),
        ("café".encode(), True, b'"caf\xc3\xa9"'),
        (b"caf\xe9", True, b"{4}\r\ncaf\xe9"),  # Latin-1 is not UTF-8: literal even with UTF8
    ],
)
def test_string_picks_quoted_or_literal(value: bytes, utf8: bool, expected: bytes) -> None:
    assert imapfmt.string(value, utf8=utf8) == expected


def test_nstring_nil_and_value() -> None:
    assert imapfmt.nstring(None) == b"NIL"
    assert imapfmt.nstring(b"NIL") == b'"NIL"'  # the string NIL is not the atom NIL


def test_literal_refuses_nul_literal8_carries_it() -> None:
    with pytest.raises(ValueError, match="NUL"):
        imapfmt.literal(b"a\x00b")
    with pytest.raises(ValueError, match="NUL"):
        imapfmt.string(b"a\x00b")
    assert imapfmt.literal8(b"a\x00b") == b"~{3}\r\na\x00b"


def test_lists() -> None:
    assert imapfmt.plist([b'"a"', b"NIL", b"(1 2)"]) == b'("a" NIL (1 2))'
    assert imapfmt.plist([]) == b"()"
    assert imapfmt.nlist([]) == b"NIL"
    assert imapfmt.nlist([b'"x"']) == b'("x")'


def test_without_nul() -> None:
    assert imapfmt.without_nul(b"a\x00b\x00") == b"ab"
    assert imapfmt.can_quote(b"\x01\x7f")
    assert not imapfmt.can_quote(b"\x00")
