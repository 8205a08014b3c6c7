"""Failed-login limits: per address first, per account without locking the owner out.

Counted and remembered in the store, so every process sees the same counts."""

from __future__ import annotations

from courriel.accounts.ratelimit import (
    MAX_SESSION_FAILURES,
    AuthLimiter,
    FailureCount,
    Limited,
    Refusal,
    account_key,
    ip_key,
    known_key,
)
from courriel.config import AuthConfig
from courriel.store.base import Store


def limiter(store: Store, slept: list[float], now: float = 1000.0, **kw: float) -> AuthLimiter:
    kw.setdefault("max_failures_per_ip", 3)
    cfg = AuthConfig(failure_delay_seconds=1.5, **kw)  # type: ignore[arg-type]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return AuthLimiter(store, cfg, sleep=sleep, clock=lambda: now)


async def test_each_failure_waits_the_delay(store: Store) -> None:
    slept: list[float] = []
    lim = limiter(store, slept)
    await lim.failed("192.0.2.1", "a@example.test")
    assert slept == [1.5]


async def test_address_is_refused_past_its_limit(store: Store) -> None:
    lim = limiter(store, [])
    for _ in range(3):
        assert await lim.check("192.0.2.1", "a@example.test") is None
        await lim.failed("192.0.2.1", "a@example.test")
    refusal = await lim.check("192.0.2.1", "b@example.test")
    # The default window is 300 s and the clock reads 1000: 200 s of it are left.
    assert refusal == Refusal(Limited.ADDRESS, 200)
    assert refusal.text == "Too many failed logins from your address; try again in 4 minutes"
    assert await lim.check("192.0.2.2", "b@example.test") is None


async def test_account_is_refused_past_its_limit_from_unknown_addresses(store: Store) -> None:
    lim = limiter(store, [], max_failures_per_account=2)
    await lim.failed("192.0.2.1", "Alice@Example.TEST")
    await lim.failed("192.0.2.2", "alice@example.test")
    refusal = await lim.check("192.0.2.3", "alice@EXAMPLE.test")
    assert refusal is not None and refusal.limit is Limited.ACCOUNT
    assert "for this account" in refusal.text and "logged in before" in refusal.text
    assert await lim.check("192.0.2.3", "bob@example.test") is None


async def test_an_address_that_logged_in_before_keeps_working(store: Store) -> None:
    # The owner's phone logged in yesterday; today a guesser spread over many addresses
    # spends the account's budget. The phone is not locked out, new addresses are.
    owner = limiter(store, [], max_failures_per_account=5)
    await owner.succeeded("2001:db8:1:2::10", "alice@example.test")
    for n in range(10):
        await owner.failed(f"198.51.100.{n}", "alice@example.test")
    assert await owner.check("198.51.100.99", "alice@example.test") is not None
    # Another process (another limiter on the same store) sees the same memory; an IPv6
    # client is known by its /64, as it is counted.
    other = limiter(store, [], max_failures_per_account=5)
    assert await other.check("2001:db8:1:2::77", "ALICE@example.test") is None
    assert await other.check("2001:db8:1:3::10", "alice@example.test") is not None


async def test_a_known_address_is_still_limited_by_its_own_failures(store: Store) -> None:
    lim = limiter(store, [], max_failures_per_account=50)
    await lim.succeeded("192.0.2.1", "alice@example.test")
    for _ in range(3):
        await lim.failed("192.0.2.1", "alice@example.test")
    refusal = await lim.check("192.0.2.1", "alice@example.test")
    assert refusal is not None and refusal.limit is Limited.ADDRESS


async def test_success_is_remembered_with_one_write_a_day(store: Store) -> None:
    lim = limiter(store, [], now=1000.0)
    await lim.succeeded("192.0.2.1", "alice@example.test")
    first = await store.remembered(known_key("192.0.2.1", "alice@example.test"))
    await lim.succeeded("192.0.2.1", "alice@example.test")  # within the day: no new write
    assert await store.remembered(known_key("192.0.2.1", "alice@example.test")) == first


async def test_zero_limits_turn_checks_off(store: Store) -> None:
    lim = AuthLimiter(
        store,
        AuthConfig(max_failures_per_ip=0, max_failures_per_account=0, failure_delay_seconds=0),
    )
    for _ in range(5):
        await lim.failed("192.0.2.1", "a@example.test")
    assert await lim.check("192.0.2.1", "a@example.test") is None


def test_session_failure_count() -> None:
    count = FailureCount()
    assert not any(count.failed() for _ in range(MAX_SESSION_FAILURES - 1))
    count.succeeded()  # in a row: a success starts again
    assert not any(count.failed() for _ in range(MAX_SESSION_FAILURES - 1))
    assert count.failed()


def test_keys() -> None:
    assert ip_key("2001:db8::1") == ip_key("2001:db8::ffff") == "ip:2001:db8::/64"
    assert ip_key("::ffff:192.0.2.1") == ip_key("192.0.2.1") == "ip:192.0.2.1"
    assert account_key("Alice@Bücher.Example") == "user:alice@xn--bcher-kva.example"
    assert known_key("192.0.2.1", "A@x.test") == "known:user:a@x.test|ip:192.0.2.1"
