"""A small HTTPS server for tests: serves fixed bodies by path, e.g. an MTA-STS policy.

Theory of operation
-------------------
``serve_files`` runs aiohttp's web server on ``address:port`` with a certificate (from
``TestCA``), answering each path in ``files`` with its (content type, body) and 404 otherwise,
and counts requests per path so a test can tell a cached policy from a fetched one.
"""

from __future__ import annotations

import contextlib
import ssl
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web


@contextlib.asynccontextmanager
async def serve_files(
    address: str, port: int, cert: Path, key: Path, files: dict[str, tuple[str, str]]
) -> AsyncIterator[Counter[str]]:
    """Serves ``files`` (path -> (content type, text)) until the block ends; yields hits."""
    hits: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        hits[request.path] += 1
        if request.path not in files:
            return web.Response(status=404, text="not found")
        content_type, text = files[request.path]
        return web.Response(text=text, content_type=content_type)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address, port, ssl_context=ctx)
    await site.start()
    try:
        yield hits
    finally:
        await runner.cleanup()
