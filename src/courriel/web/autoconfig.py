"""Thunderbird's autoconfig document (also read by K-9 Mail and FairEmail).

Theory of operation
-------------------
Thunderbird asks ``https://autoconfig.DOMAIN/mail/config-v1.1.xml?emailaddress=ADDR`` and
``https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml``; both get the same "clientConfig
1.1" document: one ``incomingServer`` per IMAP/POP3 listener and one ``outgoingServer`` per
submission listener, with the user name ``%EMAILADDRESS%`` (Thunderbird substitutes the address
typed). The XML is built with ElementTree, which escapes every text it writes; the only value
from the request in it is the domain, and only after the store said it is hosted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from courriel.web.settings import Offer

CONTENT_TYPE = "application/xml"


def document(domain: str, offer: Offer) -> bytes:
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=domain)
    ET.SubElement(provider, "domain").text = domain
    ET.SubElement(provider, "displayName").text = f"{domain} mail"
    ET.SubElement(provider, "displayShortName").text = domain
    for server in offer.servers:
        tag = "incomingServer" if server.incoming else "outgoingServer"
        el = ET.SubElement(provider, tag, type=server.protocol)
        ET.SubElement(el, "hostname").text = offer.hostname
        ET.SubElement(el, "port").text = str(server.port)
        ET.SubElement(el, "socketType").text = "SSL" if server.implicit_tls else "STARTTLS"
        ET.SubElement(el, "authentication").text = "password-cleartext"  # inside TLS
        ET.SubElement(el, "username").text = "%EMAILADDRESS%"
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out
