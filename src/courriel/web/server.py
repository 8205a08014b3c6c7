"""The HTTP listeners: aiohttp's protocol on sockets the supervisor bound, on the mail loop.

Theory of operation
-------------------
aiohttp parses HTTP and runs the handlers; this module only does what ``net/listener.py`` does
for the mail protocols, so both behave alike. One accept loop per bound socket hands each
connection to aiohttp's protocol factory with ``loop.connect_accepted_socket``, taking the TLS
context ``TLSManager`` holds at that moment: after SIGHUP new connections get the new certificate
(``web.SockSite`` would fix the context when the site starts, hence the own accept loop).

Limits: connections over ``[limits] max_connections`` or ``max_connections_per_ip`` are closed
at once, counted with the mail listeners' connections of every worker (``counts``, the shared
``courriel.net.shared_counts`` row of this worker; alone, the listener counts its own); the
TLS handshake has ``HANDSHAKE_TIMEOUT``; aiohttp bounds the request line and header sizes and
count (``MAX_LINE``, ``MAX_HEADERS``; answered 400 or 431).
A slow client (slowloris: a header line every few seconds) is cut off by ``HEAD_TIMEOUT``: a
connection that has not finished a request's head that long after it connected, or after its
previous response, is closed. A request in progress is not timed this way (handlers are quick).

Shutdown: the accept loops stop, idle keep-alive connections close, and requests in progress
get the grace period (aiohttp's ``Server.shutdown``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from courriel.config import LimitsConfig, ListenerConfig
from courriel.logs import kv
from courriel.net.listener import Refusal, limit_key
from courriel.net.shared_counts import CountsRow, local_counts
from courriel.net.stream import normalize_ip
from courriel.net.tls import TLSManager

log = logging.getLogger("courriel.web")

HANDSHAKE_TIMEOUT = 10.0
HEAD_TIMEOUT = 10.0  # seconds from connect (or the last response) to a complete request head
KEEPALIVE_TIMEOUT = 15.0
MAX_LINE = 8190  # request line and each header line, in bytes (aiohttp answers 400/431)
MAX_HEADERS = 64
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Watch:
    """Per-connection state for the head timeout."""

    __slots__ = ("busy", "timer", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None


class _Handler(RequestHandler):
    """aiohttp's protocol, resolving ``lost`` when the connection ends."""

    def __init__(self, lost: asyncio.Future[None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lost = lost

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if not self._lost.done():
            self._lost.set_result(None)


class WebListener:
    """Serves aiohttp applications (one per listener name) on the listeners' sockets."""

    def __init__(
        self,
        applications: dict[str, web.Application],
        bound: list[tuple[ListenerConfig, list[socket.socket]]],
        tls: TLSManager,
        limits: LimitsConfig,
        *,
        head_timeout: float | None = None,
        counts: CountsRow | None = None,
    ) -> None:
        self.bound = bound
        self.tls = tls
        self.limits = limits
        self.head_timeout = HEAD_TIMEOUT if head_timeout is None else head_timeout
        self._watch: dict[RequestHandler, _Watch] = {}
        self._counts = counts if counts is not None else local_counts()  # handshakes included
        self._runners: dict[str, web.AppRunner] = {}
        for name, application in applications.items():
            application.middlewares.append(self._timing)
            self._runners[name] = web.AppRunner(
                application,
                handle_signals=False,
                access_log=logging.getLogger("courriel.web.access"),
                access_log_format='%a "%r" %s %b %Tfs',
                keepalive_timeout=KEEPALIVE_TIMEOUT,
                max_line_size=MAX_LINE,
                max_field_size=MAX_LINE,
                max_headers=MAX_HEADERS,
            )
        self._accepting: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # listener name -> where it accepts connections (read once: the sockets close at stop)
        self.addresses: dict[str, list[tuple[str, int]]] = {}
        for lc, socks in bound:
            for s in socks:
                host, port = s.getsockname()[:2]
                self.addresses.setdefault(lc.name, []).append((normalize_ip(host), port))

    async def start(self) -> None:
        for runner in self._runners.values():
            await runner.setup()
        for lc, socks in self.bound:
            for sock in socks:
                sock.setblocking(False)
                task = asyncio.create_task(self._accept_loop(lc, sock), name=f"accept-{lc.name}")
                self._accepting.append(task)

    async def stop(self, grace: float) -> None:
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        for _, socks in self.bound:
            for sock in socks:
                sock.close()
        for runner in self._runners.values():
            runner._shutdown_timeout = grace  # aiohttp reads it in cleanup
        await asyncio.gather(*(runner.cleanup() for runner in self._runners.values()))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @web.middleware
    async def _timing(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        watch = self._watch.get(request.protocol)
        if watch is not None:
            watch.busy = True
            if watch.timer is not None:
                watch.timer.cancel()
        try:
            return await handler(request)
        finally:
            if watch is not None:
                watch.busy = False
                self._arm(watch)

    def _arm(self, watch: _Watch) -> None:
        loop = asyncio.get_running_loop()
        watch.timer = loop.call_later(self.head_timeout, self._expire, watch)

    def _expire(self, watch: _Watch) -> None:
        if not watch.busy and not watch.transport.is_closing():
            log.info("request head too slow, closing", extra=kv(seconds=self.head_timeout))
            watch.transport.abort()

    async def _accept_loop(self, lc: ListenerConfig, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(sock)
            except (ConnectionAbortedError, InterruptedError):
                continue
            except OSError as e:
                if e.errno not in _RESOURCE_ERRNOS:
                    raise
                log.error("cannot accept connections: %s", e.strerror)
                await asyncio.sleep(0.5)
                continue
            key = limit_key(normalize_ip(str(peer[0])))
            refusal = None
            if self._counts.total() >= self.limits.max_connections:
                refusal = Refusal.TOO_MANY_CONNECTIONS
            elif self._counts.count(key) >= self.limits.max_connections_per_ip:
                refusal = Refusal.TOO_MANY_FROM_ADDRESS
            if refusal is not None:
                # As the mail listeners log it; closed unanswered: an HTTP answer would cost
                # a TLS handshake per refused connection, which a flood must not get.
                log.warning(
                    "connection refused: %s",
                    refusal.value,
                    extra=kv(listener=lc.name, peer=peer[0], port=peer[1]),
                )
                conn.close()
                continue
            task = asyncio.create_task(self._connection(lc, conn, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connection(self, lc: ListenerConfig, sock: socket.socket, key: str) -> None:
        loop = asyncio.get_running_loop()
        factory = self._runners[lc.name].server
        assert factory is not None  # start() ran setup
        self._counts.add(key, 1)
        lost = loop.create_future()

        def protocol() -> RequestHandler:
            # Server.__call__ with a handler that says when its connection is gone.
            return _Handler(lost, factory, loop=loop, **factory._kwargs)

        try:
            context = self.tls.context if lc.implicit_tls else None
            try:
                if context is None:
                    transport, handler = await loop.connect_accepted_socket(protocol, sock)
                else:
                    transport, handler = await loop.connect_accepted_socket(
                        protocol,
                        sock,
                        ssl=context,
                        ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
                        ssl_shutdown_timeout=5.0,
                    )
            except (OSError, ssl.SSLError, TimeoutError) as e:
                sock.close()
                log.info("web connection failed: %s", str(e) or type(e).__name__)
                return
            watch = _Watch(transport)  # asyncio's or uvloop's: not always an asyncio.Transport
            self._watch[handler] = watch
            self._arm(watch)
            try:
                await lost
            finally:
                if watch.timer is not None:
                    watch.timer.cancel()
                del self._watch[handler]
        finally:
            self._counts.add(key, -1)
            with contextlib.suppress(OSError):
                sock.close()
