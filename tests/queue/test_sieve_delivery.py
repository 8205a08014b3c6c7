"""Delivery through Sieve scripts, checked in the store and the outbound queue: folders, flags,
tag folders, reject, redirect with loop protection, vacation (RFC 5230, RFC 3834)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from courriel.queue.bounce import Notifier
from courriel.queue.filtering import Filters, LocalRecipient
from courriel.queue.outbound import RelayDisabled, StoreQueue
from courriel.store.base import Store
from courriel.testing.counting import CountingStore
from courriel.testing.smtp import greet, smtp_server

T0 = datetime(2026, 12, 6, 9, 0, 0, tzinfo=UTC)
MESSAGE = (
    b"From: Bob <bob@example.net>\r\n"
    b"To: Ann <ann@example.org>\r\n"
    b"Subject: Hello there\r\n"
    b"Message-ID: <m1@example.net>\r\n"
    b"References: <m0@example.net>\r\n"
    b"\r\n"
    b"Hi Ann.\r\n"
)


async def _setup(store: Store, script: str | None = None) -> tuple[Filters, int]:
    await store.add_domain("example.org")
    ann = await store.add_user("ann@example.org", "x")
    if script is not None:
        await store.put_sieve_script(ann.id, "main", script)
        await store.activate_sieve_script(ann.id, "main")
    return Filters(store, StoreQueue(store.queue), "mail.example.org"), ann.id


async def _folder(store: Store, user_id: int, name: str) -> list[tuple[bytes, frozenset[str]]]:
    box = await store.get_mailbox(user_id, name)
    if box is None:
        return []
    infos = await store.list_messages(box.id)
    return [(await store.read_message(box.id, m.uid), m.flags) for m in infos]


def _ann(user_id: int, address: str = "ann@example.org", tag: str | None = None) -> LocalRecipient:
    return LocalRecipient(user_id, address, tag)


async def test_fileinto_with_flags_create_and_missing_folders(store: Store) -> None:
    script = """require ["fileinto", "mailbox", "imap4flags"];
    fileinto :flags "\\\\Flagged work" "Projects";
    fileinto :create "Lists/New";
    fileinto "Nowhere";
    """
    filters, ann = await _setup(store, script)
    await store.create_mailbox(ann, "Projects")
    await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    assert await _folder(store, ann, "Projects") == [(MESSAGE, frozenset({"\\Flagged", "work"}))]
    assert await _folder(store, ann, "Lists/New") == [(MESSAGE, frozenset())]
    assert "Lists/New" in await store.subscriptions(ann)  # :create subscribes, as IMAP CREATE
    # RFC 5228 §4.1: a folder that does not exist (without :create) files into INBOX
    assert await _folder(store, ann, "INBOX") == [(MESSAGE, frozenset())]
    assert await store.get_mailbox(ann, "Nowhere") is None


async def test_no_script_and_failing_scripts_keep_in_inbox(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    filters, ann = await _setup(store, 'require "include"; include "gone";')
    with caplog.at_level(logging.WARNING, "courriel.sieve"):
        await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    assert len(await _folder(store, ann, "INBOX")) == 1  # RFC 5228 §2.10.6: implicit keep
    assert "Sieve script failed, the message is kept in INBOX" in caplog.text
    assert "'gone' (personal), which is missing" in caplog.text
    await store.activate_sieve_script(ann, None)
    await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    assert len(await _folder(store, ann, "INBOX")) == 2


async def test_tag_folders(store: Store) -> None:
    filters, ann = await _setup(store)
    await store.create_mailbox(ann, "shop")
    tagged = _ann(ann, "ann+shop@example.org", "shop")
    await filters.deliver([tagged], MESSAGE, "bob@example.net", T0)
    assert len(await _folder(store, ann, "INBOX")) == 1  # off by default
    await store.set_tag_folders("ann@example.org", True)
    await filters.deliver([tagged], MESSAGE, "bob@example.net", T0)
    assert len(await _folder(store, ann, "shop")) == 1
    await filters.deliver([_ann(ann, "ann+nofolder@example.org", "nofolder")], MESSAGE, "b@x.y")
    assert len(await _folder(store, ann, "INBOX")) == 2  # a tag without its folder: INBOX
    assert await store.get_mailbox(ann, "nofolder") is None


async def test_reject_refuses_or_bounces(store: Store) -> None:
    filters, ann = await _setup(store, 'require "reject"; reject "I do not want this";')
    refused = await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0, refuse=True)
    assert refused.refused == "I do not want this"
    assert await _folder(store, ann, "INBOX") == []
    assert await store.queue.list_entries() == []
    done = await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    assert done.refused is None and done.appended == []
    [bounce] = await store.queue.list_entries()
    assert bounce.sender == ""  # RFC 5321 §4.5.5: a bounce has the null reverse-path
    assert [r.address for r in bounce.recipients] == ["bob@example.net"]
    text = (await store.queue.get(bounce.id)).message
    assert b"I do not want this" in text and b"Status: 5.7.1" in text
    await filters.deliver([_ann(ann)], MESSAGE, "", T0)  # a bounce is never bounced
    assert len(await store.queue.list_entries()) == 1


async def test_redirect_keeps_the_sender_and_stops_loops(store: Store) -> None:
    filters, ann = await _setup(store, 'redirect "carol@example.net";')
    await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    [entry] = await store.queue.list_entries()
    assert entry.sender == "bob@example.net"
    assert [r.address for r in entry.recipients] == ["carol@example.net"]
    copy = (await store.queue.get(entry.id)).message
    assert copy == b"Delivered-To: ann@example.org\r\n" + MESSAGE  # RFC 9228
    assert await _folder(store, ann, "INBOX") == []
    # The copy comes back: it is kept, not redirected again.
    await filters.deliver([_ann(ann)], copy, "bob@example.net", T0)
    assert len(await store.queue.list_entries()) == 1
    assert await _folder(store, ann, "INBOX") == [(copy, frozenset())]


VACATION = 'require "vacation"; vacation :days 7 :subject "Away" "Back on Monday.";'


async def test_vacation_answers_once_per_sender_per_period(store: Store) -> None:
    filters, ann = await _setup(store, VACATION)
    await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    [entry] = await store.queue.list_entries()
    assert entry.sender == ""  # RFC 5230 §5 / RFC 3834 §4: answered from the null sender
    assert [r.address for r in entry.recipients] == ["bob@example.net"]
    reply = (await store.queue.get(entry.id)).message.decode()
    assert "\r\nTo: <bob@example.net>\r\n" in reply
    assert reply.startswith("From: ann@example.org\r\n")
    assert "\r\nSubject: Away\r\n" in reply
    assert "\r\nAuto-Submitted: auto-replied" in reply  # RFC 3834 §5
    assert "\r\nIn-Reply-To: <m1@example.net>\r\n" in reply  # RFC 3834 §3.1.3
    assert "\r\nReferences: <m0@example.net> <m1@example.net>\r\n" in reply
    assert reply.endswith("\r\n\r\nBack on Monday.\r\n")
    await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    assert len(await store.queue.list_entries()) == 1  # once per sender per :days
    await filters.deliver([_ann(ann)], MESSAGE, "dave@example.net", T0)
    assert len(await store.queue.list_entries()) == 2  # another sender is answered
    assert len(await _folder(store, ann, "INBOX")) == 3  # and every message is kept


@pytest.mark.parametrize(
    ("header", "sender"),
    [
        (b"", ""),  # the null sender: a bounce
        (b"", "MAILER-DAEMON@example.net"),
        (b"", "owner-list@example.net"),
        (b"List-Id: <friends.example.net>\r\n", "bob@example.net"),
        (b"Precedence: bulk\r\n", "bob@example.net"),
        (b"Auto-Submitted: auto-replied\r\n", "bob@example.net"),
        (b"", "ann@example.org"),  # never oneself
    ],
)
async def test_vacation_never_answers_automatic_mail(
    store: Store, header: bytes, sender: str
) -> None:
    filters, ann = await _setup(store, VACATION)
    await filters.deliver([_ann(ann)], header + MESSAGE, sender, T0)
    assert await store.queue.list_entries() == []
    assert len(await _folder(store, ann, "INBOX")) == 1


async def test_vacation_needs_the_users_address_in_to_or_cc(store: Store) -> None:
    filters, ann = await _setup(store, VACATION)
    bcc = MESSAGE.replace(b"To: Ann <ann@example.org>", b"To: friends@example.net")
    await filters.deliver([_ann(ann)], bcc, "bob@example.net", T0)
    assert await store.queue.list_entries() == []  # RFC 5230 §4.5
    script = VACATION.replace(":days 7", ':days 7 :addresses ["friends@example.net"]')
    await store.put_sieve_script(ann, "main", script)
    await filters.deliver([_ann(ann)], bcc, "bob@example.net", T0)
    assert len(await store.queue.list_entries()) == 1


async def test_ereject_is_a_550_on_port_25(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        user_id = await server.add_user("alice@example.test")
        script = (
            'require "ereject"; if header :contains "subject" "buy" { ereject "No ads, please."; }'
        )
        await server.store.put_sieve_script(user_id, "s", script)
        await server.store.activate_sieve_script(user_id, "s")
        c = await server.connect("smtp")
        await greet(c, "relay.example.net")
        await c.envelope("bob@example.net", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(b"Subject: buy now\r\n\r\nCheap.\r\n.\r\n")
        assert await c.reply() == (550, "5.7.1 No ads, please.")  # RFC 5429 §2.1
        await c.envelope("bob@example.net", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(b"Subject: lunch\r\n\r\nTomorrow?\r\n.\r\n")
        assert (await c.reply())[0] == 250
        await c.close()
        [kept] = await server.inbox("alice@example.test")
    assert kept.endswith(b"Subject: lunch\r\n\r\nTomorrow?\r\n")


async def test_vacation_from_must_be_the_users_own(store: Store) -> None:
    own = 'require "vacation"; vacation :from "Ann A. <ann@example.org>" "Away.";'
    filters, ann = await _setup(store, own)
    await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    [entry] = await store.queue.list_entries()
    assert (await store.queue.get(entry.id)).message.startswith(b"From: Ann A. <ann@example.org>")
    spoof = own.replace("Ann A. <ann@example.org>", "director@bank.example")
    await store.put_sieve_script(ann, "main", spoof)
    await filters.deliver([_ann(ann)], MESSAGE, "dave@example.net", T0)
    entries = await store.queue.list_entries()
    [second] = [e for e in entries if e.id != entry.id]
    assert (await store.queue.get(second.id)).message.startswith(b"From: ann@example.org\r\n")


async def test_a_redirect_that_cannot_go_out_keeps_the_message(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _, ann = await _setup(store, 'redirect "carol@example.net";')
    filters = Filters(store, RelayDisabled(), "mail.example.org")  # a server that does not relay
    with caplog.at_level(logging.WARNING, "courriel.sieve"):
        await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    assert await _folder(store, ann, "INBOX") == [(MESSAGE, frozenset())]
    assert "Sieve redirect to carol@example.net: relaying to other domains is not enabled" in (
        caplog.text
    )


async def test_keep_and_fileinto_inbox_file_one_copy(store: Store) -> None:
    script = 'require ["fileinto", "imap4flags"]; keep :flags "a"; fileinto :flags "b" "INBOX";'
    filters, ann = await _setup(store, script)
    await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    assert await _folder(store, ann, "INBOX") == [(MESSAGE, frozenset({"a", "b"}))]


async def test_notices_to_local_senders_meet_their_scripts(store: Store) -> None:
    script = """require "fileinto";
    if address :is :localpart "from" "MAILER-DAEMON" { fileinto "Bounces"; }"""
    filters, ann = await _setup(store, script)
    await store.create_mailbox(ann, "Bounces")
    notifier = Notifier(store, StoreQueue(store.queue), local=filters.deliver_notice)
    notice = b"From: Mail Delivery System <MAILER-DAEMON@mail.example.org>\r\n\r\nfailed\r\n"
    await notifier.send("ann@example.org", notice)
    [(stored, _)] = await _folder(store, ann, "Bounces")
    assert stored.endswith(notice) and stored.startswith(b"Return-Path: <>\r\n")
    assert await _folder(store, ann, "INBOX") == []


async def test_without_a_script_delivery_reads_once_then_appends(store: Store) -> None:
    _, ann = await _setup(store)
    counting: Any = CountingStore(store)
    filters = Filters(counting, StoreQueue(store.queue), "mail.example.org")
    await filters.deliver([_ann(ann)], MESSAGE, "bob@example.net", T0)
    assert counting.calls == ["delivery_lookup", "append"]
    assert await _folder(store, ann, "INBOX") == [(MESSAGE, frozenset())]
