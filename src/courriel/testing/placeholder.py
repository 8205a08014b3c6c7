"""Minimal protocol handlers: an honest "service not available" greeting and refusal.

The listener and TLS tests use them to exercise the runtime without a protocol engine; they
were also the stand-ins while the engines were being built.

Theory of operation
-------------------
Each function returns the ``ProtocolHandlers`` of one protocol: a handler that greets with the
protocol's own "service not available" reply and closes, and the protocol's refusal for
connection limits and shutdown. A client therefore learns in its own language that the service is
off, instead of hanging or reading a foreign banner.

The refusal lines are the same ones the real engines send:

* SMTP: ``421`` closes the transmission channel (RFC 5321 §3.8), with an enhanced status code
  (RFC 3463): 4.7.0 for a policy limit, 4.3.2 for a system not accepting messages.
* IMAP: an untagged ``BYE`` (RFC 9051 §7.1.5) with the ``UNAVAILABLE`` response code (RFC 5530).
* POP3: ``-ERR`` (RFC 1939 §3) with the ``SYS/TEMP`` or ``SYS/PERM`` code (RFC 3206 §4).
"""

from __future__ import annotations

from courriel.net.listener import ConnectionContext, ProtocolHandlers, Refusal
from courriel.net.stream import Stream


def _line(text: str) -> bytes:
    # Replies are single lines; a name must not be able to smuggle a second one in.
    return text.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace") + b"\r\n"


def smtp(hostname: str) -> ProtocolHandlers:
    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        # RFC 5321 §3.1: a 554 greeting says no service; the client must not send mail.
        line = f"554 5.3.2 {hostname} courriel: SMTP service not enabled in this build"
        await stream.send(_line(line))

    async def refuse(stream: Stream, refusal: Refusal) -> None:
        # RFC 3463: 4.3.2 "system not accepting network messages", 4.7.0 "security or policy".
        code = "4.3.2" if refusal is Refusal.SHUTTING_DOWN else "4.7.0"
        await stream.send(_line(f"421 {code} {hostname} {refusal.value}"))  # RFC 5321 §3.8

    return ProtocolHandlers(serve=serve, refuse=refuse)


def imap(hostname: str) -> ProtocolHandlers:
    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        # RFC 9051 §7.1.5: BYE as the greeting means the server will not serve this connection.
        line = "* BYE [UNAVAILABLE] courriel: IMAP service not enabled in this build"
        await stream.send(_line(line))

    async def refuse(stream: Stream, refusal: Refusal) -> None:
        await stream.send(_line(f"* BYE [UNAVAILABLE] {hostname} {refusal.value}"))  # RFC 5530

    return ProtocolHandlers(serve=serve, refuse=refuse)


def pop3(hostname: str) -> ProtocolHandlers:
    async def serve(stream: Stream, ctx: ConnectionContext) -> None:
        # RFC 3206 §4: SYS/PERM says retrying will not help.
        line = "-ERR [SYS/PERM] courriel: POP3 service not enabled in this build"
        await stream.send(_line(line))

    async def refuse(stream: Stream, refusal: Refusal) -> None:
        # RFC 3206 §4: SYS/TEMP says to try again later.
        await stream.send(_line(f"-ERR [SYS/TEMP] {hostname} {refusal.value}"))

    return ProtocolHandlers(serve=serve, refuse=refuse)
