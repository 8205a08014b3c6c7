"""The retry schedule (courriel.queue.schedule) as a table, and the [queue] settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from courriel import config
from courriel.config import ConfigError, QueueConfig
from courriel.mail.dsn import describe_seconds
from courriel.queue.schedule import (
    Expire,
    Retry,
    after_failure,
    delay_warning_due,
    retry_delay,
)

POSTFIX = QueueConfig()  # the defaults are Postfix's
T0 = 1_000_000.0
DAY = 86400.0


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(1, 300), (2, 600), (3, 1200), (4, 2400), (5, 4000), (6, 4000), (50, 4000), (10_000, 4000)],
)
def test_delays_double_from_five_minutes_up_to_4000_seconds(attempts: int, delay: float) -> None:
    assert retry_delay(attempts, POSTFIX) == delay


@pytest.mark.parametrize(
    ("attempts", "now", "expected"),
    [
        (1, T0, Retry(T0 + 300)),  # the first try failed at once
        (2, T0 + 300, Retry(T0 + 900)),
        (5, T0 + 3 * DAY, Retry(T0 + 3 * DAY + 4000)),
        # The last try is at the deadline, not past it.
        (90, T0 + 5 * DAY - 100, Retry(T0 + 5 * DAY)),
        (91, T0 + 5 * DAY, Expire(5 * DAY)),
        (92, T0 + 6 * DAY, Expire(6 * DAY)),  # a server that was down past the deadline
    ],
)
def test_after_failure(attempts: int, now: float, expected: Retry | Expire) -> None:
    assert after_failure(attempts, T0, now, POSTFIX) == expected


def test_a_compressed_schedule_for_tests() -> None:
    fast = QueueConfig(first_retry_seconds=0.2, max_retry_seconds=0.5, give_up_seconds=2)
    assert after_failure(1, T0, T0 + 0.1, fast) == Retry(T0 + 0.1 + 0.2)
    assert after_failure(3, T0, T0 + 1, fast) == Retry(T0 + 1.5)
    assert after_failure(4, T0, T0 + 1.8, fast) == Retry(T0 + 2)
    assert after_failure(5, T0, T0 + 2, fast) == Expire(2)


@pytest.mark.parametrize(
    ("age", "warned", "setting", "due"),
    [
        (4 * 3600 - 1, False, 4 * 3600.0, False),
        (4 * 3600, False, 4 * 3600.0, True),
        (5 * 3600, True, 4 * 3600.0, False),  # once only
        (9 * DAY, False, 0.0, False),  # 0: never
    ],
)
def test_delay_warning(age: float, warned: bool, setting: float, due: bool) -> None:
    cfg = QueueConfig(delay_warning_seconds=setting)
    assert delay_warning_due(T0, T0 + age, warned, cfg) is due


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (5 * DAY, "5 days"),
        (DAY, "1 day"),
        (4 * 3600, "4 hours"),
        (90, "90 seconds"),
        (1, "1 second"),
    ],
)
def test_durations_in_words(seconds: float, words: str) -> None:
    assert describe_seconds(seconds) == words


def test_the_queue_settings_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "courriel.toml"
    path.write_text("[queue]\nfirst_retry_seconds = 1\nmax_retry_seconds = 4\nconcurrency = 3\n")
    q = config.load(path).queue
    assert (q.first_retry_seconds, q.max_retry_seconds, q.concurrency) == (1.0, 4.0, 3)
    assert q.give_up_seconds == 5 * DAY and q.delay_warning_seconds == 4 * 3600
    path.write_text("[queue]\nconcurrency = 0\n")
    with pytest.raises(ConfigError, match=r"\[queue\] concurrency: must be more than 0"):
        config.load(path)
    path.write_text("[queue]\nfirst_retry_seconds = 10\nmax_retry_seconds = 5\n")
    with pytest.raises(ConfigError, match=r"\[queue\] max_retry_seconds"):
        config.load(path)
    assert "[queue]" in config.DEFAULT_TOML
    assert "# delay_warning_seconds = 14400" in config.DEFAULT_TOML
