"""Fixtures for ``courriel check``: ``make_site`` starts a courriel server with a test CA's
certificate, two users and a DNS server on loopback (``courriel.testing.check_site``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.queue.transport import Transport
from courriel.testing.certs import TestCA
from courriel.testing.check_site import (
    ALICE,
    BOB,
    BOB_PASSWORD,
    CERT_NAMES,
    PASSWORD,
    RecordEdit,
    Site,
    SiteFactory,
    zone_for,
)
from courriel.testing.dns import DnsServer, sbin_program
from courriel.testing.missing import report_missing
from courriel.testing.server import MailServer, start_server


@pytest.fixture
def dnsmasq(request: pytest.FixtureRequest) -> str:
    program = sbin_program("dnsmasq")
    if program is None:
        report_missing("program 'dnsmasq'", request.node.nodeid)
    assert program is not None
    return program


@pytest.fixture
def make_site(
    tmp_path: Path,
    dnsmasq: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SiteFactory]:
    """``make_site(cert_names=..., cert_days=..., extra_config=..., transport=...)``."""
    started: list[tuple[MailServer, DnsServer]] = []
    ca = TestCA(tmp_path / "ca")

    def make(
        *,
        cert_names: list[str] | None = CERT_NAMES,
        cert_days: int = 30,
        extra_config: str = "",
        transport: Transport | None = None,
        dns_edit: RecordEdit | None = None,
    ) -> Site:
        extra = extra_config
        if cert_names is not None:
            cert, key = ca.issue("server", cert_names, days=cert_days)
            extra += f'\n[tls]\ncert = "{cert}"\nkey = "{key}"\n'
        server = start_server(tmp_path, transport=transport, extra_config=extra)
        try:
            server.add_user(ALICE, PASSWORD)
            server.add_user(BOB, BOB_PASSWORD)
            dns = DnsServer(dnsmasq, zone_for(server, dns_edit))
            dns.start()
        except BaseException:
            server.stop()
            raise
        started.append((server, dns))
        return Site(server, dns, ca, capsys, monkeypatch)

    yield make
    for server, dns in started:
        dns.stop()
        server.stop()
