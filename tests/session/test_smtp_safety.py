"""Safety rules of the SMTP listeners over real sockets: smuggling, STARTTLS injection, clients
that vanish mid-message, timeouts, shutdown, store failures and login limits."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from courriel.store.base import Store, Unavailable
from courriel.store.open import open_store
from courriel.testing.smtp import HOSTNAME, greet, smtp_server

HEAD = b"From: bob@example.net\r\nSubject: test\r\n\r\n"
SMUGGLED = (
    b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
    b"From: boss@example.test\r\nSubject: smuggled\r\n\r\nwire the money\r\n.\r\n"
)


class GatedStore:
    """The real store, with ``append`` held until the test releases it (or failing)."""

    def __init__(self, inner: Store, *, fail: bool = False) -> None:
        self._inner = inner
        self._fail = fail
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def append(self, items: Any) -> Any:
        self.entered.set()
        if self._fail:
            raise Unavailable("the database is down")
        await self.release.wait()
        return await self._inner.append(items)


@pytest.mark.parametrize(
    "ending",
    [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r"],
    ids=["lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf", "cr-dot-crlf", "crlf-dot-cr"],
)
async def test_smtp_smuggling_never_ends_a_message_early(tmp_path: Path, ending: bytes) -> None:
    async with smtp_server(tmp_path) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c, "relay.example.net")
        await c.envelope("bob@example.net", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(HEAD + b"hello" + ending + SMUGGLED)
        code, text = await c.reply()
        # The bare CR or LF makes the whole message unacceptable; nothing after it is a command.
        assert (code, text) == (550, "5.6.11 bare LF/CR is not allowed: end lines with CRLF")
        assert (await c.command("NOOP"))[0] == 250
        await c.close()
        assert await server.inbox("alice@example.test") == []


async def test_starttls_injection_is_discarded_and_runs_nothing(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c)
        await c.send(b"STARTTLS\r\n" + SMUGGLED)
        assert (await c.reply())[0] == 220
        # RFC 3207 §4.2: the smuggled transaction was thrown away; TLS is negotiated anyway and
        # the first reply inside it answers NOOP, not the smuggled MAIL FROM.
        await asyncio.wait_for(c.writer.start_tls(c.ctx, server_hostname=HOSTNAME), 5)
        assert await c.command("NOOP") == (250, "2.0.0 OK")
        await c.expect("EHLO client.example", 250)
        await c.expect("QUIT", 221)
        assert await c.closed()
        await c.close()
        assert await server.inbox("alice@example.test") == []


async def test_client_vanishing_mid_data_or_bdat_delivers_nothing(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c)
        await c.envelope("bob@example.net", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(HEAD + b"half a message\r\n")
        await c.close()
        c = await server.connect("smtp")
        await greet(c)
        await c.envelope("bob@example.net", "alice@example.test")
        await c.send(b"BDAT 500 LAST\r\n" + HEAD + b"not 500 octets\r\n")
        await c.close()
        await asyncio.sleep(0.2)  # let the server notice both disconnections
        assert await server.inbox("alice@example.test") == []


async def test_command_timeout_says_421_and_closes(tmp_path: Path) -> None:
    async with smtp_server(tmp_path, command_timeout=0.3) as server:
        c = await server.connect("smtp")
        await greet(c)
        code, text = await c.reply()  # nothing sent: the server gives up
        assert (code, text) == (421, "4.4.2 timeout waiting for the client, closing the connection")
        assert await c.closed()
        await c.close()


@pytest.mark.parametrize(
    ("command_timeout", "data_command", "sent"),
    [
        (5.0, True, HEAD + b"and then nothing\r\n"),
        # A generous command timeout: only the data timeout can end a BDAT chunk this early.
        (30.0, False, b"BDAT 1000 LAST\r\n" + HEAD),
    ],
    ids=["data", "inside-a-bdat-chunk"],
)
async def test_data_timeout_drops_the_message(
    tmp_path: Path, command_timeout: float, data_command: bool, sent: bytes
) -> None:
    async with smtp_server(tmp_path, command_timeout=command_timeout, data_timeout=0.3) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c)
        await c.envelope("bob@example.net", "alice@example.test")
        if data_command:
            await c.expect("DATA", 354)
        await c.send(sent)
        code, _ = await c.reply()
        assert code == 421
        assert await c.closed()
        await c.close()
        assert await server.inbox("alice@example.test") == []


async def test_shutdown_lets_a_message_in_flight_finish_and_be_acknowledged(
    tmp_path: Path,
) -> None:
    gates: list[GatedStore] = []

    def wrap(store: Store) -> Store:
        gates.append(GatedStore(store))
        return gates[-1]  # type: ignore[return-value]

    async with smtp_server(tmp_path, store_wrapper=wrap) as server:
        gate = gates[0]
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c)
        await c.envelope("bob@example.net", "alice@example.test")
        await c.expect("DATA", 354)
        # NOOP is pipelined behind the message: it is the next command when shutdown begins.
        await c.send(HEAD + b"in flight\r\n.\r\nNOOP\r\n")
        await asyncio.wait_for(gate.entered.wait(), 5)
        server.running.stop()  # SIGTERM while the store write is in progress
        await asyncio.sleep(0.3)
        gate.release.set()
        code, _ = await c.reply()
        assert code == 250  # acknowledged: it was stored
        code, text = await c.reply()
        assert (code, text) == (
            421,
            "4.3.2 mail.example.test server shutting down, try again later",
        )
        assert await c.closed()
        await c.close()
        cfg = server.running.app.cfg
    store = await open_store(cfg)
    try:
        user = await store.get_user("alice@example.test")
        assert user is not None
        box = await store.get_mailbox(user.id, "INBOX")
        assert box is not None
        assert len(await store.list_messages(box.id)) == 1
    finally:
        await store.close()


async def test_idle_client_gets_421_at_shutdown(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        c = await server.connect("smtp")
        await greet(c)
        server.running.stop()
        code, text = await c.reply()
        assert (code, text) == (
            421,
            "4.3.2 mail.example.test server shutting down, try again later",
        )
        assert await c.closed()
        await c.close()


async def test_store_unavailable_is_a_temporary_failure(tmp_path: Path) -> None:
    def wrap(store: Store) -> Store:
        return GatedStore(store, fail=True)  # type: ignore[return-value]

    async with smtp_server(tmp_path, store_wrapper=wrap) as server:
        await server.add_user("alice@example.test")
        c = await server.connect("smtp")
        await greet(c)
        await c.envelope("bob@example.net", "alice@example.test")
        await c.expect("DATA", 354)
        await c.send(HEAD + b"x\r\n.\r\n")
        assert await c.reply() == (451, "4.3.0 temporary server failure, try again later")
        assert (await c.command("NOOP"))[0] == 250  # the session goes on
        await c.close()


async def test_failed_logins_are_limited_per_account(tmp_path: Path) -> None:
    limits = {"max_failures_per_ip": 0, "max_failures_per_account": 3}
    async with smtp_server(tmp_path, auth=limits) as server:
        await server.add_user("alice@example.test")
        wrong = base64.b64encode(b"\0Alice@Example.test\0wrong").decode()
        right = base64.b64encode(b"\0alice@example.test\0secret").decode()
        c = await server.connect("submissions")
        await greet(c)
        for _ in range(3):
            assert (await c.command(f"AUTH PLAIN {wrong}"))[0] == 535
        code, text = await c.command(f"AUTH PLAIN {right}")
        assert (code, text[:5]) == (454, "4.7.0")
        await c.close()
        # Another account from the same address is not affected (the IP limit is off).
        await server.add_user("bob@example.test")
        c = await server.connect("submissions")
        await greet(c)
        await c.login("bob@example.test")
        await c.close()
