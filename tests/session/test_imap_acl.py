"""Mailboxes shared between users (RFC 4314 ACL, RFC 8440 LIST-MYRIGHTS) over real sockets.

Alice shares her "Invoices" folder with Bob; Bob uses it through Python's imaplib (which has
GETACL, SETACL, MYRIGHTS and NAMESPACE) and a line-level client for IDLE. Each test checks
what the grant allows, what it refuses, and that nothing reaches further than granted.
"""

from __future__ import annotations

import imaplib
import re
import time
from collections.abc import Iterator

import pytest

from courriel.testing.imap import PASSWORD, USER, Server, message, wait_for

BOB = "bob@example.test"
SHARED = f"shared/{USER}/Invoices"


@pytest.fixture
def shared(server: Server) -> Iterator[Server]:
    """Alice with two messages in Invoices, Bob with nothing granted yet."""
    alice = server.add_user()
    server.add_user(BOB)
    server.call(server.running.app.store.create_mailbox(alice, "Invoices"))
    server.deliver(alice, 2, "Invoices")
    yield server


def login(server: Server, address: str) -> imaplib.IMAP4_SSL:
    host, port = server.address()
    client = imaplib.IMAP4_SSL(host, port, ssl_context=server.tls(), timeout=10)
    client.login(address, PASSWORD)
    return client


def grant(server: Server, rights: str) -> None:
    alice = login(server, USER)
    try:
        assert alice.setacl("Invoices", BOB, rights)[0] == "OK"
    finally:
        alice.logout()


def flags_of_alice(server: Server) -> list[bytes]:
    alice = login(server, USER)
    try:
        alice.select("Invoices", readonly=True)
        typ, data = alice.fetch("1:*", "(FLAGS)")
        assert typ == "OK"
        return [d for d in data if isinstance(d, bytes)]
    finally:
        alice.logout()


def raw_list_status(server: Server) -> list[str]:
    bob = server.raw_as(BOB)
    try:
        return bob.command('LIST "" "shared/*" RETURN (STATUS (UNSEEN))')
    finally:
        bob.close()


def test_owner_manages_the_acl_with_imaplib(shared: Server) -> None:
    alice = login(shared, USER)
    try:
        caps = alice.capability()[1][0].split()
        assert {b"ACL", b"RIGHTS=kxte", b"LIST-MYRIGHTS"} <= set(caps)
        typ, data = alice.myrights("Invoices")
        assert typ == "OK" and data == [b"Invoices lrswipkxteacd"]  # RFC 4314 §2.1.1 c and d
        assert alice.setacl("Invoices", BOB, "lrs")[0] == "OK"
        assert alice.setacl("Invoices", "anyone", "l")[0] == "OK"
        typ, data = alice.getacl("Invoices")
        assert data == [f"Invoices {USER} lrswipkxteacd anyone l {BOB} lrs".encode()]
        assert alice.setacl("Invoices", BOB, "+w")[0] == "OK"  # RFC 4314 §3.1: add rights
        assert alice.setacl("Invoices", BOB, "-s")[0] == "OK"
        assert alice.deleteacl("Invoices", "anyone")[0] == "OK"
        assert alice.getacl("Invoices")[1] == [f"Invoices {USER} lrswipkxteacd {BOB} lrw".encode()]
        typ, data = alice.namespace()
        assert data == [b'(("" "/")) (("shared/" "/")) NIL']
        with pytest.raises(imaplib.IMAP4.error, match="Unknown right"):
            alice.setacl("Invoices", BOB, "lrz")  # RFC 4314 §3.1: BAD, never ignored
        assert alice.setacl("Invoices", "nobody@example.test", "l")[0] == "NO"
        assert alice.setacl("Invoices", USER, "l")[0] == "NO"  # the owner keeps every right
        assert alice.setacl("Invoices", "-" + BOB, "l")[0] == "NO"  # no negative rights
    finally:
        alice.logout()


def test_a_grantee_lists_selects_and_is_held_to_the_rights(shared: Server) -> None:
    bob = login(shared, BOB)
    try:
        assert not any(b"shared/" in d for d in bob.list()[1] if isinstance(d, bytes))
        assert bob.select(SHARED)[0] == "NO"  # nothing granted: as if it did not exist
        grant(shared, "lrs")
        listed = [d for d in bob.list()[1] if isinstance(d, bytes)]
        assert f'() "/" {SHARED}'.encode() in [re.sub(rb"\\Has\w+ ?", b"", d) for d in listed]
        typ, data = bob.select(SHARED)
        assert typ == "OK" and data == [b"2"]
        typ, data = bob.fetch("1", "(BODY[])")  # "s": reading marks it seen, for Bob alone
        fetched = b" ".join(d for d in data if isinstance(d, bytes))
        assert typ == "OK" and rb"FLAGS (\Seen" in fetched
        assert all(rb"\Seen" not in f for f in flags_of_alice(shared))  # RFC 4314 §4: per user
        typ, data = bob.fetch("1:2", "(FLAGS)")
        shown = [re.sub(rb" ?\\Recent", b"", d) for d in data if isinstance(d, bytes)]
        assert shown == [b"1 (FLAGS (\\Seen))", b"2 (FLAGS ())"]
        assert bob.status(SHARED, "(UNSEEN)")[1] == [f"{SHARED} (UNSEEN 1)".encode()]
        lines = raw_list_status(shared)
        assert f"* STATUS {SHARED} (UNSEEN 1)" in lines  # LIST-STATUS counts the same
        assert bob.search(None, "UNSEEN")[1] == [b"2"]
        typ, data = bob.store("2", "+FLAGS", r"(\Flagged)")  # no "w"
        assert typ == "NO" and b"NOPERM" in data[0]
        typ, data = bob.store("2", "+FLAGS", r"(\Seen \Flagged)")  # what it may, it does
        assert typ == "OK" and rb"\Seen" in data[0] and rb"\Flagged" not in data[0]
        assert bob.expunge()[0] == "NO"  # no "e"
        assert bob.append(SHARED, "", imaplib.Time2Internaldate(time.time()), message(7))[0] == (
            "NO"
        )  # no "i"
        assert bob.copy("1", "INBOX")[0] == "OK"  # "r" is enough to copy out
        assert bob.create(f"shared/{USER}/Invoices/2024")[0] == "NO"  # no "k"
        assert bob.delete(SHARED)[0] == "NO"  # no "x"
        assert bob.getacl(SHARED)[0] == "NO"  # no "a"
        assert bob.myrights(SHARED)[1] == [f"{SHARED} lrs".encode()]
        # Alice's other mailboxes stay hidden, and look exactly like missing ones.
        for name in (f"shared/{USER}/INBOX", f"shared/{USER}/Nothing"):
            assert bob.select(name)[0] == "NO"
            assert bob.status(name, "(MESSAGES)")[0] == "NO"
            assert bob.myrights(name)[0] == "NO"
    finally:
        bob.logout()


def test_read_only_without_write_rights_and_no_seen_without_s(shared: Server) -> None:
    grant(shared, "lr")
    bob = shared.raw_as(BOB)
    try:
        # RFC 4314 §4: none of "s w t e": READ-ONLY, and reading leaves \Seen alone.
        assert bob.command(f"SELECT {SHARED}")[-1].startswith("t2 OK [READ-ONLY]")
        assert bob.command("FETCH 1 (BODY[])")[-1].endswith("OK FETCH completed")
        assert all(rb"\Seen" not in f for f in flags_of_alice(shared))
        assert bob.command(f"STATUS {SHARED} (MESSAGES)")[0] == f"* STATUS {SHARED} (MESSAGES 2)"
    finally:
        bob.close()


def test_full_rights_let_a_grantee_file_create_and_delete(shared: Server) -> None:
    grant(shared, "lrswipkxte")
    bob = login(shared, BOB)
    try:
        now = imaplib.Time2Internaldate(time.time())
        assert bob.append(SHARED, r"(\Flagged)", now, message(8))[0] == "OK"
        assert bob.append("INBOX", "", now, message(9))[0] == "OK"
        bob.select("INBOX")
        assert bob.copy("1", SHARED)[0] == "OK"
        assert bob.create(f"shared/{USER}/Invoices/2024")[0] == "OK"
        assert bob.rename(f"shared/{USER}/Invoices/2024", f"shared/{USER}/Invoices/Y24")[0] == "OK"
        assert bob.rename(f"shared/{USER}/Invoices/Y24", "Mine")[0] == "NO"  # not to Bob
        assert bob.create(f"shared/{USER}/Top")[0] == "NO"  # Alice's top level is hers
        bob.select(SHARED)
        assert bob.store("1", "+FLAGS", r"(\Deleted)")[0] == "OK"
        assert bob.expunge()[0] == "OK"
        assert bob.uid("MOVE", "2", "INBOX")[0] == "OK"
        assert bob.delete(f"shared/{USER}/Invoices/Y24")[0] == "OK"
    finally:
        bob.logout()
    alice = login(shared, USER)
    try:
        names = [d for d in alice.list()[1] if isinstance(d, bytes)]
        assert not any(b"Invoices/" in n for n in names)  # created and deleted by Bob
        typ, data = alice.select("Invoices")
        assert data == [b"2"]  # 2 + appended + copied - expunged - moved
        typ, data = alice.fetch("1:*", "(FLAGS)")
        assert typ == "OK"
        assert rb"\Flagged" in b" ".join(d for d in data if isinstance(d, bytes))
    finally:
        alice.logout()


def test_list_myrights_and_subscriptions(shared: Server) -> None:
    grant(shared, "lr")
    bob = shared.raw_as(BOB)
    try:
        lines = bob.command('LIST "" "*" RETURN (MYRIGHTS)')
        assert "* MYRIGHTS INBOX lrswipkxteacd" in lines  # RFC 8440 §3
        assert f"* MYRIGHTS {SHARED} lr" in lines
        lines = bob.command('LIST "" "*" RETURN (STATUS (MESSAGES))')
        assert f"* STATUS {SHARED} (MESSAGES 2)" in lines  # RFC 5819 with "r"
        assert '* LIST (\\NonExistent \\HasChildren) "/" shared' in lines
        assert bob.command(f"SUBSCRIBE {SHARED}")[-1].endswith("OK SUBSCRIBE completed")
        lines = bob.command('LIST (SUBSCRIBED) "" "shared/*"')
        assert f'* LIST (\\HasNoChildren \\Subscribed) "/" {SHARED}' in lines
        assert f'* LSUB () "/" {SHARED}' in bob.command('LSUB "" "shared/*"')
        assert bob.command(f"GETQUOTAROOT {SHARED}")[0] == f"* QUOTAROOT {SHARED}"
    finally:
        bob.close()
    alice = login(shared, USER)
    try:
        assert alice.deleteacl("Invoices", BOB)[0] == "OK"
    finally:
        alice.logout()
    bob = shared.raw_as(BOB)
    try:
        assert not any("shared/" in line for line in bob.command('LIST "" "*"'))
        assert "NONEXISTENT" in bob.command(f"SELECT {SHARED}")[-1]
    finally:
        bob.close()


def test_the_owners_changes_reach_an_idling_grantee(shared: Server) -> None:
    grant(shared, "lrsw")
    bob = shared.raw_as(BOB)
    alice = login(shared, USER)
    try:
        assert bob.command(f"SELECT {SHARED}")[-1].startswith("t2 OK [READ-WRITE]")
        bob.send("i1 IDLE")
        assert bob.line().startswith("+ ")
        now = imaplib.Time2Internaldate(time.time())
        assert alice.append("Invoices", "", now, message(5))[0] == "OK"
        wait_for(bob, r"\* 3 EXISTS")
        alice.select("Invoices")
        assert alice.store("1", "+FLAGS", r"(\Flagged)")[0] == "OK"
        wait_for(bob, r"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged( \\Recent)?\)\)")
        bob.send("DONE")
        assert bob.until("i1")[-1] == "i1 OK IDLE terminated"
        # And the grantee's changes reach the owner's selected session; \Seen stays Bob's.
        assert bob.command("STORE 2 +FLAGS (\\Seen \\Answered)")[-1].endswith("OK STORE completed")
        alice.noop()
        typ, data = alice.fetch("2", "(FLAGS)")
        assert typ == "OK" and rb"\Answered" in data[0] and rb"\Seen" not in data[0]
    finally:
        alice.logout()
        bob.close()


def test_a_grant_taken_back_ends_the_grantees_selection(shared: Server) -> None:
    grant(shared, "lrsw")
    bob = shared.raw_as(BOB)
    try:
        assert bob.command(f"SELECT {SHARED}")[-1].startswith("t2 OK [READ-WRITE]")
        grant(shared, "lr")  # fewer rights: the session goes on with them
        time.sleep(0.2)  # the change event reaches Bob's session
        lines = bob.command("STORE 1 +FLAGS (\\Flagged)")
        assert "[NOPERM]" in lines[-1]
        alice = login(shared, USER)
        try:
            assert alice.deleteacl("Invoices", BOB)[0] == "OK"
        finally:
            alice.logout()
        bob.send("t9 NOOP")
        assert wait_for(bob, r"\* BYE .*") == "* BYE Access to the selected mailbox was withdrawn"
    finally:
        bob.close()
