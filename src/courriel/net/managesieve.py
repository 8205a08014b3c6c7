"""ManageSieve over asyncio: port 4190 with STARTTLS (RFC 5804).

Theory of operation
-------------------
``handlers(services)`` is what ``courriel.app`` names for ManageSieve. For each connection
``serve`` wraps the core (``courriel.wire.managesieve``) and the session in ``SieveDriven`` and
runs it on the one connection loop (``net/driver.py``): the capability response is the greeting
(RFC 5804 §1.7), reads are in bulk with an inactivity timeout, and every whole command is
answered before the next read. STARTTLS: OK, then whatever the client sent after the command is
thrown away (RFC 5804 §2.2: it came in clear), the handshake, and the capability response again,
as the RFC requires. PUTSCRIPT's store write and its OK run inside ``ctx.transaction()``.
Shutdown is noticed between commands or while waiting for the client, and answered with
``BYE (TRYLATER)``. Long uploads are bounded by the core's literal limit; compiling a large
script runs in a thread (the session).
"""

from __future__ import annotations

import asyncio
import logging

from courriel.logs import kv
from courriel.net.driver import END, WAIT, Action, Driver, Session, Step, Wait
from courriel.net.listener import HANDSHAKE_TIMEOUT, ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.services import LoginServices
from courriel.net.stream import Stream, TLSInfo
from courriel.session.managesieve import ManageSieveSession
from courriel.wire.managesieve import commands as c
from courriel.wire.managesieve import responses as r
from courriel.wire.managesieve.core import ManageSieveConfig, ManageSieveConnection

log = logging.getLogger("courriel.managesieve")

IDLE_TIMEOUT = 600.0


class SieveDriven:
    """A ManageSieve core and session as the driver's ``Session``."""

    def __init__(
        self, conn: ManageSieveConnection, session: ManageSieveSession, idle_timeout: float
    ) -> None:
        self.conn = conn
        self.session = session
        self.idle_timeout = idle_timeout

    def greeting(self) -> bytes:
        return self.session.capabilities()  # RFC 5804 §1.7

    def receive(self, data: bytes) -> None:
        self.conn.receive_data(data)

    def next_event(self) -> c.Command | Wait:
        event = self.conn.next_event()
        if isinstance(event, c.NeedData):
            return WAIT
        if isinstance(event, c.Paused):
            return END
        return event

    def acknowledges(self, event: c.Command) -> bool:
        return isinstance(event, c.PutScript)  # the store write and its OK finish on shutdown

    def finishes_at_shutdown(self, event: c.Command) -> bool:
        return False

    async def handle(self, event: c.Command) -> Step:
        reply = await self.session.handle(event)
        if reply.close:
            return Step(reply.data, Action.CLOSE)
        if isinstance(event, c.StartTls):
            return Step(reply.data, Action.STARTTLS)
        return Step(reply.data)

    def read_timeout(self) -> float:
        return self.idle_timeout

    def timed_out(self, seconds: float) -> bytes:
        log.info("idle timeout", extra=kv(idle=seconds))
        return r.bye("idle for too long")

    def shutting_down(self) -> bytes:
        return r.bye(Refusal.SHUTTING_DOWN.value, r.TRYLATER)

    def connection_lost(self) -> None:
        """Nothing is half done between commands; the core needs no word of it."""

    def discard_trailing_data(self) -> int:
        return self.conn.discard_trailing_data()

    def tls_started(self, tls: TLSInfo | None) -> Step:
        self.conn.tls_started()
        return Step(self.session.capabilities())  # RFC 5804 §2.2: capabilities again

    def mid_command(self) -> bool:
        return self.conn.mid_command

    def push_waiter(self) -> asyncio.Event | None:
        return None

    async def push(self) -> Step:
        return Step()

    async def close(self) -> None:
        """The session holds nothing beyond the connection."""


class ManageSieveServer:
    """The ManageSieve protocol handlers for one server."""

    def __init__(
        self,
        services: LoginServices,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.services = services
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout

    def handlers(self) -> ProtocolHandlers:
        return ProtocolHandlers(serve=self.serve, refuse=self.refuse)

    async def refuse(self, stream: Stream, refusal: Refusal) -> None:
        await stream.send(r.bye(refusal.value, r.TRYLATER))

    async def serve(self, stream: Stream, ctx: ConnectionContext) -> None:
        s = self.services
        conn = ManageSieveConnection(ManageSieveConfig(tls_active=ctx.listener.implicit_tls))
        session = ManageSieveSession(conn, s.store, s.auth, s.limiter, ctx.peer[0])
        driver = Driver(stream, ctx, s.tls, handshake_timeout=self.handshake_timeout)
        driven: Session[c.Command] = SieveDriven(conn, session, self.idle_timeout)
        await driver.run(driven)


def handlers(services: LoginServices) -> ProtocolHandlers:
    """The ManageSieve handlers ``courriel.app`` serves."""
    return ManageSieveServer(services).handlers()
