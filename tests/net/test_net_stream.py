"""Stream: bulk reads with timeouts, STARTTLS and its injection rule, interrupts."""

from __future__ import annotations

import asyncio

from runtime_support import HOSTNAME, ServeFactory, client_context, close, read_all, read_line

from courriel.config import Config
from courriel.net.listener import ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.stream import ShuttingDown, Stream, StreamTimeout, TLSInfo
from courriel.net.tls import TLSManager


async def _no_refusal(stream: Stream, refusal: Refusal) -> None:
    await stream.send(f"NO {refusal.value}\r\n".encode())


INJECTED = b"MAIL FROM:<attacker@example.org>\r\n"


def _starttls_server(
    tls: TLSManager,
    outcome: asyncio.Future[object],
    discarded: asyncio.Future[int],
    *,
    wait_for_pipelined: bool,
    seen: asyncio.Event | None = None,
) -> ProtocolHandlers:
    """A tiny line protocol: "STARTTLS" then, inside TLS, echo one line with the TLS version."""

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        assert await stream.read(timeout=5) == b"STARTTLS\r\n"
        await stream.send(b"OK begin TLS\r\n")
        if wait_for_pipelined:
            # The client sends more clear text right after our reply; let it all arrive.
            async with asyncio.timeout(5):
                while stream.buffered() < len(INJECTED):  # noqa: ASYNC110 - no event for it
                    await asyncio.sleep(0.005)
            if seen is not None:
                seen.set()  # the client runs next only once start_tls has paused reading
        discarded.set_result(await stream.start_tls(tls.context, handshake_timeout=5))
        line = await stream.read(timeout=5)
        outcome.set_result(stream.tls)
        await stream.send(b"ECHO " + line)

    return ProtocolHandlers(serve=serve, refuse=_no_refusal)


async def test_starttls_upgrades_and_reports_tls_info(
    serving: ServeFactory, tls_manager: TLSManager, cfg: Config
) -> None:
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    discarded: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    handlers = _starttls_server(tls_manager, outcome, discarded, wait_for_pipelined=False)
    async with serving(handlers) as lst:
        reader, writer = await asyncio.open_connection(*lst.addresses[0])
        writer.write(b"STARTTLS\r\n")
        assert await read_line(reader) == b"OK begin TLS\r\n"
        ctx = client_context(cfg.data_dir / "tls" / "cert.pem")
        await writer.start_tls(ctx, server_hostname=HOSTNAME)
        writer.write(b"hello\r\n")
        assert await read_line(reader) == b"ECHO hello\r\n"
        await close(writer)
    info = await outcome
    assert await discarded == 0
    assert isinstance(info, TLSInfo)
    assert info.version in ("TLSv1.2", "TLSv1.3")
    assert info.cipher and info.bits >= 128


async def test_starttls_discards_clear_text_that_was_pipelined(
    serving: ServeFactory, tls_manager: TLSManager, cfg: Config
) -> None:
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    discarded: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen = asyncio.Event()
    handlers = _starttls_server(tls_manager, outcome, discarded, wait_for_pipelined=True, seen=seen)
    async with serving(handlers) as lst:
        reader, writer = await asyncio.open_connection(*lst.addresses[0])
        writer.write(b"STARTTLS\r\n")
        assert await read_line(reader) == b"OK begin TLS\r\n"
        # CVE-2011-0411: a command injected in clear between STARTTLS and the handshake.
        writer.write(INJECTED)
        await asyncio.wait_for(seen.wait(), 5)
        ctx = client_context(cfg.data_dir / "tls" / "cert.pem")
        await writer.start_tls(ctx, server_hostname=HOSTNAME)
        assert await discarded == len(INJECTED)  # thrown away before the handshake began
        writer.write(b"hello\r\n")
        # Inside TLS the first line read is the one sent under TLS, not the injected one.
        assert await read_line(reader) == b"ECHO hello\r\n"
        await close(writer)
    assert isinstance(await outcome, TLSInfo)


async def test_read_timeout_raises_a_clear_exception(serving: ServeFactory) -> None:
    outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        try:
            await stream.read(timeout=0.05)
        except StreamTimeout as e:
            outcome.set_result(e)
            await stream.send(b"timed out\r\n")

    async with serving(ProtocolHandlers(serve=serve, refuse=_no_refusal)) as lst:
        reader, writer = await asyncio.open_connection(*lst.addresses[0])
        assert await read_line(reader) == b"timed out\r\n"
        await close(writer)
    err = await outcome
    assert isinstance(err, TimeoutError)
    assert "0.05 s" in str(err)


async def test_read_returns_what_is_available_in_bulk(serving: ServeFactory) -> None:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        await stream.send(b"go\r\n")
        async with asyncio.timeout(5):
            while stream.buffered() < 3000:  # noqa: ASYNC110 - a buffer has no event
                await asyncio.sleep(0.005)
        got.set_result(await stream.read(1 << 20, timeout=5))

    async with serving(ProtocolHandlers(serve=serve, refuse=_no_refusal)) as lst:
        reader, writer = await asyncio.open_connection(*lst.addresses[0])
        await read_line(reader)
        writer.write(b"line\r\n" * 500)
        data = await asyncio.wait_for(got, 5)
        await close(writer)
    assert data == b"line\r\n" * 500  # one read, every line, no per-line loop


async def test_interrupt_wakes_a_waiting_read_and_writes_still_work(
    serving: ServeFactory,
) -> None:
    waiting = asyncio.Event()
    streams: list[Stream] = []

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        streams.append(stream)
        waiting.set()
        try:
            await stream.read(timeout=10)
        except ShuttingDown:
            await stream.send(b"bye\r\n")

    async with serving(ProtocolHandlers(serve=serve, refuse=_no_refusal)) as lst:
        reader, writer = await asyncio.open_connection(*lst.addresses[0])
        await asyncio.wait_for(waiting.wait(), 5)
        streams[0].interrupt(ShuttingDown("stop"))
        assert await read_line(reader) == b"bye\r\n"
        assert await read_all(reader) == b""
        await close(writer)
    assert streams[0].peer[0] == "127.0.0.1"
    assert streams[0].local == tuple(lst.addresses[0])
