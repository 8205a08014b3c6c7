"""Transaction scripts for each hosted domain's mail-authentication policy and for the DMARC
evaluations awaiting their aggregate report, and the mixin that runs them (migration 0018).

Theory of operation
-------------------
``domain_policies`` (migration 0018) holds at most one row per domain, removed with it. A column
left NULL keeps the server's ``[mailauth]`` setting in force, so an administrator changes one
choice without freezing the others; a policy whose every choice is NULL is deleted rather than
kept empty. Policies publish no change events: the SMTP session reads them for each message
(one indexed read for the message's recipient domains).

``dmarc_evaluations`` holds one row per message received with a DMARC record asking for
reports, until the reporter (``courriel.queue.dmarc_reports``) has queued the report and
deletes the rows it covered, by id, so rows recorded meanwhile wait for the next one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from courriel.store.base import DomainPolicy, NotFound, OnDmarcFailure, StoredEvaluation
from courriel.store.sql.core import Done, Query, Row, Script, T


def _policy(row: Row) -> DomainPolicy:
    return DomainPolicy(
        domain=row[0],
        on_reject=None if row[1] is None else OnDmarcFailure(row[1]),
        on_quarantine=None if row[2] is None else OnDmarcFailure(row[2]),
        arc_override=None if row[3] is None else bool(row[3]),
        allow_from=tuple(d for d in (row[4] or "").split(",") if d),
    )


def read_policies(domains: Sequence[str] | None) -> Script[list[DomainPolicy]]:
    sql = (
        "SELECT d.name, p.on_reject, p.on_quarantine, p.arc_override, p.allow_from"
        " FROM domain_policies p JOIN domains d ON d.id = p.domain_id"
    )
    params: tuple[str, ...] = ()
    if domains is not None:
        if not domains:
            return []
        params = tuple(dict.fromkeys(d.lower() for d in domains))
        sql += " WHERE d.name IN (" + ", ".join("?" for _ in params) + ")"
    rows = yield Query(sql + " ORDER BY d.name", params)
    return [_policy(r) for r in rows]


def write_policy(policy: DomainPolicy) -> Script[Done[None]]:
    rows = yield Query("SELECT id FROM domains WHERE name = ?", (policy.domain.lower(),))
    if not rows:
        raise NotFound(f"no domain {policy.domain}")
    domain_id = int(rows[0][0])
    yield Query("DELETE FROM domain_policies WHERE domain_id = ?", (domain_id,), False)
    values = (
        None if policy.on_reject is None else policy.on_reject.value,
        None if policy.on_quarantine is None else policy.on_quarantine.value,
        None if policy.arc_override is None else int(policy.arc_override),
        ",".join(d.lower() for d in policy.allow_from) or None,
    )
    if any(v is not None for v in values):
        yield Query(
            "INSERT INTO domain_policies"
            " (domain_id, on_reject, on_quarantine, arc_override, allow_from)"
            " VALUES (?, ?, ?, ?, ?)",
            (domain_id, *values),
            False,
        )
    return Done(None)


def add_evaluation(policy_domain: str, received: int, data: str) -> Script[Done[None]]:
    yield Query(
        "INSERT INTO dmarc_evaluations (policy_domain, received, data) VALUES (?, ?, ?)",
        (policy_domain.lower(), received, data),
        False,
    )
    return Done(None)


def report_domains(before: int) -> Script[list[str]]:
    rows = yield Query(
        "SELECT DISTINCT policy_domain FROM dmarc_evaluations WHERE received < ?"
        " ORDER BY policy_domain",
        (before,),
    )
    return [str(r[0]) for r in rows]


def evaluations(policy_domain: str, before: int, limit: int) -> Script[list[StoredEvaluation]]:
    rows = yield Query(
        "SELECT id, policy_domain, received, data FROM dmarc_evaluations"
        " WHERE policy_domain = ? AND received < ? ORDER BY id LIMIT ?",
        (policy_domain.lower(), before, limit),
    )
    return [StoredEvaluation(int(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


def delete_evaluations(policy_domain: str, up_to_id: int) -> Script[Done[int]]:
    rows = yield Query(
        "DELETE FROM dmarc_evaluations WHERE policy_domain = ? AND id <= ? RETURNING id",
        (policy_domain.lower(), up_to_id),
    )
    return Done(len(rows))


class _Driver(Protocol):
    async def read(self, script: Script[T]) -> T: ...

    async def write(self, script: Script[T]) -> T: ...


class DomainPolicyMixin:
    """``DomainPolicyStore`` and ``DmarcReportStore`` for ``SqlStore``, over the same driver."""

    _driver: _Driver

    async def domain_policies(self, domains: Sequence[str] | None = None) -> list[DomainPolicy]:
        return await self._driver.read(read_policies(domains))

    async def set_domain_policy(self, policy: DomainPolicy) -> None:
        # Shielded like every store write: once submitted it may commit.
        await asyncio.shield(self._driver.write(write_policy(policy)))

    async def add_dmarc_evaluation(self, policy_domain: str, received: int, data: str) -> None:
        await asyncio.shield(self._driver.write(add_evaluation(policy_domain, received, data)))

    async def dmarc_report_domains(self, before: int) -> list[str]:
        return await self._driver.read(report_domains(before))

    async def dmarc_evaluations(
        self, policy_domain: str, before: int, limit: int
    ) -> list[StoredEvaluation]:
        return await self._driver.read(evaluations(policy_domain, before, limit))

    async def delete_dmarc_evaluations(self, policy_domain: str, up_to_id: int) -> int:
        done = await asyncio.shield(self._driver.write(delete_evaluations(policy_domain, up_to_id)))
        return done.value
