"""``courriel serve`` as a supervisor and worker processes, tested as real processes.

Each test runs one server with two workers, on SQLite in the test's data directory or on a
throw-away PostgreSQL database, and drives it with the standard library's clients over loopback
sockets. The worker that served a connection
is read from the log (every worker's lines carry ``worker=N``) or from the test protocol's
greeting, which says its process id.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import poplib
import re
import select
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from courriel.config import LISTENERS
from courriel.net.tls import make_self_signed
from courriel.testing import pg as pg_testdb
from courriel.testing.net import free_ports

HOSTNAME = "mail.test"
LOOPBACK = "127.0.0.1"

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """``[store] url``: "" (SQLite in the data directory), or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    server = await pg_testdb.require_server(request)
    async with pg_testdb.temporary_database(server) as url:
        yield url


def write_config(root: Path, url: str, ports: dict[str, int], **server: float) -> Path:
    lines = [f'hostname = "{HOSTNAME}"', "[store]", f'url = "{url}"', "[server]"]
    lines += [f"{k} = {v}" for k, v in {"workers": 2, **server}.items()]
    for name in LISTENERS:
        lines.append(f"[listeners.{name}]")
        if name in ports:
            lines += [f'address = "{LOOPBACK}"', f"port = {ports[name]}"]
        else:
            lines.append("enabled = false")
    path = root / "courriel.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Serving:
    """A server process whose stderr is collected line by line while it runs."""

    def __init__(self, argv: list[str]) -> None:
        env = {**os.environ, "COURRIEL_TEST_CHEAP_HASH": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.out = self._read_until_ready()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()

    def _read_until_ready(self) -> str:
        assert self.proc.stdout is not None
        out = b""
        deadline = time.monotonic() + 30
        while b"courriel is ready" not in out:
            left = deadline - time.monotonic()
            assert left > 0, self.log()
            if select.select([self.proc.stdout], [], [], left)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                assert chunk, f"serve ended early: {out!r}\n{self.log()}"
                out += chunk
        return out.decode()

    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def matching(self, pattern: str) -> list[re.Match[str]]:
        with self._changed:
            return [m for ln in self.lines if (m := re.search(pattern, ln))]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 15) -> list[re.Match[str]]:
        """Waits until ``count`` lines match ``pattern``; returns the matches."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self.matching(pattern)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"no {count} lines matching {pattern!r}:\n" + "\n".join(self.lines)
                self._changed.wait(left)
        return found

    def worker_pid(self, worker: int, nth: int = 1) -> int:
        started = self.wait_for(rf"worker started worker={worker} pid=(\d+)", nth)
        return int(started[nth - 1].group(1))

    def stop(self, timeout: float) -> int:
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return status

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@contextlib.contextmanager
def serving(argv: list[str]) -> Iterator[Serving]:
    server = Serving(argv)
    try:
        yield server
    finally:
        server.close()


def insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- the real server: every protocol, both workers, a worker killed -----------------------------


def send(port: int, to: str, n: int) -> str:
    msg = EmailMessage()
    msg["From"] = "sender@example.net"
    msg["To"] = to
    msg["Subject"] = f"message {n}"
    msg["Message-ID"] = f"<m{n}@example.net>"
    msg.set_content(f"body {n}\n")
    with smtplib.SMTP(LOOPBACK, port, timeout=10) as smtp:
        smtp.send_message(msg)  # returns once the server said 250: the message is ours now
    return msg["Message-ID"]


class Sender(threading.Thread):
    """Sends messages one connection each until stopped; keeps the ids that were acknowledged."""

    def __init__(self, port: int, to: str) -> None:
        super().__init__(daemon=True)
        self.port, self.to = port, to
        self.acknowledged: list[str] = []
        self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                self.acknowledged.append(send(self.port, self.to, n))
            except (OSError, smtplib.SMTPException):
                self.failed += 1  # the worker died under it: not acknowledged, not counted


def stored_ids(port: int, user: str, password: str) -> set[str]:
    with imaplib.IMAP4_SSL(LOOPBACK, port, ssl_context=insecure(), timeout=10) as imap:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        status, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert status == "OK", data
    headers = b"".join(part[1] for part in data if isinstance(part, tuple))
    return {m.decode() for m in re.findall(rb"Message-ID: (<[^>]+>)", headers)}


def test_workers_serve_every_protocol_and_a_killed_worker_loses_nothing(
    tmp_path: Path, store_url: str
) -> None:
    ports = dict(zip(("smtp", "imaps", "pop3s"), free_ports(3), strict=True))
    cfg = write_config(tmp_path, store_url, ports)
    argv = [sys.executable, "-m", "courriel.cli", "--config", str(cfg), "serve"]
    with serving(argv) as server:
        m = re.search(r"Created (\S+) with password: (\S+)", server.out)
        assert m is not None, server.out
        user, password = m.groups()
        first = [server.worker_pid(1), server.worker_pid(2)]
        assert len(set(first)) == 2 and server.proc.pid not in first

        sender = Sender(ports["smtp"], user)
        sender.start()
        # The kernel hands each connection to one worker waiting in accept: both get some.
        server.wait_for(r" worker=1 conn=\w+ listener=smtp .* connected", 3)
        server.wait_for(r" worker=2 conn=\w+ listener=smtp .* connected", 3)
        os.kill(first[0], signal.SIGKILL)
        server.wait_for(r"worker died: killed by SIGKILL; starting another in .* worker=1")
        replacement = server.worker_pid(1, nth=2)
        assert replacement not in first
        served = len(sender.acknowledged)
        before = len(server.matching(r" worker=1 conn=\w+ listener=smtp .* connected"))
        server.wait_for(r" worker=1 conn=\w+ listener=smtp .* connected", before + 3)  # new one
        deadline = time.monotonic() + 10
        while len(sender.acknowledged) < served + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        sender.stopping.set()
        sender.join(timeout=15)
        assert len(sender.acknowledged) >= served + 5, server.log()

        assert set(sender.acknowledged) <= stored_ids(ports["imaps"], user, password)
        with contextlib.closing(
            poplib.POP3_SSL(LOOPBACK, ports["pop3s"], context=insecure(), timeout=10)
        ) as pop:
            pop.user(user)
            pop.pass_(password)
            count, _ = pop.stat()
            assert count >= len(sender.acknowledged)
            pop.quit()

        assert server.stop(timeout=15) == 0
    assert server.out.count("courriel is ready") == 1  # printed once, by the supervisor
    log = server.log()
    assert "signal=SIGTERM" in log
    assert len(server.matching(r" worker=\d stopped$")) == 2


# --- a test protocol that can hold its worker's loop --------------------------------------------

# IMAP is replaced by a protocol that greets with its process id and, on "STALL n", blocks the
# event loop for n seconds (time.sleep, the way a runaway command would), as a protocol driver
# names its command for the watchdog. It exists only in this test.
SERVER = textwrap.dedent(
    """
    import os, sys, time
    from courriel import app
    from courriel.config import load
    from courriel.net.listener import ProtocolHandlers
    from courriel.testing.placeholder import imap

    def stalling(application):
        async def serve(stream, ctx):
            await stream.send(b"* OK pid=%d\\r\\n" % os.getpid())
            while data := await stream.read(timeout=60):
                word, _, arg = data.strip().partition(b" ")
                ctx.command = word.decode()
                if word == b"STALL":
                    time.sleep(float(arg))
                await stream.send(b"DONE " + data)
        return ProtocolHandlers(serve=serve, refuse=imap(application.hostname).refuse)

    app.handlers["imap"] = stalling
    raise SystemExit(app.run(load(sys.argv[1])))
    """
)


def connect(port: int, tls: bool = True) -> tuple[socket.socket, int]:
    """A connection to the test protocol, and the pid of the worker that took it."""
    raw = socket.create_connection((LOOPBACK, port), timeout=10)
    conn = insecure().wrap_socket(raw, server_hostname=HOSTNAME) if tls else raw
    greeting = line(conn)
    m = re.fullmatch(rb"\* OK pid=(\d+)\r\n", greeting)
    assert m is not None, greeting
    return conn, int(m.group(1))


def line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_stalls_are_reported_stuck_workers_replaced_and_sigterm_is_on_time(
    tmp_path: Path,
) -> None:
    (imaps,) = free_ports(1)
    cfg = write_config(tmp_path, "", {"imaps": imaps}, stall_kill_seconds=1.5)
    cfg.write_text(cfg.read_text() + "[limits]\nshutdown_grace_seconds = 2\n")
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    with serving([sys.executable, str(script), str(cfg)]) as server:
        pids = {server.worker_pid(1), server.worker_pid(2)}

        # SIGHUP: every worker takes the new certificate for new connections.
        cert_pem, key_pem = make_self_signed(HOSTNAME)
        (tmp_path / "tls" / "key.pem").write_bytes(key_pem)
        (tmp_path / "tls" / "cert.pem").write_bytes(cert_pem)
        server.proc.send_signal(signal.SIGHUP)
        reloaded = server.wait_for(r" worker=(\d) TLS certificate reloaded", 2)
        assert {m.group(1) for m in reloaded} == {"1", "2"}
        new_der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
        for _ in range(6):
            conn, _pid = connect(imaps)
            assert conn.getpeercert(binary_form=True) == new_der
            conn.close()

        # A stall is logged with the command; meanwhile the other worker serves.
        stuck, stuck_pid = connect(imaps)
        stuck.sendall(b"STALL 0.8\r\n")
        time.sleep(0.2)
        other, other_pid = connect(imaps)
        assert other_pid != stuck_pid and {other_pid, stuck_pid} == pids
        assert line(stuck) == b"DONE STALL 0.8\r\n"
        stall = server.wait_for(r"event loop stalled seconds=(\S+) conn=\w+ protocol=imap (.*)")[0]
        assert 0.7 < float(stall.group(1)) < 3
        assert stall.group(2).startswith("command=STALL at=server.py:")

        # Stuck past stall_kill_seconds: killed, named, replaced; the other worker goes on.
        stuck.sendall(b"STALL 60\r\n")
        killed = server.wait_for(r"worker stuck: killing it .* stuck_in=\"?(.*)\"?$")[0]
        assert "protocol=imap command=STALL" in killed.group(1)
        assert line(stuck) == b""  # the connection died with its worker
        stuck.close()
        server.wait_for(r"worker died: its event loop was stuck for")
        until(lambda: len(server.matching(r"worker started worker=\d")) == 3)
        other.sendall(b"NOOP\r\n")
        assert line(other) == b"DONE NOOP\r\n"

        # SIGTERM while a worker is stuck: the server is gone within the grace period.
        other.sendall(b"STALL 60\r\n")
        time.sleep(0.2)
        started = time.monotonic()
        assert server.stop(timeout=10) == 0
        assert time.monotonic() - started < 2 + 1.0
        other.close()
    assert server.matching(r"worker still running after the grace period: killing it")


def refused(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    (imaps,) = free_ports(1)
    cfg = write_config(tmp_path, "", {"imaps": imaps})
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    with serving([sys.executable, str(script), str(cfg)]) as server:
        conn, _ = connect(imaps)
        server.proc.kill()  # no supervisor left to restart or stop them
        server.proc.wait()
        # Each worker notices, says goodbye to its sessions and lets go of the port.
        assert line(conn).startswith(b"* BYE [UNAVAILABLE] mail.test server shutting down")
        conn.close()
        until(lambda: refused(imaps))
        server.wait_for(r" worker=\d the supervisor is gone: stopping", 2)
        server.wait_for(r" worker=\d stopped$", 2)


def test_connection_limits_count_every_worker(tmp_path: Path) -> None:
    """``max_connections_per_ip`` is a limit for the server, not for each worker process."""
    (imaps,) = free_ports(1)
    cfg = write_config(tmp_path, "", {"imaps": imaps})
    cfg.write_text(cfg.read_text() + "[limits]\nmax_connections_per_ip = 3\n")
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    with serving([sys.executable, str(script), str(cfg)]) as server:
        server.worker_pid(1), server.worker_pid(2)
        first, busy = connect(imaps)
        first.sendall(b"STALL 1.5\r\n")  # that worker's loop stops: the other one accepts
        time.sleep(0.2)
        others = [connect(imaps) for _ in range(2)]
        assert {pid for _, pid in others} - {busy}, "both workers serve a connection"
        assert line(first) == b"DONE STALL 1.5\r\n"
        # 3 from this address in all, split over two workers: the fourth is refused,
        # by whichever worker takes it.
        for _ in range(3):
            raw = socket.create_connection((LOOPBACK, imaps), timeout=10)
            with insecure().wrap_socket(raw, server_hostname=HOSTNAME) as extra:
                assert line(extra).startswith(
                    b"* BYE [UNAVAILABLE] mail.test too many connections from your address"
                )
        # A closed connection frees its place, wherever it was counted.
        others[0][0].close()
        until(lambda: _greets(imaps))
        for conn, _ in [(first, busy), *others[1:]]:
            conn.close()


def _greets(port: int) -> bool:
    raw = socket.create_connection((LOOPBACK, port), timeout=10)
    with insecure().wrap_socket(raw, server_hostname=HOSTNAME) as conn:
        return line(conn).startswith(b"* OK pid=")
