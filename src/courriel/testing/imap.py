"""courriel serving IMAP in a background thread, and a line-level client for what imaplib
cannot do.

Theory of operation
-------------------
``Server`` runs ``courriel.app.serve`` with only the IMAP listeners (implicit TLS and plain) in
its own thread and event loop, so blocking clients (``imaplib``, and ``Raw`` for IDLE, which
imaplib of Python 3.11 cannot do) talk to it exactly as mail programs do. Handler options
(timeouts, session limits) go to ``courriel.app.imap_handlers`` unchanged. ``call`` runs a
coroutine on the server's loop, the only place its store may be used. ``Raw`` numbers its own
tags (``t1``, ``t2`` ...) and reads up to the tagged reply; ``close`` logs out and waits for the
server to hang up, so no session outlives a test.

``fetch_attributes`` turns the text of a FETCH command into the attributes the sans-IO parser
makes of it, so session tests build their input as a client would write it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import socket
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from imaplib import IMAP4_SSL
from pathlib import Path
from typing import Any, TypeVar

from courriel.app import Running, imap_handlers, serve
from courriel.testing.fill import add_user, delivered
from courriel.testing.transcript import HOSTNAME, client_context, make_test_config
from courriel.wire.imap import Connection
from courriel.wire.imap.commands import Fetch
from courriel.wire.imap.fetch import FetchAttribute

T = TypeVar("T")
USER = "alice@example.test"
# The password of every test user; the server hashes it as it would a real one.
PASSWORD = "secret-password"  # noqa: S105


SEE_WITHIN = 1.0  # seconds: a change must reach an idling session this fast


def wait_for(raw: Raw, pattern: str, within: float = SEE_WITHIN) -> str:
    """The first line matching ``pattern`` that arrives within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"nothing matching {pattern!r} within {within} s"
        line = raw.line(timeout=left)
        if re.fullmatch(pattern, line):
            return line


def message(n: int, subject: str = "Note") -> bytes:
    return (
        f"From: Bob <bob@example.net>\r\nTo: {USER}\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: <m{n}@example.net>\r\n\r\nBody {n}\r\n"
    ).encode()


class Server:
    """courriel serving IMAP in a thread; ``call`` runs a coroutine in its loop."""

    def __init__(self, tmp_path: Path, **handler_options: Any) -> None:
        self.cert_dir = tmp_path / "tls"
        self.cfg = make_test_config(tmp_path / "data", self.cert_dir, ["imaps", "imap"])
        self.options = handler_options
        self._ready: Future[tuple[asyncio.AbstractEventLoop, Running]] = Future()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        factory = functools.partial(imap_handlers, **self.options)
        loop = asyncio.get_running_loop()
        try:
            await serve(
                self.cfg,
                ready=lambda running: self._ready.set_result((loop, running)),
                factories={"imap": factory},
            )
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            raise

    def start(self) -> None:
        self._thread.start()
        self.loop, self.running = self._ready.result(timeout=15)

    @classmethod
    @contextlib.contextmanager
    def started(cls, tmp_path: Path, **handler_options: Any) -> Iterator[Server]:
        """A started server, stopped when the block ends."""
        server = cls(tmp_path, **handler_options)
        server.start()
        try:
            yield server
        finally:
            server.stop()

    def request_stop(self) -> None:
        """Begins the graceful shutdown, as SIGTERM does, without waiting for it."""
        with contextlib.suppress(RuntimeError):  # the loop may have ended already
            self.loop.call_soon_threadsafe(self.running.stop)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.request_stop()
            self._thread.join(15)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=15)

    def address(self, name: str = "imaps") -> tuple[str, int]:
        return self.running.address(name)

    def tls(self) -> ssl.SSLContext:
        return client_context(self.cert_dir)

    def add_user(self, address: str = USER, password: str = PASSWORD) -> int:
        return self.call(add_user(self.running.app.store, address, password)).id

    def deliver(self, user_id: int, count: int, mailbox: str = "INBOX") -> None:
        async def put() -> None:
            store = self.running.app.store
            box = await store.get_mailbox(user_id, mailbox)
            assert box is not None
            now = datetime.now(UTC)
            for n in range(count):
                await store.append([(box.id, delivered(message(n), internal_date=now))])

        self.call(put())

    def imaplib(self) -> IMAP4_SSL:
        host, port = self.address()
        client = IMAP4_SSL(host, port, ssl_context=self.tls(), timeout=10)
        client.login(USER, PASSWORD)
        return client

    def raw(self) -> Raw:
        host, port = self.address()
        sock = socket.create_connection((host, port), timeout=10)
        return Raw(self.tls().wrap_socket(sock, server_hostname=HOSTNAME))

    def raw_as(self, address: str, password: str = PASSWORD) -> Raw:
        """A line-level session logged in as ``address`` (for tests of several users)."""
        raw = self.raw()
        assert raw.command(f"LOGIN {address} {password}")[-1].split()[1] == "OK"
        return raw

    @contextlib.contextmanager
    def sessions(self, n: int = 2) -> Iterator[list[Raw]]:
        """``n`` sessions of ``USER``, connected and logged in; all closed when the block ends."""
        clients: list[Raw] = []
        try:
            for _ in range(n):
                clients.append(self.raw())
            for client in clients:
                client.login()
            yield clients
        finally:
            for client in clients:
                client.close()

    @contextlib.contextmanager
    def imaplib_and_raw(self) -> Iterator[tuple[IMAP4_SSL, Raw]]:
        """An imaplib session and a line-level one of ``USER``, both logged in, for one block."""
        a = self.imaplib()
        b = self.raw()
        try:
            b.login()
            yield a, b
        finally:
            a.logout()
            b.close()


class Raw:
    """A line-level IMAP client: send a command, read lines up to its tagged reply."""

    def __init__(self, sock: ssl.SSLSocket | socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        self.greeting = self.line()
        self._n = 0

    def line(self, timeout: float = 10) -> str:
        self.sock.settimeout(timeout)
        data = self.file.readline()
        if not data:
            raise ConnectionError("closed by the server")
        return data.decode("utf-8").rstrip("\r\n")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("utf-8") + b"\r\n")

    def command(self, text: str) -> list[str]:
        """Lines answering ``text`` up to and including its tagged reply."""
        self._n += 1
        tag = f"t{self._n}"
        self.send(f"{tag} {text}")
        return self.until(tag)

    def until(self, tag: str) -> list[str]:
        lines: list[str] = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines

    def login(self) -> None:
        assert self.command(f"LOGIN {USER} {PASSWORD}")[-1].split()[1] == "OK"

    def close(self) -> None:
        """Logs out and waits for the server to close first, so no session outlives a test."""
        with contextlib.suppress(OSError, ConnectionError, ValueError):
            self.send("z LOGOUT")
            while self.line(timeout=2):
                pass
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()


def fetch_attributes(text: bytes) -> tuple[FetchAttribute, ...]:
    """The attributes the IMAP parser makes of ``FETCH 1 <text>``."""
    conn = Connection()
    conn.receive_data(b"a1 FETCH 1 " + text + b"\r\n")
    event = conn.next_event()
    assert isinstance(event, Fetch), event
    return event.attributes
