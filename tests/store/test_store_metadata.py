"""Contract: METADATA entries (RFC 5464) on every backend."""

from __future__ import annotations

import pytest

from courriel.store.base import Mailbox, Store, TooMany, User


async def test_private_entries_are_per_user_shared_ones_for_all(
    store: Store, user: User, inbox: Mailbox
) -> None:
    bob = await store.add_user("bob@example.org", "x")
    limits = {"max_entries": 10, "max_bytes": 1000}
    await store.set_metadata(
        inbox.id, user.id, [("/private/comment", b"mine"), ("/shared/comment", b"ours")], **limits
    )
    await store.set_metadata(inbox.id, bob.id, [("/private/comment", b"bob's")], **limits)
    assert await store.get_metadata(inbox.id, user.id) == {
        "/private/comment": b"mine",
        "/shared/comment": b"ours",
    }
    assert await store.get_metadata(inbox.id, bob.id) == {
        "/private/comment": b"bob's",
        "/shared/comment": b"ours",
    }
    assert await store.get_metadata(0, user.id) == {}  # the server's entries are apart
    await store.set_metadata(inbox.id, user.id, [("/shared/comment", None)], **limits)
    assert await store.get_metadata(inbox.id, bob.id) == {"/private/comment": b"bob's"}
    await store.set_metadata(0, user.id, [("/private/vendor/x", b"\x00\xff")], **limits)
    assert await store.get_metadata(0, user.id) == {"/private/vendor/x": b"\x00\xff"}


async def test_limits_roll_the_whole_write_back(store: Store, user: User, inbox: Mailbox) -> None:
    limits = {"max_entries": 2, "max_bytes": 10}
    await store.set_metadata(inbox.id, user.id, [("/private/a", b"12345")], **limits)
    with pytest.raises(TooMany):
        await store.set_metadata(
            inbox.id, user.id, [("/private/b", b"1"), ("/private/c", b"1")], **limits
        )
    with pytest.raises(TooMany):
        await store.set_metadata(inbox.id, user.id, [("/private/b", b"123456")], **limits)
    assert await store.get_metadata(inbox.id, user.id) == {"/private/a": b"12345"}


async def test_entries_go_with_their_mailbox_and_owner(store: Store, user: User) -> None:
    bob = await store.add_user("bob@example.org", "x")
    box = await store.create_mailbox(user.id, "Work")
    limits = {"max_entries": 10, "max_bytes": 1000}
    await store.set_metadata(box.id, bob.id, [("/private/x", b"1")], **limits)
    await store.set_metadata(0, bob.id, [("/private/x", b"1")], **limits)
    await store.remove_user(bob.address)
    bob = await store.add_user("bob@example.org", "x")
    assert await store.get_metadata(box.id, bob.id) == {}
    assert await store.get_metadata(0, bob.id) == {}
    await store.set_metadata(box.id, user.id, [("/shared/x", b"1")], **limits)
    await store.delete_mailbox(user.id, "Work")
    again = await store.create_mailbox(user.id, "Work")
    assert await store.get_metadata(again.id, user.id) == {}
