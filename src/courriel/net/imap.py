"""The IMAP listeners (143 with STARTTLS, 993 with implicit TLS): bytes to the session and back.

Theory of operation
-------------------
``handlers(services)`` returns the ``ProtocolHandlers`` the listeners run. Per connection,
``serve`` makes a ``Session`` (session/imap.py, which owns the sans-IO core and writes its
responses through the driver's ``Output``), wraps it in ``ImapDriven`` and runs it on the one
connection loop (``net/driver.py``). Reading has a timeout that depends on the state:
``login_timeout`` before authentication, ``autologout`` after it (RFC 9051 §5.4 asks for at
least 30 minutes, which also bounds an IDLE). During IDLE, and between commands once NOTIFY is
set (RFC 5465), the read races the session's ``wake`` event, so a change made by another session
is sent at once.

STARTTLS: the OK, then whatever the client pipelined after the command is thrown away (RFC 9051
§6.2.1: it came in clear) and TLS is negotiated. COMPRESS (RFC 4978 §3): a client that sent
anything before reading the OK is closed. COMPRESS=DEFLATE is raw deflate both ways, done by the
driver's ``Output``.

Responses are collected and written when the connection is about to read (or at the driver's
``FLUSH_BYTES``), so a pipelined batch costs one write, one TLS record and one deflate flush; the
batch yields the loop every few milliseconds (``TimeSlice``), and the stream stops reading while
the client has not taken what was written (``Stream.read``).

Shutdown: a session waiting for its client (IDLE included) or reaching its next command says
``* BYE server shutting down``.
"""

from __future__ import annotations

import asyncio

from courriel.net.driver import END, WAIT, Action, Driver, Output, Session, Step, Wait
from courriel.net.listener import HANDSHAKE_TIMEOUT, ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.services import ImapServices
from courriel.net.stream import Stream, TLSInfo
from courriel.session import imap as imap_session
from courriel.session.imap.selected import Listings
from courriel.session.imap.state import MAX_SESSIONS_PER_USER, UserSessions
from courriel.wire.imap import responses as r
from courriel.wire.imap.core import Event
from courriel.wire.imap.events import ConnectionClosed, NeedData

LOGIN_TIMEOUT = 60.0
AUTOLOGOUT = 30 * 60.0
BYE_SHUTDOWN = b"* BYE server shutting down\r\n"

_ACTIONS = {
    imap_session.Action.CONTINUE: Action.CONTINUE,
    imap_session.Action.CLOSE: Action.CLOSE,
    imap_session.Action.STARTTLS: Action.STARTTLS,
    imap_session.Action.COMPRESS: Action.COMPRESS,
}


class ImapDriven:
    """An IMAP session as the driver's ``Session``."""

    def __init__(
        self, session: imap_session.Session, *, login_timeout: float, autologout: float
    ) -> None:
        self.session = session
        self.conn = session.conn
        self.login_timeout = login_timeout
        self.autologout = autologout

    def greeting(self) -> bytes:
        return self.session.greeting()

    def receive(self, data: bytes) -> None:
        self.conn.receive_data(data)

    def next_event(self) -> Event | Wait:
        event = self.conn.next_event()
        if isinstance(event, NeedData):
            return WAIT
        if isinstance(event, ConnectionClosed):
            return END
        return event

    def acknowledges(self, event: Event) -> bool:
        # APPEND holds the transaction itself, around its store write and tagged OK only.
        return False

    def finishes_at_shutdown(self, event: Event) -> bool:
        return False

    async def handle(self, event: Event) -> Step:
        # The session writes its responses through the driver's Output (the ``Io``).
        return Step(action=_ACTIONS[await self.session.handle(event)])

    def read_timeout(self) -> float:
        return self.autologout if self.session.authenticated else self.login_timeout

    def timed_out(self, seconds: float) -> bytes:
        text = "Autologout; idle for too long" if self.session.authenticated else "No login"
        return r.untagged("BYE", f"{text}, closing")

    def shutting_down(self) -> bytes:
        return BYE_SHUTDOWN

    def connection_lost(self) -> None:
        """Nothing half received is ever run; the core needs no word of it."""

    def discard_trailing_data(self) -> int:
        return len(self.conn.take_trailing_data())

    def tls_started(self, tls: TLSInfo | None) -> Step:
        self.session.tls = True
        return Step()

    def mid_command(self) -> bool:
        return self.conn.mid_command

    def push_waiter(self) -> asyncio.Event | None:
        # IDLE, or NOTIFY (RFC 5465) between commands: changes go out as they happen.
        if self.conn.idling or self.session.pushing:
            return self.session.wake
        return None

    async def push(self) -> Step:
        data = await self.session.idle_update()
        # The selected mailbox was deleted or its rights withdrawn: the session said BYE.
        return Step(data, Action.CLOSE if self.session.bye else Action.CONTINUE)

    async def close(self) -> None:
        await self.session.logout()


def handlers(
    services: ImapServices,
    *,
    login_timeout: float = LOGIN_TIMEOUT,
    autologout: float = AUTOLOGOUT,
    sessions_per_user: int = MAX_SESSIONS_PER_USER,
) -> ProtocolHandlers:
    """The IMAP handlers; the keyword arguments exist so tests can shorten the limits."""
    login = services.login
    sessions = UserSessions(sessions_per_user, services.user_counts)
    listings = Listings()  # SELECT reads only what changed since a mailbox's last listing

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        out = Output(stream, ctx)
        session = imap_session.Session(
            store=login.store,
            auth=login.auth,
            limiter=login.limiter,
            io=out,
            hostname=login.hostname,
            peer_ip=ctx.peer[0],
            tls=stream.tls is not None,
            appendlimit=services.appendlimit,
            sessions=sessions,
            listings=listings,
        )
        session.state.junk = services.junk
        driven: Session[Event] = ImapDriven(
            session, login_timeout=login_timeout, autologout=autologout
        )
        driver = Driver(stream, ctx, login.tls, handshake_timeout=HANDSHAKE_TIMEOUT, out=out)
        await driver.run(driven)

    async def refuse(stream: Stream, refusal: Refusal) -> None:
        await stream.send(r.untagged("BYE", f"{login.hostname} {refusal.value}", r.UNAVAILABLE))

    return ProtocolHandlers(serve=serve, refuse=refuse)
