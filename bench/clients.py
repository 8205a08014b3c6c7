"""Small asyncio clients for SMTP, IMAP and POP3: just enough protocol to drive load.

Theory of operation
-------------------
Each client owns one connection and speaks the standard protocol, nothing server-specific, so
the same code measures courriel, Dovecot and Postfix. Replies are read in bulk where the
protocol allows (a POP3 RETR is one ``readuntil`` of the CRLF.CRLF terminator, an IMAP literal
one ``readexactly``), because a load generator that parses byte by byte in Python would measure
itself. IMAP and POP3 connect with implicit TLS (port 993 and 995 style) by default: courriel
refuses passwords in cleartext, and every server is measured over the same transport. Every
read has a deadline: a server that stops answering costs ``timeout`` seconds and
raises ``ClientError``, never a hang.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

READ_LIMIT = 16 * 1024 * 1024  # the longest line or terminator-delimited block accepted
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class ClientError(Exception):
    """The server answered something the workload cannot go on from, or did not answer."""


def dot_stuff(message: bytes) -> bytes:
    """The message as SMTP DATA content, with the terminating ".CRLF" (RFC 5321 §4.5.2)."""
    body = message if message.endswith(b"\r\n") else message + b"\r\n"
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def quote(text: str) -> bytes:
    """An IMAP quoted string (RFC 9051 §4.3)."""
    return b'"' + text.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class _Conn:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout

    async def _line(self) -> bytes:
        try:
            async with asyncio.timeout(self.timeout):
                line = await self.reader.readline()
        except TimeoutError:
            raise ClientError("no answer within the time limit") from None
        if not line:
            raise ClientError("the server closed the connection")
        return line

    async def _greeting(self, read: Callable[[], Awaitable[bytes]]) -> bytes:
        """The server's first words; the connection is closed if they do not come."""
        try:
            return await read()
        except BaseException:
            self.writer.close()
            raise

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await self.writer.wait_closed()


@functools.cache
def client_tls() -> ssl.SSLContext:
    """TLS for loopback connections to servers with certificates made for this run.

    The servers' certificates are self-signed and thrown away after the run, so there is
    nothing to verify them against; what is measured is the server's side of TLS.
    """
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _open(
    host: str, port: int, seconds: float, tls: bool
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = client_tls() if tls else None
    try:
        async with asyncio.timeout(seconds):
            return await asyncio.open_connection(host, port, limit=READ_LIMIT, ssl=context)
    except TimeoutError:
        raise ClientError(f"cannot connect to {host}:{port} within {seconds} s") from None


class SmtpClient(_Conn):
    @classmethod
    async def connect(cls, host: str, port: int, seconds: float = 30) -> tuple[SmtpClient, bytes]:
        reader, writer = await _open(host, port, seconds, tls=False)
        client = cls(reader, writer, seconds)

        async def greeting() -> bytes:
            code, text = await client.reply()
            return str(code).encode() + b" " + text

        return client, await client._greeting(greeting)

    async def reply(self) -> tuple[int, bytes]:
        """One (possibly multi-line) reply: its code and its last line's text."""
        while True:
            line = await self._line()
            if len(line) < 4 or not line[:3].isdigit():
                raise ClientError(f"not an SMTP reply: {line[:80]!r}")
            if line[3:4] != b"-":
                return int(line[:3]), line[4:].rstrip()

    async def command(self, line: bytes) -> tuple[int, bytes]:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    async def expect(self, line: bytes, code: int) -> None:
        got, text = await self.command(line)
        if got != code:
            raise ClientError(f"{line[:40]!r}: expected {code}, got {got} {text[:80]!r}")

    async def starttls(self, ehlo: bytes) -> None:
        """EHLO, STARTTLS and EHLO again over TLS (RFC 3207 §4.2: the session starts over)."""
        await self.expect(b"EHLO " + ehlo, 250)
        await self.expect(b"STARTTLS", 220)
        try:
            async with asyncio.timeout(self.timeout):
                await self.writer.start_tls(client_tls())
        except TimeoutError:
            raise ClientError("TLS handshake not finished within the time limit") from None
        await self.expect(b"EHLO " + ehlo, 250)

    async def login(self, user: str, password: str) -> None:
        """AUTH PLAIN with the initial response (RFC 4954 §4, RFC 4616)."""
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        code, text = await self.command(b"AUTH PLAIN " + token)
        if code != 235:
            raise ClientError(f"AUTH refused: {code} {text[:80]!r}")

    async def send_mail(self, sender: str, rcpt: str, stuffed: bytes) -> float:
        """One transaction; ``stuffed`` is ``dot_stuff``'s output. Returns when the 250 came."""
        await self.expect(b"MAIL FROM:<" + sender.encode() + b">", 250)
        await self.expect(b"RCPT TO:<" + rcpt.encode() + b">", 250)
        await self.expect(b"DATA", 354)
        self.writer.write(stuffed)
        code, text = await self.reply()
        if code != 250:
            raise ClientError(f"message refused: {code} {text[:80]!r}")
        return time.perf_counter()

    async def quit(self) -> None:
        with contextlib.suppress(ClientError, OSError):
            await self.command(b"QUIT")
        await self.close()


@dataclass(frozen=True, slots=True)
class ImapResponse:
    status: bytes  # OK, NO or BAD
    text: bytes
    untagged: tuple[bytes, ...]  # each with its literals inlined


class ImapClient(_Conn):
    _tag = 0

    @classmethod
    async def connect(
        cls, host: str, port: int, seconds: float = 30, *, tls: bool = True
    ) -> tuple[ImapClient, bytes]:
        """Connects with implicit TLS unless ``tls`` is False."""
        reader, writer = await _open(host, port, seconds, tls)
        client = cls(reader, writer, seconds)
        return client, (await client._greeting(client._line)).rstrip()

    def _next_tag(self) -> bytes:
        self._tag += 1
        return b"b%d" % self._tag

    async def read_item(self) -> bytes:
        """One response line with every literal it announces read in (RFC 9051 §4.3)."""
        out = bytearray(await self._line())
        while (m := _LITERAL.search(out)) is not None:
            try:
                async with asyncio.timeout(self.timeout):
                    out += await self.reader.readexactly(int(m.group(1)))
            except TimeoutError:
                raise ClientError("literal not sent within the time limit") from None
            except asyncio.IncompleteReadError:
                raise ClientError("the server closed the connection in a literal") from None
            out += await self._line()
        return bytes(out)

    async def _until_tagged(self, tag: bytes) -> ImapResponse:
        untagged: list[bytes] = []
        while True:
            item = await self.read_item()
            if item.startswith(tag + b" "):
                status, _, text = item[len(tag) + 1 :].rstrip().partition(b" ")
                return ImapResponse(status, text, tuple(untagged))
            if item.startswith(b"+"):
                raise ClientError(f"unexpected continuation: {item[:80]!r}")
            untagged.append(item)

    async def command(self, text: bytes, literal: bytes | None = None) -> ImapResponse:
        tag = self._next_tag()
        if literal is None:
            self.writer.write(tag + b" " + text + b"\r\n")
        else:
            # A synchronising literal works on every server (RFC 9051 §4.3).
            self.writer.write(tag + b" " + text + b" {%d}\r\n" % len(literal))
            first = await self.read_item()
            if not first.startswith(b"+"):
                raise ClientError(f"literal refused: {first[:80]!r}")
            self.writer.write(literal + b"\r\n")
        return await self._until_tagged(tag)

    async def ok(self, text: bytes, literal: bytes | None = None) -> ImapResponse:
        resp = await self.command(text, literal)
        if resp.status != b"OK":
            raise ClientError(f"{text[:40]!r}: {resp.status!r} {resp.text[:80]!r}")
        return resp

    async def login(self, user: str, password: str) -> None:
        await self.ok(b"LOGIN " + quote(user) + b" " + quote(password))

    async def idle(self) -> bytes:
        """Sends IDLE and waits for the continuation (RFC 2177); returns the tag for ``done``."""
        tag = self._next_tag()
        self.writer.write(tag + b" IDLE\r\n")
        while True:
            item = await self.read_item()
            if item.startswith(b"+"):
                return tag
            if item.startswith(tag + b" "):
                raise ClientError(f"IDLE refused: {item[:80]!r}")

    async def wait_for(self, suffix: bytes, seconds: float) -> bytes:
        """Reads untagged responses until one ends with ``suffix`` (e.g. b" EXISTS")."""
        async with asyncio.timeout(seconds):
            while True:
                item = (await self.read_item()).rstrip()
                if item.startswith(b"* ") and item.endswith(suffix):
                    return item

    async def done(self, tag: bytes) -> ImapResponse:
        self.writer.write(b"DONE\r\n")
        return await self._until_tagged(tag)

    async def logout(self) -> None:
        with contextlib.suppress(ClientError, OSError):
            await self.command(b"LOGOUT")
        await self.close()


class Pop3Client(_Conn):
    @classmethod
    async def connect(
        cls, host: str, port: int, seconds: float = 30, *, tls: bool = True
    ) -> tuple[Pop3Client, bytes]:
        """Connects with implicit TLS unless ``tls`` is False."""
        reader, writer = await _open(host, port, seconds, tls)
        client = cls(reader, writer, seconds)
        return client, (await client._greeting(client._line)).rstrip()

    async def command(self, line: bytes) -> bytes:
        self.writer.write(line + b"\r\n")
        reply = (await self._line()).rstrip()
        if not reply.startswith(b"+OK"):
            shown = b"PASS ..." if line.startswith(b"PASS") else line[:40]
            raise ClientError(f"{shown!r}: {reply[:80]!r}")
        return reply

    async def login(self, user: str, password: str) -> None:
        await self.command(b"USER " + user.encode())
        await self.command(b"PASS " + password.encode())

    async def retr(self, number: int) -> int:
        """Retrieves one message; returns its size as sent (dot-stuffed, RFC 1939 §3)."""
        await self.command(b"RETR %d" % number)
        try:
            async with asyncio.timeout(self.timeout):
                block = await self.reader.readuntil(b"\r\n.\r\n")
        except TimeoutError:
            raise ClientError("RETR not answered within the time limit") from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            raise ClientError(f"RETR answer cut short: {e}") from None
        return len(block) - 3

    async def quit(self) -> None:
        with contextlib.suppress(ClientError, OSError):
            await self.command(b"QUIT")
        await self.close()
