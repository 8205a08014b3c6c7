"""Contract: \\Seen kept per grantee on another user's mailbox (RFC 4314 §4), on every backend."""

from __future__ import annotations

from collections.abc import Callable

from courriel.store.base import ChangeKind, Mailbox, NewMessage, Store, User

MakeMessage = Callable[..., NewMessage]


async def test_private_seen_is_per_user_and_bumps_modseq(
    store: Store, user: User, inbox: Mailbox, message: MakeMessage
) -> None:
    bob = await store.add_user("bob@example.org", "x")
    await store.append([(inbox.id, message(n)) for n in range(3)])
    before = (await store.get_mailbox_by_id(inbox.id)).highestmodseq  # type: ignore[union-attr]
    sub = await store.events.subscribe(user.id)
    try:
        assert await store.set_private_seen(inbox.id, bob.id, [1, 2, 9], True) == [1, 2]
        assert await store.private_seen(inbox.id, bob.id) == {1, 2}
        assert await store.private_seen(inbox.id, user.id) == set()
        assert await store.set_private_seen(inbox.id, bob.id, [1, 2], True) == []  # no change
        changed = await store.changes_since(inbox.id, before)
        assert [i.uid for i in changed] == [1, 2]
        assert all("\\Seen" not in i.flags for i in changed)  # the owner's flags are untouched
        async for change in sub:
            assert change.kind is ChangeKind.FLAGS_CHANGED and change.uids == (1, 2)
            break
        assert await store.set_private_seen(inbox.id, bob.id, [2, 3], False) == [2]
        assert await store.private_seen(inbox.id, bob.id) == {1}
    finally:
        await sub.close()
    await store.remove_user(bob.address)
    bob = await store.add_user("bob@example.org", "x")
    assert await store.private_seen(inbox.id, bob.id) == set()


async def test_private_seen_goes_with_the_messages(
    store: Store, user: User, inbox: Mailbox, message: MakeMessage
) -> None:
    """Expunged or moved away, a message takes the grantees' \\Seen of it along: a shared
    mailbox does not keep a row for every message a grantee ever read."""
    bob = await store.add_user("bob@example.org", "x")
    other = await store.create_mailbox(user.id, "Other")
    await store.append([(inbox.id, message(n)) for n in range(4)])
    assert await store.set_private_seen(inbox.id, bob.id, [1, 2, 3, 4], True) == [1, 2, 3, 4]
    await store.expunge(inbox.id, [1, 3])
    assert await store.private_seen(inbox.id, bob.id) == {2, 4}
    await store.move(inbox.id, [2], other.id)
    assert await store.private_seen(inbox.id, bob.id) == {4}
