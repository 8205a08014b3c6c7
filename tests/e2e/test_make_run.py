"""`make run` from a clean clone: the quick start a new user types, end to end.

The clone gets its own virtualenv from scratch (as on a fresh machine), so this is the slowest
test of the suite; it is the one that proves the README's first command works.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from courriel.config import LISTENERS
from courriel.testing.net import free_ports

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _greeting(port: int, implicit: bool, deadline: float) -> bytes:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                if implicit:
                    ctx = ssl.create_default_context()
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE  # the clone made its own certificate
                    with ctx.wrap_socket(raw) as s:
                        return s.recv(200)
                return raw.recv(200)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_make_run_from_a_clean_clone(tmp_path: Path, need_program) -> None:  # type: ignore[no-untyped-def]
    need_program("git")
    need_program("make")
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    data = tmp_path / "data"
    data.mkdir()
    ports = dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))
    lines = ['hostname = "mail.example.test"']
    for name, port in ports.items():
        lines += [f"[listeners.{name}]", 'address = "127.0.0.1"', f"port = {port}"]
    (data / "courriel.toml").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "COURRIEL_DATA": str(data), "PYTHON": sys.executable}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out = b""
    try:
        deadline = time.monotonic() + 300  # a fresh virtualenv is installed first
        assert proc.stdout is not None
        while b"Authentication" not in out or b"fingerprint" not in out.lower():
            assert time.monotonic() < deadline, out.decode(errors="replace")[-3000:]
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, "make run ended early:\n" + out.decode(errors="replace")[-3000:]
                out += chunk
        text = out.decode(errors="replace")
        # The first run prints the demo user's password once, and the settings table.
        assert re.search(r"demo@\S+", text), text
        assert re.search(r"password", text, re.I), text
        # The mail listeners; https and http are not typed into a mail program.
        mail = {name: port for name, port in ports.items() if LISTENERS[name][0] != "http"}
        for name, port in mail.items():
            assert str(port) in text, f"{name} port {port} not in the settings table:\n{text}"
        for name, port in mail.items():
            greeting = _greeting(port, LISTENERS[name][2], time.monotonic() + 30)
            assert greeting, f"{name} on {port} sent nothing"
            protocol = LISTENERS[name][0]
            first = {
                "smtp": (b"220", b"554"),
                "imap": (b"* ",),
                "pop3": (b"+OK", b"-ERR"),
                "managesieve": (b'"IMPLEMENTATION"',),  # RFC 5804 §1.7: capabilities first
            }
            assert greeting.startswith(first[protocol]), (name, greeting)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert (data / "courriel.db").exists()
