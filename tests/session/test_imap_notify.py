"""NOTIFY (RFC 5465) over real sockets: one session changes, another is told without asking."""

from __future__ import annotations

import re
import time

from pytest import MonkeyPatch

from courriel.session import imap_notify
from courriel.testing.imap import USER, Raw, Server, message, wait_for


def append(raw: Raw, mailbox: str, n: int) -> None:
    body = message(n).decode()
    raw.send(f"ap APPEND {mailbox} {{{len(body)}+}}\r\n{body}")
    assert raw.until("ap")[-1].startswith("ap OK")


def quiet(raw: Raw, seconds: float = 0.3) -> None:
    """Nothing arrived for a while: a NOOP then finds nothing before its OK."""
    time.sleep(seconds)
    lines = raw.command("NOOP")
    assert len(lines) == 1 and lines[0].endswith("OK NOOP completed"), lines


def test_other_mailboxes_are_reported_without_polling(server: Server) -> None:
    server.add_user()
    with server.sessions(2) as (a, b):
        lines = a.command("NOTIFY SET STATUS (personal (MessageNew MessageExpunge MailboxName))")
        assert lines[-1].endswith("OK NOTIFY completed")
        statuses = [line for line in lines if line.startswith("* STATUS ")]
        assert any(
            re.fullmatch(r"\* STATUS INBOX \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+\)", s)
            for s in statuses
        )
        assert len(statuses) == 6  # INBOX and the five special-use mailboxes
        append(b, "Archive", 1)
        wait_for(a, r"\* STATUS Archive \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+\)")
        assert b.command("CREATE Projects")[-1].endswith("CREATE completed")  # OK [MAILBOXID ...]
        wait_for(a, r'\* LIST \(\) "/" Projects')
        assert b.command("RENAME Projects Plans")[-1].endswith("OK RENAME completed")
        wait_for(a, r'\* LIST \(\) "/" Plans \("OLDNAME" \(Projects\)\)')
        assert b.command("DELETE Plans")[-1].endswith("OK DELETE completed")
        wait_for(a, r'\* LIST \(\\NonExistent\) "/" Plans')
        assert a.command("NOTIFY SET (personal (SubscriptionChange))")[-1].endswith("completed")
        assert b.command("SUBSCRIBE Archive")[-1].endswith("OK SUBSCRIBE completed")
        wait_for(a, r'\* LIST \(\\Subscribed\) "/" Archive')  # RFC 5465 §5.5
        assert b.command("UNSUBSCRIBE Archive")[-1].endswith("OK UNSUBSCRIBE completed")
        wait_for(a, r'\* LIST \(\) "/" Archive')
        spec = "(personal (MailboxMetadataChange ServerMetadataChange))"
        assert a.command(f"NOTIFY SET {spec}")[-1].endswith("OK NOTIFY completed")
        note = 'SETMETADATA INBOX (/private/comment "x" /shared/comment "y")'
        assert b.command(note)[-1].endswith("OK SETMETADATA completed")
        wait_for(a, r"\* METADATA INBOX /private/comment /shared/comment")  # RFC 5465 §5.6
        assert b.command('SETMETADATA "" (/private/x "1")')[-1].endswith("completed")
        wait_for(a, r'\* METADATA "" /private/x')  # RFC 5465 §5.7
        spec = "(personal (MessageNew MessageExpunge MailboxName))"
        assert a.command(f"NOTIFY SET {spec}")[-1].endswith("OK NOTIFY completed")
        # And in IDLE as well.
        a.send("i1 IDLE")
        assert a.line().startswith("+ ")
        append(b, "Archive", 2)
        wait_for(a, r"\* STATUS Archive \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+\)")
        a.send("DONE")
        assert a.until("i1")[-1] == "i1 OK IDLE terminated"
        assert a.command("NOTIFY NONE")[-1].endswith("OK NOTIFY completed")
        append(b, "Archive", 3)
        quiet(a)


def test_the_first_matching_group_decides(server: Server) -> None:
    server.add_user()
    with server.sessions(2) as (a, b):
        spec = "(mailboxes Junk NONE) (personal (MessageNew MessageExpunge FlagChange))"
        assert a.command(f"NOTIFY SET {spec}")[-1].endswith("OK NOTIFY completed")
        append(b, "Junk", 1)
        append(b, "Drafts", 2)
        # Junk is silenced by the first group: the next thing said is about Drafts.
        assert re.fullmatch(
            r"\* STATUS Drafts \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ HIGHESTMODSEQ \d+\)", a.line()
        )


def test_selected_changes_are_pushed_and_expunges_only_with_selected(server: Server) -> None:
    server.add_user()
    with server.sessions(2) as (a, b):
        assert a.command("ENABLE IMAP4rev2")[-1].endswith("OK ENABLE completed")  # no RECENT
        assert a.command("SELECT INBOX")[-1].endswith("OK [READ-WRITE] SELECT completed")
        assert b.command("SELECT INBOX")[-1].endswith("OK [READ-WRITE] SELECT completed")
        spec = "(selected-delayed (MessageNew MessageExpunge FlagChange))"
        assert a.command(f"NOTIFY SET {spec}")[-1].endswith("OK NOTIFY completed")
        append(b, "INBOX", 1)
        wait_for(a, r"\* 1 EXISTS")
        assert b.command("STORE 1 +FLAGS (\\Deleted)")[-1].endswith("OK STORE completed")
        wait_for(a, r"\* 1 FETCH \(UID 1 FLAGS \(\\Deleted( \\Recent)?\)\)")
        assert b.command("EXPUNGE")[-1].endswith("OK EXPUNGE completed")
        append(b, "INBOX", 2)
        # SELECTED-DELAYED: the EXPUNGE waits for a command, so the new message is still 2.
        assert a.line() == "* 2 EXISTS"
        assert a.command("NOOP")[:2] == ["* 1 EXPUNGE", "t5 OK NOOP completed"]
        assert a.command("NOTIFY SET (selected (MessageNew MessageExpunge))")[-1].endswith(
            "OK NOTIFY completed"
        )
        assert b.command("STORE 1 +FLAGS (\\Deleted)")[-1].endswith("OK STORE completed")
        wait_for(a, r"\* 1 FETCH \(UID 2 FLAGS \(\\Deleted( \\Recent)?\)\)")
        assert b.command("EXPUNGE")[-1].endswith("OK EXPUNGE completed")
        assert a.line() == "* 1 EXPUNGE"  # SELECTED: at once


def test_unsupported_events_and_bad_specs(server: Server) -> None:
    server.add_user()
    with server.sessions(1) as (a,):
        assert a.command("NOTIFY SET (personal (AnnotationChange))")[-1] == (
            "t2 NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName"
            " SubscriptionChange MailboxMetadataChange ServerMetadataChange)]"
            " Not supported: AnnotationChange"
        )
        assert a.command("NOTIFY SET (selected (MessageNew))")[-1].startswith("t3 BAD ")
        assert a.command("NOTIFY SET (selected (MailboxName))")[-1].startswith("t4 BAD ")
        both = (
            "(selected (MessageNew MessageExpunge)) (selected-delayed (MessageNew MessageExpunge))"
        )
        assert a.command(f"NOTIFY SET {both}")[-1].startswith("t5 BAD ")
        assert a.command("NOOP")[-1] == "t6 OK NOOP completed"


def test_new_messages_of_the_selected_mailbox_come_with_the_fetch_asked_for(
    server: Server,
) -> None:
    server.add_user()
    with server.sessions(2) as (a, b):
        assert a.command("ENABLE IMAP4rev2")[-1].endswith("OK ENABLE completed")  # no RECENT
        assert a.command("SELECT INBOX")[-1].endswith("OK [READ-WRITE] SELECT completed")
        # RFC 5465 §5.2: EXISTS, then a FETCH with what MessageNew names (and the UID). BODY
        # without PEEK is read as a peek: an unsolicited response sets no \Seen.
        spec = (
            "(selected (MessageNew (FLAGS ENVELOPE BODY[HEADER.FIELDS (Subject)]) MessageExpunge))"
        )
        assert a.command(f"NOTIFY SET {spec}")[-1].endswith("OK NOTIFY completed")
        append(b, "INBOX", 1)
        assert a.line() == "* 1 EXISTS"
        fetch = a.line()
        assert fetch.startswith('* 1 FETCH (UID 1 FLAGS () ENVELOPE (NIL "Note 1" ')
        assert fetch.endswith("BODY[HEADER.FIELDS (Subject)] {19}")
        assert a.line() == "Subject: Note 1"
        assert a.line() == ""
        assert a.line() == ")"
        lines = a.command("FETCH 1 (FLAGS)")
        assert lines[0] == "* 1 FETCH (FLAGS ())"
        # The session's own APPEND gets its EXISTS and no FETCH (§5.2).
        append(a, "INBOX", 2)
        quiet(a)
        # Between commands and in IDLE alike; SELECTED-DELAYED too.
        spec = "(selected-delayed (MessageNew (UID) MessageExpunge))"
        assert a.command(f"NOTIFY SET {spec}")[-1].endswith("OK NOTIFY completed")
        a.send("i1 IDLE")
        assert a.line().startswith("+ ")
        append(b, "INBOX", 3)
        assert a.line() == "* 3 EXISTS"
        assert a.line() == "* 3 FETCH (UID 3)"
        a.send("DONE")
        assert a.until("i1")[-1] == "i1 OK IDLE terminated"
        # Without fetch attributes, EXISTS alone.
        assert a.command("NOTIFY SET (selected (MessageNew MessageExpunge))")[-1].endswith(
            "completed"
        )
        append(b, "INBOX", 4)
        assert a.line() == "* 4 EXISTS"
        quiet(a)


def test_fetch_attributes_only_for_the_selected_mailbox(server: Server) -> None:
    server.add_user()
    with server.sessions(1) as (a,):
        # RFC 5465 §5.2: other mailboxes are told of new messages by STATUS, never FETCH.
        lines = a.command("NOTIFY SET (personal (MessageNew (UID) MessageExpunge))")
        assert lines[-1] == "t2 BAD MessageNew takes fetch attributes only for SELECTED"
        assert a.command("NOOP")[-1] == "t3 OK NOOP completed"


BOB = "bob@example.test"
INVOICES = re.escape(f"shared/{USER}/Invoices")


def test_mailboxes_shared_by_others_are_reported_as_their_rights_allow(server: Server) -> None:
    """Alice (``USER``) shares with Bob, who follows "shared/" with NOTIFY: a grant shows as a
    new mailbox, Alice's deliveries as STATUS while Bob may read, a rename with OLDNAME, and a
    withdrawal as \\NonExistent (RFC 5465 §5.2, §5.4, §5.9; RFC 4314 rights)."""
    alice_id = server.add_user()
    server.add_user(BOB)
    server.call(server.running.app.store.create_mailbox(alice_id, "Invoices"))
    alice, bob = server.raw_as(USER), server.raw_as(BOB)
    try:
        spec = "(subtree shared (MessageNew MessageExpunge MailboxName))"
        assert bob.command(f"NOTIFY SET {spec}")[-1].endswith("OK NOTIFY completed")
        assert alice.command(f"SETACL Invoices {BOB} lr")[-1].endswith("OK SETACL completed")
        wait_for(bob, rf'\* LIST \(\) "/" "?{INVOICES}"?')
        append(alice, "Invoices", 1)
        wait_for(bob, rf'\* STATUS "?{INVOICES}"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+\)')
        assert alice.command("RENAME Invoices Bills")[-1].endswith("OK RENAME completed")
        bills = re.escape(f"shared/{USER}/Bills")
        wait_for(bob, rf'\* LIST \(\) "/" "?{bills}"? \("OLDNAME" \("?{INVOICES}"?\)\)')
        # Without "r" the mailbox stays listed but its messages are no longer told of.
        assert alice.command(f"SETACL Bills {BOB} l")[-1].endswith("OK SETACL completed")
        append(alice, "Bills", 2)
        quiet(bob)
        assert alice.command(f"DELETEACL Bills {BOB}")[-1].endswith("OK DELETEACL completed")
        wait_for(bob, rf'\* LIST \(\\NonExistent\) "/" "?{bills}"?')
        append(alice, "Bills", 3)
        quiet(bob)
    finally:
        alice.close()
        bob.close()


def test_personal_does_not_take_other_users_mailboxes(server: Server) -> None:
    alice_id = server.add_user()
    server.add_user(BOB)
    server.call(server.running.app.store.create_mailbox(alice_id, "Invoices"))
    alice, bob = server.raw_as(USER), server.raw_as(BOB)
    try:
        assert alice.command(f"SETACL Invoices {BOB} lr")[-1].endswith("OK SETACL completed")
        # RFC 5465 §6.2: PERSONAL is the user's own namespace; shared mailboxes need a filter
        # that names them (or SUBSCRIBED).
        spec = "(personal (MessageNew MessageExpunge MailboxName))"
        lines = bob.command(f"NOTIFY SET STATUS {spec}")
        assert not any("shared/" in line for line in lines), lines
        append(alice, "Invoices", 1)
        quiet(bob)
        assert bob.command(f'SUBSCRIBE "shared/{USER}/Invoices"')[-1].endswith("completed")
        spec = "(subscribed (MessageNew MessageExpunge))"
        lines = bob.command(f"NOTIFY SET STATUS {spec}")
        assert any(re.fullmatch(rf'\* STATUS "?{INVOICES}"? \(MESSAGES 1 .*', s) for s in lines)
        append(alice, "Invoices", 2)
        wait_for(bob, rf'\* STATUS "?{INVOICES}"? \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+\)')
    finally:
        alice.close()
        bob.close()


def test_a_selected_shared_mailbox_pushes_its_new_messages(server: Server) -> None:
    alice_id = server.add_user()
    server.add_user(BOB)
    server.call(server.running.app.store.create_mailbox(alice_id, "Invoices"))
    alice, bob = server.raw_as(USER), server.raw_as(BOB)
    try:
        assert alice.command(f"SETACL Invoices {BOB} lr")[-1].endswith("OK SETACL completed")
        assert bob.command("ENABLE IMAP4rev2")[-1].endswith("OK ENABLE completed")
        selected = bob.command(f'EXAMINE "shared/{USER}/Invoices"')
        assert selected[-1].endswith("OK [READ-ONLY] EXAMINE completed")
        spec = "(selected (MessageNew (FLAGS) MessageExpunge))"
        assert bob.command(f"NOTIFY SET {spec}")[-1].endswith("OK NOTIFY completed")
        append(alice, "Invoices", 1)
        assert bob.line() == "* 1 EXISTS"
        assert bob.line() == "* 1 FETCH (UID 1 FLAGS ())"
    finally:
        alice.close()
        bob.close()


def test_too_many_sharing_users_overflow(server: Server, monkeypatch: MonkeyPatch) -> None:
    monkeypatch.setattr(imap_notify, "MAX_OWNERS", 1)
    alice_id = server.add_user()
    bob_id = server.add_user(BOB)
    carol_id = server.add_user("carol@example.test")
    store = server.running.app.store
    alice_box = server.call(store.create_mailbox(alice_id, "Invoices"))
    carol_box = server.call(store.create_mailbox(carol_id, "Plans"))
    bob = server.raw_as(BOB)
    try:
        server.call(store.set_acl(alice_box.id, bob_id, "lr"))
        spec = "(subtree shared (MessageNew MessageExpunge MailboxName))"
        assert bob.command(f"NOTIFY SET {spec}")[-1].endswith("OK NOTIFY completed")
        # A second sharing user is one more than this session follows: RFC 5465 §5.8.
        server.call(store.set_acl(carol_box.id, bob_id, "lr"))
        wait_for(bob, r"\* OK \[NOTIFICATIONOVERFLOW\] .*")
        server.deliver(alice_id, 1, "Invoices")
        quiet(bob)
        # And a NOTIFY that needs them both is refused, as §3.1 allows.
        lines = bob.command(f"NOTIFY SET {spec}")
        assert lines[-1] == "t4 NO [NOTIFICATIONOVERFLOW] Too many users share mailboxes with you"
    finally:
        bob.close()
