"""The IMAP listeners (143 with STARTTLS, 993 with implicit TLS): bytes to the session and back.

Theory of operation
-------------------
``handlers(app)`` returns the ``ProtocolHandlers`` the listeners run. Per connection,
``serve`` greets, then loops: take the next event from the core (``session.conn``), hand it
to the session, and read more bytes when the core needs them. Reading has a timeout that
depends on the state: ``login_timeout`` before authentication, ``autologout`` after it (RFC
9051 §5.4 asks for at least 30 minutes, which also bounds an IDLE). During IDLE the read races
the session's ``wake`` event, so a change made by another session is sent at once.

STARTTLS and COMPRESS switch the layer under the protocol; bytes the client sent before the
switch cannot be trusted to belong to the new layer (RFC 9051 §6.2.1, RFC 4978 §3), so the
connection is closed when the core holds any (``trailing_data``) or the stream has buffered
any (``Stream.start_tls`` checks). COMPRESS=DEFLATE is raw deflate (zlib ``wbits=-15``) in
both directions, each write ending with a sync flush so the client can decode it at once; a
large write is compressed in ``DEFLATE_PIECE`` pieces with a yield between them.

A pipelined batch of commands is answered one command after the other on the shared event
loop; the connection's ``TimeSlice`` makes it yield every few milliseconds, and the stream
stops reading while the client has not taken what was written (``Stream.read``).

Shutdown: a session waiting for its client (IDLE included) gets ``ShuttingDown`` from the read
and says ``* BYE server shutting down``; one that has a command in hand checks ``ctx.closing``
at the next command boundary and says the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from courriel.junk.learn import JunkLearner
from courriel.net.listener import ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.stream import ShuttingDown, Stream, StreamTimeout
from courriel.session.imap import Action, Session
from courriel.session.imap.selected import Listings
from courriel.session.imap.state import MAX_SESSIONS_PER_USER, UserSessions
from courriel.session.timeslice import TimeSlice
from courriel.wire.errors import ProtocolError
from courriel.wire.imap import responses as r
from courriel.wire.imap.events import ConnectionClosed, NeedData

if TYPE_CHECKING:
    from courriel.app import App

LOGIN_TIMEOUT = 60.0
AUTOLOGOUT = 30 * 60.0
HANDSHAKE_TIMEOUT = 30.0
DEFLATE_PIECE = 64 * 1024  # compressed in pieces, yielding between them (about a ms each)
FLUSH_BYTES = 64 * 1024  # collected responses are written at the latest at this size
BYE_SHUTDOWN = b"* BYE server shutting down\r\n"


class _Closed(Exception):  # noqa: N818 - reads as an event
    """The session said BYE on its own (its selected mailbox was deleted)."""


class Channel:
    """The stream, with DEFLATE once COMPRESS is active; the session's ``Io``.

    Responses are collected and written when the connection is about to read (or at
    ``FLUSH_BYTES``), so a pipelined batch costs one write, one TLS record and one deflate
    flush instead of one per command.
    """

    def __init__(self, stream: Stream, ctx: ConnectionContext) -> None:
        self.stream = stream
        self.ctx = ctx
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.turn = TimeSlice()  # the connection's share of the event loop

    async def send(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        """Writes what was collected and waits until the client has taken enough of it."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        deflate = self._deflate
        if deflate is None:
            await self.stream.send(data)
            return
        # A large response is compressed in pieces, so the loop is never held for long.
        view = memoryview(data)
        for start in range(0, len(view), DEFLATE_PIECE):
            self.stream.write(deflate.compress(view[start : start + DEFLATE_PIECE]))
            await self.turn.step()
        await self.stream.send(deflate.flush(zlib.Z_SYNC_FLUSH))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A store write and its acknowledgement: the reply is written before shutdown may
        cancel the session."""
        async with self.ctx.transaction():
            yield
            await self.flush()

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109
        await self.flush()
        while True:
            data = await self.stream.read(timeout=timeout)
            self.turn.restart()
            if self._inflate is None or not data:
                return data
            try:
                plain = self._inflate.decompress(data)
            except zlib.error:
                return b""  # not DEFLATE data: the client broke RFC 4978 §4, end as if closed
            if plain:
                return plain

    def start_compression(self) -> None:
        """Switches both directions to raw DEFLATE (RFC 4978 §4: RFC 1951, no zlib header)."""
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)


class ImapConnection:
    """One client connection: the read loop around a ``Session``."""

    def __init__(
        self,
        app: App,
        stream: Stream,
        ctx: ConnectionContext,
        sessions: UserSessions,
        listings: Listings,
        *,
        login_timeout: float,
        autologout: float,
    ) -> None:
        self.app = app
        self.stream = stream
        self.ctx = ctx
        self.channel = Channel(stream, ctx)
        self.login_timeout = login_timeout
        self.autologout = autologout
        self.session = Session(
            store=app.store,
            auth=app.auth,
            limiter=app.limiter,
            io=self.channel,
            hostname=app.hostname,
            peer_ip=ctx.peer[0],
            tls=stream.tls is not None,
            appendlimit=app.cfg.limits.max_message_bytes,
            sessions=sessions,
            listings=listings,
        )

    async def run(self) -> None:
        try:
            await self.channel.send(self.session.greeting())
            await self._loop()
        except ShuttingDown:
            with contextlib.suppress(OSError, StreamTimeout):
                await self.channel.send(BYE_SHUTDOWN)
        except _Closed:
            pass
        except StreamTimeout:
            text = "Autologout; idle for too long" if self.session.authenticated else "No login"
            with contextlib.suppress(OSError, StreamTimeout):
                await self.channel.send(r.untagged("BYE", f"{text}, closing"))
        finally:
            with contextlib.suppress(OSError, StreamTimeout):
                await self.channel.flush()  # the last responses and any BYE
            await self.session.logout()

    async def _loop(self) -> None:
        conn = self.session.conn
        while True:
            try:
                event = conn.next_event()
            except ProtocolError as e:
                await self.channel.send(e.reply)
                if e.fatal:
                    return
                continue
            if isinstance(event, ConnectionClosed):
                return
            if isinstance(event, NeedData):
                conn.receive_data(await self._read())
                continue
            if self.ctx.closing.is_set():
                raise ShuttingDown(Refusal.SHUTTING_DOWN.value)
            # A pipelined batch yields every few ms; checked before a command, not after,
            # so the reply of the last one is not held back behind other clients' work.
            await self.channel.turn.step()
            self.ctx.command = type(event).__name__  # named in a stall report (net/watchdog.py)
            action = await self.session.handle(event)
            if action is Action.CLOSE:
                return
            if action is Action.STARTTLS:
                if conn.trailing_data:
                    return  # RFC 9051 §6.2.1: clear text pipelined after STARTTLS
                await self.channel.flush()  # the OK goes in clear text, before the handshake
                await self.stream.start_tls(
                    self.app.tls.context, handshake_timeout=HANDSHAKE_TIMEOUT
                )
                self.session.tls = True
            elif action is Action.COMPRESS:
                if conn.trailing_data:
                    return  # RFC 4978 §3: nothing may be sent before the OK was read
                await self.channel.flush()  # the OK itself is not compressed
                self.channel.start_compression()

    async def _read(self) -> bytes:
        timeout = self.autologout if self.session.authenticated else self.login_timeout
        if not self.session.conn.idling and not self.session.pushing:
            return await self.channel.read(timeout)
        # IDLE, or NOTIFY (RFC 5465) between commands: changes go out as they happen.
        await self.channel.flush()  # "+ idling" now, and nothing left for the reader task
        reader = asyncio.create_task(self.channel.read(timeout))
        try:
            while True:
                waker = asyncio.create_task(self.session.wake.wait())
                done, _ = await asyncio.wait({reader, waker}, return_when=asyncio.FIRST_COMPLETED)
                if waker in done:
                    await self.channel.send(await self.session.idle_update())
                    await self.channel.flush()  # pushed at once; no read follows it
                    if self.session.bye:
                        raise _Closed
                else:
                    waker.cancel()
                if reader in done:
                    return reader.result()
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader


def handlers(
    app: App,
    *,
    login_timeout: float = LOGIN_TIMEOUT,
    autologout: float = AUTOLOGOUT,
    sessions_per_user: int = MAX_SESSIONS_PER_USER,
) -> ProtocolHandlers:
    """The IMAP handlers; the keyword arguments exist so tests can shorten the limits."""
    sessions = UserSessions(sessions_per_user, app.imap_users)
    listings = Listings()  # SELECT reads only what changed since a mailbox's last listing
    # Moves into and out of Junk, $Junk and $NotJunk train each user's junk filter.
    learner = JunkLearner(app.store) if app.cfg.junk.learn else None

    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        conn = ImapConnection(
            app,
            stream,
            ctx,
            sessions,
            listings,
            login_timeout=login_timeout,
            autologout=autologout,
        )
        conn.session.state.junk = learner
        await conn.run()

    async def refuse(stream: Stream, refusal: Refusal) -> None:
        await stream.send(r.untagged("BYE", f"{app.hostname} {refusal.value}", r.UNAVAILABLE))

    return ProtocolHandlers(serve=serve, refuse=refuse)
