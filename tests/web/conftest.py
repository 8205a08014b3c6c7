"""Fixtures of the web tests: the DNS server Pebble resolves the ACME names through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from courriel.testing import dnsmasq, pebble
from courriel.testing.dnsmasq import DnsServer, Zone, start_dnsmasq
from courriel.testing.missing import report_missing
from courriel.testing.pebble import DOMAIN, NAMES


@pytest.fixture
async def dns(request: pytest.FixtureRequest) -> AsyncIterator[DnsServer]:
    """dnsmasq mapping ``NAMES`` to 127.0.0.1 (and nothing else of the domain); the test
    needs Pebble as well, so both programs are checked here."""
    for name, program in (("dnsmasq", dnsmasq.program), ("pebble", pebble.program)):
        if program() is None:
            report_missing(f"program '{name}'", request.node.nodeid)
    zone = Zone([DOMAIN], hosts={name: ["127.0.0.1"] for name in NAMES})
    async with start_dnsmasq(zone) as server:
        yield server
