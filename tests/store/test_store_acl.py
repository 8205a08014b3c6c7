"""Contract: access control lists (RFC 4314) on every backend."""

from __future__ import annotations

import asyncio

import pytest

from courriel.store.base import (
    ALL_RIGHTS,
    ANYONE,
    AclEntry,
    Change,
    ChangeKind,
    Mailbox,
    NotFound,
    Store,
    StoreError,
    User,
)


async def _bob(store: Store) -> User:
    return await store.add_user("bob@example.org", "x")


async def test_grants_are_set_replaced_and_removed(
    store: Store, user: User, inbox: Mailbox
) -> None:
    bob = await _bob(store)
    assert await store.get_acl(inbox.id) == []
    await store.set_acl(inbox.id, bob.id, "rlsk")
    await store.set_acl(inbox.id, ANYONE, "l")
    assert await store.get_acl(inbox.id) == [
        AclEntry(ANYONE, "anyone", "l"),
        AclEntry(bob.id, "bob@example.org", "lrsk"),  # kept in the order of ALL_RIGHTS
    ]
    await store.set_acl(inbox.id, bob.id, "r")
    assert [e.rights for e in await store.get_acl(inbox.id)] == ["l", "r"]
    await store.set_acl(inbox.id, ANYONE, "")
    assert await store.get_acl(inbox.id) == [AclEntry(bob.id, "bob@example.org", "r")]


async def test_bad_grants_are_refused(store: Store, user: User, inbox: Mailbox) -> None:
    bob = await _bob(store)
    with pytest.raises(StoreError):
        await store.set_acl(inbox.id, bob.id, "lrz")
    with pytest.raises(NotFound):
        await store.set_acl(inbox.id, bob.id + 1000, "l")
    with pytest.raises(NotFound):
        await store.set_acl(inbox.id + 1000, bob.id, "l")
    assert await store.get_acl(inbox.id) == []


async def test_a_grantee_finds_what_is_shared(store: Store, user: User, inbox: Mailbox) -> None:
    bob = await _bob(store)
    carol = await store.add_user("carol@example.org", "x")
    invoices = await store.create_mailbox(user.id, "Invoices")
    await store.set_acl(invoices.id, bob.id, "lr")
    await store.set_acl(invoices.id, ANYONE, "lrs")
    shared = await store.shared_mailboxes(bob.id)
    assert [(s.owner, s.mailbox.name, s.rights) for s in shared] == [
        (user.address, "Invoices", "lrs")  # bob's rights and anyone's, together
    ]
    assert [s.rights for s in await store.shared_mailboxes(carol.id)] == ["lrs"]
    assert await store.shared_mailboxes(user.id) == []  # the owner's own are not "shared"
    one = await store.shared_mailbox(bob.id, user.address.upper(), "Invoices")
    assert one is not None and one.mailbox.id == invoices.id and one.rights == "lrs"
    none = await store.shared_mailbox(bob.id, user.address, "INBOX")
    assert none is not None and none.rights == ""  # exists, but nothing is granted
    assert await store.shared_mailbox(bob.id, user.address, "Nowhere") is None
    assert await store.shared_mailbox(bob.id, "nobody@example.org", "INBOX") is None
    own = await store.shared_mailbox(user.id, user.address, "Invoices")
    assert own is not None and own.rights == ALL_RIGHTS


async def test_grants_follow_renames_and_go_with_mailbox_and_grantee(
    store: Store, user: User, inbox: Mailbox
) -> None:
    bob = await _bob(store)
    box = await store.create_mailbox(user.id, "Invoices")
    await store.set_acl(box.id, bob.id, "lr")
    await store.rename_mailbox(user.id, "Invoices", "Bills")
    assert [s.mailbox.name for s in await store.shared_mailboxes(bob.id)] == ["Bills"]
    await store.remove_user(bob.address)
    assert await store.get_acl(box.id) == []
    bob2 = await _bob(store)  # the same address again inherits nothing
    assert await store.shared_mailboxes(bob2.id) == []
    await store.set_acl(box.id, bob2.id, "l")
    await store.delete_mailbox(user.id, "Bills")
    assert await store.shared_mailboxes(bob2.id) == []


async def test_a_grant_is_told_to_the_owner_and_to_the_grantee(
    store: Store, user: User, inbox: Mailbox
) -> None:
    bob = await _bob(store)
    owner_sub = await store.events.subscribe(user.id)
    bob_sub = await store.events.subscribe(bob.id)
    try:
        await store.set_acl(inbox.id, bob.id, "lr")
        # The owner's sessions re-read the rights; the grantee's NOTIFY learns of the mailbox.
        got = await asyncio.wait_for(anext(aiter(owner_sub)), 2)
        assert got == Change(user.id, inbox.id, ChangeKind.ACL_CHANGED)
        got = await asyncio.wait_for(anext(aiter(bob_sub)), 2)
        assert got == Change(bob.id, inbox.id, ChangeKind.ACL_CHANGED)
        # "anyone" has no channel of its own: only the owner's hears of it.
        await store.set_acl(inbox.id, ANYONE, "l")
        got = await asyncio.wait_for(anext(aiter(owner_sub)), 2)
        assert got == Change(user.id, inbox.id, ChangeKind.ACL_CHANGED)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(aiter(bob_sub)), 0.2)
    finally:
        await owner_sub.close()
        await bob_sub.close()
