"""Contract: URLAUTH mailbox access keys (RFC 4467) on every backend."""

from __future__ import annotations

import pytest

from courriel.store.base import Mailbox, NotFound, Store, User


async def test_a_key_is_made_once_and_reset(store: Store, user: User, inbox: Mailbox) -> None:
    assert await store.urlauth_key(inbox.id) is None
    assert await store.urlauth_key(inbox.id, b"k1" * 16) == b"k1" * 16
    assert await store.urlauth_key(inbox.id, b"k2" * 16) == b"k1" * 16  # the first one stays
    work = await store.create_mailbox(user.id, "Work")
    await store.urlauth_key(work.id, b"k3" * 16)
    await store.reset_urlauth_keys(user.id, inbox.id)
    assert await store.urlauth_key(inbox.id) is None
    assert await store.urlauth_key(work.id) == b"k3" * 16
    bob = await store.add_user("bob@example.org", "x")
    await store.reset_urlauth_keys(bob.id, work.id)  # not Bob's: nothing happens
    assert await store.urlauth_key(work.id) == b"k3" * 16
    await store.reset_urlauth_keys(user.id)
    assert await store.urlauth_key(work.id) is None
    with pytest.raises(NotFound):
        await store.urlauth_key(work.id + 1000, b"k4" * 16)
    await store.urlauth_key(work.id, b"k5" * 16)
    await store.delete_mailbox(user.id, "Work")  # the key goes with it
