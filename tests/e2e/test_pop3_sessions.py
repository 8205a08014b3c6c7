"""POP3 connections over real TLS sockets: locking, dropped connections, timeouts, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from courriel.store.sqlite import open_sqlite
from courriel.testing.pop3 import PASSWORD, Server, message, pop3_server

ALICE = "alice@example.test"


@dataclass
class Client:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def line(self) -> bytes:
        async with asyncio.timeout(5):
            return await self.reader.readline()

    async def say(self, line: str) -> bytes:
        self.writer.write(line.encode() + b"\r\n")
        return await self.line()

    async def login(self) -> bytes:
        assert (await self.say(f"USER {ALICE}")).startswith(b"+OK")
        return await self.say(f"PASS {PASSWORD}")

    async def closed(self) -> bool:
        async with asyncio.timeout(5):
            return await self.reader.read() == b""


@contextlib.asynccontextmanager
async def pop3s(srv: Server) -> AsyncIterator[Client]:
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.pop3s, ssl=srv.client_context())
    client = Client(reader, writer)
    try:
        assert (await client.line()).startswith(b"+OK")
        yield client
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def _lease_free(srv: Server, user_id: int) -> bool:
    """Whether a new owner can take the maildrop lease now (and gives it back at once)."""
    name = f"pop3:{user_id}"
    if not await srv.store.acquire_lease(name, "probe", 5):
        return False
    await srv.store.release_lease(name, "probe")
    return True


async def _eventually_free(srv: Server, user_id: int) -> bool:
    for _ in range(50):
        if await _lease_free(srv, user_id):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_second_connection_gets_in_use_until_quit(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user(ALICE)
        await srv.deliver(alice, message("one"))
        async with pop3s(srv) as first, pop3s(srv) as second:
            assert (await first.login()).startswith(b"+OK maildrop has 1 messages")
            assert await second.login() == b"-ERR [IN-USE] maildrop already locked\r\n"
            assert not await _lease_free(srv, alice.id)
            assert (await first.say("QUIT")).startswith(b"+OK")
            assert await first.closed()
            assert await _eventually_free(srv, alice.id)
            # The refused connection is still in AUTHORIZATION and may try again.
            assert (await second.login()).startswith(b"+OK maildrop has 1 messages")


async def test_dropped_connection_deletes_nothing_and_releases_the_lock(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user(ALICE)
        appended = await srv.deliver(alice, message("one"), message("two"))
        async with pop3s(srv) as client:
            await client.login()
            assert await client.say("DELE 1") == b"+OK message 1 deleted\r\n"
            assert await client.say("DELE 2") == b"+OK message 2 deleted\r\n"
        # Closed without QUIT: RFC 1939 §6, no UPDATE.
        assert await _eventually_free(srv, alice.id)
        left = await srv.store.list_messages(appended[0].mailbox_id)
    assert [m.uid for m in left] == [a.uid for a in appended]


async def test_pipelined_commands_are_answered_in_order(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user(ALICE)
        await srv.deliver(alice, message("one"))
        async with pop3s(srv) as client:
            client.writer.write(
                f"USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nBOGUS\r\nNOOP\r\nQUIT\r\n".encode()
            )
            lines = [await client.line() for _ in range(6)]
            assert await client.closed()
    assert lines[0] == b"+OK send PASS\r\n"
    assert lines[1].startswith(b"+OK maildrop has 1 messages")
    assert lines[2].startswith(b"+OK 1 ")
    assert lines[3] == b"-ERR unknown command\r\n"
    assert lines[4] == b"+OK\r\n"
    assert lines[5] == b"+OK courriel POP3 server signing off\r\n"


async def test_inactivity_timeout_logs_out_without_update(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, idle_timeout=0.3) as srv:
        alice = await srv.add_user(ALICE)
        appended = await srv.deliver(alice, message("one"))
        async with pop3s(srv) as client:
            await client.login()
            await client.say("DELE 1")
            assert (await client.line()).startswith(b"-ERR autologout")
            assert await client.closed()
        assert await _eventually_free(srv, alice.id)
        assert len(await srv.store.list_messages(appended[0].mailbox_id)) == 1


async def test_shutdown_says_sys_temp_and_deletes_nothing(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv:
        alice = await srv.add_user(ALICE)
        appended = await srv.deliver(alice, message("one"))
        async with pop3s(srv) as client:
            await client.login()
            await client.say("DELE 1")
            srv.running.stop()
            goodbye = await client.line()
            assert await client.closed()
    # The server has stopped and closed its store; open it again to see what is left.
    store = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        remaining = await store.list_messages(appended[0].mailbox_id)
    finally:
        await store.close()
    assert goodbye == b"-ERR [SYS/TEMP] server shutting down, try again later\r\n"
    assert len(remaining) == 1


async def test_line_too_long_and_error_budget(tmp_path: Path) -> None:
    async with pop3_server(tmp_path) as srv, pop3s(srv) as client:
        assert await client.say("NOOP " + "x" * 300) == b"-ERR line too long\r\n"
        replies = [await client.say("FOO") for _ in range(9)]
        assert await client.closed()
    assert replies[:8] == [b"-ERR unknown command\r\n"] * 8
    assert replies[8] == b"-ERR too many errors; closing the connection\r\n"


async def test_connection_limit_refusal_is_sys_temp(tmp_path: Path) -> None:
    async with pop3_server(tmp_path, max_connections_per_ip=1) as srv, pop3s(srv) as first:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", srv.pop3s, ssl=srv.client_context()
        )
        second = Client(reader, writer)
        refusal = await second.line()
        assert await second.closed()
        writer.close()
        assert await first.say("NOOP") == b"-ERR NOOP is not valid before authentication\r\n"
    # RFC 3206 §4: the client may try again later.
    assert refusal == b"-ERR [SYS/TEMP] too many connections from your address, try again later\r\n"
