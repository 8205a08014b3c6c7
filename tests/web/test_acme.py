"""ACME end to end against Pebble: issuance by HTTP-01 and TLS-ALPN-01, renewal, failures.

Pebble (Debian's ``pebble``) validates the names through a dnsmasq on loopback that maps them
to 127.0.0.1, on the ports of the server's own http and https listeners; the tests trust the
root Pebble signs with (from its management interface) and check what the listeners serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from courriel.config import LISTENERS
from courriel.store.acme import CERTIFICATE, StoredCertificate
from courriel.testing import pg as pg_testdb
from courriel.testing.dnsmasq import DnsServer
from courriel.testing.net import free_ports
from courriel.testing.pebble import DOMAIN, NAMES, Pebble, names_dns, peer_certificate, start_pebble
from courriel.testing.server import HOSTNAME, MailServer, start_server

pytestmark = pytest.mark.slow


@pytest.fixture
async def dns(request: pytest.FixtureRequest) -> AsyncIterator[DnsServer]:
    async with names_dns(request.node.nodeid) as server:
        yield server


ISSUE_TIMEOUT = 40.0


def acme_config(p: Pebble, names: list[str], challenge: str = "http-01", renew: float = 30) -> str:
    listed = ", ".join(f'"{n}"' for n in names)
    return (
        "[acme]\nenabled = true\n"
        f'directory = "{p.directory}"\ncontact = "postmaster@{DOMAIN}"\n'
        f'names = [{listed}]\nchallenge = "{challenge}"\nrenew_days = {renew}\n'
        f'check_seconds = 0.3\nretry_seconds = 600\nca_file = "{p.ca_file}"\n'
    )


async def stored(server: MailServer, *, other_than: str = "") -> StoredCertificate:
    deadline = time.monotonic() + ISSUE_TIMEOUT
    while time.monotonic() < deadline:
        cert = await server.acall(server.store.certificate(CERTIFICATE))
        if cert is not None and cert.serial != other_than:
            return cert
        await asyncio.sleep(0.2)
    account = await server.acall(server.store.acme_account(server.cfg.acme.directory))
    raise AssertionError(f"no certificate issued; account: {account}")


async def serving(port: int, name: str, root: Path, serial: str) -> x509.Certificate:
    """Waits until the listener on ``port`` serves the certificate ``serial``."""
    deadline = time.monotonic() + 10
    while True:
        try:
            cert = await asyncio.to_thread(peer_certificate, port, name, root)
        except ssl.SSLCertVerificationError:
            cert = None
        if cert is not None and format(cert.serial_number, "x") == serial:
            return cert
        assert time.monotonic() < deadline, "the new certificate is not served"
        await asyncio.sleep(0.1)


def root_file(p: Pebble, where: Path) -> Path:
    path = where / "pebble-root.pem"
    path.write_bytes(p.root_pem())
    return path


@contextlib.asynccontextmanager
async def acme_served(
    tmp_path: Path,
    dns: DnsServer,
    names: list[str],
    *,
    challenge: str = "http-01",
    validity_seconds: int = 0,
) -> AsyncIterator[tuple[Pebble, MailServer, dict[str, int]]]:
    """Pebble, then a courriel server ordering from it; Pebble validates HTTP-01 on the http
    listener's port (for tls-alpn-01: a port nothing listens on) and TLS-ALPN-01 on https's."""
    ports = dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))
    http_port = ports["http"] if challenge == "http-01" else free_ports(1)[0]
    async with start_pebble(
        tmp_path / "pebble",
        http_port=http_port,
        tls_port=ports["https"],
        dns_server=dns.nameserver,
        validity_seconds=validity_seconds,
    ) as p:
        extra = acme_config(p, names, challenge)
        server = await asyncio.to_thread(start_server, tmp_path, extra_config=extra, ports=ports)
        try:
            yield p, server, ports
        finally:
            await asyncio.to_thread(server.stop)


async def test_http01_issues_and_the_listeners_serve_it(tmp_path: Path, dns: DnsServer) -> None:
    names = [HOSTNAME, f"autoconfig.{DOMAIN}"]
    async with acme_served(tmp_path, dns, names) as (p, server, ports):
        cert = await stored(server)
        assert set(cert.names) == set(names)
        root = root_file(p, tmp_path)
        for listener in ("imaps", "https", "submissions"):
            leaf = await serving(ports[listener], HOSTNAME, root, cert.serial)
            assert leaf.not_valid_after_utc == cert.not_after
        # The https listener serves it for the other name too (one certificate, two names).
        await serving(ports["https"], f"autoconfig.{DOMAIN}", root, cert.serial)
        assert "validate w/ HTTP: http://mail.example.test" in p.log()
        # STARTTLS upgrades get it as well: the same TLSManager context.
        assert server.running.app.tls.info.serial == cert.serial
        assert server.running.app.tls.info.source.startswith("ACME")


async def test_tls_alpn01_issues_on_the_https_port(tmp_path: Path, dns: DnsServer) -> None:
    async with acme_served(tmp_path, dns, NAMES, challenge="tls-alpn-01") as (p, server, ports):
        cert = await stored(server)
        assert set(cert.names) == set(NAMES)
        root = root_file(p, tmp_path)
        await serving(ports["imaps"], HOSTNAME, root, cert.serial)
        await serving(ports["https"], f"mta-sts.{DOMAIN}", root, cert.serial)
        assert "validate w/ HTTP" not in p.log()  # it was TLS-ALPN-01 that passed
        # The challenges are gone once the order is done: nothing answers acme-tls/1 now.
        assert not server.running.app.tls.challenges


async def test_renewal_replaces_a_certificate_inside_the_window(
    tmp_path: Path, dns: DnsServer
) -> None:
    # Pebble's certificates last 20 days, inside renew_days = 30: due again at the next check.
    async with acme_served(tmp_path, dns, [HOSTNAME], validity_seconds=20 * 86400) as (
        p,
        server,
        ports,
    ):
        first = await stored(server)
        assert first.not_after - datetime.now(UTC) < timedelta(days=21)
        second = await stored(server, other_than=first.serial)
        assert second.key_pem != first.key_pem  # a new key with each certificate
        latest = await server.acall(server.store.certificate(CERTIFICATE))
        assert latest is not None and latest.serial != first.serial
        await serving(ports["imaps"], HOSTNAME, root_file(p, tmp_path), latest.serial)
        account = await server.acall(server.store.acme_account(p.directory))
        assert account is not None and account.uri and account.failures == 0


async def test_a_name_pebble_cannot_reach_fails_with_the_reason(
    tmp_path: Path, dns: DnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = f"nowhere.{DOMAIN}"  # not in the DNS zone: NXDOMAIN for Pebble
    async with acme_served(tmp_path, dns, [HOSTNAME, unknown]) as (p, server, _):
        deadline = time.monotonic() + ISSUE_TIMEOUT
        account = None
        while account is None or not account.failures:
            assert time.monotonic() < deadline, "the order neither failed nor succeeded"
            await asyncio.sleep(0.2)
            account = await server.acall(server.store.acme_account(p.directory))
        assert unknown in account.last_error
        assert account.failures == 1 and account.retry_at > time.time() + 500
        assert await server.acall(server.store.certificate(CERTIFICATE)) is None
        assert server.running.app.tls.info.self_signed  # still the self-signed one
        lines = [r.getMessage() for r in caplog.records if r.name == "courriel.acme"]
        failed = [ln for ln in lines if ln.startswith("ACME: could not get a certificate")]
        assert failed and unknown in failed[0] and "trying again in 10 minutes" in failed[0]
        await asyncio.sleep(1.0)  # several checks pass: the backoff holds, no new order
        again = await server.acall(server.store.acme_account(p.directory))
        assert again is not None and again.failures == 1


@pytest.mark.postgres
async def test_two_nodes_on_postgresql_share_the_order_and_the_certificate(
    tmp_path: Path, dns: DnsServer, request: pytest.FixtureRequest
) -> None:
    """Pebble reaches node A only; whichever node orders, A answers the challenge from the
    store, and the node that did not order serves the certificate through NOTIFY alone
    (``check_seconds`` is a minute)."""
    server_url = await pg_testdb.require_server(request)
    ports = [dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True)) for _ in range(2)]
    async with (
        pg_testdb.temporary_database(server_url) as url,
        start_pebble(
            tmp_path / "pebble",
            http_port=ports[0]["http"],
            tls_port=ports[0]["https"],
            dns_server=dns.nameserver,
        ) as p,
    ):
        extra = acme_config(p, [HOSTNAME]).replace("check_seconds = 0.3", "check_seconds = 60")
        extra += f'[store]\nurl = "{url}"\n'
        nodes: list[MailServer] = []
        try:
            for i in range(2):
                (tmp_path / f"node{i}").mkdir()
                nodes.append(
                    await asyncio.to_thread(
                        start_server, tmp_path / f"node{i}", extra_config=extra, ports=ports[i]
                    )
                )
            cert = await stored(nodes[0])
            root = root_file(p, tmp_path)
            for node_ports in ports:
                await serving(node_ports["imaps"], HOSTNAME, root, cert.serial)
        finally:
            for node in nodes:
                await asyncio.to_thread(node.stop)
