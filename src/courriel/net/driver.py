"""One connection loop for every protocol: read, feed the session, write, act.

Theory of operation
-------------------
Each protocol module in net/ (``smtp.py``, ``imap.py``, ``pop3.py``, ``managesieve.py``) wraps its
sans-IO core and its session policy in one object that follows ``Session`` below, and hands it to
``drive``. The driver owns everything that touches the connection:

1. writes the greeting, then loops: ``session.next_event()`` returns a command event, or ``WAIT``
   (the core needs bytes), or ``END`` (the conversation is over). A ``ProtocolError`` from the core
   carries the reply to write; a fatal one ends the connection.
2. Before a command: ``ctx.command`` names it for the stall watchdog (``net/watchdog.py``), the
   connection's ``TimeSlice`` yields the loop every few milliseconds inside a pipelined batch,
   and at shutdown (``ctx.closing``) the session's goodbye is written instead of running it,
   unless the session says the command ``finishes_at_shutdown`` (an SMTP message whose
   terminator has arrived). A command that ``acknowledges`` a store write (an SMTP message, a
   POP3 QUIT, a PUTSCRIPT) runs inside ``ctx.transaction()`` together with the write of its
   reply, so a shutdown that begins meanwhile lets the write and its acknowledgement finish.
3. ``session.handle(event)`` returns a ``Step``: bytes to write and an ``Action``. Output is
   collected (``Output``) and written when the driver is about to read, or at ``FLUSH_BYTES``,
   so a pipelined batch costs one write (RFC 2920 §3.1). A session that streams (IMAP FETCH,
   APPEND's continuation) writes through the same ``Output`` while it handles a command.
4. Reading has the session's timeout (``read_timeout``, which may depend on its state); a
   client that runs out of time gets ``timed_out`` and is closed; end of stream is told to the
   session (``connection_lost``) and closes. When the core holds part of a command
   (``mid_command``: half a line, a literal without the rest of its line, the start of a
   message), the stream is told to acknowledge what comes at once (``ack_promptly``): a client
   that writes one command in two pieces with Nagle's algorithm on waits for the first piece's
   acknowledgement before sending the second, and a delayed one costs 40 ms a command. While
   the session has news to push between commands (IMAP IDLE and NOTIFY: ``push_waiter``), the
   read races that waiter.
5. Shutdown met while waiting for the client (``ShuttingDown`` from ``Stream.read``) writes the
   session's goodbye too. ``session.close`` runs however the connection ends (locks released).

STARTTLS, one rule for every protocol (RFC 3207 §4, RFC 2595 §4, RFC 9051 §6.2.1, RFC 5804
§2.2): bytes the client sent after the STARTTLS command, before the handshake, were sent in clear
and must never be read as commands under TLS (the CVE-2011-0411 class). The driver writes the
go-ahead, throws those bytes away (the core's buffer and the stream's), logs how many, and
negotiates; Postfix answers the same way. Whatever the client sends next is TLS.

COMPRESS (RFC 4978 §3) is stricter: a client that sent anything before reading the OK is not
following the protocol, and the connection is closed. DEFLATE is raw deflate both ways
(``wbits=-15``), each write ending with a sync flush; large writes are compressed in
``DEFLATE_PIECE`` pieces with a yield between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from courriel.logs import kv
from courriel.net.listener import ConnectionContext
from courriel.net.stream import ShuttingDown, Stream, StreamTimeout, TLSInfo
from courriel.net.tls import TLSManager
from courriel.timeslice import TimeSlice
from courriel.wire.errors import ProtocolError

log = logging.getLogger("courriel.net")

READ_SIZE = 256 * 1024
FLUSH_BYTES = 64 * 1024  # collected output is written at the latest at this size
DEFLATE_PIECE = 64 * 1024  # compressed in pieces, yielding between them (about a ms each)
GOODBYE_TIMEOUT = 5.0  # how long a goodbye may take to leave when the client has stalled


class Action(enum.Enum):
    """What the driver does after writing a command's output."""

    CONTINUE = "continue"
    CLOSE = "close"
    STARTTLS = "starttls"  # the go-ahead was written: discard clear text, then the handshake
    COMPRESS = "compress"  # the OK was written: DEFLATE both ways from now on (RFC 4978)


class Wait(enum.Enum):
    """``next_event`` has no command to give."""

    DATA = "data"  # the core needs more bytes
    END = "end"  # the conversation is over (QUIT answered, a fatal error, the session's choice)


WAIT = Wait.DATA
END = Wait.END


@dataclass(frozen=True, slots=True)
class Step:
    """A session's answer to one event: bytes to write, then what to do."""

    data: bytes = b""
    action: Action = Action.CONTINUE


E = TypeVar("E")


class Session(Protocol[E]):
    """What a protocol gives the driver: its core and its policy, bytes in and bytes out."""

    def greeting(self) -> bytes: ...

    def receive(self, data: bytes) -> None:
        """Bytes from the client, for the core."""

    def next_event(self) -> E | Wait:
        """The next command, or why there is none; raises ``ProtocolError``."""

    def acknowledges(self, event: E) -> bool:
        """Whether the event's reply acknowledges a store write: both run inside
        ``ctx.transaction()``, so a shutdown that begins meanwhile lets them finish."""

    def finishes_at_shutdown(self, event: E) -> bool:
        """Whether the event is run even when shutdown began before it was taken (an SMTP
        message whose terminator has arrived); other events get the goodbye instead."""

    async def handle(self, event: E) -> Step: ...

    def read_timeout(self) -> float: ...

    def timed_out(self, seconds: float) -> bytes:
        """The goodbye to a client that sent nothing for ``seconds``."""

    def shutting_down(self) -> bytes:
        """The goodbye at shutdown, in the protocol's words."""

    def connection_lost(self) -> None:
        """The client closed the connection."""

    def discard_trailing_data(self) -> int:
        """Forgets bytes the core holds beyond the command just answered (STARTTLS, COMPRESS);
        how many there were."""

    def tls_started(self, tls: TLSInfo | None) -> Step:
        """The STARTTLS handshake succeeded: what to write now (ManageSieve's capabilities)."""

    def push_waiter(self) -> asyncio.Event | None:
        """Set when the session has news to push while waiting for the client; None: none."""

    def mid_command(self) -> bool:
        """Part of a command has arrived, or the core waits for its literal or message: the
        rest is on its way, so the driver has it acknowledged at once (``ack_promptly``)."""

    async def push(self) -> Step:
        """The news to push; ``Action.CLOSE`` when the session must end after it."""

    async def close(self) -> None:
        """Releases what the session holds; called once, however the connection ends."""


class Output:
    """The stream's write side as a session sees it: collected writes, DEFLATE once COMPRESS is
    active, and ``transaction`` for a store write and its acknowledgement (the IMAP ``Io``)."""

    def __init__(self, stream: Stream, ctx: ConnectionContext) -> None:
        self.stream = stream
        self.ctx = ctx
        self._inflate: zlib._Decompress | None = None
        self._deflate: zlib._Compress | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.turn = TimeSlice()  # the connection's share of the event loop

    @property
    def compressing(self) -> bool:
        return self._deflate is not None

    async def send(self, data: bytes) -> None:
        """Queues ``data``; written before the next read, or now when much is queued."""
        if not data:
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= FLUSH_BYTES:
            await self.flush()

    async def flush(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Writes what was collected and waits until the client has taken enough of it."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        deflate = self._deflate
        if deflate is None:
            await self.stream.send(data, timeout)
            return
        # A large response is compressed in pieces, so the loop is never held for long.
        view = memoryview(data)
        for start in range(0, len(view), DEFLATE_PIECE):
            self.stream.write(deflate.compress(view[start : start + DEFLATE_PIECE]))
            await self.turn.step()
        await self.stream.send(deflate.flush(zlib.Z_SYNC_FLUSH), timeout)

    async def flush_quietly(self) -> None:
        """The last words: written if the client still takes them, else dropped."""
        if self.stream.closed:
            self._pending.clear()
            return
        with contextlib.suppress(OSError, ssl.SSLError, StreamTimeout):
            await self.flush(GOODBYE_TIMEOUT)
        self._pending.clear()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """A store write and its acknowledgement: the reply is written before shutdown may
        cancel the session."""
        async with self.ctx.transaction():
            yield
            await self.flush()

    async def read(self, timeout: float, *, rest: bool = False) -> bytes:  # noqa: ASYNC109
        """Writes what is pending, then the next bytes from the client (inflated); ``rest``:
        they are the rest of a command, to be acknowledged as they come."""
        await self.flush()
        if rest:
            self.stream.ack_promptly()  # after the flush: writing turns delayed ACKs back on
        while True:
            data = await self.stream.read(READ_SIZE, timeout=timeout)
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


class Driver:
    """Runs one ``Session`` over one connection (see the module docstring)."""

    def __init__(
        self,
        stream: Stream,
        ctx: ConnectionContext,
        tls: TLSManager,
        *,
        handshake_timeout: float,
        out: Output | None = None,
    ) -> None:
        self.stream = stream
        self.ctx = ctx
        self.tls = tls
        self.handshake_timeout = handshake_timeout
        self.out = out if out is not None else Output(stream, ctx)

    async def run(self, session: Session[E], *, greet: bool = True) -> None:
        """Serves the connection until it ends; ``greet=False`` when the greeting was already
        decided (and written) by the protocol (SMTP's early talkers)."""
        try:
            if greet:
                await self.out.send(session.greeting())
            await self._loop(session)
        except ShuttingDown:
            await self.out.send(session.shutting_down())
        finally:
            try:
                await self.out.flush_quietly()
            finally:
                await session.close()

    async def _loop(self, session: Session[E]) -> None:
        out, ctx = self.out, self.ctx
        while True:
            try:
                event = session.next_event()
            except ProtocolError as e:
                await out.send(e.reply)
                if e.fatal:
                    return
                continue
            if event is Wait.END:
                return
            if event is Wait.DATA:
                if not await self._read(session):
                    return
                continue
            ctx.command = type(event).__name__  # named in a stall report (net/watchdog.py)
            if ctx.closing.is_set() and not session.finishes_at_shutdown(event):
                raise ShuttingDown("server shutting down")
            if session.acknowledges(event):
                async with ctx.transaction():
                    step = await session.handle(event)
                    await out.send(step.data)
                    await out.flush()
            else:
                # A pipelined batch yields every few ms; checked before a command, not after,
                # so the reply of the last one is not held back behind other clients' work.
                await out.turn.step()
                step = await session.handle(event)
                await out.send(step.data)
            if not await self._act(session, step.action):
                return

    async def _act(self, session: Session[E], action: Action) -> bool:
        """Carries out a step's action; False when the connection must end."""
        match action:
            case Action.CONTINUE:
                return True
            case Action.CLOSE:
                return False
            case Action.STARTTLS:
                return await self._start_tls(session)
            case Action.COMPRESS:
                if session.discard_trailing_data():
                    # RFC 4978 §3: nothing may be sent before the OK was read.
                    log.warning("COMPRESS refused: commands were sent before its OK was read")
                    return False
                await self.out.flush()  # the OK itself is not compressed
                self.out.start_compression()
                return True

    async def _start_tls(self, session: Session[E]) -> bool:
        await self.out.flush()  # the go-ahead travels in clear, before the handshake
        # RFC 3207 §4, RFC 2595 §4, RFC 9051 §6.2.1, RFC 5804 §2.2: what came after STARTTLS
        # was sent in clear; it is thrown away, never run under TLS (CVE-2011-0411).
        discarded = session.discard_trailing_data()
        # ``start_tls`` discards what the stream buffered, with no yield before the handshake.
        discarded += await self.stream.start_tls(
            self.tls.context, handshake_timeout=self.handshake_timeout
        )
        if discarded:
            log.warning(
                "%d bytes sent in clear after STARTTLS were discarded",
                discarded,
                extra=kv(discarded=discarded),
            )
        step = session.tls_started(self.stream.tls)
        await self.out.send(step.data)
        return await self._act(session, step.action)

    async def _read(self, session: Session[E]) -> bool:
        """Reads more for the core; False when the connection is over (timed out or closed)."""
        timeout = session.read_timeout()
        try:
            waiter = session.push_waiter()
            if waiter is None:
                data = await self.out.read(timeout, rest=session.mid_command())
            else:
                pushed = await self._read_or_push(session, waiter, timeout)
                if pushed is None:
                    return False
                data = pushed
        except StreamTimeout:
            await self.out.send(session.timed_out(timeout))
            return False
        if not data:
            session.connection_lost()
            return False
        session.receive(data)
        return True

    async def _read_or_push(
        self,
        session: Session[E],
        waiter: asyncio.Event,
        timeout: float,  # noqa: ASYNC109
    ) -> bytes | None:
        """Reads while pushing what the session has to say meanwhile; None: the session ended."""
        await self.out.flush()  # what is pending now, and nothing left for the reader task
        reader = asyncio.create_task(self.out.read(timeout, rest=session.mid_command()))
        try:
            while True:
                waker = asyncio.create_task(waiter.wait())
                done, _ = await asyncio.wait({reader, waker}, return_when=asyncio.FIRST_COMPLETED)
                if waker in done:
                    step = await session.push()
                    await self.out.send(step.data)
                    await self.out.flush()  # pushed at once; no read follows it
                    if step.action is Action.CLOSE:
                        return None
                    next_waiter = session.push_waiter()
                    if next_waiter is not None:
                        waiter = next_waiter
                else:
                    waker.cancel()
                if reader in done:
                    return reader.result()
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
