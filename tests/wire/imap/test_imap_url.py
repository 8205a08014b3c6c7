"""IMAP URLs for CATENATE (RFC 5092, RFC 4469 §5), the CATENATE grammar, and APPEND spacing."""

from __future__ import annotations

import pytest

from courriel.wire.imap import commands as c
from courriel.wire.imap.fetch import Section, SectionText
from courriel.wire.imap.messageurl import ImapUrl, parse_imap_url

URLS: list[tuple[str, ImapUrl | None]] = [
    (
        "imap://alice%40example.test;AUTH=*@mail.example.test:993/INBOX;UIDVALIDITY=38/;UID=20",
        ImapUrl(20, "INBOX", 38, "alice@example.test"),
    ),
    ("/Sent%20Items/2026/;UID=7", ImapUrl(7, "Sent Items/2026")),
    ("/%C3%A9t%C3%A9/;uid=7", ImapUrl(7, "\u00e9t\u00e9")),  # UTF-8, any case of the keys
    (";UID=3/;SECTION=1.2.MIME", ImapUrl(3, section=Section((1, 2), SectionText.MIME))),
    (";UID=3/;PARTIAL=10", ImapUrl(3, partial=(10, None))),
    (
        "/INBOX/;UID=3/;SECTION=HEADER.FIELDS%20(To%20Cc)/;PARTIAL=0.1024",
        ImapUrl(
            3,
            "INBOX",
            section=Section((), SectionText.HEADER_FIELDS, ("To", "Cc")),
            partial=(0, 1024),
        ),
    ),
    ("/INBOX?SUBJECT%20x", None),  # search URLs name no one message
    ("/INBOX/;UID=1/;URLAUTH=anonymous:internal:91354a47", None),  # URLAUTH is not read here
    ("/INBOX/;UID=0", None),
    ("/INBOX/;UID=1/;SECTION=NOSUCH", None),
    ("/%FF/;UID=1", None),  # not UTF-8
    ("imap://host;UID=1", None),
    ("INBOX/;UID=1", None),
    ("/" + "a" * 5000 + "/;UID=1", None),
]


@pytest.mark.parametrize(("url", "expected"), URLS, ids=[u[:40] for u, _ in URLS])
def test_parse_imap_url(url: str, expected: ImapUrl | None) -> None:
    assert parse_imap_url(url) == expected


def test_catenate_parts(parse) -> None:
    cmd = parse(
        b'a1 APPEND Drafts (\\Seen) CATENATE (TEXT {3+}\r\nabc URL ";UID=1" TEXT ~{1+}\r\nx)'
    )
    assert isinstance(cmd, c.Append)
    (message,) = cmd.messages
    assert message.catenate == (b"abc", ";UID=1", b"x")
    assert message.flags == frozenset({"\\Seen"}) and message.data == b""


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"a1 APPEND Drafts CATENATE ()", b"Expected TEXT or URL"),
        (b'a1 APPEND Drafts CATENATE (URL "x"', b"')' to end the CATENATE parts"),
        (b"a1 APPEND Drafts CATENATE (TEXT abc)", b"TEXT literal"),
        (b"a1 APPEND Drafts CATENATE (" + b'URL "x" ' * 101 + b")", b"Too many CATENATE parts"),
    ],
)
def test_bad_catenate(reply, line: bytes, why: bytes) -> None:
    answer = reply(line)
    assert answer.startswith(b"a1 BAD ") and why in answer, answer


def test_multiappend_takes_the_two_spaces_imapclient_writes(parse) -> None:
    cmd = parse(b"a1 APPEND Drafts {1+}\r\nx  {1+}\r\ny")
    assert isinstance(cmd, c.Append)
    assert [m.data for m in cmd.messages] == [b"x", b"y"]
