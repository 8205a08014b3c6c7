"""Certificates from ACME (RFC 8555), kept in the store and served by every process.

Theory of operation
-------------------
Each worker process runs one ``CertificateKeeper`` (``run``). It does two things:

*Serving what is stored.* It reads the stored certificate (``Store.certificate``) and, when its
serial differs from what this process serves, hands it to ``TLSManager.install``: from then on
every listener of the process gives new connections the new certificate, and established ones
keep theirs (the same swap SIGHUP does, without a signal). It also loads the pending TLS-ALPN-01
challenges into ``TLSManager.set_challenges``. It does so at start, whenever a
``ChangeKind.CERTIFICATE`` change arrives through the store's events (the process that stored a
certificate or challenges publishes one: unix datagrams on SQLite, NOTIFY on PostgreSQL), and
every ``[acme] check_seconds`` in case a change was lost.

*Ordering, in one process at a time.* When ``[acme] enabled`` and the stored certificate is
missing, does not cover the wanted names, or expires within ``renew_days``, the keeper takes the
store lease ``acme-order`` (``Store.acquire_lease``): the one process holding it orders, the
others go on serving. The order (``courriel.web.acme_order``, certbot's ``acme`` library in a
thread) publishes its challenges in the store first -- any worker may receive the ACME server's
HTTP-01 request, ``http_challenge`` answers it from the store; for TLS-ALPN-01 every worker
must hold the challenge certificate in memory, so the orderer waits ``SETTLE_SECONDS`` after
publishing -- then answers, finalizes with a fresh P-256 key, and stores chain and key. A
failure is stored with the account (``failures``, ``retry_at``, ``last_error``) so every
process waits out the same backoff: ``retry_seconds`` doubled per failure in a row, at most a
day; the reason is logged as one line.

Names: ``[acme] names``, or the hostname plus ``autoconfig.`` and ``mta-sts.`` of each hosted
domain (the names clients and senders reach this server by).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from acme import crypto_util
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from courriel.config import AcmeConfig, Config
from courriel.logs import kv
from courriel.net.tls import TLSManager
from courriel.store.acme import CERTIFICATE, AcmeAccount, StoredCertificate
from courriel.store.base import (
    CERTIFICATE_EVENTS,
    Change,
    ChangeKind,
    Store,
    StoreError,
    Subscription,
)
from courriel.web import acme_order

log = logging.getLogger("courriel.acme")

LEASE = "acme-order"
LEASE_SECONDS = 600.0  # longer than any order takes; renewed by nobody, released at the end
SETTLE_SECONDS = 2.0  # TLS-ALPN-01: time for every worker to load the challenge certificate
MAX_BACKOFF = 86400.0
ORDER_WAIT_SECONDS = 120.0  # how long the ACME server may take to validate
CHALLENGE_PATH = "/.well-known/acme-challenge/{token}"  # RFC 8555 §8.3


async def wanted_names(store: Store, cfg: Config) -> list[str]:
    if cfg.acme.names:
        return list(dict.fromkeys(n.lower().rstrip(".") for n in cfg.acme.names))
    names = [cfg.hostname.lower()]
    for domain in await store.list_domains():
        names += [f"autoconfig.{domain.name}", f"mta-sts.{domain.name}"]
    return list(dict.fromkeys(names))


def backoff(cfg: AcmeConfig, failures: int) -> float:
    """Seconds to wait after ``failures`` failed orders in a row (at least one)."""
    return min(cfg.retry_seconds * 2.0 ** min(failures - 1, 30), MAX_BACKOFF)


def new_certificate_key() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def stored_from(chain_pem: str, key_pem: bytes) -> StoredCertificate:
    leaf = x509.load_pem_x509_certificate(chain_pem.encode("ascii"))
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return StoredCertificate(
        name=CERTIFICATE,
        cert_pem=chain_pem,
        key_pem=key_pem.decode("ascii"),
        serial=format(leaf.serial_number, "x"),
        not_after=leaf.not_valid_after_utc,
        names=names,
    )


def due(cert: StoredCertificate | None, names: list[str], renew_days: float) -> str:
    """Why a new certificate is needed now ("" when it is not)."""
    if cert is None:
        return "no certificate yet"
    missing = sorted(set(names) - set(cert.names))
    if missing:
        return f"the certificate does not cover {', '.join(missing)}"
    if cert.not_after - datetime.now(UTC) < timedelta(days=renew_days):
        return f"the certificate expires on {cert.not_after:%Y-%m-%d %H:%M} UTC"  # renewal
    return ""


class CertificateKeeper:
    """Serves the stored certificate in this process, and orders one when it is due."""

    def __init__(self, store: Store, cfg: Config, tls: TLSManager) -> None:
        self.store = store
        self.cfg = cfg
        self.tls = tls
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled; never raises for a store or ACME failure. Returns at once when
        ``[acme]`` is off: a certificate stored while it was on is then not served."""
        if not self.cfg.acme.enabled:
            return
        needed = "http" if self.cfg.acme.challenge == "http-01" else "https"
        if not any(lc.name == needed and lc.enabled for lc in self.cfg.listeners):
            log.warning(
                "ACME %s needs the %s listener, which is disabled: orders will fail",
                self.cfg.acme.challenge,
                needed,
            )
        sub = await self.store.events.subscribe(CERTIFICATE_EVENTS)
        listening = asyncio.create_task(self._listen(sub), name="certificate changes")
        try:
            while True:
                self._wake.clear()
                await self._step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.cfg.acme.check_seconds)
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            await sub.close()

    async def _listen(self, sub: Subscription) -> None:
        async for _change in sub:
            await self.refresh_safely()
            self._wake.set()

    async def _step(self) -> None:
        try:
            await self.refresh()
            await self.maybe_order()
        except StoreError as e:
            log.warning("ACME: the store failed: %s", e)
        except Exception:  # a bug here must not stop the process from serving
            log.exception("ACME: the certificate keeper failed")

    async def refresh_safely(self) -> None:
        """``refresh``, logging instead of raising (start-up must go on with the old one)."""
        if not self.cfg.acme.enabled:
            return
        try:
            await self.refresh()
        except StoreError as e:
            log.warning("could not read the stored certificate: %s", e)

    async def refresh(self) -> bool:
        """Installs the stored certificate if it is not the one served; loads the challenges."""
        pending = await self.store.acme_challenges(time.time())
        self.tls.set_challenges(
            {c.name: c.key_authorization for c in pending if c.kind == "tls-alpn-01"}
        )
        stored = await self.store.certificate(CERTIFICATE)
        if stored is None or stored.serial == self.tls.info.serial:
            return False
        return self.tls.install(stored.cert_pem.encode("ascii"), stored.key_pem.encode("ascii"))

    async def _reason(self, names: list[str]) -> tuple[str, AcmeAccount | None]:
        """Why to order now ("" when not, or not yet after a failure), and the account."""
        acme = self.cfg.acme
        reason = due(await self.store.certificate(CERTIFICATE), names, acme.renew_days)
        account = await self.store.acme_account(acme.directory)
        if account is not None and account.retry_at > time.time():
            return "", account  # a recent failure: wait out its backoff
        return reason, account

    async def maybe_order(self) -> None:
        names = await wanted_names(self.store, self.cfg)
        reason, _ = await self._reason(names)
        if not reason:
            return
        if not await self.store.acquire_lease(LEASE, self.owner, LEASE_SECONDS):
            return  # another process is ordering
        try:
            # Again under the lease: another process may have stored one since the first look.
            reason, account = await self._reason(names)
            if reason:
                log.info(
                    "ACME: ordering a certificate (%s)", reason, extra=kv(names=" ".join(names))
                )
                await self.order(names, account)
        finally:
            await self.store.release_lease(LEASE, self.owner)

    async def order(self, names: list[str], account: AcmeAccount | None) -> bool:
        """One order for ``names``; True when a certificate was stored."""
        acme = self.cfg.acme
        if account is None:
            account = AcmeAccount(acme.directory, acme_order.new_account_key())
            await self.store.save_acme_account(account)
        key_pem = new_certificate_key()
        csr = crypto_util.make_csr(key_pem, names)
        tokens: list[str] = []
        try:
            begun = await asyncio.to_thread(
                acme_order.begin,
                acme.directory,
                account.key_pem,
                account.uri,
                acme.contact,
                csr,
                acme.challenge,
                self.cfg.resolve(acme.ca_file).as_posix() if acme.ca_file else "",
                time.time(),
            )
            if begun.account_uri != account.uri:
                account = replace(account, uri=begun.account_uri)
                await self.store.save_acme_account(account)
            tokens = [c.token for c in begun.challenges]
            await self._publish(begun)
            chain = await asyncio.to_thread(acme_order.finish, begun, ORDER_WAIT_SECONDS)
        except acme_order.OrderError as e:
            await self._failed(account, names, str(e))
            return False
        finally:
            if tokens:
                await self.store.remove_acme_challenges(tokens, time.time())
        await self._issued(account, stored_from(chain, key_pem))
        return True

    async def _publish(self, begun: acme_order.Begun) -> None:
        """Makes the challenges answerable by every process before the server is told."""
        if not begun.challenges:
            return  # every name was validated recently
        await self.store.add_acme_challenges(begun.challenges)
        await self._announce()
        await self.refresh()
        if self.cfg.acme.challenge == "tls-alpn-01":
            await asyncio.sleep(SETTLE_SECONDS)  # the others load it on the change event

    async def _issued(self, account: AcmeAccount, stored: StoredCertificate) -> None:
        await self.store.save_certificate(stored)
        await self.store.save_acme_account(
            replace(account, failures=0, retry_at=0.0, last_error="")
        )
        log.info(
            "ACME: certificate stored",
            extra=kv(
                names=" ".join(stored.names),
                serial=stored.serial,
                expires=f"{stored.not_after:%Y-%m-%d}",
            ),
        )
        await self._announce()
        await self.refresh()

    async def _failed(self, account: AcmeAccount, names: list[str], reason: str) -> None:
        failures = account.failures + 1
        wait = backoff(self.cfg.acme, failures)
        await self.store.save_acme_account(
            replace(account, failures=failures, retry_at=time.time() + wait, last_error=reason)
        )
        log.error(
            "ACME: could not get a certificate for %s: %s; trying again in %s",
            ", ".join(names),
            reason,
            _duration(wait),
            extra=kv(failures=failures),
        )

    async def _announce(self) -> None:
        try:
            await self.store.events.publish(Change(CERTIFICATE_EVENTS, 0, ChangeKind.CERTIFICATE))
        except Exception:  # a change is only a hint: the others find it at their next check
            log.exception("ACME: could not announce the change")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def http_challenge(store: Store) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler answering HTTP-01 (RFC 8555 §8.3) from the challenges in the store."""

    async def answer(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        for challenge in await store.acme_challenges(time.time()):
            if challenge.token == token and challenge.kind == "http-01":
                return web.Response(
                    text=challenge.key_authorization, content_type="application/octet-stream"
                )
        raise web.HTTPNotFound(text="no such ACME challenge\n")

    return answer
