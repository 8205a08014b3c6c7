"""Pebble, Let's Encrypt's ACME test server (Debian's ``pebble``), on loopback for the tests.

Theory of operation
-------------------
``start_pebble`` writes a configuration into a directory of its own: the ACME and management
interfaces on free 127.0.0.1 ports, served with a certificate from a ``TestCA`` made here
(Debian ships no test certificates; ``Pebble.ca_file`` is what an ACME client trusts to reach
it), and ``httpPort``/``tlsPort`` -- where Pebble validates HTTP-01 and TLS-ALPN-01 -- set to
the ports the caller's web listeners use. Pebble resolves the names it validates through the
DNS server given (``-dnsserver``, a ``courriel.testing.dnsmasq`` on loopback that maps them to
127.0.0.1). It runs with ``PEBBLE_VA_NOSLEEP=1`` (no random validation delay),
``PEBBLE_WFE_NONCEREJECT=0`` (no deliberately refused nonces) and ``PEBBLE_AUTHZREUSE=0`` (every
order is validated again). ``validity_seconds`` makes its certificates short-lived, to test
renewal. ``root_pem`` fetches the root that signs what it issues from the management interface;
``peer_certificate`` is what a client trusting that root is given by a listener.
The process is ended by its id when the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from courriel.testing import dnsmasq
from courriel.testing.certs import TestCA
from courriel.testing.dnsmasq import DnsServer, Zone, start_dnsmasq, stop_process
from courriel.testing.missing import report_missing
from courriel.testing.net import free_ports
from courriel.testing.server import HOSTNAME

PEBBLE = "pebble"
DOMAIN = "example.test"  # the hosted domain of the ACME tests
NAMES = [HOSTNAME, f"autoconfig.{DOMAIN}", f"mta-sts.{DOMAIN}"]  # what courriel orders for it


def program() -> str | None:
    return shutil.which(PEBBLE)


@dataclass
class Pebble:
    process: subprocess.Popen[bytes]
    port: int
    management_port: int
    ca_file: Path  # trust this to reach Pebble's own HTTPS
    log_file: Path

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def _get(self, path: str) -> bytes:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        url = f"https://127.0.0.1:{self.management_port}{path}"
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            body: bytes = r.read()
        return body

    def root_pem(self) -> bytes:
        """The root certificate that signs the certificates Pebble issues."""
        return self._get("/roots/0")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


@contextlib.asynccontextmanager
async def names_dns(nodeid: str) -> AsyncIterator[DnsServer]:
    """dnsmasq mapping ``NAMES`` (and nothing else of ``DOMAIN``) to 127.0.0.1, for Pebble to
    resolve; the test ``nodeid`` is reported missing without dnsmasq or pebble."""
    for name, find in (("dnsmasq", dnsmasq.program), ("pebble", program)):
        if find() is None:
            report_missing(f"program '{name}'", nodeid)
    zone = Zone([DOMAIN], hosts={name: ["127.0.0.1"] for name in NAMES})
    async with start_dnsmasq(zone) as server:
        yield server


def peer_certificate(port: int, name: str, root: Path) -> x509.Certificate:
    """The certificate a client trusting only ``root`` is given for ``name`` on 127.0.0.1:port
    (raises ``ssl.SSLCertVerificationError`` when it does not verify)."""
    ctx = ssl.create_default_context(cafile=str(root))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _answers(pebble: Pebble) -> bool:
    try:
        pebble.root_pem()
    except OSError:
        return False
    return True


def _configure(
    directory: Path, http_port: int, tls_port: int, validity_seconds: int
) -> tuple[int, int, Path, Path]:
    """(ACME port, management port, CA file, config file), written under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = TestCA(directory / "ca", "pebble's listener CA")
    cert, key = ca.issue("pebble", ["localhost", "127.0.0.1"])
    port, management = free_ports(2)
    settings: dict[str, object] = {
        "listenAddress": f"127.0.0.1:{port}",
        "managementListenAddress": f"127.0.0.1:{management}",
        "certificate": str(cert),
        "privateKey": str(key),
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
    if validity_seconds:
        settings["certificateValidityPeriod"] = validity_seconds
    config = directory / "pebble-config.json"
    config.write_text(json.dumps({"pebble": settings}))
    return port, management, ca.ca_file, config


def _spawn(args: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


@contextlib.asynccontextmanager
async def start_pebble(
    directory: Path,
    *,
    http_port: int,
    tls_port: int,
    dns_server: str,
    validity_seconds: int = 0,
) -> AsyncIterator[Pebble]:
    """Pebble until the block ends; ``dns_server`` is "127.0.0.1:port"."""
    path = program()
    if path is None:
        raise FileNotFoundError("pebble is not installed")
    port, management, ca_file, config = await asyncio.to_thread(
        _configure, directory, http_port, tls_port, validity_seconds
    )
    env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
        "PEBBLE_AUTHZREUSE": "0",
    }
    log_file = directory / "pebble.log"
    args = [path, "-config", str(config), "-dnsserver", dns_server]
    proc = await asyncio.to_thread(_spawn, args, env, log_file)
    pebble = Pebble(proc, port, management, ca_file, log_file)
    try:
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError(f"pebble exited: {pebble.log().strip()}")
            if await asyncio.to_thread(_answers, pebble):
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("pebble did not answer within 10 seconds")
        yield pebble
    finally:
        pebble.stop()
