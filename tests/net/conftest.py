"""Fixtures for the runtime tests: one self-signed certificate, configs, a listener on loopback."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from runtime_support import HOSTNAME, ServeFactory, listener_config

from courriel.config import Config, LimitsConfig
from courriel.net.listener import Connections, Listener, ProtocolHandlers
from courriel.net.ports import bind_address
from courriel.net.tls import TLSManager, ensure_self_signed


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate made once for the whole run (key generation is the slow part)."""
    data = tmp_path_factory.mktemp("certdata")
    ensure_self_signed(data, HOSTNAME)
    return data / "tls"


@pytest.fixture
def cfg(tmp_path: Path, cert_dir: Path) -> Config:
    """A configuration whose data directory already holds the shared self-signed certificate."""
    (tmp_path / "tls").mkdir()
    for name in ("cert.pem", "key.pem"):
        shutil.copy2(cert_dir / name, tmp_path / "tls" / name)
    return Config(path=tmp_path / "courriel.toml", data_dir=tmp_path, hostname=HOSTNAME)


@pytest.fixture
def tls_manager(cfg: Config) -> TLSManager:
    manager = TLSManager(cfg)
    manager.load()
    return manager


@pytest.fixture
def serving(tls_manager: TLSManager) -> ServeFactory:
    """``async with serving(handlers, ...) as listener``: a listener on a free loopback port."""

    @contextlib.asynccontextmanager
    async def serve(
        handlers: ProtocolHandlers,
        *,
        name: str = "imap",
        implicit_tls: bool = False,
        limits: LimitsConfig | None = None,
        connections: Connections | None = None,
        handshake_timeout: float = 5.0,
    ) -> AsyncIterator[Listener]:
        conns = connections or Connections(limits or LimitsConfig())
        lst = Listener(
            listener_config(name, implicit_tls=implicit_tls),
            bind_address("127.0.0.1", 0),
            handlers,
            tls_manager,
            conns,
            handshake_timeout=handshake_timeout,
        )
        lst.start()
        try:
            yield lst
        finally:
            await lst.stop_accepting()
            await conns.shutdown(2.0)

    return serve
