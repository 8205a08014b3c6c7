"""POP3 over asyncio: port 110 with STLS (RFC 2595) and port 995 with implicit TLS (RFC 8314).

Theory of operation
-------------------
``handlers(services)`` is what ``courriel.app`` names for POP3. For each connection ``serve``
makes a ``Pop3Connection`` (the sans-IO core) and a ``Pop3Session`` (the policy), wraps them in
``Pop3Driven`` and runs it on the one connection loop (``net/driver.py``), which:

1. sends the greeting (RFC 1939 §4); on an implicit-TLS listener TLS is already up;
2. reads in bulk with the inactivity timeout of RFC 1939 §3 (at least ten minutes), feeds the
   core, and answers every complete command before reading again. Pipelined commands (RFC 2449
   §6.6) come out in order; their replies leave together before the next read;
3. answers STLS with ``+OK``, throws away whatever the client sent after the STLS line (RFC
   2595 §4: it came in clear) and negotiates; everything said before the handshake is forgotten;
4. runs QUIT from TRANSACTION (the UPDATE state) inside ``ctx.transaction()``: a shutdown that
   starts meanwhile lets the deletion and its ``+OK`` finish (RFC 1939 §6).

Ending: EOF, a fatal protocol error (error budget spent, a foreign protocol), the inactivity
timeout (answered with ``-ERR`` and closed, without UPDATE), or shutdown, noticed at the next
command or while waiting for the client and answered ``-ERR [SYS/TEMP] server shutting down``
(RFC 3206 §4); nothing is deleted then, since QUIT was not processed. The session's maildrop
lock is released however the connection ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets

from courriel.logs import kv
from courriel.net.driver import END, WAIT, Action, Driver, Session, Step, Wait
from courriel.net.listener import HANDSHAKE_TIMEOUT, ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.services import LoginServices
from courriel.net.stream import Stream, TLSInfo
from courriel.session.pop3 import Pop3Session
from courriel.session.pop3_maildrop import DEFAULT_LEASE_SECONDS
from courriel.wire.pop3 import commands as c
from courriel.wire.pop3 import replies
from courriel.wire.pop3.core import Pop3Config, Pop3Connection, State
from courriel.wire.pop3.replies import RespCode

log = logging.getLogger("courriel.pop3")

IDLE_TIMEOUT = 600.0  # RFC 1939 §3: an autologout timer of at least 10 minutes


def shutting_down() -> bytes:
    return replies.err(Refusal.SHUTTING_DOWN.value, RespCode.SYS_TEMP)  # RFC 3206 §4


def autologout() -> bytes:
    return replies.err("autologout: no command for too long; nothing was deleted")


class Pop3Driven:
    """A POP3 core and session as the driver's ``Session``."""

    def __init__(self, conn: Pop3Connection, session: Pop3Session, idle_timeout: float) -> None:
        self.conn = conn
        self.session = session
        self.idle_timeout = idle_timeout

    def greeting(self) -> bytes:
        return replies.greeting()  # RFC 1939 §4

    def receive(self, data: bytes) -> None:
        self.conn.receive_data(data)

    def next_event(self) -> c.Command | c.AuthResponse | Wait:
        event = self.conn.next_event()
        if isinstance(event, c.NeedData):
            return WAIT
        if isinstance(event, c.Paused):
            return END  # after QUIT in AUTHORIZATION, or a fatal error
        return event

    def acknowledges(self, event: c.Command | c.AuthResponse) -> bool:
        # RFC 1939 §6: the deletion and its +OK finish even if shutdown begins now.
        return isinstance(event, c.Quit) and self.conn.state is State.UPDATE

    def finishes_at_shutdown(self, event: c.Command | c.AuthResponse) -> bool:
        return False  # QUIT taken after shutdown began deletes nothing

    async def handle(self, event: c.Command | c.AuthResponse) -> Step:
        if isinstance(event, c.Stls):
            return Step(replies.tls_starting(), Action.STARTTLS)  # RFC 2595 §4
        reply = await self.session.handle(event)
        if isinstance(event, c.Quit):
            return Step(reply, Action.CLOSE)
        return Step(reply)

    def read_timeout(self) -> float:
        return self.idle_timeout

    def timed_out(self, seconds: float) -> bytes:
        log.info("autologout", extra=kv(idle=seconds))
        return autologout()  # RFC 1939 §3: no UPDATE

    def shutting_down(self) -> bytes:
        return shutting_down()

    def connection_lost(self) -> None:
        """RFC 1939 §6: a dropped connection never enters UPDATE; nothing to tell the core."""

    def discard_trailing_data(self) -> int:
        return self.conn.discard_trailing_data()

    def tls_started(self, tls: TLSInfo | None) -> Step:
        self.conn.tls_started()
        return Step()

    def mid_command(self) -> bool:
        return self.conn.mid_command

    def push_waiter(self) -> asyncio.Event | None:
        return None

    async def push(self) -> Step:
        return Step()

    async def close(self) -> None:
        await self.session.close()


class Pop3Server:
    """The POP3 protocol handlers for one server."""

    def __init__(
        self,
        services: LoginServices,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.services = services
        self.idle_timeout = idle_timeout
        self.lease_seconds = lease_seconds
        self.handshake_timeout = handshake_timeout

    def handlers(self) -> ProtocolHandlers:
        return ProtocolHandlers(serve=self.serve, refuse=self.refuse)

    async def refuse(self, stream: Stream, refusal: Refusal) -> None:
        # RFC 3206 §4: SYS/TEMP tells the client to try again later.
        await stream.send(replies.err(refusal.value, RespCode.SYS_TEMP))

    async def serve(self, stream: Stream, ctx: ConnectionContext) -> None:
        s = self.services
        implicit = ctx.listener.implicit_tls
        conn = Pop3Connection(Pop3Config(tls_active=implicit, stls_offered=not implicit))
        owner = f"{s.hostname}/{os.getpid()}/{ctx.conn_id}/{secrets.token_hex(6)}"
        session = Pop3Session(
            conn,
            s.store,
            s.auth,
            s.limiter,
            ctx.peer[0],
            lease_seconds=self.lease_seconds,
            lock_owner=owner,
        )
        driver = Driver(stream, ctx, s.tls, handshake_timeout=self.handshake_timeout)
        driven: Session[c.Command | c.AuthResponse] = Pop3Driven(conn, session, self.idle_timeout)
        await driver.run(driven)


def handlers(services: LoginServices) -> ProtocolHandlers:
    """The POP3 handlers ``courriel.app`` serves."""
    return Pop3Server(services).handlers()
