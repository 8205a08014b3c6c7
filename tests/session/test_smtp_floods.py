"""SMTP over real sockets: a client cannot make a session wait for ever or work for ever.

A pipelined flood of 200,000 NOOPs that the client never reads ends with the junk-command
limit's 421 after a few hundred replies (Postfix's junk command limit), and an announced BDAT
chunk of 2^64 octets is refused at once instead of being waited for until the data timeout.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from courriel.testing.smtp import greet, smtp_server


async def test_noop_flood_that_is_never_read_is_closed_at_once(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        client = await server.connect()
        await greet(client)
        started = time.monotonic()
        client.writer.write(b"NOOP\r\n" * 200_000)  # 1.2 MB, sent without reading a reply
        # The server stops after max_junk_commands (100) plus the error budget (20).
        replies = await asyncio.wait_for(client.reader.read(), 10)
        assert time.monotonic() - started < 10
        lines = replies.split(b"\r\n")
        assert lines[-2] == b"421 4.7.0 too many errors, closing the connection"
        assert lines.count(b"250 2.0.0 OK") == 100 + 20  # the 20th counted one, then 421
        await client.close()


async def test_bdat_of_two_to_the_64_is_refused_at_once(tmp_path: Path) -> None:
    async with smtp_server(tmp_path) as server:
        await server.add_user("alice@example.test")
        client = await server.connect()
        await greet(client)
        await client.envelope("bob@example.net", "alice@example.test")
        started = time.monotonic()
        code, text = await client.command("BDAT 18446744073709551616 LAST")
        assert code == 552 and text.startswith("5.3.4 BDAT chunk far over the ")
        assert await client.closed()
        assert time.monotonic() - started < 5  # not the 3-minute data timeout
        assert await server.inbox("alice@example.test") == []
        await client.close()
