"""Contract: the MESSAGE and MAILBOX quota resources (RFC 9208 §5.2, §5.3) on every backend."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from courriel.store.base import Mailbox, NewMessage, NotFound, OverQuota, Store, User

MakeMessage = Callable[..., NewMessage]


async def test_message_limit_refuses_appends_and_copies_past_it(
    store: Store, user: User, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.set_count_quota(user.address, 3, None)
    await store.append([(inbox.id, message(1)), (inbox.id, message(2))])
    with pytest.raises(OverQuota):
        await store.append([(inbox.id, message(3)), (inbox.id, message(4))])  # all or nothing
    usage = await store.quota_usage(user.id)
    assert (usage.messages, usage.limit_messages) == (2, 3)
    archive = await store.create_mailbox(user.id, "Archive")
    with pytest.raises(OverQuota):
        await store.copy(inbox.id, [1, 2], archive.id)
    moved = await store.move(inbox.id, [1, 2], archive.id)  # a move adds nothing
    assert len(moved.pairs) == 2
    await store.append([(inbox.id, message(5))])
    assert (await store.quota_usage(user.id)).messages == 3
    await store.set_count_quota(user.address, None, None)
    await store.append([(inbox.id, message(6))])


async def test_mailbox_limit_refuses_creates_past_it(store: Store, user: User) -> None:
    have = (await store.quota_usage(user.id)).mailboxes
    assert have == len(await store.list_mailboxes(user.id))
    await store.set_count_quota(user.address, None, have + 1)
    await store.create_mailbox(user.id, "One")
    with pytest.raises(OverQuota):
        await store.create_mailbox(user.id, "Two")
    usage = await store.quota_usage(user.id)
    assert (usage.mailboxes, usage.limit_mailboxes, usage.limited) == (have + 1, have + 1, True)
    with pytest.raises(NotFound):
        await store.set_count_quota("nobody@example.org", 1, 1)
