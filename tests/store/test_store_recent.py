"""Contract: the \\Recent claim (RFC 3501 §2.3.2), one session per message, across processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from courriel.store.base import FlagOp, Mailbox, NewMessage, NotFound, Store, User

MakeMessage = Callable[..., NewMessage]


async def test_claims_are_disjoint_and_never_go_back(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    assert await store.recent_uid(inbox.id) == 0
    await store.append([(inbox.id, message()) for _ in range(3)])
    assert await store.claim_recent(inbox.id, 2) == 0  # UIDs 1 and 2 are this caller's
    assert await store.recent_uid(inbox.id) == 2
    assert await store.claim_recent(inbox.id, 3) == 2  # UID 3 is the next caller's
    assert await store.claim_recent(inbox.id, 1) == 3  # nothing left, nothing lowered
    assert await store.recent_uid(inbox.id) == 3


async def test_concurrent_claims_hand_out_each_uid_once(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append([(inbox.id, message()) for _ in range(8)])
    befores = await asyncio.gather(*(store.claim_recent(inbox.id, u) for u in range(1, 9)))
    given: list[int] = []
    for up_to, before in zip(range(1, 9), befores, strict=True):
        given.extend(range(before + 1, up_to + 1))
    assert sorted(given) == sorted(set(given))  # no UID recent in two sessions
    assert await store.recent_uid(inbox.id) == 8


async def test_a_new_mailbox_starts_unclaimed(store: Store, user: User) -> None:
    box = await store.create_mailbox(user.id, "Work")
    assert await store.recent_uid(box.id) == 0
    with pytest.raises(NotFound):
        await store.claim_recent(box.id + 1000, 1)


async def test_mailbox_since_is_the_mailbox_the_claim_and_the_changes_in_one_read(
    store: Store, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append([(inbox.id, message()) for _ in range(3)])
    await store.claim_recent(inbox.id, 2)
    box = await store.get_mailbox_by_id(inbox.id)
    assert box is not None
    quiet = await store.mailbox_since(inbox.id, box.highestmodseq)
    assert quiet is not None
    assert (quiet.mailbox, quiet.recent_uid, quiet.expunged, quiet.changed) == (box, 2, (), ())
    await store.expunge(inbox.id, [1])
    await store.store_flags(inbox.id, [3], FlagOp.ADD, frozenset({"\\Flagged"}))
    since = await store.mailbox_since(inbox.id, box.highestmodseq)
    assert since is not None
    assert since.mailbox == await store.get_mailbox_by_id(inbox.id)
    assert since.expunged == tuple(await store.expunged_since(inbox.id, box.highestmodseq))
    assert since.changed == tuple(await store.changes_since(inbox.id, box.highestmodseq))
    assert [e.uid for e in since.expunged] == [1] and [i.uid for i in since.changed] == [3]
    latest = since.mailbox.highestmodseq
    asked = await store.mailbox_since(inbox.id, 0, changes=True)  # read even when not asked by
    assert asked is not None and [i.uid for i in asked.changed] == [2, 3]  # the MODSEQ
    unasked = await store.mailbox_since(inbox.id, latest, changes=True)
    assert unasked is not None and unasked.changed == ()
    user_box = await store.create_mailbox(inbox.user_id, "Gone")
    await store.delete_mailbox(inbox.user_id, "Gone")
    assert await store.mailbox_since(user_box.id, 0) is None
