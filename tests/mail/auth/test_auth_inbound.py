"""The inbound verdict: SPF, DKIM and DMARC combined against a real DNS server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from courriel.auth_resolver import AuthResolver
from courriel.mail.auth.dkim import sign
from courriel.mail.auth.inbound import Action, MailAuth, from_domains
from courriel.testing.dns import silent_port
from courriel.testing.mailauth import FORGER_IP, NET_IP, ORG_IP, AuthKeys, message

HOST = "mx.example.com"


@pytest.fixture
async def auth(resolver: AuthResolver) -> AsyncIterator[MailAuth]:
    checks = MailAuth(resolver, HOST)
    yield checks
    checks.close()


def unfolded(header: bytes) -> str:
    return " ".join(header.decode().split())


async def test_signed_mail_from_its_server_passes_everything(
    auth: MailAuth, keys: AuthKeys
) -> None:
    msg = message()
    v = await auth.check_inbound(
        ip=ORG_IP, helo="mail.example.org", mail_from="alice@example.org",
        message=sign(msg, keys.org) + msg,
    )  # fmt: skip
    assert (v.action, v.code) == (Action.ACCEPT, 250)
    text = unfolded(v.header)
    assert text.startswith(
        f"Authentication-Results: {HOST}; spf=pass smtp.mailfrom=alice@example.org;"
    )
    assert "spf=pass smtp.helo=mail.example.org;" in text
    assert text.count("dkim=pass header.d=example.org") == 2
    assert text.endswith("dmarc=pass header.from=example.org")


async def test_forged_mail_claiming_a_reject_domain_is_refused_with_the_reason(
    auth: MailAuth,
) -> None:
    v = await auth.check_inbound(
        ip=FORGER_IP, helo="forger.example", mail_from="alice@example.org", message=message()
    )
    assert (v.action, v.code, v.enhanced) == (Action.REJECT, 550, "5.7.1")
    assert v.text == (
        "rejected by the DMARC policy of example.org: "
        f"SPF: {FORGER_IP} is not allowed to send for example.org; DKIM: no signature"
    )
    assert "dmarc=fail" in unfolded(v.header)


async def test_altered_signed_mail_names_the_body_hash(auth: MailAuth, keys: AuthKeys) -> None:
    msg = message()
    signed = sign(msg, keys.org) + msg
    v = await auth.check_inbound(
        ip=FORGER_IP, helo="relay.example", mail_from="alice@example.org",
        message=signed.replace(b"this is a test", b"send money now"),
    )  # fmt: skip
    assert v.action is Action.REJECT
    assert v.text.endswith(
        f"SPF: {FORGER_IP} is not allowed to send for example.org; DKIM: body hash mismatch"
    )
    assert 'dkim=fail reason="body hash mismatch"' in unfolded(v.header)


async def test_quarantine_domain_goes_to_junk(auth: MailAuth) -> None:
    v = await auth.check_inbound(
        ip=FORGER_IP, helo="forger.example", mail_from="carol@example.net",
        message=message("carol@example.net"),
    )  # fmt: skip
    assert (v.action, v.code) == (Action.JUNK, 250)
    assert v.text.startswith(f"SPF: example.net does not expect mail from {FORGER_IP}")


async def test_forwarded_mail_keeps_dkim_and_passes(auth: MailAuth, keys: AuthKeys) -> None:
    msg = message("carol@example.net")
    v = await auth.check_inbound(
        ip=FORGER_IP, helo="forwarder.example", mail_from="list@forwarder.example",
        message=sign(msg, keys.net) + msg,
    )  # fmt: skip
    assert v.action is Action.ACCEPT
    assert "dmarc=pass" in unfolded(v.header)
    assert v.dmarc is not None and v.dmarc.from_domain == "example.net"


async def test_unaligned_spf_pass_is_not_enough(auth: MailAuth) -> None:
    v = await auth.check_inbound(
        ip=ORG_IP, helo="mail.example.org", mail_from="b@bounces.example.com", message=message()
    )
    assert v.spf is not None and v.spf.outcome.value == "pass"
    assert v.action is Action.REJECT
    assert "SPF: passed for bounces.example.com, which is not example.org" in v.text


async def test_malformed_dmarc_record_means_no_policy(auth: MailAuth) -> None:
    v = await auth.check_inbound(
        ip=FORGER_IP, helo="forger.example", mail_from="x@baddmarc.example",
        message=message("x@baddmarc.example"),
    )  # fmt: skip
    assert v.action is Action.ACCEPT  # RFC 7489 §6.6.3
    assert "dmarc=permerror" in unfolded(v.header)


async def test_spf_permerror_is_reported(auth: MailAuth) -> None:
    v = await auth.check_inbound(
        ip=NET_IP, helo="h.example", mail_from="x@permerror.example",
        message=message("x@permerror.example"),
    )  # fmt: skip
    assert v.action is Action.ACCEPT
    assert "spf=permerror" in unfolded(v.header)
    assert v.spf is not None and "frobnicate" in v.spf.sentence


async def test_dns_timeout_defers_never_decides(keys: AuthKeys) -> None:
    msg = message()
    with silent_port() as port:
        auth = MailAuth(AuthResolver([f"127.0.0.1:{port}"], timeout=0.3), HOST)
        try:
            v = await auth.check_inbound(
                ip=FORGER_IP, helo="forger.example", mail_from="alice@example.org", message=msg
            )
        finally:
            auth.close()
    assert (v.action, v.code, v.enhanced) == (Action.DEFER, 451, "4.7.0")
    assert "temperror" in unfolded(v.header)


async def test_forged_results_with_our_name_are_removed(auth: MailAuth, keys: AuthKeys) -> None:
    forged = f"Authentication-Results: {HOST}; dkim=pass header.d=bank.example\r\n".encode()
    msg = message()
    v = await auth.check_inbound(
        ip=ORG_IP, helo="mail.example.org", mail_from="alice@example.org",
        message=sign(msg, keys.org) + forged + msg,
    )  # fmt: skip
    assert b"bank.example" not in v.message
    assert v.action is Action.ACCEPT  # the forged field was not signed, so DKIM still passes


async def test_two_from_addresses_are_refused(auth: MailAuth) -> None:
    msg = message(extra=b"From: boss@example.net\r\n")
    v = await auth.check_inbound(
        ip=ORG_IP, helo="mail.example.org", mail_from="alice@example.org", message=msg
    )
    assert (v.action, v.code) == (Action.REJECT, 550)
    assert v.text == "the message has 2 From addresses; RFC 5322 §3.6 allows one"


def test_from_domains() -> None:
    assert from_domains(b'From: "A, B" <a@Example.ORG>\r\n\r\nFrom: x@y\r\n') == ["example.org"]
    assert from_domains(b"From: a@x.example,\r\n b@y.example\r\n\r\n") == ["x.example", "y.example"]
    assert from_domains(b"Subject: none\r\n\r\n") == []
