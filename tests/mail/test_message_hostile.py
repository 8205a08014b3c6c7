"""Hostile shapes parse in bounded time and never raise.

Each input here once cost, or could cost, time far beyond its size (regex backtracking,
per-token work on a megabyte field, nesting); the timeout turns a regression into a failure.
"""

from __future__ import annotations

import pytest

from courriel.mail import envelope
from courriel.mail.message import parse

HOSTILE = {
    "many-fields": b"".join(b"X-H%d: v\r\n" % i for i in range(100_000)) + b"\r\n",
    "spaces-then-junk": b"From: a@b," + b" " * 500_000 + b"(\r\n\r\n",
    "long-name-no-angle": b"To: " + b"word " * 100_000 + b"\r\n\r\n",
    "comment-addresses": b"To: " + b"(c) a@b, " * 100_000 + b"\r\n\r\n",
    "simple-addresses": b"To: " + b"a@b, " * 200_000 + b"\r\n\r\n",
    "unterminated-quote": b'Content-Type: text/plain; a="' + b"x" * 2_000_000 + b"\r\n\r\n",
    "unterminated-comments": b"From: " + b"(" * 300_000 + b"\r\n\r\n",
    "parameters": b"Content-Type: text/plain" + b"; a" * 300_000 + b"\r\n\r\n",
    "no-colon-line": b"a" * 5_000_000,
    "many-parts": b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    + b"--b\r\n\r\nx\r\n" * 50_000,
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("raw", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_is_bounded(raw: bytes) -> None:
    meta = parse(raw)
    assert meta.size == len(raw)
    assert meta.envelope.startswith(b"(") and meta.envelope.endswith(b")")


def test_address_field_is_read_up_to_the_cap() -> None:
    value = b"a@b, " * (envelope.MAX_ADDRESS_FIELD // 5 + 1000)
    addresses = envelope.parse_addresses(value)
    assert len(addresses) == envelope.MAX_ADDRESS_FIELD // 5 + 1  # the last one cut short
    assert addresses[-1].host == envelope.MISSING_DOMAIN
