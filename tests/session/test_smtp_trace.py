"""The pure parts of local delivery (courriel.mail.delivery) and the relay-less queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from courriel.mail import delivery
from courriel.mail.delivery import TraceInfo
from courriel.queue.outbound import Envelope, QueueError, RelayDisabled

NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("esmtp", "tls", "auth", "expected"),
    [
        (False, None, False, "SMTP"),
        (True, None, False, "ESMTP"),
        (True, "TLSv1.3", False, "ESMTPS"),
        (True, None, True, "ESMTPA"),
        (True, "TLSv1.3", True, "ESMTPSA"),
    ],
)
def test_protocol_names_follow_rfc_3848(
    esmtp: bool, tls: str | None, auth: bool, expected: str
) -> None:
    info = TraceInfo("h", "192.0.2.1", "mx.test", esmtp, tls_version=tls, authenticated=auth)
    assert delivery.protocol_name(info) == expected


def test_received_names_one_recipient_and_tls() -> None:
    info = TraceInfo(
        "client.example", "192.0.2.1", "mx.test", True, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256,
        queue_id="ABC",
    )  # fmt: skip
    field = delivery.received_field(info, ["alice@example.test"], NOW)
    assert field == (
        b"Received: from client.example ([192.0.2.1])\r\n"
        b"\tby mx.test (courriel) with ESMTPS id ABC\r\n"
        b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits))\r\n"
        b"\tfor <alice@example.test>; Fri, 27 Nov 2026 10:00:00 +0000\r\n"
    )


def test_received_hides_recipients_when_there_are_several() -> None:
    info = TraceInfo("client.example", "192.0.2.1", "mx.test", True)
    field = delivery.received_field(info, ["a@example.test", "b@example.test"], NOW)
    assert b"for <" not in field
    assert field.endswith(b"with ESMTP;\r\n\tFri, 27 Nov 2026 10:00:00 +0000\r\n")


def test_received_dates_follow_the_clock_and_the_zone() -> None:
    """The date string is reused within one second only, and never across time zones."""
    info = TraceInfo("client.example", "192.0.2.1", "mx.test", True)
    paris = timezone(timedelta(hours=1))
    dates = [
        (NOW.replace(microsecond=900000), b"Fri, 27 Nov 2026 10:00:00 +0000"),
        (NOW + timedelta(seconds=1), b"Fri, 27 Nov 2026 10:00:01 +0000"),
        ((NOW + timedelta(seconds=1)).astimezone(paris), b"Fri, 27 Nov 2026 11:00:01 +0100"),
        (NOW + timedelta(seconds=1), b"Fri, 27 Nov 2026 10:00:01 +0000"),
    ]
    for when, text in dates:
        field = delivery.received_field(info, ["a@example.test"], when)
        assert field.endswith(b"; " + text + b"\r\n")


def test_a_hostile_helo_cannot_forge_trace_lines() -> None:
    info = TraceInfo("x)\r\nReceived: from forged (", "192.0.2.1", "mx.test", True)
    field = delivery.received_field(info, [], NOW)
    assert field.startswith(b"Received: from x???Received:?from?forged?? ([192.0.2.1])\r\n")
    assert field.count(b"\r\n") == 3  # the three lines courriel writes, nothing more


@pytest.mark.parametrize(
    ("raw", "adds_date", "adds_id"),
    [
        (b"From: a@example.test\r\n\r\nbody\r\n", True, True),
        (b"From: a@example.test\r\nDATE: x\r\n\r\nbody\r\n", False, True),
        (b"From: a@example.test\r\nMessage-Id: <x@y>\r\n\r\nDate: in the body\r\n", True, False),
        (b"\r\nbody only\r\n", True, True),
    ],
)
def test_submission_fixups_add_only_what_is_missing(
    raw: bytes, adds_date: bool, adds_id: bool
) -> None:
    fixed = delivery.submission_fixups(raw, "mx.test", NOW)
    assert fixed.endswith(raw)
    added = fixed[: len(fixed) - len(raw)]
    assert (b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n" in added) == adds_date
    assert (b"Message-ID: <" in added) == adds_id


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"From: Alice <alice@example.test>", ["alice@example.test"]),
        (b'From: a@example.test, "B, b" <b@example.test>', ["a@example.test", "b@example.test"]),
        (b"From: Team: a@example.test;", ["a@example.test"]),
        ("From: Jörg <jörg@example.test>".encode(), ["jörg@example.test"]),
        (b"Subject: no from", []),
    ],
)
def test_from_addresses(header: bytes, expected: list[str]) -> None:
    assert delivery.from_addresses(header + b"\r\n\r\nFrom: body@example.test\r\n") == expected


async def test_relay_disabled_refuses_at_rcpt_and_never_queues() -> None:
    queue = RelayDisabled()
    refusal = await queue.check("friend@example.net")
    assert refusal is not None and refusal.temporary
    assert (refusal.enhanced, refusal.text) == (
        "4.4.0",
        "relaying to other domains is not enabled on this server yet",
    )
    with pytest.raises(QueueError):
        await queue.enqueue(Envelope("a@example.test", ()), b"Subject: x\r\n\r\n")
