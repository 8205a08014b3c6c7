"""Where mail goes, asked of a real DNS server (dnsmasq): RFC 5321 §5.1 order, CNAMEs, IDN."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from courriel.net.resolver import DnsFailure, DnsResolver, MailHost, a_label
from courriel.testing.dnsmasq import Zone, start_dnsmasq

pytestmark = pytest.mark.usefixtures("dnsmasq_ready")

IDN = "xn--bcher-kva.test"  # bücher.test


@pytest.fixture
async def dns() -> AsyncIterator[DnsResolver]:
    zone = Zone(
        domains=["order.test", "alias.test", IDN],
        mx=[
            ("order.test", "c.order.test", 20),
            ("order.test", "a.order.test", 10),
            ("order.test", "b.order.test", 10),
            (IDN, f"mx.{IDN}", 5),
            ("alias.test", "mx.alias.test", 10),
        ],
        hosts={"real.alias.test": ["192.0.2.7", "2001:db8::7"], f"mx.{IDN}": ["192.0.2.9"]},
        cname={"mx.alias.test": "real.alias.test"},
    )
    async with start_dnsmasq(zone) as server:
        yield DnsResolver([server.nameserver], timeout=2)


async def test_preference_order_and_random_among_equals(dns: DnsResolver) -> None:
    seen = set()
    for _ in range(40):
        hosts = await dns.mail_hosts("order.test")
        assert [h.preference for h in hosts] == [10, 10, 20]
        assert hosts[2].name == "c.order.test"
        seen.add(tuple(h.name for h in hosts[:2]))
    assert seen == {("a.order.test", "b.order.test"), ("b.order.test", "a.order.test")}


async def test_cname_followed_and_ipv6_first(dns: DnsResolver) -> None:
    assert await dns.mail_hosts("alias.test") == [MailHost("mx.alias.test", 10)]
    assert await dns.addresses("mx.alias.test") == ["2001:db8::7", "192.0.2.7"]


async def test_idn_domains_are_asked_as_a_labels(dns: DnsResolver) -> None:
    assert a_label("Bücher.test") == IDN
    assert await dns.mail_hosts("bücher.test") == [MailHost(f"mx.{IDN}", 5)]


async def test_no_address_is_permanent_and_refused_is_temporary(dns: DnsResolver) -> None:
    with pytest.raises(DnsFailure, match="does not exist") as e:
        await dns.addresses("nothing.order.test")
    assert not e.value.temporary
    with pytest.raises(DnsFailure, match="could not answer") as e:
        await dns.mail_hosts("example.org")  # outside the served zones: REFUSED
    assert e.value.temporary
