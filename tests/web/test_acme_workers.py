"""``courriel serve`` with two worker processes and ACME: one orders, both serve the result.

The processes share nothing but the store and its events; ``[acme] check_seconds`` is a minute,
so a worker that did not order can only have the new certificate in time through the change
event the orderer publishes -- and, with TLS-ALPN-01, must have held the challenge certificate
while Pebble connected to whichever worker the kernel chose.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courriel.testing.dnsmasq import DnsServer
from courriel.testing.net import free_ports
from courriel.testing.pebble import DOMAIN, NAMES, names_dns, peer_certificate, start_pebble
from courriel.testing.server import HOSTNAME, spawn_serve

pytestmark = pytest.mark.slow


@pytest.fixture
async def dns(request: pytest.FixtureRequest) -> AsyncIterator[DnsServer]:
    async with names_dns(request.node.nodeid) as server:
        yield server


def _config(root: Path, ports: dict[str, int], acme: str) -> Path:
    lines = [f'hostname = "{HOSTNAME}"', "[server]", "workers = 2", "[log]", 'level = "info"']
    lines += ["[mailauth]", "check_inbound = false"]
    for name in ("imaps", "https", "http"):
        lines += [f"[listeners.{name}]", 'address = "127.0.0.1"', f"port = {ports[name]}"]
    for name in ("imap", "pop3s", "pop3", "submissions", "submission", "smtp"):
        lines += [f"[listeners.{name}]", "enabled = false"]
    path = root / "courriel.toml"
    path.write_text("\n".join(lines) + "\n" + acme)
    return path


def _installed_by(log: str, serial: str) -> set[str]:
    """The workers that logged loading the certificate ``serial``."""
    found = set()
    for line in log.splitlines():
        if "TLS certificate reloaded" in line and f"serial={serial}" in line:
            m = re.search(r"worker=(\d+)", line)
            if m:
                found.add(m.group(1))
    return found


@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01"])
async def test_every_worker_serves_the_new_certificate(
    tmp_path: Path, dns: DnsServer, challenge: str
) -> None:
    ports = dict(zip(("imaps", "https", "http"), free_ports(3), strict=True))
    http_port = ports["http"] if challenge == "http-01" else free_ports(1)[0]
    async with start_pebble(
        tmp_path / "pebble", http_port=http_port, tls_port=ports["https"], dns_server=dns.nameserver
    ) as p:
        acme = (
            f'[acme]\nenabled = true\ndirectory = "{p.directory}"\nca_file = "{p.ca_file}"\n'
            f'challenge = "{challenge}"\ncheck_seconds = 60\n'
        )
        root = tmp_path / "pebble-root.pem"
        root.write_bytes(p.root_pem())
        await asyncio.to_thread(
            _serve_and_check, tmp_path, _config(tmp_path, ports, acme), ports, root
        )


def _serve_and_check(tmp_path: Path, cfg: Path, ports: dict[str, int], root: Path) -> None:
    log = tmp_path / "stderr.log"
    proc = spawn_serve(cfg, DOMAIN, log)
    try:
        deadline = time.monotonic() + 40
        serial, workers = "", set()
        while workers != {"1", "2"}:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
            for line in log.read_text().splitlines():
                m = re.search(r"ACME: certificate stored.* serial=([0-9a-f]+)", line)
                serial = m.group(1) if m else serial
            workers = _installed_by(log.read_text(), serial) if serial else set()
        # Every connection, whichever worker takes it, is given the ACME certificate.
        for _ in range(20):
            for name in NAMES:
                leaf = peer_certificate(ports["https"], name, root)
                assert format(leaf.serial_number, "x") == serial
            leaf = peer_certificate(ports["imaps"], HOSTNAME, root)
            assert format(leaf.serial_number, "x") == serial
        text = log.read_text()
        assert "Traceback" not in text
        assert text.count("ACME: ordering a certificate") == 1  # one process ordered
        proc.terminate()
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
