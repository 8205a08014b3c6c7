"""Table tests for the parsers: paths (RFC 5321 §4.1.2), xtext (RFC 3461 §4), the line buffer."""

from __future__ import annotations

import pytest

from courriel.wire.linebuffer import LineBuffer, LineTooLong
from courriel.wire.smtp.data import has_bare_newline, has_long_line
from courriel.wire.smtp.params import utf8_xtext_decode, xtext_decode
from courriel.wire.smtp.paths import PathError, is_address_literal, is_domain, parse_path

VALID = [
    # text, local part, domain, route, quoted
    ("<user@example.org>", "user", "example.org", (), False),
    ("<first.last+tag@sub.example.org>", "first.last+tag", "sub.example.org", (), False),
    ("<user%other@example.org>", "user%other", "example.org", (), False),  # session decides
    ('<"user@a"@example.org>', "user@a", "example.org", (), True),  # session decides
    ('<"john \\"j\\" doe"@example.org>', 'john "j" doe', "example.org", (), True),
    ('<""@example.org>', "", "example.org", (), True),
    ("<user@[192.0.2.1]>", "user", "[192.0.2.1]", (), False),
    ("<user@[IPv6:2001:db8::1]>", "user", "[IPv6:2001:db8::1]", (), False),
    ("<user@[x-tag:stuff]>", "user", "[x-tag:stuff]", (), False),
    (
        "<@a.example,@b.example:user@c.example>",
        "user",
        "c.example",
        ("a.example", "b.example"),
        False,
    ),
    ("<@a.example:user@c.example>", "user", "c.example", ("a.example",), False),
    (
        "<" + "l" * 100 + "@example.org>",
        "l" * 100,
        "example.org",
        (),
        False,
    ),  # §4.5.3.1 is a minimum
]


@pytest.mark.parametrize(("text", "local", "domain", "route", "quoted"), VALID)
def test_valid_paths(text, local, domain, route, quoted):
    path = parse_path(text, utf8=False)
    assert (path.local_part, path.domain, path.route, path.quoted) == (local, domain, route, quoted)
    assert path.raw == text[1:-1]
    expected_mailbox = text[1:-1].split(":", 1)[1] if route else text[1:-1]
    assert path.mailbox == expected_mailbox


@pytest.mark.parametrize(
    "text",
    [
        "user@example.org",  # no brackets
        "<user>",  # no domain
        "<user@a@b.example>",  # "@" in an unquoted local part
        "<user@@example.org>",
        "<.user@example.org>",
        "<user.@example.org>",
        "<us..er@example.org>",
        "<user@example..org>",
        "<user@-example.org>",
        "<user@example-.org>",
        "<user@example.org.>",
        "<user@exa_mple.org>",
        "<user@[300.1.1.1]>",
        "<user@[IPv6:zz::1]>",
        "<user@[]>",
        '<"unterminated@example.org>',
        '<"a"b@example.org>',
        "<us er@example.org>",
        "<@a.example:user>",
        "<@:user@example.org>",
        "<@a_b:user@example.org>",
        "<user@" + "a" * 64 + ".example>",  # label over 63
        "<user@" + ".".join(["a" * 60] * 5) + ">",  # domain over 255
        "<>",
    ],
)
def test_invalid_paths(text):
    with pytest.raises(PathError):
        parse_path(text, utf8=True)


def test_utf8_paths():
    with pytest.raises(PathError) as e:
        parse_path("<jörg@example.org>", utf8=False)
    assert e.value.needs_utf8
    path = parse_path("<jörg@bücher.example>", utf8=True)
    assert (path.local_part, path.domain, path.is_ascii) == ("jörg", "bücher.example", False)


def test_postmaster_only_where_allowed():
    assert parse_path("<POSTMASTER>", utf8=False, postmaster=True).address == "POSTMASTER"
    with pytest.raises(PathError):
        parse_path("<postmaster>", utf8=False)


@pytest.mark.parametrize(
    ("text", "domain", "literal"),
    [
        ("example.org", True, False),
        ("localhost", True, False),
        ("[127.0.0.1]", False, True),
        ("[IPv6:::1]", False, True),
        ("[1.2.3]", False, False),
        ("1.2.3.4", True, False),
        ("", False, False),
    ],
)
def test_domain_and_literal(text, domain, literal):
    assert is_domain(text) is domain
    assert is_address_literal(text) is literal


@pytest.mark.parametrize(
    ("text", "decoded"),
    [("abc", "abc"), ("a+2Bb", "a+b"), ("+3D+20", "= "), ("", "")],
)
def test_xtext(text, decoded):
    assert xtext_decode(text) == decoded


@pytest.mark.parametrize("text", ["a+2b", "a+", "a=b", "a b", "a+G0", "é"])
def test_bad_xtext(text):
    with pytest.raises(ValueError, match="xtext"):
        xtext_decode(text)


def test_utf8_xtext():
    assert utf8_xtext_decode("j\\x{F6}rg@example.org") == "jörg@example.org"
    assert utf8_xtext_decode("jörg+40x") == "jörg@x"
    with pytest.raises(ValueError, match="xtext"):
        utf8_xtext_decode("a\\b")


# --- the shared line buffer ---------------------------------------------------------------


def test_linebuffer_lines_and_bulk():
    buf = LineBuffer()
    buf.feed(b"one\r\ntwo\npartial")
    assert buf.readline(100) == b"one\r\n"
    assert buf.readline(100) == b"two\n"
    assert buf.readline(100) is None
    assert len(buf) == 7 and buf.startswith(b"part")
    buf.feed(b"\r\nrest")
    assert buf.find(b"\r\n") == 7 and buf.rfind(b"t") == 12
    assert buf.take(9) == b"partial\r\n"
    assert buf.skip(100) == 4 and not buf


def test_linebuffer_limit_and_discard():
    buf = LineBuffer()
    buf.feed(b"x" * 10)
    with pytest.raises(LineTooLong):
        buf.readline(10)
    assert len(buf) == 10  # left for the caller to decide
    assert buf.readline(11) is None
    assert buf.discard_line() is False and len(buf) == 0
    buf.feed(b"yyy\nnext\n")
    assert buf.discard_line() is True
    assert buf.readline(5) == b"next\n"
    buf.feed(b"abc")
    assert buf.clear() == 3


# --- the bulk message checks --------------------------------------------------------------

TEXT = b"".join(b"line %04d with some words in it\r\n" % i for i in range(500))


@pytest.mark.parametrize(
    ("data", "long"),
    [
        (b"", False),
        (b"x" * 998, False),
        (b"x" * 999, True),
        (b"x" * 998 + b"\r\n", False),
        (b"x" * 999 + b"\r\n", True),
        (TEXT, False),
        (TEXT + b"y" * 998 + b"\r\n" + TEXT, False),
        (TEXT + b"y" * 999 + b"\r\n" + TEXT, True),
        (TEXT[:-2] + b"y" * 990 + b"\r\n", True),  # the long line starts inside TEXT's last line
        ((b"z" * 997 + b"\r\n") * 50, False),
    ],
)
def test_has_long_line(data, long):
    assert has_long_line(data) is long
    # the same answer as the obvious, slow definition
    assert long is (max(map(len, data.split(b"\r\n"))) > 998)


@pytest.mark.parametrize(
    ("data", "bare"),
    [
        (b"", False),
        (TEXT, False),
        (TEXT + b"a\n", True),
        (b"\r" + TEXT, True),
        (b"a\n\rb", True),
        (b"a\r\r\nb", True),
        (b"a\r\n\nb", True),
        (b"\r\r\n\n", True),  # a CRLF inside a bare CR and a bare LF
        (b"\r\n\r\n.\r\n", False),
        (b"\n", True),
        (b"\r", True),
    ],
)
def test_has_bare_newline(data, bare):
    assert has_bare_newline(data) is bare
