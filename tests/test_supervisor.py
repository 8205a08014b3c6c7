"""The supervisor with small stand-in workers (forked from the test process), the way it words a
worker's death, its restart delays, and the ``[server]`` settings."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from courriel import config
from courriel.config import ConfigError, ServerConfig
from courriel.net.watchdog import HeartbeatTable
from courriel.supervisor import MAX_BACKOFF, Supervisor, backoff, exit_reason


def _status_of(code: str) -> int:
    """A real ``waitpid`` status: a child running ``code``."""
    child = subprocess.Popen([sys.executable, "-c", code])
    _, status = os.waitpid(child.pid, 0)
    child.returncode = 0  # reaped here; keep Popen from waiting again
    return status


def test_a_death_is_told_in_plain_words() -> None:
    assert exit_reason(_status_of("pass")) == "exited"
    assert exit_reason(_status_of("raise SystemExit(3)")) == "exited with status 3"
    kill = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert exit_reason(_status_of(kill)) == "killed by SIGKILL"


def test_restart_delays_double_after_each_short_life_up_to_a_limit() -> None:
    assert [backoff(n) for n in range(5)] == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert backoff(40) == MAX_BACKOFF


def _serve_then(table: HeartbeatTable, slot: int, ready_fd: int) -> None:
    table.beat(slot, time.monotonic())
    os.write(ready_fd, b"r")


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # pytest may have threads
def test_a_crashing_worker_is_restarted_with_a_delay_and_sigterm_stops_the_group(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lives = tmp_path / "lives"

    def main(slot: int, table: HeartbeatTable, ready_fd: int) -> int:
        with lives.open("a") as f:
            f.write(f"{slot}\n")
        life = lives.read_text().count(f"{slot}\n")
        _serve_then(table, slot, ready_fd)
        if slot == 0 and life < 3:
            return 3  # crashes soon after it started
        if slot == 0:
            os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(30)  # until SIGTERM, whose default action ends it
        return 0

    announced: list[float] = []
    supervisor = Supervisor(
        2, main, grace=5, stall_kill=0, on_ready=lambda: announced.append(time.monotonic())
    )
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="courriel.supervisor"):
        assert supervisor.run() == 0
    took = time.monotonic() - started
    assert sorted(lives.read_text().split()) == ["0", "0", "0", "1"]
    died = [r.getMessage() for r in caplog.records if r.getMessage().startswith("worker died")]
    assert died == [
        "worker died: exited with status 3; starting another in 0.5 s",
        "worker died: exited with status 3; starting another in 1.0 s",
    ]
    assert 1.5 <= took < 5
    assert len(announced) == 1
    assert "shutting down" in caplog.text


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_worker_that_cannot_start_stops_the_others_and_the_start_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def main(slot: int, table: HeartbeatTable, ready_fd: int) -> int:
        if slot == 1:
            return 1  # its store could not be opened, say
        _serve_then(table, slot, ready_fd)
        time.sleep(30)
        return 0

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="courriel.supervisor"):
        assert Supervisor(2, main, grace=5, stall_kill=0).run() == 1
    assert time.monotonic() - started < 3
    assert "worker could not start: exited with status 1" in caplog.text


def test_server_settings_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "courriel.toml"
    path.write_text("[server]\nworkers = 3\nstall_log_seconds = 0.5\nstall_kill_seconds = 0\n")
    server = config.load(path).server
    assert (server.worker_count(), server.stall_log_seconds, server.stall_kill_seconds) == (
        3,
        0.5,
        0.0,
    )
    path.write_text("")
    assert config.load(path).server.worker_count() == len(os.sched_getaffinity(0))
    path.write_text("[server]\nstall_log_seconds = 2\nstall_kill_seconds = 1\n")
    with pytest.raises(ConfigError, match=r"^\[server\] stall_kill_seconds: must be above"):
        config.load(path)
    path.write_text("[server]\nworkers = -1\n")
    with pytest.raises(ConfigError, match=r"^\[server\] workers: must not be negative"):
        config.load(path)
    # The documented defaults, uncommented, are the defaults.
    block = config.DEFAULT_TOML.split("[server]\n", 1)[1].split("\n\n", 1)[0]
    settings = [ln[2:] for ln in block.splitlines() if re.match(r"# \w+ = ", ln)]
    path.write_text("[server]\n" + "\n".join(settings) + "\n")
    assert len(settings) == 3 and config.load(path).server == ServerConfig()
