"""A real courriel POP3 server in the test's event loop, and helpers to fill it.

Theory of operation
-------------------
``async with pop3_server(tmp_path) as srv`` runs ``courriel.app.serve`` with the pop3 (STLS) and
pop3s (implicit TLS) listeners on free loopback ports, cheap password hashing and a self-signed
certificate for ``mail.example.test`` in ``srv.cert``; with ``imaps``, courriel's IMAP listener
too, so a test can watch POP3 and IMAP see one mailbox. Clients run in threads
(``asyncio.to_thread``) or as subprocesses, so the server keeps serving on the test's loop.
Messages are stored with ``Server.deliver``, parsed once as SMTP delivery does.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from courriel.app import App, Running, pop3_handlers
from courriel.app import handlers as app_handlers
from courriel.config import AuthConfig, Config, LimitsConfig, ListenerConfig
from courriel.net.listener import ProtocolHandlers
from courriel.store.base import Appended, Store, User
from courriel.testing.fill import deliver_to_inbox
from courriel.testing.net import LOOPBACK, free_ports
from courriel.testing.transcript import running_server

HOSTNAME = "mail.example.test"
# The password of every test user; the server hashes it as it would a real one.
PASSWORD = "correct horse battery"  # noqa: S105


@dataclass(frozen=True, slots=True)
class Server:
    running: Running
    cfg: Config

    @property
    def app(self) -> App:
        return self.running.app

    @property
    def store(self) -> Store:
        return self.running.app.store

    @property
    def cert(self) -> Path:
        return self.cfg.data_dir / "tls" / "cert.pem"

    @property
    def pop3(self) -> int:
        return self.running.address("pop3")[1]

    @property
    def pop3s(self) -> int:
        return self.running.address("pop3s")[1]

    @property
    def imaps(self) -> int:
        return self.running.address("imaps")[1]

    def client_context(self) -> ssl.SSLContext:
        """Trusts exactly the server's self-signed certificate, with the host name checked."""
        return ssl.create_default_context(cafile=str(self.cert))

    async def add_user(self, address: str, password: str = PASSWORD) -> User:
        domain = address.rsplit("@", 1)[1]
        if await self.store.get_domain(domain) is None:
            await self.store.add_domain(domain)
        return await self.store.add_user(address, await self.app.hasher.hash_async(password))

    async def deliver(self, user: User, *messages: bytes) -> list[Appended]:
        """Stores the messages in the user's INBOX as SMTP delivery would, parse and all."""
        return await deliver_to_inbox(self.store, user, *messages)


def config(
    tmp_path: Path,
    *,
    failure_delay: float = 0.0,
    max_failures_per_ip: int = 10,
    max_connections_per_ip: int = 50,
    imaps: bool = False,
) -> Config:
    pop3, pop3s, imaps_port = free_ports(3)
    extra = (ListenerConfig("imaps", "imap", 993, True, address=LOOPBACK, port=imaps_port),)
    return Config(
        path=tmp_path / "courriel.toml",
        data_dir=tmp_path,
        hostname=HOSTNAME,
        auth=AuthConfig(
            argon2_time_cost=1,
            argon2_memory_kib=8,
            argon2_parallelism=1,
            failure_delay_seconds=failure_delay,
            max_failures_per_ip=max_failures_per_ip,
        ),
        limits=LimitsConfig(
            shutdown_grace_seconds=2.0, max_connections_per_ip=max_connections_per_ip
        ),
        listeners=(
            ListenerConfig("pop3", "pop3", 110, False, address=LOOPBACK, port=pop3),
            ListenerConfig("pop3s", "pop3", 995, True, address=LOOPBACK, port=pop3s),
            *(extra if imaps else ()),
        ),
    )


@contextlib.asynccontextmanager
async def pop3_server(
    tmp_path: Path,
    *,
    idle_timeout: float = 600.0,
    lease_seconds: float = 60.0,
    failure_delay: float = 0.0,
    max_failures_per_ip: int = 10,
    max_connections_per_ip: int = 50,
    imaps: bool = False,
) -> AsyncIterator[Server]:
    """With ``imaps``, also courriel's IMAP listener on implicit TLS, as ``app.handlers`` has it."""
    cfg = config(
        tmp_path,
        failure_delay=failure_delay,
        max_failures_per_ip=max_failures_per_ip,
        max_connections_per_ip=max_connections_per_ip,
        imaps=imaps,
    )

    def factory(app: App) -> ProtocolHandlers:
        return pop3_handlers(app, idle_timeout=idle_timeout, lease_seconds=lease_seconds)

    factories = {"pop3": factory, "imap": app_handlers["imap"]}
    async with running_server(cfg, factories=factories) as running:
        yield Server(running, cfg)


def message(subject: str, body: str = "Hello.\r\n", *, sender: str = "bob@example.net") -> bytes:
    """A small message with CRLF line ends, as stored after SMTP delivery."""
    return (
        f"From: {sender}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.net>\r\n"
        f"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\n{body}"
    ).encode()


# Lines that start with ".", a line that is only ".", CRLF.CRLF inside: byte-stuffing must
# round-trip every one of them (RFC 1939 §3).
DOTTY = message(
    "dots",
    ".leading dot\r\n.\r\n..two dots\r\nplain line\r\n.\r\n.end\r\n",
)
