"""The one DNS interface the mail-authentication checks use, and its dnspython implementation.

Theory of operation
-------------------
SPF, DKIM and DMARC ask DNS four kinds of question: TXT (policies, keys), A/AAAA and MX (SPF
mechanisms), PTR (SPF ``ptr``, forward-confirmed reverse DNS). ``Resolver`` is that much and no
more, so a check can be handed any resolver (the server's, or one pointed at a test server).

Answers have two shapes only, because that is what the RFCs distinguish:

* a list, empty when the name does not exist (NXDOMAIN) or has no record of that type -- both
  are the "void lookup" of RFC 7208 §4.6.4 and "no record" for DKIM and DMARC;
* ``DnsTempError`` when no answer could be had (timeout, SERVFAIL, refused, no server): the
  caller must say "try again later" and never turn it into a verdict.

A name that cannot exist in DNS (an empty or over-long label, as SPF macro expansion can make)
is answered with an empty list without a query. TXT answers are bounded: at most
``MAX_TXT_RECORDS`` strings of at most ``MAX_TXT_BYTES`` each are kept, so a hostile record
costs bounded memory and parsing.

``DnsPythonResolver`` answers through dnspython's asyncio resolver with an LRU cache (TTL-bound,
shared by every check of the process), a configurable list of nameservers and port, and one
lifetime per question.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

MAX_TXT_RECORDS = 20  # records of one TXT answer looked at; more is abuse, not policy
MAX_TXT_BYTES = 8192  # an RSA-4096 DKIM key is about 800 bytes; SPF allows 450 or so (§3.4)


class DnsTempError(Exception):
    """No answer could be had now (timeout, SERVFAIL, no reachable server); ask again later."""


class Resolver(Protocol):
    async def txt(self, name: str) -> list[bytes]:
        """Each TXT record of ``name`` with its strings joined (RFC 7208 §3.3)."""

    async def addresses(self, name: str, family: int) -> list[str]:
        """A (family 4) or AAAA (family 6) records of ``name``, as text."""

    async def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, exchange) pairs; exchange without the trailing dot."""

    async def ptr(self, address: str) -> list[str]:
        """Names of the reverse (PTR) records of an IP address, without the trailing dot."""


def valid_name(name: str) -> bool:
    """Whether ``name`` could exist in DNS at all (labels 1..63 octets, 253 in total)."""
    name = name.rstrip(".")
    if not name or len(name) > 253:
        return False
    return all(0 < len(label) < 64 for label in name.split("."))


class DnsPythonResolver:
    """``Resolver`` over dnspython: configured nameservers (or the system's), a shared cache."""

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        port: int = 53,
        timeout: float = 5.0,
        cache_size: int = 10_000,
    ) -> None:
        # configure=True reads /etc/resolv.conf; with servers given, nothing is read.
        self._r = dns.asyncresolver.Resolver(configure=not nameservers)
        if nameservers:
            self._r.nameservers = list(nameservers)
        self._r.port = port
        self._r.timeout = timeout
        self._r.lifetime = timeout
        self._r.cache = dns.resolver.LRUCache(cache_size)

    async def _answer(self, name: str | dns.name.Name, rdtype: str) -> list[object]:
        if isinstance(name, str) and not valid_name(name):
            return []
        try:
            answer = await self._r.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as e:
            raise DnsTempError(f"{rdtype} {name}: {_plain(e)}") from None
        except (dns.name.LabelTooLong, dns.name.EmptyLabel, dns.name.NameTooLong):
            return []
        except dns.exception.DNSException as e:
            raise DnsTempError(f"{rdtype} {name}: {_plain(e)}") from None
        return list(answer.rrset) if answer.rrset is not None else []

    async def txt(self, name: str) -> list[bytes]:
        out = []
        for rdata in (await self._answer(name, "TXT"))[:MAX_TXT_RECORDS]:
            strings = rdata.strings  # type: ignore[attr-defined]
            out.append(b"".join(strings)[:MAX_TXT_BYTES])
        return out

    async def addresses(self, name: str, family: int) -> list[str]:
        rdtype = "A" if family == 4 else "AAAA"
        return [str(rdata.address) for rdata in await self._answer(name, rdtype)]  # type: ignore[attr-defined]

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return [
            (int(r.preference), r.exchange.to_text(omit_final_dot=True))  # type: ignore[attr-defined]
            for r in await self._answer(name, "MX")
        ]

    async def ptr(self, address: str) -> list[str]:
        try:
            rev = dns.reversename.from_address(str(ipaddress.ip_address(address)))
        except ValueError:
            return []
        return [
            r.target.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
            for r in await self._answer(rev, "PTR")
        ]

    async def records(self, name: str, rdtype: str) -> list[str]:
        """Any type in presentation form, TXT strings joined and unquoted (``courriel dns``).

        For PTR, ``name`` may be an IP address.
        """
        if rdtype == "PTR":
            with contextlib.suppress(ValueError):
                return await self.ptr(str(ipaddress.ip_address(name)))
        if rdtype == "TXT":
            return [t.decode("utf-8", "replace") for t in await self.txt(name)]
        return [rdata.to_text() for rdata in await self._answer(name, rdtype)]  # type: ignore[attr-defined]


def _plain(e: Exception) -> str:
    if isinstance(e, dns.exception.Timeout):
        return "no answer in time"
    if isinstance(e, dns.resolver.NoNameservers):
        return "no server gave an answer (SERVFAIL or refused)"
    return str(e) or type(e).__name__
