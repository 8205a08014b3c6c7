"""The SMTP listeners' asyncio side: bytes from the stream into the core, replies back out.

Theory of operation
-------------------
``handlers(services)`` returns the ``ProtocolHandlers`` every SMTP listener uses; the listener's
name picks the mode (``smtp``: inbound MX on 25; ``submission`` and ``submissions``: RFC 6409
submission on 587 and 465). Per connection, ``serve``:

* on port 25 runs the connection checks while the greeting is held back (``[junk]
  greeting_delay_seconds``); a client that speaks first is told so and closed (RFC 5321 §3.1);
* then wraps the core (``SmtpConnection``) and the session in ``SmtpDriven`` and runs it on the
  one connection loop (``net/driver.py``): 220, then each event goes to the session and its one
  reply back to the core; replies are collected and written in one ``write`` when the core needs
  more input, so a pipelined batch gets one batch of replies (RFC 2920 §3.1);
* reads with ``command_timeout`` (RFC 5321 §4.5.3.2.7, five minutes) while waiting for commands
  and ``data_timeout`` (§4.5.3.2.5, three minutes) while a message is being received; a client
  that runs out of time gets 421 4.4.2 and is closed;
* STARTTLS (RFC 3207): after the 220, bytes the client pipelined behind STARTTLS are thrown away
  (§4.2: they came in plaintext) and TLS is negotiated; after the handshake core and session
  forget everything said in plaintext;
* holds ``ctx.transaction()`` around a message's store write and the write of its 250, so a
  shutdown lets a message whose terminator has arrived be stored and acknowledged;
* at shutdown answers the next command, or a client waiting to be read, with 421 4.3.2. A client
  that goes away mid-message has nothing delivered: the core hands out a message only after its
  terminator (or BDAT LAST).
"""

from __future__ import annotations

import asyncio
import logging

from courriel.junk import checks as junk_checks
from courriel.logs import kv
from courriel.net.driver import END, WAIT, Action, Driver, Session, Step, Wait
from courriel.net.listener import HANDSHAKE_TIMEOUT, ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.services import SmtpServices
from courriel.net.stream import Stream, StreamTimeout, TLSInfo
from courriel.session.smtp import SmtpSession, TlsDetails
from courriel.session.smtp_inbound import refusal
from courriel.wire.errors import ProtocolError
from courriel.wire.sasl import MECHANISMS
from courriel.wire.smtp import Mode, Reply, SmtpConfig, SmtpConnection, State
from courriel.wire.smtp import events as ev

log = logging.getLogger("courriel.smtp")

COMMAND_TIMEOUT = 300.0  # RFC 5321 §4.5.3.2.7: server timeout, 5 minutes
DATA_TIMEOUT = 180.0  # RFC 5321 §4.5.3.2.5: data block, 3 minutes
MAX_RECIPIENTS = 100  # RFC 5321 §4.5.3.1.8: at least 100 must be accepted
READ_SIZE = 256 * 1024

# RFC 5321 §3.1: the client waits for the greeting before it speaks (postscreen's "pregreet").
EARLY_TALKER = Reply(
    554, "5.5.1", "you sent commands before the greeting: this server does not talk to such clients"
)
TIMED_OUT = Reply(421, "4.4.2", "timeout waiting for the client, closing the connection")


def mode_of(listener_name: str) -> Mode:
    return Mode.MX if listener_name == "smtp" else Mode.SUBMISSION


def smtp_config(services: SmtpServices, listener_name: str, implicit_tls: bool) -> SmtpConfig:
    mode = mode_of(listener_name)
    return SmtpConfig(
        hostname=services.hostname,
        mode=mode,
        tls_active=implicit_tls,
        tls_available=True,  # the TLS manager always holds a certificate once started
        # RFC 4954 §4 and RFC 8314: AUTH only for submission, and only under TLS.
        auth_mechanisms=MECHANISMS if mode is Mode.SUBMISSION else (),
        auth_requires_tls=True,
        max_message_bytes=services.max_message_bytes,
        max_recipients=MAX_RECIPIENTS,
        burl=mode is Mode.SUBMISSION,  # RFC 4468: for authenticated users' own mail
    )


SmtpEvent = ev.Event


class SmtpDriven:
    """An SMTP core and session as the driver's ``Session``."""

    def __init__(
        self,
        conn: SmtpConnection,
        session: SmtpSession,
        hostname: str,
        *,
        command_timeout: float,
        data_timeout: float,
    ) -> None:
        self.conn = conn
        self.session = session
        self.command_timeout = command_timeout
        self.data_timeout = data_timeout
        # The same words as the listener's refusal, whichever of the two says goodbye.
        self._shutting_down = Reply(421, "4.3.2", f"{hostname} {Refusal.SHUTTING_DOWN.value}")

    def greeting(self) -> bytes:
        return self.conn.greeting()

    def receive(self, data: bytes) -> None:
        self.conn.receive_data(data)

    def next_event(self) -> SmtpEvent | Wait:
        if self.conn.state is State.CLOSED:
            return END
        event = self.conn.next_event()
        if isinstance(event, ev.NeedData):
            return WAIT
        if isinstance(event, ev.Closed):
            return END
        return event

    def acknowledges(self, event: SmtpEvent) -> bool:
        return isinstance(event, ev.MessageData | ev.BdatLast)

    def finishes_at_shutdown(self, event: SmtpEvent) -> bool:
        return isinstance(event, ev.MessageData | ev.BdatLast)

    async def handle(self, event: SmtpEvent) -> Step:
        reply = self.conn.send(await self.session.handle(event))
        if isinstance(event, ev.StartTls):
            if self.conn.state is State.TLS:
                return Step(reply, Action.STARTTLS)
            if self.conn.state is State.CLOSED:
                return Step(reply, Action.CLOSE)
        return Step(reply)

    def read_timeout(self) -> float:
        return self.data_timeout if self.conn.reading_message else self.command_timeout

    def timed_out(self, seconds: float) -> bytes:
        log.info(
            "client timed out", extra=kv(timeout=seconds, in_message=self.conn.reading_message)
        )
        return self._goodbye(TIMED_OUT)

    def shutting_down(self) -> bytes:
        return self._goodbye(self._shutting_down)  # RFC 5321 §3.8

    def _goodbye(self, reply: Reply) -> bytes:
        if self.conn.state is State.CLOSED:
            return b""
        return self.conn.send(reply)  # a 421 closes the core whatever it was waiting for

    def connection_lost(self) -> None:
        self.conn.connection_lost()  # a message not yet ended is dropped, never delivered

    def discard_trailing_data(self) -> int:
        return self.conn.discard_trailing_data()

    def tls_started(self, tls: TLSInfo | None) -> Step:
        try:
            self.conn.tls_started()
        except ProtocolError:
            return Step(action=Action.CLOSE)
        self.session.tls_started(_details(tls))
        return Step()

    def mid_command(self) -> bool:
        return self.conn.mid_command

    def push_waiter(self) -> asyncio.Event | None:
        return None

    async def push(self) -> Step:
        return Step()

    async def close(self) -> None:
        """The session holds nothing beyond the connection."""


class SmtpServer:
    """One SMTP connection: the checks before the greeting, then the driver."""

    def __init__(
        self,
        services: SmtpServices,
        stream: Stream,
        ctx: ConnectionContext,
        *,
        command_timeout: float,
        data_timeout: float,
    ) -> None:
        self.stream = stream
        self.ctx = ctx
        self.tls = services.tls
        name = ctx.listener.name
        mode = mode_of(name)
        self.services = services.mx if mode is Mode.MX else services.submission
        self.conn = SmtpConnection(smtp_config(services, name, ctx.listener.implicit_tls))
        self.session = SmtpSession(self.services, self.conn, mode, ctx.peer[0])
        if ctx.listener.implicit_tls:
            self.session.tls_started(_details(stream.tls))
        self.driven = SmtpDriven(
            self.conn,
            self.session,
            services.hostname,
            command_timeout=command_timeout,
            data_timeout=data_timeout,
        )

    async def run(self) -> None:
        if not await self._before_greeting():
            return
        driven: Session[SmtpEvent] = self.driven
        await Driver(self.stream, self.ctx, self.tls, handshake_timeout=HANDSHAKE_TIMEOUT).run(
            driven
        )

    async def _before_greeting(self) -> bool:
        """Port 25's connection checks, run while the greeting is held back for
        ``[junk] greeting_delay_seconds``; False when the client spoke first (and was told)."""
        junk = self.services.junk
        if junk is None:
            return True
        checks = junk.checks
        looking = asyncio.create_task(checks.client(self.ctx.peer[0])) if checks.active else None
        try:
            if junk.cfg.greeting_delay_seconds > 0 and not await self._quiet(
                junk.cfg.greeting_delay_seconds
            ):
                return False
            found = await self._checked(looking) if looking is not None else None
        finally:
            if looking is not None and not looking.done():
                looking.cancel()
        if found is not None:
            self.session.refuse_client(refusal(found.code, found.enhanced, found.text))
        return True

    async def _checked(
        self, looking: asyncio.Task[junk_checks.Refusal | None]
    ) -> junk_checks.Refusal | None:
        try:
            return await looking
        except Exception:  # a bug in a check must not refuse, nor end, the connection
            log.exception("connection checks failed; the client is not refused")
            return None

    async def _quiet(self, delay: float) -> bool:
        """Waits ``delay`` for the client to stay silent, as RFC 5321 §3.1 wants it to until
        the greeting; a client that sends first is an early talker and is turned away."""
        try:
            data = await self.stream.read(READ_SIZE, timeout=delay)
        except StreamTimeout:
            return True
        if data:
            log.info(
                "client refused: it sent commands before the greeting",
                extra=kv(ip=self.ctx.peer[0], delay=delay),
            )
            # Before the greeting the core expects nothing from us: the line is written as is.
            line = _line(f"{EARLY_TALKER.code} {EARLY_TALKER.enhanced} {EARLY_TALKER.text}")
            try:
                await self.stream.send(line)
            except (OSError, StreamTimeout):
                return False
        return False


def _details(tls: TLSInfo | None) -> TlsDetails | None:
    return None if tls is None else TlsDetails(tls.version, tls.cipher, tls.bits)


def _line(text: str) -> bytes:
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace") + b"\r\n"


def handlers(
    services: SmtpServices,
    *,
    command_timeout: float = COMMAND_TIMEOUT,
    data_timeout: float = DATA_TIMEOUT,
) -> ProtocolHandlers:
    """The SMTP protocol for ``courriel.app``; timeouts are settable for tests."""

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        server = SmtpServer(
            services, stream, ctx, command_timeout=command_timeout, data_timeout=data_timeout
        )
        await server.run()

    async def refuse(stream: Stream, refusal: Refusal) -> None:
        # RFC 3463: 4.3.2 "system not accepting network messages", 4.7.0 "security or policy".
        code = "4.3.2" if refusal is Refusal.SHUTTING_DOWN else "4.7.0"
        await stream.send(_line(f"421 {code} {services.hostname} {refusal.value}"))  # RFC 5321 §3.8

    return ProtocolHandlers(serve=serve, refuse=refuse)
