"""A whole courriel server on loopback in a background thread, for real clients to talk to.

Theory of operation
-------------------
``start_server`` runs ``courriel.app.serve`` exactly as ``courriel serve`` does (same config
loader, same listeners, same self-signed certificate made on first start, same store), in a
background thread with its own event loop, on free 127.0.0.1 ports, in a fresh data directory.
Running it in a thread lets a test drive blocking clients (imaplib, imapclient, subprocesses of
Debian's mail programs) while the server keeps serving, and lets async tests run their own loop.

The store belongs to the server's loop; a test reaches it only through ``MailServer.call`` (from
synchronous code) or ``MailServer.acall`` (from another event loop), which run a coroutine on
the server's loop and wait for it. Users are made through ``courriel.admin`` as the command line
makes them (INBOX plus the special-use mailboxes, all subscribed); messages are put in place
with ``MailServer.deliver``, which parses them once as delivery does.

Password hashing is made cheap through the ``[auth]`` argon2 costs in the config, so creating a
user and logging in cost milliseconds; the failure delay is kept short for the same reason.
Clients must verify the server: ``MailServer.cert_path`` is the self-signed certificate (its
names are the host name, ``localhost`` and ``127.0.0.1``) and ``ssl_context()`` trusts it alone.

A protocol engine that is not built yet answers with the placeholder greeting
(``courriel.testing.placeholder``); ``require_protocol`` skips a test with the line the server sent,
so a missing engine shows as a skip with its reason, never as a pass.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from courriel import config
from courriel.app import Running, serve
from courriel.config import LISTENERS, Config
from courriel.queue.transport import Transport
from courriel.store.base import Appended, Mailbox, MessageInfo, Store
from courriel.testing.fill import add_user, delivered
from courriel.testing.net import free_ports

T = TypeVar("T")

HOSTNAME = "mail.example.test"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0
PLACEHOLDER_MARK = "not enabled in this build"  # the placeholder greetings say this
# Which listener to probe (plain text, no TLS needed) to tell a real engine from the placeholder.
PROBE_LISTENER = {"imap": "imap", "pop3": "pop3", "smtp": "smtp", "managesieve": "sieve"}


@dataclass(frozen=True, slots=True)
class Account:
    """A user made through ``courriel.admin``, with the password a client logs in with."""

    address: str
    password: str
    user_id: int


def write_config(data_dir: Path, ports: dict[str, int], extra: str = "") -> Path:
    """A courriel.toml with every listener on loopback and cheap password hashing; ``extra``
    is TOML appended to it (a ``[queue]`` or ``[store]`` block)."""
    lines = [
        f'hostname = "{HOSTNAME}"',
        "[auth]",
        "argon2_time_cost = 1",
        "argon2_memory_kib = 8",
        "argon2_parallelism = 1",
        "failure_delay_seconds = 0.2",
        "[limits]",
        "shutdown_grace_seconds = 2",
        "[log]",
        'level = "warning"',
    ]
    if "[mailauth]" not in extra:
        # No SPF/DKIM/DMARC on port 25 unless a test asks (with a DNS server of its own).
        lines += ["[mailauth]", "check_inbound = false"]
    if "[junk]" not in extra:
        # No junk scoring either: port 25 stores the client's bytes as sent.
        lines += ["[junk]", "scoring = false"]
    for name in LISTENERS:
        lines += [f"[listeners.{name}]", "enabled = true", 'address = "127.0.0.1"']
        lines.append(f"port = {ports[name]}")
    path = data_dir / config.CONFIG_NAME
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


class MailServer:
    """A running courriel server; see the module docstring."""

    host = "127.0.0.1"

    def __init__(self, cfg: Config, transport: Transport | None = None) -> None:
        self.cfg = cfg
        self.transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: Running | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="courriel-e2e", daemon=True)

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT):
            raise RuntimeError("courriel did not start in time")
        if self._failure is not None:
            raise RuntimeError(f"courriel did not start: {self._failure!r}") from self._failure

    def stop(self) -> None:
        if self._loop is not None and self._running is not None:
            self._loop.call_soon_threadsafe(self._running.stop)
        self._thread.join(STOP_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError("courriel did not stop in time")
        if self._failure is not None:
            raise RuntimeError(f"courriel failed: {self._failure!r}") from self._failure

    def _main(self) -> None:
        try:
            with asyncio.Runner() as runner:
                runner.run(self._serve())
        except BaseException as e:  # reported by start() or stop() in the test's thread
            self._failure = e
        finally:
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()

        def ready(running: Running) -> None:
            self._running = running
            self._started.set()

        await serve(self.cfg, ready=ready, transport=self.transport)

    # --- where and how to connect -------------------------------------------------------------

    @property
    def running(self) -> Running:
        assert self._running is not None
        return self._running

    @property
    def store(self) -> Store:
        """The server's store: use it only inside coroutines given to ``call``/``acall``."""
        return self.running.app.store

    def port(self, listener: str) -> int:
        return self.running.address(listener)[1]

    @property
    def hostname(self) -> str:
        return self.cfg.hostname

    @property
    def cert_path(self) -> Path:
        """The self-signed certificate clients must trust (made on first start)."""
        return self.cfg.data_dir / "tls" / "cert.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this server's certificate, names checked."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def greeting(self, listener: str) -> str:
        """The first line a plain-text listener sends."""
        with socket.create_connection((self.host, self.port(listener)), timeout=5) as s:
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.decode("utf-8", "replace").rstrip("\r\n")

    def serves(self, protocol: str) -> tuple[bool, str]:
        """Whether a real engine answers ``protocol`` (not the placeholder), and its greeting."""
        line = self.greeting(PROBE_LISTENER[protocol])
        return PLACEHOLDER_MARK not in line, line

    def require_protocol(self, protocol: str) -> None:
        """Skips the test, saying why, while ``protocol`` is served by the placeholder."""
        real, line = self.serves(protocol)
        if not real:
            # unittest's skip is honoured by pytest and keeps this module free of pytest.
            raise unittest.SkipTest(
                f"the {protocol} engine is not in this build yet; it greets: {line}"
            )

    # --- the store, from the test's side -------------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs ``coro`` on the server's loop and returns its result (from synchronous code)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        """``call`` for a test running its own event loop."""
        assert self._loop is not None
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return await asyncio.wrap_future(future)

    def add_user(self, address: str, password: str) -> Account:
        """Creates the user (and its domain when new) as ``courriel user add`` does."""

        user = self.call(add_user(self.store, address, password, self.running.app.hasher))
        return Account(user.address, password, user.id)

    def mailbox(self, account: Account, name: str) -> Mailbox:
        box = self.call(self.store.get_mailbox(account.user_id, name))
        assert box is not None, f"{account.address} has no mailbox {name!r}"
        return box

    def mailbox_names(self, account: Account) -> list[str]:
        return sorted(m.name for m in self.call(self.store.list_mailboxes(account.user_id)))

    def deliver(
        self,
        account: Account,
        mailbox: str,
        raw: bytes,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> Appended:
        """Stores ``raw`` in the mailbox, parsed once as delivery does; durable on return."""
        box = self.mailbox(account, mailbox)
        when = internal_date or datetime.now(UTC).replace(microsecond=0)
        message = delivered(raw, flags, when)
        return self.call(self.store.append([(box.id, message)]))[0]

    def messages(self, account: Account, mailbox: str) -> list[MessageInfo]:
        return self.call(self.store.list_messages(self.mailbox(account, mailbox).id))

    def read(self, account: Account, mailbox: str, uid: int) -> bytes:
        return self.call(self.store.read_message(self.mailbox(account, mailbox).id, uid))

    @staticmethod
    def make_message(subject: str, body: str = "", *, sender: str = "bob@example.net") -> bytes:
        return make_message(subject, body, sender=sender)

    def bodies(self, account: Account, mailbox: str) -> list[bytes]:
        """The stored bytes of every message in the mailbox, in UID order."""
        box = self.mailbox(account, mailbox)
        infos = self.call(self.store.list_messages(box.id))
        return [self.call(self.store.read_message(box.id, m.uid)) for m in infos]


def make_message(subject: str, body: str = "", *, sender: str = "bob@example.net") -> bytes:
    """A small, well-formed RFC 5322 message with CRLF line ends."""
    text = body or f"This is the body of {subject}.\r\nIt has two lines.\r\n"
    return (
        f"From: Bob <{sender}>\r\n"
        "To: Alice <alice@example.test>\r\n"
        f"Subject: {subject}\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{hashlib.sha256(subject.encode()).hexdigest()[:20]}@example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{text}"
    ).encode()


def start_server(
    tmp_path: Path,
    *,
    transport: Transport | None = None,
    extra_config: str = "",
    ports: dict[str, int] | None = None,
) -> MailServer:
    """Starts a server with a fresh data directory under ``tmp_path``; the caller stops it.

    With a ``transport`` it relays mail for other domains through it (the queue worker runs).
    ``ports`` chooses the listeners' ports (free ones by default).
    """
    data_dir = tmp_path / "courriel"
    data_dir.mkdir()
    if ports is None:
        ports = dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))
    cfg = config.load(write_config(data_dir, ports, extra_config))
    server = MailServer(cfg, transport)
    server.start()
    return server


def wait_ready(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Reads a ``courriel serve`` process's standard output until its settings table says it
    is ready (every worker serves)."""
    assert proc.stdout is not None
    out, deadline = b"", time.monotonic() + timeout
    while b"courriel is ready" not in out:
        assert time.monotonic() < deadline, out
        if select.select([proc.stdout], [], [], 1)[0]:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, out
            out += chunk


def spawn_serve(cfg: Path, domain: str, log: Path) -> subprocess.Popen[bytes]:
    """``courriel serve`` as its own process (with its workers) after ``courriel domain add``,
    standard error into ``log``; returns once it is ready. The caller ends it."""
    cli = [sys.executable, "-m", "courriel.cli", "--config", str(cfg)]
    env = {**os.environ, "COURRIEL_TEST_CHEAP_HASH": "1"}
    subprocess.run([*cli, "domain", "add", domain], check=True, env=env, capture_output=True)
    with log.open("wb") as err:
        proc = subprocess.Popen([*cli, "serve"], stdout=subprocess.PIPE, stderr=err, env=env)
    try:
        wait_ready(proc)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=10)
        raise
    return proc
