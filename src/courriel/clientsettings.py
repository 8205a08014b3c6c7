"""The settings a person types into their mail program, printed when the server is ready.

Theory of operation
-------------------
``render`` is a pure function from what was actually bound (``Endpoint``: listener, address, port)
to the text shown at start-up, so what the table says is always where the server listens. One row
per listener, in the order of ``courriel.config.LISTENERS`` (implicit TLS first, as RFC 8314 §3
recommends), with the words Thunderbird, Outlook and Apple Mail use in their account dialogs:

* Server: the configured hostname; when the listener is bound to a loopback address the address
  is offered too, because on a test machine the hostname rarely resolves to it. A note then says
  why (``ports.Bound.fallback``: a port in use, no permission for ports below 1024).
* Security: "SSL/TLS" for implicit TLS (RFC 8314), "STARTTLS" for the upgrade (RFC 3207, 2595).
* User name: the full e-mail address; Authentication: "normal password" (SASL PLAIN/LOGIN inside
  TLS). The MX listener (port 25) takes no login: other servers deliver there.
* The web listeners close the table: https (set-up documents, MTA-STS, Apple profiles) and
  http (redirects to https; ACME HTTP-01 challenges), no mail program login.

Notes follow the table: loopback-only listeners and how to change that, and the certificate's
SHA-256 fingerprint when it is self-signed, so the warning a mail program shows can be checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from courriel.config import LISTENERS
from courriel.net.ports import Bound, is_loopback
from courriel.net.tls import CertificateInfo

USER_NAME = "your full e-mail address"
AUTHENTICATION = "normal password"
NO_LOGIN = "none"

# listener name -> the service as a mail program's account dialog names it
_SERVICES = {
    "imaps": "IMAP (incoming)",
    "imap": "IMAP (incoming)",
    "pop3s": "POP3 (incoming)",
    "pop3": "POP3 (incoming)",
    "submissions": "SMTP (outgoing)",
    "submission": "SMTP (outgoing)",
    "smtp": "SMTP MX (inbound)",
    # Where browsers and mail programs fetch set-up documents (and ACME validates the names).
    "https": "Web (set-up, profiles)",
    "http": "Web (redirects, ACME)",
    "sieve": "ManageSieve (filters)",
}
_NO_LOGIN = {"smtp", "https", "http"}  # other servers or browsers; no mail program login
HEADER = ("Service", "Server", "Port", "Security", "User name", "Authentication")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one listener ended up."""

    listener: str  # name in the configuration: imaps, imap, ..., smtp
    implicit_tls: bool
    address: str  # "" = all addresses
    port: int
    fallback: str = ""  # why the preferred port was not used (``net.ports.Bound.fallback``)


def endpoints(bound: Sequence[Bound]) -> list[Endpoint]:
    """Every listener among those bound: the mail ones, then the web ones."""
    return [
        Endpoint(b.config.name, b.config.implicit_tls, b.address, b.port, b.fallback)
        for b in bound
        if b.config.name in _SERVICES
    ]


def server_name(hostname: str, address: str) -> str:
    if address and is_loopback(address):
        return f"{hostname} or {address}" if hostname != address else address
    return hostname


def row(hostname: str, ep: Endpoint) -> tuple[str, ...]:
    login = ep.listener not in _NO_LOGIN
    if ep.implicit_tls:
        security = "SSL/TLS"
    else:
        security = "none" if ep.listener == "http" else "STARTTLS"  # http never upgrades
    return (
        _SERVICES[ep.listener],
        server_name(hostname, ep.address),
        str(ep.port),
        security,
        USER_NAME if login else NO_LOGIN,
        AUTHENTICATION if login else NO_LOGIN,
    )


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [cell.ljust(width) for cell, width in zip(r, widths, strict=True)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    rule = "  " + "  ".join("-" * w for w in widths)
    return [lines[0], rule, *lines[1:]]


def order(ep: Endpoint) -> int:
    names = list(LISTENERS)
    return names.index(ep.listener) if ep.listener in names else len(names)


def _notes(endpoints: Sequence[Endpoint], config_path: Path | None) -> list[str]:
    local = [ep for ep in endpoints if ep.address and is_loopback(ep.address)]
    if not local:
        return []
    names = ", ".join(ep.listener for ep in local)
    lines = [f"Only programs on this machine can reach {names} (loopback address)."]
    lines += [f"  {ep.listener}: {ep.fallback}" for ep in local if ep.fallback]
    where = " in" if config_path is not None else "."
    lines.append(f"To serve other machines, set address and port under [listeners.NAME]{where}")
    if config_path is not None:
        lines.append(f"  {config_path}")
    return lines


def _certificate(cert: CertificateInfo) -> list[str]:
    until = cert.not_after.strftime("%Y-%m-%d")
    if cert.self_signed:
        return [
            "The certificate is self-signed: your mail program will ask once whether to trust it.",
            "Accept it if it shows this SHA-256 fingerprint:",
            f"  {cert.sha256}",
        ]
    return [f"Certificate: {cert.subject}, valid until {until} ({cert.source or cert.cert_path})."]


def render(
    hostname: str,
    endpoints: Sequence[Endpoint],
    *,
    cert: CertificateInfo | None = None,
    config_path: Path | None = None,
) -> str:
    """The whole start-up text, ending with a newline."""
    if not endpoints:
        return "courriel is running with every listener disabled: there is nothing to set up.\n"
    ordered = sorted(endpoints, key=order)
    lines = [
        "courriel is ready. Settings for your mail program (Thunderbird, Outlook, Apple Mail):",
        "",
        *_table([HEADER, *(row(hostname, ep) for ep in ordered)]),
    ]
    for block in (_notes(ordered, config_path), _certificate(cert) if cert else []):
        if block:
            lines += ["", *block]
    return "\n".join(lines) + "\n"
