"""The rest of a command is acknowledged as it arrives: a client that sends one command in two
pieces with Nagle's algorithm on (Python's imaplib: a literal, then its CRLF) is not held back by
a delayed acknowledgement (``Stream.ack_promptly``, called by the driver when the session's core
is ``mid_command``)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from courriel.accounts.passwords import PasswordHasher
from courriel.net.memstream import memory_stream_pair
from courriel.net.stream import SocketStream
from courriel.testing.fill import add_domain_once, add_user
from courriel.testing.transcript import (
    HOSTNAME,
    MEMORY_PEER,
    client_context,
    make_test_config,
    running_server,
)

QUICKACK = getattr(socket, "TCP_QUICKACK", None)


@pytest.mark.skipif(QUICKACK is None, reason="TCP_QUICKACK is Linux's")
async def test_ack_promptly_turns_delayed_acknowledgement_off() -> None:
    assert QUICKACK is not None
    seen: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = SocketStream(reader, writer, "t")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 0)  # delayed, as after a reply
        before = sock.getsockopt(socket.IPPROTO_TCP, QUICKACK)
        stream.ack_promptly()
        seen.set_result((before, sock.getsockopt(socket.IPPROTO_TCP, QUICKACK)))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(seen, 5) == (0, 1)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_driver_hurries_the_rest_of_a_command_only(tmp_path: Path) -> None:
    """Over the in-process IMAP server: complete commands leave acknowledgements alone; the
    literal after "+ Ready", and the CRLF after the literal, are hurried."""
    cert_dir = tmp_path / "certs"
    cfg = make_test_config(tmp_path / "data", cert_dir, ["imaps"])
    async with running_server(cfg) as running:
        store = running.app.store
        await add_domain_once(store, "example.org")
        hasher = PasswordHasher.for_tests()
        try:
            await add_user(store, "a@example.org", "secret-pw", hasher)
        finally:
            hasher.close()
        listener = next(lst for lst in running.listeners if lst.config.name == "imaps")
        ours, theirs = memory_stream_pair(client_peer=MEMORY_PEER)
        served = asyncio.create_task(listener.serve_stream(theirs, MEMORY_PEER))
        await asyncio.sleep(0)
        ctx = client_context(cert_dir)
        await ours.start_tls(ctx, handshake_timeout=5, server_hostname=HOSTNAME)
        got = bytearray()

        async def until(marker: bytes) -> None:
            async with asyncio.timeout(5):
                while marker not in got:
                    got.extend(await ours.read())

        await until(b"* OK")
        await ours.send(b"a1 LOGIN a@example.org secret-pw\r\na2 NOOP\r\na3 SELECT INBOX\r\n")
        await until(b"a3 OK")
        assert theirs.prompt_acks == 0  # whole commands: nothing to hurry
        await ours.send(b"a4 APPEND INBOX {20}\r\n")
        await until(b"+ ")
        await ours.send(b"Subject: x\r\n\r\nhello")  # the literal, its CRLF not yet
        async with asyncio.timeout(5):
            while theirs.prompt_acks < 2:  # noqa: ASYNC110 - the count has no event
                await asyncio.sleep(0.001)
        await ours.send(b"\r\n")
        await until(b"a4 OK")
        assert theirs.prompt_acks == 2  # after "+ Ready", and after the literal
        # With NOTIFY on, the driver reads while it pushes: the same holds there.
        await ours.send(b"n1 NOTIFY SET (SELECTED (MessageNew MessageExpunge))\r\n")
        await until(b"n1 OK")
        await ours.send(b"a5 APPEND INBOX {5}\r\n")
        async with asyncio.timeout(5):  # set once the "+" went out
            while theirs.prompt_acks < 3:  # noqa: ASYNC110 - the count has no event
                await asyncio.sleep(0.001)
        await ours.send(b"hello\r\n")
        await until(b"a5 OK")
        await ours.send(b"a6 LOGOUT\r\n")
        await until(b"a6 OK")
        assert theirs.prompt_acks == 3
        await ours.close()
        await asyncio.wait_for(served, 5)
