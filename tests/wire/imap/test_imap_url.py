"""IMAP URLs (RFC 5092) for CATENATE, URLAUTH and BURL, URLFETCH's answers, the CATENATE
grammar, and APPEND spacing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from courriel.wire.imap import commands as c
from courriel.wire.imap import imapurl
from courriel.wire.imap.fetch import Section, SectionText
from courriel.wire.imap.imapurl import ImapUrl

TOKEN = "91354a473744909de610943775f92038"
URLS: list[tuple[str, ImapUrl | None]] = [
    (
        "imap://alice%40example.test;AUTH=*@mail.example.test:993/INBOX;UIDVALIDITY=38/;UID=20",
        ImapUrl(20, "INBOX", 38, "alice@example.test", "mail.example.test"),
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
    # RFC 4467 §2: EXPIRE, the access identifier and the mechanism with its token
    (
        "imap://joe@example.com/INBOX/;uid=20/;section=1.2;expire=2030-01-02T03:04:05Z"
        f";urlauth=Submit+fred:INTERNAL:{TOKEN.upper()}",
        ImapUrl(
            20,
            "INBOX",
            user="joe",
            host="example.com",
            section=Section((1, 2)),
            expire=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
            access="submit+fred",
            mechanism="INTERNAL",
            token=TOKEN,
            rump="imap://joe@example.com/INBOX/;uid=20/;section=1.2"
            ";expire=2030-01-02T03:04:05Z;urlauth=Submit+fred",
        ),
    ),
    ("/INBOX?SUBJECT%20x", None),  # search URLs name no one message
    ("/INBOX/;UID=0", None),
    ("/INBOX/;UID=1/;SECTION=NOSUCH", None),
    ("/%FF/;UID=1", None),  # not UTF-8
    ("imap://host;UID=1", None),
    ("imap://joe@host/INBOX", None),  # a mailbox, not a message
    ("INBOX/;UID=1", None),
    ("/" + "a" * 5000 + "/;UID=1", None),
    ("/INBOX/;UID=1;URLAUTH=everyone", None),  # RFC 4467 §3: no such access identifier
    ("/INBOX/;UID=1;EXPIRE=2030-01-02T03:04:05;URLAUTH=anonymous", None),  # no time zone
    ("/INBOX/;UID=1;EXPIRE=soon;URLAUTH=anonymous", None),
    ("/INBOX/;UID=1;URLAUTH=anonymous:internal:abc", None),  # a token is 128 bits or more
]


@pytest.mark.parametrize(("url", "expected"), URLS, ids=[u[:40] for u, _ in URLS])
def test_parse(url: str, expected: ImapUrl | None) -> None:
    if expected is None:
        with pytest.raises(imapurl.BadUrl):
            imapurl.parse(url)
    else:
        assert imapurl.parse(url) == expected


def test_the_rump_is_kept_as_written() -> None:
    text = "imap://Joe@Example.COM/INBOX;UIDVALIDITY=5/;UID=20;URLAUTH=authuser"
    url = imapurl.parse_urlauth(text + ":internal:" + TOKEN)
    assert url.rump == text and url.authorized
    assert url.owner == "Joe@Example.COM"  # a bare user name lives at the host
    assert imapurl.parse_urlauth("imap://a%40b.test@h/INBOX/;UID=1;URLAUTH=authuser").owner == (
        "a@b.test"
    )
    assert (
        imapurl.parse("/INBOX/;UID=1;URLAUTH=anonymous").rump == "/INBOX/;UID=1;URLAUTH=anonymous"
    )


@pytest.mark.parametrize(
    "url",
    [
        "/INBOX/;UID=1;URLAUTH=anonymous",  # RFC 4467 §3: URLAUTH URLs are absolute
        ";UID=1;URLAUTH=anonymous",
        "imap://example.com/INBOX/;UID=1;URLAUTH=anonymous",  # no user
        "imap://joe@example.com/INBOX/;UID=1",  # no ;URLAUTH=
    ],
)
def test_what_urlauth_refuses(url: str) -> None:
    imapurl.parse(url)
    with pytest.raises(imapurl.BadUrl):
        imapurl.parse_urlauth(url)


def test_urlfetch_responses() -> None:
    url = "imap://a@b/INBOX/;UID=1;URLAUTH=anonymous:internal:" + TOKEN
    assert imapurl.urlfetch_response(url, None) == b"* URLFETCH " + url.encode() + b" NIL\r\n"
    assert imapurl.urlfetch_response(url, b"a\0b").endswith(b" ~{3}\r\na\0b\r\n")
    # RFC 5524 §5 url-metadata: each item in its own parentheses
    body = b'("text" "plain" NIL NIL NIL "binary" 2 1 NIL NIL NIL NIL)'
    got = imapurl.urlfetch_metadata_response(url, [("BODYPARTSTRUCTURE", body), ("BINARY", b"x\n")])
    assert got == (
        b"* URLFETCH "
        + url.encode()
        + b" (BODYPARTSTRUCTURE "
        + body
        + b") (BINARY {2}\r\nx\n)\r\n"
    )
    got = imapurl.urlfetch_metadata_response(url, [("BINARY", None), ("BODY", b"\0")])
    assert got.endswith(b" (BINARY NIL) (BODY ~{1}\r\n\0)\r\n")


def test_urlfetch_takes_rfc_5524_parameters(parse) -> None:
    cmd = parse(b'a1 URLFETCH "imap://x" (imap://y binary BodyPartStructure) ("imap://z") (u BODY)')
    assert cmd == c.UrlFetch(
        "a1",
        (
            c.UrlFetchItem("imap://x"),
            c.UrlFetchItem("imap://y", ("BINARY", "BODYPARTSTRUCTURE")),
            c.UrlFetchItem("imap://z"),  # RFC 5524 §3.1: no parameters, as unextended
            c.UrlFetchItem("u", ("BODY",)),
        ),
    )


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"a1 URLFETCH (u CONVERTED)", b"Unknown URLFETCH parameter CONVERTED"),
        (b"a1 URLFETCH (u BINARY binary)", b"BINARY given twice for one URL"),  # RFC 5524 §3.1
        (b"a1 URLFETCH (u BODY BINARY)", b"BINARY and BODY exclude each other"),
        (b"a1 URLFETCH (u BINARY", b"')' after the URLFETCH parameters"),
        (b"a1 URLFETCH (u) (", b"Expected URL"),
        (b"a1 URLFETCH" + b" u" * 21, b"At most 20 URLs per command"),
    ],
)
def test_bad_urlfetch(reply, line: bytes, why: bytes) -> None:
    answer = reply(line)
    assert answer.startswith(b"a1 BAD ") and why in answer, answer


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
