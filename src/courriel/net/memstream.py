"""Two connected ``Stream`` ends in memory: a session run in-process, without a socket.

Theory of operation
-------------------
``memory_stream_pair()`` returns two ``MemoryStream`` ends; what one writes, the other reads.
Each direction is a ``_Pipe``: a byte buffer with a high-water mark, an end-of-stream flag and
the futures of the tasks waiting for it to change. The ends keep the ``Stream`` contract that
``SocketStream`` keeps over a socket (``net/stream.py``), so the driver cannot tell them apart:

- ``read`` returns what is buffered (at least one byte), ``b""`` once the writer closed and
  everything was read, raises ``StreamTimeout`` after its timeout and, once ``interrupt`` was
  called, the exception it was given;
- ``write`` queues without limit and ``drain`` waits until the other end has read the buffer
  down to the high-water mark (``StreamTimeout`` after the write timeout). ``read`` drains first,
  as a socket stream does: an end takes no input while its own output is not taken;
- ``close`` ends this end's output (the other end reads what is left, then ``b""``); ``abort``
  also throws away what the other end has not read yet, as a reset does. Writing to an end whose
  reader is gone discards the bytes, as a socket does until it reports the reset.

TLS is real TLS, in memory: ``start_tls`` wraps the end in an ``ssl.SSLObject`` between two
``ssl.MemoryBIO`` buffers. The end's records go through its pipe as the bytes of a socket would;
``read`` feeds what arrives to the TLS object until it yields plain bytes, ``write`` encrypts and
queues the records at once. The server side throws away clear text that waits, as
``SocketStream.start_tls`` does; ``start_tls(..., server_hostname=...)`` is the client side.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from courriel.net.stream import (
    CLOSE_TIMEOUT,
    DEFAULT_READ_SIZE,
    DEFAULT_WRITE_TIMEOUT,
    Stream,
    StreamTimeout,
    TLSHandshakeFailed,
    TLSInfo,
)

DEFAULT_LIMIT = 64 * 1024  # bytes a writer may queue before ``drain`` waits, per direction


class _Pipe:
    """One direction: bytes written by one end, not yet read by the other."""

    def __init__(self, limit: int) -> None:
        self.data = bytearray()
        self.limit = limit
        self.eof = False  # the writer closed: no more bytes will come
        self.reader_gone = False  # the reader closed: bytes written now are dropped
        self._waiters: list[asyncio.Future[None]] = []

    def changed(self) -> None:
        """Wakes every task waiting on this pipe; each checks its own condition again."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, ready: Callable[[], bool]) -> None:
        while not ready():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)


class MemoryStream:
    """One end of a ``memory_stream_pair``; implements ``courriel.net.stream.Stream``."""

    def __init__(
        self,
        incoming: _Pipe,
        outgoing: _Pipe,
        *,
        peer: tuple[str, int],
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    ) -> None:
        self._in = incoming
        self._out = outgoing
        self._peer = peer
        self.write_timeout = write_timeout
        self._closed = False
        self._exception: Exception | None = None
        # Once ``start_tls`` succeeded: the TLS object and its two buffers (see the docstring).
        self._tls: ssl.SSLObject | None = None
        self._tls_in = ssl.MemoryBIO()
        self._tls_out = ssl.MemoryBIO()
        self._tls_eof = False
        self.prompt_acks = 0  # calls of ack_promptly, for tests of the driver

    @property
    def peer(self) -> tuple[str, int]:
        return self._peer

    # --- reading ------------------------------------------------------------------------------

    async def read(
        self,
        max_bytes: int = DEFAULT_READ_SIZE,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> bytes:
        if self._exception is not None:
            raise self._exception
        if len(self._out.data) > self._out.limit:
            await self.drain()  # backpressure, as SocketStream.read does
        try:
            async with asyncio.timeout(timeout):
                if self._tls is None:
                    return await self._read_raw(max_bytes)
                return await self._read_tls(self._tls, max_bytes)
        except TimeoutError:
            raise StreamTimeout(f"no data from the client for {timeout:g} s") from None

    async def _read_raw(self, max_bytes: int) -> bytes:
        pipe = self._in
        await pipe.wait(
            lambda: bool(pipe.data) or pipe.eof or self._closed or self._exception is not None
        )
        if self._exception is not None:
            raise self._exception
        data = bytes(pipe.data[:max_bytes])
        del pipe.data[:max_bytes]
        pipe.changed()  # a writer waiting in drain may go on
        return data

    async def _read_tls(self, tls: ssl.SSLObject, max_bytes: int) -> bytes:
        while True:
            try:
                return tls.read(max_bytes)  # b"" after the peer's close_notify
            except ssl.SSLWantReadError:
                self._flush_tls()  # what TLS itself wants to say (session tickets)
            except ssl.SSLError:
                # A broken record or an end without close_notify: over, as SocketStream says.
                self._tls_eof = True
                return b""
            raw = await self._read_raw(DEFAULT_READ_SIZE)
            if raw:
                self._tls_in.write(raw)
            else:
                self._tls_in.write_eof()

    def buffered(self) -> int:
        pending = self._tls.pending() if self._tls is not None else 0
        return len(self._in.data) + self._tls_in.pending + pending

    def at_eof(self) -> bool:
        if self._tls is not None:
            return self._tls_eof or (self._in.eof and not self.buffered())
        return self._in.eof and not self._in.data

    def interrupt(self, exc: Exception) -> None:
        self._exception = exc
        self._in.changed()

    # --- writing ------------------------------------------------------------------------------

    def ack_promptly(self) -> None:
        """Counted (``prompt_acks``): a pipe has no acknowledgements to hurry."""
        self.prompt_acks += 1

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        if self._tls is None:
            self._write_raw(data)
            return
        try:
            self._tls.write(data)
        except ssl.SSLError:
            return  # the TLS session is broken; the peer reads the end of the stream
        self._flush_tls()

    def _write_raw(self, data: bytes) -> None:
        if self._out.reader_gone:
            return
        self._out.data += data
        self._out.changed()

    def _flush_tls(self) -> None:
        if self._tls_out.pending:
            self._write_raw(self._tls_out.read())

    async def drain(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        limit = self.write_timeout if timeout is None else timeout
        pipe = self._out
        try:
            async with asyncio.timeout(limit):
                await pipe.wait(lambda: len(pipe.data) <= pipe.limit or pipe.reader_gone)
        except TimeoutError:
            raise StreamTimeout(f"the client took no data for {limit:g} s") from None

    async def send(self, data: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.write(data)
        await self.drain(timeout)

    # --- TLS ----------------------------------------------------------------------------------

    async def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        handshake_timeout: float,
        server_hostname: str | None = None,
    ) -> int:
        """The server side of STARTTLS as ``SocketStream.start_tls`` does it (clear text that
        waits is thrown away and counted); with ``server_hostname``, the client side."""
        if self._tls is not None:
            raise TLSHandshakeFailed("TLS is already active")
        await self.drain()
        server_side = server_hostname is None
        discarded = 0
        if server_side:
            # No yield between the discard and the handshake: nothing sent in clear is kept.
            discarded = len(self._in.data)
            self._in.data.clear()
            self._in.changed()
        tls = context.wrap_bio(
            self._tls_in, self._tls_out, server_side=server_side, server_hostname=server_hostname
        )
        try:
            async with asyncio.timeout(handshake_timeout):
                await self._handshake(tls)
        except (ssl.SSLError, TimeoutError) as e:
            self._flush_tls()  # the alert, so the peer learns why
            raise TLSHandshakeFailed(str(e) or type(e).__name__) from e
        self._tls = tls
        return discarded

    async def _handshake(self, tls: ssl.SSLObject) -> None:
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush_tls()
                raw = await self._read_raw(DEFAULT_READ_SIZE)
                if not raw:
                    raise TLSHandshakeFailed("connection closed during the TLS handshake") from None
                self._tls_in.write(raw)
                continue
            self._flush_tls()
            return

    @property
    def tls(self) -> TLSInfo | None:
        if self._tls is None:
            return None
        cipher = self._tls.cipher()
        version = self._tls.version() or ""
        if cipher is None:
            return TLSInfo(version, "", 0)
        return TLSInfo(version, cipher[0], cipher[2])

    # --- closing ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109
        """Ends the output (after TLS's close_notify); what was written stays for the other end
        to read."""
        if self._tls is not None and not self._closed:
            # unwrap() wants the peer's close_notify too; ours is written either way.
            with contextlib.suppress(ssl.SSLError):
                self._tls.unwrap()
            self._flush_tls()
        self._shut(discard=False)

    def abort(self) -> None:
        """Ends both directions at once; the other end loses what it had not read yet."""
        self._shut(discard=True)

    def _shut(self, *, discard: bool) -> None:
        self._closed = True
        self._out.eof = True
        self._in.reader_gone = True
        self._in.data.clear()  # nobody will read it; a writer waiting in drain goes on
        if discard:
            self._out.data.clear()
        self._out.changed()
        self._in.changed()


def memory_stream_pair(
    *,
    limit: int = DEFAULT_LIMIT,
    client_peer: tuple[str, int] = ("192.0.2.1", 50000),
    server_peer: tuple[str, int] = ("192.0.2.2", 0),
) -> tuple[MemoryStream, MemoryStream]:
    """Two connected ends, (client, server). ``client_peer`` is the address the server end
    reports as its peer (``peer``); ``limit`` is each direction's high-water mark."""
    to_server, to_client = _Pipe(limit), _Pipe(limit)
    client = MemoryStream(to_client, to_server, peer=server_peer)
    server = MemoryStream(to_server, to_client, peer=client_peer)
    return client, server


if TYPE_CHECKING:
    # mypy checks here that a memory end is a ``Stream``, member by member.
    _conforms: type[Stream] = MemoryStream
