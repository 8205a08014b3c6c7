"""SPF (RFC 7208) for the MAIL FROM and HELO identities, through pyspf and our own resolver.

Theory of operation
-------------------
pyspf is the reference implementation (written by the RFC's authors, in Debian as python3-spf)
and keeps the rules that are easy to get wrong: macro expansion (§7), the limit of 10 terms that
cause DNS lookups (§4.6.4), at most 10 MX and 10 PTR names per mechanism, at most 2 void lookups,
include/redirect recursion, and the 20 seconds a whole check may take. It is synchronous and asks
DNS through a module-level function, so a check runs in a thread of ``SpfChecker``'s own pool
(never the loop's default pool, which password hashing and the store share), and its lookups are
sent back to the event loop's ``Resolver`` (``run_coroutine_threadsafe``), so every DNS question
of courriel goes through one interface and one cache. The module function is replaced once, on
first use, by one that finds the calling thread's resolver in a thread-local; a thread with none
fails loudly instead of asking the system's DNS behind our back.

Every result carries one sentence for people, e.g. "203.0.113.9 is not allowed to send for
example.org", which the DMARC explanation and the 550 reply reuse.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.reversename
import spf as pyspf

from courriel.mail.auth.dns import DnsTempError, Resolver

_log = logging.getLogger(__name__)
QUERY_SECONDS = 20.0  # RFC 7208 §4.6.4: at least 20 seconds for a whole check
_local = threading.local()
_install_lock = threading.Lock()


class SpfOutcome(enum.Enum):
    """RFC 7208 §2.6 results (RFC 8601 §2.7.2 names)."""

    PASS = "pass"  # noqa: S105 - a result name, not a password
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class SpfResult:
    outcome: SpfOutcome
    identity: str  # "mailfrom" or "helo" (RFC 8601 §2.7.2 ptype smtp property)
    domain: str  # the domain whose policy was checked
    sender: str  # the address checked (postmaster@helo for an empty MAIL FROM)
    ip: str
    sentence: str


def _sentence(outcome: SpfOutcome, ip: str, domain: str, detail: str) -> str:
    match outcome:
        case SpfOutcome.PASS:
            return f"{ip} is allowed to send for {domain}"
        case SpfOutcome.FAIL:
            return f"{ip} is not allowed to send for {domain}"
        case SpfOutcome.SOFTFAIL:
            return f"{domain} does not expect mail from {ip} (softfail)"
        case SpfOutcome.NEUTRAL:
            return f"{domain} says neither yes nor no for {ip}"
        case SpfOutcome.NONE:
            return f"{domain} publishes no SPF record"
        case SpfOutcome.TEMPERROR:
            return f"the SPF record of {domain} could not be read now ({detail})"
        case SpfOutcome.PERMERROR:
            return f"the SPF record of {domain} is broken ({detail})"


def _detail(explanation: str) -> str:
    for prefix in ("SPF Permanent Error: ", "SPF Temporary Error: ", "DNS "):
        explanation = explanation.removeprefix(prefix)
    return " ".join(explanation.split())[:200]


# --- the DNS bridge -------------------------------------------------------------------------------

Bridge = Callable[[str, str], list[tuple[tuple[str, str], Any]]]


def _thread_lookup(name: str, qtype: str, strict: bool = True, timeout: float = 30) -> Any:
    bridge: Bridge | None = getattr(_local, "bridge", None)
    if bridge is None:
        raise pyspf.TempError("no resolver for this thread")
    return bridge(name, qtype)


def _install() -> None:
    with _install_lock:
        if pyspf.DNSLookup is not _thread_lookup:
            pyspf.DNSLookup = _thread_lookup


def _bridge(resolver: Resolver, loop: asyncio.AbstractEventLoop, timeout: float) -> Bridge:
    def lookup(name: str, qtype: str) -> list[tuple[tuple[str, str], Any]]:
        future = asyncio.run_coroutine_threadsafe(_ask(resolver, name, qtype), loop)
        try:
            values = future.result(timeout)
        except DnsTempError as e:
            raise pyspf.TempError(str(e)) from None
        except TimeoutError:
            future.cancel()
            raise pyspf.TempError(f"{qtype} {name}: no answer in time") from None
        except Exception as e:  # a failure of ours must not read as a verdict about the sender
            _log.exception("SPF lookup %s %s failed", qtype, name)
            raise pyspf.TempError(f"{qtype} {name}: {type(e).__name__}") from None
        return [((name, qtype), v) for v in values]

    return lookup


async def _ask(resolver: Resolver, name: str, qtype: str) -> list[Any]:
    if qtype in ("TXT", "SPF"):
        # pyspf joins the strings of one record itself; ours are joined already.
        return [(record,) for record in await resolver.txt(name)] if qtype == "TXT" else []
    if qtype in ("A", "AAAA"):
        return list(await resolver.addresses(name, 4 if qtype == "A" else 6))
    if qtype == "MX":
        return list(await resolver.mx(name))
    if qtype == "PTR":
        try:
            address = dns.reversename.to_address(dns.name.from_text(name))
        except (dns.exception.DNSException, ValueError):  # not a reverse name: no PTR for us
            return []
        return list(await resolver.ptr(address))
    return []


# --- checks ---------------------------------------------------------------------------------------


class SpfChecker:
    """Runs SPF checks in its own small thread pool, asking DNS through ``resolver``."""

    def __init__(self, resolver: Resolver, *, threads: int = 8, timeout: float = QUERY_SECONDS):
        self._resolver = resolver
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="spf")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def check_mail_from(self, ip: str, mail_from: str, helo: str) -> SpfResult:
        """The MAIL FROM identity; an empty reverse path is postmaster@HELO (RFC 7208 §2.4)."""
        sender = mail_from or f"postmaster@{helo}"
        return await self._check(ip, sender, helo, "mailfrom")

    async def check_helo(self, ip: str, helo: str) -> SpfResult:
        """The HELO identity (RFC 7208 §2.3), as postmaster@HELO."""
        return await self._check(ip, f"postmaster@{helo}", helo, "helo")

    async def _check(self, ip: str, sender: str, helo: str, identity: str) -> SpfResult:
        domain = sender.rpartition("@")[2].rstrip(".").lower()
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return SpfResult(
                SpfOutcome.PERMERROR, identity, domain, sender, ip, f"{ip!r} is not an IP address"
            )
        if not _checkable(domain):  # RFC 7208 §4.3: malformed domain -> none
            return SpfResult(
                SpfOutcome.NONE, identity, domain, sender, ip, f"{domain!r} is not a domain name"
            )
        _install()
        bridge = _bridge(self._resolver, asyncio.get_running_loop(), self._timeout)
        run = self._pool.submit(_run, bridge, ip, sender, helo, self._timeout)
        outcome, detail = await asyncio.wrap_future(run)
        return SpfResult(
            outcome, identity, domain, sender, ip, _sentence(outcome, ip, domain, detail)
        )


def _checkable(domain: str) -> bool:
    labels = domain.split(".")
    return len(labels) >= 2 and all(0 < len(label) < 64 for label in labels)  # RFC 7208 §4.3


def _run(bridge: Bridge, ip: str, sender: str, helo: str, timeout: float) -> tuple[SpfOutcome, str]:
    _local.bridge = bridge
    try:
        q = pyspf.query(ip, sender, helo, strict=True, querytime=timeout)
        result, _code, explanation = q.check()
    except Exception as e:
        # pyspf tripped over something (a bug, a record it cannot handle): say "try later"
        # rather than guess a verdict, and keep the trace for a bug report.
        _log.exception("SPF check of %s for %s failed", sender, ip)
        return SpfOutcome.TEMPERROR, f"the SPF library failed: {type(e).__name__}"
    finally:
        _local.bridge = None
    return SpfOutcome(result), _detail(str(explanation))
