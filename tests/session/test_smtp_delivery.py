"""Delivery through the SMTP listeners, checked in the store: trace headers, the bytes stored,
one copy per user, submission fix-ups, quotas and size limits."""

from __future__ import annotations

import re
from pathlib import Path

from courriel import admin
from courriel.testing.smtp import body_after_trace, greet, smtp_server

MESSAGE = (
    b"From: Bob <bob@example.net>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: trace test\r\n"
    b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <trace-test@example.net>\r\n"
    b"\r\n"
    b"..a line that starts with a dot\r\n"
    b"last line\r\n"
)


def stuffed(message: bytes) -> bytes:
    return message.replace(b"\r\n.", b"\r\n..") + b".\r\n"


async def test_mx_delivery_stores_the_bytes_after_return_path_and_received(
    tmp_path: Path,
) -> None:
    async with smtp_server(tmp_path) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c, "relay.example.net")
        await c.envelope("bob@example.net", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(stuffed(MESSAGE))
        code, text = await c.reply()
        assert code == 250
        queue_id = text.rsplit(" ", 1)[1]
        await c.close()
        [stored] = await server.inbox("alice@example.test")
    names, rest = body_after_trace(stored)
    assert names == [b"Return-Path", b"Received"]
    assert rest == MESSAGE  # the client's bytes, dot-unstuffed, otherwise identical
    assert stored.startswith(b"Return-Path: <bob@example.net>\r\nReceived: from relay.example.net")
    received = stored.split(b"\r\n\r\n")[0].decode()
    assert f"by mail.example.test (courriel) with ESMTP id {queue_id}" in received
    assert "for <alice@example.test>;" in received  # RFC 5321 §4.4: one recipient
    assert "[127.0.0.1]" in received


async def test_submission_received_says_esmtpsa_with_tls_and_adds_date_and_message_id(
    tmp_path: Path,
) -> None:
    raw = b"From: alice@example.test\r\nSubject: bare\r\n\r\nNo Date, no Message-ID.\r\n"
    async with smtp_server(tmp_path) as server:
        await server.add_user("alice@example.test")
        await server.add_user("bob@example.test")
        c = await server.connect("submissions")
        await greet(c)
        await c.login("alice@example.test")
        await c.envelope("alice@example.test", "bob@example.test", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(stuffed(raw))
        assert (await c.reply())[0] == 250
        await c.close()
        [for_bob] = await server.inbox("bob@example.test")
        [for_alice] = await server.inbox("alice@example.test")
    assert for_bob == for_alice  # one message, stored once for both
    header = for_bob.split(b"\r\n\r\n")[0].decode()
    assert re.search(r"with ESMTPSA id [0-9A-F]{12}\r\n\t\(using TLSv1\.[23] with cipher ", header)
    assert "for <" not in header  # two recipients: "for" would disclose them to each other
    assert re.search(r"^Date: \w{3}, \d{1,2} \w{3} \d{4} ", header, re.M)  # RFC 6409 §8.3
    assert re.search(r"^Message-ID: <[0-9a-f]{32}@mail\.example\.test>\r?$", header, re.M)
    assert for_bob.endswith(raw)


async def test_a_user_reached_twice_gets_one_copy(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        await server.add_user("alice@example.test")
        await admin.add_alias(server.store, "sales@example.test", "alice@example.test")
        c = await server.connect("smtp")
        await greet(c)
        await c.envelope(
            "bob@example.net", "alice@example.test", "sales@example.test", "alice+x@example.test"
        )
        await c.expect("DATA", 354)
        await c.send(stuffed(MESSAGE))
        assert (await c.reply())[0] == 250
        await c.close()
        assert len(await server.inbox("alice@example.test")) == 1


async def test_message_over_the_size_limit_is_refused_and_not_stored(tmp_path: Path) -> None:
    async with smtp_server(tmp_path, limits={"max_message_bytes": 2000}) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c)
        await c.envelope("bob@example.net", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(stuffed(MESSAGE + b"x" * 3000 + b"\r\n"))
        code, text = await c.reply()
        assert (code, text) == (552, "5.3.4 message too big: the limit is 2000 octets")
        # The session goes on; a message within the limit is accepted.
        await c.envelope("bob@example.net", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(stuffed(MESSAGE))
        assert (await c.reply())[0] == 250
        await c.close()
        assert len(await server.inbox("alice@example.test")) == 1


async def test_quota_full_refuses_at_rcpt_and_a_too_big_message_for_all(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        await server.add_user("alice@example.test")
        await server.add_user("carol@example.test")
        await server.store.set_quota("carol@example.test", 1500)
        c = await server.connect("smtp")
        await greet(c)
        # The message alone is larger than carol's whole quota: refused for good (RFC 3463
        # 5.2.2), for all recipients (one append).
        await c.envelope("bob@example.net", "alice@example.test", "carol@example.test")
        await c.expect("DATA", 354)
        await c.send(stuffed(MESSAGE + b"y" * 2000 + b"\r\n"))
        code, text = await c.reply()
        assert code == 552 and text.startswith("5.2.2 the message is larger than a recipient's")
        assert await server.inbox("alice@example.test") == []
        assert await server.inbox("carol@example.test") == []
        # One that fits alone but not beside what carol keeps: 452 4.2.2, try again later.
        await server.store.set_quota("carol@example.test", 3000)
        await c.envelope("bob@example.net", "carol@example.test")
        await c.expect("DATA", 354)
        await c.send(stuffed(MESSAGE + b"y" * 1200 + b"\r\n"))
        assert (await c.reply())[0] == 250
        await c.envelope("bob@example.net", "alice@example.test", "carol@example.test")
        await c.expect("DATA", 354)
        await c.send(stuffed(MESSAGE + b"y" * 1200 + b"\r\n"))
        code, text = await c.reply()
        assert code == 452 and text.startswith("4.2.2 ")
        assert await server.inbox("alice@example.test") == []
        assert len(await server.inbox("carol@example.test")) == 1
        # Once carol is full, RCPT says so at once (RFC 3463 4.2.2) and alice still gets mail.
        await server.store.set_quota("carol@example.test", None)
        await c.envelope("bob@example.net", "carol@example.test")
        await c.expect("DATA", 354)
        await c.send(stuffed(MESSAGE))
        assert (await c.reply())[0] == 250
        await server.store.set_quota("carol@example.test", 100)
        await c.expect("MAIL FROM:<bob@example.net>", 250)
        code, text = await c.command("RCPT TO:<carol@example.test>")
        assert (code, text) == (452, "4.2.2 the recipient's mailbox is full: try again later")
        await c.expect("RCPT TO:<alice@example.test>", 250)
        await c.close()


async def test_declared_size_over_quota_is_refused_at_rcpt(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        await server.add_user("carol@example.test")
        await server.store.set_quota("carol@example.test", 5000)
        c = await server.connect("smtp")
        await greet(c)
        await c.expect("MAIL FROM:<bob@example.net> SIZE=9000", 250)
        code, text = await c.command("RCPT TO:<carol@example.test>")
        assert (code, text[:5]) == (552, "5.2.2")  # larger than the whole quota: never fits
        await c.expect("RSET", 250)
        await c.expect("MAIL FROM:<bob@example.net> SIZE=4000", 250)
        code, text = await c.command("RCPT TO:<carol@example.test>")
        assert (code, text[:5]) == (250, "2.1.5")
        await server.store.set_count_quota("carol@example.test", 0, None)
        code, text = await c.command("RCPT TO:<carol@example.test>")
        assert (code, text[:5]) == (452, "4.2.2")  # RFC 9208 §5.2: no message may be added
        await server.store.set_count_quota("carol@example.test", None, None)
        await c.expect("RSET", 250)
        await c.expect("MAIL FROM:<bob@example.net> SIZE=100", 250)
        await c.expect("RCPT TO:<carol@example.test>", 250)
        await c.close()
