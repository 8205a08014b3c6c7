"""Flags on mailboxes shared between users, over real sockets: \\Seen stays each user's own
when messages enter or leave another user's mailbox (APPEND, COPY, MOVE, REPLACE), and the
flag rights of RFC 4314 §4 bound what STORE, APPEND and COPY may set and what PERMANENTFLAGS
announces.

Alice (the owner) has two messages in "Invoices"; Bob reaches it as ``shared/<alice>/Invoices``
with the rights each test grants.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from courriel.testing.imap import USER, Raw, Server, message

BOB = "bob@example.test"
SHARED = f"shared/{USER}/Invoices"
_FETCH = re.compile(r"\* (\d+) FETCH \(.*FLAGS \(([^)]*)\)")


@pytest.fixture
def shared(server: Server) -> Iterator[Server]:
    alice = server.add_user()
    bob = server.add_user(BOB)
    server.call(server.running.app.store.create_mailbox(alice, "Invoices"))
    server.call(server.running.app.store.create_mailbox(bob, "Kept"))
    server.deliver(alice, 2, "Invoices")
    yield server


def grant(server: Server, rights: str) -> None:
    alice = server.raw_as(USER)
    try:
        assert alice.command(f"SETACL Invoices {BOB} {rights}")[-1].endswith("OK SETACL completed")
    finally:
        alice.close()


def flags_in(client: Raw, mailbox: str) -> list[set[str]]:
    """The flags of every message of ``mailbox`` as ``client``'s user sees them (EXAMINE)."""
    assert " OK " in client.command(f"EXAMINE {mailbox}")[-1]
    lines = client.command("UID FETCH 1:* (FLAGS)")
    assert " OK " in lines[-1]
    found = [_FETCH.match(line) for line in lines]
    return [set(m.group(2).split()) - {"\\Recent"} for m in found if m]


def alice_sees(server: Server) -> list[set[str]]:
    alice = server.raw_as(USER)
    try:
        return flags_in(alice, "Invoices")
    finally:
        alice.close()


def literal(data: bytes) -> str:
    return f"{{{len(data)}+}}\r\n{data.decode()}"


def permanentflags(lines: list[str]) -> str:
    return next(line for line in lines if "PERMANENTFLAGS" in line)


def test_copy_and_move_out_carry_the_copiers_own_seen(shared: Server) -> None:
    grant(shared, "lrste")
    alice = shared.raw_as(USER)
    bob = shared.raw_as(BOB)
    try:
        alice.command("SELECT Invoices")
        assert " OK " in alice.command("STORE 1 +FLAGS (\\Seen \\Flagged)")[-1]
        bob.command(f"SELECT {SHARED}")
        assert " OK " in bob.command("STORE 2 +FLAGS (\\Seen)")[-1]
        # Bob has read message 2 and not message 1, which Alice has read.
        assert bob.command("COPY 1:2 INBOX")[-1].split()[1] == "OK"
        assert bob.command("MOVE 1:2 Kept")[-1].split()[1] == "OK"
        assert flags_in(bob, "INBOX") == [{"\\Flagged"}, {"\\Seen"}]
        assert flags_in(bob, "Kept") == [{"\\Flagged"}, {"\\Seen"}]
        assert flags_in(alice, "Invoices") == []  # both moved out
    finally:
        alice.close()
        bob.close()


def test_copy_into_a_shared_mailbox_keeps_seen_private_and_drops_what_is_not_granted(
    shared: Server,
) -> None:
    bob = shared.raw_as(BOB)
    try:
        bob.command("SELECT INBOX")
        for flags in ("\\Seen \\Flagged \\Deleted $Paid", ""):
            appended = bob.command(f"APPEND INBOX ({flags}) {literal(message(1))}")
            assert " OK " in appended[-1]
        grant(shared, "lris")  # \Seen may go in; \Deleted ("t") and the rest ("w") may not
        assert bob.command(f"COPY 1:2 {SHARED}")[-1].split()[1] == "OK"
        assert alice_sees(shared)[2:] == [set(), set()]  # RFC 4314 §4: dropped, not failed
        assert flags_in(bob, SHARED)[2:] == [{"\\Seen"}, set()]  # Bob's own \Seen
        grant(shared, "lriwt")  # now the other way round: no "s"
        bob.command("SELECT INBOX")
        assert bob.command(f"UID COPY 1 {SHARED}")[-1].split()[1] == "OK"
        assert alice_sees(shared)[4] == {"\\Flagged", "\\Deleted", "$Paid"}
        assert flags_in(bob, SHARED)[4] == {"\\Flagged", "\\Deleted", "$Paid"}
        grant(shared, "lrisw")
        bob.command("SELECT INBOX")
        assert bob.command(f"MOVE 1 {SHARED}")[-1].split()[1] == "OK"
        assert alice_sees(shared)[5] == {"\\Flagged", "$Paid"}
        assert flags_in(bob, SHARED)[5] == {"\\Flagged", "\\Seen", "$Paid"}
    finally:
        bob.close()


def test_append_multiappend_and_catenate_set_the_appenders_own_seen(shared: Server) -> None:
    grant(shared, "lris")
    bob = shared.raw_as(BOB)
    try:
        one = bob.command(f"APPEND {SHARED} (\\Seen \\Flagged) {literal(message(3))}")
        assert " OK [APPENDUID " in one[-1]
        many = f"APPEND {SHARED} (\\Seen) {literal(message(4))} () {literal(message(5))}"
        assert " OK [APPENDUID " in bob.command(many)[-1]  # RFC 3502 MULTIAPPEND
        joined = f"APPEND {SHARED} (\\SEEN) CATENATE (TEXT {literal(message(6))})"
        assert " OK [APPENDUID " in bob.command(joined)[-1]  # RFC 4469, any case
        assert alice_sees(shared) == [set()] * 6  # nothing of Bob's reached Alice's flags
        assert flags_in(bob, SHARED) == [set(), set(), {"\\Seen"}, {"\\Seen"}, set(), {"\\Seen"}]
        grant(shared, "lri")  # no "s": \Seen is dropped, for Bob too
        assert " OK " in bob.command(f"APPEND {SHARED} (\\Seen) {literal(message(7))}")[-1]
        assert flags_in(bob, SHARED)[6] == set()
    finally:
        bob.close()


def test_permanentflags_and_store_follow_the_rights(shared: Server) -> None:
    alice = shared.raw_as(USER)
    try:
        alice.command("SELECT Invoices")
        assert " OK " in alice.command("STORE 1 +FLAGS (\\Seen \\Flagged $Paid)")[-1]
    finally:
        alice.close()
    grant(shared, "lrs")
    bob = shared.raw_as(BOB)
    try:
        selected = bob.command(f"SELECT {SHARED}")
        assert "[PERMANENTFLAGS (\\Seen)]" in permanentflags(selected)  # no \* without "w"
        assert "OK [READ-WRITE]" in selected[-1]
        lines = bob.command("STORE 1 +FLAGS (\\Deleted)")
        assert "NO [NOPERM]" in lines[-1]  # RFC 4314 §4: none of them allowed
        lines = bob.command("STORE 1 +FLAGS (\\Seen \\Deleted $New)")
        assert lines[-1].endswith("OK STORE completed")  # what it may, it does
        assert flags_in(bob, SHARED)[0] == {"\\Seen", "\\Flagged", "$Paid"}
        bob.command(f"SELECT {SHARED}")
        lines = bob.command("STORE 1 FLAGS ()")  # clears Bob's \Seen only
        assert lines[-1].endswith("OK STORE completed")
        assert flags_in(bob, SHARED)[0] == {"\\Flagged", "$Paid"}
        grant(shared, "lrw")
        bob.command(f"SELECT {SHARED}")
        selected = bob.command(f"SELECT {SHARED}")
        assert "[PERMANENTFLAGS (\\Answered \\Flagged \\Draft $Paid \\*)]" in permanentflags(
            selected
        )
        assert bob.command("STORE 1 FLAGS ($Late)")[-1].endswith("OK STORE completed")
        assert flags_in(bob, SHARED)[0] == {"$Late"}
        assert alice_sees(shared)[0] == {"\\Seen", "$Late"}  # Alice's \Seen is not Bob's
        bob.command(f"SELECT {SHARED}")
        lines = bob.command("STORE 1 (UNCHANGEDSINCE 1) FLAGS ($Early)")
        assert "OK [MODIFIED 1]" in lines[-1]  # RFC 7162 §3.1.3: changed since, left alone
        assert flags_in(bob, SHARED)[0] == {"$Late"}
        grant(shared, "lrt")
        assert "[PERMANENTFLAGS (\\Deleted)]" in permanentflags(bob.command(f"SELECT {SHARED}"))
        assert "NO [NOPERM]" in bob.command("STORE 1 +FLAGS ($Late2)")[-1]
    finally:
        bob.close()


def test_new_rights_announce_new_permanentflags(shared: Server) -> None:
    grant(shared, "lrs")
    bob = shared.raw_as(BOB)
    try:
        bob.command(f"SELECT {SHARED}")
        grant(shared, "lrsw")
        lines: list[str] = []
        for _ in range(50):  # the ACL change reaches the session as an event
            lines = bob.command("NOOP")
            if len(lines) > 1:
                break
        flagged = "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Seen \\Draft \\*)] Flags permitted"
        assert flagged in lines  # RFC 4314 §5.1.1
        assert len(bob.command("NOOP")) == 1  # announced once
    finally:
        bob.close()


def test_a_reader_without_s_sees_their_own_seen(shared: Server) -> None:
    alice = shared.raw_as(USER)
    try:
        alice.command("SELECT Invoices")
        assert " OK " in alice.command("STORE 1 +FLAGS (\\Seen)")[-1]
    finally:
        alice.close()
    grant(shared, "lrs")
    bob = shared.raw_as(BOB)
    try:
        bob.command(f"SELECT {SHARED}")
        assert " OK " in bob.command("STORE 2 +FLAGS (\\Seen)")[-1]
    finally:
        bob.close()
    grant(shared, "lr")
    bob = shared.raw_as(BOB)
    try:
        for verb in ("SELECT", "EXAMINE"):
            lines = bob.command(f"{verb} {SHARED}")
            assert "OK [READ-ONLY]" in lines[-1]
            assert "* OK [UNSEEN 1] First unseen" in lines  # Alice read 1, Bob read 2
            assert "[PERMANENTFLAGS ()]" in permanentflags(lines)
            assert flags_in(bob, SHARED) == [set(), {"\\Seen"}]
            fetched = bob.command("FETCH 1 (BODY[])")  # no "s": nothing marked
            assert fetched[-1].endswith("OK FETCH completed")
            assert not any("\\Seen" in line for line in fetched)
        assert bob.command(f"STATUS {SHARED} (UNSEEN)")[0] == f"* STATUS {SHARED} (UNSEEN 1)"
    finally:
        bob.close()
    assert alice_sees(shared) == [{"\\Seen"}, set()]


def test_replace_into_and_out_of_a_shared_mailbox(shared: Server) -> None:
    grant(shared, "lrs")
    bob = shared.raw_as(BOB)
    try:
        bob.command("SELECT INBOX")
        assert " OK " in bob.command(f"APPEND INBOX () {literal(message(1))}")[-1]
        lines = bob.command(f"REPLACE 1 {SHARED} (\\Seen \\Flagged) {literal(message(2))}")
        assert "NO [NOPERM]" in lines[-1]  # no "i" on the target
        grant(shared, "lris")
        lines = bob.command(f"REPLACE 1 {SHARED} (\\Seen \\Flagged) {literal(message(2))}")
        assert lines[-1].endswith("OK REPLACE completed")  # RFC 8508 with "i"
        assert any("[APPENDUID " in line for line in lines)
        assert "* 1 EXPUNGE" in lines
        assert alice_sees(shared)[2] == set()  # \Flagged needs "w"; \Seen is Bob's
        assert flags_in(bob, SHARED)[2] == {"\\Seen"}
        bob.command(f"SELECT {SHARED}")
        lines = bob.command(f"REPLACE 3 INBOX (\\Seen) {literal(message(3))}")
        assert "[NOPERM]" in lines[-1]  # the original cannot be expunged without "t" and "e"
        grant(shared, "lriste")
        bob.command(f"SELECT {SHARED}")
        lines = bob.command(f"UID REPLACE 3 INBOX (\\Seen) {literal(message(3))}")
        assert lines[-1].endswith("OK UID REPLACE completed")
        assert flags_in(bob, "INBOX") == [{"\\Seen"}]  # Bob's own mailbox: an ordinary flag
        assert len(alice_sees(shared)) == 2
    finally:
        bob.close()
