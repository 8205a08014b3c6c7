"""Connection-time checks on port 25: DNS blocklists, forward-confirmed reverse DNS, HELO.

Theory of operation
-------------------
``ConnectionChecks.client`` runs, while the greeting is held back, the checks that depend on
the client's address alone, all at once, each lookup bounded by ``dns_timeout_seconds``:

* **DNS blocklists** (``dnsbl_zones``): the address reversed (IPv4 by octet, IPv6 by nibble,
  RFC 5782 §2.1 and §2.4) under each zone. An A record in 127.0.0.0/8 means "listed"
  (RFC 5782 §2.1), except 127.255.255.0/24, which blocklists answer to say they refuse to
  answer us (a public resolver, over quota): those are ignored. The TXT record under the same
  name, when there is one, is the list's reason and is quoted in the reply (§2.2);
* **forward-confirmed reverse DNS** (``fcrdns``): a PTR name of the address must have the
  address among its own A or AAAA records (RFC 8601 §3 calls this "iprev"); the reply is
  550 5.7.25, "reverse DNS validation failed" (RFC 7372 §3.3).

``helo`` checks the name the client gave (``helo_checks``): RFC 5321 §4.1.1.1 wants a fully
qualified domain name or an address literal in brackets; a name that is our own host name is
a lie about who is talking.

A lookup that fails or times out (``DnsTempError``, ``TimeoutError``) counts as "not listed"
and "confirmed": a DNS problem never refuses mail. A refusal is returned, not sent: the
session answers RCPT with it (as Postfix delays its rejections to RCPT), so the client hears
the reason at a point where it reports it, and the log line says the same; mail to postmaster
still passes (RFC 5321 §4.5.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from courriel.config import JunkConfig
from courriel.logs import kv
from courriel.mail.auth.dns import DnsTempError, Resolver

log = logging.getLogger("courriel.junk")

T = TypeVar("T")
_LISTED = ipaddress.ip_network("127.0.0.0/8")
_RESOLVER_ERROR = ipaddress.ip_network("127.255.255.0/24")  # "we will not answer you"
MAX_PTR_NAMES = 10  # PTR names tried for forward confirmation


@dataclass(frozen=True, slots=True)
class Refusal:
    code: int
    enhanced: str
    text: str


def reversed_name(ip: str) -> str:
    """The address as blocklists spell it: ``4.3.2.1`` for 1.2.3.4, nibbles for IPv6."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    pointer = address.reverse_pointer
    return pointer.removesuffix(".in-addr.arpa").removesuffix(".ip6.arpa")


def plain_ip(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class ConnectionChecks:
    def __init__(self, cfg: JunkConfig, resolver: Resolver | None, hostname: str) -> None:
        self._cfg = cfg
        self._resolver = resolver
        self._hostname = hostname.lower().rstrip(".")

    @property
    def active(self) -> bool:
        """Whether ``client`` has anything to do."""
        return self._resolver is not None and bool(self._cfg.dnsbl_zones or self._cfg.fcrdns)

    async def _bounded(self, lookup: Awaitable[list[T]]) -> list[T] | None:
        """The answer, or None when DNS did not answer in time (never a refusal)."""
        try:
            async with asyncio.timeout(self._cfg.dns_timeout_seconds):
                return await lookup
        except (DnsTempError, TimeoutError):
            return None

    async def client(self, ip: str) -> Refusal | None:
        """The first refusal the client's address earns, or None."""
        if not self.active:
            return None
        checks = [self.blocklisted(ip, zone) for zone in self._cfg.dnsbl_zones]
        if self._cfg.fcrdns:
            checks.append(self.unconfirmed(ip))
        for found in await asyncio.gather(*checks):
            if found is not None:
                return found
        return None

    async def blocklisted(self, ip: str, zone: str) -> Refusal | None:
        assert self._resolver is not None
        try:
            name = f"{reversed_name(ip)}.{zone.strip('.')}"
        except ValueError:
            return None
        answers = await self._bounded(self._resolver.addresses(name, 4))
        codes = []
        for answer in answers or []:
            try:
                code = ipaddress.ip_address(answer)
            except ValueError:
                continue
            if code in _LISTED and code not in _RESOLVER_ERROR:  # RFC 5782 §2.1
                codes.append(str(code))
        if not codes:
            if answers:
                log.warning("blocklist answered with a resolver error code", extra=kv(zone=zone))
            return None
        reasons = await self._bounded(self._resolver.txt(name)) or []
        why = reasons[0].decode("utf-8", "replace")[:200] if reasons else ", ".join(codes)
        text = f"client {plain_ip(ip)} is listed by {zone} ({why})"
        log.info("client refused: %s", text)
        return Refusal(554, "5.7.1", text)  # RFC 5782 §2.2: the TXT reason is for the reply

    async def unconfirmed(self, ip: str) -> Refusal | None:
        assert self._resolver is not None
        address = plain_ip(ip)
        names = await self._bounded(self._resolver.ptr(address))
        if names is None:
            return None  # DNS trouble: no verdict
        family = ipaddress.ip_address(address).version
        for name in names[:MAX_PTR_NAMES]:
            forward = await self._bounded(self._resolver.addresses(name, family))
            if forward is None:
                return None
            if any(plain_ip(a) == address for a in forward if _is_ip(a)):
                return None
        if not names:
            text = f"client {address} has no reverse DNS (PTR) name"
        else:
            shown = ", ".join(n[:80] for n in names[:3])
            text = f"the reverse DNS name of {address} ({shown}) does not lead back to it"
        log.info("client refused: %s", text)
        return Refusal(550, "5.7.25", text)  # RFC 7372 §3.3: reverse DNS validation failed

    def helo(self, name: str) -> Refusal | None:
        """Whether the HELO/EHLO name is acceptable (``helo_checks``); None when it is."""
        if not self._cfg.helo_checks:
            return None
        clean = name.strip().lower().rstrip(".")
        if clean.startswith("[") and clean.endswith("]"):
            return None  # an address literal (RFC 5321 §4.1.3)
        if _is_ip(clean):
            text = f"HELO {name[:80]}: an address must be written in brackets, [{clean}]"
            return Refusal(550, "5.5.2", text)  # RFC 5321 §4.1.1.1
        if clean == self._hostname:
            return Refusal(550, "5.7.1", f"HELO {name[:80]}: that is this server's own name")
        if "." not in clean:
            text = f"HELO {name[:80]}: not a fully qualified domain name (RFC 5321 §4.1.1.1)"
            return Refusal(550, "5.5.2", text)
        return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def greylist_triple(ip: str, sender: str, recipient: str) -> str:
    """The greylist key: the client's /24 (IPv4) or /64 (IPv6) network, so a sender's pool of
    outgoing servers retrying from a neighbouring address is recognised, and both addresses."""
    address = ipaddress.ip_address(plain_ip(ip))
    prefix = 24 if address.version == 4 else 64
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return f"{network}|{sender.lower()[:254]}|{recipient.lower()[:254]}"
