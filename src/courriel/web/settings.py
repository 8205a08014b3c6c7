"""What the set-up documents announce: the host name and the mail listeners actually bound.

Theory of operation
-------------------
``Offer`` is built once per worker from ``clientsettings.endpoints`` (the table ``courriel serve``
prints), so Thunderbird's, Outlook's and the printed settings can never disagree. Each entry is
one server a mail program may use, implicit TLS listed before STARTTLS (RFC 8314 §5.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from courriel.clientsettings import Endpoint

# listener -> (protocol as the documents name it, incoming?)
_KIND = {
    "imaps": ("imap", True),
    "imap": ("imap", True),
    "pop3s": ("pop3", True),
    "pop3": ("pop3", True),
    "submissions": ("smtp", False),
    "submission": ("smtp", False),
}


@dataclass(frozen=True, slots=True)
class Server:
    protocol: str  # imap | pop3 | smtp
    incoming: bool
    port: int
    implicit_tls: bool


@dataclass(frozen=True, slots=True)
class Offer:
    hostname: str
    servers: tuple[Server, ...]
    web_url: str  # https://host[:port], where the set-up documents are served


def offer(hostname: str, endpoints: Sequence[Endpoint], https_port: int) -> Offer:
    servers = [
        Server(_KIND[ep.listener][0], _KIND[ep.listener][1], ep.port, ep.implicit_tls)
        for ep in endpoints
        if ep.listener in _KIND
    ]
    servers.sort(key=lambda s: (not s.incoming, s.protocol, not s.implicit_tls))
    url = f"https://{hostname}" + ("" if https_port == 443 else f":{https_port}")
    return Offer(hostname, tuple(servers), url)
