"""Contract: copies and new messages a user makes in or out of another user's mailbox carry
that user's own \\Seen (RFC 4314 §4), written in the copy's or append's one transaction, on
every backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from courriel.store.base import Mailbox, NewMessage, OverQuota, Store, User

MakeMessage = Callable[..., NewMessage]
SEEN = "\\Seen"


async def highest(store: Store, mailbox_id: int) -> int:
    box = await store.get_mailbox_by_id(mailbox_id)
    assert box is not None
    return box.highestmodseq


async def flags_of(store: Store, mailbox_id: int) -> dict[int, frozenset[str]]:
    return {i.uid: i.flags for i in await store.list_messages(mailbox_id)}


@pytest.fixture
async def bob(store: Store, user: User) -> User:
    return await store.add_user("bob@example.org", "x")


async def test_append_gives_the_appender_seen_on_another_users_mailbox(
    store: Store, user: User, bob: User, inbox: Mailbox, message: MakeMessage
) -> None:
    before = await highest(store, inbox.id)
    appended = await store.append(
        [
            (inbox.id, message(1, flags=frozenset({SEEN, "\\Flagged"}))),
            (inbox.id, message(2, flags=frozenset({"$Work"}))),
        ],
        seen_user=bob.id,
    )
    assert [a.uid for a in appended] == [1, 2]
    assert await flags_of(store, inbox.id) == {1: {"\\Flagged"}, 2: {"$Work"}}
    assert await store.private_seen(inbox.id, bob.id) == {1}
    assert await store.private_seen(inbox.id, user.id) == set()
    # One write: the messages and bob's \Seen share the append's one MODSEQ.
    assert await highest(store, inbox.id) == before + 1 == appended[0].modseq
    # On the appender's own mailbox \Seen stays the message's flag.
    own = await store.get_mailbox(bob.id, "INBOX")
    assert own is not None
    await store.append([(own.id, message(3, flags=frozenset({SEEN})))], seen_user=bob.id)
    assert await flags_of(store, own.id) == {1: {SEEN}}
    assert await store.private_seen(own.id, bob.id) == set()


async def test_a_failed_append_leaves_neither_message_nor_seen(
    store: Store, user: User, bob: User, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.set_count_quota(user.address, 1, None)
    seen = frozenset({SEEN})
    with pytest.raises(OverQuota):  # charged after the messages and the rows are written
        await store.append(
            [(inbox.id, message(1, flags=seen)), (inbox.id, message(2, flags=seen))],
            seen_user=bob.id,
        )
    assert await store.list_messages(inbox.id) == []
    assert await store.private_seen(inbox.id, bob.id) == set()
    await store.append([(inbox.id, message(3, flags=seen))], seen_user=bob.id)
    assert await store.private_seen(inbox.id, bob.id) == {1}  # UID 1 again: none was taken


async def test_replace_gives_the_replacer_seen(
    store: Store, user: User, bob: User, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append([(inbox.id, message(1, flags=frozenset({SEEN})))])
    appended, gone = await store.replace(
        inbox.id, 1, inbox.id, message(2, flags=frozenset({SEEN})), seen_user=bob.id
    )
    assert [e.uid for e in gone] == [1]
    assert await flags_of(store, inbox.id) == {appended.uid: frozenset()}
    assert await store.private_seen(inbox.id, bob.id) == {appended.uid}


async def test_copy_within_another_users_mailboxes_carries_the_copiers_seen(
    store: Store, user: User, bob: User, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append(
        [
            (inbox.id, message(1, flags=frozenset({SEEN}))),  # seen by alice, not by bob
            (inbox.id, message(2)),  # seen by bob, not by alice
            (inbox.id, message(3, flags=frozenset({SEEN, "\\Answered"}))),  # by both
        ]
    )
    await store.set_private_seen(inbox.id, bob.id, [2, 3], True)
    archive = await store.create_mailbox(user.id, "Archive")
    before = await highest(store, archive.id)
    copied = await store.copy(inbox.id, [1, 2, 3], archive.id, seen_user=bob.id, rights="stw")
    assert copied.pairs == [(1, 1), (2, 2), (3, 3)]
    # alice's \Seen does not travel with bob's copies; bob's own does, as his row.
    assert await flags_of(store, archive.id) == {1: frozenset(), 2: frozenset(), 3: {"\\Answered"}}
    assert await store.private_seen(archive.id, bob.id) == {2, 3}
    assert await store.private_seen(archive.id, user.id) == set()
    assert await highest(store, archive.id) == before + 1  # one write, one MODSEQ
    # The source is as it was.
    assert await flags_of(store, inbox.id) == {1: {SEEN}, 2: frozenset(), 3: {SEEN, "\\Answered"}}


async def test_copy_out_of_another_users_mailbox_gives_the_copiers_seen_as_the_flag(
    store: Store, user: User, bob: User, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append(
        [(inbox.id, message(1, flags=frozenset({SEEN}))), (inbox.id, message(2))],
    )
    await store.set_private_seen(inbox.id, bob.id, [2], True)
    own = await store.create_mailbox(bob.id, "From alice")
    moved = await store.move(inbox.id, [1, 2], own.id, seen_user=bob.id, rights="lrswite")
    assert moved.pairs == [(1, 1), (2, 2)]
    assert await flags_of(store, own.id) == {1: frozenset(), 2: {SEEN}}
    assert await store.private_seen(own.id, bob.id) == set()
    assert await store.list_messages(inbox.id) == []


async def test_copy_keeps_only_the_flags_the_rights_allow(
    store: Store, user: User, bob: User, inbox: Mailbox, message: MakeMessage
) -> None:
    flags = frozenset({SEEN, "\\Deleted", "\\Flagged", "$Work"})
    own = await store.get_mailbox(bob.id, "INBOX")
    assert own is not None
    await store.append([(own.id, message(1, flags=flags))])
    archive = await store.create_mailbox(user.id, "Archive")
    await store.copy(own.id, [1], archive.id, seen_user=bob.id, rights="lri")
    assert await flags_of(store, archive.id) == {1: frozenset()}
    assert await store.private_seen(archive.id, bob.id) == set()  # no "s": no \Seen either
    await store.copy(own.id, [1], archive.id, seen_user=bob.id, rights="lris")
    assert await flags_of(store, archive.id) == {1: frozenset(), 2: frozenset()}
    assert await store.private_seen(archive.id, bob.id) == {2}
    await store.copy(own.id, [1], archive.id, seen_user=bob.id, rights="lrit")
    assert (await flags_of(store, archive.id))[3] == {"\\Deleted"}
    await store.copy(own.id, [1], archive.id, seen_user=bob.id, rights="lriw")
    assert (await flags_of(store, archive.id))[4] == {"\\Flagged", "$Work"}
    # Without seen_user a copy is the owner's own: every flag as it is.
    await store.copy(own.id, [1], own.id)
    assert (await flags_of(store, own.id))[2] == flags


async def test_a_failed_copy_or_move_leaves_neither_copies_nor_seen(
    store: Store, user: User, bob: User, inbox: Mailbox, message: MakeMessage
) -> None:
    own = await store.get_mailbox(bob.id, "INBOX")
    assert own is not None
    await store.append(
        [
            (own.id, message(1, flags=frozenset({SEEN}))),
            (own.id, message(2, flags=frozenset({SEEN}))),
        ]
    )
    await store.append([(inbox.id, message(3))])
    await store.set_count_quota(user.address, 2, None)  # alice has room for one more
    for move in (False, True):
        do = store.move if move else store.copy
        with pytest.raises(OverQuota):  # charged after the copies and the rows are written
            await do(own.id, [1, 2], inbox.id, seen_user=bob.id, rights="lrsi")
        assert [i.uid for i in await store.list_messages(inbox.id)] == [1]
        assert await store.private_seen(inbox.id, bob.id) == set()
        assert [i.uid for i in await store.list_messages(own.id)] == [1, 2]  # not moved
    moved = await store.move(own.id, [2], inbox.id, seen_user=bob.id, rights="lrsi")
    assert moved.pairs == [(2, 2)]
    assert await store.private_seen(inbox.id, bob.id) == {2}
    assert await flags_of(store, inbox.id) == {1: frozenset(), 2: frozenset()}
