"""The SMTP listeners' asyncio side: bytes from the stream into the core, replies back out.

Theory of operation
-------------------
``handlers(app)`` returns the ``ProtocolHandlers`` every SMTP listener uses; the listener's name
picks the mode (``smtp``: inbound MX on 25; ``submission`` and ``submissions``: RFC 6409
submission on 587 and 465). Per connection, ``SmtpServer.run``:

* greets with 220 and loops on ``SmtpConnection.next_event``; each event goes to the session
  and its one reply back to the core; replies are collected and written in one ``write`` when
  the core needs more input, so a pipelined batch gets one batch of replies (RFC 2920 §3.1);
* yields the event loop every few milliseconds inside a pipelined batch (``TimeSlice``), and
  reads no more while the client has not taken the replies (``Stream.read`` drains first);
* reads in bulk (``Stream.read``) with a timeout: ``command_timeout`` (RFC 5321 §4.5.3.2.7,
  five minutes) while waiting for commands, ``data_timeout`` (§4.5.3.2.5, three minutes) while
  a message is being received; a client that runs out of time gets 421 4.4.2 and is closed;
* STARTTLS (RFC 3207): after the 220 is written, bytes the client pipelined behind STARTTLS,
  in the core's buffer (``trailing_data``) or the stream's (``Stream.start_tls``), close the
  connection; after the handshake core and session forget everything said in plaintext;
* holds ``ctx.transaction()`` around a message's store write and the write of its 250, so a
  shutdown lets a message whose terminator has arrived be stored and acknowledged;
* at shutdown (``ctx.closing``) answers the next command with 421 4.3.2 and closes; a client
  waiting to be read is woken by the listener (``ShuttingDown``) and gets the same line from
  ``refuse``. A client that goes away mid-message has nothing delivered: the core hands out a
  message only after its terminator (or BDAT LAST).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from courriel.junk import checks as junk_checks
from courriel.junk.checks import ConnectionChecks
from courriel.junk.filter import JunkFilter
from courriel.logs import kv
from courriel.mail.auth.dns import Resolver
from courriel.net.listener import HANDSHAKE_TIMEOUT, ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.stream import Stream, StreamTimeout
from courriel.queue.filtering import Filters
from courriel.queue.outbound import Queue
from courriel.session.smtp import SessionServices, SmtpSession, TlsDetails
from courriel.session.smtp_inbound import refusal
from courriel.session.smtp_junk import JunkServices
from courriel.session.timeslice import TimeSlice
from courriel.wire.errors import ProtocolError
from courriel.wire.sasl import MECHANISMS
from courriel.wire.smtp import Mode, Reply, SmtpConfig, SmtpConnection, State
from courriel.wire.smtp import events as ev

if TYPE_CHECKING:
    from courriel.app import App

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


def smtp_config(app: App, listener_name: str, implicit_tls: bool) -> SmtpConfig:
    mode = mode_of(listener_name)
    return SmtpConfig(
        hostname=app.hostname,
        mode=mode,
        tls_active=implicit_tls,
        tls_available=True,  # the TLS manager always holds a certificate once started
        # RFC 4954 §4 and RFC 8314: AUTH only for submission, and only under TLS.
        auth_mechanisms=MECHANISMS if mode is Mode.SUBMISSION else (),
        auth_requires_tls=True,
        max_message_bytes=app.cfg.limits.max_message_bytes,
        max_recipients=MAX_RECIPIENTS,
        burl=mode is Mode.SUBMISSION,  # RFC 4468: for authenticated users' own mail
    )


class SmtpServer:
    """One SMTP connection: the loop between stream, core and session."""

    def __init__(
        self,
        app: App,
        services: SessionServices,
        stream: Stream,
        ctx: ConnectionContext,
        *,
        command_timeout: float,
        data_timeout: float,
    ) -> None:
        self.app = app
        self.stream = stream
        self.ctx = ctx
        self.command_timeout = command_timeout
        self.data_timeout = data_timeout
        name = ctx.listener.name
        self.conn = SmtpConnection(smtp_config(app, name, ctx.listener.implicit_tls))
        self.services = services
        self.session = SmtpSession(services, self.conn, mode_of(name), ctx.peer[0])
        if ctx.listener.implicit_tls:
            self.session.tls_started(_details(stream))
        self._out = bytearray()
        self._turn = TimeSlice()  # a pipelined batch yields the loop every few ms
        # The same words as the listener's refusal, whichever of the two says goodbye.
        self._shutting_down = Reply(421, "4.3.2", f"{app.hostname} {Refusal.SHUTTING_DOWN.value}")

    async def run(self) -> None:
        try:
            if await self._before_greeting():
                self._out += self.conn.greeting()
                await self._loop()
        finally:
            await self._flush_quietly()

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
            self._out += _line(f"{EARLY_TALKER.code} {EARLY_TALKER.enhanced} {EARLY_TALKER.text}")
        return False

    async def _loop(self) -> None:
        conn = self.conn
        while conn.state is not State.CLOSED:
            try:
                event = conn.next_event()
            except ProtocolError as e:
                self._out += e.reply
                if e.fatal:
                    return
                continue
            match event:
                case ev.NeedData():
                    if not await self._read():
                        return
                case ev.Closed():
                    return
                case ev.StartTls():
                    if not await self._starttls(event):
                        return
                case ev.MessageData() | ev.BdatLast():
                    self.ctx.command = type(event).__name__  # for a stall report (watchdog)
                    async with self.ctx.transaction():
                        self._out += conn.send(await self.session.handle(event))
                        await self._flush()
                case _:
                    self.ctx.command = type(event).__name__  # for a stall report (watchdog)
                    if self.ctx.closing.is_set():
                        self._out += conn.send(self._shutting_down)  # RFC 5321 §3.8
                        return
                    await self._turn.step()  # before, so the last reply is not held back
                    self._out += conn.send(await self.session.handle(event))

    async def _read(self) -> bool:
        """Writes the replies so far, then reads; False when the connection is over."""
        await self._flush()
        reading_message = self.conn.reading_message
        timeout = self.data_timeout if reading_message else self.command_timeout
        try:
            data = await self.stream.read(READ_SIZE, timeout=timeout)
            self._turn.restart()
        except StreamTimeout:
            log.info("client timed out", extra=kv(timeout=timeout, in_message=reading_message))
            self._out += self.conn.send(TIMED_OUT)
            return False
        if not data:
            self.conn.connection_lost()  # a message not yet ended is dropped, never delivered
            return False
        self.conn.receive_data(data)
        return True

    async def _starttls(self, event: ev.StartTls) -> bool:
        self._out += self.conn.send(await self.session.handle(event))
        await self._flush()
        if self.conn.state is not State.TLS:
            return self.conn.state is not State.CLOSED  # the session did not say 220
        if self.conn.trailing_data:
            # RFC 3207 §4.2: plaintext pipelined behind STARTTLS must not run under TLS.
            log.warning("STARTTLS refused: commands were pipelined behind it")
            self.conn.connection_lost()
            return False
        await self.stream.start_tls(self.app.tls.context, handshake_timeout=HANDSHAKE_TIMEOUT)
        try:
            self.conn.tls_started()
        except ProtocolError:
            return False
        self.session.tls_started(_details(self.stream))
        return True

    async def _flush(self) -> None:
        if self._out:
            data = bytes(self._out)
            self._out.clear()
            await self.stream.send(data)

    async def _flush_quietly(self) -> None:
        if self._out and not self.stream.closed:
            try:
                await self._flush()
            except (OSError, StreamTimeout):
                self._out.clear()


def _details(stream: Stream) -> TlsDetails | None:
    tls = stream.tls
    return None if tls is None else TlsDetails(tls.version, tls.cipher, tls.bits)


def _line(text: str) -> bytes:
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace") + b"\r\n"


def junk_services(app: App) -> JunkServices:
    """The ``[junk]`` services of port 25; DNS through the SPF/DKIM/DMARC checks' resolver, or
    one of its own when those are off."""
    cfg = app.cfg.junk
    resolver: Resolver | None = app.mailauth.resolver if app.mailauth is not None else None
    if resolver is None and (cfg.dnsbl_zones or cfg.fcrdns):
        from courriel.auth_resolver import AuthResolver  # dnspython: only when it is used

        resolver = AuthResolver(app.cfg.dns.nameservers, timeout=cfg.dns_timeout_seconds)
    checks = ConnectionChecks(cfg, resolver, app.hostname)
    return JunkServices(cfg, checks, JunkFilter(app.store, cfg) if cfg.scoring else None)


def handlers(
    app: App,
    *,
    queue: Queue | None = None,
    command_timeout: float = COMMAND_TIMEOUT,
    data_timeout: float = DATA_TIMEOUT,
) -> ProtocolHandlers:
    """The SMTP protocol for ``courriel.app.handlers``; timeouts are settable for tests.

    Submission hands remote recipients to ``queue`` (default: the app's outbound queue); the
    inbound MX never relays for addresses we do not host (RFC 5321 §3.6.2: no open relay), and
    queues only the forwards of our aliases to other domains.
    """
    submission = SessionServices(
        store=app.store,
        authenticator=app.auth,
        limiter=app.limiter,
        queue=queue if queue is not None else app.outbound,
        hostname=app.hostname,
        sign=app.sign,
        events=app.maillog,
        # Sieve redirects and answers leave through the app's queue on every port.
        filters=Filters(app.store, queue if queue is not None else app.outbound, app.hostname),
    )
    # Port 25 checks SPF, DKIM, DMARC and ARC when the app has a checker (``[mailauth]``) and
    # filters junk (``[junk]``). It queues only what our aliases forward (RCPT refuses other
    # domains' addresses) and seals it.
    mx = replace(
        submission,
        checker=app.mailauth,
        mailauth=app.cfg.mailauth,
        seal=app.seal,
        junk=junk_services(app),
    )

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        server = SmtpServer(
            app,
            mx if mode_of(ctx.listener.name) is Mode.MX else submission,
            stream,
            ctx,
            command_timeout=command_timeout,
            data_timeout=data_timeout,
        )
        await server.run()

    async def refuse(stream: Stream, refusal: Refusal) -> None:
        # RFC 3463: 4.3.2 "system not accepting network messages", 4.7.0 "security or policy".
        code = "4.3.2" if refusal is Refusal.SHUTTING_DOWN else "4.7.0"
        await stream.send(_line(f"421 {code} {app.hostname} {refusal.value}"))  # RFC 5321 §3.8

    return ProtocolHandlers(serve=serve, refuse=refuse)
