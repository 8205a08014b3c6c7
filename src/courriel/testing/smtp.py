"""A real courriel server with only the SMTP listeners, in the test's own event loop, and a
small line client that reads whole replies.

Theory of operation
-------------------
``smtp_server`` runs ``courriel.app.serve`` with the configuration the transcript runner uses
(cheap hashing, no login delay), optionally with other limits, shorter timeouts, or a store
wrapped to pause or fail at ``append`` (``store_wrapper``) -- the one place a test steers the
server. ``Client`` speaks SMTP line by line over asyncio streams: ``reply`` reads one whole
(possibly multi-line) reply, ``expect`` fails unless the code is the one asked for.
``body_after_trace`` splits what courriel prepends at delivery from the client's bytes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from courriel.app import Running, smtp_handlers
from courriel.config import Config
from courriel.store.base import Store
from courriel.store.open import open_store
from courriel.testing.fill import add_user
from courriel.testing.transcript import (
    HOSTNAME,
    client_context,
    make_test_config,
    open_client,
    running_server,
)

TIMEOUT = 10.0
# The password of every test user; the server hashes it as it would a real one.
PASSWORD = "secret"  # noqa: S105
LISTENERS = ["smtp", "submission", "submissions"]


@dataclass
class Server:
    running: Running
    cert_dir: Path

    @property
    def store(self) -> Store:
        return self.running.app.store

    def address(self, listener: str) -> tuple[str, int]:
        return self.running.address(listener)

    async def add_user(self, address: str, password: str = PASSWORD) -> int:
        return (await add_user(self.store, address, password)).id

    async def inbox(self, address: str) -> list[bytes]:
        user = await self.store.get_user(address)
        assert user is not None
        box = await self.store.get_mailbox(user.id, "INBOX")
        assert box is not None
        infos = await self.store.list_messages(box.id)
        return [await self.store.read_message(box.id, m.uid) for m in infos]

    async def connect(self, listener: str = "smtp") -> Client:
        ctx = client_context(self.cert_dir)
        reader, writer = await open_client(self.running, listener, ctx)
        return Client(reader, writer, ctx)


class Client:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.ctx = ctx

    async def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode() + b"\r\n"
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self) -> tuple[int, str]:
        """One whole reply: its code and its lines joined by newlines."""
        lines: list[str] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), TIMEOUT)
            assert line.endswith(b"\r\n"), f"incomplete reply line {line!r}"
            lines.append(line[4:-2].decode())
            if line[3:4] == b" ":
                return int(line[:3]), "\n".join(lines)

    async def command(self, line: str) -> tuple[int, str]:
        await self.send(line)
        return await self.reply()

    async def expect(self, line: str, code: int) -> str:
        got, text = await self.command(line)
        assert got == code, f"{line!r}: expected {code}, got {got} {text}"
        return text

    async def envelope(self, sender: str, *recipients: str) -> None:
        """MAIL FROM, then one RCPT TO per recipient; the server must accept each (250)."""
        await self.expect(f"MAIL FROM:<{sender}>", 250)
        for recipient in recipients:
            await self.expect(f"RCPT TO:<{recipient}>", 250)

    async def starttls(self) -> None:
        await self.expect("STARTTLS", 220)
        await asyncio.wait_for(self.writer.start_tls(self.ctx, server_hostname=HOSTNAME), TIMEOUT)

    async def closed(self) -> bool:
        try:
            data = await asyncio.wait_for(self.reader.read(1), TIMEOUT)
        except (ConnectionError, ssl.SSLError):
            return True
        return data == b""

    async def login(self, user: str, password: str = PASSWORD) -> None:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        await self.expect(f"AUTH PLAIN {token}", 235)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)


async def greet(client: Client, name: str = "client.example") -> None:
    code, _ = await client.reply()
    assert code == 220
    await client.expect(f"EHLO {name}", 250)


@contextlib.asynccontextmanager
async def smtp_server(
    tmp_path: Path,
    *,
    limits: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
    sections: dict[str, dict[str, Any]] | None = None,
    store_wrapper: Callable[[Store], Store] | None = None,
    **handler_options: Any,
) -> AsyncIterator[Server]:
    """A courriel server with the three SMTP listeners, running in this event loop."""
    cert_dir = tmp_path / "tls"
    cfg: Config = make_test_config(tmp_path / "data", cert_dir, LISTENERS)
    if limits:
        cfg = dataclasses.replace(cfg, limits=dataclasses.replace(cfg.limits, **limits))
    if auth:
        cfg = dataclasses.replace(cfg, auth=dataclasses.replace(cfg.auth, **auth))
    for name, values in (sections or {}).items():  # e.g. {"junk": {"greylist": True}}
        cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **values)})

    async def opener(c: Config) -> Store:
        store = await open_store(c)
        return store_wrapper(store) if store_wrapper else store

    factory = functools.partial(smtp_handlers, **handler_options)
    async with running_server(cfg, open_store=opener, factories={"smtp": factory}) as running:
        yield Server(running, cert_dir)


TRACE = (b"Return-Path:", b"Received:")
SPAM_FIELDS = (b"X-Spam-Score:", b"X-Spam-Status:", b"X-Spam-Report:")  # [junk] scoring
SIGNED = (*TRACE, b"DKIM-Signature:")  # and the signatures of a local copy of submitted mail


def body_after_trace(stored: bytes, fields: tuple[bytes, ...] = TRACE) -> tuple[list[bytes], bytes]:
    """Splits the fields courriel prepends (trace fields: Return-Path, Received) from the rest."""
    names: list[bytes] = []
    pos = 0
    while True:
        for name in fields:
            if stored.startswith(name, pos):
                names.append(name[:-1])
                end = stored.index(b"\r\n", pos) + 2
                while stored[end : end + 1] in (b" ", b"\t"):
                    end = stored.index(b"\r\n", end) + 2
                pos = end
                break
        else:
            return names, stored[pos:]
