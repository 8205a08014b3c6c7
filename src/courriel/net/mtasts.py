"""MTA-STS policies (RFC 8461) fetched over HTTPS, cached on disk until they expire.

Theory of operation
-------------------
``MtaSts.policy(domain)`` answers the policy to apply now, or ``None``:

1. the TXT record ``_mta-sts.<domain>`` gives the policy id (``courriel.mail.mtasts``);
2. a cached policy with that id, not past its ``max_age``, is used as it is;
3. otherwise ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` is fetched: the certificate
   must be valid for that name (RFC 8461 §3.3), redirects are not followed, only a 200 with a
   ``text/plain`` body of at most 64 KiB counts, within ``timeout`` seconds; the policy is
   stored with its id and the time it was fetched;
4. if the record or the fetch fails, an unexpired cached policy still applies (RFC 8461 §5.1:
   that is what protects against an attacker who blocks the fetch); with none, the domain has
   no policy and mail goes with opportunistic TLS.

A cached policy whose TXT id changed is fetched again; so is one past ``max_age``.
The cache is a JSON file per domain under ``cache_dir`` (so every worker process and a restart
see it) and a dictionary in memory in front of it.

The HTTPS client is aiohttp's, with two honest knobs for private setups and tests: the host
name ``mta-sts.<domain>`` is resolved through courriel's own ``DnsResolver`` (so ``[dns]
nameservers`` applies here too), and ``ca_file`` adds a private CA to the trust store. ``port``
is 443 except in tests that cannot bind it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import time
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from courriel.logs import kv
from courriel.mail.mtasts import (
    MAX_POLICY_BYTES,
    Mode,
    Policy,
    PolicyError,
    parse_policy,
    parse_txt,
)
from courriel.net.resolver import DnsFailure, DnsResolver, a_label

log = logging.getLogger("courriel.relay")


class _Resolver(AbstractResolver):
    """aiohttp name lookups through courriel's DNS settings."""

    def __init__(self, dns: DnsResolver) -> None:
        self._dns = dns

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await self._dns.addresses(host)
        except DnsFailure as e:
            raise OSError(e.text) from None
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        return None


class MtaSts:
    """Policies per domain; see the module docstring."""

    def __init__(
        self,
        dns: DnsResolver,
        cache_dir: Path | None,
        *,
        ca_file: str | None = None,
        port: int = 443,
        timeout: float = 30.0,
    ) -> None:
        self._dns = dns
        self._cache_dir = cache_dir
        self._port = port
        self._timeout = timeout
        self._ssl = ssl.create_default_context()
        if ca_file:
            self._ssl.load_verify_locations(cafile=ca_file)
        self._memory: dict[str, tuple[str, float, Policy]] = {}  # domain -> (id, fetched, policy)

    async def policy(self, domain: str) -> Policy | None:
        domain = a_label(domain)
        cached = self._cached(domain)
        try:
            policy_id = parse_txt(await self._dns.txt(f"_mta-sts.{domain}"))
        except DnsFailure as e:
            log.info("mta-sts record lookup failed", extra=kv(domain=domain, reason=e.text))
            return cached[2] if cached else None
        if policy_id is None:
            return cached[2] if cached else None  # RFC 8461 §5.1: keep an unexpired policy
        if cached and cached[0] == policy_id:
            return cached[2]
        try:
            policy = parse_policy(await self._fetch(domain))
        except (PolicyError, aiohttp.ClientError, OSError, TimeoutError, UnicodeDecodeError) as e:
            log.warning("mta-sts policy fetch failed", extra=kv(domain=domain, reason=str(e)))
            return cached[2] if cached else None
        self._store(domain, policy_id, policy)
        return policy

    async def _fetch(self, domain: str) -> str:
        url = f"https://mta-sts.{domain}:{self._port}/.well-known/mta-sts.txt"
        connector = aiohttp.TCPConnector(resolver=_Resolver(self._dns), ssl=self._ssl)
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.get(url, allow_redirects=False) as response,  # RFC 8461 §3.3
        ):
            if response.status != 200:
                raise PolicyError(f"{url} answered HTTP {response.status}")
            if response.content_type != "text/plain":
                raise PolicyError(f"{url} is {response.content_type}, not text/plain")
            body = await response.content.read(MAX_POLICY_BYTES + 1)
            if len(body) > MAX_POLICY_BYTES:
                raise PolicyError(f"{url} is larger than {MAX_POLICY_BYTES} octets")
            return body.decode("utf-8")

    def _cached(self, domain: str) -> tuple[str, float, Policy] | None:
        entry = self._memory.get(domain) or self._load(domain)
        if entry is None or time.time() > entry[1] + entry[2].max_age:
            return None
        self._memory[domain] = entry
        return entry

    def _path(self, domain: str) -> Path | None:
        return None if self._cache_dir is None else self._cache_dir / f"{domain}.json"

    def _load(self, domain: str) -> tuple[str, float, Policy] | None:
        path = self._path(domain)
        if path is None:
            return None
        try:
            raw = json.loads(path.read_text())
            policy = Policy(Mode(raw["mode"]), int(raw["max_age"]), tuple(raw["mx"]))
            return str(raw["id"]), float(raw["fetched"]), policy
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no cache, or one from another version: fetch again

    def _store(self, domain: str, policy_id: str, policy: Policy) -> None:
        fetched = time.time()
        self._memory[domain] = (policy_id, fetched, policy)
        path = self._path(domain)
        if path is None:
            return
        raw = {"id": policy_id, "fetched": fetched, "mode": policy.mode.value}
        raw |= {"max_age": policy.max_age, "mx": list(policy.mx)}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(raw))
            tmp.replace(path)  # a reader sees the old file or the new one, never half
        except OSError as e:
            log.warning("mta-sts cache not written", extra=kv(path=str(path), reason=str(e)))
