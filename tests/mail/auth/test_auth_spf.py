"""SPF (RFC 7208) through pyspf, asking a real DNS server through courriel's resolver."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.spf import SpfChecker, SpfOutcome
from courriel.testing.dns import silent_port
from courriel.testing.mailauth import FORGER_IP, NET_IP, ORG_IP


@pytest.fixture
async def spf(resolver: AuthResolver) -> AsyncIterator[SpfChecker]:
    checker = SpfChecker(resolver)
    yield checker
    checker.close()


@pytest.mark.parametrize(
    ("ip", "sender", "outcome", "sentence"),
    [
        (ORG_IP, "a@example.org", SpfOutcome.PASS, f"{ORG_IP} is allowed to send for example.org"),
        (
            FORGER_IP,
            "a@example.org",
            SpfOutcome.FAIL,
            f"{FORGER_IP} is not allowed to send for example.org",
        ),
        (
            FORGER_IP,
            "a@example.net",
            SpfOutcome.SOFTFAIL,
            f"example.net does not expect mail from {FORGER_IP} (softfail)",
        ),
        (NET_IP, "a@example.net", SpfOutcome.PASS, f"{NET_IP} is allowed to send for example.net"),
        (ORG_IP, "a@nothing.example", SpfOutcome.NONE, "nothing.example publishes no SPF record"),
    ],
)
async def test_results_with_their_sentence(
    spf: SpfChecker, ip: str, sender: str, outcome: SpfOutcome, sentence: str
) -> None:
    result = await spf.check_mail_from(ip, sender, "client.example")
    assert (result.outcome, result.sentence) == (outcome, sentence)
    assert result.identity == "mailfrom"
    assert result.domain == sender.partition("@")[2]


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("permerror.example", "frobnicate"),  # RFC 7208 §4.6.1: unknown mechanism
        ("loop.example", "lookup"),  # an include loop ends at the lookup limit
        ("many.example", "Too many DNS lookups"),  # RFC 7208 §4.6.4: 10 lookups
        ("void.example", "Void lookup limit"),  # RFC 7208 §4.6.4: 2 void lookups
    ],
)
async def test_permerrors(spf: SpfChecker, domain: str, words: str) -> None:
    result = await spf.check_mail_from(FORGER_IP, f"x@{domain}", "client.example")
    assert result.outcome is SpfOutcome.PERMERROR
    assert result.sentence.startswith(f"the SPF record of {domain} is broken (")
    assert words.lower() in result.sentence.lower()


async def test_a_huge_record_is_read_and_bounded(spf: SpfChecker) -> None:
    started = time.perf_counter()
    result = await spf.check_mail_from(FORGER_IP, "x@huge.example", "client.example")
    assert result.outcome is SpfOutcome.FAIL
    assert time.perf_counter() - started < 2


async def test_helo_identity_and_empty_mail_from(spf: SpfChecker) -> None:
    helo = await spf.check_helo(ORG_IP, "mail.example.org")
    assert (helo.outcome, helo.identity, helo.domain) == (
        SpfOutcome.PASS,
        "helo",
        "mail.example.org",
    )
    # RFC 7208 §2.4: a null reverse path is checked as postmaster@HELO.
    bounce = await spf.check_mail_from(FORGER_IP, "", "mail.example.org")
    assert (bounce.outcome, bounce.sender) == (SpfOutcome.FAIL, "postmaster@mail.example.org")


async def test_malformed_domain_is_none(spf: SpfChecker) -> None:
    result = await spf.check_mail_from(ORG_IP, "a@localhost", "client.example")
    assert result.outcome is SpfOutcome.NONE  # RFC 7208 §4.3


async def test_dns_timeout_is_temperror() -> None:
    with silent_port() as port:
        checker = SpfChecker(AuthResolver([f"127.0.0.1:{port}"], timeout=0.3))
        try:
            result = await checker.check_mail_from(ORG_IP, "a@example.org", "client.example")
        finally:
            checker.close()
    assert result.outcome is SpfOutcome.TEMPERROR
    assert result.sentence.startswith("the SPF record of example.org could not be read now")


async def test_a_failing_resolver_gives_temperror_not_an_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        async def txt(self, name: str) -> list[bytes]:
            raise RuntimeError("a bug in a resolver")

    checker = SpfChecker(Broken())  # type: ignore[arg-type]
    try:
        result = await checker.check_mail_from(ORG_IP, "a@example.org", "client.example")
    finally:
        checker.close()
    assert result.outcome is SpfOutcome.TEMPERROR
    assert "RuntimeError" in result.sentence
    assert "SPF lookup TXT example.org failed" in caplog.text
