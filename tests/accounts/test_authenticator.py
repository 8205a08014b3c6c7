"""Login against a real store: success, every kind of failure, the cache, and the timing path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from courriel.accounts.authcache import AuthCache
from courriel.accounts.authenticator import Authenticator
from courriel.accounts.passwords import PasswordHasher
from courriel.store.base import Store


class CountingHasher:
    """A real cheap hasher that records every verification it is asked to do."""

    def __init__(self) -> None:
        self.inner = PasswordHasher.for_tests()
        self.verified: list[str] = []  # the hashes verified against, in order

    @property
    def dummy_hash(self) -> str:
        return self.inner.dummy_hash

    async def verify_async(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return await self.inner.verify_async(password_hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def hasher() -> AsyncIterator[CountingHasher]:
    h = CountingHasher()
    yield h
    h.inner.close()


@pytest.fixture
async def alice(store: Store, hasher: CountingHasher) -> str:
    await store.add_domain("example.org")
    await store.add_domain("xn--bcher-kva.example")
    await store.add_user("alice@example.org", hasher.inner.hash("correct horse"))
    await store.add_user("joe@xn--bcher-kva.example", hasher.inner.hash("battery staple"))
    return "alice@example.org"


def authenticator(store: Store, hasher: CountingHasher, ttl: float = 60) -> Authenticator:
    return Authenticator(store, hasher, AuthCache(ttl, clock=Clock()))


async def test_right_password(store: Store, hasher: CountingHasher, alice: str) -> None:
    user = await authenticator(store, hasher).authenticate(alice, "correct horse")
    assert user is not None
    assert user.address == alice
    assert len(hasher.verified) == 1


@pytest.mark.parametrize("password", ["correct horsE", "correct", "", "correct horse\0"])
async def test_wrong_password(
    store: Store, hasher: CountingHasher, alice: str, password: str
) -> None:
    assert await authenticator(store, hasher).authenticate(alice, password) is None
    user = await store.get_user(alice)
    assert user is not None
    assert hasher.verified == [user.password_hash]


@pytest.mark.parametrize("username", ["ALICE@Example.ORG", '"alice"@example.org'])
async def test_username_is_normalised(
    store: Store, hasher: CountingHasher, alice: str, username: str
) -> None:
    user = await authenticator(store, hasher).authenticate(username, "correct horse")
    assert user is not None
    assert user.address == alice


async def test_internationalised_domain(store: Store, hasher: CountingHasher, alice: str) -> None:
    user = await authenticator(store, hasher).authenticate("joe@Bücher.Example", "battery staple")
    assert user is not None
    assert user.address == "joe@xn--bcher-kva.example"


@pytest.mark.parametrize(
    "username", ["nobody@example.org", "alice@other.example", "not an address", "", "alice"]
)
async def test_unknown_user_costs_one_dummy_verification(
    store: Store, hasher: CountingHasher, alice: str, username: str
) -> None:
    assert await authenticator(store, hasher).authenticate(username, "correct horse") is None
    assert hasher.verified == [hasher.dummy_hash]


async def test_cache_spares_the_second_verification(
    store: Store, hasher: CountingHasher, alice: str
) -> None:
    auth = authenticator(store, hasher)
    first = await auth.authenticate(alice, "correct horse")
    second = await auth.authenticate("Alice@example.org", "correct horse")
    assert first is not None
    assert first == second
    assert len(hasher.verified) == 1


async def test_cache_never_accepts_a_wrong_password(
    store: Store, hasher: CountingHasher, alice: str
) -> None:
    auth = authenticator(store, hasher)
    assert await auth.authenticate(alice, "correct horse") is not None
    assert await auth.authenticate(alice, "wrong") is None
    assert len(hasher.verified) == 2


async def test_failures_are_not_cached(store: Store, hasher: CountingHasher, alice: str) -> None:
    auth = authenticator(store, hasher)
    for _ in range(3):
        assert await auth.authenticate(alice, "wrong") is None
    assert len(hasher.verified) == 3


async def test_disabled_cache_verifies_every_time(
    store: Store, hasher: CountingHasher, alice: str
) -> None:
    auth = authenticator(store, hasher, ttl=0)
    for _ in range(2):
        assert await auth.authenticate(alice, "correct horse") is not None
    assert len(hasher.verified) == 2


async def test_password_change_takes_effect_despite_the_cache(
    store: Store, hasher: CountingHasher, alice: str
) -> None:
    auth = authenticator(store, hasher)
    assert await auth.authenticate(alice, "correct horse") is not None
    await store.set_password(alice, hasher.inner.hash("new password"))
    assert await auth.authenticate(alice, "correct horse") is None
    assert await auth.authenticate(alice, "new password") is not None


async def test_removed_user_cannot_log_in_on_a_cached_password(
    store: Store, hasher: CountingHasher, alice: str
) -> None:
    auth = authenticator(store, hasher)
    assert await auth.authenticate(alice, "correct horse") is not None
    await store.remove_user(alice)
    assert await auth.authenticate(alice, "correct horse") is None
    assert hasher.verified[-1] == hasher.dummy_hash


async def test_works_with_the_production_hasher_type(store: Store, alice: str) -> None:
    real = PasswordHasher.for_tests()
    try:
        auth = Authenticator(store, real, AuthCache(60))
        assert await auth.authenticate(alice, "correct horse") is not None
        assert await auth.authenticate("nobody@example.org", "x") is None
    finally:
        real.close()
