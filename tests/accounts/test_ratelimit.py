"""Failed-login limits: counted in the store per address and per account, with a delay."""

from __future__ import annotations

from courriel.accounts.ratelimit import AuthLimiter, account_key, ip_key
from courriel.config import AuthConfig
from courriel.store.base import Store


def limiter(store: Store, slept: list[float], **kw: float) -> AuthLimiter:
    cfg = AuthConfig(failure_delay_seconds=1.5, max_failures_per_ip=3, **kw)  # type: ignore[arg-type]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return AuthLimiter(store, cfg, sleep=sleep)


async def test_each_failure_waits_the_delay(store: Store) -> None:
    slept: list[float] = []
    lim = limiter(store, slept)
    await lim.failed("192.0.2.1", "a@example.test")
    assert slept == [1.5]


async def test_address_is_refused_past_its_limit(store: Store) -> None:
    lim = limiter(store, [])
    for _ in range(3):
        assert await lim.allowed("192.0.2.1", "a@example.test")
        await lim.failed("192.0.2.1", "a@example.test")
    assert not await lim.allowed("192.0.2.1", "b@example.test")
    assert await lim.allowed("192.0.2.2", "b@example.test")


async def test_account_is_refused_past_its_limit_from_any_address(store: Store) -> None:
    lim = limiter(store, [], max_failures_per_account=2)
    await lim.failed("192.0.2.1", "Alice@Example.TEST")
    await lim.failed("192.0.2.2", "alice@example.test")
    assert not await lim.allowed("192.0.2.3", "alice@EXAMPLE.test")
    assert await lim.allowed("192.0.2.3", "bob@example.test")


async def test_zero_limits_turn_checks_off(store: Store) -> None:
    lim = AuthLimiter(
        store,
        AuthConfig(max_failures_per_ip=0, max_failures_per_account=0, failure_delay_seconds=0),
    )
    for _ in range(5):
        await lim.failed("192.0.2.1", "a@example.test")
    assert await lim.allowed("192.0.2.1", "a@example.test")


def test_keys() -> None:
    assert ip_key("2001:db8::1") == ip_key("2001:db8::ffff") == "ip:2001:db8::/64"
    assert ip_key("::ffff:192.0.2.1") == ip_key("192.0.2.1") == "ip:192.0.2.1"
    assert account_key("Alice@Bücher.Example") == "user:alice@xn--bcher-kva.example"
