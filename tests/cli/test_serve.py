"""`courriel serve` as a child process: the demo account on first start, shown once and kept
nowhere, then the server runs until SIGTERM. Every listener is disabled so that the test binds
no port and can run beside anything else."""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from courriel import config
from courriel.accounts.passwords import PasswordHasher
from courriel.store.open import open_store

NO_LISTENERS = "".join(f"[listeners.{name}]\nenabled = false\n" for name in config.LISTENERS)


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "courriel.toml"
    path.parent.mkdir()
    path.write_text('hostname = "mx.example.org"\n' + NO_LISTENERS)
    return path


def _serve_until_ready(cfg_path: Path) -> tuple[int, str, str]:
    """Starts ``courriel serve``, waits until it is running, stops it with SIGTERM."""
    env = {**os.environ, "COURRIEL_TEST_CHEAP_HASH": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "courriel.cli", "--config", str(cfg_path), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    out = b""
    deadline = time.monotonic() + 30
    try:
        # The settings text comes once the signal handlers are in place.
        while b"courriel is running" not in out and b"courriel is ready" not in out:
            left = deadline - time.monotonic()
            assert left > 0, out
            if select.select([proc.stdout], [], [], left)[0]:
                chunk = os.read(proc.stdout.fileno(), 4096)
                assert chunk, f"serve ended early: {out!r} {proc.stderr.read()!r}"
                out += chunk
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, (out + rest).decode(), err.decode()


def _stored_hash(cfg_path: Path, address: str) -> str | None:
    async def read() -> str | None:
        store = await open_store(config.load(cfg_path))
        try:
            user = await store.get_user(address)
            return None if user is None else user.password_hash
        finally:
            await store.close()

    return asyncio.run(read())


def test_first_start_shows_the_demo_password_once(cfg_path: Path) -> None:
    status, out, err = _serve_until_ready(cfg_path)
    assert status == 0, err
    m = re.search(r"Created (demo@mx\.example\.org) with password: (\S+)", out)
    assert m is not None, out
    address, password = m.groups()
    stored = _stored_hash(cfg_path, address)
    assert stored is not None
    assert PasswordHasher.for_tests().verify(stored, password)
    assert password not in err  # never logged
    for f in cfg_path.parent.rglob("*"):
        if f.is_file():
            assert password.encode() not in f.read_bytes(), f  # never written in clear

    status, out, err = _serve_until_ready(cfg_path)
    assert status == 0, err
    assert "Created" not in out
    assert password not in out
