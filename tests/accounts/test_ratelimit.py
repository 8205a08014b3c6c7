"""Failed-login limits: per address first, per account without locking the owner out.

Counted and remembered in the store, so every process sees the same counts. The store and the
limiters share a ManualClock: windows end and delays pass when a test moves it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from courriel.accounts.ratelimit import (
    KNOWN_ADDRESS_SECONDS,
    MAX_SESSION_FAILURES,
    AuthLimiter,
    FailureCount,
    Limited,
    Refusal,
    account_key,
    ip_key,
    known_key,
)
from courriel.clock import ManualClock
from courriel.config import AuthConfig
from courriel.store.base import Store
from courriel.store.sqlite import open_sqlite

WINDOW = 300  # AuthConfig's default failure_window_seconds


@pytest.fixture
def clock() -> ManualClock:
    clock = ManualClock()
    assert clock.now() % WINDOW == 200  # 100 s of the first window are left
    return clock


@pytest.fixture
async def store(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Store]:
    s = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs", clock=clock)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def limiter(store: Store, clock: ManualClock) -> Callable[..., AuthLimiter]:
    """Limiters on the test's store and clock, with no failure delay unless asked."""

    def make(**kw: float) -> AuthLimiter:
        kw.setdefault("max_failures_per_ip", 3)
        kw.setdefault("failure_delay_seconds", 0)
        return AuthLimiter(store, AuthConfig(**kw), clock=clock)  # type: ignore[arg-type]

    return make


async def test_each_failure_waits_the_delay(
    limiter: Callable[..., AuthLimiter], clock: ManualClock
) -> None:
    lim = limiter(failure_delay_seconds=1.5)
    failure = asyncio.create_task(lim.failed("192.0.2.1", "a@example.test"))
    await clock.wait_for_sleepers(1)  # counted, now waiting
    await clock.advance(1.4)
    assert not failure.done()
    await clock.advance(0.1)
    assert failure.done()
    await failure


async def test_address_is_refused_past_its_limit(
    limiter: Callable[..., AuthLimiter], clock: ManualClock
) -> None:
    lim = limiter()
    for _ in range(3):
        assert await lim.check("192.0.2.1", "a@example.test") is None
        await lim.failed("192.0.2.1", "a@example.test")
    refusal = await lim.check("192.0.2.1", "b@example.test")
    assert refusal == Refusal(Limited.ADDRESS, 100)  # the rest of the window
    assert refusal.text == "Too many failed logins from your address; try again in 2 minutes"
    assert await lim.check("192.0.2.2", "b@example.test") is None
    await clock.advance(40)
    assert await lim.check("192.0.2.1", "b@example.test") == Refusal(Limited.ADDRESS, 60)
    await clock.advance(59)
    refusal = await lim.check("192.0.2.1", "b@example.test")
    assert refusal is not None and refusal.text.endswith("try again in 1 minute")
    await clock.advance(1)  # a new window: the address may try again
    assert await lim.check("192.0.2.1", "b@example.test") is None


async def test_account_is_refused_past_its_limit_from_unknown_addresses(
    limiter: Callable[..., AuthLimiter],
) -> None:
    lim = limiter(max_failures_per_account=2)
    await lim.failed("192.0.2.1", "Alice@Example.TEST")
    await lim.failed("192.0.2.2", "alice@example.test")
    refusal = await lim.check("192.0.2.3", "alice@EXAMPLE.test")
    assert refusal is not None and refusal.limit is Limited.ACCOUNT
    assert "for this account" in refusal.text and "logged in before" in refusal.text
    assert await lim.check("192.0.2.3", "bob@example.test") is None


async def test_an_address_that_logged_in_before_keeps_working(
    limiter: Callable[..., AuthLimiter], clock: ManualClock
) -> None:
    # The owner's phone logged in yesterday; today a guesser spread over many addresses
    # spends the account's budget. The phone is not locked out, new addresses are.
    owner = limiter(max_failures_per_account=5)
    await owner.succeeded("2001:db8:1:2::10", "alice@example.test")
    await clock.advance(86400)
    for n in range(10):
        await owner.failed(f"198.51.100.{n}", "alice@example.test")
    assert await owner.check("198.51.100.99", "alice@example.test") is not None
    # Another process (another limiter on the same store) sees the same memory; an IPv6
    # client is known by its /64, as it is counted.
    other = limiter(max_failures_per_account=5)
    assert await other.check("2001:db8:1:2::77", "ALICE@example.test") is None
    assert await other.check("2001:db8:1:3::10", "alice@example.test") is not None


async def test_a_known_address_is_forgotten_after_thirty_days(
    limiter: Callable[..., AuthLimiter], clock: ManualClock
) -> None:
    lim = limiter(max_failures_per_account=2, failure_window_seconds=86400)
    await lim.succeeded("192.0.2.1", "alice@example.test")
    await clock.advance(KNOWN_ADDRESS_SECONDS - 3600)  # late in a day window
    for n in range(2):
        await lim.failed(f"198.51.100.{n}", "alice@example.test")
    assert await lim.check("192.0.2.1", "alice@example.test") is None  # still known
    await clock.advance(3600)
    assert await lim.check("192.0.2.1", "alice@example.test") is None  # its last second
    await clock.advance(1)
    # Thirty days passed with no login: the address is like any other. (The failures were in
    # the same day window, which has not ended yet.)
    refusal = await lim.check("192.0.2.1", "alice@example.test")
    assert refusal is not None and refusal.limit is Limited.ACCOUNT


async def test_a_known_address_is_still_limited_by_its_own_failures(
    limiter: Callable[..., AuthLimiter],
) -> None:
    lim = limiter(max_failures_per_account=50)
    await lim.succeeded("192.0.2.1", "alice@example.test")
    for _ in range(3):
        await lim.failed("192.0.2.1", "alice@example.test")
    refusal = await lim.check("192.0.2.1", "alice@example.test")
    assert refusal is not None and refusal.limit is Limited.ADDRESS


async def test_success_is_remembered_with_one_write_a_day(
    store: Store, limiter: Callable[..., AuthLimiter], clock: ManualClock
) -> None:
    lim = limiter()
    key = known_key("192.0.2.1", "alice@example.test")
    await lim.succeeded("192.0.2.1", "alice@example.test")
    first = clock.now() + KNOWN_ADDRESS_SECONDS
    assert await store.remembered(key) == first
    await clock.advance(86399)
    await lim.succeeded("192.0.2.1", "alice@example.test")  # within the day: no new write
    assert await store.remembered(key) == first
    await clock.advance(2)
    await lim.succeeded("192.0.2.1", "alice@example.test")  # a day later: thirty days again
    assert await store.remembered(key) == clock.now() + KNOWN_ADDRESS_SECONDS


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
