"""Finding the servers as mail programs do: autoconfig, Autodiscover, SRV, then usual host names.

Theory of operation
-------------------
``discover`` asks every source in the order Thunderbird and Outlook use, and reports what each
one said (or why it said nothing), so a person sees *where* a setting came from:

1. Thunderbird autoconfig: ``https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDR``
   and ``https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml`` ("clientConfig" 1.1);
2. Outlook Autodiscover: POST ``/autodiscover/autodiscover.xml`` at ``autodiscover.DOMAIN`` and
   at ``DOMAIN``, and ``/autodiscover/autodiscover.json`` which names the XML endpoint;
3. RFC 6186 SRV records, ``_submissions._tcp`` first (RFC 8314 §5.1); a target of "." means
   the service is not offered (RFC 6186 §3.4);
4. the usual host names (imap., pop., smtp., mail.) on the standard ports, when none of the
   above found anything for a service; those are guesses, so a port that refuses is no failure.

The first source that announces a service wins. Documents come over HTTPS with the certificate
checked (``--insecure`` lifts that), are read up to ``MAX_DOCUMENT`` bytes, and are parsed only
if they hold no document type declaration, so no entity can expand.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.parsers import expat

from courriel.check.lookup import DnsLookupError, Lookup
from courriel.check.report import Report
from courriel.check.services import SERVICES, Target
from courriel.check.tls import client_context

MAX_DOCUMENT = 256 * 1024
SECTION = "discovery"
_SRV = (
    ("_submissions._tcp", "submissions"),
    ("_submission._tcp", "submission"),
    ("_imaps._tcp", "imaps"),
    ("_imap._tcp", "imap"),
    ("_pop3s._tcp", "pop3s"),
    ("_pop3._tcp", "pop3"),
)
_USUAL_HOSTS = {
    "imap": ("imap", "mail"),
    "pop3": ("pop", "pop3", "mail"),
    "smtp": ("smtp", "mail"),
}
# (protocol, implicit TLS) -> service
_SERVICE_OF = {(p, tls): s for s, (p, _, tls) in SERVICES.items() if s != "smtp"}
MAIL_SERVICES = tuple(s for s in SERVICES if s != "smtp")


class FetchError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Web:
    """How the discovery talks HTTPS: the check's DNS, trust and port."""

    lookup: Lookup
    cafile: Path | None
    insecure: bool
    timeout: float
    port: int = 443


class _Https(http.client.HTTPSConnection):
    """Connects to the address the check's DNS gave, TLS checked against the host name."""

    def __init__(self, web: Web, host: str, port: int) -> None:
        context = client_context(web.cafile, verify=not web.insecure)
        super().__init__(host, port, timeout=web.timeout, context=context)
        self._web = web

    def connect(self) -> None:
        try:
            addresses = self._web.lookup.addresses(self.host)
        except DnsLookupError as e:
            raise FetchError(str(e)) from None
        if not addresses:
            raise FetchError(f"{self.host} does not resolve")
        sock = socket.create_connection((addresses[0], self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def fetch(web: Web, url: str, body: bytes | None = None) -> bytes:
    parts = urllib.parse.urlsplit(url)
    conn = _Https(web, parts.hostname or "", parts.port or web.port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        headers = {"Content-Type": "text/xml"} if body is not None else {}
        conn.request("POST" if body is not None else "GET", path, body, headers)
        response = conn.getresponse()
        data = response.read(MAX_DOCUMENT + 1)
    except ssl.SSLCertVerificationError as e:
        raise FetchError(f"certificate refused: {e.verify_message}") from None
    except (OSError, http.client.HTTPException) as e:
        raise FetchError(_reason(e)) from None
    finally:
        conn.close()
    if response.status != 200:
        raise FetchError(f"HTTP {response.status}")
    if len(data) > MAX_DOCUMENT:
        raise FetchError("document too large")
    return data


def _reason(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, TimeoutError | socket.timeout):
        return "timed out"
    return str(e) or type(e).__name__


def _xml(data: bytes) -> ET.Element:
    """Parsed with expat directly, refusing any document type declaration: no entity can be
    defined, so none can expand or be fetched (as ``courriel.web.autodiscover`` reads)."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def forbid(*_: object) -> None:
        raise FetchError("document type declarations are not accepted")

    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        return builder.close()
    except (expat.ExpatError, AssertionError) as e:
        raise FetchError(f"not well-formed XML: {e}") from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(el: ET.Element, name: str) -> str:
    for c in el:
        if _local(c.tag) == name:
            return (c.text or "").strip()
    return ""


# --- the documents --------------------------------------------------------------------------------


def parse_autoconfig(data: bytes, address: str, source: str) -> list[Target]:
    """Thunderbird's clientConfig 1.1: incomingServer and outgoingServer elements."""
    domain = address.rpartition("@")[2]
    out = []
    for el in _xml(data).iter():
        if _local(el.tag) not in ("incomingServer", "outgoingServer"):
            continue
        protocol = el.get("type", "").lower()
        host = _child(el, "hostname").replace("%EMAILDOMAIN%", domain)
        socket_type = _child(el, "socketType").upper()
        service = _SERVICE_OF.get((protocol, socket_type == "SSL"))
        port = _child(el, "port")
        if service and host and port.isdigit():
            out.append(Target(service, host, int(port), source))
    return out


def autodiscover_request(address: str) -> bytes:
    root = ET.Element(
        "Autodiscover",
        xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006",
    )
    request = ET.SubElement(root, "Request")
    ET.SubElement(request, "EMailAddress").text = address
    ET.SubElement(
        request, "AcceptableResponseSchema"
    ).text = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out


def parse_autodiscover(data: bytes, source: str) -> list[Target]:
    """The "outlook/responseschema/2006a" answer: one Protocol element per server."""
    out = []
    for el in _xml(data).iter():
        if _local(el.tag) != "Protocol":
            continue
        protocol = _child(el, "Type").lower()
        host, port = _child(el, "Server"), _child(el, "Port")
        encryption = _child(el, "Encryption").upper()
        implicit = encryption == "SSL" or (not encryption and _child(el, "SSL").lower() == "on")
        service = _SERVICE_OF.get((protocol, implicit))
        if service and host and port.isdigit():
            out.append(Target(service, host, int(port), source))
    return out


# --- the sources ----------------------------------------------------------------------------------


def _https_url(host: str, port: int, path: str) -> str:
    return f"https://{host}{'' if port == 443 else f':{port}'}{path}"


Attempt = tuple[str, Callable[[], list[Target]]]


def _autoconfig(web: Web, address: str, domain: str) -> list[Attempt]:
    query = urllib.parse.urlencode({"emailaddress": address})
    urls = (
        _https_url(f"autoconfig.{domain}", web.port, f"/mail/config-v1.1.xml?{query}"),
        _https_url(domain, web.port, "/.well-known/autoconfig/mail/config-v1.1.xml"),
    )
    return [
        (url, lambda url=url: parse_autoconfig(fetch(web, url), address, f"autoconfig {url}"))  # type: ignore[misc]
        for url in urls
    ]


def _autodiscover_xml(web: Web, address: str, url: str, source: str) -> list[Target]:
    return parse_autodiscover(fetch(web, url, autodiscover_request(address)), source)


def _autodiscover_json(web: Web, address: str, url: str) -> list[Target]:
    try:
        xml_url = str(json.loads(fetch(web, url))["Url"])
    except (ValueError, KeyError, TypeError):
        raise FetchError("not an AutodiscoverV1 answer") from None
    return _autodiscover_xml(web, address, xml_url, f"autodiscover {url} -> {xml_url}")


def _autodiscover(web: Web, address: str, domain: str) -> list[Attempt]:
    out: list[Attempt] = []
    for host in (f"autodiscover.{domain}", domain):
        url = _https_url(host, web.port, "/autodiscover/autodiscover.xml")
        out.append(
            (url, lambda url=url: _autodiscover_xml(web, address, url, f"autodiscover {url}"))  # type: ignore[misc]
        )
    query = urllib.parse.urlencode({"Email": address, "Protocol": "AutodiscoverV1"})
    url = _https_url(f"autodiscover.{domain}", web.port, f"/autodiscover/autodiscover.json?{query}")
    out.append((url, lambda: _autodiscover_json(web, address, url)))
    return out


def _srv(lookup: Lookup, domain: str) -> list[Target]:
    out = []
    for prefix, service in _SRV:
        records = lookup.srv(f"{prefix}.{domain}")
        for _prio, _weight, port, target in records[:1]:
            if target not in ("", "."):  # RFC 6186 §3.4: "." means not offered
                out.append(Target(service, target, port, f"SRV {prefix}.{domain}"))
    return out


def _usual(lookup: Lookup, domain: str, missing: set[str]) -> list[Target]:
    out = []
    for service in MAIL_SERVICES:
        if service not in missing:
            continue
        protocol, port, _ = SERVICES[service]
        for prefix in _USUAL_HOSTS[protocol]:
            host = f"{prefix}.{domain}"
            with contextlib.suppress(DnsLookupError):
                if lookup.addresses(host):
                    out.append(Target(service, host, port, f"usual name {host}", required=False))
                    break
    return out


def discover(report: Report, web: Web, address: str) -> dict[str, Target]:
    """service -> where to find it; every source's answer is a step of ``report``."""
    domain = address.rpartition("@")[2]
    found: dict[str, Target] = {}

    def take(name: str, start: float, targets: list[Target]) -> None:
        new = [t for t in targets if t.service not in found]
        for t in new:
            found[t.service] = t
        shown = ", ".join(f"{t.service} {t.host}:{t.port}" for t in targets) or "no servers"
        report.ok(SECTION, name, shown, time.monotonic() - start)

    for name, source in (("autoconfig", _autoconfig), ("autodiscover", _autodiscover)):
        for url, attempt in source(web, address, domain):
            report.begin(SECTION, f"{name} {url}")
            start = time.monotonic()
            try:
                targets = attempt()
            except FetchError as e:
                report.skip(SECTION, f"{name} {url}", f"nothing: {e}")
                continue
            take(f"{name} {url}", start, targets)
    start = time.monotonic()
    try:
        srv = _srv(web.lookup, domain)
    except DnsLookupError as e:
        report.skip(SECTION, "SRV", f"no answer from DNS: {e}")
        srv = []
    if srv:
        take("SRV (RFC 6186)", start, srv)
    else:
        report.skip(SECTION, "SRV (RFC 6186)", f"no SRV records for {domain}")
    missing = set(MAIL_SERVICES) - set(found)
    if missing:
        start = time.monotonic()
        usual = _usual(web.lookup, domain, missing)
        if usual:
            take("usual host names", start, usual)
    return found
