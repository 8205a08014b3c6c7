"""One outbound SMTP connection over asyncio, and the pool that keeps idle ones for reuse.

Theory of operation
-------------------
``Connection`` is the thin adapter around the sans-IO core (``courriel.wire.smtp.client``):
it writes what the core returns, reads until the core has a reply, and bounds every wait.
``open_session`` connects, reads the greeting, says EHLO (HELO if EHLO is refused), runs
STARTTLS as the host's ``HostTls`` asks, checks DANE, and authenticates to a smarthost.
Every failure on the way is a ``HostFailure`` with a sentence naming the host; the caller
tries the next address or host.

Timeouts are RFC 5321 §4.5.3.2's, each scaled by one factor so tests can shrink them: 5
minutes for the greeting and each command, 2 for DATA's 354, 3 for each block of data
written, 10 for the reply to the end of data. A reply is awaited as a whole under its
timeout, so a server that dribbles one octet a minute is cut off like a silent one.

``Pool`` keeps connections that ended a transaction cleanly, keyed by host, address, port
and TLS requirement (a connection made under weaker TLS is never used for a delivery that
needs more). A connection idle longer than ``idle_seconds`` is closed with QUIT; one older
than ``reuse_seconds`` is not reused (Postfix's ``smtp_connection_reuse_time_limit``). A
finished transaction leaves the session clean, so no RSET is sent before reuse: it would cost
a round trip per message, and Postfix's server counts RSETs as junk commands and hangs up
after a hundred or so. While idle a connection is watched: a server that says anything (a
421 before hanging up, a stray reply) or closes ends it, so a stale line is never read as the
answer to the next command; a connection left with unread replies after a transaction is not
kept at all. One the server dropped unseen fails before the first reply of the next
transaction (``HostFailure.at_start``); the caller then opens a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from dataclasses import dataclass, field

from courriel.net import dane
from courriel.net.outbound_tls import Contexts, HostTls, TlsLevel
from courriel.wire.smtp.client import ClientConnection, Phase
from courriel.wire.smtp.client_replies import BadReply, ReplyLimits
from courriel.wire.smtp.replies import Reply

log = logging.getLogger("courriel.relay")

READ_SIZE = 65536
_DER = 2  # _ssl.ENCODING_DER, which the ssl module does not re-export


@dataclass(frozen=True, slots=True)
class Timeouts:
    """RFC 5321 §4.5.3.2 values in seconds; ``connect`` and ``tls`` are Postfix's."""

    connect: float = 30.0
    greeting: float = 300.0  # §4.5.3.2.1
    command: float = 300.0  # §4.5.3.2.2, §4.5.3.2.3: MAIL, RCPT (and EHLO, RSET, ...)
    data_init: float = 120.0  # §4.5.3.2.4
    data_block: float = 180.0  # §4.5.3.2.5
    data_end: float = 600.0  # §4.5.3.2.6
    tls: float = 60.0

    def scaled(self, factor: float) -> Timeouts:
        return Timeouts(**{k: getattr(self, k) * factor for k in self.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Login:
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Target:
    """One server to try: a name (for TLS and messages), an address and a port."""

    host: str
    address: str
    port: int
    tls: HostTls
    implicit_tls: bool = False  # port 465 style smarthost
    login: Login | None = None

    @property
    def label(self) -> str:
        return f"{self.host} [{self.address}]"


class HostFailure(Exception):  # noqa: N818 - a failure to report, not a program error
    """This server could not be used; ``text`` says why in words."""

    def __init__(
        self, text: str, *, temporary: bool = True, reply: Reply | None = None, tls: bool = False
    ) -> None:
        super().__init__(text)
        self.text = text
        self.temporary = temporary
        self.reply = reply
        self.tls_failed = tls  # the TLS handshake itself failed
        self.after_data = False  # lost after the whole message was sent: do not try elsewhere
        self.at_start = False  # failed before the first reply of a transaction


@dataclass
class Connection:
    target: Target
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    core: ClientConnection
    timeouts: Timeouts
    opened: float = field(default_factory=time.monotonic)
    idle_handle: asyncio.TimerHandle | None = None
    watcher: asyncio.Task[bytes] | None = None  # reads while idle: anything there ends it
    reused: bool = False  # taken from the pool: the server may have closed it meanwhile

    async def reply(self, seconds: float) -> Reply:
        """The next reply, whole, within ``timeout``; raises ``HostFailure``."""
        try:
            async with asyncio.timeout(seconds):
                while (reply := self.core.next_reply()) is None:
                    data = await self.reader.read(READ_SIZE)
                    if not data:
                        raise HostFailure(f"{self.target.label} closed the connection")
                    self.core.receive_data(data)
        except TimeoutError:
            raise HostFailure(
                f"{self.target.label} did not answer within {seconds:g} seconds"
            ) from None
        except BadReply as e:
            raise HostFailure(f"{self.target.label} sent a bad reply: {e.reason}") from None
        except OSError as e:
            raise HostFailure(f"{self.target.label}: connection lost ({e})") from None
        return reply

    async def write(self, data: bytes, seconds: float) -> None:
        if not data:
            return
        try:
            self.writer.write(data)
            async with asyncio.timeout(seconds):
                await self.writer.drain()
        except TimeoutError:
            raise HostFailure(
                f"{self.target.label} did not take data within {seconds:g} seconds"
            ) from None
        except OSError as e:
            raise HostFailure(f"{self.target.label}: connection lost ({e})") from None

    async def command(self, data: bytes, seconds: float | None = None) -> Reply:
        await self.write(data, self.timeouts.data_block)
        reply = await self.reply(seconds or self.timeouts.command)
        await self.write(self.core.receive(reply), self.timeouts.data_block)
        return reply

    @property
    def reusable(self) -> bool:
        """A clean session: between transactions, open, and no reply left over (one more than
        was asked for would be read as the answer to the next command)."""
        return (
            self.core.phase is Phase.READY
            and not self.writer.is_closing()
            and self.core.buffered == 0
        )

    async def stop_idling(self) -> bool:
        """Ends the idle watch; whether the server stayed silent meanwhile."""
        if self.idle_handle is not None:
            self.idle_handle.cancel()
        watcher, self.idle_handle, self.watcher = self.watcher, None, None
        if watcher is None:
            return True
        watcher.cancel()  # a pending read: cancelling it consumes nothing
        # Wait until it has let go of the reader (a second reader would be refused), without
        # taking its cancellation for ours.
        await asyncio.wait([watcher])
        return watcher.cancelled()

    async def close(self, *, polite: bool = True) -> None:
        await self.stop_idling()
        if not polite:
            # A failed connection may hold megabytes nobody will read: drop them at once
            # rather than wait for a peer that stopped reading.
            self.writer.transport.abort()
            return
        if self.core.phase not in (Phase.CLOSED, Phase.QUIT):
            # Closing anyway: a QUIT without its 221 loses nothing.
            with contextlib.suppress(HostFailure, TimeoutError, OSError):
                self.writer.write(self.core.quit())
                async with asyncio.timeout(min(self.timeouts.command, 5.0)):
                    await self.reply(self.timeouts.command)
        self.writer.close()
        # The socket is closed on our side; the peer's manners do not matter.
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            async with asyncio.timeout(5.0):
                await self.writer.wait_closed()


async def _connect(target: Target, timeouts: Timeouts, contexts: Contexts) -> Connection:
    ctx = contexts.for_level(target.tls.level) if target.implicit_tls else None
    try:
        async with asyncio.timeout(timeouts.connect):
            reader, writer = await asyncio.open_connection(
                target.address,
                target.port,
                ssl=ctx,
                server_hostname=target.host if ctx else None,
                ssl_handshake_timeout=timeouts.tls if ctx else None,
                limit=READ_SIZE,
            )
    except TimeoutError:
        raise HostFailure(
            f"{target.label} did not accept a connection within {timeouts.connect:g} seconds"
        ) from None
    except ssl.SSLError as e:
        raise HostFailure(f"TLS with {target.label} failed: {e.reason or e}", tls=True) from None
    except OSError as e:
        reason = e.strerror or str(e)
        raise HostFailure(f"cannot connect to {target.label}: {reason}") from None
    core = ClientConnection(ReplyLimits())
    if ctx is not None:
        core.tls = True
    return Connection(target, reader, writer, core, timeouts)


async def open_session(
    target: Target, helo: str, timeouts: Timeouts, contexts: Contexts
) -> Connection:
    """A greeted connection, with TLS and login as ``target`` asks; raises ``HostFailure``."""
    conn = await _connect(target, timeouts, contexts)
    try:
        greeting = await conn.reply(timeouts.greeting)
        conn.core.receive(greeting)
        if not greeting.positive:
            raise HostFailure(
                f"{target.label} refused the connection: {describe(greeting)}",
                temporary=greeting.code < 500,
                reply=greeting,
            )
        await _hello(conn, helo)
        if not conn.core.tls and target.tls.level is not TlsLevel.NONE:
            await _starttls(conn, helo, contexts)
        if conn.core.tls and target.tls.level is TlsLevel.DANE:
            _check_dane(conn)
        if target.login is not None:
            await _login(conn, target.login)
    except BaseException:
        await conn.close(polite=False)
        raise
    return conn


async def _hello(conn: Connection, helo: str) -> None:
    reply = await conn.command(conn.core.ehlo(helo))
    if reply.positive:
        return
    reply = await conn.command(conn.core.helo(helo))  # RFC 5321 §3.2: an old server
    if not reply.positive:
        raise HostFailure(f"{conn.target.label} refused HELO: {describe(reply)}", reply=reply)


async def _starttls(conn: Connection, helo: str, contexts: Contexts) -> None:
    target = conn.target
    required = target.tls.level.required
    if not conn.core.caps.starttls:
        if required:
            raise HostFailure(f"{target.tls.why} requires TLS and {target.label} offered none")
        return
    reply = await conn.command(conn.core.starttls())
    if reply.code != 220:
        if required:
            raise HostFailure(
                f"{target.tls.why} requires TLS and {target.label} refused STARTTLS: "
                f"{describe(reply)}"
            )
        return  # RFC 3207 §4: go on in clear
    ctx = contexts.for_level(target.tls.level)
    try:
        await conn.writer.start_tls(
            ctx, server_hostname=target.host, ssl_handshake_timeout=conn.timeouts.tls
        )
    except ssl.SSLCertVerificationError as e:
        raise HostFailure(
            f"{target.tls.why} requires a verified certificate and the one of "
            f"{target.label} failed: {e.verify_message}",
            tls=True,
        ) from None
    except (ssl.SSLError, OSError, TimeoutError) as e:
        raise HostFailure(f"TLS with {target.label} failed: {_tls_reason(e)}", tls=True) from None
    try:
        conn.core.tls_started()
    except BadReply as e:
        raise HostFailure(f"{target.label}: {e.reason}") from None
    await _hello(conn, helo)


def _tls_reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "the handshake timed out"
    if isinstance(e, ssl.SSLError):
        return e.reason or str(e)
    return str(e) or type(e).__name__


def peer_chain(writer: asyncio.StreamWriter) -> list[bytes]:
    """The certificates the server sent, leaf first, as DER."""
    obj = writer.get_extra_info("ssl_object")
    if obj is None:
        return []
    inner = getattr(obj, "_sslobj", None)
    chain = getattr(inner, "get_unverified_chain", None)
    if chain is not None:  # Python 3.10+ keeps it private until 3.13
        return [c.public_bytes(_DER) for c in chain() or []]
    leaf = obj.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _check_dane(conn: Connection) -> None:
    reason = dane.check(conn.target.tls.tlsa, peer_chain(conn.writer), conn.target.host)
    if reason is not None:
        raise HostFailure(f"{reason}; not delivering without a match (RFC 7672)")


async def _login(conn: Connection, login: Login) -> None:
    target = conn.target
    if not conn.core.tls:
        raise HostFailure(f"not sending the password to {target.label} without TLS")
    if "PLAIN" not in conn.core.caps.auth:
        offered = " ".join(sorted(conn.core.caps.auth)) or "none"
        raise HostFailure(f"{target.label} does not offer AUTH PLAIN (offers: {offered})")
    reply = await conn.command(conn.core.auth_plain(login.user, login.password))
    if reply.code != 235:
        raise HostFailure(
            f"{target.label} refused the login of {login.user}: {describe(reply)}", reply=reply
        )


def describe(reply: Reply) -> str:
    """A reply as one line for people: "550 5.1.1 no such user"."""
    head = f"{reply.code} {reply.enhanced}".rstrip()
    return " ".join([head, *reply.lines]).strip()


PoolKey = tuple[str, str, int, TlsLevel, tuple[object, ...], str]


def pool_key(target: Target) -> PoolKey:
    login = target.login.user if target.login else ""
    return (target.host, target.address, target.port, target.tls.level, target.tls.tlsa, login)


class Pool:
    """Idle connections by ``pool_key``; see the module docstring."""

    def __init__(self, idle_seconds: float, reuse_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self.reuse_seconds = reuse_seconds
        self._idle: dict[PoolKey, list[Connection]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.opened = 0  # connections made, for the log and the tests
        self.reused = 0

    async def get(self, target: Target) -> Connection | None:
        """The most recently used idle connection to ``target`` still open, or ``None``."""
        conns = self._idle.get(pool_key(target), [])
        while conns:
            conn = conns.pop()
            silent = await conn.stop_idling()
            if silent and not (conn.reader.at_eof() or conn.writer.is_closing()):
                conn.reused = True
                self.reused += 1
                return conn
            await conn.close(polite=False)
        return None

    def put(self, conn: Connection) -> None:
        """Keeps ``conn`` for reuse, or closes it when it cannot be reused."""
        too_old = time.monotonic() - conn.opened > self.reuse_seconds
        if not conn.reusable or too_old or self.idle_seconds <= 0:
            self._close_later(conn)
            return
        self._idle.setdefault(pool_key(conn.target), []).append(conn)
        loop = asyncio.get_running_loop()
        conn.idle_handle = loop.call_later(self.idle_seconds, self._expire, conn)
        # An idle server has nothing to say; if it says something (421 going away) or hangs
        # up, the connection is finished, and the next message must not read that as a reply.
        conn.watcher = asyncio.ensure_future(conn.reader.read(1))
        conn.watcher.add_done_callback(lambda task: self._spoke(conn, task))

    def discard(self, conn: Connection) -> None:
        """Closes ``conn`` without QUIT (it failed mid-way)."""
        task = asyncio.ensure_future(conn.close(polite=False))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _spoke(self, conn: Connection, task: asyncio.Task[bytes]) -> None:
        if task.cancelled():
            return  # taken for reuse
        conn.watcher = None
        task.exception()  # retrieved, so a reset connection logs nothing
        conns = self._idle.get(pool_key(conn.target), [])
        if conn in conns:
            conns.remove(conn)
            self.discard(conn)

    def _expire(self, conn: Connection) -> None:
        conns = self._idle.get(pool_key(conn.target), [])
        if conn in conns:
            conns.remove(conn)
            self._close_later(conn)

    def _close_later(self, conn: Connection) -> None:
        task = asyncio.ensure_future(conn.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        conns = [c for group in self._idle.values() for c in group]
        self._idle.clear()
        await asyncio.gather(*(c.close() for c in conns), *self._closing)
