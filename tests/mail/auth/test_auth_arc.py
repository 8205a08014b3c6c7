"""ARC (RFC 8617): our seals verified by dkimpy and by Mail::DKIM, chains judged against dnsmasq,
the trusted-sealer override, and the bounds on hostile chains."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.arc import ArcOutcome, ArcVerifier, next_instance, seal
from courriel.mail.auth.dkim import sign
from courriel.mail.auth.inbound import Action, MailAuth
from courriel.testing.dns import DnsServer, silent_port
from courriel.testing.mailauth import (
    FORGER_IP,
    AuthKeys,
    mail_dkim_arc_available,
    mail_dkim_arc_seal,
    mail_dkim_arc_verify,
    message,
)
from courriel.testing.missing import report_missing

NOW = 1796500000
ORIGINAL = b"mx.example.net; spf=pass smtp.mailfrom=alice@example.org; dkim=pass header.d=example.org; dmarc=pass header.from=example.org"  # noqa: E501


def forwarded(keys: AuthKeys) -> bytes:
    """example.org's signed message as example.net's list forwards it: footer added, sealed."""
    msg = message()
    signed = sign(msg, keys.org, now=NOW) + msg
    changed = signed + b"-- \r\nthe list footer\r\n"
    return seal(changed, keys.net[0], ORIGINAL, b"none", NOW) + changed


async def mail_dkim(request: pytest.FixtureRequest, server: DnsServer, msg: bytes) -> list[str]:
    if not mail_dkim_arc_available():
        report_missing("perl module Mail::DKIM::ARC (libmail-dkim-perl)", request.node.nodeid)
    result = await asyncio.to_thread(mail_dkim_arc_verify, server.address, server.port, msg)
    return list(result)


@pytest.fixture
def verifier(resolver: AuthResolver) -> ArcVerifier:
    return ArcVerifier(resolver)


async def test_a_message_without_arc_has_none(verifier: ArcVerifier) -> None:
    result = await verifier.verify(message())
    assert (result.outcome, result.instances) == (ArcOutcome.NONE, 0)


async def test_our_seals_verify_and_chain(verifier: ArcVerifier, keys: AuthKeys) -> None:
    once = forwarded(keys)
    assert once.startswith(b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=example.net;")
    assert b"\r\nARC-Authentication-Results: i=1; mx.example.net; spf=pass" in once
    first = await verifier.verify(once)
    assert (first.outcome, [h.sealer for h in first.hops]) == (ArcOutcome.PASS, ["example.net"])
    assert next_instance(once) == 2
    twice = seal(once, keys.org[1], b"mx.example.org; arc=pass", first.cv, NOW) + once
    assert twice.startswith(b"ARC-Seal: i=2; cv=pass;")
    second = await verifier.verify(twice)
    assert second.outcome is ArcOutcome.PASS
    assert [(h.instance, h.sealer) for h in second.hops] == [(2, "example.org"), (1, "example.net")]
    assert "dmarc=pass header.from=example.org" in second.hops[1].aar


async def test_a_change_after_the_seal_fails(verifier: ArcVerifier, keys: AuthKeys) -> None:
    result = await verifier.verify(forwarded(keys).replace(b"a test", b"a fake"))
    assert result.outcome is ArcOutcome.FAIL
    assert result.reason == "Most recent ARC-Message-Signature did not validate"
    # Sealing after a failed verification: cv=fail, over our own set only (RFC 8617 §5.1.1).
    broken = forwarded(keys).replace(b"a test", b"a fake")
    resealed = seal(broken, keys.org[1], b"mx.example.org; arc=fail", result.cv, NOW) + broken
    assert resealed.startswith(b"ARC-Seal: i=2; cv=fail;")
    # ... and a chain marked failed is never extended (RFC 8617 §5.1).
    assert seal(resealed, keys.org[1], b"mx.example.org; arc=fail", b"fail", NOW) == b""


async def test_ed25519_seals_are_refused_by_dkimpy(verifier: ArcVerifier, keys: AuthKeys) -> None:
    # dkimpy's ARC accepts rsa-sha256 only (as Mail::DKIM's ARC does): seals stay RSA.
    msg = message()
    sealed = seal(msg, keys.org[0], ORIGINAL, b"none", NOW) + msg
    result = await verifier.verify(sealed)
    assert result.outcome is ArcOutcome.FAIL and "ed25519-sha256" in result.reason


async def test_mail_dkim_verifies_our_seals(
    request: pytest.FixtureRequest, dns_server: DnsServer, keys: AuthKeys
) -> None:
    once = forwarded(keys)
    twice = seal(once, keys.org[1], b"mx.example.org; arc=pass", b"pass", NOW) + once
    result, detail = await mail_dkim(request, dns_server, twice)
    assert result == "pass"
    assert detail.startswith("pass (as.2.example.org=pass, ams.2.example.org=pass")
    result, detail = await mail_dkim(request, dns_server, twice.replace(b"a test", b"a fake"))
    assert result == "fail" and "ams.2.example.org=fail (body has been altered)" in detail


async def test_courriel_verifies_what_mail_dkim_seals(
    request: pytest.FixtureRequest, verifier: ArcVerifier, keys: AuthKeys, tmp_path: Path
) -> None:
    if not mail_dkim_arc_available():
        report_missing("perl module Mail::DKIM::ARC (libmail-dkim-perl)", request.node.nodeid)
    key = keys.net[0]
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_pem)
    results = b"Authentication-Results: lists.example.net; " + ORIGINAL.split(b"; ", 1)[1]
    msg = results + b"\r\n" + message()
    arc_set = await asyncio.to_thread(mail_dkim_arc_seal, msg, key, str(pem), "lists.example.net")
    assert arc_set.startswith(b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.net;")
    result = await verifier.verify(arc_set + msg)
    assert (result.outcome, [h.sealer for h in result.hops]) == (ArcOutcome.PASS, ["example.net"])
    assert "dmarc=pass header.from=example.org" in result.hops[0].aar
    altered = await verifier.verify((arc_set + msg).replace(b"a test", b"a fake"))
    assert altered.outcome is ArcOutcome.FAIL


async def test_a_dns_timeout_is_temperror(keys: AuthKeys) -> None:
    with silent_port() as port:
        resolver = AuthResolver([f"127.0.0.1:{port}"], timeout=0.3)
        result = await ArcVerifier(resolver).verify(forwarded(keys))
    assert result.outcome is ArcOutcome.TEMPERROR and "key lookup failed" in result.reason


async def test_long_chains_cost_nothing(verifier: ArcVerifier, keys: AuthKeys) -> None:
    msg = forwarded(keys)
    for _ in range(10):
        msg = seal(msg, keys.net[0], b"mx.example.net; arc=pass", b"pass", NOW) + msg
    result = await verifier.verify(msg)
    assert (result.outcome, result.reason) == (
        ArcOutcome.FAIL,
        "11 ARC sets; at most 10 are checked",
    )
    past_the_limit = b"ARC-Seal: i=51; cv=pass; a=rsa-sha256; d=x; s=y; b=\r\n"
    result = await verifier.verify(past_the_limit + message())
    assert (result.outcome, result.reason) == (ArcOutcome.FAIL, "instance 51 is above 50")


@pytest.mark.parametrize(
    "fields",
    [
        b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=\xc3\xa9.example; s=s; b=AAAA\r\n",
        b"ARC-Seal: i=1; cv=none; a=rsa-sha256; b=AAAA\r\n",
        b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=x.example; s=s; b=%%%\r\n"
        b"ARC-Message-Signature: i=1; a=rsa-sha256; d=x.example; s=s; h=from; bh=@; b=AA\r\n"
        b"ARC-Authentication-Results: i=1; x.example; none\r\n",
        b"ARC-Seal: i=1; i=2; cv=none\r\nARC-Seal: i=1; cv=pass\r\n",
        b"ARC-Seal: garbage without tags\r\nARC-Message-Signature: i=x\r\n",
        b"ARC-Authentication-Results: i=1; x.example; arc=pass\r\n",
    ],
)
async def test_hostile_arc_fields_fail_quietly(verifier: ArcVerifier, fields: bytes) -> None:
    result = await verifier.verify(fields + message())
    assert result.outcome in (ArcOutcome.FAIL, ArcOutcome.NONE)
    assert result.outcome is ArcOutcome.NONE or result.reason


@pytest.fixture
async def checks(resolver: AuthResolver) -> AsyncIterator[MailAuth]:
    auth = MailAuth(resolver, "mx.example.com", trusted_arc_sealers=["example.net"])
    yield auth
    auth.close()


async def test_a_trusted_sealer_vouches_for_a_broken_dkim(checks: MailAuth, keys: AuthKeys) -> None:
    v = await checks.check_inbound(
        ip=FORGER_IP, helo="lists.example.net", mail_from="list@example.net",
        message=forwarded(keys),
    )  # fmt: skip
    # DMARC fails (the footer broke DKIM, the list's IP is not example.org's) ...
    assert v.action is Action.REJECT and "DKIM: body hash mismatch" in v.text
    # ... but the chain passes and example.net, trusted, saw dmarc=pass.
    assert (v.arc.outcome, v.arc_override) == (ArcOutcome.PASS, "example.net")
    assert b"arc=pass smtp.remote-ip=203.0.113.9;" in v.header
    assert v.results.startswith(b"mx.example.com;")


async def test_an_untrusted_sealer_changes_nothing(resolver: AuthResolver, keys: AuthKeys) -> None:
    auth = MailAuth(resolver, "mx.example.com", trusted_arc_sealers=["lists.example.com"])
    try:
        v = await auth.check_inbound(
            ip=FORGER_IP, helo="h", mail_from="list@example.net", message=forwarded(keys)
        )
    finally:
        auth.close()
    assert (v.action, v.arc.outcome, v.arc_override) == (Action.REJECT, ArcOutcome.PASS, "")
