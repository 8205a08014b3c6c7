"""The authentication cache: hits, expiry, invalidation by password change, size bound, keys."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from courriel.accounts.authcache import AuthCache

ADDRESS = "alice@example.org"
HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_remembered_triple_hits() -> None:
    cache = AuthCache(60, clock=Clock())
    assert not cache.hit(ADDRESS, "secret", HASH)
    cache.remember(ADDRESS, "secret", HASH)
    assert cache.hit(ADDRESS, "secret", HASH)
    assert len(cache) == 1


@pytest.mark.parametrize(
    ("address", "password", "password_hash"),
    [
        ("bob@example.org", "secret", HASH),
        (ADDRESS, "Secret", HASH),
        (ADDRESS, "secret ", HASH),
        (ADDRESS, "", HASH),
        (ADDRESS, "secret", HASH + "x"),  # the password was changed
    ],
)
def test_any_other_triple_misses(address: str, password: str, password_hash: str) -> None:
    cache = AuthCache(60, clock=Clock())
    cache.remember(ADDRESS, "secret", HASH)
    assert not cache.hit(address, password, password_hash)


def test_password_change_invalidates_without_being_told() -> None:
    cache = AuthCache(60, clock=Clock())
    cache.remember(ADDRESS, "old", HASH)
    new_hash = HASH.replace("c2FsdHNhbHRzYWx0", "bmV3c2FsdG5ld3NhbHQ")
    assert not cache.hit(ADDRESS, "old", new_hash)
    cache.remember(ADDRESS, "new", new_hash)
    assert cache.hit(ADDRESS, "new", new_hash)


def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    cache = AuthCache(60, clock=clock)
    cache.remember(ADDRESS, "secret", HASH)
    clock.now += 59.9
    assert cache.hit(ADDRESS, "secret", HASH)
    clock.now += 0.1
    assert not cache.hit(ADDRESS, "secret", HASH)
    assert len(cache) == 0  # an expired entry found on lookup is dropped


def test_a_hit_does_not_extend_the_lifetime() -> None:
    clock = Clock()
    cache = AuthCache(10, clock=clock)
    cache.remember(ADDRESS, "secret", HASH)
    for _ in range(3):
        clock.now += 3
        assert cache.hit(ADDRESS, "secret", HASH)
    clock.now += 2
    assert not cache.hit(ADDRESS, "secret", HASH)


def test_zero_ttl_disables_the_cache() -> None:
    cache = AuthCache(0, clock=Clock())
    assert not cache.enabled
    cache.remember(ADDRESS, "secret", HASH)
    assert not cache.hit(ADDRESS, "secret", HASH)
    assert len(cache) == 0


def test_least_recently_used_entry_goes_first() -> None:
    cache = AuthCache(60, max_entries=2, clock=Clock())
    cache.remember("a@example.org", "pa", HASH)
    cache.remember("b@example.org", "pb", HASH)
    assert cache.hit("a@example.org", "pa", HASH)  # a is now the most recently used
    cache.remember("c@example.org", "pc", HASH)
    assert len(cache) == 2
    assert cache.hit("a@example.org", "pa", HASH)
    assert not cache.hit("b@example.org", "pb", HASH)
    assert cache.hit("c@example.org", "pc", HASH)


def test_expired_entries_are_dropped_when_new_ones_come() -> None:
    clock = Clock()
    cache = AuthCache(10, max_entries=100, clock=clock)
    for i in range(5):
        cache.remember(f"u{i}@example.org", "pw", HASH)
    clock.now += 11
    cache.remember("fresh@example.org", "pw", HASH)
    assert len(cache) == 1


def test_key_is_the_documented_hmac_and_holds_no_password() -> None:
    secret = b"k" * 32
    cache = AuthCache(60, clock=Clock(), secret=secret)
    password = "hunter2-very-long-password"
    key = cache.key(ADDRESS, password, HASH)
    message = f"{ADDRESS}\0{password}\0{HASH}".encode()
    assert key == hmac.new(secret, message, hashlib.sha256).digest()
    assert password.encode() not in key
    cache.remember(ADDRESS, password, HASH)
    for stored in cache._entries:
        assert password.encode() not in stored
        assert stored != hashlib.sha256(password.encode()).digest()


def test_keys_differ_between_processes() -> None:
    # Each cache draws its own secret, so a key from one process proves nothing in another.
    a, b = AuthCache(60), AuthCache(60)
    assert a.key(ADDRESS, "pw", HASH) != b.key(ADDRESS, "pw", HASH)


def test_fields_cannot_run_into_each_other() -> None:
    cache = AuthCache(60, clock=Clock())
    cache.remember(ADDRESS, "pw", HASH)
    assert not cache.hit(ADDRESS + "\0pw", "", HASH)  # address with NUL is never keyed
    assert cache.key(ADDRESS, "pw", "x\0y") is None
    cache.remember(ADDRESS, "a\0b", HASH)  # a NUL in the password is still unambiguous
    assert cache.hit(ADDRESS, "a\0b", HASH)
    assert not cache.hit(ADDRESS, "a", "b\0" + HASH)


def test_clear_forgets_everything() -> None:
    cache = AuthCache(60, clock=Clock())
    cache.remember(ADDRESS, "secret", HASH)
    cache.clear()
    assert not cache.hit(ADDRESS, "secret", HASH)


@pytest.mark.parametrize(("ttl", "size"), [(-1, 10), (10, 0)])
def test_nonsense_settings_are_refused(ttl: float, size: int) -> None:
    with pytest.raises(ValueError, match="must"):
        AuthCache(ttl, max_entries=size)
