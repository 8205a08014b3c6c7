"""Listeners: accept connections, enforce limits, start TLS, run the protocol's handler.

Theory of operation
-------------------
Each ``Listener`` runs one accept loop per bound socket (``net/ports.py`` binds them). For every
accepted socket it starts one task that, in order:

1. gives the connection an id and binds ``conn``, ``listener`` and ``peer`` into the logging
   context, so every line logged by this task and the tasks it starts carries them;
2. asks ``Connections`` to admit the peer: over the total or the per-address limit (an IPv6
   client counts by its /64), the protocol's ``refuse`` coroutine sends its refusal (SMTP 421,
   IMAP BYE, POP3 -ERR) and the connection is closed. Refusals on implicit-TLS listeners need a
   handshake first, so only ``MAX_TLS_REFUSALS`` of them run at once; beyond that the socket is
   simply closed;
3. wraps the socket in asyncio streams, doing the TLS handshake first on implicit-TLS listeners
   (RFC 8314 §3.3) with the context ``TLSManager`` holds at that moment, under a timeout;
4. calls ``handler(stream, ctx)`` and closes the connection when it returns.

``serve_stream`` does the same for a connection that is already a ``Stream`` (an in-memory one
from ``net/memstream.py``, whose ``start_tls`` makes the implicit-TLS handshake): tests run
sessions in-process through it.

The socket is wrapped with ``loop.connect_accepted_socket`` rather than by ``start_server`` so
that each connection takes the TLS context current when it arrives (SIGHUP reload) and no byte
of a ClientHello can be read as clear text before the handshake starts.

Graceful shutdown (``Connections.shutdown``): the accept loops stop first; then ``closing`` is
set and every stream is interrupted, so a session waiting for its client gets ``ShuttingDown``
from ``read`` and the protocol's goodbye is sent. A session that is writing something it will
acknowledge holds ``async with ctx.transaction():`` around the store call and the reply; reads
are not needed inside it, so it finishes undisturbed. The whole shutdown fits in the grace
period: after three quarters of it, what remains is cancelled, except sessions inside a
transaction, which are cancelled as soon as their transaction ends; at its end everything left is
cancelled, so a hung store cannot hold the process (the supervisor kills a worker that overruns).

``ConnectionContext.command`` names the command a session is running; the protocol drivers set it
(one assignment per command) and the stall watchdog (``net/watchdog.py``) reports it, after
finding the connection whose task holds the event loop with ``Connections.running``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import ipaddress
import logging
import secrets
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

from courriel import logs
from courriel.config import LimitsConfig, ListenerConfig
from courriel.logs import kv
from courriel.net.shared_counts import CountsRow, local_counts
from courriel.net.stream import (
    ShuttingDown,
    SocketStream,
    Stream,
    StreamError,
    StreamTimeout,
    TLSHandshakeFailed,
    normalize_ip,
)
from courriel.net.tls import TLSManager

log = logging.getLogger("courriel.net")

HANDSHAKE_TIMEOUT = 30.0
REFUSAL_TIMEOUT = 5.0  # how long a refused client may take to receive its refusal
# Refusals on implicit-TLS listeners need a handshake; a flood of them must not cost unbounded CPU.
MAX_TLS_REFUSALS = 64
_ACCEPT_RETRY_DELAY = 0.5
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Refusal(enum.Enum):
    """Why a connection is turned away; ``value`` is the human-readable reason."""

    TOO_MANY_CONNECTIONS = "too many connections, try again later"
    TOO_MANY_FROM_ADDRESS = "too many connections from your address, try again later"
    SHUTTING_DOWN = "server shutting down, try again later"


class ConnectionContext:
    """What a protocol session knows about its connection besides the stream."""

    def __init__(
        self, conn_id: str, listener: ListenerConfig, peer: tuple[str, int], closing: asyncio.Event
    ) -> None:
        self.conn_id = conn_id
        self.listener = listener
        self.peer = peer
        self.closing = closing  # set when the server starts shutting down
        self.started = time.monotonic()
        self.command = ""  # the command being run, named by the protocol driver (watchdog)
        self._transactions = 0
        self._cancel_after_transaction = False
        self._stream: Stream | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def in_transaction(self) -> bool:
        return self._transactions > 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Held around a write the session will acknowledge, and the acknowledgement.

        Shutdown lets a transaction finish instead of cancelling it midway.
        """
        self._transactions += 1
        try:
            yield
        finally:
            self._transactions -= 1
            if self._transactions == 0 and self._cancel_after_transaction and self._task:
                self._task.cancel()

    def _interrupt(self) -> None:
        if self._stream is not None:
            self._stream.interrupt(ShuttingDown(Refusal.SHUTTING_DOWN.value))


Handler = Callable[[Stream, ConnectionContext], Awaitable[None]]
Refuse = Callable[[Stream, Refusal], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ProtocolHandlers:
    """What a protocol supplies to the listeners serving it."""

    serve: Handler  # runs one session; returning closes the connection
    refuse: Refuse  # sends the protocol's refusal line; the listener closes afterwards


def limit_key(ip: str) -> str:
    """What the per-address limit counts: the address, or its /64 for IPv6.

    One IPv6 host usually owns a whole /64 (RFC 4291 §2.5.1 interface identifiers) and can
    connect from as many addresses as it likes; counting single addresses would not limit it.
    """
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if addr.version == 6:
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return ip


class Connections:
    """Every live connection of the process: limits, ids and graceful shutdown.

    The limits count the connections of every worker process (``counts``, a row of the
    table the supervisor shares with all workers); alone, a process counts its own.
    """

    def __init__(self, limits: LimitsConfig, counts: CountsRow | None = None) -> None:
        self.limits = limits
        self.closing = asyncio.Event()
        self._live: dict[str, ConnectionContext] = {}
        self._counts = counts if counts is not None else local_counts()
        self._tls_refusals = 0

    @property
    def counts(self) -> CountsRow:
        """The shared counts behind the limits (the web listeners count into them too)."""
        return self._counts

    @property
    def active(self) -> int:
        """Connections being served now (refused ones are never counted)."""
        return len(self._live)

    def from_address(self, ip: str) -> int:
        """Connections from ``ip`` (its /64 for IPv6) being served by all workers."""
        return self._counts.count(limit_key(ip))

    def new_id(self) -> str:
        while True:
            conn_id = secrets.token_hex(3)
            if conn_id not in self._live:
                return conn_id

    def admit(self, ctx: ConnectionContext) -> Refusal | None:
        """Registers the connection, or says why it may not be served."""
        if self.closing.is_set():
            return Refusal.SHUTTING_DOWN
        if self._counts.total() >= self.limits.max_connections:
            return Refusal.TOO_MANY_CONNECTIONS
        key = limit_key(ctx.peer[0])
        if self._counts.count(key) >= self.limits.max_connections_per_ip:
            return Refusal.TOO_MANY_FROM_ADDRESS
        self._live[ctx.conn_id] = ctx
        self._counts.add(key, 1)
        return None

    def release(self, ctx: ConnectionContext) -> None:
        if self._live.pop(ctx.conn_id, None) is not None:
            self._counts.add(limit_key(ctx.peer[0]), -1)

    def live(self) -> list[ConnectionContext]:
        """The connections being served; safe to call from another thread."""
        try:
            return list(self._live.values())
        except RuntimeError:  # changed during the copy: the loop is running, not stalled
            return []

    def running(self, task: asyncio.Task[object] | None) -> ConnectionContext | None:
        """The connection whose task is ``task``; safe to call from another thread."""
        if task is None:
            return None
        return next((ctx for ctx in self.live() if ctx._task is task), None)

    @contextlib.contextmanager
    def refusal_slot(self, needs_tls: bool) -> Iterator[bool]:
        """Whether a refusal may be sent; those needing a TLS handshake are capped."""
        if not needs_tls:
            yield True
            return
        if self._tls_refusals >= MAX_TLS_REFUSALS:
            yield False
            return
        self._tls_refusals += 1
        try:
            yield True
        finally:
            self._tls_refusals -= 1

    async def shutdown(self, grace: float) -> None:
        """Sets ``closing``, lets sessions finish within ``grace`` seconds, cancels the rest."""
        self.closing.set()
        live = list(self._live.values())
        for ctx in live:
            ctx._interrupt()
        tasks = {ctx._task for ctx in live if ctx._task is not None}
        if not tasks:
            return
        log.info("waiting for connections to close", extra=kv(count=len(tasks), grace=grace))
        _, pending = await asyncio.wait(tasks, timeout=grace * 0.75)
        if not pending:
            return
        for ctx in live:
            if ctx._task in pending:
                if ctx.in_transaction:
                    ctx._cancel_after_transaction = True
                else:
                    ctx._task.cancel()
        _, pending = await asyncio.wait(pending, timeout=grace * 0.25)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled transactions still running", extra=kv(count=len(pending)))
            # Cancelled tasks unwind in a moment; one that does not is left to the supervisor.
            await asyncio.wait(pending, timeout=min(1.0, grace * 0.1))


class Listener:
    """Serves one configured listener on its bound sockets."""

    def __init__(
        self,
        config: ListenerConfig,
        sockets: list[socket.socket],
        handlers: ProtocolHandlers,
        tls: TLSManager,
        connections: Connections,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.config = config
        self.sockets = sockets
        self.handlers = handlers
        self.tls = tls
        self.connections = connections
        self.handshake_timeout = handshake_timeout
        self.addresses: list[tuple[str, int]] = [
            (normalize_ip(s.getsockname()[0]), s.getsockname()[1]) for s in sockets
        ]
        self._accepting: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        for sock in self.sockets:
            sock.setblocking(False)
            task = asyncio.create_task(self._accept_loop(sock), name=f"accept-{self.config.name}")
            self._accepting.append(task)

    async def stop_accepting(self) -> None:
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        self._accepting.clear()
        for sock in self.sockets:
            sock.close()

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except (ConnectionAbortedError, InterruptedError):
                continue  # the client gave up between SYN and accept
            except OSError as e:
                if e.errno not in _RESOURCE_ERRNOS:
                    raise
                # Out of descriptors: back off instead of spinning; serving clients free some.
                log.error("cannot accept connections: %s", e.strerror, extra=kv(retry_in=0.5))
                await asyncio.sleep(_ACCEPT_RETRY_DELAY)
                continue
            task = asyncio.create_task(self._connection(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connection(self, sock: socket.socket) -> None:
        try:
            peer = sock.getpeername()
        except OSError:
            sock.close()  # reset before we looked at it
            return
        ip, port = normalize_ip(str(peer[0])), int(peer[1])
        ctx = ConnectionContext(
            self.connections.new_id(), self.config, (ip, port), self.connections.closing
        )
        with logs.bound(conn=ctx.conn_id, listener=self.config.name, peer=ip):
            refusal = self.connections.admit(ctx)
            if refusal is not None:
                await self._refuse(sock, ctx, refusal)
                return
            try:
                ctx._task = asyncio.current_task()
                await self._serve(sock, ctx)
            finally:
                self.connections.release(ctx)

    async def _refuse(self, sock: socket.socket, ctx: ConnectionContext, refusal: Refusal) -> None:
        log.warning("connection refused: %s", refusal.value, extra=kv(port=ctx.peer[1]))
        with self.connections.refusal_slot(self.config.implicit_tls) as granted:
            if not granted:
                sock.close()
                return
            stream = await self._open(sock, ctx.conn_id, REFUSAL_TIMEOUT)
            if stream is None:
                return
            try:
                # The refusal is a courtesy; the close below is the answer.
                with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
                    async with asyncio.timeout(REFUSAL_TIMEOUT):
                        await self.handlers.refuse(stream, refusal)
            finally:
                await stream.close(timeout=1.0)

    async def _open(self, sock: socket.socket, conn_id: str, handshake: float) -> Stream | None:
        """The socket as a ``Stream``, after the TLS handshake on implicit-TLS listeners."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            # Reaps clients that vanished without a FIN (a laptop closed during IMAP IDLE).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        reader = asyncio.StreamReader(limit=2 * 1024 * 1024)
        # A (non-coroutine) callback marks the protocol as server side, which is what
        # StreamWriter.start_tls consults to run STARTTLS as the server. It receives the
        # protocol's own writer, which must stay referenced: CPython closes the transport under
        # a StreamWriter that is garbage-collected, and STARTTLS drops the protocol's reference.
        own: list[asyncio.StreamWriter] = []
        protocol = asyncio.StreamReaderProtocol(reader, lambda r, w: own.append(w))
        context = self.tls.context if self.config.implicit_tls else None
        try:
            if context is None:
                transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
            else:
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    sock,
                    ssl=context,
                    ssl_handshake_timeout=handshake,
                    ssl_shutdown_timeout=5.0,
                )
        except (OSError, ssl.SSLError, TimeoutError) as e:
            sock.close()
            what = "TLS handshake failed" if context is not None else "connection lost"
            log.info("%s: %s", what, str(e) or type(e).__name__)
            return None
        # A writer without a reader: its drain() must keep working after ``Stream.interrupt``
        # has put an exception into the reader, so a goodbye can still be sent.
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        return SocketStream(reader, writer, conn_id, keep_alive=own)

    async def serve_stream(self, stream: Stream, peer: tuple[str, int]) -> None:
        """Serves a connection that arrives as a ready ``Stream`` rather than through a socket
        (a memory stream in tests): admitted, served and closed as an accepted one is."""
        ctx = ConnectionContext(
            self.connections.new_id(), self.config, peer, self.connections.closing
        )
        with logs.bound(conn=ctx.conn_id, listener=self.config.name, peer=peer[0]):
            refusal = self.connections.admit(ctx)
            if refusal is not None:
                try:
                    with contextlib.suppress(TimeoutError, OSError, StreamError):
                        async with asyncio.timeout(REFUSAL_TIMEOUT):
                            await self.handlers.refuse(stream, refusal)
                finally:
                    await stream.close(timeout=1.0)
                return
            try:
                ctx._task = asyncio.current_task()
                if self.config.implicit_tls:
                    try:
                        await stream.start_tls(
                            self.tls.context, handshake_timeout=self.handshake_timeout
                        )
                    except TLSHandshakeFailed as e:
                        log.info("TLS handshake failed: %s", e)
                        stream.abort()
                        return
                await self._run(stream, ctx)
            finally:
                self.connections.release(ctx)

    async def _serve(self, sock: socket.socket, ctx: ConnectionContext) -> None:
        stream = await self._open(sock, ctx.conn_id, self.handshake_timeout)
        if stream is None:
            return
        await self._run(stream, ctx)

    async def _run(self, stream: Stream, ctx: ConnectionContext) -> None:
        ctx._stream = stream
        tls = stream.tls
        log.info(
            "connected",
            extra=kv(port=ctx.peer[1], tls=f"{tls.version} {tls.cipher}" if tls else "no"),
        )
        try:
            if ctx.closing.is_set():
                raise ShuttingDown(Refusal.SHUTTING_DOWN.value)
            await self.handlers.serve(stream, ctx)
        except ShuttingDown:
            await self._goodbye(stream)
        except StreamTimeout as e:
            log.info("connection timed out: %s", e)
        except TLSHandshakeFailed as e:
            log.info("STARTTLS handshake failed: %s", e)
        except (ConnectionError, ssl.SSLError) as e:
            log.info("connection lost: %s", str(e) or type(e).__name__)
        except asyncio.CancelledError:
            stream.abort()
            log.info("connection cancelled at shutdown")
            raise
        except Exception:
            log.exception("session failed")
        finally:
            try:
                await stream.close()
            except asyncio.CancelledError:
                stream.abort()  # cancelled while TLS waited for the peer: do not leak the socket
                raise
            finally:
                seconds = round(time.monotonic() - ctx.started, 3)
                log.info("disconnected", extra=kv(seconds=seconds))

    async def _goodbye(self, stream: Stream) -> None:
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            async with asyncio.timeout(REFUSAL_TIMEOUT):
                await self.handlers.refuse(stream, Refusal.SHUTTING_DOWN)
