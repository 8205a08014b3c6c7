"""Change events: the in-process fan-out, the wire form, and the store publishing after commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from courriel.store.base import (
    Change,
    ChangeKind,
    FlagOp,
    Mailbox,
    NewMessage,
    Store,
    Subscription,
    User,
)
from courriel.store.events import LocalEvents, decode_change, encode_change

MakeMessage = Callable[..., NewMessage]


async def next_change(sub: Subscription) -> Change:
    async with asyncio.timeout(2):
        return await anext(aiter(sub))


async def test_local_events_per_user() -> None:
    events = LocalEvents()
    a1, a2, b = await events.subscribe(1), await events.subscribe(1), await events.subscribe(2)
    c = Change(1, 10, ChangeKind.MESSAGES_ADDED, 5, (1, 2))
    await events.publish(c)
    assert await next_change(a1) == c and await next_change(a2) == c
    assert b.pending() == 0
    await events.close()


async def test_subscription_ends_when_closed() -> None:
    events = LocalEvents()
    sub = await events.subscribe(1)
    await events.publish(Change(1, 10, ChangeKind.EXPUNGED, 3, (4,)))

    async def drain() -> list[Change]:
        return [c async for c in sub]

    task = asyncio.create_task(drain())
    await asyncio.sleep(0)
    await sub.close()
    got = await asyncio.wait_for(task, 2)
    assert got in ([], [Change(1, 10, ChangeKind.EXPUNGED, 3, (4,))])
    await events.publish(Change(1, 10, ChangeKind.EXPUNGED, 4, (5,)))  # no one left: no error
    assert sub.pending() == 0


async def test_slow_subscriber_gets_resync_and_publish_never_blocks() -> None:
    events = LocalEvents(backlog=5)
    slow = await events.subscribe(7)
    fast = await events.subscribe(7)
    for i in range(12):
        await events.publish(Change(7, 1, ChangeKind.FLAGS_CHANGED, i + 2, (i,)))
        assert await next_change(fast) == Change(7, 1, ChangeKind.FLAGS_CHANGED, i + 2, (i,))
    assert slow.pending() <= 6
    got = [await next_change(slow) for _ in range(slow.pending())]
    kinds = [c.kind for c in got]
    assert ChangeKind.RESYNC in kinds
    # After the resync marker, nothing later is lost: the last change is there, in order.
    after = got[kinds.index(ChangeKind.RESYNC) + 1 :]
    assert after[-1].modseq == 13
    assert [c.modseq for c in after] == sorted(c.modseq for c in after)
    assert got[kinds.index(ChangeKind.RESYNC)].mailbox_id == 0
    await events.close()


@pytest.mark.parametrize(
    "change",
    [
        Change(1, 2, ChangeKind.MESSAGES_ADDED, 9, (1, 2, 3)),
        Change(1, 2, ChangeKind.MAILBOX_RENAMED, name="Ärger/Ünïcode"),
        Change(5, 0, ChangeKind.RESYNC),
    ],
)
def test_change_wire_roundtrip(change: Change) -> None:
    text = encode_change(change)
    assert decode_change(text) == change
    assert decode_change(text.encode()) == change


def test_change_wire_drops_uids_that_do_not_fit() -> None:
    big = Change(1, 2, ChangeKind.EXPUNGED, 9, tuple(range(1, 5000)))
    text = encode_change(big)
    assert len(text.encode()) < 8000
    back = decode_change(text)
    assert (back.user_id, back.mailbox_id, back.kind, back.modseq, back.uids) == (
        1,
        2,
        big.kind,
        9,
        (),
    )


async def test_store_publishes_after_commit(
    store: Store, user: User, inbox: Mailbox, message: MakeMessage
) -> None:
    sub = await store.events.subscribe(user.id)
    [a, b] = await store.append([(inbox.id, message(1)), (inbox.id, message(2))])
    change = await next_change(sub)
    assert change == Change(user.id, inbox.id, ChangeKind.MESSAGES_ADDED, a.modseq, (1, 2))
    # When the event arrives the write is visible to any reader.
    assert [m.uid for m in await store.list_messages(inbox.id)] == [a.uid, b.uid]

    flags = await store.store_flags(inbox.id, [2], FlagOp.ADD, frozenset({"\\Seen"}))
    change = await next_change(sub)
    assert (change.kind, change.uids, change.modseq) == (
        ChangeKind.FLAGS_CHANGED,
        (2,),
        flags.changed[0].modseq,
    )
    gone = await store.expunge(inbox.id, [1])
    change = await next_change(sub)
    assert (change.kind, change.uids, change.modseq) == (ChangeKind.EXPUNGED, (1,), gone[0].modseq)

    box = await store.create_mailbox(user.id, "New")
    assert await next_change(sub) == Change(user.id, box.id, ChangeKind.MAILBOX_CREATED, name="New")
    await store.rename_mailbox(user.id, "New", "Newer")
    assert await next_change(sub) == Change(
        user.id, box.id, ChangeKind.MAILBOX_RENAMED, name="Newer"
    )
    await store.delete_mailbox(user.id, "Newer")
    assert await next_change(sub) == Change(
        user.id, box.id, ChangeKind.MAILBOX_DELETED, name="Newer"
    )
    await sub.close()


async def test_failed_write_publishes_nothing(
    store: Store, user: User, inbox: Mailbox, message: MakeMessage
) -> None:
    sub = await store.events.subscribe(user.id)
    await store.set_quota(user.address, 10)
    with pytest.raises(Exception, match="would use"):
        await store.append([(inbox.id, message(1, size=100))])
    noop = await store.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"\\Seen"}))
    assert noop.changed == []
    await store.append([(inbox.id, NewMessage(b"tiny", message(0).internal_date))])
    first = await next_change(sub)
    assert (first.kind, first.uids) == (ChangeKind.MESSAGES_ADDED, (1,))
    await sub.close()


async def test_move_publishes_both_sides(
    store: Store, user: User, inbox: Mailbox, message: MakeMessage
) -> None:
    dst = await store.create_mailbox(user.id, "Dst")
    await store.append([(inbox.id, message(1))])
    sub = await store.events.subscribe(user.id)
    await store.move(inbox.id, [1], dst.id)
    got = {(c.mailbox_id, c.kind, c.uids) for c in [await next_change(sub), await next_change(sub)]}
    assert got == {
        (dst.id, ChangeKind.MESSAGES_ADDED, (1,)),
        (inbox.id, ChangeKind.EXPUNGED, (1,)),
    }
    await sub.close()
