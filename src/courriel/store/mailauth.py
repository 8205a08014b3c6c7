"""The store's interface for mail authentication: DKIM signing keys, each hosted domain's policy
for mail that fails its sender's DMARC, and the evaluations DMARC aggregate reports are made of.

Theory of operation
-------------------
Keys, policies and evaluations live in the store so that every worker of every node signs with
the same keys, applies the same policy and adds to the same reports. A key goes from pending to
active once DNS shows it (``activate_dkim_keys``), and stays published while retiring so that
mail signed just before a rotation still verifies. Records are frozen; the SQL backends
implement these protocols in ``courriel.store.sql.dkim`` and ``courriel.store.sql.domainpolicy``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# --- DKIM signing keys (see store/sql/dkim.py) -----------------------------------------------


class DkimKeyState(enum.Enum):
    PENDING = "pending"  # to be published; signs once DNS shows it (``activate_dkim_keys``)
    ACTIVE = "active"  # published and used to sign
    RETIRING = "retiring"  # still published until retire_after, no longer used to sign
    RETIRED = "retired"  # no longer published


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str  # A-label, lower-case
    selector: str
    algorithm: str  # "ed25519" or "rsa"
    private_pem: str  # PKCS #8 PEM
    created: datetime
    state: DkimKeyState = DkimKeyState.ACTIVE
    retire_after: datetime | None = None
    # A pending key: how long the key it replaces stays published once it signs.
    grace_seconds: int | None = None


class DkimKeyStore(Protocol):
    async def add_dkim_keys(self, domain: str, keys: Sequence[DkimKey]) -> None:
        """Adds keys to a domain; ``NotFound`` without the domain, ``AlreadyExists`` for a
        selector the domain has."""

    async def dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        """Every key (of one domain), in every state, oldest first."""

    async def rotate_dkim_keys(
        self, domain: str, keys: Sequence[DkimKey], retire_after: datetime
    ) -> None:
        """In one transaction: the active keys become retiring until ``retire_after``, and
        ``keys`` are added."""

    async def retire_dkim_keys(self, now: datetime) -> int:
        """Retiring keys whose ``retire_after`` has passed become retired; returns how many."""

    async def activate_dkim_keys(
        self, domain: str, selectors: Sequence[str], now: datetime
    ) -> list[str]:
        """In one transaction, each named pending key becomes active and the active key of its
        algorithm retiring until ``now`` plus the pending key's grace; returns the selectors
        activated (a selector that is not pending is left alone)."""


# --- per-domain mail-authentication policy ----------------------------------------------------


class OnDmarcFailure(enum.Enum):
    """What a hosted domain does with mail whose sender's DMARC policy failed."""

    REJECT = "reject"  # 550 5.7.1 (only for p=reject)
    JUNK = "junk"  # the recipient's \\Junk mailbox
    INBOX = "inbox"  # INBOX, marked only by Authentication-Results


@dataclass(frozen=True, slots=True)
class DomainPolicy:
    """A hosted domain's own choices; None leaves the ``[mailauth]`` setting in force."""

    domain: str  # A-label, lower-case
    on_reject: OnDmarcFailure | None = None  # sender's p=reject failed
    on_quarantine: OnDmarcFailure | None = None  # sender's p=quarantine failed (not REJECT)
    arc_override: bool | None = None  # honour trusted ARC sealers (None: yes)
    # Local override: From domains (with their subdomains) whose DMARC failures this domain
    # delivers to INBOX all the same (a partner whose list or forwarder breaks DMARC).
    allow_from: tuple[str, ...] = ()


class DomainPolicyStore(Protocol):
    async def domain_policies(self, domains: Sequence[str] | None = None) -> list[DomainPolicy]:
        """The policies set for ``domains`` (every one set, with None); unset ones are absent."""

    async def set_domain_policy(self, policy: DomainPolicy) -> None:
        """Replaces the domain's policy (all None removes it); ``NotFound`` without the domain."""


# --- DMARC aggregate reports -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredEvaluation:
    """One recorded DMARC evaluation (``courriel.mail.auth.dmarc_report.Evaluation`` as JSON)."""

    id: int
    policy_domain: str
    received: int  # seconds since the epoch
    data: str


class DmarcReportStore(Protocol):
    async def add_dmarc_evaluation(self, policy_domain: str, received: int, data: str) -> None:
        """Records one evaluation for the policy domain's next aggregate report."""

    async def dmarc_report_domains(self, before: int) -> list[str]:
        """The policy domains with evaluations received before ``before``."""

    async def dmarc_evaluations(
        self, policy_domain: str, before: int, limit: int
    ) -> list[StoredEvaluation]:
        """At most ``limit`` of the domain's evaluations received before ``before``, oldest
        first."""

    async def delete_dmarc_evaluations(self, policy_domain: str, up_to_id: int) -> int:
        """Forgets the domain's evaluations up to ``up_to_id`` (reported); returns how many."""
