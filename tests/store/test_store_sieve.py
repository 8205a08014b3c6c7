"""Sieve scripts and delivery options in the store: named scripts per user, one active."""

from __future__ import annotations

import pytest

from courriel.store.base import AlreadyExists, InUse, NotFound, SieveScript, Store


async def test_scripts_are_kept_per_user_with_one_active(store: Store) -> None:
    await store.add_domain("example.org")
    ann = await store.add_user("ann@example.org", "x")
    bob = await store.add_user("bob@example.org", "x")
    await store.put_sieve_script(ann.id, "main", "keep;")
    await store.put_sieve_script(ann.id, "Main", "discard;")  # names are case-sensitive
    await store.put_sieve_script(bob.id, "main", "stop;")
    assert [s.name for s in await store.sieve_scripts(ann.id)] == ["Main", "main"]
    assert await store.active_sieve_script(ann.id) is None
    await store.activate_sieve_script(ann.id, "main")
    await store.activate_sieve_script(ann.id, "Main")
    assert await store.active_sieve_script(ann.id) == SieveScript("Main", "discard;", True)
    assert await store.sieve_script(ann.id, "main") == SieveScript("main", "keep;", False)
    assert await store.active_sieve_script(bob.id) is None
    await store.put_sieve_script(ann.id, "Main", "keep;")  # replacing keeps it active
    assert await store.active_sieve_script(ann.id) == SieveScript("Main", "keep;", True)
    await store.activate_sieve_script(ann.id, None)
    assert await store.active_sieve_script(ann.id) is None
    with pytest.raises(NotFound):
        await store.activate_sieve_script(ann.id, "nothing")


async def test_delete_and_rename_follow_managesieve(store: Store) -> None:
    await store.add_domain("example.org")
    ann = await store.add_user("ann@example.org", "x")
    await store.put_sieve_script(ann.id, "a", "keep;")
    await store.put_sieve_script(ann.id, "b", "discard;")
    await store.activate_sieve_script(ann.id, "a")
    with pytest.raises(InUse):
        await store.delete_sieve_script(ann.id, "a")  # RFC 5804 §2.10
    with pytest.raises(AlreadyExists):
        await store.rename_sieve_script(ann.id, "a", "b")
    await store.rename_sieve_script(ann.id, "a", "c")
    assert await store.active_sieve_script(ann.id) == SieveScript("c", "keep;", True)
    await store.delete_sieve_script(ann.id, "b")
    with pytest.raises(NotFound):
        await store.delete_sieve_script(ann.id, "b")
    with pytest.raises(NotFound):
        await store.rename_sieve_script(ann.id, "b", "d")
    assert [s.name for s in await store.sieve_scripts(ann.id)] == ["c"]


async def test_scripts_and_options_go_with_their_user(store: Store) -> None:
    await store.add_domain("example.org")
    ann = await store.add_user("ann@example.org", "x")
    await store.put_sieve_script(ann.id, "a", "keep;")
    await store.activate_sieve_script(ann.id, "a")
    assert await store.tag_folders(ann.id) is False
    await store.set_tag_folders("Ann@Example.org", True)
    assert await store.tag_folders(ann.id) is True
    await store.remove_user("ann@example.org")
    again = await store.add_user("ann@example.org", "x")
    assert await store.sieve_scripts(again.id) == []
    assert await store.tag_folders(again.id) is False
    with pytest.raises(NotFound):
        await store.set_tag_folders("nobody@example.org", True)
    with pytest.raises(NotFound):
        await store.put_sieve_script(10_000, "a", "keep;")


async def test_global_scripts(store: Store) -> None:
    assert await store.global_sieve_script("spam") is None
    await store.put_global_sieve_script("spam", "keep;")
    await store.put_global_sieve_script("spam", "discard;")
    assert await store.global_sieve_script("spam") == "discard;"
    await store.put_global_sieve_script("spam", None)
    assert await store.global_sieve_script("spam") is None


async def test_delivery_lookup_finds_the_active_script_and_the_inbox(store: Store) -> None:
    await store.add_domain("example.org")
    ann = await store.add_user("ann@example.org", "x")
    inbox = await store.get_mailbox(ann.id, "INBOX")
    assert inbox is not None
    first = await store.delivery_lookup(ann.id)
    assert (first.script, first.inbox_id) == (None, inbox.id)
    await store.put_sieve_script(ann.id, "main", "keep;")
    await store.put_sieve_script(ann.id, "other", "discard;")
    await store.activate_sieve_script(ann.id, "main")
    first = await store.delivery_lookup(ann.id)
    assert (first.script, first.inbox_id) == (SieveScript("main", "keep;", True), inbox.id)
    await store.remove_user("ann@example.org")
    gone = await store.delivery_lookup(ann.id)
    assert (gone.script, gone.inbox_id) == (None, None)
