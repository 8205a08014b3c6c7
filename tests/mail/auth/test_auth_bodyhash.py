"""DKIM body canonicalization in pieces agrees with dkimpy's whole-body one (RFC 6376 §3.4)."""

from __future__ import annotations

import hashlib

import pytest
from dkim.canonicalization import CanonicalizationPolicy
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.mail.auth.bodyhash import body_hash, canonical_pieces

lines = st.lists(
    st.text(alphabet=" \tab.\x00é", max_size=12).map(lambda s: s.encode()), max_size=12
)


def reference(body: bytes, relaxed: bool) -> bytes:
    policy = CanonicalizationPolicy.from_c_value(
        b"relaxed/relaxed" if relaxed else b"simple/simple"
    )
    return policy.canonicalize_body(body)


@given(lines=lines, final_crlf=st.booleans(), relaxed=st.booleans(), chunk=st.integers(1, 40))
@settings(max_examples=400, deadline=None)
def test_same_as_dkimpy(lines: list[bytes], final_crlf: bool, relaxed: bool, chunk: int) -> None:
    body = b"\r\n".join(lines) + (b"\r\n" if final_crlf and lines else b"")
    expected = reference(body, relaxed)
    # Tiny pieces, so that every cut position is exercised.
    assert b"".join(canonical_pieces(body, relaxed, chunk)) == expected
    assert body_hash(body, relaxed) == hashlib.sha256(expected).digest()
    assert body_hash(body, relaxed, length=5) == hashlib.sha256(expected[:5]).digest()


@pytest.mark.parametrize(
    ("body", "relaxed", "canonical"),
    [
        (b"", True, b""),
        (b"", False, b"\r\n"),  # §3.4.3: an empty body is one CRLF
        (b"\r\n\r\n", False, b"\r\n"),
        (b"a  b \t\r\n\r\n\r\n", True, b"a b\r\n"),  # §3.4.4 and §3.4.5 examples
        (b" C \r\nD \t E\r\n\r\n\r\n", True, b" C\r\nD E\r\n"),
        (b" C \r\nD \t E\r\n\r\n\r\n", False, b" C \r\nD \t E\r\n"),
        (b"no final line end", False, b"no final line end\r\n"),
        (b"x\r\n\r\ny", True, b"x\r\n\r\ny\r\n"),
    ],
)
def test_rfc_examples(body: bytes, relaxed: bool, canonical: bytes) -> None:
    assert b"".join(canonical_pieces(body, relaxed)) == canonical
