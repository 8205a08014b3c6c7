"""DNS for outbound mail: MX, A/AAAA, TXT and TLSA through dnspython's async resolver.

Theory of operation
-------------------
``DnsResolver`` wraps one ``dns.asyncresolver.Resolver``, built from ``[dns] nameservers``
("host" or "host:port", "[v6]:port") or, when that list is empty, from the system's
/etc/resolv.conf. Every lookup answers with records or raises ``DnsFailure``, which says whether
trying again later may help and why, in words for a bounce:

* NXDOMAIN (and YXDOMAIN) is permanent: "the domain example.org does not exist";
* no answer of that type is an empty list, not a failure (the caller decides: no MX means
  "use the address records", RFC 5321 §5.1);
* SERVFAIL, REFUSED, a timeout, or no reachable server is temporary: DNS trouble passes.

``mail_hosts`` applies RFC 5321 §5.1: MX targets by preference, shuffled among equal
preferences so load spreads as the domain's owner meant; no MX records means the domain itself
is the one host (the "implicit MX"); a single MX "." is a null MX (RFC 7505 §3) and a
permanent "the domain does not accept mail". CNAMEs are followed by dnspython (RFC 5321 §5.1
asks for the canonical name); domain names are turned into A-labels first (IDNA 2008, UTS 46).

Answers are cached for their TTL (dnspython's LRU cache, ``cache_size`` entries, 10,000 by
default; negative answers too, for the SOA minimum the server sends).

``addresses`` looks up AAAA and A together and returns IPv6 before IPv4, so a host reachable
both ways is tried both ways. ``tlsa`` returns the records and whether the resolver set the
AD bit on the answer: with a local validating resolver (the only setup in which the AD bit can
be trusted, as Postfix's DANE support also assumes) that says the records are DNSSEC-signed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.nameserver
import dns.rdatatype
import dns.resolver
import idna

from courriel.config import ConfigError, parse_nameserver


class DnsFailure(Exception):  # noqa: N818 - a failure to report, not a program error
    """A lookup failed; ``temporary`` says whether trying later may help."""

    def __init__(self, text: str, *, temporary: bool, enhanced: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.temporary = temporary
        # RFC 3463: 4.4.3 (DNS trouble) or 5.1.2 (no such destination) unless said otherwise
        self.enhanced = enhanced or ("4.4.3" if temporary else "5.1.2")


@dataclass(frozen=True, slots=True)
class MailHost:
    name: str  # the exchanger's name, an A-label without the final dot
    preference: int  # -1 for the implicit MX (the domain's own address records)
    authenticated: bool = False  # the MX answer carried the AD bit (DNSSEC-validated)


@dataclass(frozen=True, slots=True)
class Tlsa:
    usage: int
    selector: int
    mtype: int
    data: bytes


def a_label(domain: str) -> str:
    """The ASCII form of ``domain``; raises ``DnsFailure`` (permanent) when it has none."""
    domain = domain.rstrip(".")
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as e:
        raise DnsFailure(f"{domain!r} is not a valid domain name: {e}", temporary=False) from e


class DnsResolver:
    """Async lookups with failures sorted into temporary and permanent."""

    def __init__(
        self, nameservers: Sequence[str] = (), timeout: float = 10.0, cache_size: int = 10_000
    ) -> None:
        if nameservers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_nameserver(ns)) for ns in nameservers
            ]
        else:
            try:
                self._resolver = dns.asyncresolver.Resolver()  # /etc/resolv.conf
            except dns.resolver.NoResolverConfiguration as e:
                raise ConfigError(
                    "[dns] nameservers is empty and /etc/resolv.conf names no DNS server"
                ) from e
        self._resolver.lifetime = timeout
        # Answers are kept for their TTL: a busy relay asks MX, A, AAAA and TLSA for every
        # message, and most messages go to a few domains.
        self._resolver.cache = dns.resolver.LRUCache(cache_size)
        # Ask for the AD bit (RFC 6840 §5.7) so a validating resolver says what it validated.
        self._resolver.flags = dns.flags.RD | dns.flags.AD

    async def query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        """The answer for ``name``/``rdtype``, ``None`` when there is none of that type; raises
        ``DnsFailure`` sorted as the module docstring says (SPF, DKIM and DMARC use it too)."""
        try:
            return await self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN) as e:
            if isinstance(e, dns.resolver.NoAnswer):
                return None
            raise DnsFailure(f"the domain {name} does not exist", temporary=False) from e
        except dns.resolver.YXDOMAIN as e:
            raise DnsFailure(f"the name {name} is too long", temporary=False) from e
        except dns.resolver.NoNameservers as e:
            raise DnsFailure(
                f"DNS servers could not answer for {name} ({rdtype}): they failed or refused",
                temporary=True,
            ) from e
        except dns.exception.Timeout as e:
            raise DnsFailure(f"DNS lookup of {name} ({rdtype}) timed out", temporary=True) from e
        except dns.exception.DNSException as e:
            raise DnsFailure(f"DNS lookup of {name} ({rdtype}) failed: {e}", temporary=True) from e

    async def mail_hosts(self, domain: str) -> list[MailHost]:
        """Where mail for ``domain`` goes, in the order to try (RFC 5321 §5.1)."""
        domain = a_label(domain)
        answer = await self.query(domain, "MX")
        if answer is None:
            return [MailHost(domain, -1)]  # RFC 5321 §5.1: the implicit MX
        records = [(r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in answer]
        if any(name in ("", ".") for _, name in records):
            if len(records) == 1:  # RFC 7505 §3: a single MX "." (any preference)
                raise DnsFailure(
                    f"the domain {domain} does not accept mail (it publishes a null MX)",
                    temporary=False,
                    enhanced="5.1.10",  # RFC 7505 §4.2
                )
            records = [(p, n) for p, n in records if n not in ("", ".")]  # RFC 7505 §4.3
        secure = bool(answer.response.flags & dns.flags.AD)
        by_preference: dict[int, list[str]] = {}
        for preference, name in records:
            by_preference.setdefault(preference, []).append(name)
        hosts: list[MailHost] = []
        for preference in sorted(by_preference):
            names = by_preference[preference]
            random.shuffle(names)  # RFC 5321 §5.1: spread load among equal preferences
            hosts += [MailHost(n, preference, secure) for n in names]
        return hosts

    async def addresses(self, host: str) -> list[str]:
        """IPv6 then IPv4 addresses of ``host``; raises ``DnsFailure`` if there are none."""
        with contextlib.suppress(ValueError):  # a smarthost given as an address: no lookup
            return [str(ipaddress.ip_address(host.strip("[]")))]
        host = a_label(host)
        results = await asyncio.gather(
            self.query(host, "AAAA"), self.query(host, "A"), return_exceptions=True
        )
        out: list[str] = []
        failures: list[DnsFailure] = []
        for result in results:
            if isinstance(result, DnsFailure):
                failures.append(result)
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                out += [r.address for r in result]
        if out:
            return out
        if failures:
            raise min(failures, key=lambda f: not f.temporary)  # a temporary failure wins
        raise DnsFailure(f"the host {host} has no IPv4 or IPv6 address", temporary=False)

    async def txt(self, name: str) -> list[str]:
        """TXT strings of ``name`` (each record's strings joined, RFC 7208 §3.3 style)."""
        answer = await self.query(a_label(name), "TXT")
        if answer is None:
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    async def tlsa(self, name: str) -> tuple[list[Tlsa], bool]:
        """TLSA records of ``name`` and whether the answer was DNSSEC-authenticated (AD bit).

        A name that does not exist has no records (RFC 7672 §2.2.1: authenticated denial
        means no DANE); a temporary failure raises ``DnsFailure``.
        """
        try:
            answer = await self.query(a_label(name), "TLSA")
        except DnsFailure as e:
            if e.temporary:
                raise
            return [], False
        if answer is None:
            return [], False
        records = [Tlsa(r.usage, r.selector, r.mtype, r.cert) for r in answer]
        return records, bool(answer.response.flags & dns.flags.AD)
