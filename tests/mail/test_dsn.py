"""Delivery status notifications (courriel.mail.dsn), read back with Python's email package."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message

import pytest

from courriel.mail.dsn import Action, Notice, RecipientNotice, build, explain

T0 = 1_780_000_000.0
ORIGINAL = (
    b"From: Alice <alice@example.test>\r\nTo: bob@example.net\r\nSubject: lunch?\r\n"
    b"Message-ID: <m1@example.test>\r\n\r\nShall we have lunch?\r\n"
)
REFUSED = RecipientNotice(
    "bob@example.net",
    Action.FAILED,
    "5.1.1",
    "5.1.1 <bob@example.net>: Recipient address rejected: User unknown",
    code=550,
    remote_host="mx.example.net [192.0.2.7]",
    orcpt="rfc822;Bob@Example.net",
    last_attempt=T0 + 5,
)


def notice(*recipients: RecipientNotice, ret: str | None = None, smtputf8: bool = False) -> Notice:
    return Notice(
        hostname="mail.example.test",
        sender="alice@example.test",
        recipients=recipients,
        original=ORIGINAL,
        arrival=T0,
        queue_id="ABC123",
        envid="env-42",
        ret=ret,
        smtputf8=smtputf8,
    )


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects, msg.defects
    return msg


def parts(msg: EmailMessage) -> list[Message]:
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    found = list(msg.iter_parts())
    assert len(found) == 3
    return found


def status_blocks(part: Message) -> list[Message]:
    blocks = part.get_payload()
    assert isinstance(blocks, list)
    return blocks


def test_a_refusal_quotes_the_remote_reply_and_returns_the_message() -> None:
    raw = build(notice(REFUSED), T0 + 10)
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends only
    msg = parse(raw)
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@mail.example.test>"
    assert msg["To"].addresses[0].addr_spec == "alice@example.test"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-replied"
    text, status, original = parts(msg)
    words = text.get_content()  # type: ignore[attr-defined]
    flat = " ".join(words.split())
    assert "the recipient's mail server (mx.example.net [192.0.2.7]) refused the message" in flat
    assert "    550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown" in words
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_rcpt = status_blocks(status)
    assert per_message["Reporting-MTA"] == "dns; mail.example.test"
    assert per_message["Original-Envelope-Id"] == "env-42"
    assert per_rcpt["Final-Recipient"] == "rfc822; bob@example.net"
    assert per_rcpt["Original-Recipient"] == "rfc822; Bob@Example.net"
    assert (per_rcpt["Action"], per_rcpt["Status"]) == ("failed", "5.1.1")
    assert per_rcpt["Remote-MTA"] == "dns; mx.example.net"
    assert per_rcpt["Diagnostic-Code"].startswith("smtp; 550 5.1.1 <bob@example.net>")
    assert per_rcpt["Last-Attempt-Date"] is not None
    assert original.get_content_type() == "message/rfc822"
    inner = original.get_payload()[0]  # type: ignore[index]
    assert inner["Subject"] == "lunch?"
    assert inner.get_payload().strip() == "Shall we have lunch?"


@pytest.mark.parametrize(
    ("recipient", "words"),
    [
        (
            RecipientNotice(
                "x@nowhere.example", Action.FAILED, "5.1.2", "host not found: nowhere.example"
            ),
            "<x@nowhere.example>: the message could not be delivered: host not found: "
            "nowhere.example",
        ),
        (
            RecipientNotice(
                "x@strict.example",
                Action.FAILED,
                "5.7.10",
                "the domain's MTA-STS policy requires TLS and mx.strict.example offered none",
            ),
            "MTA-STS policy requires TLS and mx.strict.example offered none",
        ),
        (
            RecipientNotice(
                "x@down.example",
                Action.FAILED,
                "5.4.7",
                "connection refused by mx.down.example",
                expired_after=5 * 86400,
            ),
            "courriel kept trying for 5 days and gave up. The last attempt failed: "
            "connection refused",
        ),
        (
            RecipientNotice(
                "x@slow.example",
                Action.DELAYED,
                "4.4.1",
                "4.7.1 greylisted, come back later",
                code=451,
                remote_host="mx.slow.example [192.0.2.9]",
                retry_until=T0 + 5 * 86400,
            ),
            "not delivered yet. courriel keeps trying until",
        ),
        (
            RecipientNotice(
                "x@ok.example", Action.DELIVERED, "2.0.0", remote_host="mx.ok.example [192.0.2.1]"
            ),
            "<x@ok.example>: delivered to mx.ok.example [192.0.2.1].",
        ),
    ],
)
def test_each_case_in_plain_words(recipient: RecipientNotice, words: str) -> None:
    flat = " ".join(explain(recipient).split())
    assert words in flat
    raw = build(notice(recipient), T0)
    msg = parse(raw)
    text, status, returned = parts(msg)
    assert words.split(":")[0] in " ".join(text.get_content().split())  # type: ignore[attr-defined]
    block = status_blocks(status)[1]
    assert block["Action"] == recipient.action.value
    assert block["Status"] == recipient.status
    assert (block["Diagnostic-Code"] is None) == (recipient.code is None)
    assert (block["Will-Retry-Until"] is None) == (recipient.action is not Action.DELAYED)
    # Failures return the message; delays and successes only its header (RFC 3461 §4.3).
    whole = recipient.action is Action.FAILED
    assert returned.get_content_type() == ("message/rfc822" if whole else "text/rfc822-headers")


@pytest.mark.parametrize(
    ("ret", "action", "kind"),
    [
        ("HDRS", Action.FAILED, "text/rfc822-headers"),
        ("FULL", Action.FAILED, "message/rfc822"),
        ("FULL", Action.DELAYED, "message/rfc822"),
        (None, Action.DELIVERED, "text/rfc822-headers"),
    ],
)
def test_ret_chooses_what_comes_back(ret: str | None, action: Action, kind: str) -> None:
    r = RecipientNotice("b@example.net", action, "2.0.0" if action is Action.DELIVERED else "5.0.0")
    _, _, returned = parts(parse(build(notice(r, ret=ret), T0)))
    assert returned.get_content_type() == kind
    if kind == "text/rfc822-headers":
        body = returned.get_payload()
        assert isinstance(body, str)
        assert "Subject: lunch?" in body and "Shall we" not in body


def test_several_recipients_one_notice_in_order() -> None:
    other = RecipientNotice("carol@example.org", Action.DELAYED, "4.4.1", "timed out")
    msg = parse(build(notice(REFUSED, other), T0))
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    _, status, _ = parts(msg)
    blocks = status_blocks(status)
    assert [b["Final-Recipient"] for b in blocks[1:]] == [
        "rfc822; bob@example.net",
        "rfc822; carol@example.org",
    ]


def test_smtputf8_messages_use_the_global_types() -> None:
    r = RecipientNotice("jürgen@exämple.de", Action.FAILED, "5.1.1", "no such user", code=550)
    raw = build(notice(r, smtputf8=True), T0)
    assert b"Content-Type: message/global-delivery-status" in raw
    assert "Final-Recipient: utf-8; jürgen@exämple.de".encode() in raw  # RFC 6533 §3
    assert b"Content-Type: message/global\r\n" in raw


def test_a_reply_cannot_add_fields_to_the_report() -> None:
    evil = RecipientNotice(
        "b@example.net", Action.FAILED, "5.0.0", "no\r\nAction: delivered", code=550
    )
    _, status, _ = parts(parse(build(notice(evil), T0)))
    block = status_blocks(status)[1]
    assert block.get_all("Action") == ["failed"]
