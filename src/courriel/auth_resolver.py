"""The server's resolver (``courriel.net.resolver``) in the shapes SPF, DKIM and DMARC need.

Theory of operation
-------------------
The relay queue and the authentication checks share one resolver: ``AuthResolver`` holds a
``DnsResolver`` (the same ``[dns] nameservers``, the same failure rules) and answers the
``courriel.mail.auth.dns.Resolver`` questions with it. The checks see two shapes only:

* a list, empty for a name that does not exist as well as for one without records of the
  type asked -- both are "void" to SPF (RFC 7208 §4.6.4) and "no record" to DKIM and DMARC;
* ``DnsTempError`` when the resolver's failure is temporary (timeout, SERVFAIL, refused).

A name that cannot exist (an empty or over-long label, as SPF macros can make) is answered
with an empty list without a query. TXT answers are cut to ``MAX_TXT_RECORDS`` records of
``MAX_TXT_BYTES`` each, so a hostile record costs bounded memory.

The net resolver keeps answers for their TTL in a cache of ``cache_size`` entries (least
recently used first out), so the SPF record, DMARC policy and DKIM and ARC keys of a busy
sender are asked once, not once per message. Each worker has one ``AuthResolver``: SPF, DKIM,
DMARC, ARC, the DMARC report destinations and the DKIM publication check share its cache.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence
from typing import Any

import dns.reversename

from courriel.mail.auth.dns import MAX_TXT_BYTES, MAX_TXT_RECORDS, DnsTempError, valid_name
from courriel.net.resolver import DnsFailure, DnsResolver


class AuthResolver:
    """``courriel.mail.auth.dns.Resolver`` over the server's ``DnsResolver``."""

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        timeout: float = 5.0,
        net: DnsResolver | None = None,
        cache_size: int = 10_000,
    ) -> None:
        # The server passes its own ``net`` (one cache for relay and checks); tests and the
        # command line name servers.
        self._net = net or DnsResolver(nameservers, timeout, cache_size)

    async def _answer(self, name: str, rdtype: str) -> list[Any]:
        if not valid_name(name):
            return []
        try:
            # The net resolver's query: the one place where DNS failures are sorted.
            answer = await self._net.query(name.rstrip("."), rdtype)
        except DnsFailure as e:
            if e.temporary:
                raise DnsTempError(e.text) from None
            return []  # the name does not exist: no records
        return [] if answer is None else list(answer)

    async def txt(self, name: str) -> list[bytes]:
        records = (await self._answer(name, "TXT"))[:MAX_TXT_RECORDS]
        return [b"".join(r.strings)[:MAX_TXT_BYTES] for r in records]

    async def addresses(self, name: str, family: int) -> list[str]:
        return [str(r.address) for r in await self._answer(name, "A" if family == 4 else "AAAA")]

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return [
            (int(r.preference), r.exchange.to_text(omit_final_dot=True))
            for r in await self._answer(name, "MX")
        ]

    async def ptr(self, address: str) -> list[str]:
        try:
            rev = dns.reversename.from_address(str(ipaddress.ip_address(address)))
        except ValueError:
            return []
        return [
            r.target.to_text(omit_final_dot=True) for r in await self._answer(rev.to_text(), "PTR")
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
        return [r.to_text() for r in await self._answer(name, rdtype)]
