"""8BITMIME downgrade (RFC 6152 §3): what is converted, what is refused, what is left alone."""

from __future__ import annotations

import binascii
import email
import email.policy

import pytest

from courriel.mail.downgrade import to_seven_bit

TEXT = (
    b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xc3\xa9 =\r\n.leading dot\r\n"
)
MULTI = (
    b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n'
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
    b"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\nAAEC\r\n--b1--\r\nepilogue\r\n"
)


def test_ascii_is_returned_as_is() -> None:
    raw = b"Subject: x\r\n\r\nhello\r\n"
    assert to_seven_bit(raw) is raw


def test_text_part_becomes_quoted_printable() -> None:
    out = to_seven_bit(TEXT)
    assert out is not None and out.isascii()
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Content-Transfer-Encoding: quoted-printable" in head and b"8bit" not in head
    assert binascii.a2b_qp(body) == "Café =\r\n.leading dot\r\n".encode()


def test_multipart_converts_only_the_8bit_part_and_keeps_the_rest() -> None:
    out = to_seven_bit(MULTI)
    assert out is not None and out.isascii()
    assert out.startswith(MULTI[: MULTI.index(b"--b1\r\n")])  # header and preamble untouched
    assert out.endswith(MULTI[MULTI.index(b"--b1\r\nContent-Type: application") :])
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain")
    assert text.get_content() == "été"  # the CRLF before a delimiter belongs to it


def test_non_mime_message_gets_mime_version() -> None:
    out = to_seven_bit(b"Subject: x\r\n\r\nna\xc3\xafve\r\n")
    assert out is not None and out.startswith(b"MIME-Version: 1.0\r\nSubject: x\r\n")
    assert b"Content-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve" in out


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: caf\xc3\xa9\r\n\r\nx\r\n",  # 8-bit header: needs SMTPUTF8, not a body encoding
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\n\xff\r\n",
        b"Content-Type: message/rfc822\r\n\r\nSubject: y\r\n\r\n\xc3\xa9\r\n",
        # an 8-bit preamble
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n\xc3\xa9\r\n--b\r\n\r\nx\r\n--b--\r\n',
        b"Content-Type: multipart/mixed\r\n\r\n\xc3\xa9\r\n",  # no boundary
    ],
)
def test_what_cannot_be_converted(raw: bytes) -> None:
    assert to_seven_bit(raw) is None
