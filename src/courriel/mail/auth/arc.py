"""ARC (RFC 8617): verifying the chain a message arrives with, and sealing what we forward.

Theory of operation
-------------------
Verification (``ArcVerifier.verify``) follows the DKIM verifier's three steps, so a chain costs
bounded CPU off the event loop and every DNS question goes through our ``Resolver``:

1. in a thread, the ARC header fields are read (dkimpy's ``ARC`` parser) and grouped by
   instance; a chain with an instance above 50 fails (RFC 8617 §4.2.1), one with more than
   ``max_sets`` sets fails too (a local bound: each set costs two signature checks and a body
   hash);
2. on the event loop, the distinct keys of every ARC-Seal and ARC-Message-Signature are looked
   up at once; a lookup without answer makes the result ``temperror`` (never a verdict);
3. in a thread, dkimpy's ``ARC.verify`` checks the chain against the keys already fetched
   (its DNS function only reads them from a table): ``pass``, ``fail`` with dkimpy's words,
   or ``none`` when the message carries no ARC set. dkimpy is given the header only; the
   body hashes of the ARC-Message-Signatures are ours (``courriel.mail.auth.bodyhash``, in
   pieces, once per canonicalization), so a large body never holds the interpreter long.

dkimpy verifies Ed25519 seals (RFC 8463 keys) as well as RSA ones. What it lacks, and why
sealing is written here: ``arc_sign`` ignores its algorithm argument (always rsa-sha256), needs
the ``authres`` package to read Authentication-Results back, and signs RSA in pure Python (tens
of milliseconds holding the interpreter); ``seal`` uses dkimpy's canonicalization and
``cryptography`` for the signature, as ``courriel.mail.auth.dkim.sign`` does.

Sealing (``seal``) adds the set of instance N+1 (RFC 8617 §5.1): the ARC-Authentication-Results
(our Authentication-Results with ``i=``), an ARC-Message-Signature (a DKIM signature with
``i=`` and no ``v=``, relaxed/relaxed, never over ARC-Seal, §4.1.2) and the ARC-Seal over every
set in instance order (§5.1.1), with ``cv`` our verdict on the chain as it arrived. A chain
that failed is sealed with ``cv=fail`` over our own set only; a chain already marked failed by
an earlier sealer, or one at instance 50, is not sealed at all (§5.1, §4.2.1). Seals use RSA:
RFC 8617's verifiers (Mail::DKIM among them) know rsa-sha256 only.

``trusted_override`` is the local policy RFC 8617 §7.2 describes: when DMARC fails but the chain
passes and a sealer we were told to trust recorded ``dmarc=pass`` in its
ARC-Authentication-Results, the message is treated as the trusted forwarder saw it.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dkim as dkimpy
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import parse_tag_value

from courriel.mail.auth.bodyhash import body_hash
from courriel.mail.auth.dkim import (
    MIN_RSA_BITS,
    SigningKey,
    fold_b64,
    fold_tags,
    header_list,
    private_key,
    sign_digest,
    split_header,
)
from courriel.mail.auth.dns import DnsTempError, Resolver

MAX_INSTANCE = 50  # RFC 8617 §4.2.1
MAX_SETS = 10  # local bound on the sets checked; a longer chain fails
AAR = b"ARC-Authentication-Results"
AMS = b"ARC-Message-Signature"
AS = b"ARC-Seal"
_NAMES = {AAR.lower(): AAR, AMS.lower(): AMS, AS.lower(): AS}
_INSTANCE = re.compile(rb"(?:^|;)\s*i\s*=\s*(\d+)\s*(?:;|$)")
_SET_ORDER = (b"arc-authentication-results", b"arc-message-signature", b"arc-seal")
_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")


class ArcOutcome(enum.Enum):
    """RFC 8617 §4.4 chain validation status, plus ``temperror`` (no DNS answer)."""

    PASS = "pass"  # noqa: S105 - a result name, not a password
    FAIL = "fail"
    NONE = "none"
    TEMPERROR = "temperror"


@dataclass(frozen=True, slots=True)
class ArcHop:
    """One verified set: who sealed it and what it recorded."""

    instance: int
    sealer: str  # the ARC-Seal's d=, lower-case
    aar: str  # the ARC-Authentication-Results value, as it was signed


@dataclass(frozen=True, slots=True)
class ArcResult:
    outcome: ArcOutcome
    reason: str = ""  # plain words; "" for pass and none
    instances: int = 0  # the highest i= in the message
    hops: tuple[ArcHop, ...] = field(default_factory=tuple)  # newest first, when it passed
    terminated: bool = False  # an earlier sealer said cv=fail: the chain must not be extended

    @property
    def cv(self) -> bytes:
        """The ``cv=`` a seal added after this verification carries (RFC 8617 §4.1.3)."""
        if self.outcome is ArcOutcome.PASS:
            return b"pass"
        return b"none" if self.outcome is ArcOutcome.NONE else b"fail"

    def trusted_override(self, trusted: Sequence[str]) -> str | None:
        """The trusted sealer that vouches ``dmarc=pass`` for this chain, or None."""
        if self.outcome is not ArcOutcome.PASS:
            return None
        for hop in self.hops:
            if _trusted(hop.sealer, trusted) and re.search(r"\bdmarc\s*=\s*pass\b", hop.aar, re.I):
                return hop.sealer
        return None


def _trusted(sealer: str, trusted: Sequence[str]) -> bool:
    sealer = sealer.rstrip(".").lower()
    for t in trusted:
        t = t.rstrip(".").lower()
        if sealer == t or sealer.endswith("." + t):
            return True
    return False


# --- verification ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Chain:
    arc: Any  # dkimpy.ARC over the message
    instances: int
    names: list[str]  # the key names to look up (selector._domainkey.domain)
    error: str = ""  # why the chain fails before any key is fetched
    terminated: bool = False


class ArcVerifier:
    """Verifies ARC chains of at most ``max_sets`` sets; at most ``max_threads`` at once."""

    def __init__(
        self, resolver: Resolver, *, max_sets: int = MAX_SETS, max_threads: int = 2
    ) -> None:
        self._resolver = resolver
        self._max = max_sets
        self._cpu = asyncio.Semaphore(max_threads)

    async def verify(self, message: bytes) -> ArcResult:
        async with self._cpu:
            chain = await asyncio.to_thread(_read_chain, message, self._max)
        if chain.instances == 0:
            return ArcResult(ArcOutcome.NONE)
        if chain.error:
            return ArcResult(ArcOutcome.FAIL, chain.error, chain.instances)
        keys: dict[bytes, bytes] = {}
        try:
            found = await asyncio.gather(*(self._resolver.txt(n) for n in chain.names))
        except DnsTempError as e:
            return ArcResult(ArcOutcome.TEMPERROR, f"key lookup failed: {e}", chain.instances)
        for name, records in zip(chain.names, found, strict=True):
            # RFC 6376 §3.6.2.2 (through RFC 8617 §4.1.2): the first record is used.
            keys[name.encode("ascii") + b"."] = records[0] if records else b""
            keys[name.encode("ascii")] = keys[name.encode("ascii") + b"."]
        async with self._cpu:
            return await asyncio.to_thread(_check_chain, chain, keys)


class _HeaderArc(dkimpy.ARC):  # type: ignore[misc]
    """dkimpy's ARC over the header alone; body hashes come from ``body_ok``.

    dkimpy canonicalizes and hashes the whole body for each ARC-Message-Signature in single
    regular-expression calls that hold the interpreter (most of a second for 20 MB); our body
    hash works in pieces and is computed once per canonicalization.
    """

    body_ok: Callable[[dict[bytes, bytes]], bool]

    def verify_sig(
        self, sig: dict[bytes, bytes], include: list[bytes], field: Any, dnsfunc: Any
    ) -> bool:
        if b"bh" in sig:  # an ARC-Message-Signature: the body first (RFC 6376 §6.1.3)
            if not self.body_ok(sig):
                return False
            sig = {k: v for k, v in sig.items() if k != b"bh"}
        return bool(super().verify_sig(sig, include, field, dnsfunc))


def _body_checker(message: bytes) -> Callable[[dict[bytes, bytes]], bool]:
    start = split_header(message)[1]
    hashes: dict[tuple[bool, int | None], bytes] = {}

    def ok(sig: dict[bytes, bytes]) -> bool:
        relaxed = sig.get(b"c", b"relaxed/relaxed").partition(b"/")[2].strip().lower() != b"simple"
        length_tag = sig.get(b"l")
        if length_tag is not None and not length_tag.strip().isdigit():
            return False
        key = (relaxed, None if length_tag is None else int(length_tag))
        if key not in hashes:
            hashes[key] = body_hash(message, key[0], "sha256", key[1], start)
        try:
            expected = base64.b64decode(re.sub(rb"\s+", b"", sig[b"bh"]), validate=True)
        except ValueError:
            return False
        return hashes[key] == expected

    return ok


def _read_chain(message: bytes, limit: int) -> _Chain:
    head = split_header(message)[0]
    if b"arc-" not in head.lower():  # no ARC field: nothing to parse
        return _Chain(None, 0, [])
    try:
        arc = _HeaderArc(head, minkey=MIN_RSA_BITS)
        arc.body_ok = _body_checker(message)
        instances, fields = arc.sorted_arc_headers()
    except Exception as e:  # a header dkimpy cannot read
        if b"arc-seal" not in head.lower():
            return _Chain(None, 0, [])
        return _Chain(None, 1, [], f"the ARC header fields cannot be read: {_words(e)}")
    if instances == 0:
        return _Chain(arc, 0, [])
    if instances > MAX_INSTANCE:  # RFC 8617 §4.2.1
        return _Chain(arc, instances, [], f"instance {instances} is above {MAX_INSTANCE}")
    if instances > limit:
        return _Chain(arc, instances, [], f"{instances} ARC sets; at most {limit} are checked")
    names: dict[str, None] = {}
    terminated = False
    for _i, (name, value) in fields:
        if name.lower() not in (AMS.lower(), AS.lower()):
            continue
        try:
            tags = parse_tag_value(value)
        except Exception as e:
            return _Chain(arc, instances, [], f"an ARC signature cannot be read: {_words(e)}")
        selector, domain = tags.get(b"s", b""), tags.get(b"d", b"")
        if not selector or not domain:
            return _Chain(arc, instances, [], "an ARC signature has no s= or d=")
        if not (selector + domain).isascii():
            return _Chain(arc, instances, [], "an ARC signature names a key outside ASCII")
        if name.lower() == AS.lower() and tags.get(b"cv", b"").strip().lower() == b"fail":
            terminated = True
        names[f"{_text(selector)}._domainkey.{_text(domain)}"] = None
    return _Chain(arc, instances, list(names), terminated=terminated)


def _check_chain(chain: _Chain, keys: dict[bytes, bytes]) -> ArcResult:
    def lookup(name: bytes, timeout: float = 0) -> bytes:
        return keys.get(name.lower(), b"")

    try:
        cv, results, reason = chain.arc.verify(dnsfunc=lookup)
    except Exception as e:  # the library tripped on a hostile field: the chain fails
        return ArcResult(ArcOutcome.FAIL, f"unreadable ARC set: {_words(e)}", chain.instances)
    if cv == dkimpy.CV_Pass:
        hops = tuple(
            ArcHop(
                int(r["instance"]),
                _text(r.get("as-domain", b"")),
                bytes(r.get("aar-value", b"")).decode("utf-8", "replace").strip(),
            )
            for r in results
        )
        return ArcResult(ArcOutcome.PASS, "", chain.instances, hops, chain.terminated)
    if cv == dkimpy.CV_None and not results:
        return ArcResult(ArcOutcome.NONE, "", chain.instances)
    text = reason if isinstance(reason, str) else repr(reason)
    return ArcResult(
        ArcOutcome.FAIL, " ".join(text.split())[:200], chain.instances, (), chain.terminated
    )


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace").strip().lower()


def _words(e: Exception) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


# --- sealing --------------------------------------------------------------------------------------


def _arc_fields(head: bytes) -> dict[int, dict[bytes, tuple[bytes, bytes]]]:
    """The ARC fields of ``head`` by instance, then by lower-case name: (name, raw value)."""
    headers, _ = dkimpy.rfc822_parse(head)
    sets: dict[int, dict[bytes, tuple[bytes, bytes]]] = {}
    for name, value in headers:
        if name.lower() not in _NAMES:
            continue
        m = _INSTANCE.search(re.sub(rb"\s+", b" ", value))
        if m is not None:
            sets.setdefault(int(m.group(1)), {})[name.lower()] = (name, value)
    return sets


def next_instance(message: bytes) -> int:
    """The ``i=`` of the set ``seal`` would add (0: the chain may not be extended)."""
    sets = _arc_fields(split_header(message)[0])
    instance = max(sets, default=0) + 1
    return instance if instance <= MAX_INSTANCE else 0


def seal(
    message: bytes,
    key: SigningKey,
    results: bytes,
    cv: bytes,
    now: int,
) -> bytes:
    """The ARC set (AS, AMS, AAR, CRLF lines) to put on top of ``message``, or b"".

    ``results`` is the payload of our Authentication-Results field (authserv-id and clauses,
    without the field name); ``cv`` our verdict on the chain as it arrived. CPU work (hashing
    the body, signing twice): call it in a thread.
    """
    head, body_start = split_header(message)
    sets = _arc_fields(head)
    instance = max(sets, default=0) + 1
    if instance > MAX_INSTANCE:  # RFC 8617 §4.2.1: the chain cannot grow
        return b""
    if any(_cv(s) == b"fail" for s in sets.values()):  # RFC 8617 §5.1: a failed chain ends
        return b""
    i = str(instance).encode("ascii")
    aar_value = b" i=" + i + b"; " + results.strip() + b"\r\n"
    when = str(now).encode("ascii")
    common = [(b"a", key.algorithm.tag), (b"d", key.domain.encode()), (b"s", key.selector.encode())]

    # ARC-Message-Signature (RFC 8617 §4.1.2): a DKIM signature over the message as it leaves.
    headers, _ = dkimpy.rfc822_parse(head)
    include = header_list(message)
    include += [b"dkim-signature"] * sum(n.lower() == b"dkim-signature" for n, _ in headers)
    bh = base64.b64encode(body_hash(message, relaxed=True, start=body_start))
    tags = [(b"i", i), *common[:1], (b"c", b"relaxed/relaxed"), *common[1:], (b"t", when)]
    tags += [(b"h", b":".join(include)), (b"bh", bh)]
    ams_value = fold_tags([k + b"=" + v + b";" for k, v in tags], len(AMS) + 1) + b"\r\n b="
    digest = hashlib.sha256()
    canonical = _RELAXED.canonicalize_headers(headers)
    dkimpy.hash_headers(digest, _RELAXED, canonical, include, (AMS, ams_value), {})
    ams_value += _signature(key, digest.digest()) + b"\r\n"

    # ARC-Seal (RFC 8617 §5.1.1): every set in instance order, this one last with b= empty; a
    # failing chain's seal covers its own set only.
    tags = [(b"i", i), (b"cv", cv), *common, (b"t", when)]
    as_value = fold_tags([k + b"=" + v + b";" for k, v in tags], len(AS) + 1) + b"\r\n b="
    covered: list[tuple[bytes, bytes]] = []
    if cv != b"fail":
        for n in sorted(sets):
            covered += [sets[n][name] for name in _SET_ORDER if name in sets[n]]
    covered += [(AAR, aar_value), (AMS, ams_value)]
    digest = hashlib.sha256()
    for name, value in _RELAXED.canonicalize_headers(covered):
        digest.update(name + b":" + value)
    (name, value), = _RELAXED.canonicalize_headers([(AS, as_value)])  # fmt: skip
    digest.update(name + b":" + value.rstrip(b"\r\n"))  # hashed without its CRLF (RFC 6376 §3.7)
    as_value += _signature(key, digest.digest()) + b"\r\n"
    return AS + b":" + as_value + AMS + b":" + ams_value + AAR + b":" + aar_value


def _cv(fields: dict[bytes, tuple[bytes, bytes]]) -> bytes:
    seal_field = fields.get(b"arc-seal")
    if seal_field is None:
        return b""
    try:
        tags: dict[bytes, bytes] = parse_tag_value(seal_field[1])
    except Exception:
        return b"fail"  # an unreadable seal: the chain is broken
    return tags.get(b"cv", b"").strip().lower()


def _signature(key: SigningKey, digest: bytes) -> bytes:
    return fold_b64(base64.b64encode(sign_digest(private_key(key.private_pem), digest)))
