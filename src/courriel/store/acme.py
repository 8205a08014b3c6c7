"""The store's interface for ACME (RFC 8555): the account, pending challenges, issued certificates.

Theory of operation
-------------------
Everything an ACME order needs to outlive one process lives here, so that any worker of any
node can answer a challenge another process asked for (an HTTP-01 request reaches whichever
worker the kernel picks), every worker serves the certificate once one process has it, and the
retry backoff after a failure is shared rather than restarted by each process. Records are
frozen; the SQL backends implement ``AcmeStore`` in ``courriel.store.sql.acme``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

CERTIFICATE = "acme"  # the name of the certificate every listener serves


@dataclass(frozen=True, slots=True)
class AcmeAccount:
    directory: str  # the ACME server's directory URL: one account per server
    key_pem: str  # PKCS #8 PEM
    uri: str = ""  # the account URL (RFC 8555 §7.3); "" until registered
    failures: int = 0  # orders failed in a row
    retry_at: float = 0.0  # no order before this time (seconds since the epoch)
    last_error: str = ""  # why the last order failed; "" after a success


@dataclass(frozen=True, slots=True)
class AcmeChallenge:
    token: str
    name: str  # the DNS name being validated
    kind: str  # "http-01" or "tls-alpn-01"
    key_authorization: str  # RFC 8555 §8.1
    expires: float  # seconds since the epoch; forgotten afterwards


@dataclass(frozen=True, slots=True)
class StoredCertificate:
    name: str
    cert_pem: str  # the full chain, leaf first
    key_pem: str
    serial: str  # hexadecimal, lower case
    not_after: datetime
    names: tuple[str, ...]


class AcmeStore(Protocol):
    async def acme_account(self, directory: str) -> AcmeAccount | None:
        """The account kept for that directory URL, with its failure record."""

    async def save_acme_account(self, account: AcmeAccount) -> None:
        """Creates or replaces the account of ``account.directory``."""

    async def add_acme_challenges(self, challenges: Sequence[AcmeChallenge]) -> None:
        """Keeps the challenges (replacing any with the same token) until they expire."""

    async def acme_challenges(self, now: float) -> list[AcmeChallenge]:
        """The challenges not yet expired at ``now``, by token."""

    async def remove_acme_challenges(self, tokens: Sequence[str], now: float) -> None:
        """Forgets those challenges, and every one expired at ``now``."""

    async def certificate(self, name: str) -> StoredCertificate | None: ...

    async def save_certificate(self, cert: StoredCertificate) -> None:
        """Creates or replaces the certificate called ``cert.name``."""
