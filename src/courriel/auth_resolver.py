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

Answers are cached until their TTL runs out (negative ones for ``NEGATIVE_SECONDS``), at most
``cache_size`` of them, so the SPF record, DMARC policy and DKIM keys of a busy sender are
asked once, not once per message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import dns.reversename

from courriel.mail.auth.dns import MAX_TXT_BYTES, MAX_TXT_RECORDS, DnsTempError, valid_name
from courriel.net.resolver import DnsFailure, DnsResolver

NEGATIVE_SECONDS = 60.0


class AuthResolver:
    """``courriel.mail.auth.dns.Resolver`` over the server's ``DnsResolver``, with a cache."""

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        timeout: float = 5.0,
        cache_size: int = 10_000,
        net: DnsResolver | None = None,
    ) -> None:
        self._net = net or DnsResolver(nameservers, timeout)
        self._cache: OrderedDict[tuple[str, str], tuple[float, list[Any]]] = OrderedDict()
        self._cache_size = cache_size

    async def _answer(self, name: str, rdtype: str) -> list[Any]:
        if not valid_name(name):
            return []
        key = (name.lower().rstrip("."), rdtype)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            self._cache.move_to_end(key)
            return hit[1]
        try:
            # The net resolver's query: the one place where DNS failures are sorted.
            answer = await self._net._query(key[0], rdtype)
        except DnsFailure as e:
            if e.temporary:
                raise DnsTempError(e.text) from None
            answer = None  # the name does not exist: no records
        records = [] if answer is None else list(answer)
        ttl = NEGATIVE_SECONDS if answer is None else max(0.0, answer.expiration - time.time())
        self._remember(key, time.monotonic() + ttl, records)
        return records

    def _remember(self, key: tuple[str, str], until: float, records: list[Any]) -> None:
        self._cache[key] = (until, records)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

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
