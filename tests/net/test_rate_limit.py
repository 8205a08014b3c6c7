"""The per-destination message rate (``net/rate_limit.py``), on a clock the test moves."""

from __future__ import annotations

import pytest

from courriel.net.rate_limit import Rates


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_limit_never_waits() -> None:
    rates = Rates(0)
    assert [rates.reserve("example.org") for _ in range(1000)] == [0.0] * 1000


def test_sends_are_spaced_after_a_burst_of_one_seconds_worth() -> None:
    clock = Clock()
    rates = Rates(180, clock=clock)  # 3 a second: a burst of 3, then one every 1/3 s
    waits = [rates.reserve("example.org") for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 1 / 3, 2 / 3, 1])


def test_a_slow_rate_allows_one_at_a_time() -> None:
    clock = Clock()
    rates = Rates(2, clock=clock)  # one every 30 s
    assert rates.reserve("example.org") == 0
    assert rates.reserve("example.org") == pytest.approx(30)
    clock.now += 60  # both slots spent; the bucket is full again
    assert rates.reserve("example.org") == 0


def test_destinations_are_counted_apart() -> None:
    rates = Rates(1, clock=Clock())
    assert rates.reserve("example.org") == 0
    assert rates.reserve("example.net") == 0
    assert rates.reserve("example.org") == pytest.approx(60)


def test_a_wait_over_the_bound_is_refused_and_books_nothing() -> None:
    clock = Clock()
    rates = Rates(60, max_wait=2.0, clock=clock)  # one a second
    assert [rates.reserve("example.org") for _ in range(3)] == pytest.approx([0, 1, 2])
    assert rates.reserve("example.org") is None  # would be 3 s
    clock.now += 1
    assert rates.reserve("example.org") == pytest.approx(2)  # the refusal took no slot
