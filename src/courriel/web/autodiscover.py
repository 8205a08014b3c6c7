"""Outlook's Autodiscover: the POX XML exchange and the JSON redirect newer versions try first.

Theory of operation
-------------------
Outlook POSTs a small XML request naming ``EMailAddress`` to ``/autodiscover/autodiscover.xml``
and reads the "outlook/responseschema/2006a" answer: one ``Protocol`` per server (Type IMAP, POP3
or SMTP; Server; Port; SSL on/off; Encryption; LoginName). ``email_address`` reads the request
with expat directly and refuses any document type declaration, so no entity can be defined, let
alone expanded (the "billion laughs" bomb) or fetched; the body is size-limited by the caller.
Newer Outlook first asks ``/autodiscover/autodiscover.json?Email=…&Protocol=AutodiscoverV1``
and is told where the XML endpoint is.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

from courriel.web.settings import Offer

MAX_REQUEST_BYTES = 16384
RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
_TYPES = {"imap": "IMAP", "pop3": "POP3", "smtp": "SMTP"}


class BadRequestError(ValueError):
    """The request is not an Autodiscover request we accept; the message says why."""


def email_address(body: bytes) -> str:
    """The ``EMailAddress`` of a POX request; raises ``BadRequestError``."""
    if len(body) > MAX_REQUEST_BYTES:
        raise BadRequestError("request too large")
    parser = expat.ParserCreate(namespace_separator=" ")
    path: list[str] = []
    found: list[str] = []

    def forbid(*_: object) -> None:
        raise BadRequestError("document type declarations are not accepted")

    def start(name: str, _attrs: dict[str, str]) -> None:
        path.append(name.rpartition(" ")[2])

    def end(_name: str) -> None:
        path.pop()

    def text(data: str) -> None:
        if path and path[-1] == "EMailAddress":
            found.append(data)

    parser.StartDoctypeDeclHandler = forbid
    parser.EntityDeclHandler = forbid
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(body, True)
    except expat.ExpatError as e:
        raise BadRequestError(f"not well-formed XML: {e}") from None
    address = "".join(found).strip()
    if not address:
        raise BadRequestError("no EMailAddress in the request")
    return address


def pox_response(address: str, offer: Offer) -> bytes:
    root = ET.Element("Autodiscover", xmlns=RESPONSE_NS)
    response = ET.SubElement(root, "Response", xmlns=OUTLOOK_NS)
    account = ET.SubElement(response, "Account")
    ET.SubElement(account, "AccountType").text = "email"
    ET.SubElement(account, "Action").text = "settings"
    for server in offer.servers:
        proto = ET.SubElement(account, "Protocol")
        ET.SubElement(proto, "Type").text = _TYPES[server.protocol]
        ET.SubElement(proto, "Server").text = offer.hostname
        ET.SubElement(proto, "Port").text = str(server.port)
        ET.SubElement(proto, "LoginName").text = address
        ET.SubElement(proto, "DomainRequired").text = "off"
        ET.SubElement(proto, "SPA").text = "off"
        ET.SubElement(proto, "SSL").text = "on"  # STARTTLS is still TLS to Outlook
        ET.SubElement(proto, "Encryption").text = "SSL" if server.implicit_tls else "TLS"
        ET.SubElement(proto, "AuthRequired").text = "on"
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out


def json_response(offer: Offer) -> dict[str, Any]:
    return {"Protocol": "AutodiscoverV1", "Url": f"{offer.web_url}/autodiscover/autodiscover.xml"}
