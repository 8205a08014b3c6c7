"""Authentication-Results (RFC 8601): the field we write, and forged ones we remove."""

from __future__ import annotations

import email.parser
import email.policy

from courriel.mail.auth.results import Clause, authentication_results, strip_ours


def test_field_shape_and_quoting() -> None:
    field = authentication_results(
        "mx.example.com",
        [
            Clause("spf", "pass", properties=(("smtp.mailfrom", "a@example.org"),)),
            Clause("dkim", "fail", "body hash mismatch", (("header.d", "example.org"),)),
            Clause("dmarc", "fail", 'say "hi"; dmarc=pass', (("header.from", "example.org"),)),
        ],
    )
    assert field.endswith(b"\r\n")
    assert all(len(line) <= 78 for line in field.split(b"\r\n"))
    text = " ".join(field.decode().split())
    assert text.startswith("Authentication-Results: mx.example.com; spf=pass")
    assert 'dkim=fail reason="body hash mismatch" header.d=example.org;' in text
    # A hostile reason stays inside its quotes: no clause can be injected.
    assert 'reason="say \\"hi\\"; dmarc=pass" header.from=example.org' in text
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(field + b"\r\n")
    assert parsed["Authentication-Results"].startswith("mx.example.com;")


def test_no_result_is_none() -> None:
    assert authentication_results("mx.example.com", []) == (
        b"Authentication-Results: mx.example.com;\r\n none\r\n"
    )


def test_long_clauses_fold_between_words() -> None:
    long_reason = "word " * 40
    field = authentication_results("mx.example.com", [Clause("dkim", "fail", long_reason.strip())])
    lines = field.split(b"\r\n")[:-1]
    assert len(lines) > 2 and all(line[:1] == b" " for line in lines[1:])
    assert " ".join(field.decode().split()).count("word") == 40


MESSAGE = (
    b"Received: from a by b\r\n"
    b"Authentication-Results: MX.example.com; dkim=pass header.d=bank.example\r\n"
    b"Authentication-Results: other.example; spf=fail\r\n"
    b'Authentication-Results: (comment) "mx.example.com" 1;\r\n'
    b"  dmarc=pass header.from=bank.example\r\n"
    b"Authentication-Results: mx.example.com.evil; spf=pass\r\n"
    b"Subject: hi\r\n"
    b"\r\n"
    b"Authentication-Results: mx.example.com; in the body, untouched\r\n"
)


def test_strip_ours_removes_only_our_fields() -> None:
    out = strip_ours(MESSAGE, "mx.example.com")
    assert out == (
        b"Received: from a by b\r\n"
        b"Authentication-Results: other.example; spf=fail\r\n"
        b"Authentication-Results: mx.example.com.evil; spf=pass\r\n"
        b"Subject: hi\r\n"
        b"\r\n"
        b"Authentication-Results: mx.example.com; in the body, untouched\r\n"
    )


def test_strip_ours_without_match_returns_the_same_object() -> None:
    msg = b"Subject: hi\r\n\r\nbody\r\n"
    assert strip_ours(msg, "mx.example.com") is msg
    assert strip_ours(MESSAGE, "nobody.example") is MESSAGE
