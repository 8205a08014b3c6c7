"""Sending the DMARC aggregate reports (RFC 7489 §7.2) of the evaluations port 25 recorded.

Theory of operation
-------------------
``DmarcReporter.report_due`` runs every hour in every serving process; the first to take the
store's ``dmarc-reports`` lease does the work, so one node sends (the others find the lease
taken, or nothing left). Reports cover whole UTC days: every evaluation received before the
last midnight is reported, one report per policy domain (up to ``MAX_ROWS`` rows each; a
domain with more gets several), and the rows a report covered are deleted by id once it is
queued. A crash between the two sends that report again: a duplicate rather than a loss.

For each ``rua=mailto:`` destination of the domain's record (as last seen):

* an address outside the policy domain's organizational domain is used only when
  ``<policy-domain>._report._dmarc.<destination-domain>`` publishes ``v=DMARC1`` (§7.1); no
  such record skips it (logged), no DNS answer keeps the rows for the next hour;
* a report larger than the destination's ``!size`` limit is not sent to it (§7.2.1.1);
* the report goes through ``send`` (``courriel.queue.bounce.Notifier.send``): DKIM-signed for
  the server's own domain, queued with the null reverse-path, or stored at once when the
  destination is one of our own addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from courriel.logs import kv
from courriel.mail.auth.dmarc_report import (
    Destination,
    Evaluation,
    aggregate_xml,
    destinations,
    needs_verification,
    report_id,
    report_message,
    verification_ok,
)
from courriel.mail.auth.dns import DnsTempError, Resolver
from courriel.queue.worker import owner_name
from courriel.store.base import Store, StoreError

log = logging.getLogger("courriel.dmarc")

LEASE = "dmarc-reports"
LEASE_SECONDS = 600.0
DAY = 86400
MAX_ROWS = 50_000  # evaluations in one report; more make another report
EVERY = 3600.0  # seconds between looks for a finished day to report

Send = Callable[[str, bytes], Awaitable[None]]  # (destination address, message)


class DmarcReporter:
    def __init__(
        self,
        store: Store,
        send: Send,
        resolver: Resolver,
        hostname: str,
        *,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._send = send
        self._resolver = resolver
        self._hostname = hostname
        self._clock = clock
        self._owner = owner or owner_name()

    async def run(self, every: float = EVERY) -> None:
        """Reports every ``every`` seconds until cancelled; store failures are logged."""
        while True:
            try:
                await self.report_due()
            except StoreError as e:
                log.warning("DMARC reports: the store failed: %s", e)
            except Exception:  # a bug must not stop the next day's reports
                log.exception("DMARC reports failed")
            await asyncio.sleep(every)

    async def report_due(self) -> int:
        """Sends the reports of the days that ended; returns how many reports were queued."""
        now = self._clock()
        end = int(now) // DAY * DAY  # the last midnight, UTC
        if not await self._store.acquire_lease(LEASE, self._owner, LEASE_SECONDS):
            return 0  # another process is at it
        sent = 0
        try:
            for domain in await self._store.dmarc_report_domains(end):
                sent += await self._domain(domain, end, now)
        finally:
            with contextlib.suppress(StoreError):
                await self._store.release_lease(LEASE, self._owner)
        return sent

    async def _domain(self, domain: str, end: int, now: float) -> int:
        sent = 0
        part = 0
        while True:
            rows = await self._store.dmarc_evaluations(domain, end, MAX_ROWS)
            if not rows:
                return sent
            evaluations = []
            for row in rows:
                try:
                    evaluations.append(Evaluation.from_json(row.data))
                except (ValueError, KeyError, TypeError, IndexError):
                    log.warning("DMARC reports: an unreadable evaluation is skipped")
            part += 1
            # A day split over several reports names each part (§7.2.1.1 unique-id).
            unique = str(part) if part > 1 or len(rows) == MAX_ROWS else ""
            if evaluations and not await self._report(domain, evaluations, end, now, unique):
                return sent  # DNS did not answer: the rows wait for the next hour
            sent += bool(evaluations)
            await self._store.delete_dmarc_evaluations(domain, rows[-1].id)
            if len(rows) < MAX_ROWS:
                return sent

    async def _report(
        self, domain: str, evaluations: list[Evaluation], end: int, now: float, unique: str
    ) -> bool:
        """Sends one report to each usable destination; False when DNS gave no answer."""
        begin = min(e.received for e in evaluations) // DAY * DAY
        latest = max(evaluations, key=lambda e: e.received)
        usable: list[Destination] = []
        for d in destinations(latest.rua):
            name = needs_verification(domain, d.address)
            if name is not None:
                try:
                    records = await self._resolver.txt(name)
                except DnsTempError as e:
                    log.info("DMARC report for %s postponed: %s", domain, e)
                    return False
                if not verification_ok(records):  # RFC 7489 §7.1
                    log.info(
                        "DMARC report not sent: %s does not accept reports for %s (no %s)",
                        d.address,
                        domain,
                        name,
                        extra=kv(domain=domain),
                    )
                    continue
            usable.append(d)
        rid = report_id(domain, begin, self._hostname)
        xml = aggregate_xml(
            org_name=self._hostname,
            email=f"postmaster@{self._hostname}",
            report_id=rid,
            begin=begin,
            end=end - 1,  # RFC 7489 Appendix C: the range is inclusive
            policy_domain=domain,
            evaluations=evaluations,
        )
        for d in usable:
            raw = report_message(
                sender=f"MAILER-DAEMON@{self._hostname}",
                to=[d.address],
                receiver=self._hostname,
                policy_domain=domain,
                report_id=rid,
                begin=begin,
                end=end - 1,
                xml=xml,
                now=now,
                unique=unique,
            )
            if d.limit is not None and len(raw) > d.limit:  # RFC 7489 §7.2.1.1
                log.info(
                    "DMARC report not sent: %d octets, %s accepts %d",
                    len(raw),
                    d.address,
                    d.limit,
                    extra=kv(domain=domain),
                )
                continue
            await self._send(d.address, raw)
            log.info(
                "DMARC report queued",
                extra=kv(domain=domain, to=d.address, rows=len(evaluations), id=rid),
            )
        return True
