"""Connection-time checks against a real DNS server on loopback (dnsmasq): DNS blocklists,
forward-confirmed reverse DNS, and the HELO rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from courriel.auth_resolver import AuthResolver
from courriel.config import JunkConfig
from courriel.junk.checks import ConnectionChecks, greylist_triple, reversed_name
from courriel.testing.dns import DnsServer, Zone, sbin_program, silent_port
from courriel.testing.missing import report_missing

V6 = "2001:db8::1"


def zone() -> Zone:
    z = Zone()
    z.a["2.2.0.192.bl.test"] = "127.0.0.2"
    z.add_txt("2.2.0.192.bl.test", "Listed for sending junk: see https://bl.test/q/192.0.2.2")
    z.a["3.2.0.192.bl.test"] = "127.255.255.254"  # "you may not ask us"
    z.a["4.2.0.192.bl.test"] = "10.0.0.4"  # not a listing code at all
    z.a["5.2.0.192.bl.test"] = "127.0.0.11"  # listed, without a TXT reason
    z.a[reversed_name(V6) + ".bl.test"] = "127.0.0.3"
    z.a["good.fc.test"] = "192.0.2.10"  # dnsmasq adds the PTR of a host record
    z.ptr["192.0.2.11"] = "liar.fc.test"
    z.a["liar.fc.test"] = "192.0.2.99"
    return z


@pytest.fixture(scope="module")
def nameserver(request: pytest.FixtureRequest) -> Iterator[str]:
    program = sbin_program("dnsmasq")
    if program is None:
        report_missing("program 'dnsmasq'", request.node.nodeid)
    assert program is not None
    with DnsServer(program, zone()) as server:
        yield f"{server.address}:{server.port}"


def checks(nameserver: str, **settings: object) -> ConnectionChecks:
    cfg = JunkConfig(**settings)  # type: ignore[arg-type]
    return ConnectionChecks(cfg, AuthResolver([nameserver], timeout=2.0), "mx.ours.test")


def test_reversed_names() -> None:
    assert reversed_name("192.0.2.1") == "1.2.0.192"
    assert reversed_name("::ffff:192.0.2.1") == "1.2.0.192"  # a mapped IPv4 client is IPv4
    assert reversed_name(V6) == "1." + "0." * 23 + "8.b.d.0.1.0.0.2"
    assert greylist_triple("192.0.2.77", "A@x.test", "b@Y.test") == "192.0.2.0/24|a@x.test|b@y.test"
    assert greylist_triple(V6, "", "b@y.test") == "2001:db8::/64||b@y.test"


async def test_listed_client_is_refused_with_the_list_reason(nameserver: str) -> None:
    c = checks(nameserver, dnsbl_zones=("bl.test",))
    found = await c.client("192.0.2.2")
    assert found is not None
    assert (found.code, found.enhanced) == (554, "5.7.1")
    assert found.text == (
        "client 192.0.2.2 is listed by bl.test"
        " (Listed for sending junk: see https://bl.test/q/192.0.2.2)"
    )
    bare = await c.client("192.0.2.5")
    assert bare is not None and bare.text == "client 192.0.2.5 is listed by bl.test (127.0.0.11)"
    v6 = await c.client(V6)
    assert v6 is not None and v6.text.startswith(f"client {V6} is listed by bl.test")


@pytest.mark.parametrize(
    "ip",
    [
        "192.0.2.3",  # 127.255.255.254: the list refuses to answer us, not a listing
        "192.0.2.4",  # an answer outside 127.0.0.0/8
        "192.0.2.9",  # not in the list at all (NXDOMAIN)
    ],
)
async def test_unlisted_clients_pass(nameserver: str, ip: str) -> None:
    assert await checks(nameserver, dnsbl_zones=("bl.test",)).client(ip) is None


async def test_a_blocklist_that_does_not_answer_refuses_nobody() -> None:
    with silent_port() as port:
        resolver = AuthResolver([f"127.0.0.1:{port}"], timeout=5.0)
        cfg = JunkConfig(dnsbl_zones=("bl.test",), fcrdns=True, dns_timeout_seconds=0.3)
        c = ConnectionChecks(cfg, resolver, "mx.ours.test")
        assert await c.client("192.0.2.2") is None


async def test_forward_confirmed_reverse_dns(nameserver: str) -> None:
    c = checks(nameserver, fcrdns=True)
    assert await c.client("192.0.2.10") is None
    liar = await c.client("192.0.2.11")
    assert liar is not None and (liar.code, liar.enhanced) == (550, "5.7.25")
    assert liar.text == (
        "the reverse DNS name of 192.0.2.11 (liar.fc.test) does not lead back to it"
    )
    nameless = await c.client("192.0.2.12")
    assert nameless is not None
    assert nameless.text == "client 192.0.2.12 has no reverse DNS (PTR) name"


@pytest.mark.parametrize(
    ("helo", "expected"),
    [
        ("mail.sender.test", None),
        ("[192.0.2.1]", None),
        ("[IPv6:2001:db8::1]", None),
        (
            "192.0.2.1",
            "550 5.5.2 HELO 192.0.2.1: an address must be written in brackets, [192.0.2.1]",
        ),
        ("MX.Ours.Test", "550 5.7.1 HELO MX.Ours.Test: that is this server's own name"),
        (
            "localhost",
            "550 5.5.2 HELO localhost: not a fully qualified domain name (RFC 5321 §4.1.1.1)",
        ),
    ],
)
def test_helo_rules(helo: str, expected: str | None) -> None:
    c = ConnectionChecks(JunkConfig(helo_checks=True), None, "mx.ours.test")
    found = c.helo(helo)
    said = None if found is None else f"{found.code} {found.enhanced} {found.text}"
    assert said == expected
    assert ConnectionChecks(JunkConfig(), None, "mx.ours.test").helo("localhost") is None
