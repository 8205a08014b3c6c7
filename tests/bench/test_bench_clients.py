"""The load clients' protocol reading, against real loopback servers that play a script."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from bench.clients import ClientError, ImapClient, Pop3Client, SmtpClient, dot_stuff, quote

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)  # type: ignore[misc]
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def test_dot_stuffing_doubles_leading_dots_and_terminates() -> None:
    assert dot_stuff(b".a\r\nb\r\n.c\r\n") == b"..a\r\nb\r\n..c\r\n.\r\n"
    assert dot_stuff(b"no end") == b"no end\r\n.\r\n"


def test_quote_escapes_backslash_and_quote() -> None:
    assert quote('a"b\\c') == b'"a\\"b\\\\c"'


async def test_smtp_reads_multiline_replies_and_sends_stuffed_data() -> None:
    received: list[bytes] = []

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"220 hello\r\n")
        assert await r.readline() == b"EHLO c\r\n"
        w.write(b"250-first\r\n250-PIPELINING\r\n250 last\r\n")
        for reply in (b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n"):
            await r.readline()
            w.write(reply)
        received.append(await r.readuntil(b"\r\n.\r\n"))
        w.write(b"250 queued\r\n")
        await w.drain()

    async with scripted(script) as port:
        client, greeting = await SmtpClient.connect("127.0.0.1", port)
        assert greeting == b"220 hello"
        assert await client.command(b"EHLO c") == (250, b"last")
        await client.send_mail("a@x.test", "b@y.test", dot_stuff(b".x\r\n"))
        await client.close()
    assert received == [b"..x\r\n.\r\n"]


async def test_smtp_refusal_is_a_client_error() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"220 hi\r\n")
        await r.readline()
        w.write(b"550 5.1.1 no such user\r\n")
        await w.drain()

    async with scripted(script) as port:
        client, _ = await SmtpClient.connect("127.0.0.1", port)
        with pytest.raises(ClientError, match="expected 250, got 550"):
            await client.expect(b"MAIL FROM:<a@x.test>", 250)
        await client.close()


async def test_imap_reads_literals_inside_responses() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"* OK ready\r\n")
        line = await r.readline()
        tag = line.split()[0]
        w.write(b"* 1 FETCH (BODY[] {5}\r\nab\r\nc UID 4)\r\n* 2 FETCH (BODY[] {0}\r\n)\r\n")
        w.write(tag + b" OK done\r\n")
        await w.drain()

    async with scripted(script) as port:
        client, greeting = await ImapClient.connect("127.0.0.1", port, tls=False)
        assert greeting == b"* OK ready"
        resp = await client.ok(b"FETCH 1:2 BODY[]")
        await client.close()
    assert resp.untagged == (
        b"* 1 FETCH (BODY[] {5}\r\nab\r\nc UID 4)\r\n",
        b"* 2 FETCH (BODY[] {0}\r\n)\r\n",
    )
    assert resp.text == b"done"


async def test_imap_append_waits_for_the_continuation() -> None:
    got: list[bytes] = []

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"* OK ready\r\n")
        line = await r.readline()
        assert line.endswith(b" APPEND INBOX {3}\r\n")
        w.write(b"+ go ahead\r\n")
        got.append(await r.readexactly(5))
        w.write(line.split()[0] + b" OK [APPENDUID 1 9] done\r\n")
        await w.drain()

    async with scripted(script) as port:
        client, _ = await ImapClient.connect("127.0.0.1", port, tls=False)
        resp = await client.ok(b"APPEND INBOX", b"abc")
        await client.close()
    assert got == [b"abc\r\n"]
    assert resp.text.startswith(b"[APPENDUID")


async def test_imap_idle_and_exists() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"* OK ready\r\n")
        tag = (await r.readline()).split()[0]
        w.write(b"+ idling\r\n* 3 RECENT\r\n* 3 EXISTS\r\n")
        assert await r.readline() == b"DONE\r\n"
        w.write(tag + b" OK IDLE terminated\r\n")
        await w.drain()

    async with scripted(script) as port:
        client, _ = await ImapClient.connect("127.0.0.1", port, tls=False)
        tag = await client.idle()
        assert await client.wait_for(b" EXISTS", 5) == b"* 3 EXISTS"
        assert (await client.done(tag)).status == b"OK"
        await client.close()


async def test_pop3_retr_reads_to_the_terminator() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"+OK ready\r\n")
        await r.readline()
        w.write(b"+OK 11 octets\r\nline\r\n..dot\r\n.\r\n")
        await r.readline()
        w.write(b"-ERR no such message\r\n")
        await w.drain()

    async with scripted(script) as port:
        client, greeting = await Pop3Client.connect("127.0.0.1", port, tls=False)
        assert greeting == b"+OK ready"
        assert await client.retr(1) == len(b"line\r\n..dot\r\n")
        with pytest.raises(ClientError, match="no such message"):
            await client.retr(2)
        await client.close()


async def test_a_silent_server_costs_the_timeout_not_a_hang() -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2)

    async with scripted(script) as port:
        with pytest.raises(ClientError, match="time limit"):
            await Pop3Client.connect("127.0.0.1", port, seconds=0.2, tls=False)
