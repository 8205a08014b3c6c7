"""Memory streams: the ``Stream`` contract in memory, a POP3 session driven over one, and a
listener serving one (``Listener.serve_stream``), all in-process."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from runtime_support import HOSTNAME, client_context, listener_config

from courriel.accounts.authcache import AuthCache
from courriel.accounts.authenticator import Authenticator
from courriel.accounts.passwords import PasswordHasher
from courriel.accounts.ratelimit import AuthLimiter
from courriel.config import AuthConfig, Config, LimitsConfig
from courriel.net.listener import (
    ConnectionContext,
    Connections,
    Listener,
    ProtocolHandlers,
    Refusal,
)
from courriel.net.memstream import MemoryStream, memory_stream_pair
from courriel.net.pop3 import Pop3Server
from courriel.net.services import LoginServices
from courriel.net.stream import ShuttingDown, Stream, StreamTimeout, TLSHandshakeFailed
from courriel.net.tls import TLSManager
from courriel.store.base import Store
from courriel.testing.fill import add_user, delivered

INJECTED = b"USER mallory@example.test\r\n"

# --- the pair ---------------------------------------------------------------------------------


async def test_bytes_cross_both_ways_and_peers_are_reported() -> None:
    client, server = memory_stream_pair(client_peer=("198.51.100.4", 4242))
    client.write(b"HELLO\r\n")
    client.write(b"AGAIN\r\n")
    assert server.buffered() == 14
    assert await server.read(timeout=1) == b"HELLO\r\nAGAIN\r\n"
    assert server.buffered() == 0
    await server.send(b"+OK\r\n")
    assert await client.read(timeout=1) == b"+OK\r\n"
    assert server.peer == ("198.51.100.4", 4242)
    assert server.tls is None


async def test_read_returns_at_most_max_bytes() -> None:
    client, server = memory_stream_pair()
    client.write(b"abcdefgh")
    assert await server.read(3, timeout=1) == b"abc"
    assert await server.read(100, timeout=1) == b"defgh"


async def test_a_waiting_read_wakes_when_bytes_arrive() -> None:
    client, server = memory_stream_pair()
    reading = asyncio.create_task(server.read(timeout=1))
    await asyncio.sleep(0)
    assert not reading.done()
    client.write(b"late")
    assert await reading == b"late"


async def test_read_times_out_with_stream_timeout() -> None:
    _, server = memory_stream_pair()
    with pytest.raises(StreamTimeout, match="no data from the client"):
        await server.read(timeout=0.05)


# --- backpressure -----------------------------------------------------------------------------


async def test_drain_waits_until_the_other_end_reads() -> None:
    client, server = memory_stream_pair(limit=8)
    server.write(b"x" * 20)
    with pytest.raises(StreamTimeout, match="took no data"):
        await server.drain(timeout=0.05)
    draining = asyncio.create_task(server.drain(timeout=1))
    await asyncio.sleep(0)
    assert not draining.done()
    assert await client.read(10, timeout=1) == b"x" * 10
    await asyncio.sleep(0)
    assert not draining.done()  # still 10 bytes queued, over the mark of 8
    assert await client.read(4, timeout=1) == b"xxxx"
    await asyncio.wait_for(draining, 1)  # 6 left: under the mark


async def test_read_takes_no_input_while_its_output_is_not_taken() -> None:
    client, server = memory_stream_pair(limit=8)
    client.write(b"NEXT\r\n")
    server.write(b"y" * 20)  # the client does not read its replies
    reading = asyncio.create_task(server.read(timeout=1))
    await asyncio.sleep(0.02)
    assert not reading.done()
    assert await client.read(timeout=1) == b"y" * 20
    assert await asyncio.wait_for(reading, 1) == b"NEXT\r\n"


# --- ends -------------------------------------------------------------------------------------


async def test_close_leaves_written_bytes_then_end_of_stream() -> None:
    client, server = memory_stream_pair()
    client.write(b"QUIT\r\n")
    await client.close()
    assert client.closed
    assert not server.at_eof()
    assert await server.read(timeout=1) == b"QUIT\r\n"
    assert server.at_eof()
    assert await server.read(timeout=1) == b""
    client.write(b"ignored")  # written after close: never arrives
    assert server.buffered() == 0


async def test_close_wakes_a_waiting_read_with_end_of_stream() -> None:
    client, server = memory_stream_pair()
    reading = asyncio.create_task(server.read(timeout=1))
    await asyncio.sleep(0)
    await client.close()
    assert await reading == b""


async def test_closing_an_end_ends_its_own_waiting_read() -> None:
    _, server = memory_stream_pair()
    reading = asyncio.create_task(server.read(timeout=5))
    await asyncio.sleep(0)
    server.abort()  # what the listener does when the session is cancelled
    assert await asyncio.wait_for(reading, 1) == b""


async def test_abort_drops_what_the_other_end_has_not_read() -> None:
    client, server = memory_stream_pair()
    server.write(b"+OK never read\r\n")
    server.abort()
    assert server.closed
    assert await client.read(timeout=1) == b""


async def test_writes_to_a_gone_reader_are_dropped_and_drain_returns() -> None:
    client, server = memory_stream_pair(limit=4)
    server.write(b"z" * 100)
    draining = asyncio.create_task(server.drain(timeout=1))
    await asyncio.sleep(0)
    await client.close()
    await asyncio.wait_for(draining, 1)
    await server.send(b"more", timeout=1)


async def test_interrupt_raises_in_the_pending_and_every_later_read() -> None:
    client, server = memory_stream_pair()
    reading = asyncio.create_task(server.read(timeout=5))
    await asyncio.sleep(0)
    server.interrupt(ShuttingDown("stopping"))
    with pytest.raises(ShuttingDown, match="stopping"):
        await reading
    client.write(b"data")
    with pytest.raises(ShuttingDown):
        await server.read(timeout=1)
    await server.send(b"* BYE\r\n")  # a goodbye can still be written
    assert await client.read(timeout=1) == b"* BYE\r\n"


async def test_start_tls_runs_real_tls_in_memory_and_drops_clear_text(
    tls_manager: TLSManager, cfg: Config
) -> None:
    client, server = memory_stream_pair()
    client.write(b"STARTTLS\r\n" + INJECTED)  # clear text pipelined after the command
    assert await server.read(10, timeout=1) == b"STARTTLS\r\n"
    server_side = asyncio.create_task(server.start_tls(tls_manager.context, handshake_timeout=5))
    await asyncio.sleep(0)  # the server discards before the client starts its handshake
    ctx = client_context(cfg.data_dir / "tls" / "cert.pem")
    assert await client.start_tls(ctx, handshake_timeout=5, server_hostname=HOSTNAME) == 0
    assert await asyncio.wait_for(server_side, 5) == len(INJECTED)
    tls = server.tls
    assert tls is not None and tls.version.startswith("TLSv1.") and tls.bits >= 128
    assert client.tls is not None and client.tls.cipher == tls.cipher
    await client.send(b"NOOP\r\n")
    assert await server.read(timeout=5) == b"NOOP\r\n"
    server.write(b"+OK " + b"z" * 100_000 + b"\r\n")  # several records, over the mark
    got = b""
    while not got.endswith(b"\r\n"):
        got += await client.read(timeout=5)
    assert got == b"+OK " + b"z" * 100_000 + b"\r\n"
    await server.drain(timeout=1)
    await client.close()
    assert await server.read(timeout=5) == b""  # close_notify, then the end


async def test_a_failed_memory_handshake_raises_tls_handshake_failed(
    tls_manager: TLSManager,
) -> None:
    client, server = memory_stream_pair()
    server_side = asyncio.create_task(server.start_tls(tls_manager.context, handshake_timeout=5))
    await asyncio.sleep(0)  # as after a go-ahead: the server is ready before the ClientHello
    untrusting = ssl.create_default_context()  # does not know the self-signed certificate
    with pytest.raises(TLSHandshakeFailed, match="CERTIFICATE_VERIFY_FAILED"):
        await client.start_tls(untrusting, handshake_timeout=5, server_hostname=HOSTNAME)
    await client.close()
    with pytest.raises(TLSHandshakeFailed):
        await asyncio.wait_for(server_side, 5)
    assert server.tls is None


async def test_a_silent_handshake_times_out(tls_manager: TLSManager) -> None:
    _, server = memory_stream_pair()
    with pytest.raises(TLSHandshakeFailed, match="TimeoutError"):
        await server.start_tls(tls_manager.context, handshake_timeout=0.05)


# --- a real session over a memory pair ----------------------------------------------------------


class Pop3OverMemory:
    """A POP3 session served by the same handler the listener calls, over a memory pair."""

    def __init__(
        self, store: Store, hasher: PasswordHasher, tls: TLSManager, *, listener: str = "pop3"
    ) -> None:
        limiter = AuthLimiter(store, AuthConfig(failure_delay_seconds=0))
        services = LoginServices(
            store, Authenticator(store, hasher, AuthCache(0)), limiter, tls, HOSTNAME
        )
        self.server = Pop3Server(services)
        self.client, self.end = memory_stream_pair(client_peer=("192.0.2.7", 1110))
        self.ctx = ConnectionContext(
            "c0ffee",
            listener_config(listener, implicit_tls=listener == "pop3s"),
            self.end.peer,
            asyncio.Event(),
        )
        self.ctx._stream = self.end
        self.pending = b""

    async def serve(self) -> None:
        try:
            await self.server.serve(self.end, self.ctx)
        finally:
            await self.end.close()

    async def line(self) -> bytes:
        while b"\r\n" not in self.pending:
            data = await self.client.read(timeout=5)
            assert data, f"the server closed; unread: {self.pending!r}"
            self.pending += data
        line, _, self.pending = self.pending.partition(b"\r\n")
        return line

    async def until_dot(self) -> list[bytes]:
        lines = []
        while (line := await self.line()) != b".":
            lines.append(line)
        return lines


async def test_pop3_session_runs_in_process_over_a_memory_pair(
    store: Store, hasher: PasswordHasher, tls_manager: TLSManager
) -> None:
    user = await add_user(store, "ana@example.test", "s3cret!", hasher)
    inbox = await store.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    raw = b"From: bo@example.net\r\nSubject: hello\r\n\r\nover memory\r\n"
    await store.append([(inbox.id, delivered(raw))])
    assert len(await store.list_messages(inbox.id)) == 1
    # Told it serves pop3s, the session allows USER/PASS: memory carries no TLS, but no one can
    # read it either (on pop3, below, the same login is refused).
    pop = Pop3OverMemory(store, hasher, tls_manager, listener="pop3s")
    serving = asyncio.create_task(pop.serve())

    assert (await pop.line()).startswith(b"+OK")
    pop.client.write(b"USER ana@example.test\r\nPASS s3cret!\r\n")  # pipelined
    assert (await pop.line()).startswith(b"+OK")
    assert (await pop.line()).startswith(b"+OK")
    await pop.client.send(b"STAT\r\n")
    assert await pop.line() == f"+OK 1 {len(raw)}".encode()
    await pop.client.send(b"RETR 1\r\n")
    assert (await pop.line()).startswith(b"+OK")
    assert await pop.until_dot() == raw.removesuffix(b"\r\n").split(b"\r\n")
    await pop.client.send(b"DELE 1\r\nQUIT\r\n")
    assert (await pop.line()).startswith(b"+OK")
    assert (await pop.line()).startswith(b"+OK")
    await asyncio.wait_for(serving, 5)
    assert await pop.client.read(timeout=1) == b""  # the server closed after QUIT
    # QUIT's UPDATE state removed the message from the store.
    assert await store.list_messages(inbox.id) == []


async def test_pop3_over_memory_says_goodbye_when_interrupted(
    store: Store, hasher: PasswordHasher, tls_manager: TLSManager
) -> None:
    pop = Pop3OverMemory(store, hasher, tls_manager)
    serving = asyncio.create_task(pop.serve())
    assert (await pop.line()).startswith(b"+OK")
    pop.ctx._interrupt()  # what Connections.shutdown does to each stream
    assert await pop.line() == f"-ERR [SYS/TEMP] {Refusal.SHUTTING_DOWN.value}".encode()
    await asyncio.wait_for(serving, 5)
    assert isinstance(pop.end, MemoryStream) and pop.end.closed


async def test_pop3_over_memory_refuses_plain_text_login_on_a_clear_listener(
    store: Store, hasher: PasswordHasher, tls_manager: TLSManager
) -> None:
    await add_user(store, "ana@example.test", "s3cret!", hasher)
    pop = Pop3OverMemory(store, hasher, tls_manager)
    serving = asyncio.create_task(pop.serve())
    assert (await pop.line()).startswith(b"+OK")
    await pop.client.send(b"USER ana@example.test\r\n")
    assert (await pop.line()).startswith(b"-ERR [AUTH] plaintext authentication is not allowed")
    await pop.client.send(b"QUIT\r\n")
    assert (await pop.line()).startswith(b"+OK")
    await asyncio.wait_for(serving, 5)


# --- a listener serving a memory stream -----------------------------------------------------------


def _echo_handlers(served: list[str]) -> ProtocolHandlers:
    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        served.append(ctx.conn_id)
        while line := await stream.read(timeout=5):
            await stream.send(b"ECHO " + line)

    async def refuse(stream: Stream, refusal: Refusal) -> None:
        await stream.send(f"NO {refusal.value}\r\n".encode())

    return ProtocolHandlers(serve=serve, refuse=refuse)


async def test_listener_serves_a_memory_stream_as_an_accepted_connection(
    tls_manager: TLSManager,
) -> None:
    served: list[str] = []
    conns = Connections(LimitsConfig(max_connections_per_ip=1))
    lst = Listener(listener_config("imap"), [], _echo_handlers(served), tls_manager, conns)
    client, server = memory_stream_pair()
    session = asyncio.create_task(lst.serve_stream(server, ("192.0.2.9", 1)))
    await client.send(b"one\r\n")
    assert await client.read(timeout=5) == b"ECHO one\r\n"
    # While the first is served, a second from the same address is over the per-address limit.
    other, other_server = memory_stream_pair()
    await asyncio.wait_for(lst.serve_stream(other_server, ("192.0.2.9", 2)), 5)
    assert await other.read(timeout=5) == f"NO {Refusal.TOO_MANY_FROM_ADDRESS.value}\r\n".encode()
    assert await other.read(timeout=5) == b""  # and closed
    assert not session.done()
    await client.close()  # the handler reads the end of the stream and returns
    await asyncio.wait_for(session, 5)
    assert server.closed  # the listener closed its end
    assert len(served) == 1 and conns.active == 0
