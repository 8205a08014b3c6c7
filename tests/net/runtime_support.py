"""Helpers shared by the runtime tests (fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

from courriel import logs
from courriel.config import ListenerConfig, LogConfig
from courriel.net.listener import Listener

HOSTNAME = "mail.test"

# ``async with serving(handlers, name=..., implicit_tls=..., limits=...) as listener``
ServeFactory = Callable[..., contextlib.AbstractAsyncContextManager[Listener]]


def client_context(cert_path: Path) -> ssl.SSLContext:
    """A client context that trusts exactly the given (self-signed) certificate."""
    return ssl.create_default_context(cafile=str(cert_path))


def listener_config(name: str = "imap", *, implicit_tls: bool = False) -> ListenerConfig:
    protocol = {"imap": "imap", "imaps": "imap", "pop3": "pop3", "pop3s": "pop3"}.get(name, "smtp")
    return ListenerConfig(name, protocol, 0, implicit_tls, address="127.0.0.1")


TIMEOUT = 5.0


async def read_line(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(TIMEOUT):
        return await reader.readline()


async def read_all(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(TIMEOUT):
        return await reader.read()


async def close(*writers: asyncio.StreamWriter) -> None:
    """Closes client connections and waits until they are closed."""
    for writer in writers:
        writer.close()
    for writer in writers:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


@contextlib.contextmanager
def logging_to(out: io.StringIO, cfg: LogConfig) -> Iterator[logging.Handler]:
    """``logs.setup`` into ``out``; afterwards the logging settings are as they were."""
    root, ours = logging.getLogger(), logging.getLogger("courriel")
    levels = root.level, ours.level
    handler = logs.setup(cfg, stream=out)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        ours.setLevel(levels[1])
