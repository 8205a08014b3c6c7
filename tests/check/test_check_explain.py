"""The rules that pick an explanation, on replies as real servers word them (a table)."""

from __future__ import annotations

import pytest

from courriel.check import explain
from courriel.check.discovery import parse_autoconfig, parse_autodiscover
from courriel.check.services import Target
from courriel.web import autoconfig, autodiscover
from courriel.web.settings import Offer, Server

SMTP_REPLIES = [
    # (code, text, explanation)
    (550, "5.7.1 Relay access denied", explain.RELAY_DENIED),
    (554, "5.7.1 relay access denied: example.net is not one of our domains", explain.RELAY_DENIED),
    (550, "5.7.1 SPF fail: 192.0.2.1 is not allowed to send for example.org", explain.SPF_FAILED),
    (550, "5.7.20 No passing DKIM signature found", explain.DKIM_FAILED),
    (
        550,
        "5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC "
        "policy. SPF and DKIM did not pass.",
        explain.DMARC_FAILED,
    ),
    (550, "5.7.1 message refused: DMARC policy of example.org is reject", explain.DMARC_FAILED),
    (550, "5.7.1 you may only send as addresses you own", explain.SENDER_NOT_OWNED),
    (
        550,
        "5.7.1 Service unavailable; client host blocked using a block list",
        explain.POLICY_REFUSED,
    ),
    (552, "5.2.2 Mailbox full", explain.MAILBOX_FULL),
    (452, "4.2.2 The email account that you tried to reach is over quota", explain.MAILBOX_FULL),
    (552, "5.3.4 message too big: the limit is 1000 octets", explain.MESSAGE_TOO_BIG),
    (
        550,
        "5.1.1 <x@example.org>: Recipient address rejected: User unknown",
        explain.RECIPIENT_UNKNOWN,
    ),
    (451, "4.7.1 Greylisted, please try again later", explain.TEMPORARY_REFUSAL),
    (554, "5.6.0 mangled message", explain.SEND_REFUSED),
]


@pytest.mark.parametrize(("code", "text", "expected"), SMTP_REPLIES)
def test_smtp_replies(code: int, text: str, expected: explain.Explanation) -> None:
    assert explain.from_smtp_reply(code, text) is expected


LOGIN_REPLIES = [
    ("[AUTHENTICATIONFAILED] Authentication failed", explain.LOGIN_REFUSED),  # courriel, Dovecot
    ("-ERR [AUTH] Authentication failed", explain.LOGIN_REFUSED),
    ("535 5.7.8 authentication failed: check the user name and password", explain.LOGIN_REFUSED),
    ("[UNAVAILABLE] too many failed logins", explain.LOCKED_OUT),
    ("454 4.7.0 too many failed logins: wait a few minutes", explain.LOCKED_OUT),
    ("-ERR [SYS/TEMP] too many failed logins from your address", explain.LOCKED_OUT),
    ("454 4.7.0 cannot check passwords right now: try again later", explain.LOGIN_TEMPORARY),
    ("-ERR [IN-USE] maildrop is locked by another session", explain.MAILBOX_IN_USE),
    ("-ERR no such user here", explain.UNKNOWN_USER),
    ("NO invalid password", explain.WRONG_PASSWORD),
    ("AUTH not offered", explain.NO_LOGIN_METHOD),
]


@pytest.mark.parametrize(("reply", "expected"), LOGIN_REPLIES)
def test_login_replies(reply: str, expected: explain.Explanation) -> None:
    assert explain.from_login_reply(reply) is expected


def test_every_explanation_has_its_own_key_and_sentences() -> None:
    found = [v for v in vars(explain).values() if isinstance(v, explain.Explanation)]
    assert len({e.key for e in found}) == len(found)
    assert len({e.cause for e in found}) == len(found)
    for e in found:
        assert e.cause.endswith(".") and e.fix.endswith("."), e.key


OFFER = Offer(
    "mail.example.org",
    (
        Server("imap", True, 993, True),
        Server("imap", True, 143, False),
        Server("pop3", True, 995, True),
        Server("smtp", False, 465, True),
        Server("smtp", False, 587, False),
    ),
    "https://mail.example.org",
)
EXPECTED = [
    ("imaps", 993),
    ("imap", 143),
    ("pop3s", 995),
    ("submissions", 465),
    ("submission", 587),
]


def test_reads_courriels_autoconfig_document() -> None:
    doc = autoconfig.document("example.org", OFFER)
    targets = parse_autoconfig(doc, "a@example.org", "autoconfig test")
    assert [(t.service, t.port) for t in targets] == EXPECTED
    assert {t.host for t in targets} == {"mail.example.org"}


def test_reads_courriels_autodiscover_answer() -> None:
    doc = autodiscover.pox_response("a@example.org", OFFER)
    targets = parse_autodiscover(doc, "autodiscover test")
    assert [(t.service, t.port) for t in targets] == EXPECTED
    assert all(isinstance(t, Target) and t.required for t in targets)


def test_refuses_documents_with_entities() -> None:
    from courriel.check.discovery import FetchError

    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><clientConfig>&a;</clientConfig>'
    with pytest.raises(FetchError, match="document type declarations are not accepted"):
        parse_autoconfig(bomb, "a@example.org", "x")
