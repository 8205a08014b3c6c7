"""POP3 over asyncio: port 110 with STLS (RFC 2595) and port 995 with implicit TLS (RFC 8314).

Theory of operation
-------------------
``handlers(app)`` is what ``courriel.app.handlers["pop3"]`` names; ``Pop3Server`` is the same
with its timeouts as parameters, so tests can shorten them. For each connection ``serve``:

1. sends the greeting (RFC 1939 §4) and makes a ``Pop3Connection`` (the sans-IO core) and a
   ``Pop3Session`` (the policy). On an implicit-TLS listener TLS is already up when this runs.
2. reads in bulk with the inactivity timeout of RFC 1939 §3 (at least ten minutes), feeds the
   core, and handles every complete command before reading again. Pipelined commands (RFC 2449
   §6.6) therefore come out in order, each answered with one ``send`` of its whole reply.
3. STLS is answered here: ``+OK``, then the handshake, unless bytes came after the STLS line, in
   which case the connection is closed (RFC 2595 §4; the core and ``Stream.start_tls`` both
   check). Everything said before the handshake is forgotten.
4. QUIT from TRANSACTION runs the UPDATE state inside ``ctx.transaction()``: a shutdown that
   starts meanwhile lets the deletion and its ``+OK`` finish (RFC 1939 §6).

Ending: EOF, a fatal protocol error (error budget spent, a foreign protocol), the inactivity
timeout (answered with ``-ERR`` and closed, without UPDATE), or shutdown. Shutdown is noticed at
the next command boundary (``ctx.closing``) or while waiting for the client (``ShuttingDown`` from
``read``, answered by ``refuse``): ``-ERR [SYS/TEMP] server shutting down`` (RFC 3206 §4), and
nothing is deleted, since QUIT was not processed. The session's maildrop lock is released
however the connection ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import ssl
from typing import TYPE_CHECKING

from courriel.logs import kv
from courriel.net.listener import HANDSHAKE_TIMEOUT, ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.stream import Stream, StreamTimeout
from courriel.session.pop3 import Pop3Session
from courriel.session.pop3_maildrop import DEFAULT_LEASE_SECONDS
from courriel.session.timeslice import TimeSlice
from courriel.wire.errors import ProtocolError
from courriel.wire.pop3 import commands as c
from courriel.wire.pop3 import replies
from courriel.wire.pop3.core import Pop3Config, Pop3Connection, State
from courriel.wire.pop3.replies import RespCode

if TYPE_CHECKING:
    from courriel.app import App

log = logging.getLogger("courriel.pop3")

IDLE_TIMEOUT = 600.0  # RFC 1939 §3: an autologout timer of at least 10 minutes
READ_SIZE = 64 * 1024


def shutting_down() -> bytes:
    return replies.err(Refusal.SHUTTING_DOWN.value, RespCode.SYS_TEMP)  # RFC 3206 §4


def autologout() -> bytes:
    return replies.err("autologout: no command for too long; nothing was deleted")


class Pop3Server:
    """The POP3 protocol handlers for one ``App``."""

    def __init__(
        self,
        app: App,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.app = app
        self.idle_timeout = idle_timeout
        self.lease_seconds = lease_seconds
        self.handshake_timeout = handshake_timeout

    def handlers(self) -> ProtocolHandlers:
        return ProtocolHandlers(serve=self.serve, refuse=self.refuse)

    async def refuse(self, stream: Stream, refusal: Refusal) -> None:
        # RFC 3206 §4: SYS/TEMP tells the client to try again later.
        await stream.send(replies.err(refusal.value, RespCode.SYS_TEMP))

    async def serve(self, stream: Stream, ctx: ConnectionContext) -> None:
        implicit = ctx.listener.implicit_tls
        conn = Pop3Connection(Pop3Config(tls_active=implicit, stls_offered=not implicit))
        owner = f"{self.app.hostname}/{os.getpid()}/{ctx.conn_id}/{secrets.token_hex(6)}"
        session = Pop3Session(
            conn,
            self.app.store,
            self.app.auth,
            self.app.limiter,
            ctx.peer[0],
            lease_seconds=self.lease_seconds,
            lock_owner=owner,
        )
        try:
            await stream.send(replies.greeting())  # RFC 1939 §4
            await self._read_loop(stream, ctx, conn, session)
        finally:
            await session.close()

    async def _read_loop(
        self, stream: Stream, ctx: ConnectionContext, conn: Pop3Connection, session: Pop3Session
    ) -> None:
        while True:
            try:
                data = await stream.read(READ_SIZE, timeout=self.idle_timeout)
            except StreamTimeout:
                log.info("autologout", extra=kv(idle=self.idle_timeout))
                with contextlib.suppress(OSError, ssl.SSLError, StreamTimeout):
                    await stream.send(autologout(), timeout=5.0)  # RFC 1939 §3: no UPDATE
                return
            if not data:
                return  # RFC 1939 §6: a dropped connection never enters UPDATE
            conn.receive_data(data)
            if not await self._commands(stream, ctx, conn, session):
                return

    async def _commands(
        self, stream: Stream, ctx: ConnectionContext, conn: Pop3Connection, session: Pop3Session
    ) -> bool:
        """Answers every complete command buffered; False when the connection must end."""
        turn = TimeSlice()  # a pipelined batch yields the loop every few ms
        while True:
            if ctx.closing.is_set():
                await stream.send(shutting_down())
                return False
            try:
                event = conn.next_event()
            except ProtocolError as e:
                await stream.send(e.reply)
                if e.fatal:
                    return False
                continue
            if isinstance(event, c.NeedData):
                return True
            if isinstance(event, c.Paused):
                return False  # after QUIT in AUTHORIZATION, or a fatal error
            ctx.command = type(event).__name__  # named in a stall report (net/watchdog.py)
            if isinstance(event, c.Stls):
                if not await self._start_tls(stream, conn):
                    return False
                continue
            if isinstance(event, c.Quit) and conn.state is State.UPDATE:
                # RFC 1939 §6: the deletion and its +OK finish even if shutdown begins now.
                async with ctx.transaction():
                    await stream.send(await session.handle(event))
                return False
            await stream.send(await session.handle(event))
            await turn.step()

    async def _start_tls(self, stream: Stream, conn: Pop3Connection) -> bool:
        """STLS (RFC 2595 §4): +OK, then the handshake; False if the connection must close."""
        await stream.send(replies.tls_starting())
        if conn.trailing_data:
            # RFC 2595 §4: bytes pipelined after STLS were sent in clear; they must not be
            # read as commands after the handshake, and the client is not speaking POP3 right.
            log.warning("STLS refused: commands were sent after STLS before the handshake")
            return False
        # DataBeforeTLS and TLSHandshakeFailed end the connection; the listener logs them.
        await stream.start_tls(self.app.tls.context, handshake_timeout=self.handshake_timeout)
        conn.tls_started()
        return True


def handlers(app: App) -> ProtocolHandlers:
    """The entry of ``courriel.app.handlers`` for POP3."""
    return Pop3Server(app).handlers()
