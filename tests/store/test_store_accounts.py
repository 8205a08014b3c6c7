"""Contract: domains, users and aliases."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from courriel.store.base import AlreadyExists, InUse, NewMessage, NotFound, Store, User

MakeMessage = Callable[..., NewMessage]


async def test_domain_crud(store: Store) -> None:
    d = await store.add_domain("example.org")
    assert d.name == "example.org" and d.catch_all is None
    assert await store.get_domain("example.org") == d
    assert await store.get_domain("example.net") is None
    with pytest.raises(AlreadyExists):
        await store.add_domain("example.org")
    await store.add_domain("a.example")
    assert [x.name for x in await store.list_domains()] == ["a.example", "example.org"]
    await store.remove_domain("a.example")
    assert [x.name for x in await store.list_domains()] == ["example.org"]
    with pytest.raises(NotFound):
        await store.remove_domain("a.example")


async def test_catch_all(store: Store) -> None:
    await store.add_domain("example.org")
    await store.set_catch_all("example.org", "postmaster@example.org")
    d = await store.get_domain("example.org")
    assert d is not None and d.catch_all == "postmaster@example.org"
    await store.set_catch_all("example.org", None)
    d = await store.get_domain("example.org")
    assert d is not None and d.catch_all is None
    with pytest.raises(NotFound):
        await store.set_catch_all("nowhere.example", "x@nowhere.example")


async def test_remove_domain_in_use(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_user("alice@example.org", "h")
    with pytest.raises(InUse):
        await store.remove_domain("example.org")
    await store.remove_user("alice@example.org")
    await store.add_alias("sales@example.org", "bob@elsewhere.example")
    with pytest.raises(InUse):
        await store.remove_domain("example.org")
    await store.remove_alias("sales@example.org")
    await store.remove_domain("example.org")
    assert await store.get_domain("example.org") is None


async def test_add_user_creates_inbox(store: Store) -> None:
    await store.add_domain("example.org")
    u = await store.add_user("alice@example.org", "h1", quota_bytes=1000)
    assert (u.address, u.password_hash, u.quota_bytes) == ("alice@example.org", "h1", 1000)
    assert u.created is not None
    boxes = await store.list_mailboxes(u.id)
    assert [b.name for b in boxes] == ["INBOX"]
    assert boxes[0].uidnext == 1


async def test_add_user_needs_domain_and_is_unique(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.add_user("alice@example.org", "h")
    await store.add_domain("example.org")
    await store.add_user("alice@example.org", "h")
    with pytest.raises(AlreadyExists):
        await store.add_user("ALICE@Example.ORG", "h")


async def test_get_user_is_case_insensitive(store: Store) -> None:
    await store.add_domain("example.org")
    u = await store.add_user("Alice.Smith@example.org", "h")
    for spelling in ("alice.smith@example.org", "ALICE.SMITH@EXAMPLE.ORG", u.address):
        assert await store.get_user(spelling) == u
    assert await store.get_user("alice@example.org") is None
    assert await store.get_user_by_id(u.id) == u
    assert await store.get_user_by_id(u.id + 1000) is None


async def test_list_users_by_domain(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_domain("example.net")
    await store.add_user("b@example.org", "h")
    await store.add_user("a@example.org", "h")
    await store.add_user("c@example.net", "h")
    assert [u.address for u in await store.list_users()] == [
        "a@example.org",
        "b@example.org",
        "c@example.net",
    ]
    assert [u.address for u in await store.list_users("example.org")] == [
        "a@example.org",
        "b@example.org",
    ]
    assert await store.list_users("nowhere.example") == []


async def test_set_password_and_quota(store: Store, user: User) -> None:
    await store.set_password("ALICE@example.org", "new-hash")
    await store.set_quota(user.address, 5000)
    u = await store.get_user(user.address)
    assert u is not None and (u.password_hash, u.quota_bytes) == ("new-hash", 5000)
    await store.set_quota(user.address, None)
    u = await store.get_user(user.address)
    assert u is not None and u.quota_bytes is None
    with pytest.raises(NotFound):
        await store.set_password("bob@example.org", "x")
    with pytest.raises(NotFound):
        await store.set_quota("bob@example.org", 1)


async def test_remove_user_removes_everything(
    store: Store, user: User, message: MakeMessage
) -> None:
    box = await store.create_mailbox(user.id, "Archive")
    await store.set_subscribed(user.id, "Archive", True)
    await store.append([(box.id, message(1))])
    await store.remove_user(user.address)
    assert await store.get_user(user.address) is None
    assert await store.list_mailboxes(user.id) == []
    assert await store.get_mailbox_by_id(box.id) is None
    assert await store.subscriptions(user.id) == []
    with pytest.raises(NotFound):
        await store.remove_user(user.address)
    # The address can be taken again, by a new account with nothing of the old one.
    again = await store.add_user(user.address, "h2")
    assert again.id != user.id
    assert [b.name for b in await store.list_mailboxes(again.id)] == ["INBOX"]
    assert (await store.quota_usage(again.id)).messages == 0


async def test_aliases(store: Store) -> None:
    await store.add_domain("example.org")
    with pytest.raises(NotFound):
        await store.add_alias("info@nowhere.example", "a@example.org")
    a = await store.add_alias("Info@example.org", "a@example.org")
    assert (a.source, a.target) == ("Info@example.org", "a@example.org")
    await store.add_alias("info@example.org", "b@elsewhere.example")
    with pytest.raises(AlreadyExists):
        await store.add_alias("INFO@example.org", "a@example.org")
    assert await store.alias_targets("INFO@EXAMPLE.ORG") == ["a@example.org", "b@elsewhere.example"]
    assert await store.alias_targets("nobody@example.org") == []
    assert len(await store.list_aliases("example.org")) == 2
    assert len(await store.list_aliases()) == 2
    assert await store.list_aliases("example.net") == []
    await store.remove_alias("info@example.org", "a@example.org")
    assert await store.alias_targets("info@example.org") == ["b@elsewhere.example"]
    with pytest.raises(NotFound):
        await store.remove_alias("info@example.org", "a@example.org")
    await store.remove_alias("info@example.org")
    assert await store.alias_targets("info@example.org") == []
    with pytest.raises(NotFound):
        await store.remove_alias("info@example.org")


async def test_lookup_address_reads_domain_then_user_or_alias(store: Store) -> None:
    await store.add_domain("example.org")
    bob = await store.add_user("Bob@example.org", "hash")
    await store.add_alias("team@example.org", "bob@example.org")
    await store.add_alias("team@example.org", "x@elsewhere.example")
    await store.add_alias("bob@example.org", "never@elsewhere.example")  # the user comes first
    found = await store.lookup_address("BOB@example.org")
    assert found.domain == await store.get_domain("example.org")
    assert (found.user, found.alias_targets) == (bob, ())
    team = await store.lookup_address("team@example.org")
    assert team.user is None
    assert team.alias_targets == ("bob@example.org", "x@elsewhere.example")
    nobody = await store.lookup_address("nobody@example.org")
    assert nobody.domain is not None and (nobody.user, nobody.alias_targets) == (None, ())
    elsewhere = await store.lookup_address("bob@example.net")
    assert (elsewhere.domain, elsewhere.user, elsewhere.alias_targets) == (None, None, ())
