"""DMARC (RFC 7489): record grammar, organizational domains, alignment, disposition, discovery."""

from __future__ import annotations

import pytest

from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.dkim import Outcome, SignatureResult
from courriel.mail.auth.dmarc import (
    DmarcOutcome,
    DmarcRecord,
    DmarcSyntaxError,
    Policy,
    aligned,
    check_dmarc,
    evaluate,
    find_policy,
    organizational_domain,
    parse_record,
)
from courriel.mail.auth.spf import SpfOutcome, SpfResult
from courriel.testing.dns import silent_port
from courriel.testing.mailauth import FORGER_IP

RUA = ("mailto:r@example.org",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=none", DmarcRecord(Policy.NONE)),
        ("v=DMARC1;p=reject;", DmarcRecord(Policy.REJECT)),  # §6.4: trailing ";" allowed
        ("v=DMARC1; p=Quarantine; pct=25", DmarcRecord(Policy.QUARANTINE, pct=25)),
        (
            "v=DMARC1; p=reject; sp=none; adkim=s; aspf=s",
            DmarcRecord(Policy.REJECT, Policy.NONE, adkim="s", aspf="s"),
        ),
        (
            "v=DMARC1; p=none; rua=mailto:a@example.org,mailto:b@example.org; ri=3600",
            DmarcRecord(Policy.NONE, rua=("mailto:a@example.org", "mailto:b@example.org"), ri=3600),
        ),
        ("v=DMARC1; p=reject; pct=250", DmarcRecord(Policy.REJECT, pct=100)),  # clamped
        ("v=DMARC1; p=reject; pct=x", DmarcRecord(Policy.REJECT)),  # malformed: default
        ("v=DMARC1; p=reject; adkim=q", DmarcRecord(Policy.REJECT)),
        ("v=DMARC1; p=reject; future=yes", DmarcRecord(Policy.REJECT)),  # §6.3: ignored
        # §6.6.3: no valid p, but a valid rua: act as p=none.
        ("v=DMARC1; p=bogus; rua=mailto:r@example.org", DmarcRecord(Policy.NONE, rua=RUA)),
        ("v=DMARC1; rua=mailto:r@example.org", DmarcRecord(Policy.NONE, rua=RUA)),
    ],
)  # fmt: skip
def test_parse(text: str, expected: DmarcRecord) -> None:
    assert parse_record(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "v=DMARC1"),
        ("p=reject; v=DMARC1", "v=DMARC1"),  # §6.4: v must come first
        ("v=DMARC2; p=reject", "v=DMARC1"),
        ("v=dmarc1; p=reject", "v=DMARC1"),  # the version is case-sensitive
        ("v=DMARC1; p=bogus", "p='bogus'"),  # no rua to fall back on
        ("v=DMARC1", "p=''"),
        ("v=DMARC1; p=reject; sp=maybe", "p='reject'"),  # invalid sp, no rua
        ("v=DMARC1; p reject", "not a tag=value pair"),
    ],
)
def test_malformed(text: str, words: str) -> None:
    with pytest.raises(DmarcSyntaxError, match=None) as e:
        parse_record(text)
    assert words in str(e.value)


@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("example.org", "example.org"),
        ("mail.sub.example.org", "example.org"),
        ("www.example.co.uk", "example.co.uk"),
        ("a.b.example.co.uk", "example.co.uk"),
        ("EXAMPLE.ORG.", "example.org"),
        ("foo.github.io", "foo.github.io"),  # the private section of the list
    ],
)
def test_organizational_domain(domain: str, org: str) -> None:
    assert organizational_domain(domain) == org


def test_alignment_modes() -> None:
    assert aligned("mail.example.org", "example.org", "r")
    assert not aligned("mail.example.org", "example.org", "s")
    assert aligned("Example.org", "example.org.", "s")
    assert not aligned("example.org.uk", "example.org", "r")


def spf(outcome: SpfOutcome, domain: str = "example.org") -> SpfResult:
    sentence = f"{FORGER_IP} is not allowed to send for {domain}"
    return SpfResult(outcome, "mailfrom", domain, f"x@{domain}", FORGER_IP, sentence)


def dkim(outcome: Outcome, domain: str = "example.org", reason: str = "") -> SignatureResult:
    return SignatureResult(domain, "s", "ed25519-sha256", outcome, reason)


def test_pass_through_either_aligned_check() -> None:
    record = DmarcRecord(Policy.REJECT)
    on_spf = evaluate(
        "example.org", "example.org", record, spf(SpfOutcome.PASS, "b.example.org"), []
    )
    assert on_spf.outcome is DmarcOutcome.PASS
    on_dkim = evaluate(
        "example.org", "example.org", record, spf(SpfOutcome.FAIL), [dkim(Outcome.PASS)]
    )
    assert on_dkim.outcome is DmarcOutcome.PASS


def test_failure_sentence_and_disposition() -> None:
    r = evaluate(
        "example.org",
        "example.org",
        DmarcRecord(Policy.REJECT),
        spf(SpfOutcome.FAIL),
        [dkim(Outcome.FAIL, reason="body hash mismatch")],
    )
    assert (r.outcome, r.disposition) == (DmarcOutcome.FAIL, Policy.REJECT)
    assert r.explanation == (
        f"SPF: {FORGER_IP} is not allowed to send for example.org; DKIM: body hash mismatch"
    )


def test_unaligned_passes_are_explained() -> None:
    r = evaluate(
        "example.org",
        "example.org",
        DmarcRecord(Policy.QUARANTINE, adkim="s"),
        spf(SpfOutcome.PASS, "bounces.example.com"),
        [dkim(Outcome.PASS, "mail.example.org")],
    )
    assert r.disposition is Policy.QUARANTINE
    assert r.explanation == (
        "SPF: passed for bounces.example.com, which is not example.org; "
        "DKIM: signed by mail.example.org, not example.org"
    )


def test_pct_samples_down_one_step() -> None:
    record = DmarcRecord(Policy.REJECT, pct=20)
    args = ("example.org", "example.org", record, spf(SpfOutcome.FAIL), [])
    assert evaluate(*args, sample=lambda: 0.1).disposition is Policy.REJECT
    out = evaluate(*args, sample=lambda: 0.5)
    assert (out.disposition, out.sampled_out) == (Policy.QUARANTINE, True)
    quarantine = DmarcRecord(Policy.QUARANTINE, pct=0)
    q = evaluate("example.org", "example.org", quarantine, None, [], sample=lambda: 0.0)
    assert q.disposition is Policy.NONE


def test_subdomain_policy_applies_below_the_record() -> None:
    record = DmarcRecord(Policy.REJECT, sp=Policy.QUARANTINE)
    sub = evaluate("news.example.org", "example.org", record, None, [])
    assert sub.disposition is Policy.QUARANTINE
    top = evaluate("example.org", "example.org", record, None, [])
    assert top.disposition is Policy.REJECT


async def test_discovery_falls_back_to_the_organizational_domain(
    resolver: AuthResolver,
) -> None:
    found = await find_policy("deep.sub.example.org", resolver)
    assert found is not None and found[0] == "example.org"
    assert found[1] == DmarcRecord(Policy.REJECT, rua=("mailto:dmarc@example.org",))
    assert await find_policy("nodmarc.example", resolver) is None


async def test_malformed_record_is_permerror_and_no_policy(resolver: AuthResolver) -> None:
    r = await check_dmarc(
        "baddmarc.example", spf(SpfOutcome.FAIL, "baddmarc.example"), [], resolver
    )
    assert (r.outcome, r.disposition) == (DmarcOutcome.PERMERROR, Policy.NONE)
    assert "the record of baddmarc.example is unusable" in r.explanation


async def test_no_record_is_none(resolver: AuthResolver) -> None:
    r = await check_dmarc("nodmarc.example", spf(SpfOutcome.PASS, "nodmarc.example"), [], resolver)
    assert r.outcome is DmarcOutcome.NONE


async def test_dns_timeout_is_temperror() -> None:
    with silent_port() as port:
        resolver = AuthResolver([f"127.0.0.1:{port}"], timeout=0.3)
        r = await check_dmarc("example.org", spf(SpfOutcome.FAIL), [], resolver)
    assert r.outcome is DmarcOutcome.TEMPERROR
    assert r.disposition is Policy.NONE


async def test_records_of_another_version_are_discarded() -> None:
    class Answers:
        def __init__(self, texts: list[bytes]) -> None:
            self.texts = texts

        async def txt(self, name: str) -> list[bytes]:
            return self.texts if name == "_dmarc.example.org" else []

    assert await find_policy("example.org", Answers([b"v=dmarc1; p=reject"])) is None  # type: ignore[arg-type]
    assert await find_policy("example.org", Answers([b"v=spf1 -all"])) is None  # type: ignore[arg-type]
    # §6.6.3 step 2: two DMARC records mean no DMARC processing at all.
    two = Answers([b"v=DMARC1; p=reject", b"v=DMARC1; p=none"])
    assert await find_policy("example.org", two) is None  # type: ignore[arg-type]
    one = await find_policy("example.org", Answers([b"v=spf1 -all", b"v = DMARC1 ;p=none"]))  # type: ignore[arg-type]
    assert one == ("example.org", DmarcRecord(Policy.NONE))
