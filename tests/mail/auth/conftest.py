"""A real DNS server (dnsmasq) with the records of the mail-authentication tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from courriel.auth_resolver import AuthResolver
from courriel.testing.dns import DnsServer, dnsmasq_program
from courriel.testing.mailauth import AuthKeys, auth_zone


@pytest.fixture(scope="session")
def keys() -> AuthKeys:
    return AuthKeys()


@pytest.fixture(scope="module")
def dns_server(request: pytest.FixtureRequest, keys: AuthKeys) -> Iterator[DnsServer]:
    program = dnsmasq_program(request.node.nodeid)
    with DnsServer(program, auth_zone(keys)) as server:
        yield server


@pytest.fixture
def resolver(dns_server: DnsServer) -> AuthResolver:
    return AuthResolver([f"{dns_server.address}:{dns_server.port}"], timeout=2.0)
