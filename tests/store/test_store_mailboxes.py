"""Contract: mailboxes, hierarchy, UIDVALIDITY, rename, delete, subscriptions, status."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from courriel.store.base import (
    AlreadyExists,
    FlagOp,
    Mailbox,
    NewMessage,
    NotFound,
    Store,
    StoreError,
    User,
)

MakeMessage = Callable[..., NewMessage]


async def test_create_and_get(store: Store, user: User) -> None:
    box = await store.create_mailbox(user.id, "Sent", special_use="\\Sent")
    assert (box.name, box.special_use, box.uidnext, box.user_id) == ("Sent", "\\Sent", 1, user.id)
    assert await store.get_mailbox(user.id, "Sent") == box
    assert await store.get_mailbox_by_id(box.id) == box
    assert await store.get_mailbox(user.id, "sent") is None  # only INBOX ignores case
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(user.id, "Sent")
    with pytest.raises(NotFound):
        await store.create_mailbox(user.id + 99, "Sent")


async def test_inbox_is_case_insensitive(store: Store, user: User, inbox: Mailbox) -> None:
    assert await store.get_mailbox(user.id, "inbox") == inbox
    assert await store.get_mailbox(user.id, "InBoX") == inbox
    with pytest.raises(AlreadyExists):
        await store.create_mailbox(user.id, "Inbox")
    child = await store.create_mailbox(user.id, "inbox/Lists")
    assert child.name == "INBOX/Lists"
    assert await store.get_mailbox(user.id, "Inbox/Lists") == child


async def test_list_mailboxes_by_name(store: Store, user: User) -> None:
    for name in ("b", "a/x", "a"):
        await store.create_mailbox(user.id, name)
    assert [b.name for b in await store.list_mailboxes(user.id)] == ["INBOX", "a", "a/x", "b"]


async def test_uidvalidity_distinct_and_new_after_recreate(store: Store, user: User) -> None:
    first = await store.create_mailbox(user.id, "Projects")
    other = await store.create_mailbox(user.id, "Other")
    assert first.uidvalidity != other.uidvalidity
    await store.delete_mailbox(user.id, "Projects")
    again = await store.create_mailbox(user.id, "Projects")
    assert again.uidvalidity > first.uidvalidity
    assert again.id != first.id


async def test_delete_mailbox_keeps_children(
    store: Store, user: User, message: MakeMessage
) -> None:
    parent = await store.create_mailbox(user.id, "a")
    child = await store.create_mailbox(user.id, "a/b")
    await store.append([(parent.id, message(1)), (child.id, message(2))])
    await store.delete_mailbox(user.id, "a")
    assert await store.get_mailbox(user.id, "a") is None
    assert await store.get_mailbox(user.id, "a/b") == await store.get_mailbox_by_id(child.id)
    assert len(await store.list_messages(child.id)) == 1
    with pytest.raises(NotFound):
        await store.mailbox_status(parent.id)
    with pytest.raises(NotFound):
        await store.delete_mailbox(user.id, "a")


async def test_delete_inbox_refused(store: Store, user: User, inbox: Mailbox) -> None:
    with pytest.raises(StoreError):
        await store.delete_mailbox(user.id, "inbox")
    assert await store.get_mailbox_by_id(inbox.id) == inbox


async def test_rename_with_children_keeps_uidvalidity(
    store: Store, user: User, message: MakeMessage
) -> None:
    a = await store.create_mailbox(user.id, "a")
    ab = await store.create_mailbox(user.id, "a/b")
    abc = await store.create_mailbox(user.id, "a/b/c")
    ax = await store.create_mailbox(user.id, "ax")  # shares the prefix, not the hierarchy
    await store.append([(ab.id, message(1))])
    renamed = await store.rename_mailbox(user.id, "a", "z/y")
    assert (renamed.id, renamed.name, renamed.uidvalidity) == (a.id, "z/y", a.uidvalidity)
    names = {b.id: b.name for b in await store.list_mailboxes(user.id)}
    assert names[ab.id] == "z/y/b" and names[abc.id] == "z/y/b/c" and names[ax.id] == "ax"
    moved = await store.get_mailbox_by_id(ab.id)
    assert moved is not None and moved.uidvalidity == ab.uidvalidity and moved.uidnext == 2
    assert len(await store.list_messages(ab.id)) == 1


async def test_rename_conflicts(store: Store, user: User) -> None:
    await store.create_mailbox(user.id, "a")
    await store.create_mailbox(user.id, "a/c")
    await store.create_mailbox(user.id, "b")
    await store.create_mailbox(user.id, "d/c")
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(user.id, "a", "b")
    with pytest.raises(NotFound):
        await store.rename_mailbox(user.id, "nope", "x")
    with pytest.raises(StoreError):
        await store.rename_mailbox(user.id, "a", "a/inner")
    # "d" does not exist, but a child of the target does: "a/c" would become "d/c".
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(user.id, "a", "d")
    assert [b.name for b in await store.list_mailboxes(user.id)] == [
        "INBOX",
        "a",
        "a/c",
        "b",
        "d/c",
    ]


async def test_rename_into_overlapping_subtree(store: Store, user: User) -> None:
    # "a/b" -> "a" while "a/b/b" exists: the subtrees overlap by name along the way.
    await store.create_mailbox(user.id, "a/b")
    await store.create_mailbox(user.id, "a/b/b")
    await store.create_mailbox(user.id, "a/b/b/c")
    await store.rename_mailbox(user.id, "a/b", "a")
    assert [b.name for b in await store.list_mailboxes(user.id)] == ["INBOX", "a", "a/b", "a/b/c"]


async def test_rename_inbox_moves_messages(
    store: Store, user: User, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append([(inbox.id, message(i, flags=frozenset({"\\Seen"}))) for i in range(3)])
    child = await store.create_mailbox(user.id, "INBOX/kept")
    old = await store.rename_mailbox(user.id, "inbox", "Old Mail")
    assert old.name == "Old Mail" and old.id != inbox.id and old.uidvalidity != inbox.uidvalidity
    moved = await store.list_messages(old.id)
    assert [m.uid for m in moved] == [1, 2, 3]
    assert all(m.flags == {"\\Seen"} for m in moved)
    assert await store.read_message(old.id, 2) == message(1).raw
    after = await store.get_mailbox(user.id, "INBOX")
    assert after is not None and after.id == inbox.id and after.uidvalidity == inbox.uidvalidity
    assert await store.list_messages(inbox.id) == []
    assert [e.uid for e in await store.expunged_since(inbox.id, 0)] == [1, 2, 3]
    assert after.uidnext == 4  # UIDs of INBOX are never reused
    assert await store.get_mailbox_by_id(child.id) == child  # children of INBOX stay


async def test_subscriptions(store: Store, user: User) -> None:
    assert await store.subscriptions(user.id) == []
    await store.set_subscribed(user.id, "Lists", True)
    await store.set_subscribed(user.id, "inbox", True)
    await store.set_subscribed(user.id, "Lists", True)  # idempotent
    assert await store.subscriptions(user.id) == ["INBOX", "Lists"]
    await store.set_subscribed(user.id, "Lists", False)
    await store.set_subscribed(user.id, "Lists", False)
    assert await store.subscriptions(user.id) == ["INBOX"]
    with pytest.raises(NotFound):
        await store.set_subscribed(user.id + 99, "x", True)


async def test_subscription_outlives_mailbox(store: Store, user: User) -> None:
    await store.create_mailbox(user.id, "Temp")
    await store.set_subscribed(user.id, "Temp", True)
    await store.delete_mailbox(user.id, "Temp")
    assert await store.subscriptions(user.id) == ["Temp"]  # RFC 9051 §6.3.7


async def test_status(store: Store, inbox: Mailbox, message: MakeMessage) -> None:
    empty = await store.mailbox_status(inbox.id)
    assert (empty.messages, empty.unseen, empty.size) == (0, 0, 0)
    msgs = [message(i, size=100 + i) for i in range(4)]
    await store.append([(inbox.id, m) for m in msgs])
    await store.store_flags(inbox.id, [1, 2], FlagOp.ADD, frozenset({"\\Seen"}))
    st = await store.mailbox_status(inbox.id)
    assert (st.messages, st.unseen, st.size) == (4, 2, sum(len(m.raw) for m in msgs))
    assert st.mailbox.uidnext == 5 and st.mailbox.id == inbox.id
    with pytest.raises(NotFound):
        await store.mailbox_status(inbox.id + 999)


async def test_rename_inbox_below_itself(
    store: Store, user: User, inbox: Mailbox, message: MakeMessage
) -> None:
    await store.append([(inbox.id, message(1))])
    old = await store.rename_mailbox(user.id, "INBOX", "inbox/2023")
    assert old.name == "INBOX/2023"
    assert await store.read_message(old.id, 1) == message(1).raw
    with pytest.raises(AlreadyExists):
        await store.rename_mailbox(user.id, "INBOX", "INBOX/2023")


@pytest.mark.parametrize("bad", ["", "/a", "a/", "a//b", "a\0b"])
async def test_bad_names_refused(store: Store, user: User, bad: str) -> None:
    await store.create_mailbox(user.id, "ok")
    with pytest.raises(StoreError):
        await store.create_mailbox(user.id, bad)
    with pytest.raises(StoreError):
        await store.rename_mailbox(user.id, "ok", bad)
    assert [b.name for b in await store.list_mailboxes(user.id)] == ["INBOX", "ok"]
