"""The web admin's tables on every backend: admin flag, app passwords, sessions, tokens, logs."""

from __future__ import annotations

import asyncio

import pytest

from courriel.store.access import NewMailEvent, secret_digest
from courriel.store.base import AlreadyExists, LastAdmin, NotFound, Store
from courriel.store.sql import access as sql_access


async def _user(store: Store, address: str = "alice@example.org") -> int:
    if await store.get_domain("example.org") is None:
        await store.add_domain("example.org")
    return (await store.add_user(address, "hash")).id


async def test_admin_flag(store: Store) -> None:
    await _user(store)
    assert not (await store.get_user("alice@example.org")).admin  # type: ignore[union-attr]
    await store.set_admin("Alice@example.org", True)
    assert (await store.get_user("alice@example.org")).admin  # type: ignore[union-attr]
    assert [u.admin for u in await store.list_users()] == [True]
    await store.set_admin("alice@example.org", False)
    assert not (await store.get_user("alice@example.org")).admin  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await store.set_admin("nobody@example.org", True)


async def test_an_administrator_is_kept_even_when_two_go_at_once(store: Store) -> None:
    """``keep_an_admin``: the only administrator is neither demoted nor removed; two admins
    demoting or removing each other at the same moment leave one (decided in the write)."""
    for name in ("alice", "bob"):
        await _user(store, f"{name}@example.org")
        await store.set_admin(f"{name}@example.org", True)
    for _ in range(5):
        outcomes = await asyncio.gather(
            store.set_admin("alice@example.org", False, keep_an_admin=True),
            store.set_admin("bob@example.org", False, keep_an_admin=True),
            return_exceptions=True,
        )
        assert sorted(type(o).__name__ for o in outcomes) == ["LastAdmin", "NoneType"]
        assert sum(u.admin for u in await store.list_users()) == 1
        await store.set_admin("alice@example.org", True)
        await store.set_admin("bob@example.org", True)
    outcomes = await asyncio.gather(
        store.remove_user("alice@example.org", keep_an_admin=True),
        store.remove_user("bob@example.org", keep_an_admin=True),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["LastAdmin", "NoneType"]
    [last] = await store.list_users()
    assert last.admin
    with pytest.raises(LastAdmin):
        await store.remove_user(last.address, keep_an_admin=True)
    await store.set_admin(last.address, False)  # without the guard: as asked
    await store.remove_user(last.address)
    assert await store.list_users() == []


async def test_app_passwords_are_per_user_and_go_with_the_user(store: Store) -> None:
    alice, bob = await _user(store), await _user(store, "bob@example.org")
    made = await store.add_app_password(alice, "phone", secret_digest("s1"), 100)
    assert (made.name, made.created) == ("phone", 100)
    await store.add_app_password(bob, "phone", secret_digest("s2"), 100)
    with pytest.raises(AlreadyExists):
        await store.add_app_password(alice, "phone", secret_digest("s3"), 101)
    with pytest.raises(NotFound):
        await store.add_app_password(9999, "laptop", secret_digest("s4"), 101)
    assert await store.has_app_password(alice, secret_digest("s1"))
    assert not await store.has_app_password(alice, secret_digest("s2"))  # bob's
    assert [p.name for p in await store.list_app_passwords(alice)] == ["phone"]
    await store.remove_app_password(alice, "phone")
    assert not await store.has_app_password(alice, secret_digest("s1"))
    with pytest.raises(NotFound):
        await store.remove_app_password(alice, "phone")
    await store.remove_user("bob@example.org")
    assert await store.list_app_passwords(bob) == []


async def test_sessions_expire_and_end_with_the_user(store: Store) -> None:
    alice = await _user(store)
    await store.add_session("d1", alice, "csrf1", 1000, expired_before=0)
    await store.add_session("d2", alice, "csrf2", 2000, expired_before=0)
    s = await store.get_session("d1")
    assert s is not None and (s.user_id, s.csrf, s.created, s.seen) == (alice, "csrf1", 1000, 1000)
    with pytest.raises(AlreadyExists):
        await store.add_session("d1", alice, "x", 3000, expired_before=0)
    await store.touch_session("d1", 1500)
    assert (await store.get_session("d1")).seen == 1500  # type: ignore[union-attr]
    # A new session sweeps away those last seen before the cut.
    await store.add_session("d3", alice, "csrf3", 3000, expired_before=1600)
    assert await store.get_session("d1") is None
    assert await store.get_session("d2") is not None
    await store.remove_session("d2")
    assert await store.get_session("d2") is None
    assert await store.remove_sessions(alice) == 1
    await store.add_session("d4", alice, "csrf4", 3000, expired_before=0)
    await store.remove_user("alice@example.org")
    assert await store.get_session("d4") is None


async def test_api_tokens(store: Store) -> None:
    await store.add_api_token("deploy", secret_digest("t1"), 5)
    with pytest.raises(AlreadyExists):
        await store.add_api_token("deploy", secret_digest("t2"), 6)
    assert await store.api_token_name(secret_digest("t1")) == "deploy"
    assert await store.api_token_name(secret_digest("t2")) is None
    assert [(t.name, t.created) for t in await store.list_api_tokens()] == [("deploy", 5)]
    await store.remove_api_token("deploy")
    assert await store.api_token_name(secret_digest("t1")) is None
    with pytest.raises(NotFound):
        await store.remove_api_token("deploy")


async def test_audit_log_newest_first(store: Store) -> None:
    for i in range(3):
        await store.add_audit(10 + i, "web:root@example.org", "domain add", f"d{i}.example")
    entries = await store.list_audit(2)
    assert [(e.at, e.detail) for e in entries] == [(12, "d2.example"), (11, "d1.example")]


async def test_mail_events_keep_only_the_newest(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_access, "MAIL_EVENTS_KEPT", 3)
    await store.add_mail_events([])
    await store.add_mail_events(
        [NewMailEvent(i, "delivered", "a@b.example", f"r{i}@example.org", "ok") for i in range(4)]
    )
    await store.add_mail_events([NewMailEvent(4, "refused", "a@b.example", "r4@example.org", "no")])
    events = await store.list_mail_events(10)
    assert [e.recipient for e in events] == ["r4@example.org", "r3@example.org", "r2@example.org"]
