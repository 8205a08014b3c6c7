"""A tiny SMTP server whose replies a test chooses, for what no real MTA can be made to do.

Theory of operation
-------------------
``Scripted`` answers EHLO with the extensions given, MAIL and RSET with 250, RCPT with the
reply listed for that address (250 otherwise), DATA with 354 and, after the terminator, with
``data_reply``; STARTTLS when a server ``ssl.SSLContext`` is given. It counts connections and
records each command and message (and when it arrived), so a test can check what the client
sent and how fast. A test that needs misbehaviour (garbage, endless replies, a stall) passes
its own ``handler`` instead.
``serve`` listens on ``address:port`` until the block ends and closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Scripted:
    extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES")
    rcpt: dict[str, str] = field(default_factory=dict)  # address -> "550 5.1.1 no such user"
    greeting: str = "220 scripted.test ESMTP"
    mail_reply: str = "250 2.1.0 ok"
    data_reply: str = "250 2.0.0 queued"
    tls: ssl.SSLContext | None = None
    connections: int = 0
    commands: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each message

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(self.greeting.encode() + b"\r\n")
        tls = False
        while line := await reader.readline():
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            self.commands.append(command)
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                ext = [e for e in self.extensions if not (tls and e == "STARTTLS")]
                if self.tls is not None and not tls:
                    ext.append("STARTTLS")
                lines = ["scripted.test", *ext]
                text = "".join(f"250-{x}\r\n" for x in lines[:-1]) + f"250 {lines[-1]}\r\n"
                writer.write(text.encode())
            elif verb == "STARTTLS" and self.tls is not None:
                writer.write(b"220 2.0.0 go ahead\r\n")
                await writer.drain()
                await writer.start_tls(self.tls)
                tls = True
            elif verb == "MAIL":
                writer.write(self.mail_reply.encode() + b"\r\n")
            elif verb == "RCPT":
                address = command.split("<", 1)[-1].split(">", 1)[0]
                writer.write(self.rcpt.get(address, "250 2.1.5 ok").encode() + b"\r\n")
            elif verb == "DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                self.received_at.append(time.monotonic())
                writer.write(self.data_reply.encode() + b"\r\n")
            elif verb == "QUIT":
                writer.write(b"221 2.0.0 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 2.0.0 ok\r\n")
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def serve(address: str, port: int, handler: Handler) -> AsyncIterator[asyncio.Server]:
    """Runs ``handler`` for each connection to ``address:port`` until the block ends."""
    tasks: set[asyncio.Task[None]] = set()

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        # The client going away is what several tests do on purpose.
        quiet = (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)
        try:
            with contextlib.suppress(*quiet):
                await handler(reader, writer)
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(run, address, port, reuse_address=True)
    try:
        yield server
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
