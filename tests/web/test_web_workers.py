"""``courriel serve`` with two worker processes: both serve the https listener."""

from __future__ import annotations

import re
import signal
import ssl
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from courriel.config import LISTENERS
from courriel.testing.net import free_ports
from courriel.testing.server import spawn_serve
from courriel.testing.web import fetch

HOSTNAME = "mail.example.test"
DOMAIN = "example.org"
pytestmark = pytest.mark.slow


def _config(root: Path, ports: dict[str, int]) -> Path:
    lines = [f'hostname = "{HOSTNAME}"', "[server]", "workers = 2", "[log]", 'level = "info"']
    for name in LISTENERS:
        lines.append(f"[listeners.{name}]")
        if name in ports:
            lines += ['address = "127.0.0.1"', f"port = {ports[name]}"]
        else:
            lines.append("enabled = false")
    path = root / "courriel.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class _Served:
    """What ``fetch`` needs of a server, for a ``courriel serve`` process."""

    def __init__(self, cfg_dir: Path, ports: dict[str, int]) -> None:
        self.ports = ports
        self.cert_path = cfg_dir / "tls" / "cert.pem"
        self.hostname = HOSTNAME

    def port(self, listener: str) -> int:
        return self.ports[listener]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_path))


def test_both_workers_serve_https(tmp_path: Path) -> None:
    ports = dict(zip(("imaps", "submissions", "https"), free_ports(3), strict=True))
    cfg = _config(tmp_path, ports)
    log = tmp_path / "stderr.log"
    proc = spawn_serve(cfg, DOMAIN, log)
    try:
        served = _Served(tmp_path, ports)
        path = f"/mail/config-v1.1.xml?emailaddress=alice@{DOMAIN}"
        workers: set[str] = set()
        for _ in range(200):
            status, _, body = fetch(served, "GET", path)  # type: ignore[arg-type]
            assert status == 200
            incoming = ET.fromstring(body).find("emailProvider/incomingServer")  # noqa: S314
            assert incoming is not None and incoming.findtext("port") == str(ports["imaps"])
            lines = log.read_text().splitlines()
            found = (re.search(r'worker=(\d+) .*"GET /mail', ln) for ln in lines)
            workers = {m.group(1) for m in found if m}
            if len(workers) == 2:
                break
        assert workers == {"1", "2"}, log.read_text()
        assert "Traceback" not in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
