"""The real ``courriel`` command as a child process: entry points, exit statuses, stderr, and
the password prompt on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

import courriel as package
from courriel import config
from courriel.accounts.passwords import PasswordHasher
from courriel.store.base import Store, User
from courriel.testing.fill import on_store

T = TypeVar("T")
CLI = [sys.executable, "-m", "courriel.cli"]
# Makes the terminal given as standard input the controlling terminal of a new session, as a
# login shell would, so that getpass finds it as /dev/tty; then becomes the command.
ON_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COURRIEL_DATA": str(tmp_path / "data"),
        "COURRIEL_TEST_CHEAP_HASH": "1",
    }


def courriel(env: dict[str, str], *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *argv], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def _in_store(env: dict[str, str], fn: Callable[[Store], Awaitable[T]]) -> T:
    data = Path(env["COURRIEL_DATA"])
    data.mkdir(exist_ok=True)
    return on_store(config.Config(data / "courriel.toml", data, "localhost"), fn)


def stored_user(env: dict[str, str], address: str) -> User | None:
    return _in_store(env, lambda s: s.get_user(address))


def add_domain(env: dict[str, str], name: str) -> None:
    """Setup straight into the store: starting a process for it would only cost time."""
    _in_store(env, lambda s: s.add_domain(name))


def test_every_entry_point_runs_the_command(env: dict[str, str]) -> None:
    script = Path(sys.executable).parent / "courriel"
    assert script.exists(), "the console script is installed with the package"
    for argv in ([str(script)], [sys.executable, "-m", "courriel"], CLI):
        r = subprocess.run([*argv, "version"], capture_output=True, text=True, env=env, timeout=60)
        assert (r.returncode, r.stdout, r.stderr) == (0, f"courriel {package.__version__}\n", "")


def test_add_a_user_from_stdin(env: dict[str, str]) -> None:
    add_domain(env, "example.org")
    r = courriel(env, "user", "add", "alice@example.org", "--password-stdin", stdin="pw-piped\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "added user alice@example.org\n", "")
    user = stored_user(env, "alice@example.org")
    assert user is not None
    assert PasswordHasher.for_tests().verify(user.password_hash, "pw-piped")


def test_failure_is_status_1_and_one_line(env: dict[str, str]) -> None:
    r = courriel(env, "user", "add", "alice@nowhere.example", "--password-stdin", stdin="pw-1\n")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == "courriel: error: unknown domain nowhere.example\n"


def test_usage_error_is_status_2_and_one_line(env: dict[str, str]) -> None:
    r = courriel(env, "user", "add", "not-an-address", "--password-stdin", stdin="pw-1\n")
    assert r.returncode == 2
    assert r.stderr.startswith("courriel: error: invalid address 'not-an-address'")
    assert r.stderr.count("\n") == 1


def test_invalid_config_names_the_key(env: dict[str, str]) -> None:
    data = Path(env["COURRIEL_DATA"])
    data.mkdir()
    (data / "courriel.toml").write_text("[auth]\ncache_seconds = 'long'\n")
    r = courriel(env, "domain", "list")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1
    assert "[auth] cache_seconds: expected float" in r.stderr


def _read_until(fd: int, marker: bytes, deadline: float) -> bytes:
    seen = b""
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"waited for {marker!r}, got {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the command closed the terminal
                chunk = b""
            assert chunk, f"the command ended before {marker!r}; it wrote {seen!r}"
            seen += chunk
    return seen


def _read_to_end(fd: int, deadline: float) -> bytes:
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen


def on_terminal(env: dict[str, str], argv: list[str], answers: list[str]) -> tuple[int, str]:
    """Runs the command with a pseudo-terminal as its terminal; types each answer at a prompt."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", ON_TERMINAL, "-m", "courriel.cli", *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    deadline = time.monotonic() + 30
    transcript = b""
    try:
        for answer in answers:
            transcript += _read_until(master, b"password: ", deadline)
            os.write(master, answer.encode() + b"\r")  # Enter sends CR; the terminal maps it
        transcript += _read_to_end(master, deadline)
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, transcript.decode(errors="replace")


def test_password_is_asked_twice_on_the_terminal_without_echo(env: dict[str, str]) -> None:
    add_domain(env, "example.org")
    status, transcript = on_terminal(
        env, ["user", "add", "alice@example.org"], ["typed-secret", "typed-secret"]
    )
    assert status == 0, transcript
    assert "New password: " in transcript
    assert "Retype new password: " in transcript
    assert "typed-secret" not in transcript
    assert "added user alice@example.org" in transcript
    user = stored_user(env, "alice@example.org")
    assert user is not None
    assert PasswordHasher.for_tests().verify(user.password_hash, "typed-secret")


def test_passwords_that_differ_are_refused(env: dict[str, str]) -> None:
    add_domain(env, "example.org")
    status, transcript = on_terminal(
        env, ["user", "add", "alice@example.org"], ["first-try", "frist-try"]
    )
    assert status == 1, transcript
    assert "courriel: error: the passwords do not match" in transcript
    assert stored_user(env, "alice@example.org") is None


def test_ctrl_c_at_the_prompt_stops_with_status_130(env: dict[str, str]) -> None:
    add_domain(env, "example.org")
    status, transcript = on_terminal(env, ["user", "add", "alice@example.org"], ["\x03"])
    assert status == 130, transcript
    assert "Traceback" not in transcript
    assert stored_user(env, "alice@example.org") is None
