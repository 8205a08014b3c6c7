"""One client connection as a byte stream: bulk reads, buffered writes, STARTTLS, timeouts.

Theory of operation
-------------------
``Stream`` is the protocol every session and the driver (``net/driver.py``) are written against;
it names only what they use. ``SocketStream`` implements it over a socket; ``net/memstream.py``
implements it in memory (``memory_stream_pair``), so a session can be run in-process, without a
socket, with the same reads, timeouts, backpressure and interrupts.

``SocketStream`` is a thin layer over an asyncio ``StreamReader``/``StreamWriter`` pair. Protocol
code reads with ``read(max_bytes, timeout)``, which returns whatever bytes are available (at least
one, or ``b""`` at end of stream). The sans-IO cores find line and DATA terminators in what they
are fed with ``bytes.find``; nothing here loops per line.

``close`` flushes, then closes; when the client sent bytes that were never read (a flood cut
short by a limit), it first half-closes and discards input for a moment (``_linger``), since
closing with unread data makes the kernel send a reset that can destroy the last reply.

Writes are buffered by the transport: ``write`` queues, ``drain`` waits until the kernel has taken
enough of it (with a timeout, so a client that stops reading cannot pin a session forever).
``read`` drains first: a session takes no more input while its output is not taken, so a
client that pipelines without reading fills its own socket buffers, never the server's memory.

STARTTLS (RFC 3207 §4, RFC 2595 §3.1, RFC 8314 §4.1): ``start_tls`` throws away the bytes
waiting in the reader's buffer before it begins the handshake, and says how many. Such bytes
were sent in clear after the STARTTLS command and, if kept, would be treated as if they had
come through TLS (the CVE-2011-0411 command-injection class). The driver empties the protocol
core's buffer the same way (``net/driver.py``); this covers bytes the core has not yet been
fed. Discarding and the moment asyncio stops reading the socket happen without yielding to the
event loop in between, so no clear-text byte can slip past into the TLS session.

``interrupt(exc)`` makes the current and every later ``read`` raise ``exc``. Graceful shutdown
uses it to wake sessions that are waiting for their client (``ShuttingDown``), while a session
busy with a transaction keeps running until it next reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import socket
import ssl
import struct
import termios
from dataclasses import dataclass
from typing import Protocol

DEFAULT_READ_SIZE = 256 * 1024
DEFAULT_WRITE_TIMEOUT = 60.0
CLOSE_TIMEOUT = 5.0
LINGER_TIMEOUT = 2.0  # reading and discarding after the last reply (SocketStream._linger)
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class StreamError(Exception):
    """Base of the errors ``Stream`` raises on purpose."""


class StreamTimeout(StreamError, TimeoutError):  # noqa: N818 - reads as an event
    """The client sent nothing (or took nothing) for longer than the timeout."""


class ShuttingDown(StreamError):  # noqa: N818 - reads as an event
    """The server is stopping; the session should say goodbye and end."""


class TLSHandshakeFailed(StreamError):  # noqa: N818 - reads as an event
    """The TLS handshake failed or timed out; the connection is no longer usable."""


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """The negotiated TLS parameters, as a Received header reports them (RFC 8314 §4.3)."""

    version: str  # "TLSv1.3"
    cipher: str  # "TLS_AES_256_GCM_SHA384"
    bits: int


def normalize_ip(ip: str) -> str:
    """The address as a person would write it: IPv4-mapped IPv6 becomes plain IPv4."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _address(info: object) -> tuple[str, int]:
    if isinstance(info, tuple) and len(info) >= 2:
        return normalize_ip(str(info[0])), int(info[1])
    return ("", 0)  # a UNIX socket or a transport that is already gone


class Stream(Protocol):
    """One connection as the driver and the protocol adapters see it (module docstring)."""

    @property
    def peer(self) -> tuple[str, int]:
        """The client's address and port; ``("", 0)`` when there is none."""

    # The timeout is part of the contract: every protocol read has one.
    async def read(
        self,
        max_bytes: int = DEFAULT_READ_SIZE,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> bytes:
        """Up to ``max_bytes`` available bytes, waiting for at least one; ``b""`` at the end.
        Raises ``StreamTimeout`` after ``timeout`` seconds, and what ``interrupt`` was given."""

    def buffered(self) -> int:
        """How many received bytes wait, not yet returned by ``read``."""

    def at_eof(self) -> bool:
        """Whether the client closed its side and every byte it sent has been read."""

    def interrupt(self, exc: Exception) -> None:
        """Makes the pending and every later ``read`` raise ``exc``."""

    def ack_promptly(self) -> None:
        """The client is sending the rest of a command: acknowledge what arrives at once."""

    def write(self, data: bytes) -> None:
        """Queues ``data``; nothing is written once the stream is closed."""

    async def drain(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Waits until little enough is queued; ``StreamTimeout`` when the client takes
        nothing for ``timeout`` seconds (the stream's write timeout when None)."""

    async def send(self, data: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """``write`` then ``drain``."""

    async def start_tls(self, context: ssl.SSLContext, *, handshake_timeout: float) -> int:
        """Server side of STARTTLS; how many buffered clear-text bytes were thrown away."""

    @property
    def tls(self) -> TLSInfo | None:
        """The negotiated TLS parameters; None while the connection is in clear."""

    @property
    def closed(self) -> bool: ...

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109
        """Flushes what was written (within ``timeout``), then closes the connection."""

    def abort(self) -> None:
        """Drops the connection at once, discarding unsent bytes."""


class SocketStream:
    """``Stream`` over an asyncio ``StreamReader``/``StreamWriter`` pair (a socket)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn_id: str,
        *,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        keep_alive: object = None,
    ) -> None:
        """``writer`` should be made without a reader (``StreamWriter(t, p, None, loop)``): its
        ``drain`` then keeps working after ``interrupt``. ``keep_alive`` holds objects that must
        live as long as the connection (the protocol's own writer).
        """
        self._keep_alive = keep_alive
        self._reader = reader
        self._writer = writer
        self.conn_id = conn_id
        self.write_timeout = write_timeout
        self.peer = _address(writer.get_extra_info("peername"))
        self.local = _address(writer.get_extra_info("sockname"))
        self._closed = False
        sock = writer.get_extra_info("socket")
        tcp = sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6)
        self._quickack = sock if tcp and _TCP_QUICKACK is not None else None

    # --- reading ------------------------------------------------------------------------------

    # The timeout is part of the contract: every protocol read has one.
    async def read(
        self,
        max_bytes: int = DEFAULT_READ_SIZE,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> bytes:
        """Up to ``max_bytes`` available bytes, waiting for at least one; ``b""`` at the end.

        Raises ``StreamTimeout`` when nothing arrives within ``timeout`` seconds, and the
        exception given to ``interrupt`` once it has been called. Nothing is read while the
        client has not taken what was written (backpressure): a client that pipelines commands
        and never reads its replies is not served faster than it reads.
        """
        if self._writer.transport.get_write_buffer_size():
            try:
                await self.drain()  # waits only while the buffer is over its high-water mark
            except (ConnectionError, ssl.SSLError):
                return b""
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise StreamTimeout(f"no data from the client for {timeout:g} s") from None
        except (ConnectionError, ssl.SSLError):
            # A reset or a broken TLS record ends the conversation exactly like a close.
            return b""

    def buffered(self) -> int:
        """How many received bytes wait in the reader, not yet returned by ``read``."""
        # StreamReader has no public accessor; its buffer is a stable part of CPython's streams.
        buffer = getattr(self._reader, "_buffer", b"")
        return len(buffer)

    def at_eof(self) -> bool:
        return self._reader.at_eof()

    def interrupt(self, exc: Exception) -> None:
        """Makes the pending and every later ``read`` raise ``exc``."""
        self._reader.set_exception(exc)

    def ack_promptly(self) -> None:
        """Turns Linux's delayed acknowledgement off until the kernel next turns it on (it does
        when this side writes soon after reading), so a client's segment is acknowledged as
        soon as it is read. A client that writes one command in two pieces with Nagle's
        algorithm on (Python's imaplib sends a literal, then its CRLF) holds the second piece
        until the first is acknowledged; with the acknowledgement delayed, that costs 40 ms
        per command (an APPEND: 44 ms instead of 1.4). Dovecot sets the same option."""
        if self._quickack is None:
            return
        try:
            self._quickack.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        except OSError:  # not TCP (a Unix socket in tests), or the connection is gone
            self._quickack = None

    # --- writing ------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self._closed:
            self._writer.write(data)

    async def drain(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Waits until the transport's buffer is below its high-water mark."""
        transport = self._writer.transport
        if not transport.get_write_buffer_size() and not transport.is_closing():
            # All of it went to the socket at once (the usual case for a reply): nothing to wait
            # for, so no timer is armed and cancelled again (a few µs per reply).
            return
        limit = self.write_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                await self._writer.drain()
        except TimeoutError:
            raise StreamTimeout(f"the client took no data for {limit:g} s") from None

    async def send(self, data: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.write(data)
        await self.drain(timeout)

    # --- TLS ----------------------------------------------------------------------------------

    async def start_tls(self, context: ssl.SSLContext, *, handshake_timeout: float) -> int:
        """Server side of STARTTLS: flush the go-ahead reply, then the handshake.

        Returns how many clear-text bytes were buffered and thrown away (RFC 3207 §4: nothing
        sent before the handshake may be used after it); raises ``TLSHandshakeFailed`` when the
        handshake fails or takes longer than the timeout.
        """
        await self.drain()
        discarded = self._discard_buffered()
        try:
            # No yield between the discard above and asyncio pausing the socket's reads: the
            # writer's buffer is empty, so StreamWriter.drain returns without suspending.
            await self._writer.start_tls(context, ssl_handshake_timeout=handshake_timeout)
        except (OSError, ssl.SSLError, TimeoutError) as e:
            raise TLSHandshakeFailed(str(e) or type(e).__name__) from e
        return discarded

    def _discard_buffered(self) -> int:
        # StreamReader has no public way to drop its buffer; see ``buffered``.
        buffer = getattr(self._reader, "_buffer", None)
        if not isinstance(buffer, bytearray):
            return 0
        count = len(buffer)
        buffer.clear()
        return count

    @property
    def tls(self) -> TLSInfo | None:
        obj = self._writer.get_extra_info("ssl_object")
        if not isinstance(obj, ssl.SSLObject | ssl.SSLSocket):
            return None
        cipher = obj.cipher()
        version = obj.version() or ""
        if cipher is None:
            return TLSInfo(version, "", 0)
        return TLSInfo(version, cipher[0], cipher[2])

    # --- closing ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed or self._writer.is_closing()

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109
        """Flushes what was written (within ``timeout``), then closes the connection."""
        if self._closed:
            return
        self._closed = True
        try:
            async with asyncio.timeout(timeout):
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    await self._writer.drain()
                if self.buffered() or self._unread_in_kernel():
                    await self._linger()
                self._writer.close()
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    await self._writer.wait_closed()
        except TimeoutError:
            self._writer.transport.abort()

    def _unread_in_kernel(self) -> int:
        """Bytes the client sent that are still in the socket's receive queue."""
        sock = self._writer.get_extra_info("socket")
        # A STARTTLS handshake the client broke off leaves the transport closed: no socket.
        if sock is None or sock.fileno() < 0:
            return 0
        try:
            raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return int(struct.unpack("i", raw)[0])

    async def _linger(self) -> None:
        """The client sent more than was read (a pipelined flood cut short by a limit).

        Closing now would make the kernel answer the unread bytes with a reset, which can
        destroy the last reply still in flight (the 421 saying why). So: half-close where the
        transport can, then read and discard what still comes, for at most ``LINGER_TIMEOUT``.
        """
        transport = self._writer.transport
        if transport.can_write_eof():
            transport.write_eof()
        with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError, StreamError):
            async with asyncio.timeout(LINGER_TIMEOUT):
                while await self._reader.read(DEFAULT_READ_SIZE):
                    pass

    def abort(self) -> None:
        """Drops the connection at once, discarding unsent bytes."""
        self._closed = True
        self._writer.transport.abort()
