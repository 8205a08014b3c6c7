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

The implementation is ``courriel.auth_resolver.AuthResolver``, the server's own resolver
(``courriel.net.resolver``) answering in these shapes; this module stays free of I/O so the
checks in this package are pure but for the questions they ask.
"""

from __future__ import annotations

from typing import Protocol

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
