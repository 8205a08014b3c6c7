"""Listeners: placeholder greetings, connection limits, connection ids in logs, shutdown."""

from __future__ import annotations

import asyncio
import io
import logging
import re

import pytest
from runtime_support import (
    HOSTNAME,
    ServeFactory,
    client_context,
    close,
    logging_to,
    read_all,
    read_line,
)

from courriel import logs
from courriel.config import Config, LimitsConfig, LogConfig
from courriel.net.listener import (
    ConnectionContext,
    Connections,
    ProtocolHandlers,
    Refusal,
    limit_key,
)
from courriel.net.stream import Stream
from courriel.testing import placeholder


@pytest.mark.parametrize(
    ("name", "make", "greeting"),
    [
        ("smtp", placeholder.smtp, b"554 5.3.2 mail.test courriel: SMTP service not enabled"),
        ("imap", placeholder.imap, b"* BYE [UNAVAILABLE] courriel: IMAP service not enabled"),
        ("pop3", placeholder.pop3, b"-ERR [SYS/PERM] courriel: POP3 service not enabled"),
    ],
)
async def test_placeholder_greets_and_closes(
    serving: ServeFactory, name: str, make: object, greeting: bytes
) -> None:
    assert callable(make)
    async with serving(make(HOSTNAME), name=name) as lst:
        reader, writer = await asyncio.open_connection(*lst.addresses[0])
        assert await read_all(reader) == greeting + b" in this build\r\n"
        await close(writer)


async def test_implicit_tls_listener_greets_through_tls(serving: ServeFactory, cfg: Config) -> None:
    ctx = client_context(cfg.data_dir / "tls" / "cert.pem")
    async with serving(placeholder.pop3(HOSTNAME), name="pop3s", implicit_tls=True) as lst:
        reader, writer = await asyncio.open_connection(
            *lst.addresses[0], ssl=ctx, server_hostname=HOSTNAME
        )
        line = await read_line(reader)
        await close(writer)
    assert line == b"-ERR [SYS/PERM] courriel: POP3 service not enabled in this build\r\n"


def _holding(started: asyncio.Queue[str]) -> ProtocolHandlers:
    """Greets with the connection id, then waits for the client or for shutdown."""

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        await stream.send(f"HELLO {ctx.conn_id}\r\n".encode())
        started.put_nowait(ctx.conn_id)
        await stream.read(timeout=10)

    return ProtocolHandlers(serve=serve, refuse=placeholder.imap(HOSTNAME).refuse)


async def _connect(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def test_per_address_limit_refuses_the_extra_connection(serving: ServeFactory) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    limits = LimitsConfig(max_connections=10, max_connections_per_ip=2)
    async with serving(_holding(started), limits=limits) as lst:
        port = lst.addresses[0][1]
        held = [await _connect(port) for _ in range(2)]
        for reader, _ in held:
            assert (await read_line(reader)).startswith(b"HELLO ")
        reader, writer = await _connect(port)
        refusal = await read_all(reader)
        assert (
            refusal
            == f"* BYE [UNAVAILABLE] {HOSTNAME} {Refusal.TOO_MANY_FROM_ADDRESS.value}\r\n".encode()
        )
        # Another address is still welcome: the limit is per address.
        other_reader, other_writer = await _connect(port, "127.0.0.2")
        assert (await read_line(other_reader)).startswith(b"HELLO ")
        for _, w in [*held, (reader, writer), (other_reader, other_writer)]:
            await close(w)


async def test_total_limit_refuses_the_extra_connection(serving: ServeFactory) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    limits = LimitsConfig(max_connections=2, max_connections_per_ip=10)
    connections = Connections(limits)
    async with serving(_holding(started), connections=connections) as lst:
        port = lst.addresses[0][1]
        held = [await _connect(port, f"127.0.0.{i}") for i in (1, 2)]
        for reader, _ in held:
            assert (await read_line(reader)).startswith(b"HELLO ")
        assert connections.active == 2 and connections.from_address("127.0.0.1") == 1
        reader, writer = await _connect(port, "127.0.0.3")
        refusal = await read_all(reader)
        assert refusal.endswith(f"{Refusal.TOO_MANY_CONNECTIONS.value}\r\n".encode())
        # Once a connection ends, its place is free again.
        await close(held[0][1])
        async with asyncio.timeout(5):
            while connections.active > 1:  # noqa: ASYNC110 - the count has no event
                await asyncio.sleep(0.01)
        again_reader, again_writer = await _connect(port, "127.0.0.3")
        assert (await read_line(again_reader)).startswith(b"HELLO ")
        for w in (held[1][1], writer, again_writer):
            await close(w)


async def test_every_log_line_of_a_connection_carries_its_id(serving: ServeFactory) -> None:
    out = io.StringIO()
    session_log = logging.getLogger("courriel.session.test")

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        session_log.info("session says hi", extra=logs.kv(user="a@example.org"))
        await stream.send(f"{ctx.conn_id}\r\n".encode())

    handlers = ProtocolHandlers(serve=serve, refuse=placeholder.smtp(HOSTNAME).refuse)
    with logging_to(out, LogConfig(level="info")):
        async with serving(handlers, name="submission") as lst:
            reader, writer = await asyncio.open_connection(*lst.addresses[0])
            conn_id = (await read_line(reader)).strip().decode()
            await read_all(reader)
            await close(writer)
    lines = [ln for ln in out.getvalue().splitlines() if f"conn={conn_id}" in ln]
    assert re.fullmatch(r"[0-9a-f]{6}", conn_id)
    texts = "\n".join(lines)
    for message in ("connected", "session says hi user=a@example.org", "disconnected"):
        assert message in texts
    hi = next(ln for ln in lines if "session says hi" in ln)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.match(
        rf"{stamp} INFO conn={conn_id} listener=submission peer=127\.0\.0\.1 session says hi", hi
    )


async def test_shutdown_says_goodbye_to_idle_sessions_and_lets_transactions_finish(
    serving: ServeFactory,
) -> None:
    release = asyncio.Event()
    in_transaction = asyncio.Event()
    committed: list[str] = []
    connections = Connections(LimitsConfig(shutdown_grace_seconds=5))

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        command = await stream.read(timeout=10)
        if command == b"WRITE\r\n":
            async with ctx.transaction():
                in_transaction.set()
                await release.wait()  # the store call in flight
                committed.append(ctx.conn_id)
                await stream.send(b"OK written\r\n")
        await stream.read(timeout=10)

    handlers = ProtocolHandlers(serve=serve, refuse=placeholder.smtp(HOSTNAME).refuse)
    async with serving(handlers, connections=connections) as lst:
        idle_reader, idle_writer = await _connect(lst.addresses[0][1])
        busy_reader, busy_writer = await _connect(lst.addresses[0][1])
        busy_writer.write(b"WRITE\r\n")
        await asyncio.wait_for(in_transaction.wait(), 5)
        await lst.stop_accepting()
        shutdown = asyncio.create_task(connections.shutdown(5))
        goodbye = f"421 4.3.2 {HOSTNAME} {Refusal.SHUTTING_DOWN.value}\r\n".encode()
        # The idle session is told at once; the busy one finishes its write first.
        assert await read_all(idle_reader) == goodbye
        assert not shutdown.done() and connections.closing.is_set()
        release.set()
        assert await read_all(busy_reader) == b"OK written\r\n" + goodbye
        await asyncio.wait_for(shutdown, 5)
        for w in (idle_writer, busy_writer):
            await close(w)
    assert len(committed) == 1
    assert connections.active == 0


async def test_shutdown_cancels_sessions_that_outlive_the_grace_period(
    serving: ServeFactory,
) -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()
    connections = Connections(LimitsConfig())

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        started.set()
        try:
            await asyncio.sleep(30)  # busy elsewhere (a DNS lookup, say), not reading
        except asyncio.CancelledError:
            cancelled.set()
            raise

    handlers = ProtocolHandlers(serve=serve, refuse=placeholder.smtp(HOSTNAME).refuse)
    async with serving(handlers, connections=connections) as lst:
        reader, writer = await _connect(lst.addresses[0][1])
        await asyncio.wait_for(started.wait(), 5)
        async with asyncio.timeout(3):
            await connections.shutdown(0.2)
        assert cancelled.is_set()
        assert await read_all(reader) == b""
        await close(writer)


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ],
)
def test_ipv6_clients_are_limited_per_64(ip: str, key: str) -> None:
    assert limit_key(ip) == key


async def test_refusal_on_implicit_tls_listener_is_sent_through_tls(
    serving: ServeFactory, cfg: Config
) -> None:
    started: asyncio.Queue[str] = asyncio.Queue()
    limits = LimitsConfig(max_connections=1)
    ctx = client_context(cfg.data_dir / "tls" / "cert.pem")
    async with serving(_holding(started), name="imaps", implicit_tls=True, limits=limits) as lst:
        first = await asyncio.open_connection(*lst.addresses[0], ssl=ctx, server_hostname=HOSTNAME)
        assert (await read_line(first[0])).startswith(b"HELLO ")
        reader, writer = await asyncio.open_connection(
            *lst.addresses[0], ssl=ctx, server_hostname=HOSTNAME
        )
        assert await read_line(reader) == (
            f"* BYE [UNAVAILABLE] {HOSTNAME} {Refusal.TOO_MANY_CONNECTIONS.value}\r\n".encode()
        )
        await close(first[1], writer)
