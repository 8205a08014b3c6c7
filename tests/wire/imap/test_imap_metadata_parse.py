"""RFC 5464: parsing GETMETADATA and SETMETADATA, entry names, the METADATA response."""

from __future__ import annotations

import pytest

from courriel.wire.errors import ProtocolError
from courriel.wire.imap import commands as c
from courriel.wire.imap import metadata as m
from courriel.wire.imap.lexer import Limits
from courriel.wire.imap.parser import parse_command


def parse(line: bytes, literals: list[bytes] | None = None) -> c.Command:
    lines = line.split(b"\n")
    return parse_command(lines, literals or [], limits=Limits(), utf8=False)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b'a GETMETADATA "" /Private/Comment', c.GetMetadata("a", "", ("/private/comment",))),
        (
            b"a GETMETADATA (DEPTH 1 MAXSIZE 1024) INBOX (/shared/a /private/b)",
            c.GetMetadata("a", "INBOX", ("/shared/a", "/private/b"), 1024, c.Depth.ONE),
        ),
        (
            b"a GETMETADATA (DEPTH infinity) Work /SHARED",
            c.GetMetadata("a", "Work", ("/shared",), None, c.Depth.INFINITY),
        ),
        (b"a SETMETADATA Work (/shared x)", None),  # "/shared" alone is no entry to set
        (
            b'a SETMETADATA INBOX (/private/comment "My note" /shared/x NIL)',
            c.SetMetadata("a", "INBOX", (("/private/comment", b"My note"), ("/shared/x", None))),
        ),
    ],
)
def test_commands(line: bytes, command: c.Command | None) -> None:
    if command is None:
        with pytest.raises(ProtocolError):
            parse(line)
    else:
        assert parse(line) == command


def test_literal8_values() -> None:
    cmd = parse(b"a SETMETADATA INBOX (/private/bin ~{3}\n)", [b"\x00\x01\x02"])
    assert cmd == c.SetMetadata("a", "INBOX", (("/private/bin", b"\x00\x01\x02"),))


@pytest.mark.parametrize(
    "line",
    [
        b"a GETMETADATA INBOX",
        b"a GETMETADATA (DEPTH 2) INBOX /private/x",
        b"a GETMETADATA (DEPTH 1 DEPTH 1) INBOX /private/x",
        b"a GETMETADATA (COLOR blue) INBOX /private/x",
        b"a GETMETADATA INBOX /other/x",
        b"a GETMETADATA INBOX /private/a*",
        b"a GETMETADATA INBOX /private/a%",
        b"a GETMETADATA INBOX /private//a",
        b"a GETMETADATA INBOX /private/a/",
        b"a SETMETADATA INBOX /private/a x",
        b"a SETMETADATA INBOX (/private/a)",
        b"a SETMETADATA INBOX ()",
        b"a UID GETMETADATA INBOX /private/a",
    ],
)
def test_malformed_commands_are_bad(line: bytes) -> None:
    with pytest.raises(ProtocolError) as e:
        parse(line)
    assert e.value.reply.startswith(b"a BAD ")


def test_entry_count_is_bounded() -> None:
    entries = b" ".join(b"/private/e%d" % i for i in range(101))
    with pytest.raises(ProtocolError):
        parse(b"a GETMETADATA INBOX (" + entries + b")")


def test_response() -> None:
    items = [("/private/comment", b"hi"), ("/shared/x", None), ("/private/bin", b"\x00")]
    assert m.metadata_response("", items, utf8=False) == (
        b'* METADATA "" (/private/comment "hi" /shared/x NIL /private/bin ~{1}\r\n\x00)\r\n'
    )
