"""BURL (RFC 4468) on submission: the message is fetched from the store by its URLAUTH URL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from courriel.session import urlauth
from courriel.store.base import NewMessage, User
from courriel.testing.smtp import Server, body_after_trace, greet, smtp_server

DRAFT = (
    b"From: alice@example.test\r\n"
    b"To: bob@example.test\r\n"
    b"Subject: from the drafts\r\n"
    b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <draft@example.test>\r\n"
    b"\r\n"
    b"Sent without uploading it again.\r\n"
)
BASE = "imap://alice%40example.test@mail.example.test/Drafts/;uid=1"


async def with_a_draft(server: Server) -> User:
    """Alice, with DRAFT as UID 1 of her Drafts, and Bob."""
    alice_id = await server.add_user("alice@example.test")
    await server.add_user("bob@example.test")
    drafts = await server.store.get_mailbox(alice_id, "Drafts")
    alice = await server.store.get_user_by_id(alice_id)
    assert drafts is not None and alice is not None
    await server.store.append([(drafts.id, NewMessage(DRAFT, datetime.now(UTC)))])
    return alice


async def test_burl_sends_a_stored_draft(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        store = server.store
        alice = await with_a_draft(server)
        signed = await urlauth.generate(
            store, alice, f"{BASE};urlauth=submit+alice%40example.test", "INTERNAL"
        )
        c = await server.connect("submissions")
        await greet(c)
        ehlo = await c.expect("EHLO again.example", 250)
        assert "BURL imap" in ehlo.split("\n")  # RFC 4468 §3
        assert (await c.command(f"BURL {signed} LAST"))[0] == 503  # no transaction yet
        await c.login("alice@example.test")
        await c.envelope("alice@example.test", "bob@example.test")
        # A forged URL resolves to nothing: 554 5.6.6, and the transaction is over.
        forged = signed[:-6] + "000000"
        code, text = await c.command(f"BURL {forged} LAST")
        assert (code, text[:5]) == (554, "5.6.6")
        assert (await c.command("RCPT TO:<bob@example.test>"))[0] == 503
        # The real one: the stored draft, sent as it is (RFC 4468 §3).
        await c.envelope("alice@example.test", "bob@example.test")
        code, _ = await c.command(f"BURL {signed} LAST")
        assert code == 250
        # Mixed with BDAT: a new first line, then the draft's body part by URL.
        await c.envelope("alice@example.test", "bob@example.test")
        head = b"X-Note: mixed\r\n"
        await c.send(b"BDAT %d\r\n" % len(head) + head)
        assert (await c.reply())[0] == 250
        assert (await c.command(f"BURL {signed} LAST"))[0] == 250
        await c.close()
        first, second = await server.inbox("bob@example.test")
    assert first.endswith(DRAFT) and body_after_trace(first)[1].endswith(DRAFT)
    assert b"X-Note: mixed\r\nFrom: alice@example.test\r\n" in second


async def test_burl_only_on_submission_and_only_for_submit_urls(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        store = server.store
        alice = await with_a_draft(server)
        mx = await server.connect("smtp")
        await greet(mx)
        assert "BURL" not in await mx.expect("EHLO relay.example", 250)
        await mx.envelope("carol@example.net", "bob@example.test")
        assert (await mx.command(f"BURL {BASE};urlauth=anonymous LAST"))[0] == 502
        await mx.close()
        # user+alice is for Alice's IMAP sessions, not for submission (RFC 4467 §3).
        for_imap = await urlauth.generate(
            store, alice, f"{BASE};urlauth=user+alice%40example.test", "INTERNAL"
        )
        c = await server.connect("submissions")
        await greet(c)
        await c.login("alice@example.test")
        await c.envelope("alice@example.test", "bob@example.test")
        assert (await c.command(f"BURL {for_imap} LAST"))[0] == 554
        assert (await c.command("BURL"))[0] == 501
        await c.close()
        assert await server.inbox("bob@example.test") == []
