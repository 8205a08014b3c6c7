"""`courriel dkim rotate|list` and `courriel dns DOMAIN [--json|--zone|--check]`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.rrset
import pytest

from courriel.mail.auth.dkim import Algorithm, public_record
from courriel.store.base import DkimKeyState
from courriel.testing.dns import DnsServer, Zone, dnsmasq_program

HOST = "mail.example.org"
MONTH = datetime.now(UTC).strftime("%Y%m")


@pytest.fixture
def host(data: Path) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    path = data / "courriel.toml"
    path.write_text(f'hostname = "{HOST}"\n')
    return path


def test_domain_add_makes_two_keys_named_by_date(courriel, in_store, host) -> None:
    assert courriel("domain", "add", "example.org").status == 0
    keys = in_store(lambda s: s.dkim_keys("example.org"))
    assert sorted((k.selector, k.algorithm, k.state) for k in keys) == [
        (f"c{MONTH}e", "ed25519", DkimKeyState.ACTIVE),
        (f"c{MONTH}r", "rsa", DkimKeyState.ACTIVE),
    ]
    listed = courriel("dkim", "list").out.splitlines()
    assert listed[0].split() == [
        "DOMAIN",
        "SELECTOR",
        "ALGORITHM",
        "STATE",
        "CREATED",
        "RETIRE",
        "AFTER",
    ]
    assert [line.split()[:4] for line in listed[1:]] == [
        ["example.org", f"c{MONTH}e", "ed25519", "active"],
        ["example.org", f"c{MONTH}r", "rsa", "active"],
    ]


def dnsmasq(request: pytest.FixtureRequest) -> str:
    return dnsmasq_program(request.node.nodeid)


def test_rotate_publishes_before_it_signs(courriel, in_store, host, request) -> None:  # type: ignore[no-untyped-def]
    program = dnsmasq(request)
    courriel("domain", "add", "example.org")
    r = courriel("dkim", "rotate", "example.org", "--grace-days", "3")
    assert r.status == 0, r.err
    assert f"new DKIM keys of example.org: c{MONTH}e2, c{MONTH}r2 (pending)" in r.out
    assert f"courriel keeps signing with c{MONTH}e, c{MONTH}r until it sees them in DNS" in r.out
    keys = {k.selector: k for k in in_store(lambda s: s.dkim_keys("example.org"))}
    for selector in (f"c{MONTH}e2", f"c{MONTH}r2"):
        k = keys[selector]
        assert (k.state, k.grace_seconds) == (DkimKeyState.PENDING, 3 * 86400)
        name = f"{selector}._domainkey.example.org. IN TXT "
        line = next(line for line in r.out.splitlines() if line.startswith(name))
        published = "".join(re.findall(r'"([^"]*)"', line))
        assert published == public_record(Algorithm(k.algorithm), k.private_pem.encode())
    # `courriel dns` lists the pending selectors beside the active ones.
    listed = courriel("dns", "example.org").out
    assert f"c{MONTH}e2._domainkey" in listed and f"c{MONTH}e._domainkey" in listed
    assert f"selector c{MONTH}e2, new: courriel signs with it once it is published" in listed
    again = courriel("dkim", "rotate", "example.org")
    assert again.status == 1 and "waiting to be published" in again.error()

    # Only the Ed25519 record is published: that key starts signing, the RSA one waits.
    zone = Zone()
    e2 = keys[f"c{MONTH}e2"]
    e2_record = public_record(Algorithm.ED25519, e2.private_pem.encode())
    zone.add_txt(f"c{MONTH}e2._domainkey.example.org", e2_record)
    with DnsServer(program, zone) as server:
        r = courriel("dkim", "activate", "example.org", "--nameserver", where(server))
    assert r.status == 1
    assert f"published, now signing: c{MONTH}e2" in r.out
    assert f"not published yet:      c{MONTH}r2" in r.out
    states = {k.selector: k for k in in_store(lambda s: s.dkim_keys("example.org"))}
    assert states[f"c{MONTH}e2"].state is DkimKeyState.ACTIVE
    assert states[f"c{MONTH}r2"].state is DkimKeyState.PENDING
    assert states[f"c{MONTH}r"].state is DkimKeyState.ACTIVE  # RSA still signs with the old key
    old = states[f"c{MONTH}e"]
    assert old.state is DkimKeyState.RETIRING and old.retire_after is not None
    expected = datetime.now(UTC) + timedelta(days=3)
    assert abs((old.retire_after - expected).total_seconds()) < 120
    # --force: without looking.
    forced = courriel("dkim", "activate", "example.org", "--force")
    assert forced.status == 0 and forced.out.strip() == f"signing with c{MONTH}r2"
    states = {k.selector: k.state for k in in_store(lambda s: s.dkim_keys("example.org"))}
    assert states[f"c{MONTH}r"] is DkimKeyState.RETIRING


def test_rotate_and_list_refuse_an_unknown_domain(courriel, host) -> None:
    assert courriel("dkim", "rotate", "nowhere.example").error() == "unknown domain nowhere.example"
    assert courriel("dkim", "list", "nowhere.example").status == 1


def test_dns_lists_every_record(courriel, in_store, host) -> None:
    courriel("domain", "add", "example.org")
    out = courriel("dns", "example.org").out
    for needle in (
        f"MX     example.org\n       10 {HOST}.",
        '"v=spf1 mx -all"',
        f"c{MONTH}e._domainkey.example.org",
        f"c{MONTH}r._domainkey.example.org",
        '"v=DMARC1; p=reject; rua=mailto:postmaster@example.org"',
        "_mta-sts.example.org",
        "_smtp._tls.example.org",
        f"_imaps._tcp.example.org\n       0 1 993 {HOST}.",
        f"_submissions._tcp.example.org\n       0 1 465 {HOST}.",
        f"autoconfig.example.org\n       {HOST}.",
        "mode: testing",  # a self-signed certificate: senders must not enforce yet
    ):
        assert needle in out, needle


def test_json_and_zone_agree(courriel, host) -> None:
    courriel("domain", "add", "example.org")
    data = json.loads(courriel("dns", "example.org", "--json").out)
    assert data["domain"] == "example.org" and data["hostname"] == HOST
    zone = courriel("dns", "example.org", "--zone").out
    lines = [line for line in zone.splitlines() if line and not line.startswith(";")]
    assert len(lines) == len(data["records"])
    for line, record in zip(lines, data["records"], strict=True):
        name, ttl, klass, rdtype, value = line.split("\t")
        assert (name, rdtype) == (record["name"] + ".", record["type"])
        parsed = dns.rrset.from_text(name, int(ttl), klass, rdtype, value)  # valid zone syntax
        if rdtype == "TXT":
            assert b"".join(parsed[0].strings).decode() == record["value"]


def serve_records(data: dict, *, skip: str, alter: str) -> Zone:  # type: ignore[type-arg]
    """A zone with what `courriel dns --json` asked for, less one record and one changed."""
    z = Zone()
    z.a[HOST] = "127.0.0.1"
    z.ptr["127.0.0.1"] = HOST
    for r in data["records"]:
        name, value = r["name"], r["value"]
        if name == skip:
            continue
        if name == alter and r["type"] == "TXT":
            value = "v=spf1 ip4:192.0.2.1 -all"
        if r["type"] == "TXT":
            z.add_txt(name, value)
        elif r["type"] == "MX":
            pref, target = value.split()
            z.mx.setdefault(name, []).append((int(pref), target))
        elif r["type"] == "SRV":
            prio, weight, port, target = value.split()
            z.srv[name] = (int(prio), int(weight), int(port), target)
        elif r["type"] == "CNAME":
            z.cname[name] = value
    return z


def where(server: DnsServer) -> str:
    return f"{server.address}:{server.port}"


def test_check_says_ok_missing_and_wrong(courriel, host, request) -> None:
    program = dnsmasq(request)
    courriel("domain", "add", "example.org")
    data = json.loads(courriel("dns", "example.org", "--json").out)
    zone = serve_records(data, skip="_dmarc.example.org", alter="example.org")
    with DnsServer(program, zone) as server:
        r = courriel(
            "dns", "example.org", "--check", "--nameserver", f"{server.address}:{server.port}"
        )
        assert r.status == 1
        assert r.error() == f"2 of {len(data['records']) + 1} DNS checks need attention (see above)"
        lines = {tuple(line.split()[:3]): line for line in r.out.splitlines()}
        assert ("OK", "MX", "example.org") in lines
        assert ("OK", "TXT", f"c{MONTH}r._domainkey.example.org") in lines
        assert ("OK", "SRV", "_imaps._tcp.example.org") in lines
        assert ("OK", "CNAME", "autoconfig.example.org") in lines
        assert ("OK", "PTR", HOST) in lines
        missing = lines[("MISSING", "TXT", "_dmarc.example.org:")]
        assert 'publish TXT "v=DMARC1; p=reject; rua=mailto:postmaster@example.org"' in missing
        wrong = lines[("WRONG", "TXT", "example.org:")]
        assert "found 'v=spf1 ip4:192.0.2.1 -all'; change it to \"v=spf1 mx -all\"" in wrong
    complete = serve_records(data, skip="", alter="")
    with DnsServer(program, complete) as server:
        r = courriel(
            "dns", "example.org", "--check", "--nameserver", f"{server.address}:{server.port}"
        )
        assert r.status == 0, r.out
        assert all(line.startswith("OK") for line in r.out.splitlines())


async def test_reverse_dns_findings() -> None:
    from courriel import dnsrecords
    from courriel.dnsrecords import Status

    class Answers:
        def __init__(self, table: dict[tuple[str, str], list[str]]) -> None:
            self.table = table

        async def records(self, name: str, rdtype: str) -> list[str]:
            return self.table.get((name, rdtype), [])

    right = Answers({(HOST, "A"): ["192.0.2.7"], ("192.0.2.7", "PTR"): [HOST + "."]})
    assert await dnsrecords.check_reverse(HOST, right) == []
    wrong = Answers({(HOST, "A"): ["192.0.2.7"], ("192.0.2.7", "PTR"): ["host7.isp.example."]})
    assert await dnsrecords.check_reverse(HOST, wrong) == [
        (
            Status.WRONG,
            f"the reverse DNS (PTR) of 192.0.2.7 is host7.isp.example; ask the owner of the "
            f"address to set it to {HOST}",
        )
    ]
    assert await dnsrecords.check_reverse(HOST, Answers({})) == [
        (Status.MISSING, f"{HOST} has no address (A/AAAA record)")
    ]
