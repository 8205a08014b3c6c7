"""BODYSTRUCTURE and BODY bytes (RFC 9051 §7.5.2) against hand-checked expectations."""

from __future__ import annotations

import pytest

from courriel.mail.message import PartKind, parse
from courriel.mail.structure import MAX_DEPTH, Part

PLAIN = b"Subject: x\r\n\r\nhello\r\nworld\r\n"

ALTERNATIVE = (
    b"From: a@example.com\r\n"
    b"Content-Type: multipart/alternative; boundary=XX\r\n"
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hi\r\n"
    b"--XX\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<b>Hi=3D</b>\r\n"
    b"--XX--\r\n"
)

MIXED = (
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--b1\r\n"
    b"\r\n"
    b"text body\r\n"
    b"\r\n"
    b"--b1\r\n"
    b'Content-Type: application/pdf; name="r.pdf"\r\n'
    b'Content-Disposition: attachment; filename="r.pdf"; size=3\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"YWJj\r\n"
    b"--b1--\r\n"
    b"epilogue\r\n"
)
MIXED_BS = (
    b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1 NIL NIL NIL NIL)'
    b'("application" "pdf" ("name" "r.pdf") NIL NIL "base64" 4 NIL '
    b'("attachment" ("filename" "r.pdf" "size" "3")) NIL NIL) '
    b'"mixed" ("boundary" "b1") NIL NIL NIL)'
)

# Dovecot's own test message and the BODYSTRUCTURE/BODY it expects
# (dovecot/core src/lib-imap/test-imap-bodystructure.c). Dovecot counts sizes with CRLF line
# ends whatever it stores, so the message is given here with CRLF; the outer parentheses are
# the FETCH response's, which that test leaves out.
DOVECOT = (
    b"From: user@domain.org\n"
    b"Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
    b"Mime-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="foo\n'
    b' bar"\n'
    b"\n"
    b"Root MIME prologue\n"
    b"\n"
    b"--foo bar\n"
    b'Content-Type: text/x-myown; charset=us-ascii; foo="quoted\\"string"\n'
    b"Content-ID: <foo@example.com>\n"
    b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
    b"Content-Disposition: inline; foo=bar\n"
    b"Content-Description: hellodescription\n"
    b"Content-Language: en, fi, se\n"
    b"Content-Location: http://example.com/test.txt\n"
    b"\n"
    b"hello\n"
    b"\n"
    b"--foo bar\n"
    b"Content-Type: message/rfc822\n"
    b"\n"
    b"From: sub@domain.org\n"
    b"To: sub-to1@domain.org, sub-to2@domain.org\n"
    b"Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
    b"Subject: submsg\n"
    b'Content-Type: multipart/alternative; boundary="sub1"\n'
    b"\n"
    b"Sub MIME prologue\n"
    b"--sub1\n"
    b"Content-Type: text/html\n"
    b"Content-Transfer-Encoding: 8bit\n"
    b"\n"
    b"<p>Hello world</p>\n"
    b"\n"
    b"--sub1\n"
    b"Content-Type: text/plain\n"
    b"Content-Transfer-Encoding: ?invalid\n"
    b"\n"
    b"Hello another world\n"
    b"\n"
    b"--sub1--\n"
    b"Sub MIME epilogue\n"
    b"\n"
    b"--foo bar--\n"
    b"Root MIME epilogue\n"
).replace(b"\n", b"\r\n")
_DOVECOT_ENV = (
    b'("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org")) '
    b'((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) '
    b'((NIL NIL "sub-to1" "domain.org")(NIL NIL "sub-to2" "domain.org")) NIL NIL NIL NIL)'
)
DOVECOT_BS = (
    b'(("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\\"string") "<foo@example.com>" '
    b'"hellodescription" "7bit" 7 1 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" ("foo" "bar")) '
    b'("en" "fi" "se") "http://example.com/test.txt")'
    b'("message" "rfc822" NIL NIL NIL "7bit" 412 ' + _DOVECOT_ENV + b" "
    b'(("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1 NIL NIL NIL NIL)'
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1 NIL NIL NIL NIL) '
    b'"alternative" ("boundary" "sub1") NIL NIL NIL) 21 NIL NIL NIL NIL) '
    b'"mixed" ("boundary" "foo bar") NIL NIL NIL)'
)
DOVECOT_BODY = (
    b'(("text" "x-myown" ("charset" "us-ascii" "foo" "quoted\\"string") "<foo@example.com>" '
    b'"hellodescription" "7bit" 7 1)'
    b'("message" "rfc822" NIL NIL NIL "7bit" 412 ' + _DOVECOT_ENV + b" "
    b'(("text" "html" ("charset" "us-ascii") NIL NIL "8bit" 20 1)'
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1) "alternative") 21) "mixed")'
)


def _rfc9051_example() -> bytes:
    """A message shaped to give the BODY example of RFC 9051 §7.5.2 exactly.

    Part 1: 1152 octets in 23 lines; part 2: 4554 octets in 73 lines.
    """
    text = b"".join(b"x" * 48 + b"\r\n" for _ in range(22)) + b"y" * 50 + b"\r\n"
    b64 = b"".join(b"QUJD" * 15 + b"\r\n" for _ in range(72)) + b"QUJD" * 22 + b"\r\n"
    assert (len(text), text.count(b"\n"), len(b64), b64.count(b"\n")) == (1152, 23, 4554, 73)
    return (
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: MULTIPART/MIXED; BOUNDARY="=_x"\r\n\r\n'
        b"--=_x\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
        b"Content-Transfer-Encoding: 7BIT\r\n"
        b"\r\n" + text + b"\r\n--=_x\r\n"
        b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n"
        b"Content-ID: <960723163407.20117h@cac.washington.edu>\r\n"
        b"Content-Description: Compiler diff\r\n"
        b"Content-Transfer-Encoding: BASE64\r\n\r\n" + b64 + b"\r\n--=_x--\r\n"
    )


CASES = [
    pytest.param(
        PLAIN,
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2 NIL NIL NIL NIL)',
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2)',
        id="plain-defaults",
    ),
    pytest.param(
        ALTERNATIVE,
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 2 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 12 0 NIL NIL NIL NIL) '
        b'"alternative" ("boundary" "XX") NIL NIL NIL)',
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 2 0)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 12 0) "alternative")',
        id="alternative",
    ),
    pytest.param(
        MIXED,
        MIXED_BS,
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1)'
        b'("application" "pdf" ("name" "r.pdf") NIL NIL "base64" 4) "mixed")',
        id="mixed-attachment",
    ),
    pytest.param(DOVECOT, DOVECOT_BS, DOVECOT_BODY, id="dovecot-nested-rfc822"),
    pytest.param(
        _rfc9051_example(),
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23 NIL NIL NIL NIL)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73 '
        b'NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "=_x") NIL NIL NIL)',
        # RFC 9051 §7.5.2, the BODYSTRUCTURE example, byte for byte:
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")',
        id="rfc9051-example",
    ),
    pytest.param(
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nSubject: one\r\n\r\n1\r\n--d--\r\n",
        b'(("message" "rfc822" NIL NIL NIL "7bit" 17 (NIL "one" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL) 2 '
        b'NIL NIL NIL NIL) "digest" ("boundary" "d") NIL NIL NIL)',
        b'(("message" "rfc822" NIL NIL NIL "7bit" 17 (NIL "one" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0) 2) "digest")',
        id="digest-default-rfc822",
    ),
    pytest.param(
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts here\r\n",
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) '
        b'"mixed" ("boundary" "zz") NIL NIL NIL)',
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed")',
        id="multipart-without-parts",
    ),
    pytest.param(
        b"Content-Type: multipart/mixed\r\n\r\nabc",
        b'("multipart" "mixed" NIL NIL NIL "7bit" 3 NIL NIL NIL NIL)',
        b'("multipart" "mixed" NIL NIL NIL "7bit" 3)',
        id="multipart-without-boundary",
    ),
    pytest.param(
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"U3ViamVjdDogeA0KDQp5DQo=\r\n",
        b'("message" "rfc822" NIL NIL NIL "base64" 26 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) 1 '
        b"NIL NIL NIL NIL)",
        b'("message" "rfc822" NIL NIL NIL "base64" 26 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 1)',
        id="encoded-rfc822-not-opened",
    ),
    pytest.param(
        b'Content-Type: application/octet-stream; name*0="long"; name*1="name.txt"\r\n'
        b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.txt\r\n\r\nx",
        b'("application" "octet-stream" ("name" "longname.txt") NIL NIL "7bit" 1 NIL '
        b'("attachment" ("filename*" "utf-8\'\'%E2%82%AC.txt")) NIL NIL)',
        b'("application" "octet-stream" ("name" "longname.txt") NIL NIL "7bit" 1)',
        id="rfc2231",
    ),
    pytest.param(
        'Content-Type: text/plain; name="é"\r\nContent-Language: fr\r\n\r\n'.encode(),
        b'("text" "plain" ("name" {2}\r\n\xc3\xa9 "charset" "us-ascii") NIL NIL "7bit" 0 0 '
        b'NIL NIL ("fr") NIL)',
        b'("text" "plain" ("name" {2}\r\n\xc3\xa9 "charset" "us-ascii") NIL NIL "7bit" 0 0)',
        id="8bit-parameter-literal",
    ),
    pytest.param(
        b'Content-Type: Text/HTML (a comment); Charset="ISO-8859-1"\r\n\r\n<p>\r\n',
        b'("Text" "HTML" ("Charset" "ISO-8859-1") NIL NIL "7bit" 5 1 NIL NIL NIL NIL)',
        b'("Text" "HTML" ("Charset" "ISO-8859-1") NIL NIL "7bit" 5 1)',
        id="case-kept-comment-dropped",
    ),
    pytest.param(
        MIXED.replace(b"\r\n", b"\n"),
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 1 NIL NIL NIL NIL)'
        b'("application" "pdf" ("name" "r.pdf") NIL NIL "base64" 4 NIL '
        b'("attachment" ("filename" "r.pdf" "size" "3")) NIL NIL) '
        b'"mixed" ("boundary" "b1") NIL NIL NIL)',
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 1)'
        b'("application" "pdf" ("name" "r.pdf") NIL NIL "base64" 4) "mixed")',
        id="bare-lf",
    ),
]


@pytest.mark.parametrize(("raw", "bodystructure", "body"), CASES)
def test_bodystructure_and_body(raw: bytes, bodystructure: bytes, body: bytes) -> None:
    meta = parse(raw)
    assert meta.bodystructure == bodystructure
    assert meta.body == body


def test_boundary_prefix_of_a_longer_line_is_not_a_delimiter() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n"
        b"--ab\r\n\r\none\r\n--abc not a delimiter\r\n--ab  \r\n\r\ntwo\r\n--ab--\r\n"
    )
    root = parse(raw).root
    assert [raw[c.body_start : c.body_end] for c in root.children] == [
        b"one\r\n--abc not a delimiter",
        b"two",
    ]


def test_missing_close_delimiter_runs_to_the_end() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nlast part\r\n"
    (child,) = parse(raw).root.children
    assert raw[child.body_start : child.body_end] == b"last part\r\n"


def test_inner_multipart_missing_close_ends_at_outer_delimiter() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=out\r\n\r\n"
        b"--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n"
        b"--in\r\n\r\ninner\r\n"
        b"--out\r\n\r\nsecond\r\n--out--\r\n"
    )
    root = parse(raw).root
    inner, second = root.children
    assert [raw[c.body_start : c.body_end] for c in inner.children] == [b"inner"]
    assert raw[second.body_start : second.body_end] == b"second"


def _depth(part: Part) -> int:
    return 1 + max((_depth(c) for c in part.children), default=0)


def test_nesting_is_capped() -> None:
    levels = MAX_DEPTH + 50
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(levels)
    )
    meta = parse(head + b"\r\ninnermost\r\n")
    assert _depth(meta.root) == MAX_DEPTH + 1  # MAX_DEPTH multiparts, then one leaf
    assert meta.bodystructure.count(b') "mixed" ("boundary"') == MAX_DEPTH
    # The multipart past the cap is kept whole, as one leaf.
    assert b'("multipart" "mixed" ("boundary" "b100") NIL NIL "7bit"' in meta.bodystructure


def test_part_records() -> None:
    meta = parse(MIXED)
    text, pdf = meta.root.children
    assert (meta.root.kind, text.kind, pdf.kind) == (
        PartKind.MULTIPART,
        PartKind.LEAF,
        PartKind.LEAF,
    )
    assert (text.section, pdf.section) == ((1,), (2,))
    assert (text.media_type, text.media_subtype, text.charset) == ("text", "plain", "us-ascii")
    assert (pdf.media_type, pdf.media_subtype, pdf.encoding) == ("application", "pdf", "base64")
    assert (pdf.size, pdf.binary_size) == (4, 3)
    assert MIXED[pdf.header_start : pdf.body_start].startswith(b"Content-Type: application/pdf")


def test_rfc2231_boundary_and_charset_are_used() -> None:
    raw = (
        b"Content-Type: multipart/signed;\r\n\tboundary*=\"us-ascii''Ee%51f\"\r\n\r\n"
        b"--EeQf\r\nContent-Type: text/plain; charset*=us-ascii''iso-8859-1\r\n\r\n"
        b"one\r\n--EeQf\r\n\r\ntwo\r\n--EeQf--\r\n"
    )
    root = parse(raw).root
    assert root.kind is PartKind.MULTIPART
    assert [(c.charset, raw[c.body_start : c.body_end]) for c in root.children] == [
        ("iso-8859-1", b"one"),
        ("us-ascii", b"two"),
    ]
