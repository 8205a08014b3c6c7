"""Connection limits of the web listeners, on a listener built directly over a loopback socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from pathlib import Path

import pytest
from aiohttp import web

from courriel import config
from courriel.config import LimitsConfig
from courriel.net.listener import limit_key
from courriel.net.shared_counts import local_counts
from courriel.net.tls import TLSManager
from courriel.web.server import WebListener


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def _ask(port: int, context: ssl.SSLContext) -> bytes:
    """One request on a new connection; b"" when the connection is closed unanswered."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    except (ConnectionError, ssl.SSLError):
        return b""
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return await asyncio.wait_for(reader.read(), 5)
    except (ConnectionError, ssl.SSLError):
        return b""
    finally:
        writer.transport.abort()


@pytest.mark.parametrize(
    ("limits", "reason", "mail"),
    [
        (LimitsConfig(max_connections_per_ip=2), "too many connections from your address", 0),
        (LimitsConfig(max_connections=2), "too many connections, try again later", 0),
        # A mail connection from the same address (any worker) takes part of the allowance.
        (LimitsConfig(max_connections_per_ip=3), "too many connections from your address", 1),
    ],
    ids=["per-address", "total", "shared-with-mail"],
)
async def test_connections_over_the_limit_are_closed_and_logged(
    tmp_path: Path,
    limits: LimitsConfig,
    reason: str,
    mail: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    counts = local_counts()
    counts.add(limit_key("127.0.0.1"), mail)
    path = tmp_path / "courriel.toml"
    path.write_text('hostname = "mail.example.test"\n')
    cfg = config.load(path)
    tls = TLSManager(cfg)
    tls.load()
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = web.Application()
    app.router.add_get("/", _hello)
    listener = WebListener(
        {"https": app}, [(cfg.listener("https"), [sock])], tls, limits, counts=counts
    )
    await listener.start()
    context = ssl.create_default_context(cafile=str(cfg.data_dir / "tls" / "cert.pem"))
    context.check_hostname = False
    held = []
    try:
        for _ in range(2):  # two idle connections take the address's whole allowance
            held.append(await asyncio.open_connection("127.0.0.1", port, ssl=context))
        assert await _ask(port, context) == b""
        refused = [r for r in caplog.records if r.getMessage().startswith("connection refused")]
        assert refused and reason in refused[0].getMessage()  # as the mail listeners say it
        _, writer = held.pop()
        writer.transport.abort()
        for _ in range(50):  # the server notices the close on its next loop turns
            answer = await _ask(port, context)
            if answer:
                break
            await asyncio.sleep(0.02)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello")
    finally:
        for _, writer in held:
            writer.transport.abort()
        await listener.stop(1.0)
        with contextlib.suppress(OSError):
            sock.close()
