"""Outbound DKIM: the signatures a submitted message (or a bounce) gets before it is queued.

Theory of operation
-------------------
``DkimSigner.sign(message)`` finds the one From domain of the message, takes that domain's
active keys from the store (``DkimKeyStore``; kept ``ttl`` seconds per domain, so a busy
submission port reads them once a minute, and a rotation made on another node is used within
that time), signs in a thread (hashing a large body is CPU work) and returns the
DKIM-Signature fields to put on top of the message. A message whose From is not one of our
domains, has no single From, or whose domain has no key yet gets no signature (b""): signing
for a domain we do not host would only make the message look forged.

The SMTP session calls it after DATA on 587/465 and for every bounce it makes::

    message = await signer.sign(message) + message

``DkimSigner.seal(message, domain, results, cv)`` makes the ARC set (RFC 8617) for a message
port 25 forwards for one of our aliases, with ``domain``'s active RSA key (ARC verifiers know
rsa-sha256 only; ``courriel.mail.auth.arc``); b"" when the domain has no RSA key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from courriel.mail.auth import arc
from courriel.mail.auth.dkim import Algorithm, SigningKey, sign
from courriel.mail.auth.inbound import from_domains
from courriel.store.base import DkimKey, DkimKeyState, DkimKeyStore, StoreError

Signer = Callable[[bytes], Awaitable[bytes]]  # the DKIM-Signature fields for a message, or b""
# (message, sealing domain, Authentication-Results payload, cv) -> the ARC set, or b""
Sealer = Callable[[bytes, str, bytes, bytes], Awaitable[bytes]]
log = logging.getLogger("courriel.dkim")


def signing_keys(keys: Iterable[DkimKey]) -> list[SigningKey]:
    """The active keys, Ed25519 first, in the form ``courriel.mail.auth.dkim.sign`` takes."""
    active = [k for k in keys if k.state is DkimKeyState.ACTIVE]
    active.sort(key=lambda k: (k.algorithm != Algorithm.ED25519.value, k.created))
    return [
        SigningKey(k.domain, k.selector, Algorithm(k.algorithm), k.private_pem.encode("ascii"))
        for k in active
    ]


class DkimSigner:
    def __init__(self, store: DkimKeyStore, *, ttl: float = 60.0) -> None:
        self._store = store
        self._ttl = ttl
        self._keys: dict[str, tuple[float, list[SigningKey]]] = {}

    async def keys_for(self, domain: str) -> list[SigningKey]:
        """The active keys of ``domain``, Ed25519 first; [] when it has none."""
        now = time.monotonic()
        hit = self._keys.get(domain)
        if hit is not None and hit[0] > now:
            return hit[1]
        keys = signing_keys(await self._store.dkim_keys(domain))
        if len(self._keys) > 10_000:  # bounded: hosted domains, not senders, are the keys
            self._keys.clear()
        self._keys[domain] = (now + self._ttl, keys)
        return keys

    async def sign(self, message: bytes) -> bytes:
        """DKIM-Signature fields (CRLF-terminated) for ``message``, or b""."""
        domains = from_domains(message)
        if len(domains) != 1 or not domains[0]:
            return b""
        keys = await self.keys_for(domains[0])
        if not keys:
            return b""
        return await asyncio.to_thread(sign, message, keys)

    async def seal(self, message: bytes, domain: str, results: bytes, cv: bytes) -> bytes:
        """The ARC set for ``message`` forwarded by ``domain`` (CRLF-terminated), or b""."""
        rsa = [k for k in await self.keys_for(domain) if k.algorithm is Algorithm.RSA]
        if not rsa:
            return b""
        return await asyncio.to_thread(arc.seal, message, rsa[0], results, cv, int(time.time()))


async def signed(sign: Signer, message: bytes) -> bytes:
    """``message`` with the signatures ``sign`` makes on top.

    ``StoreError`` (the keys could not be read) is raised, so the caller answers "try again";
    any other failure leaves the message unsigned and is logged: mail that cannot be signed
    still goes, as it would from a server without keys.
    """
    try:
        return await sign(message) + message
    except StoreError:
        raise
    except Exception:
        log.exception("DKIM signing failed; the message goes unsigned")
        return message
