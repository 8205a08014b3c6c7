"""The stored form of MessageMeta: round trip, direct accessors, refusal of bad bytes."""

from __future__ import annotations

import pytest

from courriel.mail.message import FORMAT_VERSION, MessageMeta, MetaFormatError, parse

MESSAGES = [
    b"",
    b"Subject: s\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\nbody\r\n",
    "Subject: Grüße\r\nFrom: José <j@example.com>\r\n\r\n".encode(),
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--b--\r\n",
    b"Subject: caf\xe9\x00\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n",
]


@pytest.mark.parametrize("raw", MESSAGES)
def test_round_trip(raw: bytes) -> None:
    meta = parse(raw)
    data = meta.to_bytes()
    assert data[0] == FORMAT_VERSION
    again = MessageMeta.from_bytes(data)
    assert again == meta
    assert again.to_bytes() == data


@pytest.mark.parametrize("raw", MESSAGES)
def test_accessors_slice_without_loading(raw: bytes) -> None:
    meta = parse(raw)
    data = meta.to_bytes()
    assert MessageMeta.envelope_of(data) == meta.envelope
    assert MessageMeta.bodystructure_of(data) == meta.bodystructure
    assert MessageMeta.body_of(data) == meta.body


def test_bad_bytes_are_refused() -> None:
    data = parse(MESSAGES[1]).to_bytes()
    for bad in (b"", b"\x01", b"\x02" + data[1:], data[:-1], data + b"x"):
        with pytest.raises(MetaFormatError):
            MessageMeta.from_bytes(bad)
    with pytest.raises(MetaFormatError):
        MessageMeta.envelope_of(data[:-3])
    corrupt = data[:-2] + b"}}"  # the JSON tail no longer parses
    with pytest.raises(MetaFormatError):
        MessageMeta.from_bytes(corrupt)
