"""Contract: append, UIDs, MODSEQ, flags, expunge, copy, move, quota."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

import pytest

from courriel.store.base import (
    FlagOp,
    Mailbox,
    NewMessage,
    NotFound,
    OverQuota,
    Store,
    User,
)

MakeMessage = Callable[..., NewMessage]


class Backend(Protocol):
    async def open(self) -> Store: ...


SEEN = frozenset({"\\Seen"})


async def test_append_returns_uids_and_stores_exactly(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    zone = timezone(timedelta(hours=-7))
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=zone)
    raw = b"From: a\r\n\r\n\x00\xff binary\r\n"
    msg = NewMessage(raw, when, frozenset({"\\Flagged", "$Label"}), b"\x01meta")
    [a] = await store.append([(inbox.id, msg)])
    assert (a.mailbox_id, a.uidvalidity, a.uid) == (inbox.id, inbox.uidvalidity, 1)
    assert a.modseq > inbox.highestmodseq
    assert await store.read_message(inbox.id, 1) == msg.raw
    assert await store.get_meta(inbox.id, [1, 2]) == {1: b"\x01meta"}
    [info] = await store.list_messages(inbox.id)
    assert (info.uid, info.modseq, info.size) == (1, a.modseq, len(msg.raw))
    assert info.flags == {"\\Flagged", "$Label"}
    assert (
        info.internal_date == msg.internal_date
        and info.internal_date.utcoffset() == zone.utcoffset(None)
    )


async def test_read_messages_reads_many_at_once_and_leaves_out_the_expunged(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    # A small body (kept in the database by SQLite) and a large one (a file there).
    sent = [message(1), message(2, size=300_000), message(3), message(4)]
    await store.append([(inbox.id, m) for m in sent])
    await store.expunge(inbox.id, [3])
    found = await store.read_messages(inbox.id, [1, 2, 3, 4, 99])
    assert found == {1: sent[0].raw, 2: sent[1].raw, 4: sent[3].raw}
    assert await store.read_messages(inbox.id, [4, 1]) == {1: sent[0].raw, 4: sent[3].raw}
    assert await store.read_messages(inbox.id, []) == {}


async def test_recent_never_stored_and_system_flags_canonical(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append([(inbox.id, message(1, flags=frozenset({"\\Recent", "\\seen", "$x"})))])
    [info] = await store.list_messages(inbox.id)
    assert info.flags == {"\\Seen", "$x"}


async def test_multi_mailbox_append_is_one_call(
    store: Store, user: User, inbox: Mailbox, message: MakeMessage
) -> None:
    other = await store.create_mailbox(user.id, "Other")
    res = await store.append(
        [(inbox.id, message(1)), (other.id, message(2)), (inbox.id, message(3))]
    )
    assert [(r.mailbox_id, r.uid) for r in res] == [(inbox.id, 1), (other.id, 1), (inbox.id, 2)]
    assert res[0].modseq == res[2].modseq  # one MODSEQ per call per mailbox
    assert await store.read_message(inbox.id, 2) == message(3).raw


async def test_append_to_missing_mailbox_writes_nothing(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    with pytest.raises(NotFound):
        await store.append([(inbox.id, message(1)), (inbox.id + 999, message(2))])
    assert await store.list_messages(inbox.id) == []
    after = await store.get_mailbox_by_id(inbox.id)
    assert after == inbox  # no UID or MODSEQ was consumed


async def test_uids_increase_and_are_never_reused(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    seen: list[int] = []
    for round_ in range(3):
        res = await store.append([(inbox.id, message(round_ * 10 + i)) for i in range(3)])
        seen += [r.uid for r in res]
        await store.expunge(inbox.id, [r.uid for r in res])
    assert seen == sorted(set(seen)) and seen[0] == 1
    box = await store.get_mailbox_by_id(inbox.id)
    assert box is not None and box.uidnext == seen[-1] + 1


async def test_uids_survive_reopen(backend: Backend, message: MakeMessage) -> None:
    s = await backend.open()
    await s.add_domain("example.org")
    user = await s.add_user("a@example.org", "h")
    box = await s.create_mailbox(user.id, "Box")
    await s.append([(box.id, message(i)) for i in range(3)])
    await s.expunge(box.id, [2, 3])
    before = await s.get_mailbox_by_id(box.id)
    await s.close()
    s = await backend.open()
    try:
        after = await s.get_mailbox_by_id(box.id)
        assert after == before  # same UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ
        [new] = await s.append([(box.id, message(9))])
        assert new.uid == 4 and before is not None and new.modseq > before.highestmodseq
        assert [e.uid for e in await s.expunged_since(box.id, 0)] == [2, 3]
        assert await s.read_message(box.id, 1) == message(0).raw
    finally:
        await s.close()


async def test_concurrent_appends_get_distinct_increasing_uids(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    results = await asyncio.gather(*(store.append([(inbox.id, message(i))]) for i in range(40)))
    uids = sorted(r[0].uid for r in results)
    assert uids == list(range(1, 41))
    modseqs = sorted(r[0].modseq for r in results)
    assert len(set(modseqs)) == 40  # separate calls, separate MODSEQs
    # Each message is stored under the UID its call was told.
    for i, [r] in enumerate(results):
        assert await store.read_message(inbox.id, r.uid) == message(i).raw


async def test_store_flags_ops_and_modseq(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append([(inbox.id, message(i)) for i in range(3)])
    res = await store.store_flags(inbox.id, [1, 2, 99], FlagOp.ADD, frozenset({"\\Seen", "work"}))
    assert [c.uid for c in res.changed] == [1, 2] and res.modified == []
    modseq = res.changed[0].modseq
    assert {c.modseq for c in res.changed} == {modseq}
    assert all(c.flags == {"\\Seen", "work"} for c in res.changed)
    box = await store.get_mailbox_by_id(inbox.id)
    assert box is not None and box.highestmodseq == modseq

    res = await store.store_flags(inbox.id, [1, 2, 3], FlagOp.REMOVE, frozenset({"work"}))
    assert [c.uid for c in res.changed] == [1, 2] and res.changed[0].modseq > modseq
    res2 = await store.store_flags(inbox.id, [1], FlagOp.REPLACE, frozenset({"\\Draft"}))
    assert res2.changed[0].flags == {"\\Draft"} and res2.changed[0].modseq > res.changed[0].modseq
    infos = {m.uid: m for m in await store.list_messages(inbox.id)}
    assert (infos[1].flags, infos[2].flags, infos[3].flags) == ({"\\Draft"}, SEEN, frozenset())


async def test_noop_flag_change_keeps_modseq(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append([(inbox.id, message(1, flags=SEEN))])
    before = await store.get_mailbox_by_id(inbox.id)
    res = await store.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"\\SEEN", "\\Recent"}))
    assert res.changed == [] and res.modified == []
    assert await store.get_mailbox_by_id(inbox.id) == before
    assert await store.changes_since(inbox.id, before.highestmodseq if before else 0) == []


async def test_unchanged_since(store: Store, inbox: Mailbox, message: MakeMessage) -> None:
    # RFC 7162 §3.1.3: messages changed after UNCHANGEDSINCE are left alone and reported.
    await store.append([(inbox.id, message(i)) for i in range(3)])
    base = (await store.list_messages(inbox.id))[0].modseq
    bumped = await store.store_flags(inbox.id, [2], FlagOp.ADD, frozenset({"$x"}))
    res = await store.store_flags(inbox.id, [1, 2, 3], FlagOp.ADD, SEEN, unchanged_since=base)
    assert [c.uid for c in res.changed] == [1, 3] and res.modified == [2]
    infos = {m.uid: m for m in await store.list_messages(inbox.id)}
    assert infos[2].flags == {"$x"} and infos[2].modseq == bumped.changed[0].modseq
    assert infos[1].flags == SEEN


async def test_changes_since(store: Store, inbox: Mailbox, message: MakeMessage) -> None:
    [a, _] = await store.append([(inbox.id, message(1)), (inbox.id, message(2))])
    await store.append([(inbox.id, message(3))])
    flags = await store.store_flags(inbox.id, [1], FlagOp.ADD, SEEN)
    since = await store.changes_since(inbox.id, a.modseq)
    assert [m.uid for m in since] == [1, 3]
    assert since[0].modseq == flags.changed[0].modseq
    assert await store.changes_since(inbox.id, flags.changed[0].modseq) == []


async def test_expunge_logs_with_modseq(store: Store, inbox: Mailbox, message: MakeMessage) -> None:
    await store.append([(inbox.id, message(i)) for i in range(4)])
    top = (await store.get_mailbox_by_id(inbox.id)).highestmodseq  # type: ignore[union-attr]
    gone = await store.expunge(inbox.id, [2, 3, 42])
    assert [e.uid for e in gone] == [2, 3]
    assert gone[0].modseq == gone[1].modseq > top
    assert [m.uid for m in await store.list_messages(inbox.id)] == [1, 4]
    assert await store.expunged_since(inbox.id, top) == gone
    assert await store.expunged_since(inbox.id, gone[0].modseq) == []
    with pytest.raises(NotFound):
        await store.read_message(inbox.id, 2)
    assert await store.expunge(inbox.id, [2, 3]) == []  # nothing left: no new MODSEQ
    box = await store.get_mailbox_by_id(inbox.id)
    assert box is not None and box.highestmodseq == gone[0].modseq


async def test_expunge_deleted_decides_in_its_transaction(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    deleted = frozenset({"\\Deleted"})
    await store.append([(inbox.id, message(i)) for i in range(5)])
    await store.store_flags(inbox.id, [1, 2, 4, 5], FlagOp.ADD, deleted)
    # another session clears \Deleted on 2 before the expunge: 2 stays
    await store.store_flags(inbox.id, [2], FlagOp.REMOVE, deleted)
    gone = await store.expunge_deleted(inbox.id, [3, 4])  # UID EXPUNGE 3:4
    assert [e.uid for e in gone] == [4]
    gone = await store.expunge_deleted(inbox.id)  # EXPUNGE
    assert [e.uid for e in gone] == [1, 5]
    assert [m.uid for m in await store.list_messages(inbox.id)] == [2, 3]
    assert await store.expunge_deleted(inbox.id) == []


async def test_list_messages_range(store: Store, inbox: Mailbox, message: MakeMessage) -> None:
    await store.append([(inbox.id, message(i)) for i in range(6)])
    await store.expunge(inbox.id, [3])
    assert [m.uid for m in await store.list_messages(inbox.id, 2, 5)] == [2, 4, 5]
    assert [m.uid for m in await store.list_messages(inbox.id, 5)] == [5, 6]
    assert await store.list_messages(inbox.id, 7) == []


async def test_copy(store: Store, user: User, inbox: Mailbox, message: MakeMessage) -> None:
    dst = await store.create_mailbox(user.id, "Dst")
    await store.append([(dst.id, message(100))])
    await store.append(
        [(inbox.id, message(i, flags=SEEN if i == 2 else frozenset())) for i in range(4)]
    )
    res = await store.copy(inbox.id, [4, 3, 1, 77], dst.id)
    assert res.uidvalidity == dst.uidvalidity
    assert res.pairs == [(1, 2), (3, 3), (4, 4)]  # ascending source UID order
    copied = {m.uid: m for m in await store.list_messages(dst.id)}
    assert copied[3].flags == SEEN and copied[3].internal_date == message(2).internal_date
    assert await store.read_message(dst.id, 4) == message(3).raw
    assert await store.get_meta(dst.id, [2]) == {2: message(0).meta}
    assert len(await store.list_messages(inbox.id)) == 4  # the source is untouched
    assert (await store.copy(inbox.id, [50], dst.id)).pairs == []


async def test_copy_into_same_mailbox(store: Store, inbox: Mailbox, message: MakeMessage) -> None:
    await store.append([(inbox.id, message(1))])
    res = await store.copy(inbox.id, [1], inbox.id)
    assert res.pairs == [(1, 2)]
    assert await store.read_message(inbox.id, 2) == message(1).raw


async def test_move(store: Store, user: User, inbox: Mailbox, message: MakeMessage) -> None:
    dst = await store.create_mailbox(user.id, "Dst")
    await store.append([(inbox.id, message(i)) for i in range(3)])
    usage = await store.quota_usage(user.id)
    res = await store.move(inbox.id, [3, 1], dst.id)
    assert res.pairs == [(1, 1), (3, 2)]
    assert [m.uid for m in await store.list_messages(inbox.id)] == [2]
    assert [e.uid for e in await store.expunged_since(inbox.id, 0)] == [1, 3]
    assert await store.read_message(dst.id, 2) == message(2).raw
    assert await store.quota_usage(user.id) == usage  # moved, not duplicated
    with pytest.raises(NotFound):
        await store.move(inbox.id, [2], dst.id + 999)
    assert [m.uid for m in await store.list_messages(inbox.id)] == [2]


async def test_quota_usage_and_over_quota(store: Store, message: MakeMessage) -> None:
    await store.add_domain("example.org")
    u = await store.add_user("q@example.org", "h", quota_bytes=1000)
    box = await store.get_mailbox(u.id, "INBOX")
    assert box is not None
    m1, m2 = message(1, size=600), message(2, size=300)
    await store.append([(box.id, m1), (box.id, m2)])
    usage = await store.quota_usage(u.id)
    assert (usage.bytes, usage.messages, usage.limit_bytes) == (900, 2, 1000)
    with pytest.raises(OverQuota):
        await store.append([(box.id, message(3, size=200))])
    with pytest.raises(OverQuota):
        await store.copy(box.id, [1], box.id)
    assert (await store.quota_usage(u.id)).bytes == 900  # nothing of the refused writes
    assert len(await store.list_messages(box.id)) == 2
    await store.expunge(box.id, [1])
    after = await store.quota_usage(u.id)
    assert (after.bytes, after.messages, after.limit_bytes) == (300, 1, 1000)
    await store.append([(box.id, message(3, size=200))])
    await store.set_quota(u.address, None)
    await store.append([(box.id, message(4, size=5000))])
    assert (await store.quota_usage(u.id)).bytes == 5500
    with pytest.raises(NotFound):
        await store.quota_usage(u.id + 999)


async def test_over_quota_in_one_call_writes_nothing(store: Store, message: MakeMessage) -> None:
    await store.add_domain("example.org")
    rich = await store.add_user("rich@example.org", "h")
    poor = await store.add_user("poor@example.org", "h", quota_bytes=100)
    rb, pb = await store.get_mailbox(rich.id, "INBOX"), await store.get_mailbox(poor.id, "INBOX")
    assert rb is not None and pb is not None
    big = message(1, size=500)
    with pytest.raises(OverQuota):
        await store.append([(rb.id, big), (pb.id, big)])  # one delivery, two recipients
    assert await store.list_messages(rb.id) == []
    assert (await store.quota_usage(rich.id)).bytes == 0


async def test_missing_mailbox_errors(store: Store, inbox: Mailbox) -> None:
    ghost = inbox.id + 999
    with pytest.raises(NotFound):
        await store.store_flags(ghost, [1], FlagOp.ADD, SEEN)
    with pytest.raises(NotFound):
        await store.expunge(ghost, [1])
    with pytest.raises(NotFound):
        await store.copy(ghost, [1], inbox.id)
    with pytest.raises(NotFound):
        await store.read_message(inbox.id, 1)


async def test_internal_date_roundtrip_utc(store: Store, inbox: Mailbox) -> None:
    when = datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)
    await store.append([(inbox.id, NewMessage(b"x", when))])
    [info] = await store.list_messages(inbox.id)
    assert info.internal_date == when and info.flags == frozenset()


async def test_cancelled_appends_leave_a_consistent_store(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    # A cancelled caller may or may not have its message stored, but never half of it.
    tasks = [asyncio.create_task(store.append([(inbox.id, message(i))])) for i in range(30)]
    for i, task in enumerate(tasks):
        for _ in range(i % 4):
            await asyncio.sleep(0)
        task.cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    acked = {r[0].uid for r in done if isinstance(r, list)}
    async with asyncio.timeout(10):  # writes already submitted finish on their own
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:
            await asyncio.wait(others)
    infos = await store.list_messages(inbox.id)
    box = await store.get_mailbox_by_id(inbox.id)
    assert box is not None and box.uidnext == len(infos) + 1
    assert acked <= {m.uid for m in infos}
    for info in infos:
        assert (await store.read_message(inbox.id, info.uid)).startswith(b"Subject: message ")
    [after] = await store.append([(inbox.id, message(99))])
    assert after.uid == box.uidnext
