"""DNS for the client-side check: addresses, MX, SRV and TXT, from a chosen server or the system's.

Theory of operation
-------------------
A mail program asks the system's resolver; ``Lookup()`` does the same (dnspython reads
/etc/resolv.conf). ``Lookup(["127.0.0.1:5353"])`` asks the named servers instead, in the
``[dns] nameservers`` form (``courriel.config.parse_nameserver``), which is how tests point the
check at a DNS server on loopback. The client check is a blocking program run step by step, so
these are plain blocking queries with a timeout. A name that does not exist and a name without
records of the type asked both answer ``[]``; a server that does not answer raises
``DnsLookupError``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import dns.exception
import dns.resolver

from courriel.config import parse_nameserver


class DnsLookupError(Exception):
    """DNS gave no usable answer (timeout, SERVFAIL, refused)."""


class Lookup:
    def __init__(self, nameservers: Sequence[str] = (), timeout: float = 5.0) -> None:
        self.nameservers = tuple(nameservers)
        if nameservers:
            self._resolver = dns.resolver.Resolver(configure=False)
            pairs = [parse_nameserver(n) for n in nameservers]
            self._resolver.nameservers = [h for h, _ in pairs]
            self._resolver.port = pairs[0][1]  # dnspython has one port for all servers
        else:
            self._resolver = dns.resolver.Resolver()
        self._resolver.lifetime = timeout

    def _query(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        try:
            return list(self._resolver.resolve(name, rdtype))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as e:
            raise DnsLookupError(f"{name} {rdtype}: {e}") from None

    def addresses(self, host: str) -> list[str]:
        """IPv4 then IPv6 addresses of ``host``; an address literal is its own answer."""
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        found = [r.to_text() for r in self._query(host, "A")]
        return found + [r.to_text() for r in self._query(host, "AAAA")]

    def mx(self, domain: str) -> list[tuple[int, str]]:
        records = self._query(domain, "MX")
        hosts = [(int(r.preference), r.exchange.to_text(omit_final_dot=True)) for r in records]  # type: ignore[attr-defined]
        return sorted(hosts)

    def srv(self, name: str) -> list[tuple[int, int, int, str]]:
        """(priority, weight, port, target) ordered by priority then weight (RFC 2782)."""
        out = []
        for r in self._query(name, "SRV"):
            target = r.target.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
            out.append((int(r.priority), -int(r.weight), int(r.port), target))  # type: ignore[attr-defined]
        return [(p, -w, port, t) for p, w, port, t in sorted(out)]
