"""DKIM signing and verification (RFC 6376, RFC 8463) against keys served by a real DNS server."""

from __future__ import annotations

import base64
import time

from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.dkim import (
    OVERSIGNED,
    Algorithm,
    DkimVerifier,
    Outcome,
    SigningKey,
    generate_key,
    header_list,
    public_record,
    sign,
)
from courriel.testing.dns import silent_port
from courriel.testing.mailauth import AuthKeys, message


def outcomes(results: list) -> list[tuple[str, str, Outcome, str]]:  # type: ignore[type-arg]
    return [(r.domain, r.selector, r.outcome, r.reason) for r in results]


async def test_both_signatures_verify(keys: AuthKeys, resolver: AuthResolver) -> None:
    msg = message()
    signed = sign(msg, keys.org) + msg
    results = await DkimVerifier(resolver).verify(signed)
    assert outcomes(results) == [
        ("example.org", "c202612e", Outcome.PASS, ""),
        ("example.org", "c202612r", Outcome.PASS, ""),
    ]
    assert [r.algorithm for r in results] == ["ed25519-sha256", "rsa-sha256"]
    assert all(len(r.b_prefix) == 8 for r in results)


def test_signature_tags_relaxed_and_oversigned(keys: AuthKeys) -> None:
    fields = sign(message(), keys.org[:1]).decode()
    unfolded = " ".join(fields.split())
    assert "a=ed25519-sha256" in unfolded and "c=relaxed/relaxed" in unfolded
    names = [n.strip() for n in unfolded.split("h=", 1)[1].split(";", 1)[0].split(":")]
    # Each present field of the oversigned set is named once more than it occurs.
    for name in ("from", "subject", "date", "to", "message-id", "mime-version", "content-type"):
        assert names.count(name) == 2, name
    assert names.count("cc") == 1 and names.count("reply-to") == 1  # absent: locked out once
    assert "received" not in names


def test_header_list_counts_repeated_fields() -> None:
    msg = b"From: a@example.org\r\nTo: x@example.net\r\nTo: y@example.net\r\n\r\nbody\r\n"
    names = header_list(msg)
    assert names.count(b"to") == 3 and names.count(b"from") == 2
    assert set(names) >= OVERSIGNED


async def test_altered_body_is_body_hash_mismatch(keys: AuthKeys, resolver: AuthResolver) -> None:
    msg = message()
    signed = sign(msg, keys.org) + msg
    altered = signed.replace(b"this is a test", b"this is a fake")
    results = await DkimVerifier(resolver).verify(altered)
    assert [(r.outcome, r.reason) for r in results] == [(Outcome.FAIL, "body hash mismatch")] * 2


async def test_altered_header_fails(keys: AuthKeys, resolver: AuthResolver) -> None:
    msg = message()
    signed = sign(msg, keys.org) + msg
    results = await DkimVerifier(resolver).verify(signed.replace(b"Authentication test", b"Pay"))
    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.FAIL, "signature does not verify")
    ] * 2


async def test_added_from_breaks_the_oversigned_signature(
    keys: AuthKeys, resolver: AuthResolver
) -> None:
    msg = message()
    signed = sign(msg, keys.org[:1]) + msg
    # A second From placed above the signed one is what a reader's program would show.
    head, sep, rest = signed.partition(b"From: Alice")
    forged = head + b"From: boss@example.org\r\n" + sep + rest
    (result,) = await DkimVerifier(resolver).verify(forged)
    assert result.outcome is Outcome.FAIL


async def test_relaxed_canonicalization_survives_rewrapping(
    keys: AuthKeys, resolver: AuthResolver
) -> None:
    msg = message()
    signed = sign(msg, keys.org) + msg
    rewrapped = signed.replace(
        b"Subject: Authentication test", b"Subject:  Authentication\r\n test"
    )
    rewrapped = rewrapped.replace(b"a test.\r\n", b"a test.   \r\n\r\n\r\n")
    results = await DkimVerifier(resolver).verify(rewrapped)
    assert [r.outcome for r in results] == [Outcome.PASS, Outcome.PASS]


async def test_unknown_selector_revoked_key_and_sha1(resolver: AuthResolver) -> None:
    msg = message()
    stranger = SigningKey(
        "example.org", "nosuch", Algorithm.ED25519, generate_key(Algorithm.ED25519)
    )
    (missing,) = await DkimVerifier(resolver).verify(sign(msg, [stranger]) + msg)
    assert (missing.outcome, missing.reason) == (
        Outcome.PERMERROR,
        "no key published at nosuch._domainkey.example.org",
    )
    sha1 = msg.replace(
        b"From:",
        b"DKIM-Signature: v=1; a=rsa-sha1; d=example.org; s=x; h=from; bh=AAAA; b=AAAA\r\nFrom:",
        1,
    )
    (old,) = await DkimVerifier(resolver).verify(sha1)
    assert (old.outcome, old.reason) == (Outcome.PERMERROR, "rsa-sha1 is no longer accepted")


async def test_revoked_key() -> None:
    class Revoked:
        async def txt(self, name: str) -> list[bytes]:
            return [b"v=DKIM1; k=rsa; p="]

    msg = message()
    key = SigningKey("example.org", "old", Algorithm.RSA, AuthKeys().org[1].private_pem)
    (result,) = await DkimVerifier(Revoked()).verify(sign(msg, [key]) + msg)  # type: ignore[arg-type]
    assert (result.outcome, result.reason) == (
        Outcome.PERMERROR,
        "the key at old._domainkey.example.org is revoked",
    )


async def test_malformed_signature_is_permerror(resolver: AuthResolver) -> None:
    msg = message(extra=b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org\r\n")
    (result,) = await DkimVerifier(resolver).verify(msg)
    assert result.outcome is Outcome.PERMERROR
    assert "missing" in result.reason


async def test_dns_timeout_is_temperror(keys: AuthKeys) -> None:
    msg = message()
    signed = sign(msg, keys.org) + msg
    with silent_port() as port:
        verifier = DkimVerifier(AuthResolver([f"127.0.0.1:{port}"], timeout=0.3))
        results = await verifier.verify(signed)
    assert [r.outcome for r in results] == [Outcome.TEMPERROR] * 2
    assert results[0].reason == (
        "key lookup failed: DNS lookup of c202612e._domainkey.example.org (TXT) timed out"
    )


async def test_a_hundred_signatures_cost_ten(keys: AuthKeys, resolver: AuthResolver) -> None:
    msg = message(body=b"x" * 200_000 + b"\r\n")
    signatures = sign(msg, keys.org[1:]) * 100
    asked: list[str] = []

    class Counting:
        async def txt(self, name: str) -> list[bytes]:
            asked.append(name)
            return await resolver.txt(name)

    started = time.perf_counter()
    results = await DkimVerifier(Counting(), max_signatures=10).verify(signatures + msg)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert len(results) == 10 and len(asked) == 10
    assert all(r.outcome is Outcome.PASS for r in results)
    assert elapsed < 5, elapsed


def test_public_record_forms() -> None:
    ed = generate_key(Algorithm.ED25519)
    record = public_record(Algorithm.ED25519, ed)
    assert record.startswith("v=DKIM1; k=ed25519; p=")
    assert len(base64.b64decode(record.split("p=")[1])) == 32  # RFC 8463 §4.2: raw key
    rsa = public_record(Algorithm.RSA, generate_key(Algorithm.RSA))
    assert rsa.startswith("v=DKIM1; k=rsa; p=MII")
