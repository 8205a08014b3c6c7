"""METADATA (RFC 5464) on a mailbox shared between two users (RFC 4314), over real sockets."""

from __future__ import annotations

from courriel.testing.imap import USER, Server

BOB = "bob@example.test"
SHARED = f"shared/{USER}/Invoices"


def test_shared_entries_are_seen_by_grantees_private_ones_are_not(server: Server) -> None:
    alice_id = server.add_user()
    server.add_user(BOB)
    server.call(server.running.app.store.create_mailbox(alice_id, "Invoices"))
    alice, bob = server.raw_as(USER), server.raw_as(BOB)
    try:
        note = 'SETMETADATA Invoices (/shared/comment "2024 bills" /private/comment "mine")'
        assert alice.command(note)[-1].endswith("OK SETMETADATA completed")
        # Nothing granted: the mailbox does not exist for Bob, nor do its entries.
        assert "NONEXISTENT" in bob.command(f"GETMETADATA {SHARED} /shared/comment")[-1]
        assert alice.command(f"SETACL Invoices {BOB} lr")[-1].endswith("OK SETACL completed")
        lines = bob.command(f"GETMETADATA {SHARED} (/shared/comment /private/comment)")
        assert (
            lines[0] == f'* METADATA {SHARED} (/shared/comment "2024 bills" /private/comment NIL)'
        )
        assert bob.command(f'SETMETADATA {SHARED} (/private/comment "bob")')[-1].endswith(
            "OK SETMETADATA completed"
        )
        refused = bob.command(f'SETMETADATA {SHARED} (/shared/comment "x")')[-1]
        assert "[NOPERM]" in refused  # a shared entry needs "w"
        lines = alice.command("GETMETADATA Invoices /private/comment")
        assert lines[0] == '* METADATA Invoices (/private/comment "mine")'  # not Bob's
    finally:
        alice.close()
        bob.close()
