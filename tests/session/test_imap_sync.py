"""Sync between sessions of one user over real sockets: IDLE, QRESYNC, and when EXPUNGE may go.

The server runs in its own thread and event loop (``courriel.app.serve`` with the IMAP handlers)
so the blocking clients here (``imaplib`` and a line-level ``Raw`` client for IDLE, which
imaplib of Python 3.11 cannot do) talk to it exactly as mail programs do.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import imaplib
import re
import socket
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from courriel import admin
from courriel.accounts.passwords import PasswordHasher
from courriel.app import Running, serve
from courriel.mail.message import parse
from courriel.net import imap as net_imap
from courriel.store.base import NewMessage
from courriel.testing.transcript import HOSTNAME, client_context, make_test_config

T = TypeVar("T")
USER = "alice@example.test"
PASSWORD = "secret-password"
SEE_WITHIN = 1.0  # seconds: a change must reach an idling session this fast


def message(n: int, subject: str = "Note") -> bytes:
    return (
        f"From: Bob <bob@example.net>\r\nTo: {USER}\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: <m{n}@example.net>\r\n\r\nBody {n}\r\n"
    ).encode()


class Server:
    """courriel serving IMAP in a thread; ``call`` runs a coroutine in its loop."""

    def __init__(self, tmp_path: Path, **handler_options: float) -> None:
        self.cert_dir = tmp_path / "tls"
        self.cfg = make_test_config(tmp_path / "data", self.cert_dir, ["imaps", "imap"])
        self.options = handler_options
        self._ready: Future[tuple[asyncio.AbstractEventLoop, Running]] = Future()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        factory = functools.partial(net_imap.handlers, **self.options)
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
        async def add() -> int:
            store = self.running.app.store
            if await store.get_domain(address.rpartition("@")[2]) is None:
                await admin.add_domain(store, address.rpartition("@")[2])
            hasher = PasswordHasher.for_tests()
            try:
                return (await admin.add_user(store, hasher, address, password)).id
            finally:
                hasher.close()

        return self.call(add())

    def deliver(self, user_id: int, count: int, mailbox: str = "INBOX") -> None:
        async def put() -> None:
            store = self.running.app.store
            box = await store.get_mailbox(user_id, mailbox)
            assert box is not None
            now = datetime.now(UTC)
            for n in range(count):
                raw = message(n)
                items = [(box.id, NewMessage(raw, now, meta=parse(raw).to_bytes()))]
                await store.append(items)

        self.call(put())

    def imaplib(self) -> imaplib.IMAP4_SSL:
        host, port = self.address()
        client = imaplib.IMAP4_SSL(host, port, ssl_context=self.tls(), timeout=10)
        client.login(USER, PASSWORD)
        return client

    def raw(self) -> Raw:
        host, port = self.address()
        sock = socket.create_connection((host, port), timeout=10)
        return Raw(self.tls().wrap_socket(sock, server_hostname=HOSTNAME))


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
        lines = []
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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def fetch_view(client: imaplib.IMAP4_SSL) -> list[tuple[int, int, str]]:
    """(seq, uid, flags) of every message, as one client sees them."""
    client.noop()
    client.untagged_responses.pop("FETCH", None)  # unsolicited ones, already applied
    typ, data = client.fetch("1:*", "(UID FLAGS)")
    assert typ == "OK"
    out = []
    for item in data:
        assert isinstance(item, bytes)
        m = re.match(
            rb"(\d+) (?:FETCH )?\((?:UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+))", item
        )
        assert m is not None, item
        uid = m.group(2) or m.group(5)
        flags = m.group(3) if m.group(3) is not None else m.group(4)
        out.append((int(m.group(1)), int(uid), " ".join(sorted(flags.decode().split()))))
    return out


def raw_view(raw: Raw) -> list[tuple[int, int, str]]:
    out = []
    for line in raw.command("FETCH 1:* (UID FLAGS)")[:-1]:
        m = re.match(r"\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", line)
        if m is None:
            m2 = re.match(r"\* (\d+) FETCH \(FLAGS \(([^)]*)\) UID (\d+)\)", line)
            assert m2 is not None, line
            out.append((int(m2.group(1)), int(m2.group(3)), " ".join(sorted(m2.group(2).split()))))
            continue
        out.append((int(m.group(1)), int(m.group(2)), " ".join(sorted(m.group(3).split()))))
    return out


def wait_for(raw: Raw, pattern: str) -> str:
    """The first line matching ``pattern`` that arrives within ``SEE_WITHIN`` seconds."""
    deadline = time.monotonic() + SEE_WITHIN
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"nothing matching {pattern!r} within {SEE_WITHIN} s"
        line = raw.line(timeout=left)
        if re.fullmatch(pattern, line):
            return line


def test_idling_session_sees_every_change_of_another_session(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 3)
    a = server.imaplib()
    b = server.raw()
    try:
        b.login()
        assert b.command("SELECT INBOX")[-1].startswith("t2 OK")
        assert a.select("INBOX")[0] == "OK"
        b.send("i1 IDLE")
        assert b.line().startswith("+ ")

        assert a.append("INBOX", "", imaplib.Time2Internaldate(time.time()), message(9))[0] == "OK"
        wait_for(b, r"\* 4 EXISTS")
        assert a.store("1", "+FLAGS", r"(\Flagged)")[0] == "OK"
        wait_for(b, r"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\)\)")
        assert a.store("2", "+FLAGS", r"(\Deleted)")[0] == "OK"
        wait_for(b, r"\* 2 FETCH \(UID 2 FLAGS \(\\Deleted\)\)")
        assert a.expunge()[0] == "OK"
        wait_for(b, r"\* 2 EXPUNGE")
        assert a.uid("MOVE", "1", "Archive")[0] == "OK"
        wait_for(b, r"\* 1 EXPUNGE")

        b.send("DONE")
        assert b.until("i1")[-1] == "i1 OK IDLE terminated"
        seen_by_b = raw_view(b)
        assert seen_by_b == fetch_view(a)
        assert [uid for _, uid, _ in seen_by_b] == [3, 4]
    finally:
        a.logout()
        b.close()


def test_qresync_reconnect_gets_exactly_what_changed(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 4)
    first = server.raw()
    first.login()
    assert first.command("ENABLE QRESYNC")[0] == "* ENABLED QRESYNC"
    lines = first.command("SELECT INBOX")
    validity = int(
        next(re.search(r"UIDVALIDITY (\d+)", ln) for ln in lines if "UIDVALIDITY" in ln).group(1)
    )  # type: ignore[union-attr]
    modseq = int(
        next(re.search(r"HIGHESTMODSEQ (\d+)", ln) for ln in lines if "HIGHESTMODSEQ" in ln).group(
            1
        )
    )  # type: ignore[union-attr]
    first.command("LOGOUT")
    first.close()

    other = server.imaplib()
    other.select("INBOX")
    other.uid("STORE", "2", "+FLAGS", r"(\Seen)")
    other.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
    other.expunge()
    other.logout()

    again = server.raw()
    again.login()
    again.command("ENABLE QRESYNC")
    lines = again.command(f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:4))")
    assert "* VANISHED (EARLIER) 3" in lines
    changed = [ln for ln in lines if " FETCH " in ln]
    assert len(changed) == 1
    assert re.fullmatch(r"\* 2 FETCH \(UID 2 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", changed[0])
    assert "* 3 EXISTS" in lines
    assert lines[-1] == "t3 OK [READ-WRITE] SELECT completed"
    # A stale UIDVALIDITY gets a plain SELECT: no VANISHED, no FETCH.
    lines = again.command(f"SELECT INBOX (QRESYNC ({validity + 1} {modseq}))")
    assert not [ln for ln in lines if "VANISHED" in ln or " FETCH " in ln]
    again.close()


def test_expunge_is_held_back_during_fetch_store_and_search(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 3)
    a = server.imaplib()
    b = server.raw()
    try:
        b.login()
        b.command("SELECT INBOX")
        a.select("INBOX")
        a.store("1", "+FLAGS", r"(\Deleted)")
        a.expunge()
        time.sleep(0.2)  # let B's session take the change in
        for cmd in ("FETCH 1:3 (FLAGS)", "STORE 3 +FLAGS (\\Seen)", "SEARCH ALL"):
            lines = b.command(cmd)
            assert lines[-1].split()[1] == "OK", lines
            assert not [ln for ln in lines if ln.endswith("EXPUNGE")], (cmd, lines)
        # The numbers B used still mean what B meant: 3 is still the third message.
        assert b.command("FETCH 3 (UID)")[0] == "* 3 FETCH (UID 3)"
        lines = b.command("NOOP")
        assert lines == ["* 1 EXPUNGE", "t7 OK NOOP completed"]
        assert raw_view(b) == fetch_view(a)
    finally:
        a.logout()
        b.close()


def test_uid_fetch_may_carry_the_expunge(server: Server) -> None:
    user_id = server.add_user()
    server.deliver(user_id, 2)
    a = server.imaplib()
    b = server.raw()
    try:
        b.login()
        b.command("SELECT INBOX")
        a.select("INBOX")
        a.store("2", "+FLAGS", r"(\Deleted)")
        a.expunge()
        time.sleep(0.2)
        lines = b.command("UID FETCH 1:* (FLAGS)")
        # RFC 9051 §7.5.1: UID FETCH is a different command from FETCH; EXPUNGE may be sent.
        assert "* 2 EXPUNGE" in lines
        assert lines[-1] == "t3 OK UID FETCH completed"
    finally:
        a.logout()
        b.close()
