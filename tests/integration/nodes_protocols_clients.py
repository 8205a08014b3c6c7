"""Small asyncio IMAP and POP3 clients for the two-node protocol tests.

Theory of operation
-------------------
The tests need to see the server's exact lines (``* 3 EXISTS``, ``* 1 FETCH (FLAGS (...))``,
``-ERR [IN-USE] ...``) with a bound on every wait, while several sessions on two nodes run at
once in one event loop. A blocking library client would hide the lines and need a thread per
session, so these clients speak the protocols directly over TLS streams.

``Imap.read_response`` reads one response: a line, and where it ends in a literal ``{n}``
(RFC 9051 §4.3) the ``n`` octets and the rest of the line, repeated; the text keeps the literal
markers and the literal octets are returned apart, byte for byte. ``Imap.command`` sends a
tagged command and gathers the untagged responses until its tagged completion, which must be
OK. ``Imap.idle`` and ``Imap.wait_for`` drive IDLE (RFC 2177; RFC 9051 §6.3.13): wait for a
response matching a pattern, failing with everything seen when the deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import ssl
import time
from dataclasses import dataclass

LITERAL_END = re.compile(rb"\{(\d+)\}$")
READ_TIMEOUT = 10.0  # seconds any single server reply may take


@dataclass(frozen=True, slots=True)
class Response:
    """One IMAP response: its text (literal markers kept) and its literals, in order."""

    text: bytes
    literals: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Completed:
    """A command's untagged responses and its tagged completion."""

    untagged: tuple[Response, ...]
    tagged: Response


class Imap:
    """One IMAP session over implicit TLS (see the module docstring)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._tags = (f"t{n}" for n in itertools.count(1))
        self._idle_tag: str | None = None

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext) -> Imap:
        async with asyncio.timeout(READ_TIMEOUT):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
            )
        client = cls(reader, writer)
        greeting = await client.read_response()
        assert greeting.text.startswith(b"* OK"), greeting  # RFC 9051 §7.1.1
        return client

    @classmethod
    async def login(cls, port: int, context: ssl.SSLContext, user: str, password: str) -> Imap:
        client = await cls.connect(port, context)
        await client.command(f"LOGIN {quote(user)} {quote(password)}")
        return client

    async def _line(self) -> bytes:
        async with asyncio.timeout(READ_TIMEOUT):
            line = await self.reader.readuntil(b"\r\n")
        return line[:-2]

    async def read_response(self) -> Response:
        text, literals = b"", list[bytes]()
        while True:
            line = await self._line()
            text += line
            size = LITERAL_END.search(line)
            if size is None:
                return Response(text, tuple(literals))
            async with asyncio.timeout(READ_TIMEOUT):
                literals.append(await self.reader.readexactly(int(size.group(1))))

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout(READ_TIMEOUT):
            await self.writer.drain()

    async def _until_tagged(self, tag: str) -> Completed:
        untagged: list[Response] = []
        prefix = tag.encode() + b" "
        while True:
            response = await self.read_response()
            if not response.text.startswith(prefix):
                untagged.append(response)
                continue
            done = Completed(tuple(untagged), response)
            assert response.text.startswith(prefix + b"OK"), done
            return done

    async def command(self, command: str, literal: bytes | None = None) -> Completed:
        """Runs one command; ``literal`` is sent as a synchronizing literal at its end."""
        tag = next(self._tags)
        if literal is None:
            await self._send(f"{tag} {command}\r\n".encode())
            return await self._until_tagged(tag)
        await self._send(f"{tag} {command} {{{len(literal)}}}\r\n".encode())
        go_ahead = await self.read_response()
        assert go_ahead.text.startswith(b"+"), go_ahead  # RFC 9051 §7.5
        await self._send(literal + b"\r\n")
        return await self._until_tagged(tag)

    async def idle(self) -> None:
        tag = next(self._tags)
        await self._send(f"{tag} IDLE\r\n".encode())
        go_ahead = await self.read_response()
        assert go_ahead.text.startswith(b"+"), go_ahead  # RFC 2177 §3
        self._idle_tag = tag

    async def wait_for(self, pattern: bytes, deadline: float) -> tuple[Response, list[Response]]:
        """The first response matching ``pattern`` before ``deadline`` (time.monotonic), and
        every response read up to it."""
        seen: list[Response] = []
        wanted = re.compile(pattern)
        try:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                while True:
                    response = await self.read_response()
                    seen.append(response)
                    if wanted.fullmatch(response.text):
                        return response, seen
        except TimeoutError:
            shown = [r.text for r in seen]
            raise AssertionError(f"no {pattern!r} before the deadline; saw {shown!r}") from None

    async def done(self) -> Completed:
        tag, self._idle_tag = self._idle_tag, None
        assert tag is not None, "not idling"
        await self._send(b"DONE\r\n")  # RFC 2177 §3
        return await self._until_tagged(tag)

    async def close(self) -> None:
        """LOGOUT where the session still answers; the connection is closed in any case."""
        # If the test has failed already or the server is gone, closing is what matters.
        try:
            with contextlib.suppress(
                AssertionError, OSError, TimeoutError, asyncio.IncompleteReadError
            ):
                if self._idle_tag is None:
                    await self.command("LOGOUT")
        finally:
            self.writer.close()
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    await self.writer.wait_closed()
            except (OSError, TimeoutError):
                pass


def quote(text: str) -> str:
    """An IMAP quoted string (RFC 9051 §4.3)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def appenduid(done: Completed) -> tuple[int, int]:
    """(UIDVALIDITY, UID) of ``[APPENDUID ...]`` in an APPEND's OK (RFC 4315 §3)."""
    found = re.search(rb"\[APPENDUID (\d+) (\d+)\]", done.tagged.text)
    assert found is not None, done.tagged
    return int(found.group(1)), int(found.group(2))


class Pop3:
    """One POP3 session over implicit TLS: single-line commands only."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, context: ssl.SSLContext) -> Pop3:
        async with asyncio.timeout(READ_TIMEOUT):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
            )
        client = cls(reader, writer)
        greeting = await client.line()
        assert greeting.startswith("+OK"), greeting  # RFC 1939 §4
        return client

    async def line(self) -> str:
        async with asyncio.timeout(READ_TIMEOUT):
            raw = await self.reader.readuntil(b"\r\n")
        return raw[:-2].decode()

    async def command(self, command: str) -> str:
        """Sends one command and returns its status line (``+OK ...`` or ``-ERR ...``)."""
        self.writer.write(command.encode() + b"\r\n")
        async with asyncio.timeout(READ_TIMEOUT):
            await self.writer.drain()
        return await self.line()

    async def login(self, user: str, password: str) -> str:
        """USER then PASS (RFC 1939 §7); the reply to PASS."""
        said = await self.command(f"USER {user}")
        assert said.startswith("+OK"), said
        return await self.command(f"PASS {password}")

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                await self.writer.wait_closed()
        except (OSError, TimeoutError):
            pass
