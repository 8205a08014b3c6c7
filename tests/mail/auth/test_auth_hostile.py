"""Hostile input to the authentication checks: anything gives a result, never an exception."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.mail.auth.dkim import DkimVerifier, Outcome
from courriel.mail.auth.dmarc import DmarcRecord, DmarcSyntaxError, parse_record
from courriel.mail.auth.results import strip_ours

tag_text = st.text(alphabet="v=DMARC1;prejctqunio ,:@.s%-_\x00é", max_size=60)


@given(st.one_of(tag_text, st.text(max_size=60), tag_text.map(lambda t: "v=DMARC1;" + t)))
@settings(max_examples=300, deadline=None)
def test_dmarc_parser_gives_a_record_or_a_syntax_error(text: str) -> None:
    try:
        record = parse_record(text)
    except DmarcSyntaxError as e:
        assert str(e)
    else:
        assert isinstance(record, DmarcRecord) and 0 <= record.pct <= 100


field_lines = st.lists(
    st.one_of(
        st.just(b"Authentication-Results: mx.example.com; dkim=pass"),
        st.just(b"Authentication-Results: (c) mx.example.com ; spf=pass"),
        st.just(b"Authentication-Results: other.example; dkim=pass"),
        st.just(b" continued"),
        st.binary(min_size=1, max_size=20).filter(lambda b: b"\r" not in b and b"\n" not in b),
    ),
    max_size=8,
)


@given(field_lines, st.binary(max_size=30))
@settings(max_examples=300, deadline=None)
def test_strip_ours_removes_only_fields_with_our_name(lines: list[bytes], body: bytes) -> None:
    message = b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body
    out = strip_ours(message, "mx.example.com")
    assert out.endswith(b"\r\n" + body)
    assert b"mx.example.com" not in out.split(b"\r\n\r\n")[0].replace(b"other.example", b"")
    assert out.count(b"other.example") >= message.split(b"\r\n\r\n")[0].count(b"other.example")


class NoKeys:
    async def txt(self, name: str) -> list[bytes]:
        return [b"v=DKIM1; k=rsa; p=MIIB"]


signature_values = st.text(alphabet="vadshbctlqxi=;: 0123456789abc/+-.", max_size=80)


@given(st.lists(signature_values, min_size=1, max_size=3), st.binary(max_size=40))
@settings(max_examples=100, deadline=None)
def test_any_signature_field_gives_results(values: list[str], body: bytes) -> None:
    head = b"".join(b"DKIM-Signature: " + v.encode() + b"\r\n" for v in values)
    message = head + b"From: a@example.org\r\n\r\n" + body
    results = asyncio.run(DkimVerifier(NoKeys()).verify(message))  # type: ignore[arg-type]
    assert len(results) == len(values)
    assert all(r.outcome is not Outcome.PASS for r in results)
