"""The set-up documents and the MTA-STS policy, fetched over real HTTPS and parsed as clients do."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from courriel.dnsrecords import mta_sts_policy
from courriel.mail.mtasts import Mode, parse_policy
from courriel.testing.server import MailServer, start_server
from courriel.testing.web import fetch

DOMAIN = "example.org"
ADDRESS = f"alice@{DOMAIN}"
OUTLOOK_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    s = start_server(tmp_path_factory.mktemp("web"))
    try:
        s.add_user(ADDRESS, "correct horse")
        yield s
    finally:
        s.stop()


def _thunderbird(body: bytes) -> dict[tuple[str, str, str], dict[str, str]]:
    """(direction, type, socketType) -> the fields Thunderbird reads from each server."""
    root = ET.fromstring(body)  # noqa: S314 - courriel's own answer, not untrusted input
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider is not None and provider.findtext("domain") == DOMAIN
    out = {}
    for el in [*provider.iter("incomingServer"), *provider.iter("outgoingServer")]:
        fields = {child.tag: child.text or "" for child in el}
        out[(el.tag, el.get("type", ""), fields["socketType"])] = fields
    return out


def test_thunderbird_autoconfig_lists_the_ports_courriel_listens_on(server: MailServer) -> None:
    for path in (
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        f"/mail/config-v1.1.xml?emailaddress={ADDRESS}",
    ):
        host = DOMAIN if path.startswith("/.well-known") else f"autoconfig.{DOMAIN}"
        status, ctype, body = fetch(server, "GET", path, host=host)
        assert status == 200 and ctype.startswith("application/xml")
        servers = _thunderbird(body)
        expected = {
            ("incomingServer", "imap", "SSL"): "imaps",
            ("incomingServer", "imap", "STARTTLS"): "imap",
            ("incomingServer", "pop3", "SSL"): "pop3s",
            ("incomingServer", "pop3", "STARTTLS"): "pop3",
            ("outgoingServer", "smtp", "SSL"): "submissions",
            ("outgoingServer", "smtp", "STARTTLS"): "submission",
        }
        assert set(servers) == set(expected)
        for key, listener in expected.items():
            assert servers[key]["hostname"] == server.hostname
            assert servers[key]["port"] == str(server.port(listener))
            assert servers[key]["username"] == "%EMAILADDRESS%"


def test_unknown_domains_get_404(server: MailServer) -> None:
    assert fetch(server, "GET", "/mail/config-v1.1.xml?emailaddress=bob@example.net")[0] == 404
    well_known = "/.well-known/autoconfig/mail/config-v1.1.xml"
    assert fetch(server, "GET", well_known, host="x.net")[0] == 404
    pox = _pox_request("bob@example.net")
    assert fetch(server, "POST", "/autodiscover/autodiscover.xml", data=pox)[0] == 404
    assert fetch(server, "GET", "/.well-known/mta-sts.txt", host="mta-sts.example.net")[0] == 404
    assert fetch(server, "GET", "/.well-known/mta-sts.txt", host=DOMAIN)[0] == 404


def test_request_values_are_escaped(server: MailServer) -> None:
    status, _, body = fetch(server, "GET", "/mail/config-v1.1.xml?emailaddress=<a>@example.org")
    assert status == 200 and b"<a>" not in body  # the local part is not used at all
    address = "a&lt;/LoginName&gt;&lt;x&gt;@example.org"  # a<b>-like markup, escaped in XML
    status, _, body = fetch(
        server, "POST", "/autodiscover/autodiscover.xml", data=_pox_request(address)
    )
    assert status == 200 and b"<x>" not in body and b"&lt;x&gt;" in body
    root = ET.fromstring(body)  # noqa: S314 - courriel's own answer, not untrusted input
    names = {el.text for el in root.iter(f"{OUTLOOK_NS}LoginName")}
    assert names == {"a</LoginName><x>@example.org"}


def _pox_request(address: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
        'requestschema/2006"><Request>'
        f"<EMailAddress>{address}</EMailAddress>"
        "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/"
        "responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
    ).encode()


def test_outlook_autodiscover_pox(server: MailServer) -> None:
    status, ctype, body = fetch(
        server, "POST", "/autodiscover/autodiscover.xml", data=_pox_request(ADDRESS)
    )
    assert status == 200 and ctype.startswith("application/xml")
    root = ET.fromstring(body)  # noqa: S314 - courriel's own answer, not untrusted input
    account = root.find(f"{OUTLOOK_NS}Response/{OUTLOOK_NS}Account")
    assert account is not None
    assert account.findtext(f"{OUTLOOK_NS}Action") == "settings"
    found = {}
    for proto in account.iter(f"{OUTLOOK_NS}Protocol"):
        fields = {child.tag.removeprefix(OUTLOOK_NS): child.text for child in proto}
        assert fields["Server"] == server.hostname and fields["SSL"] == "on"
        assert fields["LoginName"] == ADDRESS
        found[(fields["Type"], fields["Encryption"])] = int(fields["Port"] or 0)
    assert found == {
        ("IMAP", "SSL"): server.port("imaps"),
        ("IMAP", "TLS"): server.port("imap"),
        ("POP3", "SSL"): server.port("pop3s"),
        ("POP3", "TLS"): server.port("pop3"),
        ("SMTP", "SSL"): server.port("submissions"),
        ("SMTP", "TLS"): server.port("submission"),
    }


def test_an_xml_bomb_is_refused(server: MailServer) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b"<Autodiscover><Request><EMailAddress>&lol3;@example.org</EMailAddress>"
        b"</Request></Autodiscover>"
    )
    status, _, body = fetch(server, "POST", "/autodiscover/autodiscover.xml", data=bomb)
    assert status == 400 and b"document type" in body
    external = (
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>"
    )
    assert fetch(server, "POST", "/autodiscover/autodiscover.xml", data=external)[0] == 400
    huge = _pox_request(ADDRESS) + b" " * 20000
    assert fetch(server, "POST", "/autodiscover/autodiscover.xml", data=huge)[0] == 413


def test_outlook_autodiscover_json(server: MailServer) -> None:
    path = f"/autodiscover/autodiscover.json?Email={ADDRESS}&Protocol=AutodiscoverV1"
    status, ctype, body = fetch(server, "GET", path)
    assert status == 200 and ctype.startswith("application/json")
    doc = json.loads(body)
    assert doc["Protocol"] == "AutodiscoverV1"
    port = server.port("https")
    assert doc["Url"] == f"https://{server.hostname}:{port}/autodiscover/autodiscover.xml"


def test_mta_sts_policy_is_what_the_relay_parses_and_dns_announces(server: MailServer) -> None:
    status, ctype, body = fetch(server, "GET", "/.well-known/mta-sts.txt", host=f"mta-sts.{DOMAIN}")
    assert status == 200 and ctype.startswith("text/plain")
    policy = parse_policy(body.decode())
    assert policy.mode is Mode.TESTING  # the self-signed certificate
    assert policy.mx == (server.hostname,)
    assert policy.max_age == 604800
    assert body.decode() == mta_sts_policy(server.hostname, True, server.cfg.mtasts)


def test_no_path_reaches_the_disk(server: MailServer) -> None:
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/.well-known/../courriel.toml"):
        status, _, body = fetch(server, "GET", path)
        assert status == 404 and b"root:" not in body
