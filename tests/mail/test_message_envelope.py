"""ENVELOPE bytes (RFC 9051 §7.5.2, RFC 3501 §7.4.2) against hand-checked expectations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from courriel.mail.message import parse

CASES = [
    pytest.param(
        # RFC 3501 §8, the sample FETCH response for this header.
        b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
        b"From: Terry Gray <gray@cac.washington.edu>\r\n"
        b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
        b"To: imap@cac.washington.edu\r\n"
        b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
        b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
        b"\r\n"
        b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n",
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")',
        id="rfc3501-sample",
    ),
    pytest.param(
        # RFC 5322 Appendix A.1.3: groups, one of them empty.
        b"From: Pete <pete@silly.example>\r\n"
        b"To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\r\n"
        b"Cc: Undisclosed recipients:;\r\n"
        b"Date: Thu, 13 Feb 1969 23:32:54 -0330\r\n"
        b"Message-ID: <testabcd.1234@silly.example>\r\n"
        b"\r\n"
        b"Testing.\r\n",
        b'("Thu, 13 Feb 1969 23:32:54 -0330" NIL '
        b'(("Pete" NIL "pete" "silly.example")) '
        b'(("Pete" NIL "pete" "silly.example")) '
        b'(("Pete" NIL "pete" "silly.example")) '
        b'((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")'
        b'("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL)) '
        b'((NIL NIL "Undisclosed recipients" NIL)(NIL NIL NIL NIL)) '
        b'NIL NIL "<testabcd.1234@silly.example>")',
        id="groups",
    ),
    pytest.param(
        b"Subject: only a subject\r\n\r\nbody\r\n",
        b'(NIL "only a subject" NIL NIL NIL NIL NIL NIL NIL NIL)',
        id="missing-headers",
    ),
    pytest.param(
        b"",
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        id="empty-message",
    ),
    pytest.param(
        # Raw, not decoded (RFC 3501 §7.4.2); folded lines unfolded; an empty Subject is "".
        b"Subject: =?ISO-8859-1?Q?Andr=E9?=\r\n Pirard\r\n"
        b"From: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>\r\n"
        b"Sender:\r\n"
        b"Reply-To: \r\n"
        b"In-Reply-To: <a@b.example>\r\n"
        b"\r\n",
        b'(NIL "=?ISO-8859-1?Q?Andr=E9?= Pirard" '
        b'(("=?US-ASCII?Q?Keith_Moore?=" NIL "moore" "cs.utk.edu")) '
        b'(("=?US-ASCII?Q?Keith_Moore?=" NIL "moore" "cs.utk.edu")) '
        b'(("=?US-ASCII?Q?Keith_Moore?=" NIL "moore" "cs.utk.edu")) '
        b'NIL NIL NIL "<a@b.example>" NIL)',
        id="rfc2047-raw-and-empty-sender",
    ),
    pytest.param(
        # 8-bit header bytes go out as literals, byte for byte.
        "Subject: Grüße\r\nFrom: José <jose@example.com>\r\n\r\n".encode(),
        b"(NIL {7}\r\nGr\xc3\xbc\xc3\x9fe "
        b'(({5}\r\nJos\xc3\xa9 NIL "jose" "example.com")) '
        b'(({5}\r\nJos\xc3\xa9 NIL "jose" "example.com")) '
        b'(({5}\r\nJos\xc3\xa9 NIL "jose" "example.com")) '
        b"NIL NIL NIL NIL NIL)",
        id="8bit-literals",
    ),
    pytest.param(
        b'From: "Doe, John \\"JD\\"" <john@x.test>\r\n'
        b"Sender: jdoe@one.test (John Doe)\r\n"
        b"Reply-To: <@a.test,@b.test:joe@c.test>\r\n"
        b"To: undisclosed\r\n"
        b"Bcc: John Q. Public <jqp@x.test>, <>\r\n"
        b"\r\n",
        b'(NIL NIL (("Doe, John \\"JD\\"" NIL "john" "x.test")) '
        b'(("John Doe" NIL "jdoe" "one.test")) '
        b'((NIL "@a.test,@b.test" "joe" "c.test")) '
        b'((NIL NIL "undisclosed" "MISSING_DOMAIN")) '
        b"NIL "
        b'(("John Q. Public" NIL "jqp" "x.test")(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) '
        b"NIL NIL)",
        id="quoted-comment-route-nodomain",
    ),
    pytest.param(
        b"From: a@b.example\nSubject: bare\n lf\nTo: c@d.example\n\nbody\n",
        b'(NIL "bare lf" ((NIL NIL "a" "b.example")) ((NIL NIL "a" "b.example")) '
        b'((NIL NIL "a" "b.example")) ((NIL NIL "c" "d.example")) NIL NIL NIL NIL)',
        id="bare-lf",
    ),
    pytest.param(
        b'Subject: first\r\nSubject: second\r\nFrom: ,,\r\nTo: "unterminated <x@y\r\n\r\n',
        # The open quote runs to the end: all of it is one (quoted) local part, no domain.
        b'(NIL "first" NIL NIL NIL ((NIL NIL "\\"unterminated <x@y\\"" "MISSING_DOMAIN")) '
        b"NIL NIL NIL NIL)",
        id="first-wins-and-garbage",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_envelope(raw: bytes, expected: bytes) -> None:
    assert parse(raw).envelope == expected


def test_nul_in_header_is_dropped() -> None:
    meta = parse(b"Subject: a\x00b\r\n\r\n")
    assert meta.envelope.startswith(b'(NIL "ab" ')


def test_search_fields_raw_and_decoded() -> None:
    meta = parse(
        b"From: =?utf-8?B?SsO8cmdlbg==?= <j@example.org>\r\n"
        b"To: a@example.org,\r\n b@example.org\r\n"
        b"Subject: =?iso-8859-1?q?caf=E9?= =?utf-8?q?_au_lait?= ok\r\n"
        b"References: <1@x> <2@x>\r\n"
        b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
        b"\r\n"
    )
    assert meta.raw_headers["to"] == b"a@example.org, b@example.org"
    assert meta.text_headers["from"] == "Jürgen <j@example.org>"
    # White space between adjacent encoded words is dropped (RFC 2047 §6.2).
    assert meta.text_headers["subject"] == "café au lait ok"
    assert meta.text_headers["references"] == "<1@x> <2@x>"
    assert "cc" not in meta.raw_headers
    assert meta.date == datetime(2003, 7, 1, 10, 52, 37, tzinfo=timezone(timedelta(hours=2)))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Date: 1 Jan 2020 00:00:00 -0000\r\n", datetime(2020, 1, 1, tzinfo=UTC)),
        (b"Date: not a date\r\n", None),
        (b"Date: Mon, 99 Foo 20200 99:99:99 +9999\r\n", None),
        (b"", None),
    ],
)
def test_date(header: bytes, expected: datetime | None) -> None:
    assert parse(header + b"\r\n").date == expected


def test_eight_bit_non_utf8_header_decodes_as_latin1() -> None:
    meta = parse(b"Subject: caf\xe9\r\n\r\n")
    assert meta.text_headers["subject"] == "café"
    assert meta.envelope.startswith(b"(NIL {4}\r\ncaf\xe9 NIL")
