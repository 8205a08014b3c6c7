"""Port 25 with ``[junk]`` on, over real loopback sockets: refusals that say why (at RCPT,
postmaster excepted), greylisting, early talkers, and each recipient's copy scored and filed in
INBOX or Junk."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from courriel.mail.message import parse
from courriel.testing.dns import DnsServer, Zone, sbin_program
from courriel.testing.missing import report_missing
from courriel.testing.smtp import SPAM_FIELDS, TRACE, Server, body_after_trace, greet, smtp_server
from courriel.testing.transcript import HOSTNAME, open_client


def junk(**settings: Any) -> dict[str, dict[str, Any]]:
    return {"junk": settings}


async def messages(server: Server, address: str, mailbox: str) -> list[bytes]:
    user = await server.store.get_user(address)
    assert user is not None
    box = await server.store.get_mailbox(user.id, mailbox)
    if box is None:
        return []
    return [
        await server.store.read_message(box.id, m.uid)
        for m in await server.store.list_messages(box.id)
    ]


async def send(server: Server, sender: str, recipients: list[str], raw: bytes) -> tuple[int, str]:
    c = await server.connect("smtp")
    await greet(c, "mx.sender.test")
    await c.envelope(sender, *recipients)
    await c.expect("DATA", 354)
    await c.send(raw + b".\r\n")
    reply = await c.reply()
    await c.close()
    return reply


@pytest.mark.parametrize(
    ("helo", "expected"),
    [
        ("localhost", "550 5.5.2 HELO localhost: not a fully qualified domain name"),
        ("127.0.0.1", "550 5.5.2 HELO 127.0.0.1: an address must be written in brackets"),
        (HOSTNAME, f"550 5.7.1 HELO {HOSTNAME}: that is this server's own name"),
    ],
)
async def test_a_bad_helo_is_refused_at_mail_with_the_reason(
    tmp_path: Path, helo: str, expected: str
) -> None:
    async with smtp_server(tmp_path, sections=junk(helo_checks=True)) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c, helo)
        await c.expect("MAIL FROM:<bob@example.net>", 250)
        code, text = await c.command("RCPT TO:<alice@example.test>")
        assert f"{code} {text}".startswith(expected)
        await c.expect("RSET", 250)
        # A client that says its name properly is served on the same connection.
        await c.expect("EHLO [127.0.0.1]", 250)
        await c.envelope("bob@example.net", "alice@example.test")
        await c.close()


@pytest.fixture
def blocklist(request: pytest.FixtureRequest) -> Iterator[str]:
    program = sbin_program("dnsmasq")
    if program is None:
        report_missing("program 'dnsmasq'", request.node.nodeid)
    assert program is not None
    zone = Zone()
    zone.a["1.0.0.127.bl.test"] = "127.0.0.2"
    zone.add_txt("1.0.0.127.bl.test", "127.0.0.1 is listed here for the test")
    with DnsServer(program, zone) as dns:
        yield f"{dns.address}:{dns.port}"


async def test_a_blocklisted_client_hears_the_list_and_its_reason(
    tmp_path: Path, blocklist: str
) -> None:
    sections = {
        "dns": {"nameservers": (blocklist,)},
        "junk": {"dnsbl_zones": ("bl.test",), "dns_timeout_seconds": 2.0},
    }
    async with smtp_server(tmp_path, sections=sections) as server:
        await server.add_user("alice@example.test")
        await server.add_user("postmaster@example.test")
        c = await server.connect("smtp")
        await greet(c, "mx.sender.test")
        await c.expect("MAIL FROM:<bob@example.net>", 250)
        code, text = await c.command("RCPT TO:<alice@example.test>")
        assert code == 554
        assert text == (
            "5.7.1 client 127.0.0.1 is listed by bl.test (127.0.0.1 is listed here for the test)"
        )
        # RFC 5321 §4.5.1: the listed sender can still write to postmaster.
        await c.expect("RCPT TO:<Postmaster@example.test>", 250)
        await c.expect("DATA", 354)
        await c.send(b"Subject: please delist us\r\n\r\nWe are not spammers.\r\n.\r\n")
        assert (await c.reply())[0] == 250
        assert len(await server.inbox("postmaster@example.test")) == 1
        await c.close()
        # A list that does not list the client refuses nothing.
        sections["junk"]["dnsbl_zones"] = ("other.test",)
    async with smtp_server(tmp_path / "2", sections=sections) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c, "mx.sender.test")
        await c.envelope("bob@example.net", "alice@example.test")
        await c.close()


async def test_greylisting_defers_unknown_triples_until_the_delay_passed(tmp_path: Path) -> None:
    async with smtp_server(
        tmp_path, sections=junk(greylist=True, greylist_delay_seconds=0.5)
    ) as server:
        await server.add_user("alice@example.test")
        await server.add_user("carol@example.test")
        c = await server.connect("smtp")
        await greet(c, "mx.sender.test")
        await c.expect("MAIL FROM:<bob@example.net>", 250)
        code, text = await c.command("RCPT TO:<alice@example.test>")
        assert (code, text) == (451, "4.7.1 greylisted: please try again in 1 seconds")
        assert (await c.command("RCPT TO:<nobody@example.test>"))[0] == 550  # unknown: as ever
        await asyncio.sleep(0.6)
        await c.expect("RCPT TO:<alice@example.test>", 250)  # the retry passes
        assert (await c.command("RCPT TO:<carol@example.test>"))[0] == 451  # another triple
        await c.expect("RSET", 250)
        await c.expect("MAIL FROM:<bob@example.net>", 250)
        await c.expect("RCPT TO:<alice@example.test>", 250)  # and keeps passing
        await c.close()


async def test_an_early_talker_is_refused_and_a_patient_client_greeted(tmp_path: Path) -> None:
    async with smtp_server(tmp_path, sections=junk(greeting_delay_seconds=0.4)) as server:
        reader, writer = await open_client(server.running, "smtp", None)
        writer.write(b"EHLO impatient.test\r\n")
        line = await asyncio.wait_for(reader.readline(), 5)
        assert line.startswith(b"554 5.5.1 you sent commands before the greeting")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # and the connection is closed
        writer.close()

        started = time.monotonic()
        c = await server.connect("smtp")
        await greet(c, "mx.sender.test")  # 220, then EHLO works
        assert time.monotonic() - started >= 0.35
        await c.close()


def junky(subject: str, *, future: bool = False, message_id: bool = True) -> bytes:
    when = datetime.now(UTC) + timedelta(days=40 if future else 0)
    head = '"support@bank.test" <offers@promo.test>' + "\r\n"
    lines = [
        f"From: {head.strip()}",
        "To: alice@example.test",
        f"Subject: {subject}",
        f"Date: {format_datetime(when)}",
        "X-Spam-Status: No, score=-99 (forged by the sender)",
        "Content-Type: text/html",
    ]
    if message_id:
        lines.append("Message-ID: <m1@promo.test>")
    return ("\r\n".join(lines) + "\r\n\r\n<p>Claim your prize</p>\r\n").encode()


async def test_each_recipient_gets_a_scored_copy_in_inbox_or_junk(tmp_path: Path) -> None:
    async with smtp_server(tmp_path, sections=junk(scoring=True)) as server:
        await server.add_user("alice@example.test")
        carol = await server.add_user("carol@example.test")
        await server.store.set_junk_threshold(carol, 20.0)  # carol's own threshold: high
        # HTML_ONLY 1.0, SUBJECT_ALL_CAPS 1.5, FROM_NAME_ADDRESS 2.0, DATE_IN_FUTURE 1.5
        raw = junky("CLAIM YOUR PRIZE TODAY", future=True)
        code, _ = await send(
            server, "offers@promo.test", ["alice@example.test", "carol@example.test"], raw
        )
        assert code == 250
        [in_junk] = await messages(server, "alice@example.test", "Junk")
        assert await messages(server, "alice@example.test", "INBOX") == []
        [in_inbox] = await messages(server, "carol@example.test", "INBOX")
        # Each copy's stored parse is its own (the message's one parse, moved past its fields).
        for address, mailbox in (("alice@example.test", "Junk"), ("carol@example.test", "INBOX")):
            user = await server.store.get_user(address)
            assert user is not None
            box = await server.store.get_mailbox(user.id, mailbox)
            assert box is not None
            [stored] = await server.store.list_messages(box.id)
            metas = await server.store.get_meta(box.id, [stored.uid])
            stored_raw = await server.store.read_message(box.id, stored.uid)
            assert metas[stored.uid] == parse(stored_raw).to_bytes()
    names, rest = body_after_trace(in_junk, (*TRACE, *SPAM_FIELDS))
    assert names == [
        b"Return-Path",
        b"Received",
        b"X-Spam-Score",
        b"X-Spam-Status",
        b"X-Spam-Report",
    ]
    head = in_junk.split(b"\r\n\r\n")[0].decode()
    assert "X-Spam-Score: 6.0" in head
    assert "X-Spam-Status: Yes, score=6.0 required=5.0 tests=HTML_ONLY(+1.0)" in head
    assert "the From name shows support@bank.test but the sender is" in " ".join(head.split())
    assert "forged by the sender" not in head  # their X-Spam-Status is gone
    assert rest.startswith(b"From: ")
    carol_head = in_inbox.split(b"\r\n\r\n")[0].decode()
    assert "X-Spam-Status: No, score=6.0 required=20.0" in carol_head


async def test_copies_kept_out_of_junk_go_through_sieve_which_sees_the_score(
    tmp_path: Path,
) -> None:
    """The scores come first: a copy scored as junk goes to Junk; the others reach their
    recipient's Sieve script with their own X-Spam fields, which the script may test."""
    script = (
        'require "fileinto";\nif header :contains "X-Spam-Status" "No," { fileinto "Scored"; }\n'
    )
    async with smtp_server(tmp_path, sections=junk(scoring=True)) as server:
        alice = await server.add_user("alice@example.test")
        carol = await server.add_user("carol@example.test")
        await server.store.set_junk_threshold(carol, 20.0)
        for user in (alice, carol):
            await server.store.create_mailbox(user, "Scored")
            await server.store.put_sieve_script(user, "sort", script)
            await server.store.activate_sieve_script(user, "sort")
        raw = junky("CLAIM YOUR PRIZE TODAY", future=True)
        code, _ = await send(
            server, "offers@promo.test", ["alice@example.test", "carol@example.test"], raw
        )
        assert code == 250
        assert len(await messages(server, "alice@example.test", "Junk")) == 1
        assert await messages(server, "alice@example.test", "Scored") == []
        [filed] = await messages(server, "carol@example.test", "Scored")
        assert await messages(server, "carol@example.test", "INBOX") == []
    assert b"X-Spam-Status: No, score=6.0 required=20.0" in filed
