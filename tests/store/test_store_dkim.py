"""DKIM keys in the store: added per domain, rotated in one transaction, retired, removed along."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from courriel.store.base import AlreadyExists, DkimKey, DkimKeyState, NotFound, Store

T0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)


def key(selector: str, algorithm: str = "ed25519", created: datetime = T0) -> DkimKey:
    return DkimKey("example.org", selector, algorithm, f"PEM of {selector}", created)


async def test_keys_are_kept_per_domain(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_domain("example.net")
    await store.add_dkim_keys("example.org", [key("c202612e"), key("c202612r", "rsa")])
    assert await store.dkim_keys("example.org") == [key("c202612e"), key("c202612r", "rsa")]
    assert await store.dkim_keys("example.net") == []
    assert len(await store.dkim_keys()) == 2
    with pytest.raises(AlreadyExists):
        await store.add_dkim_keys("example.org", [key("c202612e")])
    with pytest.raises(NotFound):
        await store.add_dkim_keys("nowhere.example", [key("c202612e")])


async def test_rotation_retires_the_old_keys_in_one_step(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_dkim_keys("example.org", [key("old-e"), key("old-r", "rsa")])
    later = T0 + timedelta(days=30)
    until = later + timedelta(days=14)
    await store.rotate_dkim_keys("example.org", [key("new-e", created=later)], until)
    states = {k.selector: (k.state, k.retire_after) for k in await store.dkim_keys("example.org")}
    assert states == {
        "old-e": (DkimKeyState.RETIRING, until),
        "old-r": (DkimKeyState.RETIRING, until),
        "new-e": (DkimKeyState.ACTIVE, None),
    }
    # A rotation whose new selector is taken writes nothing at all.
    with pytest.raises(AlreadyExists):
        await store.rotate_dkim_keys("example.org", [key("new-e")], until)
    assert [k.state for k in await store.dkim_keys("example.org")].count(DkimKeyState.ACTIVE) == 1
    assert await store.retire_dkim_keys(until - timedelta(seconds=1)) == 0
    assert await store.retire_dkim_keys(until) == 2
    retired = [k.selector for k in await store.dkim_keys() if k.state is DkimKeyState.RETIRED]
    assert sorted(retired) == ["old-e", "old-r"]


async def test_keys_go_with_their_domain(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_dkim_keys("example.org", [key("c202612e")])
    await store.remove_domain("example.org")
    assert await store.dkim_keys() == []
    await store.add_domain("example.org")
    assert await store.dkim_keys("example.org") == []


async def test_a_pending_key_replaces_the_active_key_of_its_algorithm(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_dkim_keys("example.org", [key("old-e"), key("old-r", "rsa")])
    later = T0 + timedelta(days=30)
    pending = [
        DkimKey("example.org", s, a, "PEM", later, DkimKeyState.PENDING, grace_seconds=3600)
        for s, a in (("new-e", "ed25519"), ("new-r", "rsa"))
    ]
    await store.add_dkim_keys("example.org", pending)
    assert {k.selector: k.grace_seconds for k in await store.dkim_keys("example.org")} == {
        "old-e": None, "old-r": None, "new-e": 3600, "new-r": 3600,
    }  # fmt: skip
    now = later + timedelta(days=1)
    activated = await store.activate_dkim_keys("example.org", ["new-e", "old-r", "nope"], now)
    assert activated == ["new-e"]  # old-r is not pending, nope does not exist
    states = {k.selector: (k.state, k.retire_after) for k in await store.dkim_keys("example.org")}
    assert states == {
        "old-e": (DkimKeyState.RETIRING, now + timedelta(hours=1)),
        "old-r": (DkimKeyState.ACTIVE, None),
        "new-e": (DkimKeyState.ACTIVE, None),
        "new-r": (DkimKeyState.PENDING, None),
    }
    with pytest.raises(NotFound):
        await store.activate_dkim_keys("nowhere.example", ["new-r"], now)
