"""A small asyncio IMAP client that shows the caller every untagged response.

Theory of operation
-------------------
``Client.command`` sends one tagged command and reads until its tagged completion, returning the
untagged responses in the order they arrived together with the completion. Responses are read as
the server framed them: a line ending in a literal announcement ``{n}`` (or ``{n+}``) is followed
by exactly n octets and the rest of the response, so a literal is never mistaken for protocol
lines. ``parse`` turns one response into nested Python lists: atoms and quoted strings become
``str``, literals ``bytes``, parenthesised lists ``list``; that is enough for the FETCH, SEARCH,
VANISHED, EXISTS and EXPUNGE responses the stress test reasons about.

Nothing here judges the server; ``stress_view`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from dataclasses import dataclass

Token = str | bytes | list["Token"]

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
READ_TIMEOUT = 20.0


class ServerClosed(Exception):  # noqa: N818 - reads as "the server closed"
    """The connection ended in the middle of a command."""


@dataclass(frozen=True, slots=True)
class Response:
    """One server response: its text with literals replaced by ``{n}``, and the literals."""

    text: bytes
    literals: tuple[bytes, ...]

    def tokens(self) -> list[Token]:
        return parse(self.text, self.literals)


@dataclass(frozen=True, slots=True)
class Completion:
    tag: str
    status: str  # OK | NO | BAD
    text: str


@dataclass(frozen=True, slots=True)
class Reply:
    untagged: tuple[Response, ...]
    done: Completion


def parse(text: bytes, literals: tuple[bytes, ...]) -> list[Token]:
    """Tokens of one response line (literals substituted in order)."""
    pos = 0
    lit = iter(literals)
    stack: list[list[Token]] = [[]]
    n = len(text)
    while pos < n:
        c = text[pos : pos + 1]
        if c == b" ":
            pos += 1
        elif c == b"(":
            stack.append([])
            pos += 1
        elif c == b")":
            done = stack.pop()
            stack[-1].append(done)
            pos += 1
        elif c == b'"':
            end = pos + 1
            out = bytearray()
            while text[end : end + 1] != b'"':
                if text[end : end + 1] == b"\\":
                    end += 1
                out += text[end : end + 1]
                end += 1
            stack[-1].append(out.decode("utf-8", "replace"))
            pos = end + 1
        elif c == b"{" and (m := re.match(rb"\{\d+\+?\}", text[pos:])):
            stack[-1].append(next(lit))
            pos += m.end()
        else:
            m = re.match(rb"[^ ()\[\]]+(?:\[[^\]]*\])?(?:<\d+>)?|\[|\]", text[pos:])
            assert m is not None
            stack[-1].append(m.group().decode("utf-8", "replace"))
            pos += m.end()
    assert len(stack) == 1, f"unbalanced parentheses in {text!r}"
    return stack[0]


class Client:
    """One IMAP connection; use ``await Client.connect(...)``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._next_tag = 0
        self.greeting: Response | None = None

    @classmethod
    async def connect(cls, host: str, port: int, context: ssl.SSLContext) -> Client:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname="localhost", limit=1 << 20
        )
        client = cls(reader, writer)
        client.greeting = await client._response()
        return client

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self._writer.wait_closed()

    async def _line(self) -> bytes:
        async with asyncio.timeout(READ_TIMEOUT):
            line = await self._reader.readline()
        if not line.endswith(b"\n"):
            raise ServerClosed(f"connection closed after {line!r}")
        return line

    async def _response(self) -> Response:
        text = bytearray()
        literals: list[bytes] = []
        while True:
            line = await self._line()
            m = _LITERAL.search(line)
            if m is None:
                text += line.rstrip(b"\r\n")
                return Response(bytes(text), tuple(literals))
            text += line[: m.start()] + b"{" + m.group(1) + b"}"
            async with asyncio.timeout(READ_TIMEOUT):
                literals.append(await self._reader.readexactly(int(m.group(1))))

    async def command(self, command: str, literal: bytes | None = None) -> Reply:
        """Sends ``TAG command`` (and a synchronising literal after it) and reads the reply."""
        self._next_tag += 1
        tag = f"c{self._next_tag}"
        untagged: list[Response] = []
        if literal is None:
            self._writer.write(f"{tag} {command}\r\n".encode())
        else:
            self._writer.write(f"{tag} {command} {{{len(literal)}}}\r\n".encode())
            await self._writer.drain()
            while True:
                response = await self._response()
                if response.text.startswith(b"+"):
                    break
                if response.text.startswith(tag.encode() + b" "):
                    return Reply(tuple(untagged), _completion(response))
                untagged.append(response)
            self._writer.write(literal + b"\r\n")
        await self._writer.drain()
        while True:
            response = await self._response()
            if response.text.startswith(tag.encode() + b" "):
                return Reply(tuple(untagged), _completion(response))
            untagged.append(response)


def _completion(response: Response) -> Completion:
    tag, status, *rest = response.text.decode("utf-8", "replace").split(" ", 2)
    return Completion(tag, status.upper(), rest[0] if rest else "")
