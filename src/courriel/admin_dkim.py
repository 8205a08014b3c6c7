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
* ``rotate`` makes new keys and keeps the old ones published (``retiring``) for a grace period
  (mail signed just before the rotation is still verified when read days later), then
  ``retire_due`` marks them retired and ``courriel dns`` stops listing them;
* the keys sign through ``courriel.queue.signer.DkimSigner``.

Key generation costs tens of milliseconds of CPU (RSA) and runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from courriel import dnsrecords
from courriel.admin import AdminError, domain_name
from courriel.config import Config
from courriel.mail.auth.dkim import Algorithm, generate_key, public_record
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
    """New active keys; the old ones stay published until ``now + grace``."""
    alabel = domain_name(domain)
    now = now or _now()
    if await store.get_domain(alabel) is None:
        raise AdminError(f"unknown domain {alabel}")
    keys = await _new_keys(alabel, now, [k.selector for k in await store.dkim_keys(alabel)])
    try:
        await store.rotate_dkim_keys(alabel, keys, now + grace)
    except NotFound:
        raise AdminError(f"unknown domain {alabel}") from None
    except AlreadyExists:
        raise AdminError(f"another process rotated the keys of {alabel}; list them") from None
    return keys


async def retire_due(store: Store, now: datetime | None = None) -> int:
    return await store.retire_dkim_keys(now or _now())


async def list_keys(store: Store, domain: str | None = None) -> list[DkimKey]:
    alabel = None if domain is None else domain_name(domain)
    if alabel is not None and await store.get_domain(alabel) is None:
        raise AdminError(f"unknown domain {alabel}")
    return await store.dkim_keys(alabel)


def published(keys: Iterable[DkimKey]) -> list[DkimKey]:
    """The keys whose public half must be in DNS: active and retiring ones."""
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
    return dnsrecords.records_for(
        alabel,
        cfg.hostname,
        [record_of(k) for k in keys],
        cfg.listeners,
        self_signed=not cfg.tls.cert,
        mtasts=cfg.mtasts,
    )
