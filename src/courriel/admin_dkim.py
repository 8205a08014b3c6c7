"""DKIM key administration: keys for new domains, keys at upgrade, rotation, the signing keys.

Theory of operation
-------------------
Every domain has two active keys, Ed25519 and RSA-2048 (RFC 8463 §4: sign with both until
every verifier knows Ed25519). Selectors are named by date and algorithm, ``c202612e`` and
``c202612r`` (courriel, year, month, e/r), with a number added when that name is taken
(``c202612e2``), so a selector never names two keys and the zone shows how old a key is.

* ``create_keys`` runs on ``courriel domain add``;
* ``ensure_keys`` gives keys to every domain that has no active one: the server calls it at
  start, so domains made before keys existed sign after the upgrade;
* ``rotate`` publishes before it signs: it makes new keys ``pending`` (``courriel dns`` lists
  them, nothing signs with them yet); ``activate_published`` looks each pending key up in DNS
  and, once the published record carries its public key, makes it active and the key it
  replaces ``retiring`` for the grace period (mail signed just before is still verified when
  read days later). The server runs it every 15 minutes; ``courriel dkim activate`` runs it
  at once (or, with ``--force``, activates without looking). ``retire_due`` then marks the
  old keys retired and ``courriel dns`` stops listing them;
* the keys sign through ``courriel.queue.signer.DkimSigner``.

Key generation costs tens of milliseconds of CPU (RSA) and runs in a thread.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from courriel import dnsrecords
from courriel.admin import AdminError, domain_name
from courriel.config import Config
from courriel.mail.auth.dkim import Algorithm, generate_key, public_record
from courriel.mail.auth.dns import DnsTempError, Resolver
from courriel.store.base import AlreadyExists, DkimKey, DkimKeyState, NotFound, Store

GRACE = timedelta(days=14)
ALGORITHMS = (Algorithm.ED25519, Algorithm.RSA)
_LETTER = {Algorithm.ED25519: "e", Algorithm.RSA: "r"}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def selector_for(algorithm: Algorithm, now: datetime, taken: Iterable[str]) -> str:
    """``c`` + year and month + ``e``/``r``, numbered from 2 when the name is taken."""
    base = f"c{now:%Y%m}{_LETTER[algorithm]}"
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while f"{base}{n}" in used:
        n += 1
    return f"{base}{n}"


async def _new_keys(domain: str, now: datetime, taken: Iterable[str]) -> list[DkimKey]:
    used = set(taken)
    out = []
    for algorithm in ALGORITHMS:
        selector = selector_for(algorithm, now, used)
        used.add(selector)
        pem = await asyncio.to_thread(generate_key, algorithm)
        out.append(DkimKey(domain, selector, algorithm.value, pem.decode("ascii"), now))
    return out


async def create_keys(store: Store, domain: str, now: datetime | None = None) -> list[DkimKey]:
    """Two new active keys for ``domain`` (which must exist)."""
    alabel = domain_name(domain)
    now = now or _now()
    taken = [k.selector for k in await store.dkim_keys(alabel)]
    keys = await _new_keys(alabel, now, taken)
    try:
        await store.add_dkim_keys(alabel, keys)
    except NotFound:
        raise AdminError(f"unknown domain {alabel}") from None
    except AlreadyExists:
        raise AdminError(f"another process is making keys for {alabel}; list them again") from None
    return keys


async def ensure_keys(store: Store, now: datetime | None = None) -> list[str]:
    """Keys for every domain without an active key; returns those domains."""
    active = {k.domain for k in await store.dkim_keys() if k.state is DkimKeyState.ACTIVE}
    made = []
    for d in await store.list_domains():
        if d.name in active:
            continue
        try:
            await create_keys(store, d.name, now)
        except AdminError:
            continue  # removed meanwhile, or another node made them: nothing left to do
        made.append(d.name)
    return made


async def rotate(
    store: Store, domain: str, *, grace: timedelta = GRACE, now: datetime | None = None
) -> list[DkimKey]:
    """New pending keys; each signs once DNS shows it, and the key it replaces then stays
    published for ``grace``."""
    alabel = domain_name(domain)
    now = now or _now()
    if await store.get_domain(alabel) is None:
        raise AdminError(f"unknown domain {alabel}")
    existing = await store.dkim_keys(alabel)
    waiting = [k.selector for k in existing if k.state is DkimKeyState.PENDING]
    if waiting:
        raise AdminError(
            f"{alabel} has keys waiting to be published ({', '.join(waiting)}): publish them "
            "(courriel dns), or activate them (courriel dkim activate) before rotating again"
        )
    made = await _new_keys(alabel, now, [k.selector for k in existing])
    seconds = int(grace.total_seconds())
    keys = [replace(k, state=DkimKeyState.PENDING, grace_seconds=seconds) for k in made]
    try:
        await store.add_dkim_keys(alabel, keys)
    except NotFound:
        raise AdminError(f"unknown domain {alabel}") from None
    except AlreadyExists:
        raise AdminError(f"another process rotated the keys of {alabel}; list them") from None
    return keys


def record_published(key: DkimKey, found: Sequence[bytes]) -> bool:
    """Whether one of the TXT records ``found`` at the key's name carries its public key."""
    want = _tags(record_of(key)[1].encode("ascii"))
    for record in found:
        have = _tags(record)
        if have.get(b"p") == want[b"p"] and have.get(b"k", b"rsa") == want[b"k"]:
            return True
    return False


def _tags(record: bytes) -> dict[bytes, bytes]:
    out = {}
    for part in record.split(b";"):
        name, _, value = part.partition(b"=")
        out[name.strip().lower()] = re.sub(rb"\s+", b"", value)
    return out


async def activate_pending(
    store: Store, domain: str, selectors: Sequence[str] | None = None, now: datetime | None = None
) -> list[str]:
    """Activates the named pending keys of ``domain`` (all of them by default) without looking
    at DNS; returns the selectors activated."""
    alabel = domain_name(domain)
    if selectors is None:
        keys = await store.dkim_keys(alabel)
        selectors = [k.selector for k in keys if k.state is DkimKeyState.PENDING]
    if not selectors:
        return []
    return await store.activate_dkim_keys(alabel, selectors, now or _now())


@dataclass(frozen=True, slots=True)
class Activation:
    activated: list[DkimKey]
    unpublished: list[DkimKey]  # DNS answered without the key
    unknown: list[DkimKey]  # DNS did not answer


async def activate_published(
    store: Store, resolver: Resolver, domain: str | None = None, now: datetime | None = None
) -> Activation:
    """Activates each pending key (of ``domain``, or of every domain) whose record DNS shows."""
    alabel = None if domain is None else domain_name(domain)
    pending = [k for k in await store.dkim_keys(alabel) if k.state is DkimKeyState.PENDING]
    seen: dict[str, list[str]] = {}
    result = Activation([], [], [])
    for key in pending:
        try:
            found = await resolver.txt(record_of(key)[0])
        except DnsTempError:
            result.unknown.append(key)
            continue
        if record_published(key, found):
            seen.setdefault(key.domain, []).append(key.selector)
        else:
            result.unpublished.append(key)
    by_name = {(k.domain, k.selector): k for k in pending}
    for name, selectors in seen.items():
        for selector in await store.activate_dkim_keys(name, selectors, now or _now()):
            result.activated.append(by_name[(name, selector)])
    return result


async def retire_due(store: Store, now: datetime | None = None) -> int:
    return await store.retire_dkim_keys(now or _now())


async def list_keys(store: Store, domain: str | None = None) -> list[DkimKey]:
    alabel = None if domain is None else domain_name(domain)
    if alabel is not None and await store.get_domain(alabel) is None:
        raise AdminError(f"unknown domain {alabel}")
    return await store.dkim_keys(alabel)


def published(keys: Iterable[DkimKey]) -> list[DkimKey]:
    """The keys whose public half must be in DNS: pending, active and retiring ones."""
    return [k for k in keys if k.state is not DkimKeyState.RETIRED]


def record_of(key: DkimKey) -> tuple[str, str]:
    """(name, TXT value) to publish for ``key`` (RFC 6376 §3.6.2.1)."""
    value = public_record(Algorithm(key.algorithm), key.private_pem.encode("ascii"))
    return f"{key.selector}._domainkey.{key.domain}", value


async def dns_records(cfg: Config, store: Store, domain: str) -> list[dnsrecords.Record]:
    """Every record ``domain`` should publish (``courriel dns`` and the web admin show them)."""
    alabel = domain_name(domain)
    if await store.get_domain(alabel) is None:
        raise AdminError(f"unknown domain {alabel}")
    keys = published(await store.dkim_keys(alabel))
    records = dnsrecords.records_for(
        alabel,
        cfg.hostname,
        [record_of(k) for k in keys],
        cfg.listeners,
        self_signed=not cfg.tls.cert,
        mtasts=cfg.mtasts,
    )
    pending = {record_of(k)[0] for k in keys if k.state is DkimKeyState.PENDING}
    why = ", new: courriel signs with it once it is published"
    return [replace(r, purpose=r.purpose + why) if r.name in pending else r for r in records]
