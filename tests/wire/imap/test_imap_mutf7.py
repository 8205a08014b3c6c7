"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.wire.imap import mutf7

RFC_EXAMPLE = b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"
RFC_TEXT = "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"


def test_rfc_3501_example_round_trip() -> None:
    assert mutf7.decode(RFC_EXAMPLE) == RFC_TEXT
    assert mutf7.encode(RFC_TEXT) == RFC_EXAMPLE


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("INBOX", b"INBOX"),
        ("A&B", b"A&-B"),
        ("&", b"&-"),
        ("Entw\u00fcrfe", b"Entw&APw-rfe"),
        ("\U0001f600", b"&2D3eAA-"),
        ("", b""),
    ],
)
def test_known_encodings(text: str, encoded: bytes) -> None:
    assert mutf7.encode(text) == encoded
    assert mutf7.decode(encoded) == text


@pytest.mark.parametrize(
    "bad",
    [
        b"&U,BTFw",  # run not closed
        b"&AGE-",  # encodes "a", which must be written directly
        b"&U,BTFw-&ZeVnLIqe-",  # two adjacent runs
        b"&U,BTF-",  # leftover bits not zero / odd length
        b"&2D0-",  # lone high surrogate
        b"&;;;;-",  # not base64
        b"caf\xc3\xa9",  # raw 8-bit
        b"tab\there",  # control character
    ],
)
def test_invalid_names_are_rejected(bad: bytes) -> None:
    with pytest.raises(mutf7.MUTF7Error):
        mutf7.decode(bad)


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_round_trip_any_text(text: str) -> None:
    encoded = mutf7.encode(text)
    assert all(0x20 <= b <= 0x7E for b in encoded)
    assert mutf7.decode(encoded) == text
