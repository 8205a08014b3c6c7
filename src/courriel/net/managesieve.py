"""ManageSieve over asyncio: port 4190 with STARTTLS (RFC 5804).

Theory of operation
-------------------
``handlers(app)`` is what ``courriel.app.handlers["managesieve"]`` names. For each connection
``serve`` sends the capability response as the greeting (RFC 5804 §1.7), then reads in bulk with
an inactivity timeout, feeds the core (``courriel.wire.managesieve``) and answers every whole
command before reading again. STARTTLS is answered here: OK, then the handshake, unless bytes
came after the command (RFC 5804 §2.2: they would be read as if protected), then the capability
response again, as the RFC requires. Shutdown is noticed between commands or while waiting for
the client, and answered with ``BYE (TRYLATER)``. Long uploads are bounded by the core's
literal limit; compiling a large script runs in a thread (the session).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from typing import TYPE_CHECKING

from courriel.logs import kv
from courriel.net.listener import HANDSHAKE_TIMEOUT, ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.stream import Stream, StreamTimeout
from courriel.session.managesieve import ManageSieveSession
from courriel.session.timeslice import TimeSlice
from courriel.wire.errors import ProtocolError
from courriel.wire.managesieve import commands as c
from courriel.wire.managesieve import responses as r
from courriel.wire.managesieve.core import ManageSieveConfig, ManageSieveConnection

if TYPE_CHECKING:
    from courriel.app import App

log = logging.getLogger("courriel.managesieve")

IDLE_TIMEOUT = 600.0
READ_SIZE = 64 * 1024


class ManageSieveServer:
    """The ManageSieve protocol handlers for one ``App``."""

    def __init__(
        self,
        app: App,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.app = app
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout

    def handlers(self) -> ProtocolHandlers:
        return ProtocolHandlers(serve=self.serve, refuse=self.refuse)

    async def refuse(self, stream: Stream, refusal: Refusal) -> None:
        await stream.send(r.bye(refusal.value, r.TRYLATER))

    async def serve(self, stream: Stream, ctx: ConnectionContext) -> None:
        implicit = ctx.listener.implicit_tls
        conn = ManageSieveConnection(ManageSieveConfig(tls_active=implicit))
        session = ManageSieveSession(
            conn, self.app.store, self.app.auth, self.app.limiter, ctx.peer[0]
        )
        await stream.send(session.capabilities())  # RFC 5804 §1.7: the greeting
        while True:
            try:
                data = await stream.read(READ_SIZE, timeout=self.idle_timeout)
            except StreamTimeout:
                log.info("idle timeout", extra=kv(idle=self.idle_timeout))
                with contextlib.suppress(OSError, ssl.SSLError, StreamTimeout):
                    await stream.send(r.bye("idle for too long"), timeout=5.0)
                return
            if not data:
                return
            conn.receive_data(data)
            if not await self._commands(stream, ctx, conn, session):
                return

    async def _commands(
        self,
        stream: Stream,
        ctx: ConnectionContext,
        conn: ManageSieveConnection,
        session: ManageSieveSession,
    ) -> bool:
        """Answers every whole command buffered; False when the connection must end."""
        turn = TimeSlice()
        while True:
            if ctx.closing.is_set():
                await stream.send(r.bye(Refusal.SHUTTING_DOWN.value, r.TRYLATER))
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
                return False
            ctx.command = type(event).__name__  # named in a stall report (net/watchdog.py)
            if isinstance(event, c.PutScript):
                async with ctx.transaction():  # the store write and its OK finish on shutdown
                    reply = await session.handle(event)
                    await stream.send(reply.data)
            else:
                reply = await session.handle(event)
                await stream.send(reply.data)
            if reply.close:
                return False
            if isinstance(event, c.StartTls) and not await self._start_tls(stream, conn, session):
                return False
            await turn.step()

    async def _start_tls(
        self, stream: Stream, conn: ManageSieveConnection, session: ManageSieveSession
    ) -> bool:
        if conn.trailing_data:
            # RFC 5804 §2.2: commands pipelined after STARTTLS were sent in clear.
            log.warning("STARTTLS refused: commands were sent after STARTTLS before the handshake")
            return False
        await stream.start_tls(self.app.tls.context, handshake_timeout=self.handshake_timeout)
        conn.tls_started()
        await stream.send(session.capabilities())  # RFC 5804 §2.2: capabilities again
        return True


def handlers(app: App) -> ProtocolHandlers:
    """The entry of ``courriel.app.handlers`` for ManageSieve."""
    return ManageSieveServer(app).handlers()
