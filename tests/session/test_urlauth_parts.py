"""What a URL names, as URLFETCH gives it: stored, decoded (BINARY) and described
(BODYPARTSTRUCTURE) for RFC 5524; no store needed, the parts are cut from parsed messages."""

from __future__ import annotations

import pytest

from courriel.mail.message import UnknownTransferEncoding, parse
from courriel.session import urlauth
from courriel.wire.imap import imapurl

SINGLE = (
    b"From: a@example.test\r\nContent-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
)
DIGEST = (
    b'Content-Type: multipart/digest; boundary="d"\r\n\r\n'
    b"--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n"
    b"--d\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nzz\r\n"
    b"--d--\r\n"
)


def named(raw: bytes, url: str) -> urlauth.Named:
    return urlauth.Named(imapurl.parse(url), raw, parse(raw))


def test_the_whole_message_is_sent_as_it_is() -> None:
    whole = named(SINGLE, ";UID=1")
    assert urlauth.body(whole) == urlauth.binary(whole) == SINGLE  # RFC 3516 §4.1 BINARY[]
    structure = parse(SINGLE).bodystructure
    assert urlauth.bodypartstructure(whole) == structure
    assert urlauth.bodypartstructure(whole, decoded=SINGLE) == structure


def test_a_decoded_part_is_described_as_sent() -> None:
    part = named(SINGLE, ";UID=1/;SECTION=1")
    assert urlauth.body(part) == b"aGVsbG8=\r\n"
    assert urlauth.binary(part) == b"hello"
    # part 1 of a message that is not multipart is its body: the same structure
    assert urlauth.bodypartstructure(part) == parse(SINGLE).bodystructure
    assert urlauth.bodypartstructure(part, decoded=b"hello") == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)'
    )  # RFC 5524 §3.2: the identity encoding the decoded data fits
    window = named(SINGLE, ";UID=1/;SECTION=1/;PARTIAL=1.3")
    assert urlauth.body(window) == b"GVs"
    assert urlauth.binary(window) == b"ell"  # PARTIAL cuts the decoded data
    assert b'"7bit" 3 0' in (urlauth.bodypartstructure(window, decoded=b"ell") or b"")


@pytest.mark.parametrize(
    ("decoded", "label"),
    [
        (b"caf\xc3\xa9\r\n", b'"8bit" 7 1'),
        (b"\x00\x01\x02", b'"binary" 3 0'),
        (b"bare\nnewline", b'"binary" 12 1'),
    ],
)
def test_decoded_data_is_labelled_by_what_it_holds(decoded: bytes, label: bytes) -> None:
    part = named(SINGLE, ";UID=1/;SECTION=1")
    assert label in (urlauth.bodypartstructure(part, decoded=decoded) or b"")


def test_header_and_text_sections() -> None:
    text = named(SINGLE, ";UID=1/;SECTION=TEXT")
    assert urlauth.body(text) == b"aGVsbG8=\r\n"
    assert urlauth.binary(text) == b"hello"  # the body of a message that is not multipart
    assert urlauth.bodypartstructure(text) is None  # RFC 5259: only parts have a structure
    header = named(SINGLE, ";UID=1/;SECTION=HEADER")
    assert urlauth.binary(header) == urlauth.body(header) == SINGLE[: SINGLE.index(b"aGV")]
    assert urlauth.bodypartstructure(header) is None
    multipart_text = named(DIGEST, ";UID=1/;SECTION=TEXT")
    assert urlauth.binary(multipart_text) == urlauth.body(multipart_text)  # nothing to decode


def test_digest_parts_and_undecodable_ones() -> None:
    structure = parse(DIGEST).bodystructure
    first = urlauth.bodypartstructure(named(DIGEST, ";UID=1/;SECTION=1"))
    assert first is not None and first.startswith(b'("message" "rfc822" NIL')
    assert first in structure  # RFC 2046 §5.1.5: message/rfc822 by default in a digest
    inner_text = named(DIGEST, ";UID=1/;SECTION=1.TEXT")
    assert urlauth.binary(inner_text) == b"first"
    second = named(DIGEST, ";UID=1/;SECTION=2")
    with pytest.raises(UnknownTransferEncoding):
        urlauth.binary(second)
    described = urlauth.bodypartstructure(second)
    assert described is not None and b'"x-unknown" 2 0' in described and described in structure


def test_what_is_not_there() -> None:
    missing = named(DIGEST, ";UID=1/;SECTION=9")
    assert urlauth.body(missing) is None
    assert urlauth.binary(missing) is None
    assert urlauth.bodypartstructure(missing) is None
